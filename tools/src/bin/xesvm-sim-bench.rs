//! How fast the simulated driver runs: range migrations per second of wall
//! time and resident memory, for a large run: 64 GiB touched over 4 devices
//! of 16 GiB each in 2 MiB steps, then read again from the next device, so
//! that every range moves device-to-device into full VRAM (LRU eviction).
//! Then a parallel phase: 4 threads on 4 devices against one thread doing
//! the same work, to show what the driver's single lock costs.
//!
//! `cargo run --release -p xesvm-tools --bin xesvm-sim-bench [-- GiB]`

use std::time::Instant;

use xesvm::sim::driver::SimDriver;
use xesvm::driver::xe;
use xesvm::sim::{Access, Sim, Topology};
use xesvm::uapi::*;

const MIB: u64 = 1 << 20;

/// Counts heap allocations, to report them per migration.
struct Counting;
static ALLOCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
// SAFETY: forwards to the system allocator; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;
const BUF: u64 = 0x100_0000_0000;

fn rss_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 4dgpu-p2p with 16 GiB per device (the B60 class has 24), the VRAM this
/// benchmark's figures (docs/simulator.md) were taken with.
fn machine() -> Topology {
    let mut t = Topology::preset("4dgpu-p2p").unwrap();
    for d in &mut t.devices {
        d.vram_per_tile = 16 << 30;
    }
    t
}

fn main() {
    let gib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let sim = Sim::new(machine()).unwrap();
    let drv = SimDriver::new(sim.clone());
    let mut dev = Vec::new();
    for d in 0..4 {
        let fd = sim.open_device(d).unwrap();
        let vm = xe::vm_create(&drv, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
        xe::bind_cpu_addr_mirror(&drv, fd, vm, 0, 1 << 47, false).unwrap();
        dev.push((fd, vm));
    }
    let steps = gib * 1024 / 2;
    let migrations = |s: &xesvm::sim::CounterSnapshot| s.migrations_to_vram + s.migrations_to_system + s.migrations_device_to_device;

    println!("xesvm simulator benchmark: {gib} GiB in 2 MiB steps over 4 devices x 16 GiB (4dgpu-p2p)");
    println!("{:<34} {:>12} {:>10} {:>16} {:>10} {:>12}", "phase", "migrations", "wall s", "migrations/s", "evictions", "allocs/migr");
    let phase = |name: &str, offset: usize, access: Access| {
        let before = sim.counters();
        let allocs = ALLOCS.load(std::sync::atomic::Ordering::Relaxed);
        let t = Instant::now();
        for i in 0..steps {
            let (fd, vm) = dev[(i as usize + offset) % 4];
            sim.gpu_access(fd, vm, 0, BUF + i * 2 * MIB, 2 * MIB, access, i).unwrap();
        }
        let wall = t.elapsed().as_secs_f64();
        let allocs = ALLOCS.load(std::sync::atomic::Ordering::Relaxed) - allocs;
        let after = sim.counters();
        let m = migrations(&after) - migrations(&before);
        println!("{:<34} {:>12} {:>10.3} {:>16.0} {:>10} {:>12.2}", name, m, wall, m as f64 / wall, after.evictions - before.evictions, allocs as f64 / m as f64);
        (m, wall)
    };
    let (m1, w1) = phase("write, round-robin (fills VRAM)", 0, Access::Write);
    let (m2, w2) = phase("read from the next device (d2d)", 1, Access::Read);
    let total = sim.counters();
    let sum = sim.checksum(BUF, steps * 2 * MIB).unwrap();
    sim.check_invariants().unwrap();
    println!();
    println!("total: {} range migrations in {:.3} s = {:.0} migrations/s (one thread)", m1 + m2, w1 + w2, (m1 + m2) as f64 / (w1 + w2));
    println!("faults {}, d2d {}, to system {}, evicted {} GiB", total.gpu_faults, total.migrations_device_to_device, total.migrations_to_system, total.evicted_bytes >> 30);
    println!("simulated time {:.3} s; content checksum {sum:#018x}", sim.now_ns() as f64 / 1e9);
    println!("memory: model {:.0} MiB, peak RSS {:.0} MiB", sim.footprint() as f64 / MIB as f64, rss_kib("VmHWM:") as f64 / 1024.0);
    parallel(gib.min(16));
}

/// 4 threads, one per device, each touching its own quarter of a fresh
/// `gib` GiB (write, then read from the next device), against one thread
/// doing all four quarters: migrations/s and the scaling. The simulated
/// driver runs under one lock, so this measures what that lock costs.
fn parallel(gib: u64) {
    let run = |threads: u64| {
        let sim = Sim::new(machine()).unwrap();
        let drv = SimDriver::new(sim.clone());
        let dev: Vec<_> = (0..4)
            .map(|d| {
                let fd = sim.open_device(d).unwrap();
                let vm = xe::vm_create(&drv, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
                xe::bind_cpu_addr_mirror(&drv, fd, vm, 0, 1 << 47, false).unwrap();
                (fd, vm)
            })
            .collect();
        let quarter = gib * 1024 / 2 / 4;
        let t = Instant::now();
        std::thread::scope(|s| {
            for w in 0..threads {
                let (sim, dev) = (&sim, &dev);
                s.spawn(move || {
                    for q in (w..4).step_by(threads as usize) {
                        let base = BUF + q * quarter * 2 * MIB;
                        for (access, next) in [(Access::Write, 0), (Access::Read, 1)] {
                            let (fd, vm) = dev[((q + next) % 4) as usize];
                            for i in 0..quarter {
                                sim.gpu_access(fd, vm, 0, base + i * 2 * MIB, 2 * MIB, access, i).unwrap();
                            }
                        }
                    }
                });
            }
        });
        let wall = t.elapsed().as_secs_f64();
        let c = sim.counters();
        sim.check_invariants().unwrap();
        (c.migrations_to_vram + c.migrations_to_system + c.migrations_device_to_device) as f64 / wall
    };
    println!();
    println!("parallel phase: {gib} GiB, each quarter written by one device and read by the next");
    println!("{:<30} {:>16} {:>9}", "threads", "migrations/s", "scaling");
    let one = run(1);
    println!("{:<30} {:>16.0} {:>8.2}x", "1 (all four quarters)", one, 1.0);
    let four = run(4);
    println!("{:<30} {:>16.0} {:>8.2}x", "4 (one device each)", four, four / one);
}
