//! The decision path allocates nothing: `resolve` and an `alloc_vram` that
//! finds the range in place, counted by a global allocator (issue 12's
//! target; the house rule "no syscall and no allocation when nothing has to
//! move"). In its own test binary so that the counting allocator sees only
//! this test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use xesvm::policy::{Access, AllocFlags, Config, Context};
use xesvm::sim::{self, Sim, Topology};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is thread-local and
// const-initialised, so counting never allocates or recurses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: p came from System.alloc with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

const BUF: u64 = 0x10_0000_0000;
const R: u64 = 2 << 20;

#[test]
fn resolve_and_in_place_alloc_vram_allocate_nothing() {
    let s = Sim::new(Topology::preset("2dgpu-p2p").unwrap()).unwrap();
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(s.clone())), rules());
    let d0 = ctx.open_index(0).unwrap();
    let d1 = ctx.open_index(1).unwrap();
    let v0 = ctx.pagemap(d0, 0).unwrap();
    s.cpu_access(BUF, 16 * R, sim::Access::Write, 1).unwrap();
    for i in 0..16 {
        ctx.alloc_vram(d0, BUF + i * R, R, v0, AllocFlags::default()).unwrap();
    }
    // Warm: thread-locals, statistics slots, the first observations.
    for i in 0..16 {
        ctx.resolve(d0, 0, BUF + i * R, R, Access::Read).unwrap();
        ctx.alloc_vram(d0, BUF + i * R, R, v0, AllocFlags::default()).unwrap();
    }
    let before = allocs();
    let mut in_place = 0;
    for round in 0..100 {
        for i in 0..16 {
            let start = BUF + i * R;
            assert_eq!(ctx.resolve(d0, 0, start, R, Access::Read), Ok(v0));
            // A peer's view of a range on device 0 (a different branch of resolve).
            assert!(ctx.resolve(d1, 0, start + R / 2, R / 4, Access::Write).is_ok());
            let p = ctx.alloc_vram(d0, start, R, v0, AllocFlags::default()).unwrap();
            in_place += p.in_place as u32;
            assert_eq!(p.pagemap, Some(v0), "round {round}");
        }
    }
    let n = allocs() - before;
    assert_eq!(in_place, 1600, "every call found the range in place");
    assert_eq!(n, 0, "{n} allocations on the decision path");
    // The counter works: a placement that moves data does allocate.
    let before = allocs();
    ctx.alloc_vram(d1, BUF, R, ctx.pagemap(d1, 0).unwrap(), AllocFlags::default()).unwrap();
    assert!(allocs() > before);
}

/// A runtime that places a buffer and then calls per 64 KiB piece (one call
/// per kernel argument slice): every piece is found in place in the
/// buffer's record, with no allocation, no page-table read and no ioctl.
#[test]
fn pieces_of_a_placed_buffer_are_in_place_without_allocating() {
    let s = Sim::new(Topology::preset("2dgpu-p2p").unwrap()).unwrap();
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(s.clone())), rules());
    let d0 = ctx.open_index(0).unwrap();
    let v0 = ctx.pagemap(d0, 0).unwrap();
    s.cpu_access(BUF, 16 * R, sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(d0, BUF, 16 * R, v0, AllocFlags::default()).unwrap();
    const PIECE: u64 = 64 << 10;
    ctx.alloc_vram(d0, BUF, PIECE, v0, AllocFlags::default()).unwrap(); // warm
    let (before, reads) = (allocs(), s.counters().page_table_reads);
    for i in 0..(16 * R / PIECE) {
        let p = ctx.alloc_vram(d0, BUF + i * PIECE, PIECE, v0, AllocFlags::default()).unwrap();
        assert!(p.in_place && p.ioctls == 0, "piece {i}: {p:?}");
    }
    let n = allocs() - before;
    assert_eq!(n, 0, "{n} allocations for pieces found in place");
    assert_eq!(s.counters().page_table_reads, reads, "no page-table read");
    // The buffer's record was not split: it moves in one call, all of it.
    let d1 = ctx.open_index(1).unwrap();
    let whole = ctx.alloc_vram(d1, BUF, 16 * R, ctx.pagemap(d1, 0).unwrap(), AllocFlags::default()).unwrap();
    assert_eq!(whole.bytes_moved, 16 * R);
}

/// A runtime that calls per piece of a table it reads at random: a small
/// read served in system memory is bound for the device (no madvise) and
/// found in place at its next call, with no allocation and no ioctl; while
/// it is bound there the device's GPU does not fault on it, so no fault
/// moves it (docs/kernel-model.md §3).
#[test]
fn pieces_served_in_system_memory_are_in_place_without_allocating() {
    let s = Sim::new(Topology::preset("2dgpu-p2p").unwrap()).unwrap();
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(s.clone())), rules());
    let d0 = ctx.open_index(0).unwrap();
    s.cpu_access(BUF, 16 * R, sim::Access::Write, 1).unwrap();
    const PIECE: u64 = 64 << 10;
    let sys = xesvm::topology::Pagemap::System;
    let pieces = [BUF, BUF + 16 * R - PIECE, BUF + 8 * R, BUF + 3 * R + 5 * PIECE];
    for start in pieces {
        assert_eq!(ctx.resolve(d0, 0, start, PIECE, Access::Read), Ok(sys));
        let p = ctx.alloc_vram(d0, start, PIECE, sys, AllocFlags::ENGINE).unwrap();
        assert!(!p.in_place && p.bytes_moved == 0, "first call binds: {p:?}");
    }
    let madvises = ctx.stats().madvise;
    assert_eq!(madvises, 0, "a small read in system memory is not advised");
    let (before, ioctls) = (allocs(), s.counters().ioctls);
    for start in pieces {
        assert_eq!(ctx.resolve(d0, 0, start, PIECE, Access::Read), Ok(sys));
        let p = ctx.alloc_vram(d0, start, PIECE, sys, AllocFlags::ENGINE).unwrap();
        assert!(p.in_place && p.ioctls == 0, "{start:#x}: {p:?}");
    }
    let n = allocs() - before;
    assert_eq!(n, 0, "{n} allocations for pieces found in place");
    assert_eq!(s.counters().ioctls, ioctls, "no ioctl");
}

/// The default engine with launch reports: a runtime's steady launches over
/// spans already placed (resolve, an engine alloc_vram, the submission and
/// the report of each launch) allocate nothing once warm, whichever of its
/// strategies each span runs.
#[test]
fn steady_launches_with_reports_allocate_nothing() {
    let s = Sim::new(Topology::preset("dgpu").unwrap()).unwrap();
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(s.clone())), Config::default());
    let d0 = ctx.open_index(0).unwrap();
    s.cpu_access(BUF, 8 * R, sim::Access::Write, 1).unwrap();
    ctx.launch_done(d0, 1_000).unwrap(); // reports from now on
    let launch = |i: u64| {
        let start = BUF + (i % 8) * R;
        let pm = ctx.resolve(d0, 0, start, R, Access::Read).unwrap();
        let p = ctx.alloc_vram(d0, start, R, pm, AllocFlags::ENGINE).unwrap();
        ctx.launch_submitted(d0).unwrap();
        ctx.launch_done(d0, 10_000).unwrap();
        p
    };
    // Warm: the first placements move, the trials run, the lists grow.
    for i in 0..8 * 12 {
        launch(i);
    }
    let before = allocs();
    for i in 0..8 * 50 {
        let p = launch(i);
        assert!(p.in_place || p.on_fault, "launch {i}: {p:?}");
    }
    let n = allocs() - before;
    assert_eq!(n, 0, "{n} allocations over 400 steady launches");
}

/// The engine with its rule cascade (`Config::engine_rules`), which these
/// tests exercise; tests/engine_plain.rs covers the default engine.
fn rules() -> Config {
    Config { engine_rules: true, ..Config::default() }
}
