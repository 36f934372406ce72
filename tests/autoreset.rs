//! Attributes that follow the kernel across free and reuse (kernel-model
//! §8). A mirror bound with MADVISE_AUTORESET has its attributes reset by
//! the kernel's garbage collector when memory the GPU used is unmapped; the
//! library forgets its records then (the runtime's free hook,
//! svm_range_invalidate, or the page table showing the placed range
//! unpopulated), so repeated advice is issued again. Every check compares
//! with what the kernel holds (VM_QUERY_MEM_RANGE_ATTRS).

use std::sync::Arc;

use xesvm::sim::driver::SimDriver;
use xesvm::driver::xe;
use xesvm::errno::Errno;
use xesvm::policy::{Access, AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::Sim;
use xesvm::uapi::*;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;
const R: u64 = 2 * MIB;

fn rig(preset: &str, autoreset: bool) -> (Arc<Sim>, Context, Vec<DeviceHandle>) {
    let sim = Sim::from_preset(preset).unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config { mirror_autoreset: autoreset, ..Config::default() });
    let n = sim.topology().devices.len() as u32;
    let devs = (0..n).map(|i| ctx.open_index(i).unwrap()).collect();
    (sim, ctx, devs)
}

/// The atomic mode the kernel holds for BUF on a device's VM, once its
/// garbage collector ran (a query alone does not run it: a madvise on
/// memory far away does, docs/kernel-model.md §8).
fn kernel_atomic(sim: &Arc<Sim>, ctx: &Context, d: DeviceHandle) -> u32 {
    let dev = ctx.device(d).unwrap();
    let drv = SimDriver::new(sim.clone());
    xe::madvise_atomic(&drv, dev.fd, dev.vm_id, BUF + 512 * R, R, DRM_XE_ATOMIC_GLOBAL).unwrap();
    xe::query_mem_range_attrs(&drv, dev.fd, dev.vm_id, BUF, R).unwrap()[0].atomic.val
}

fn madvises(sim: &Arc<Sim>) -> u64 {
    sim.counters().madvise_calls
}

/// Free (munmap) and reuse (mmap) of memory the GPU used.
fn free_and_reuse(sim: &Arc<Sim>) {
    sim.munmap(BUF, R).unwrap();
    sim.mmap(BUF, R, false).unwrap();
}

#[test]
fn with_autoreset_repeated_advice_is_reissued_after_the_free_hook() {
    let (sim, ctx, d) = rig("dgpu", true);
    let vram = ctx.pagemap(d[0], 0).unwrap();
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    ctx.alloc_vram(d[0], BUF, R, vram, AllocFlags::default()).unwrap(); // the GPU's range
    free_and_reuse(&sim);
    ctx.invalidate(BUF, R).unwrap(); // the runtime's free hook
    let before = madvises(&sim);
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    assert_eq!(madvises(&sim), before + 1, "the advice is issued again");
    // Under autoreset a free the library does not see can reset it too, so
    // repeating it is issued every time, as the runtime itself does.
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    assert_eq!(madvises(&sim), before + 2);
    assert_eq!(kernel_atomic(&sim, &ctx, d[0]), DRM_XE_ATOMIC_DEVICE);
}

/// The contract issue's case (runtime-model.md §2): the mirror bound with
/// MADVISE_AUTORESET, as Intel's compute runtime binds it; system memory
/// preferred, a GPU read, free and malloc at the same address with no
/// hook, the same advice again. The kernel reset the attributes on the
/// free (xe_svm_range_notifier_event_end's garbage collector); the advice
/// must reach it again, so the next GPU read leaves the data in system
/// memory.
#[test]
fn with_autoreset_advice_after_an_unseen_free_reaches_the_kernel() {
    let (sim, ctx, d) = rig("dgpu", true);
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 1).unwrap();
    ctx.set_preferred(BUF, R, xesvm::topology::Pagemap::System).unwrap();
    let dev = ctx.device(d[0]).unwrap();
    sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, R, xesvm::sim::Access::Read, 0).unwrap();
    free_and_reuse(&sim);
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 2).unwrap();
    let before = madvises(&sim);
    ctx.set_preferred(BUF, R, xesvm::topology::Pagemap::System).unwrap();
    assert_eq!(madvises(&sim), before + 1, "issued again: the kernel may have reset it");
    sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, R, xesvm::sim::Access::Read, 0).unwrap();
    assert_eq!(sim.placement(BUF, R), xesvm::sim::Placement::System, "the advice held");
}

/// Without autoreset on a 7.0 kernel the records are the kernel's: a
/// repeated advice costs nothing (the measured difference: one madvise
/// per device VM per call under autoreset, none here).
#[test]
fn without_autoreset_repeated_advice_is_skipped() {
    let (sim, ctx, d) = rig("2dgpu-p2p", false);
    let v1 = ctx.pagemap(d[1], 0).unwrap();
    ctx.alloc_vram(d[0], BUF + 8 * R, R, v1, AllocFlags::default()).unwrap(); // multi-device madvise known
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    let before = madvises(&sim);
    for _ in 0..4 {
        ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    }
    assert_eq!(madvises(&sim), before);
}

#[test]
fn with_autoreset_the_page_table_shows_the_free_when_the_hook_is_not_called() {
    let sim = Sim::from_preset("dgpu").unwrap();
    // Observations never fresh: time passes between free and reuse in any
    // real program, and the simulated clock stands still through munmap.
    let cfg = Config { mirror_autoreset: true, observe_ttl_ns: 0, ..Config::default() };
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), cfg);
    let d = [ctx.open_index(0).unwrap()];
    let vram = ctx.pagemap(d[0], 0).unwrap();
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    ctx.alloc_vram(d[0], BUF, R, vram, AllocFlags::default()).unwrap();
    free_and_reuse(&sim);
    // No hook: the next placement reads the page table, finds the range
    // unpopulated where the record put it in VRAM, and forgets.
    let p = ctx.alloc_vram(d[0], BUF, R, vram, AllocFlags::default()).unwrap();
    assert!(!p.in_place, "{p:?}");
    let before = madvises(&sim);
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    assert_eq!(madvises(&sim), before + 1);
    assert_eq!(kernel_atomic(&sim, &ctx, d[0]), DRM_XE_ATOMIC_DEVICE);
}

/// The case: a CPU-only atomic mode recorded, the kernel resets it
/// on free, and resolve(ATOMIC) must not keep refusing from a stale record.
#[test]
fn a_reset_atomic_mode_does_not_refuse_atomics_from_a_stale_record() {
    let (sim, ctx, d) = rig("dgpu", true);
    let vram = ctx.pagemap(d[0], 0).unwrap();
    ctx.alloc_vram(d[0], BUF, R, vram, AllocFlags::default()).unwrap();
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_CPU).unwrap();
    assert_eq!(ctx.resolve(d[0], 0, BUF, R, Access::Atomic), Err(Errno::EACCES));
    free_and_reuse(&sim);
    ctx.invalidate(BUF, R).unwrap();
    assert_eq!(ctx.resolve(d[0], 0, BUF, R, Access::Atomic), Ok(vram));
}

/// Without autoreset on a kernel known to be 7.0+ (a multi-device madvise
/// answered), the kernel keeps attributes across free and reuse, and so do
/// the records: repeating the advice issues nothing, and the kernel agrees.
#[test]
fn without_autoreset_the_records_keep_what_the_kernel_keeps() {
    let (sim, ctx, d) = rig("2dgpu-p2p", false);
    let (v0, v1) = (ctx.pagemap(d[0], 0).unwrap(), ctx.pagemap(d[1], 0).unwrap());
    // A placement in the peer's VRAM names it by fd: multi-device madvise works.
    ctx.alloc_vram(d[0], BUF + 8 * R, R, v1, AllocFlags::default()).unwrap();
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    ctx.alloc_vram(d[0], BUF, R, v0, AllocFlags::default()).unwrap();
    free_and_reuse(&sim);
    ctx.invalidate(BUF, R).unwrap();
    let before = madvises(&sim);
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    assert_eq!(madvises(&sim), before, "recorded and kept by the kernel: nothing to issue");
    for &dev in &d {
        assert_eq!(kernel_atomic(&sim, &ctx, dev), DRM_XE_ATOMIC_DEVICE);
    }
}

/// Without autoreset on a kernel not known to be 7.0+ (6.18-rc1/rc2 reset
/// unconditionally, and 6.18 final cannot be told from them), the records forget as for autoreset: one madvise
/// more, never a record that disagrees with the kernel.
#[test]
fn on_a_kernel_that_may_reset_unconditionally_the_records_forget() {
    for kernel in [xesvm::sim::KernelVersion::V6_18Rc, xesvm::sim::KernelVersion::V6_18, xesvm::sim::KernelVersion::V7_0] {
        let mut t = xesvm::sim::Topology::preset("dgpu").unwrap();
        t.set_kernel(kernel);
        let sim = Sim::new(t).unwrap();
        let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
        let d = ctx.open_index(0).unwrap();
        let vram = ctx.pagemap(d, 0).unwrap();
        ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
        ctx.alloc_vram(d, BUF, R, vram, AllocFlags::default()).unwrap();
        free_and_reuse(&sim);
        ctx.invalidate(BUF, R).unwrap();
        ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
        assert_eq!(kernel_atomic(&sim, &ctx, d), DRM_XE_ATOMIC_DEVICE, "{kernel:?}");
    }
}

/// An explicit request for system memory after a free the library did not
/// see, on a mirror with MADVISE_AUTORESET: the record says system memory
/// under DEFAULT_SYSTEM and the page table agrees (the CPU wrote the new
/// memory), but the kernel reset the advice to DEFAULT_DEVICE, under which
/// the next launch's faults take it into VRAM. The request was answered in
/// place from the record; it is advised again, as the runtime would.
#[test]
fn an_explicit_request_for_system_memory_is_advised_again_after_an_unseen_free() {
    let (sim, ctx, d) = rig("dgpu", true);
    let dev = ctx.device(d[0]).unwrap();
    let kernel_pref = || {
        let drv = SimDriver::new(sim.clone());
        xe::madvise_atomic(&drv, dev.fd, dev.vm_id, BUF + 512 * R, R, DRM_XE_ATOMIC_GLOBAL).unwrap();
        xe::query_mem_range_attrs(&drv, dev.fd, dev.vm_id, BUF, R).unwrap()[0].preferred_mem_loc.devmem_fd
    };
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(d[0], BUF, R, xesvm::topology::Pagemap::System, AllocFlags::default()).unwrap();
    sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, R, xesvm::sim::Access::Read, 0).unwrap();
    assert_eq!(kernel_pref(), DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM);
    free_and_reuse(&sim);
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 2).unwrap();
    assert_eq!(kernel_pref(), DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE, "the kernel reset it");
    ctx.alloc_vram(d[0], BUF, R, xesvm::topology::Pagemap::System, AllocFlags::default()).unwrap();
    assert_eq!(kernel_pref(), DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "advised again");
}

/// The engine's placements are not explicit requests, where the engine
/// runs the runtime's strategy too (it drops the engine flag before step
/// 1): one found in place under DEFAULT_SYSTEM on an autoreset mirror
/// stays on the hot path, with no madvise.
#[test]
fn an_engine_placement_in_place_is_not_advised_again() {
    let (sim, ctx, d) = rig("dgpu", true);
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(d[0], BUF, R, xesvm::topology::Pagemap::System, AllocFlags::ENGINE).unwrap();
    let before = madvises(&sim);
    let p = ctx.alloc_vram(d[0], BUF, R, xesvm::topology::Pagemap::System, AllocFlags::ENGINE).unwrap();
    assert!(p.in_place, "{p:?}");
    assert_eq!(madvises(&sim), before);
}
