//! A lost GPU stays lost alone (issue: "a lost GPU poisons a healthy one").
//! An errno belongs to the device it comes from: the VM's own device, or,
//! for a madvise that names another device's memory, that device. A dead
//! device's pagemap is refused before any ioctl, with that device's errno,
//! and every healthy device keeps working.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use xesvm::sim::driver::SimDriver;
use xesvm::errno::Errno;
use xesvm::policy::{Access, AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::{Sim, Topology};
use xesvm::topology::Pagemap;

const MIB: u64 = 1 << 20;
const BASE: u64 = 0x10_0000_0000;

fn machine(preset: &str) -> (Arc<Sim>, Context, Vec<DeviceHandle>) {
    let mut t = Topology::preset(preset).unwrap();
    for d in &mut t.devices {
        d.vram_per_tile = 256 * MIB;
    }
    let sim = Sim::new(t).unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let n = sim.topology().devices.len() as u32;
    let devs = (0..n).map(|i| ctx.open_index(i).unwrap()).collect();
    (sim, ctx, devs)
}

fn vram(ctx: &Context, h: DeviceHandle) -> Pagemap {
    ctx.pagemap(h, 0).unwrap()
}

/// The case from the issue: GPU 0 wedged; a preferred location naming its
/// VRAM is taken (as the kernel takes it), the first move into that VRAM
/// fails with GPU 0's errno, and GPU 1 keeps placing, before and after GPU
/// 0 is closed.
#[test]
fn a_wedged_peer_does_not_poison_a_healthy_device() {
    let (sim, ctx, d) = machine("2dgpu-p2p");
    let (v0, v1) = (vram(&ctx, d[0]), vram(&ctx, d[1]));
    sim.remove_device(0, Errno::ECANCELED).unwrap();
    // The kernel takes advice naming a wedged device's memory
    // (xe_drm_pagemap_from_fd fails only where drm_dev_enter does, on
    // unplug); its own VM keeps the default, so nothing asks GPU 0 yet.
    assert_eq!(ctx.set_preferred(BASE, 2 * MIB, v0), Ok(()));
    for i in 0..4 {
        let p = ctx.alloc_vram(d[1], BASE + i * 4 * MIB, 2 * MIB, v1, AllocFlags::default()).unwrap();
        assert!(!p.fell_back, "{p:?}");
    }
    // The advice holds until the wedge is found: a move into GPU 0's VRAM
    // asks GPU 0 on its own fd (`Context::device_lost`).
    assert_eq!(ctx.resolve(d[1], 0, BASE + 8 * MIB, 2 * MIB, Access::Write), Ok(v1), "unadvised");
    assert_eq!(ctx.alloc_vram(d[1], BASE + 16 * MIB, 2 * MIB, v0, AllocFlags::default()).map(|_| ()), Err(Errno::ECANCELED));
    assert_eq!(ctx.resolve(d[1], 0, BASE, 2 * MIB, Access::Write), Ok(v1), "advice naming a lost device");
    assert_eq!(ctx.alloc_vram(d[0], BASE + 32 * MIB, 2 * MIB, v0, AllocFlags::default()).map(|_| ()), Err(Errno::ECANCELED));
    assert_eq!(ctx.alloc_vram(d[1], BASE + 36 * MIB, 2 * MIB, v0, AllocFlags::default()).map(|_| ()), Err(Errno::ECANCELED));
    ctx.close(d[0]).unwrap();
    ctx.alloc_vram(d[1], BASE + 40 * MIB, 2 * MIB, v1, AllocFlags::default()).unwrap();
    ctx.set_preferred(BASE + 40 * MIB, 2 * MIB, v1).unwrap();
}

/// A madvise on a healthy VM that names a lost device's memory, before the
/// library has seen that device go: the loss is found on the lost device's
/// own fd, with its own errno, and the healthy device is not marked.
#[test]
fn a_madvise_naming_lost_memory_blames_the_memory_s_owner() {
    let (sim, ctx, d) = machine("2dgpu-p2p");
    let (v0, v1) = (vram(&ctx, d[0]), vram(&ctx, d[1]));
    sim.remove_device(1, Errno::ECANCELED).unwrap();
    // Device 0 asks for device 1's VRAM: its own VM's madvise names device 1's fd.
    let r = ctx.alloc_vram(d[0], BASE, 2 * MIB, v1, AllocFlags::default());
    match r {
        Ok(p) => assert!(p.fell_back, "{p:?}"),
        Err(e) => assert_eq!(e, Errno::ECANCELED),
    }
    assert_eq!(ctx.device(d[0]).unwrap().check_alive(), Ok(()));
    assert_eq!(ctx.device(d[1]).unwrap().check_alive(), Err(Errno::ECANCELED));
    ctx.alloc_vram(d[0], BASE + 4 * MIB, 2 * MIB, v0, AllocFlags::default()).unwrap();
}

/// Each device of a 4-device machine wedged (ECANCELED) and unplugged
/// (ENODEV) in turn, while one thread per device places its own ranges in
/// its own VRAM and in its neighbour's: the lost device's calls fail with
/// its errno (or, with no ioctl to learn the loss from, are answered from the
/// record: in place, or pinned by the thrash guard), calls naming its memory fail with it (or fall back), and
/// every other call succeeds, during the loss and after it.
#[test]
fn each_device_lost_in_turn_under_load() {
    for lost in 0..4u32 {
        for errno in [Errno::ECANCELED, Errno::ENODEV] {
            let (sim, ctx, d) = machine("4dgpu-p2p");
            let ctx = Arc::new(ctx);
            let gone = Arc::new(AtomicBool::new(false));
            let workers: Vec<_> = (0..4u32)
                .map(|me| {
                    let (ctx, d, gone) = (ctx.clone(), d.clone(), gone.clone());
                    std::thread::spawn(move || {
                        let peer = (me + 1) % 4;
                        for i in 0..60u64 {
                            let start = BASE + (me as u64 * 64 + (i % 16) * 4) * MIB;
                            for (target, owner) in [(me, me), (peer, peer)] {
                                let pm = ctx.pagemap(d[target as usize], 0).unwrap();
                                let was_gone = gone.load(Ordering::SeqCst);
                                let r = ctx.alloc_vram(d[me as usize], start, 2 * MIB, pm, AllocFlags::default());
                                let involved = me == lost || owner == lost;
                                match r {
                                    // A loss is learned from an ioctl: a call the record
                                    // answers (in place, or pinned) with zero ioctls
                                    // cannot see it yet.
                                    Ok(p) => assert!(!(was_gone && me == lost) || p.ioctls == 0, "device {me} issued ioctls after its loss and succeeded: {p:?}"),
                                    Err(e) => {
                                        assert!(involved, "lost {lost} ({errno:?}): healthy device {me} -> {owner} failed with {e:?}");
                                        assert_eq!(e, errno, "lost {lost}: device {me} -> {owner}");
                                    }
                                }
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(2));
            sim.remove_device(lost, errno).unwrap();
            gone.store(true, Ordering::SeqCst);
            for w in workers {
                w.join().unwrap();
            }
            // After the loss: the lost device and its memory give its errno;
            // the others place in their own and each other's VRAM.
            let lost_pm = ctx.pagemap(d[lost as usize], 0).unwrap();
            let start = BASE + 512 * MIB;
            assert_eq!(ctx.alloc_vram(d[lost as usize], start, 2 * MIB, lost_pm, AllocFlags::default()).map(|_| ()), Err(errno));
            for me in (0..4u32).filter(|&m| m != lost) {
                let s = start + me as u64 * 8 * MIB;
                for other in (0..4u32).filter(|&o| o != lost) {
                    let pm = ctx.pagemap(d[other as usize], 0).unwrap();
                    let p = ctx.alloc_vram(d[me as usize], s, 2 * MIB, pm, AllocFlags::default()).unwrap();
                    assert!(!p.fell_back, "lost {lost}: {me} -> {other}: {p:?}");
                }
                assert_eq!(ctx.set_preferred(s, 2 * MIB, lost_pm), Err(errno));
                assert_eq!(ctx.device(d[me as usize]).unwrap().check_alive(), Ok(()), "lost {lost}: device {me}");
                ctx.resolve(d[me as usize], 0, s, 2 * MIB, Access::Read).unwrap();
            }
            ctx.close(d[lost as usize]).unwrap();
            let me = (lost + 1) % 4;
            ctx.alloc_vram(d[me as usize], start + 64 * MIB, 2 * MIB, ctx.pagemap(d[me as usize], 0).unwrap(), AllocFlags::default()).unwrap();
            sim.check_invariants().unwrap();
        }
    }
}

/// A target on a lost device gives that device's errno every time: the
/// call that finds the loss (its madvise naming the lost memory fails)
/// returns it as the next one does at step 1, and neither falls back
/// (before, the first moved the range to the accessing device's VRAM and
/// reported success).
#[test]
fn a_target_on_a_lost_device_fails_the_same_way_each_time() {
    for errno in [Errno::ENODEV, Errno::ECANCELED] {
        let (sim, ctx, d) = machine("2dgpu-p2p");
        let v1 = vram(&ctx, d[1]);
        sim.remove_device(1, errno).unwrap();
        for call in 0..2 {
            let o = ctx.alloc_vram_outcome(d[0], BASE, 2 * MIB, v1, AllocFlags::default());
            assert_eq!((o.result, o.placed.fell_back), (Err(errno), false), "call {call}: {:?}", o.placed);
        }
        // The healthy device goes on.
        ctx.alloc_vram(d[0], BASE, 2 * MIB, vram(&ctx, d[0]), AllocFlags::default()).unwrap();
    }
}

/// A move into a peer's VRAM whose device was lost since the span's advice
/// named it: the accessing VM's prefetch skips the failed migration and
/// succeeds (docs/kernel-model.md §7), so nothing on that VM says the peer
/// is gone. The call returned 0, fallen back to the accessing device's
/// VRAM with cause -EBUSY (with SVM_ALLOC_NO_FALLBACK: -EBUSY, the peer
/// never marked), where the header says a target on a lost device never
/// falls back (a third-party reader's report; failed before).
#[test]
fn a_move_into_a_lost_peers_vram_returns_the_peers_errno() {
    for (errno, flags) in [(Errno::ENODEV, AllocFlags::default()), (Errno::ECANCELED, AllocFlags::default()), (Errno::ENODEV, AllocFlags::NO_FALLBACK)] {
        let (sim, ctx, d) = machine("2dgpu-p2p");
        sim.cpu_access(BASE, 4 * MIB, xesvm::sim::Access::Write, 3).unwrap();
        ctx.alloc_vram(d[0], BASE, 4 * MIB, vram(&ctx, d[1]), AllocFlags::default()).unwrap();
        sim.remove_device(1, errno).unwrap();
        let before = sim.counters().ioctls;
        let o = ctx.alloc_vram_outcome(d[0], BASE, 4 * MIB, vram(&ctx, d[1]), flags);
        assert_eq!((o.result, o.placed.fell_back), (Err(errno), false), "{errno:?} {flags:?}: {:?}", o.placed);
        // The query that found the peer gone is one of the call's ioctls.
        assert_eq!(o.placed.ioctls as u64, sim.counters().ioctls - before, "{:?}", o.placed);
        assert_eq!(ctx.alloc_vram(d[0], BASE, 4 * MIB, vram(&ctx, d[1]), AllocFlags::default()), Err(errno), "and from then on");
        assert!(ctx.alloc_vram(d[0], BASE, 4 * MIB, vram(&ctx, d[0]), AllocFlags::default()).is_ok(), "device 0 goes on");
    }
}
