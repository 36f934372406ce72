//! The residency seam (docs/observation.md): the same cases against the real
//! kernel of the machine running the tests (this process's own anonymous
//! memory, read with PAGEMAP_SCAN and with pread) and against the simulated
//! driver's page table. Where a case needs what the machine lacks (swap for
//! MADV_PAGEOUT, PAGEMAP_SCAN before 6.7), it says so and skips that case.

use std::sync::Arc;

use xesvm::driver::pagemap::PageTable;
use xesvm::sim::driver::SimDriver;
use xesvm::driver::{Driver, PageTableAccess, PageTableSource, Residency, ResidencyRun, VramRegion};
use xesvm::errno::Errno;
use xesvm::sim::{self, Sim};

const PAGE: u64 = 4096;
const SPAN: u64 = 4 << 20;

/// One way to read a page table, and how to make pages of it present or
/// push them out of system memory.
trait Subject {
    fn name(&self) -> String;
    fn read(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64), Errno>;
    /// Fresh, page-aligned, never-touched memory of SPAN bytes.
    fn fresh(&mut self) -> u64;
    fn touch(&self, addr: u64, len: u64);
    /// Moves [addr, addr+len) out of system memory; false where it cannot.
    fn push_away(&self, addr: u64, len: u64) -> bool;
    /// madvise(MADV_POPULATE_READ): the zero page over never-populated pages.
    fn zero_page(&self, addr: u64, len: u64);
    /// Whether it reads with PAGEMAP_SCAN (which names the zero page).
    fn scans(&self) -> bool;
}

fn runs(s: &dyn Subject, start: u64, end: u64) -> Vec<ResidencyRun> {
    let mut out = vec![ResidencyRun::default(); 64];
    let (n, walked) = s.read(start, end, &mut out).unwrap_or_else(|e| panic!("{}: read: {e}", s.name()));
    assert_eq!(walked, end, "{}: a 64-run buffer covers the span", s.name());
    out.truncate(n);
    out
}

fn kinds(v: &[ResidencyRun], base: u64) -> Vec<(u64, u64, &'static str)> {
    v.iter()
        .map(|r| {
            let k = match r.residency {
                Residency::Unpopulated => "unpopulated",
                Residency::System => "system",
                Residency::NotInSystem { .. } => "away",
                Residency::Swapped => "swapped",
            };
            ((r.start - base) / PAGE, (r.end - base) / PAGE, k)
        })
        .collect()
}

/// The cases every page table must answer alike.
fn cases(s: &mut dyn Subject) {
    let a = s.fresh();
    let end = a + SPAN;
    let pages = SPAN / PAGE;
    // Untouched memory: one unpopulated run.
    assert_eq!(kinds(&runs(s, a, end), a), vec![(0, pages, "unpopulated")], "{}", s.name());
    // Touch pages 16..48 and the last page: present runs, merged, between gaps.
    s.touch(a + 16 * PAGE, 32 * PAGE);
    s.touch(end - PAGE, PAGE);
    assert_eq!(
        kinds(&runs(s, a, end), a),
        vec![(0, 16, "unpopulated"), (16, 48, "system"), (48, pages - 1, "unpopulated"), (pages - 1, pages, "system")],
        "{}",
        s.name()
    );
    // A span inside a present run.
    assert_eq!(kinds(&runs(s, a + 20 * PAGE, a + 30 * PAGE), a), vec![(20, 30, "system")], "{}", s.name());
    // A bounded answer: two runs fit, and the walk says where it stopped.
    let mut two = [ResidencyRun::default(); 2];
    let (n, walked) = s.read(a, end, &mut two).unwrap();
    assert_eq!((n, walked), (2, a + 48 * PAGE), "{}: stopped where the third run starts", s.name());
    // Bad spans are refused, not misread.
    assert_eq!(s.read(a + 1, end, &mut two).err(), Some(Errno::EINVAL), "{}", s.name());
    assert_eq!(s.read(end, a, &mut two).err(), Some(Errno::EINVAL), "{}", s.name());
    // Pages pushed out of system memory read as "not in system memory" (a
    // whole 2 MiB half: the simulated prefetch moves whole SVM ranges).
    let half = a + SPAN / 2;
    s.touch(half, SPAN / 2);
    if s.push_away(half, SPAN / 2) {
        let k = kinds(&runs(s, a + 16 * PAGE, end), a);
        assert_eq!(k, vec![(16, 48, "system"), (48, pages / 2, "unpopulated"), (pages / 2, pages, "away")], "{}", s.name());
    } else {
        eprintln!("{}: skipped the not-in-system case (no swap for MADV_PAGEOUT on this machine)", s.name());
    }
    // The zero page (MADV_POPULATE_READ) over the never-populated pages
    // 64..96: PAGEMAP_SCAN names it (PAGE_IS_PFNZERO), which reads as never
    // populated; a pread sees a present page. Present pages stay present.
    s.zero_page(a + 64 * PAGE, 32 * PAGE);
    let k = kinds(&runs(s, a, a + 128 * PAGE), a);
    let want = match s.scans() {
        true => vec![(0, 16, "unpopulated"), (16, 48, "system"), (48, 128, "unpopulated")],
        false => vec![(0, 16, "unpopulated"), (16, 48, "system"), (48, 64, "unpopulated"), (64, 96, "system"), (96, 128, "unpopulated")],
    };
    assert_eq!(k, want, "{}: the zero page", s.name());
}

// -- the real kernel ---------------------------------------------------------

struct Kernel {
    pt: PageTable,
    label: &'static str,
    maps: Vec<(u64, usize)>,
}

impl Kernel {
    fn open(access: PageTableAccess, label: &'static str) -> Option<Kernel> {
        let pt = match PageTable::open(c"/proc/self/pagemap") {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipped: /proc/self/pagemap cannot be read here ({e})");
                return None;
            }
        };
        match pt.restricted(access) {
            Ok(pt) => Some(Kernel { pt, label, maps: Vec::new() }),
            Err(_) => {
                eprintln!("skipped {label}: this kernel has no PAGEMAP_SCAN (Linux 6.7+)");
                None
            }
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        for &(a, n) in &self.maps {
            // SAFETY: our own mapping, unmapped once.
            unsafe { libc::munmap(a as *mut _, n) };
        }
    }
}

fn swap_exists() -> bool {
    std::fs::read_to_string("/proc/swaps").map(|t| t.lines().count() > 1).unwrap_or(false)
}

impl Subject for Kernel {
    fn name(&self) -> String {
        format!("kernel {}", self.label)
    }
    fn read(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64), Errno> {
        self.pt.residency(start, end, out)
    }
    fn fresh(&mut self) -> u64 {
        // SAFETY: a fresh private anonymous mapping; THP off so pages stay 4 KiB apart.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), SPAN as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: advice on our own mapping.
        unsafe { libc::madvise(p, SPAN as usize, libc::MADV_NOHUGEPAGE) };
        self.maps.push((p as u64, SPAN as usize));
        p as u64
    }
    fn touch(&self, addr: u64, len: u64) {
        for p in (addr..addr + len).step_by(PAGE as usize) {
            // SAFETY: inside our mapping.
            unsafe { std::ptr::write_volatile(p as *mut u8, 1) };
        }
    }
    fn push_away(&self, addr: u64, len: u64) -> bool {
        if !swap_exists() {
            return false;
        }
        // SAFETY: advice on our own mapping.
        unsafe { libc::madvise(addr as *mut _, len as usize, libc::MADV_PAGEOUT) == 0 }
    }
    fn zero_page(&self, addr: u64, len: u64) {
        // The seam's kernel driver, as the library calls it.
        xesvm::driver::kernel::KernelDriver.populate(addr, addr + len).unwrap();
    }
    fn scans(&self) -> bool {
        self.pt.access().source == PageTableSource::Scan
    }
}

#[test]
fn kernel_page_table_with_pread() {
    if let Some(mut k) = Kernel::open(PageTableAccess { source: PageTableSource::Read, privileged: false }, "pread") {
        cases(&mut k);
    }
}

#[test]
fn kernel_page_table_with_pagemap_scan() {
    if let Some(mut k) = Kernel::open(PageTableAccess { source: PageTableSource::Scan, privileged: false }, "PAGEMAP_SCAN") {
        cases(&mut k);
    }
}

#[test]
fn kernel_page_table_as_the_library_opens_it() {
    let access = xesvm::driver::pagemap::process_access();
    eprintln!("this process reads its page table as: {}", access.name());
    if !access.available() {
        eprintln!("skipped: no page table here (the library runs on its records)");
        return;
    }
    // The seam's kernel driver answers for this process's memory too.
    let drv = xesvm::driver::kernel::KernelDriver;
    let v = vec![7u8; 3 * PAGE as usize];
    let p = (v.as_ptr() as u64).next_multiple_of(PAGE);
    let mut out = [ResidencyRun::default(); 4];
    let (n, _) = drv.residency(p, p + PAGE, &mut out).unwrap();
    assert_eq!((n, out[0].residency), (1, Residency::System));
}

// -- the simulated driver ----------------------------------------------------

struct Simulated {
    sim: Arc<Sim>,
    drv: SimDriver,
    fd: i32,
    vm: u32,
    next: u64,
    label: &'static str,
}

impl Simulated {
    fn new(access: PageTableAccess, label: &'static str) -> Simulated {
        let sim = Sim::from_preset("dgpu").unwrap();
        sim.set_page_table(access).unwrap();
        let drv = SimDriver::new(sim.clone());
        let fd = sim.open_device(0).unwrap();
        let vm = xesvm::driver::xe::vm_create(&drv, fd, xesvm::uapi::DRM_XE_VM_CREATE_FLAG_LR_MODE | xesvm::uapi::DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
        xesvm::driver::xe::bind_cpu_addr_mirror(&drv, fd, vm, 0, 1 << 47, false).unwrap();
        Simulated { sim, drv, fd, vm, next: 0x10_0000_0000, label }
    }
}

impl Subject for Simulated {
    fn name(&self) -> String {
        format!("simulated {}", self.label)
    }
    fn read(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64), Errno> {
        self.drv.residency(start, end, out)
    }
    fn fresh(&mut self) -> u64 {
        let a = self.next;
        self.next += 2 * SPAN;
        a
    }
    fn touch(&self, addr: u64, len: u64) {
        self.sim.cpu_access(addr, len, sim::Access::Write, 1).unwrap();
    }
    fn push_away(&self, addr: u64, len: u64) -> bool {
        // Device-private pages: a prefetch into the device's VRAM.
        xesvm::driver::xe::prefetch(&self.drv, self.fd, self.vm, addr, len, 1).unwrap();
        true
    }
    fn zero_page(&self, addr: u64, len: u64) {
        self.drv.populate(addr, addr + len).unwrap();
    }
    fn scans(&self) -> bool {
        self.sim.page_table().source == PageTableSource::Scan
    }
}

#[test]
fn simulated_page_table_with_pread_and_pagemap_scan() {
    cases(&mut Simulated::new(PageTableAccess { source: PageTableSource::Read, privileged: false }, "pread"));
    cases(&mut Simulated::new(PageTableAccess { source: PageTableSource::Scan, privileged: false }, "PAGEMAP_SCAN"));
}

#[test]
fn simulated_page_table_names_devices_only_when_privileged() {
    for privileged in [false, true] {
        let mut s = Simulated::new(PageTableAccess { source: PageTableSource::Read, privileged }, "pread");
        let a = s.fresh();
        s.touch(a, SPAN);
        assert!(s.push_away(a, SPAN));
        let mut out = [ResidencyRun::default(); 4];
        let (n, _) = s.read(a, a + SPAN, &mut out).unwrap();
        let want = privileged.then(|| VramRegion { device: s.sim.device_id(0), region: 0 });
        assert_eq!((n, out[0].residency), (1, Residency::NotInSystem { vram: want }), "privileged {privileged}");
    }
}

#[test]
fn simulated_page_table_costs_clock_time_and_can_be_unavailable() {
    let mut s = Simulated::new(PageTableAccess { source: PageTableSource::Scan, privileged: false }, "PAGEMAP_SCAN");
    let a = s.fresh();
    let c = s.sim.topology().costs.clone();
    let t0 = s.sim.now_ns();
    runs(&s, a, a + SPAN);
    assert_eq!(s.sim.now_ns() - t0, c.pagemap_call_ns + (SPAN / PAGE) * c.pagemap_scan_page_ns, "one syscall plus the pages walked");
    assert_eq!(s.sim.counters().page_table_pages, SPAN / PAGE);
    // The oracle reads the same ground truth for free.
    let t1 = s.sim.now_ns();
    let mut out = [ResidencyRun::default(); 4];
    SimDriver::oracle(s.sim.clone()).residency(a, a + SPAN, &mut out).unwrap();
    assert_eq!(s.sim.now_ns(), t1);
    s.sim.set_page_table(PageTableAccess::UNAVAILABLE).unwrap();
    assert_eq!(s.read(a, a + SPAN, &mut out).err(), Some(Errno::EOPNOTSUPP));
    assert_eq!(s.sim.set_page_table(PageTableAccess { source: PageTableSource::Oracle, privileged: true }).err(), Some(Errno::EINVAL));
}
