//! `Context::extent_of`: the allocation a pointer lies in, as a process
//! without an allocation table finds it (its CPU mapping, `/proc/self/maps`),
//! on the simulated process and on this real one.

use xesvm::policy::{Config, Context};
use xesvm::sim::driver::SimDriver;
use xesvm::sim::{Sim, Topology};
use xesvm::Errno;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;

#[test]
fn the_simulated_process_answers_its_mappings_and_pays_for_the_read() {
    let sim = Sim::new(Topology::preset("dgpu").unwrap()).unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    sim.munmap(BUF - 2 * MIB, 32 * MIB).unwrap();
    sim.mmap(BUF, 4 * MIB, false).unwrap();
    sim.mmap(BUF + 6 * MIB, 5 * MIB + 8192, false).unwrap();
    sim.mmap(BUF + 12 * MIB, 2 * MIB, true).unwrap();
    let t0 = sim.now_ns();
    assert_eq!(ctx.extent_of(BUF + 3 * MIB + 17), Ok((BUF, BUF + 4 * MIB)));
    assert!(sim.now_ns() > t0, "reading the maps is on the clock");
    assert_eq!(ctx.extent_of(BUF + 6 * MIB), Ok((BUF + 6 * MIB, BUF + 11 * MIB + 8192)));
    assert_eq!(ctx.extent_of(BUF + 11 * MIB + 8191), Ok((BUF + 6 * MIB, BUF + 11 * MIB + 8192)));
    // A file mapping right after an anonymous one is a mapping of its own.
    sim.mmap(BUF + 14 * MIB, MIB, false).unwrap();
    assert_eq!(ctx.extent_of(BUF + 12 * MIB), Ok((BUF + 12 * MIB, BUF + 14 * MIB)));
    assert_eq!(ctx.extent_of(BUF + 14 * MIB), Ok((BUF + 14 * MIB, BUF + 15 * MIB)));
    // Holes, and what a free leaves.
    assert_eq!(ctx.extent_of(BUF + 5 * MIB), Err(Errno::EFAULT));
    assert_eq!(ctx.extent_of(BUF - 1), Err(Errno::EFAULT));
    sim.munmap(BUF, 4 * MIB).unwrap();
    assert_eq!(ctx.extent_of(BUF), Err(Errno::EFAULT));
    assert_eq!(ctx.extent_of(1 << 60), Err(Errno::EFAULT), "above the address space");
    // NULL and the first 64 KiB are never mapped (mmap_min_addr), and what
    // is answered never reaches below it: the simulated process maps all
    // else by default.
    assert_eq!(ctx.extent_of(0), Err(Errno::EFAULT), "NULL");
    assert_eq!(ctx.extent_of(0xffff), Err(Errno::EFAULT));
    assert_eq!(ctx.extent_of(0x1_0000), Ok((0x1_0000, BUF - 2 * MIB)));
}

/// The extent does not come from the library's records: a placement of
/// part of a mapping leaves the extent of a pointer into it the mapping.
#[test]
fn a_placed_piece_does_not_cut_the_extent() {
    let sim = Sim::new(Topology::preset("dgpu").unwrap()).unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let dev = ctx.open_index(0).unwrap();
    sim.munmap(BUF - 2 * MIB, 16 * MIB).unwrap();
    sim.mmap(BUF, 8 * MIB, false).unwrap();
    sim.cpu_access(BUF, 8 * MIB, xesvm::sim::Access::Write, 1).unwrap();
    let vram = ctx.pagemap(dev, 0).unwrap();
    ctx.alloc_vram(dev, BUF + 2 * MIB, 2 * MIB, vram, Default::default()).unwrap();
    assert!(!ctx.records().is_empty());
    assert_eq!(ctx.extent_of(BUF + 2 * MIB + 4096), Ok((BUF, BUF + 8 * MIB)));
}

#[test]
fn this_process_finds_the_mapping_of_its_own_heap() {
    let ctx = Context::new_kernel(Config::default());
    let v = vec![1u8; 3 << 20];
    let a = v.as_ptr() as u64;
    let (s, e) = ctx.extent_of(a + 12345).unwrap();
    assert!(s <= a && a + (3 << 20) <= e, "{s:#x}..{e:#x} holds {a:#x}");
    assert_eq!(ctx.extent_of(0), Err(Errno::EFAULT));
    // The vsyscall page is a mapping /proc/self/maps lists, above the user
    // half of the address space: nothing a placement takes.
    assert_eq!(ctx.extent_of(0xffff_ffff_ff60_0000), Err(Errno::EFAULT));
}
