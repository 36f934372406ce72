//! A two-tile card whose runtime keeps one VM per tile (Intel's compute
//! runtime on multi-tile cards), adopted as one device: one device with
//! two tiles, not two devices with a link between them; advice on both VMs;
//! a tile's VRAM placed through that tile's VM; the runtime's VMs left alive.

use xesvm::sim::driver::SimDriver;
use xesvm::driver::xe;
use xesvm::errno::Errno;
use xesvm::policy::{AllocFlags, Config, Context};
use xesvm::sim::Sim;
use xesvm::uapi::*;

const BUF: u64 = 0x10_0000_0000;
const R: u64 = 2 << 20;

#[test]
fn a_card_adopted_with_one_vm_per_tile_is_one_device() {
    let sim = Sim::from_preset("max-node").unwrap();
    let drv = SimDriver::new(sim.clone());
    let fd = sim.open_device(0).unwrap();
    let flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
    let vms: Vec<u32> = (0..2).map(|_| xe::vm_create(&drv, fd, flags).unwrap()).collect();
    for &vm in &vms {
        xe::bind_cpu_addr_mirror(&drv, fd, vm, 0, 1 << 47, true).unwrap();
    }
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    // One per tile, no more, no fewer, no VM twice.
    assert_eq!(ctx.adopt_tiles_checked(fd, &[vms[0], vms[1], vms[1]], false).map(|_| ()).map_err(|e| e.0), Err(Errno::EINVAL));
    assert_eq!(ctx.adopt_tiles_checked(fd, &[vms[0], vms[0]], false).map(|_| ()).map_err(|e| e.0), Err(Errno::EINVAL));
    let d = ctx.adopt_tiles_checked(fd, &vms, true).unwrap();
    assert_eq!(ctx.devices().len(), 1);
    assert_eq!(ctx.device(d).unwrap().tiles.len(), 2);

    // Advice reaches both tiles' VMs.
    ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    for &vm in &vms {
        assert_eq!(xe::query_mem_range_attrs(&drv, fd, vm, BUF, R).unwrap()[0].atomic.val, DRM_XE_ATOMIC_DEVICE, "VM {vm}");
    }
    // Tile 1's VRAM, placed through tile 1's VM.
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 3).unwrap();
    let t1 = ctx.pagemap(d, 1).unwrap();
    let p = ctx.alloc_vram(d, BUF, R, t1, AllocFlags::default()).unwrap();
    assert_eq!(p.pagemap, Some(t1), "{p:?}");
    assert_eq!(sim.bytes_in(BUF, R, 0, 2).unwrap(), R, "in tile 1's VRAM (instance 2)");
    // A batch binds each range through the VM of the tile it targets, as a
    // single placement does: tile 1's range is bound in tile 1's VM (its
    // GPU access there faults no more), tile 0's in tile 0's.
    sim.cpu_access(BUF + 4 * R, 2 * R, xesvm::sim::Access::Write, 4).unwrap();
    let t0 = ctx.pagemap(d, 0).unwrap();
    let mut b = ctx.place_batch(d, &[(BUF + 4 * R, R, t1), (BUF + 5 * R, R, t0)], None).unwrap();
    let out = ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
    assert_eq!((out[0].pagemap, out[1].pagemap), (Some(t1), Some(t0)));
    let faults = sim.counters().gpu_faults;
    sim.gpu_access(fd, vms[1], 1, BUF + 4 * R, R, xesvm::sim::Access::Read, 0).unwrap();
    sim.gpu_access(fd, vms[0], 0, BUF + 5 * R, R, xesvm::sim::Access::Read, 0).unwrap();
    assert_eq!(sim.counters().gpu_faults, faults, "each range bound in its tile's VM");
    drop(b);
    // Closing it leaves the runtime's VMs alive.
    ctx.close(d).unwrap();
    for &vm in &vms {
        assert!(xe::query_mem_range_attrs(&drv, fd, vm, BUF, R).is_ok());
    }
}
