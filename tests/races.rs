//! What calls from several threads, and handles gone stale, must not do:
//! deadlock behind a writer of the records, write into the state of the
//! device opened next in a closed device's slot, or count placements of a
//! device whose launches nobody reports as one launch forever. Each test
//! failed before its fix (found by reading the locks, not by a workload).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xesvm::errno::Errno;
use xesvm::policy::{Access, AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::{self, Sim, Topology};
use xesvm::topology::{LinkState, Pagemap};

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;

fn ctx_on(topo: Topology, config: Config) -> (Arc<Sim>, Arc<Context>, Vec<DeviceHandle>) {
    let sim = Sim::new(topo).unwrap();
    let ctx = Arc::new(Context::new(Box::new(sim::driver::SimDriver::new(sim.clone())), config));
    let dev = (0..sim.topology().devices.len() as u32).map(|i| ctx.open_index(i).unwrap()).collect();
    (sim, ctx, dev)
}

fn with_vram(preset: &str, vram: u64) -> Topology {
    let mut topo = Topology::preset(preset).unwrap();
    for d in &mut topo.devices {
        d.vram_per_tile = vram;
    }
    topo
}

/// resolve reads the records under one read lock: a second read of the
/// same lock on the same thread (the birth-in-pieces check) waits behind
/// a writer that waits for the first (parking_lot's RwLock is fair), and
/// a resolve meeting a free deadlocked once any span was born in pieces.
#[test]
fn resolve_reads_the_records_once_while_a_free_writes_them() {
    let (sim, ctx, dev) = ctx_on(Topology::preset("2dgpu-p2p").unwrap(), Config { engine_rules: true, ..Config::default() });
    // A birth in pieces: a 1 MiB buffer at the end of a 3 MiB mapping
    // (its chunk reaches past the mapping).
    let m = BUF + 16 * MIB;
    sim.munmap(m, 8 * MIB).unwrap();
    sim.mmap(m, 3 * MIB, false).unwrap();
    let vram = ctx.pagemap(dev[0], 0).unwrap();
    let p = ctx.alloc_vram(dev[0], m + 2 * MIB, MIB, vram, AllocFlags::ENGINE).unwrap();
    assert_eq!(p.pagemap, Some(Pagemap::System), "born in pieces: {p:?}");
    let (tx, rx) = mpsc::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ctx, tx, stop, h) = (ctx.clone(), tx.clone(), stop.clone(), dev[0]);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = ctx.resolve(h, 0, BUF + 64 * MIB, 8 * MIB, Access::Read);
                let _ = tx.send(());
            }
        })
    };
    let writer = {
        let (ctx, tx, stop) = (ctx.clone(), tx, stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = ctx.invalidate(BUF + 512 * MIB, 4096);
                let _ = tx.send(());
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if rx.recv_timeout(Duration::from_secs(5)).is_err() {
            panic!("no progress for 5 s: resolve and a writer of the records deadlocked");
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    writer.join().unwrap();
}

/// A placement through a stale handle (its slot closed and reused) or an
/// invalid one (slot 64, which the chooser's per-device table would wrap
/// to slot 0) fails, and leaves nothing in the live device's launch: its
/// next placement into an empty VRAM is not refused as too big.
#[test]
fn a_stale_handles_placement_leaves_nothing_in_the_live_devices_launch() {
    for stale_kind in ["closed and reused", "slot 64"] {
        let cap = 64 * MIB;
        let (_sim, ctx, dev) = ctx_on(with_vram("dgpu", cap), Config::default());
        ctx.launch_done(dev[0], 1_000_000).unwrap(); // reports begin
        let (live, stale) = match stale_kind {
            "closed and reused" => {
                ctx.close(dev[0]).unwrap();
                let h = ctx.open_index(0).unwrap();
                assert_eq!(h.slot, dev[0].slot);
                ctx.launch_done(h, 1_000_000).unwrap();
                (h, dev[0])
            }
            _ => (dev[0], DeviceHandle { slot: 64, gen: 0 }),
        };
        let vram = Pagemap::Vram { device: live.slot, tile: 0 };
        let r = ctx.alloc_vram(stale, BUF + 256 * MIB, cap, vram, AllocFlags::ENGINE);
        assert!(matches!(r, Err(Errno::EBADF) | Err(Errno::EINVAL)), "{stale_kind}: {r:?}");
        let p = ctx.alloc_vram(live, BUF, 8 * MIB, vram, AllocFlags::ENGINE).unwrap();
        assert!(!p.on_fault, "{stale_kind}: 8 MiB into an empty 64 MiB VRAM: {p:?}");
    }
}

/// A close forgets its slot's state (links, the chooser's, turns, rent)
/// before the slot is free: a device opened in it meanwhile kept its
/// links only until the close's late forget wiped them. The records'
/// read lock, held here, stalls the close inside its forgets.
#[test]
fn a_close_does_not_forget_the_state_of_the_device_opened_in_its_slot() {
    let (_sim, ctx, dev) = ctx_on(Topology::preset("2dgpu-p2p").unwrap(), Config::default());
    let before = ctx.link(dev[0], dev[1]).unwrap();
    assert!(matches!(before, LinkState::Present(_)), "{before:?}");
    let records = ctx.records();
    let closer = {
        let (ctx, h) = (ctx.clone(), dev[1]);
        std::thread::spawn(move || ctx.close(h).unwrap())
    };
    // The handle reads closed (no lock) once the close is inside its
    // write-locked part, before its forgets.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctx.check_device(dev[1]).is_ok() {
        assert!(Instant::now() < deadline, "the close never began");
        std::thread::yield_now();
    }
    let opener = {
        let ctx = ctx.clone();
        std::thread::spawn(move || ctx.open_index(1).unwrap())
    };
    std::thread::sleep(Duration::from_millis(200));
    drop(records);
    closer.join().unwrap();
    let reopened = opener.join().unwrap();
    assert_eq!(reopened.slot, dev[1].slot);
    assert_eq!(ctx.link(dev[0], reopened).unwrap(), before, "the link of the device opened in the freed slot");
}

/// Reports begin with any device's; a device whose launches the runtime
/// never reports has no launch boundary, and its placements' bytes were
/// counted as one launch until every placement there looked too big for
/// its VRAM and was left to the faults.
#[test]
fn a_device_whose_launches_are_not_reported_is_never_too_full_to_place() {
    let cap = 64 * MIB;
    let (sim, ctx, dev) = ctx_on(with_vram("2dgpu-p2p", cap), Config::default());
    ctx.launch_done(dev[0], 1_000_000).unwrap(); // device 0 reports; device 1 never
    let vram1 = ctx.pagemap(dev[1], 0).unwrap();
    for i in 0..10u64 {
        let s = BUF + i * 64 * MIB;
        sim.cpu_access(s, 8 * MIB, sim::Access::Write, 1).unwrap();
        let p = ctx.alloc_vram(dev[1], s, 8 * MIB, vram1, AllocFlags::ENGINE).unwrap();
        // Freed after its launch: the VRAM is empty again.
        ctx.invalidate(s, 8 * MIB).unwrap();
        sim.munmap(s, 8 * MIB).unwrap();
        assert!(!p.on_fault, "placement {i} of 8 MiB into a 64 MiB VRAM: {p:?}");
    }
}

/// Its open launch counts again once it reports, and starts over where
/// other devices' reports keep coming and its own stopped.
#[test]
fn a_device_that_stops_reporting_has_its_open_launch_start_over() {
    let cap = 64 * MIB;
    let (sim, ctx, dev) = ctx_on(with_vram("2dgpu-p2p", cap), Config::default());
    ctx.launch_done(dev[1], 1_000_000).unwrap(); // device 1 reported once
    let vram1 = ctx.pagemap(dev[1], 0).unwrap();
    let place = |i: u64| {
        let s = BUF + i * 64 * MIB;
        sim.cpu_access(s, 24 * MIB, sim::Access::Write, 1).unwrap();
        let p = ctx.alloc_vram(dev[1], s, 24 * MIB, vram1, AllocFlags::ENGINE).unwrap();
        ctx.invalidate(s, 24 * MIB).unwrap();
        sim.munmap(s, 24 * MIB).unwrap();
        p
    };
    assert!(!place(0).on_fault && !place(1).on_fault);
    assert!(place(2).on_fault, "one launch of 72 MiB in a 64 MiB VRAM: its last span is left to the faults");
    for _ in 0..33 {
        ctx.launch_done(dev[0], 1_000_000).unwrap();
    }
    assert!(!place(3).on_fault, "33 reports of another device later, device 1's launch is not known to go on");
}

/// An explicit request into a peer's VRAM whose device a close takes away
/// while the request waits for its range lock: the target's pagemap
/// stopped working, -EBADF. The attempt found no way to advise the closed
/// device's VRAM and answered -EOPNOTSUPP (with SVM_ALLOC_NO_FALLBACK) or
/// fell back with that cause, an errno the header gives to a kernel
/// without multi-device madvise (a third-party reader's race, about 30 in
/// four seconds; here two threads for a second).
#[test]
fn a_target_closed_during_the_request_is_ebadf_never_eopnotsupp() {
    let (sim, ctx, dev) = ctx_on(Topology::preset("2dgpu-p2p").unwrap(), Config::default());
    sim.cpu_access(BUF, 64 * MIB, sim::Access::Write, 1).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let v1 = ctx.pagemap(dev[1], 0).unwrap();
    let placer = {
        let (ctx, stop, d0) = (ctx.clone(), stop.clone(), dev[0]);
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let span = BUF + (i % 32) * 2 * MIB;
                for flags in [AllocFlags::NO_FALLBACK, AllocFlags::default()] {
                    let o = ctx.alloc_vram_outcome(d0, span, 2 * MIB, v1, flags);
                    if o.result == Err(Errno::EOPNOTSUPP) || o.placed.cause == Some(Errno::EOPNOTSUPP) {
                        bad.push(o.placed);
                    }
                }
            }
            bad
        })
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut h = dev[1];
    while Instant::now() < deadline {
        ctx.close(h).unwrap();
        std::thread::sleep(Duration::from_micros(50));
        h = ctx.open_index(1).unwrap();
        std::thread::sleep(Duration::from_micros(50));
    }
    stop.store(true, Ordering::Relaxed);
    let bad = placer.join().unwrap();
    assert!(bad.is_empty(), "{} answers with EOPNOTSUPP, e.g. {:?}", bad.len(), bad[0]);
}
