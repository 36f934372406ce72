//! Placement calls on disjoint ranges run in parallel, and a range is never
//! migrated by two calls at once (the range locks of `policy`). A driver
//! that wraps the simulated one watches the PREFETCH binds in flight.

use std::os::fd::RawFd;
use std::os::raw::c_void;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use xesvm::driver::residency::{DeviceId, ResidencyRun};
use xesvm::sim::driver::SimDriver;
use xesvm::driver::{Driver, LinkHint, PageTableAccess};
use xesvm::errno::Result;
use xesvm::policy::{AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::{Access, Sim, Topology};
use xesvm::uapi::*;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;

/// What the watched driver saw: spans of the prefetches in flight, how
/// many overlapping ones ever ran at once, and the most in flight together.
#[derive(Default)]
struct Probe {
    in_flight: Mutex<Vec<(u64, u64)>>,
    overlapping: AtomicU32,
    most: AtomicU32,
}

/// The simulated driver, watched.
struct Watched {
    inner: SimDriver,
    probe: Arc<Probe>,
}

impl Driver for Watched {
    unsafe fn ioctl_raw(&self, fd: RawFd, request: u32, arg: *mut c_void) -> Result<()> {
        let span = (request == DRM_IOCTL_XE_VM_BIND)
            .then(|| {
                // SAFETY: a VM_BIND's argument is a drm_xe_vm_bind (the caller's contract).
                let b = unsafe { &*(arg as *const drm_xe_vm_bind) };
                // SAFETY: one bind: the union holds the op.
                let op = unsafe { b.ops.bind };
                (b.num_binds == 1 && op.op == DRM_XE_VM_BIND_OP_PREFETCH).then_some((op.addr, op.addr + op.range))
            })
            .flatten();
        let p = &self.probe;
        if let Some((s, e)) = span {
            let mut f = p.in_flight.lock().unwrap();
            if f.iter().any(|&(a, b)| a < e && s < b) {
                p.overlapping.fetch_add(1, Ordering::SeqCst);
            }
            f.push((s, e));
            p.most.fetch_max(f.len() as u32, Ordering::SeqCst);
        }
        if span.is_some() {
            // Widen the window a real migration takes.
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        // SAFETY: forwarded from the caller's contract.
        let r = unsafe { self.inner.ioctl_raw(fd, request, arg) };
        if let Some(sp) = span {
            let mut f = p.in_flight.lock().unwrap();
            let i = f.iter().position(|&x| x == sp).unwrap();
            f.swap_remove(i);
        }
        r
    }
    fn open_index(&self, index: u32) -> Result<RawFd> {
        self.inner.open_index(index)
    }
    fn open_path(&self, path: &std::path::Path) -> Result<RawFd> {
        self.inner.open_path(path)
    }
    fn close(&self, fd: RawFd) {
        self.inner.close(fd)
    }
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }
    fn page_table(&self) -> PageTableAccess {
        self.inner.page_table()
    }
    fn residency(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64)> {
        self.inner.residency(start, end, out)
    }
    fn device_id(&self, fd: RawFd) -> Option<DeviceId> {
        self.inner.device_id(fd)
    }
    fn link_hint(&self, a: DeviceId, b: DeviceId) -> Option<LinkHint> {
        self.inner.link_hint(a, b)
    }
    fn populate(&self, start: u64, end: u64) -> Result<()> {
        self.inner.populate(start, end)
    }
    fn cpu_mapping(&self, addr: u64) -> Result<(u64, u64)> {
        self.inner.cpu_mapping(addr)
    }
    fn kernel_release(&self) -> Option<String> {
        self.inner.kernel_release()
    }
}

fn setup() -> (Arc<Sim>, Context, Arc<Probe>) {
    let sim = Sim::new(Topology::preset("4dgpu-p2p").unwrap()).unwrap();
    let probe = Arc::new(Probe::default());
    let driver = Watched { inner: SimDriver::new(sim.clone()), probe: probe.clone() };
    // No thrash guard: every call here must move its range.
    (sim, Context::new(Box::new(driver), Config { thrash_max_moves: 1000, ..Config::default() }), probe)
}

/// Four devices open and `bytes` at BUF written by the CPU; four threads,
/// started together, run `body(thread, ctx, devices)`. Then: never two
/// prefetches of overlapping spans at once, the content intact, the
/// simulator's invariants held. Returns the setup for further checks.
fn race(bytes: u64, value: u64, body: impl Fn(u64, &Context, &[DeviceHandle]) + Sync) -> (Arc<Sim>, Context, Arc<Probe>) {
    let (sim, ctx, w) = setup();
    let dev: Vec<_> = (0..4).map(|i| ctx.open_index(i).unwrap()).collect();
    sim.cpu_access(BUF, bytes, Access::Write, value).unwrap();
    let sum = sim.checksum(BUF, bytes).unwrap();
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (ctx, dev, barrier, body) = (&ctx, &dev, &barrier, &body);
            s.spawn(move || {
                barrier.wait();
                body(t, ctx, dev);
            });
        }
    });
    assert_eq!(w.overlapping.load(Ordering::SeqCst), 0, "two prefetches of overlapping spans ran at once");
    assert_eq!(sim.checksum(BUF, bytes).unwrap(), sum);
    sim.check_invariants().unwrap();
    (sim, ctx, w)
}

/// Four threads, each moving its own ranges between the devices: their
/// prefetches overlap in time (the calls run in parallel), and the content
/// and the statistics come out exact.
#[test]
fn placements_of_disjoint_ranges_run_in_parallel() {
    let (_sim, ctx, w) = race(4 * 8 * 2 * MIB, 3, |t, ctx, dev| {
        for round in 0..6u64 {
            for r in 0..8u64 {
                let start = BUF + (t * 8 + r) * 2 * MIB;
                let d = ((t + round) % 4) as usize;
                let pm = ctx.pagemap(dev[d], 0).unwrap();
                ctx.alloc_vram(dev[d], start, 2 * MIB, pm, AllocFlags::default()).unwrap();
            }
        }
    });
    assert!(w.most.load(Ordering::SeqCst) >= 2, "no two prefetches were ever in flight at once: placements ran one at a time");
    assert_eq!(ctx.stats().alloc_calls, 4 * 6 * 8);
}

/// Threads placing the same ranges (and overlapping halves of them) on
/// different devices: never two prefetches of overlapping spans at once,
/// and each range ends where one of the calls put it, with its content.
#[test]
fn overlapping_placements_take_turns() {
    let (sim, _ctx, _w) = race(8 * MIB, 5, |t, ctx, dev| {
        for i in 0..12u64 {
            let d = ((t + i) % 4) as usize;
            let pm = ctx.pagemap(dev[d], 0).unwrap();
            let (start, size) = if (t + i) % 3 == 0 { (BUF + 2 * MIB, 4 * MIB) } else { (BUF + (i % 4) * 2 * MIB, 2 * MIB) };
            ctx.alloc_vram(dev[d], start, size, pm, AllocFlags::default()).unwrap();
            if i % 5 == 4 {
                ctx.evict(start, size).unwrap();
            }
        }
    });
    for r in 0..4 {
        let p = sim.placement(BUF + r * 2 * MIB, 2 * MIB);
        assert!(!matches!(p, xesvm::sim::Placement::Mixed), "range {r} is split: {p:?}");
    }
}

/// The default engine with launch reports from four threads, one per
/// device, each placing, submitting and reporting its launches over
/// ranges the others use too: the chooser's switches between strategies
/// race with the reports, and every range keeps its content.
#[test]
fn engine_placements_with_reports_race_safely() {
    race(16 * MIB, 7, |t, ctx, dev| {
        let d = dev[t as usize];
        for i in 0..40u64 {
            let start = BUF + ((t + i) % 8) * 2 * MIB;
            let access = if i % 3 == 0 { xesvm::policy::Access::Write } else { xesvm::policy::Access::Read };
            let pm = ctx.resolve(d, 0, start, 2 * MIB, access).unwrap();
            ctx.alloc_vram(d, start, 2 * MIB, pm, AllocFlags::ENGINE).unwrap();
            ctx.launch_submitted(d).unwrap();
            if i % 2 == 1 {
                ctx.launch_done(d, 1_000 + i * 37).unwrap();
                ctx.launch_done(d, 2_000 + i * 11).unwrap();
            }
        }
    });
}

/// One thread closes and reopens a device while three others place on the
/// other devices and check that device's handles without the slots' lock
/// (`check_device`, `slot_gen`, as the C ABI does on every call): a check
/// answers only Ok or EBADF, a handle once refused stays refused, and the
/// last handle opened is the one that works.
#[test]
fn handle_checks_race_with_close_and_reopen() {
    let current = Mutex::new(None::<DeviceHandle>);
    let refused = Mutex::new(Vec::new());
    let (_sim, ctx, _w) = race(6 * 2 * MIB, 9, |t, ctx, dev| {
        if t == 3 {
            let mut h = dev[3];
            for _ in 0..40 {
                ctx.close(h).unwrap();
                refused.lock().unwrap().push(h);
                h = ctx.open_index(3).unwrap();
                *current.lock().unwrap() = Some(h);
            }
            return;
        }
        for i in 0..60u64 {
            let d = ((t + i) % 3) as usize;
            let start = BUF + (t * 2 + i % 2) * 2 * MIB;
            let pm = ctx.pagemap(dev[d], 0).unwrap();
            ctx.alloc_vram(dev[d], start, 2 * MIB, pm, AllocFlags::default()).unwrap();
            let probe = current.lock().unwrap().unwrap_or(dev[3]);
            match ctx.check_device(probe) {
                Ok(()) | Err(xesvm::errno::Errno::EBADF) => {}
                Err(e) => panic!("handle check answered {e:?}"),
            }
            // A closed handle is refused from then on, whatever reopened.
            let closed = refused.lock().unwrap().last().copied();
            if let Some(h) = closed {
                assert_eq!(ctx.check_device(h), Err(xesvm::errno::Errno::EBADF), "{h:?} was closed");
                assert_ne!(ctx.slot_gen(h.slot), Some(h.gen), "{h:?} was closed");
            }
        }
    });
    let last = current.lock().unwrap().unwrap();
    assert_eq!(ctx.check_device(last), Ok(()));
    assert_eq!(ctx.slot_gen(last.slot), Some(last.gen));
    for h in refused.lock().unwrap().iter() {
        assert_eq!(ctx.check_device(*h), Err(xesvm::errno::Errno::EBADF), "{h:?}");
    }
    // Closed and not reopened: refused, and the slot has no generation.
    ctx.close(last).unwrap();
    assert_eq!((ctx.check_device(last), ctx.slot_gen(last.slot)), (Err(xesvm::errno::Errno::EBADF), None));
}
