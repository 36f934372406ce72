//! What reading this process's own page table costs on this machine
//! (docs/observation.md §4): PAGEMAP_SCAN and pread of /proc/self/pagemap over
//! 2 MiB of present 4 KiB pages, and the one-page read the engine samples
//! with, each next to a rejected ioctl measured in the same run. The
//! simulated driver's `pagemap_call_ns` and `pagemap_*_page_ns` costs come from
//! this table.

use std::time::Instant;

use xesvm::driver::pagemap::PageTable;
use xesvm::driver::{PageTableAccess, PageTableSource, ResidencyRun};

const PAGE: u64 = 4096;
const CHUNK: u64 = 2 << 20;
const SIZE: u64 = 256 << 20;
const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median over rounds of the mean ns per call of `f` called `n` times.
fn time(n: usize, mut f: impl FnMut(usize)) -> f64 {
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                for i in 0..n {
                    f(i);
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect(),
    )
}

fn main() {
    // SAFETY: a private anonymous mapping of our own, unmapped at exit.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), SIZE as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    assert_ne!(p, libc::MAP_FAILED, "mmap");
    // SAFETY: advice on our mapping: 4 KiB pages, as SVM ranges see them.
    unsafe { libc::madvise(p, SIZE as usize, libc::MADV_NOHUGEPAGE) };
    let base = p as u64;
    for a in (base..base + SIZE).step_by(PAGE as usize) {
        // SAFETY: inside our mapping.
        unsafe { std::ptr::write_volatile(a as *mut u8, 1) };
    }
    let chunks = (SIZE / CHUNK) as usize;

    // The reference: a rejected ioctl (ENOTTY on /dev/null).
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    let rejected = time(200_000, |_| {
        let mut q = xesvm::uapi::drm_xe_device_query::default();
        // SAFETY: a valid struct; the kernel rejects the request on /dev/null.
        unsafe { libc::ioctl(fd, xesvm::uapi::DRM_IOCTL_XE_DEVICE_QUERY as _, &mut q) };
    });

    let open = |source| {
        PageTable::open(c"/proc/self/pagemap")
            .and_then(|t| t.restricted(PageTableAccess { source, privileged: false }))
            .ok()
    };
    println!("xesvm-pagemap-bench: {} MiB of present 4 KiB pages, median of {ROUNDS} rounds", SIZE >> 20);
    println!("rejected ioctl (reference): {rejected:.0} ns\n");
    println!("{:<34} {:>12} {:>12} {:>14}", "read", "ns/call", "ns/page", "x rejected");
    for (name, source) in [("PAGEMAP_SCAN", PageTableSource::Scan), ("pread", PageTableSource::Read)] {
        let Some(pt) = open(source) else {
            println!("{name:<34} {:>12}", "unavailable");
            continue;
        };
        let mut out = [ResidencyRun::default(); 8];
        let per_chunk = time(chunks, |i| {
            let s = base + i as u64 * CHUNK;
            pt.residency(s, s + CHUNK, &mut out).unwrap();
        });
        let per_page = time(chunks * 16, |i| {
            let s = base + (i as u64 % (SIZE / PAGE)) * PAGE;
            pt.residency(s, s + PAGE, &mut out).unwrap();
        });
        println!("{:<34} {per_chunk:>12.0} {:>12.1} {:>14.1}", format!("{name}, 2 MiB"), per_chunk / 512.0, per_chunk / rejected);
        println!("{:<34} {per_page:>12.0} {:>12.1} {:>14.1}", format!("{name}, 1 page (engine sample)"), per_page, per_page / rejected);
    }
    // SAFETY: our mapping, unmapped once.
    unsafe { libc::munmap(p, SIZE as usize) };
}
