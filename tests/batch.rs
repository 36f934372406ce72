//! Placement in command order (Level Zero's asynchronous prefetch): a batch
//! of ranges goes out as one VM_BIND, the call returns before the bind
//! completes, the fence signals after, and the outcome is read when asked.

use xesvm::sim::driver::SimDriver;
use xesvm::driver::xe;
use xesvm::errno::Errno;
use xesvm::policy::{Config, Context};
use xesvm::sim::Access;
use xesvm::sim::Sim;
use xesvm::topology::Pagemap;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;

#[test]
fn a_batch_is_one_vm_bind_that_completes_after_the_call_returns() {
    let sim = Sim::from_preset("2dgpu-p2p").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let (d0, d1) = (ctx.open_index(0).unwrap(), ctx.open_index(1).unwrap());
    let (v0, v1) = (ctx.pagemap(d0, 0).unwrap(), ctx.pagemap(d1, 0).unwrap());
    let ranges = [(BUF, 2 * MIB, v0), (BUF + 4 * MIB, 4 * MIB, v0), (BUF + 16 * MIB, 2 * MIB, v1), (BUF + 32 * MIB, 2 * MIB, Pagemap::System)];
    for &(s, n, _) in &ranges {
        sim.cpu_access(s, n, Access::Write, 3).unwrap();
    }
    let k0 = sim.counters();
    let mut b = ctx.place_batch(d0, &ranges, None).unwrap();
    let k1 = sim.counters();
    // One VM_BIND for the four ranges (the rest are the madvise calls of step 2).
    assert_eq!(k1.ioctls - k0.ioctls - (k1.madvise_calls - k0.madvise_calls), 1, "one VM_BIND");
    assert_eq!(k1.prefetch_ranges - k0.prefetch_ranges, 1 + 2 + 1 + 1, "one PREFETCH op per range, 2 MiB SVM ranges");
    // Returned with the bind in flight.
    assert!(!b.signalled(), "the fence signals after the call returns");
    let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
    assert!(b.signalled());
    assert_eq!(out.len(), 4);
    for (p, &(_, _, want)) in out.iter().zip(&ranges) {
        assert_eq!(p.pagemap, Some(want), "{p:?}");
        assert!(p.verified && p.cause.is_none(), "{p:?}");
    }
    // The records took it: a synchronous call now finds them in place.
    assert!(ctx.alloc_vram(d0, BUF, 2 * MIB, v0, Default::default()).unwrap().in_place);
    // Completing again is a fresh look, not an error.
    assert_eq!(ctx.complete_batch(&mut b, 0).unwrap().len(), 4);
}

#[test]
fn the_runtime_can_give_its_own_fence_and_wait_on_it_in_its_order() {
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.open_index(0).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    sim.cpu_access(BUF, 8 * MIB, Access::Write, 1).unwrap();
    let fence = Box::new(0u64);
    let addr = &*fence as *const u64 as u64;
    let mut b = ctx.place_batch(d, &[(BUF, 8 * MIB, v)], Some((addr, 0x1234))).unwrap();
    // SAFETY: `fence` is a live Box the batch's bind may write.
    assert_eq!(unsafe { std::ptr::read_volatile(addr as *const u64) }, 0, "in flight");
    // The runtime waits on its own fence (its command order), then asks.
    let dev = ctx.device(d).unwrap();
    xe::wait_user_fence(&SimDriver::new(sim.clone()), dev.fd, addr, 0x1234, 1_000_000_000).unwrap();
    assert_eq!(*fence, 0x1234);
    let out = ctx.complete_batch(&mut b, 0).unwrap();
    assert_eq!(out[0].pagemap, Some(v));
    drop(fence);
}

#[test]
fn bad_batches_are_refused_before_anything_is_queued() {
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.open_index(0).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    let before = sim.counters().ioctls;
    assert_eq!(ctx.place_batch(d, &[], None).map(|_| ()), Err(Errno::EINVAL));
    assert_eq!(ctx.place_batch(d, &[(BUF, 4 * MIB, v), (BUF + 2 * MIB, 2 * MIB, v)], None).map(|_| ()), Err(Errno::EINVAL), "overlap");
    assert_eq!(ctx.place_batch(d, &[(BUF + 1, 4096, v)], None).map(|_| ()), Err(Errno::EINVAL), "unaligned");
    assert_eq!(ctx.place_batch(d, &[(BUF, 4096, v)], Some((12, 1))).map(|_| ()), Err(Errno::EINVAL), "misaligned fence");
    assert_eq!(sim.counters().ioctls, before);
}

/// A simulated one-GPU machine, a context with its device open, and its VRAM.
fn dgpu() -> (std::sync::Arc<Sim>, Context, xesvm::policy::DeviceHandle, Pagemap) {
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.open_index(0).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    (sim, ctx, d, v)
}

/// Two devices with P2P (2dgpu-p2p): devices 0 and 1 and their VRAM.
fn p2p() -> (std::sync::Arc<Sim>, Context, [xesvm::policy::DeviceHandle; 2], [Pagemap; 2]) {
    let sim = Sim::from_preset("2dgpu-p2p").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = [ctx.open_index(0).unwrap(), ctx.open_index(1).unwrap()];
    let v = [ctx.pagemap(d[0], 0).unwrap(), ctx.pagemap(d[1], 0).unwrap()];
    (sim, ctx, d, v)
}

/// What xe does (runtime-model.md §5): the copies happen inside the
/// VM_BIND (`prefetch_ranges` from `op_lock_and_prep`), so the data is in
/// place when place_batch returns; only the fence is still to signal.
#[test]
fn a_batch_has_moved_the_data_when_the_call_returns() {
    let (sim, ctx, d, v) = dgpu();
    sim.cpu_access(BUF, 8 * MIB, Access::Write, 1).unwrap();
    let b = ctx.place_batch(d, &[(BUF, 8 * MIB, v)], None).unwrap();
    assert_eq!(sim.placement(BUF, 8 * MIB), xesvm::sim::Placement::Vram { device: 0, instance: 1 });
    drop(b);
}

/// NEO's paging fence is one monotonic counter several binds signal
/// (drm_neo.cpp, waited with >=): a batch on a shared word whose later bind
/// already wrote a larger value is complete, not hung to ETIME.
#[test]
fn a_shared_monotonic_fence_word_completes_with_a_later_value() {
    let (sim, ctx, d, v) = dgpu();
    sim.cpu_access(BUF, 8 * MIB, Access::Write, 1).unwrap();
    let fence = Box::new(0u64);
    let addr = &*fence as *const u64 as u64;
    let mut first = ctx.place_batch(d, &[(BUF, 2 * MIB, v)], Some((addr, 10))).unwrap();
    let mut second = ctx.place_batch(d, &[(BUF + 4 * MIB, 2 * MIB, v)], Some((addr, 11))).unwrap();
    ctx.complete_batch(&mut second, 1_000_000_000).unwrap();
    // SAFETY: `fence` is a live Box the binds write.
    assert_eq!(unsafe { std::ptr::read_volatile(addr as *const u64) }, 11);
    assert!(first.signalled(), "a later value covers the earlier bind");
    let out = ctx.complete_batch(&mut first, 1_000_000).unwrap();
    assert_eq!(out[0].pagemap, Some(v));
    drop(fence);
}

/// A batch released in flight gives its lent word back once it signals:
/// words are reused, not leaked one per abandoned batch.
#[test]
fn a_lent_fence_word_of_a_released_batch_is_reused() {
    let (sim, ctx, d, v) = dgpu();
    sim.cpu_access(BUF, 64 * MIB, Access::Write, 1).unwrap();
    let mut words = std::collections::HashSet::new();
    for i in 0..32 {
        let b = ctx.place_batch(d, &[(BUF + (i % 16) * 2 * MIB, 2 * MIB, if i % 2 == 0 { v } else { Pagemap::System })], None).unwrap();
        words.insert(b.addr);
        let dev = ctx.device(d).unwrap();
        xe::wait_user_fence(&SimDriver::new(sim.clone()), dev.fd, b.addr, b.value, 1_000_000_000).unwrap();
        drop(b); // released without complete
    }
    assert!(words.len() <= 4, "{} distinct words for 32 batches", words.len());
}

/// The runtime's fence word is the runtime's memory, checked as the kernel
/// checks it, never written or read blindly: one it cannot read (unmapped,
/// or PROT_NONE here) is refused at the bind with EFAULT (user_fence_create reads it with get_user) and
/// nothing is queued; one it made read-only is accepted, never signalled
/// (user_fence_worker's copy_to_user fails), and the wait ends with ETIME.
/// Before, the simulated driver wrote and read both directly, and the
/// process died of SIGSEGV.
#[test]
fn a_fence_word_the_runtime_cannot_write_is_refused_or_never_signals() {
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.open_index(0).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
    let page = |prot| {
        // SAFETY: a fresh anonymous page, no file, no fixed address.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED);
        p as u64
    };
    // A page nothing may read (PROT_NONE, kept mapped so that no other
    // test thread's mapping lands there): get_user fails as on a hole.
    let gone = page(libc::PROT_NONE);
    assert_eq!(ctx.place_batch(d, &[(BUF, 2 * MIB, v)], Some((gone, 1))).map(|_| ()), Err(Errno::EFAULT));
    let read_only = page(libc::PROT_READ);
    let mut b = ctx.place_batch(d, &[(BUF + 2 * MIB, 2 * MIB, v)], Some((read_only, 1))).unwrap();
    assert!(!b.signalled());
    assert_eq!(ctx.complete_batch(&mut b, 1_000_000).map(|_| ()), Err(Errno::ETIME));
    assert!(!b.signalled(), "never signalled");
    drop(b);
    for p in [gone, read_only] {
        // SAFETY: the pages mapped above; the batch that named one is dropped.
        assert_eq!(unsafe { libc::munmap(p as *mut _, 4096) }, 0);
    }
}

/// A range nothing maps says so in its outcome (-EFAULT, no place), as a
/// synchronous placement answers: the kernel's prefetch skips holes and
/// the bind succeeds (docs/kernel-model.md §7). Before, it read as a range
/// the prefetch left elsewhere (-EBUSY).
#[test]
fn a_batch_range_nothing_maps_says_efault() {
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.open_index(0).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    sim.munmap(BUF, 4 * MIB).unwrap();
    sim.cpu_access(BUF + 8 * MIB, 2 * MIB, Access::Write, 1).unwrap();
    let mut b = ctx.place_batch(d, &[(BUF, 2 * MIB, v), (BUF + 8 * MIB, 2 * MIB, v)], None).unwrap();
    let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
    assert_eq!((out[0].cause, out[0].pagemap, out[0].verified), (Some(Errno::EFAULT), None, false), "{:?}", out[0]);
    assert_eq!((out[1].cause, out[1].pagemap, out[1].verified), (None, Some(v), true), "{:?}", out[1]);
}

/// A batch queued for a peer's VRAM whose device is closed before it is
/// completed, its slot reopened for another device: the range is reported
/// with EBADF and no place, not as the new device's VRAM (which the records
/// would then have believed, finding it "in place" there with nothing moved).
#[test]
fn a_target_closed_before_completion_is_ebadf_not_the_device_in_its_slot() {
    for reopen in [false, true] {
        let sim = Sim::from_preset("4dgpu-p2p").unwrap();
        let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
        let (d0, d1) = (ctx.open_index(0).unwrap(), ctx.open_index(1).unwrap());
        let v0 = ctx.pagemap(d0, 0).unwrap();
        sim.cpu_access(BUF, 2 * MIB, Access::Write, 1).unwrap();
        let mut b = ctx.place_batch(d1, &[(BUF, 2 * MIB, v0), (BUF + 4 * MIB, 2 * MIB, Pagemap::System)], None).unwrap();
        ctx.close(d0).unwrap();
        let mut at = None;
        if reopen {
            let d2 = ctx.open_index(2).unwrap();
            assert_eq!(d2.slot, d0.slot, "the slot is reused");
            at = Some((d2, ctx.pagemap(d2, 0).unwrap()));
        }
        let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
        assert_eq!((out[0].cause, out[0].pagemap, out[0].verified), (Some(Errno::EBADF), None, false), "reopen {reopen}");
        assert_eq!(out[1].cause, None, "the other range is reported as usual");
        if let Some((d2, v2)) = at {
            let p = ctx.alloc_vram(d2, BUF, 2 * MIB, v2, Default::default()).unwrap();
            assert!(!p.in_place && p.bytes_moved > 0, "moved into the new device, not found there: {p:?}");
        }
    }
}

/// A batch range for a peer's VRAM whose device is lost (unplugged) before
/// the batch is completed: its cause is that device's errno, not the
/// EBUSY of a prefetch the kernel did not make; the device is marked lost.
#[test]
fn a_target_lost_before_completion_says_its_errno() {
    let (sim, ctx, [d0, d1], [v0, _]) = p2p();
    sim.cpu_access(BUF, 2 * MIB, Access::Write, 1).unwrap();
    let mut b = ctx.place_batch(d1, &[(BUF, 2 * MIB, v0)], None).unwrap();
    sim.remove_device(0, Errno::ENODEV).unwrap();
    let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
    assert_eq!(out[0].cause, Some(Errno::ENODEV), "{:?}", out[0]);
    assert_eq!(ctx.device(d0).unwrap().check_alive(), Err(Errno::ENODEV));
}

/// A batch whose own device is closed before its fence signalled (an
/// adopted VM, which the close leaves to the runtime, its bind still in
/// flight) completes with EBADF in every range's cause, every time: the
/// call failed with EBADF before, so the batch could never complete.
#[test]
fn a_batch_of_a_closed_device_completes_with_ebadf_in_its_ranges() {
    let sim = Sim::from_preset("dgpu").unwrap();
    let drv = SimDriver::new(sim.clone());
    let fd = sim.open_device(0).unwrap();
    let vm = xe::vm_create(&drv, fd, xesvm::uapi::DRM_XE_VM_CREATE_FLAG_LR_MODE | xesvm::uapi::DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    xe::bind_cpu_addr_mirror(&drv, fd, vm, 0, 1 << 47, false).unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.adopt(fd, vm).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    sim.cpu_access(BUF, 2 * MIB, Access::Write, 1).unwrap();
    let mut b = ctx.place_batch(d, &[(BUF, 2 * MIB, v), (BUF + 4 * MIB, 2 * MIB, Pagemap::System)], None).unwrap();
    ctx.close(d).unwrap();
    assert!(!b.signalled(), "the adopted VM's bind is still in flight");
    for _ in 0..2 {
        let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
        assert!(out.iter().all(|p| p.cause == Some(Errno::EBADF) && p.pagemap.is_none()), "{out:?}");
    }
}

/// A batch range in system memory unmapped before completion: its
/// never-populated look agreed with system memory, so it came back
/// VERIFIED with no cause, where a VRAM range of the same hole said
/// -EFAULT (a third-party reader's report; failed before).
#[test]
fn a_system_memory_range_unmapped_before_completion_says_efault() {
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let d = ctx.open_index(0).unwrap();
    let v = ctx.pagemap(d, 0).unwrap();
    sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
    let mut b = ctx.place_batch(d, &[(BUF, 2 * MIB, v), (BUF + 2 * MIB, 2 * MIB, Pagemap::System)], None).unwrap();
    sim.munmap(BUF, 4 * MIB).unwrap();
    let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
    for p in &out {
        assert_eq!((p.cause, p.pagemap, p.verified), (Some(Errno::EFAULT), None, false), "{p:?}");
    }
}

/// A batch whose own device is lost (unplugged or wedged) before its fence
/// signalled: the fence never will, but the binds' migrations ran in the
/// ioctl, so it completes from the page table, the ranges found elsewhere
/// with that device's errno. The first call failed with the errno (not one
/// the header lists) and wrote nothing, the next succeeded (a third-party
/// reader's report; failed before).
#[test]
fn a_batch_whose_own_device_is_lost_completes_from_the_page_table() {
    for errno in [Errno::ENODEV, Errno::ECANCELED] {
        let (sim, ctx, [d0, _], [v0, v1]) = p2p();
        sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
        let mut b = ctx.place_batch(d0, &[(BUF, 2 * MIB, v0), (BUF + 2 * MIB, 2 * MIB, v1)], None).unwrap();
        sim.remove_device(0, errno).unwrap();
        for _ in 0..2 {
            let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
            assert_eq!((out[0].cause, out[0].verified), (Some(errno), false), "{errno:?}: {:?}", out[0]);
            assert_eq!((out[1].cause, out[1].pagemap, out[1].verified), (None, Some(v1), true), "{errno:?}: the peer's range is there");
        }
        assert_eq!(ctx.device(d0).unwrap().check_alive(), Err(errno));
    }
}

/// A batch range that did not get where asked, on a batch whose own device
/// was lost before its fence signalled, says that device's errno at every
/// completion alike (the second said EBUSY: a reviewer's case).
#[test]
fn a_lost_batch_device_is_named_at_every_completion() {
    let (sim, ctx, [d0, _], [_, v1]) = p2p();
    sim.cpu_access(BUF, 2 * MIB, Access::Write, 1).unwrap();
    sim.inject(xesvm::sim::Injection::count(xesvm::sim::Point::Migrate, Errno::ENOMEM, 1));
    let mut b = ctx.place_batch(d0, &[(BUF, 2 * MIB, v1)], None).unwrap();
    sim.remove_device(0, Errno::ENODEV).unwrap();
    for round in 0..2 {
        let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
        assert_eq!((out[0].cause, out[0].verified), (Some(Errno::ENODEV), false), "completion {round}: {:?}", out[0]);
    }
}

/// A batch range is an explicit request: its completion says VERIFIED only
/// where every page is there. A 512 KiB file mapping inside a 4 MiB range
/// stays in system memory (the kernel migrates anonymous memory only), and
/// the completion's look at one page per 2 MiB chunk said VERIFIED in
/// VRAM with cause 0 (a third-party reader's report; failed before).
#[test]
fn a_batch_range_part_of_which_stays_in_system_memory_is_not_verified() {
    let (sim, ctx, d, v) = p2p();
    sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
    sim.mmap(BUF + MIB, MIB / 2, true).unwrap();
    let mut b = ctx.place_batch(d[0], &[(BUF, 4 * MIB, v[0])], None).unwrap();
    let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
    assert!(sim.bytes_in(BUF, 4 * MIB, 0, 0).unwrap() >= MIB / 2, "the file mapping stays in system memory");
    assert!(!out[0].verified || out[0].cause.is_some(), "{:?}", out[0]);
}
