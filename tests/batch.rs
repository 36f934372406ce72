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
