//! What the per-range records keep apart and what they forget: packed
//! neighbours keep their own histories when a placement's advice is widened
//! over them, a free of memory the library never placed leaves no record,
//! a closed device's bits do not pass to the device opened in its slot,
//! and a madvise's cut unbinds the neighbours in its end chunks whichever
//! path issued it. Each test failed before its fix (found by reading the
//! records' code, not by a workload).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use xesvm::policy::{AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::{self, Sim, Topology};
use xesvm::topology::Pagemap;

const MIB: u64 = 1 << 20;
const K64: u64 = 64 << 10;
const BUF: u64 = 0x10_0000_0000;

fn setup(config: Config) -> (Arc<Sim>, Context, Vec<DeviceHandle>) {
    let sim = Sim::new(Topology::preset("2dgpu-p2p").unwrap()).unwrap();
    let ctx = Context::new(Box::new(sim::driver::SimDriver::new(sim.clone())), config);
    let dev = (0..2).map(|i| ctx.open_index(i).unwrap()).collect();
    (sim, ctx, dev)
}

/// A placement's madvise widened over the rest of its chunk
/// (policy/chunks.rs, `record_side`) rewrote the side as one record: the
/// two neighbours there merged, and the one moved once took the other's
/// five moves, which the thrash guard then held it on.
#[test]
fn a_widening_over_two_neighbours_keeps_each_ones_history() {
    let (sim, ctx, dev) = setup(Config::default());
    let v0 = ctx.pagemap(dev[0], 0).unwrap();
    let explicit = AllocFlags::empty();
    sim.cpu_access(BUF, 2 * MIB, sim::Access::Write, 1).unwrap();
    for _ in 0..2 {
        ctx.alloc_vram(dev[0], BUF, K64, v0, explicit).unwrap();
        ctx.alloc_vram(dev[0], BUF, K64, Pagemap::System, explicit).unwrap();
    }
    ctx.alloc_vram(dev[0], BUF, K64, v0, explicit).unwrap();
    ctx.alloc_vram(dev[0], BUF + K64, K64, v0, explicit).unwrap();
    let first = ctx.query(BUF, K64).unwrap().moves_in_window;
    let second = ctx.query(BUF + K64, K64).unwrap().moves_in_window;
    assert!(first > second, "{first} moves against {second}");
    // A third neighbour, placed in device 0's VRAM for device 1: its
    // advice covers the rest of the chunk, both neighbours included.
    ctx.alloc_vram(dev[1], BUF + 2 * K64, K64, v0, explicit).unwrap();
    assert_eq!(ctx.query(BUF + K64, K64).unwrap().moves_in_window, second, "the second neighbour's own history");
    assert_eq!(ctx.query(BUF, K64).unwrap().moves_in_window, first, "the first's");
}

/// A free (the runtime's free hook) of memory the library never placed
/// made a record there, and nothing removed records: frees alone grew the
/// map, which LRU walks and a close go through whole.
#[test]
fn a_free_of_memory_never_placed_leaves_no_record() {
    let (_sim, ctx, _dev) = setup(Config::default());
    for i in 0..1000u64 {
        ctx.invalidate(BUF + i * 2 * K64, K64).unwrap();
    }
    assert_eq!(ctx.records().len(), 0);
}

/// A close forgot a record's residency and attributes for the slot, not
/// its bound bit: a device opened in the slot (a new VM, nothing bound)
/// found the span bound, skipped the bind, and its read faulted, which
/// under the default preference moved the span the record put in system
/// memory into its VRAM.
#[test]
fn a_device_opened_in_a_closed_slot_inherits_no_binding() {
    let (sim, ctx, dev) = setup(Config { engine_rules: true, ..Config::default() });
    sim.cpu_access(BUF, K64, sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(dev[1], BUF, K64, Pagemap::System, AllocFlags::ENGINE).unwrap();
    ctx.close(dev[1]).unwrap();
    let d1 = ctx.open_index(1).unwrap();
    assert_eq!(d1.slot, dev[1].slot);
    let bound = ctx.records().containing(BUF, BUF + K64).map_or(0, |(_, r)| r.bound.load(Ordering::Relaxed));
    assert_eq!(bound & 1 << d1.slot, 0, "bound for the closed device only");
    ctx.alloc_vram(d1, BUF, K64, Pagemap::System, AllocFlags::ENGINE).unwrap();
    let dd = ctx.device(d1).unwrap();
    let faults = sim.counters().gpu_faults;
    sim.gpu_access(dd.fd, dd.vm_id, 0, BUF, K64, sim::Access::Read, 7).unwrap();
    assert_eq!(sim.counters().gpu_faults, faults, "bound for the new device's VM");
}

/// The thrash guard's hold advises the span (a CPU pulled it back: held in
/// system memory) and recorded it without the cut's effect on the packed
/// neighbour in its end chunk, which stayed "bound": found in place with
/// no bind, its next read faulted.
#[test]
fn a_hold_unbinds_the_neighbours_its_madvise_cut() {
    let (sim, ctx, dev) = setup(Config { engine_rules: true, ..Config::default() });
    let v0 = ctx.pagemap(dev[0], 0).unwrap();
    let (span, next) = (BUF, BUF + MIB);
    sim.cpu_access(BUF, 2 * MIB, sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(dev[0], span, MIB, v0, AllocFlags::ENGINE).unwrap();
    sim.cpu_access(span, 4096, sim::Access::Read, 0).unwrap(); // pulled back
    ctx.alloc_vram(dev[0], next, K64, Pagemap::System, AllocFlags::ENGINE).unwrap();
    let p = ctx.alloc_vram(dev[0], span, MIB, v0, AllocFlags::ENGINE).unwrap();
    assert!(p.pinned, "held in system memory: {p:?}");
    ctx.alloc_vram(dev[0], next, K64, Pagemap::System, AllocFlags::ENGINE).unwrap();
    let d0 = ctx.device(dev[0]).unwrap();
    let faults = sim.counters().gpu_faults;
    sim.gpu_access(d0.fd, d0.vm_id, 0, next, K64, sim::Access::Read, 7).unwrap();
    assert_eq!(sim.counters().gpu_faults, faults, "bound again after the cut");
}

/// Pieces preferring one place, each for a different device, merged into
/// a preference for no device that still read as the runtime's.
#[test]
fn pieces_preferred_for_different_devices_merge_to_no_preference() {
    let (_sim, ctx, dev) = setup(Config::default());
    ctx.set_preferred_on(Some(dev[0]), BUF, K64, Pagemap::System).unwrap();
    ctx.set_preferred_on(Some(dev[1]), BUF + K64, K64, Pagemap::System).unwrap();
    assert_eq!(ctx.query(BUF, K64).unwrap().preferred, Some(Pagemap::System));
    assert_eq!(ctx.query(BUF, 2 * K64).unwrap().preferred, None);
}
