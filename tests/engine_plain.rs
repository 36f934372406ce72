//! The default engine (`Config::engine_rules` off): an engine placement is
//! the runtime's own prefetch, decided with what xesvm knows (advice per
//! device, atomics, VRAM room), and an allocation found from a pointer is
//! left to the launch's faults (`AllocFlags::EXTENT`). Each test fails
//! with the rule cascade on (the cases the cascade decides otherwise).

use std::sync::Arc;

use xesvm::policy::{Access, AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::{self, Placement, Sim, Topology};
use xesvm::topology::Pagemap;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;

struct T {
    sim: Arc<Sim>,
    ctx: Context,
    dev: Vec<DeviceHandle>,
}

fn setup(preset: &str, engine_rules: bool) -> T {
    let sim = Sim::new(Topology::preset(preset).unwrap()).unwrap();
    let ctx = Context::new(Box::new(sim::driver::SimDriver::new(sim.clone())), Config { engine_rules, ..Config::default() });
    let dev = (0..sim.topology().devices.len() as u32).map(|i| ctx.open_index(i).unwrap()).collect();
    T { sim, ctx, dev }
}

impl T {
    /// A launch as the bench's runtime places it: resolve, then alloc_vram
    /// with ENGINE (and `extra`), then the GPU's access.
    fn launch(&self, d: usize, start: u64, size: u64, a: Access, extra: AllocFlags) -> xesvm::policy::Placed {
        let pm = self.ctx.resolve(self.dev[d], 0, start, size, a).unwrap();
        let p = self.ctx.alloc_vram(self.dev[d], start, size, pm, AllocFlags::ENGINE | extra).unwrap();
        let dev = self.ctx.device(self.dev[d]).unwrap();
        let sa = match a {
            Access::Write => sim::Access::Write,
            Access::Atomic => sim::Access::Atomic,
            _ => sim::Access::Read,
        };
        self.sim.gpu_access(dev.fd, dev.vm_id, 0, start, size, sa, 7).unwrap();
        p
    }

    /// Device `d`'s turn at a span the runtime asks for whole, whose kernel
    /// touches only `touched` (start, size): resolve, an engine placement,
    /// the access, and where `report`, the launch's report (reports begun).
    fn turn(&self, d: usize, (start, size): (u64, u64), a: Access, touched: (u64, u64), report: bool) -> xesvm::policy::Placed {
        let pm = self.ctx.resolve(self.dev[d], 0, start, size, a).unwrap();
        let p = self.ctx.alloc_vram(self.dev[d], start, size, pm, AllocFlags::ENGINE).unwrap();
        let dev = self.ctx.device(self.dev[d]).unwrap();
        let sa = if a == Access::Write { sim::Access::Write } else { sim::Access::Read };
        self.sim.gpu_access(dev.fd, dev.vm_id, 0, touched.0, touched.1, sa, 7).unwrap();
        if report {
            self.ctx.launch_done(self.dev[d], 1_000_000).unwrap();
        }
        p
    }
}

/// A first read of data the CPU wrote goes to the reader's VRAM, as the
/// runtime's prefetch would send it: no remote pass first ("rent or buy"),
/// which costs a kernel that re-reads its data one remote pass per re-read.
#[test]
fn a_first_read_moves_to_the_readers_vram() {
    for rules in [false, true] {
        let t = setup("dgpu", rules);
        t.sim.cpu_access(BUF, 8 * MIB, sim::Access::Write, 1).unwrap();
        let p = t.launch(0, BUF, 8 * MIB, Access::Read, AllocFlags::empty());
        let moved = t.sim.placement(BUF, 8 * MIB) == Placement::Vram { device: 0, instance: 1 };
        assert_eq!(moved, !rules, "rules {rules}: {p:?}");
        // Counted by the strategy that ran (the cascade only under the rules).
        let s = t.ctx.stats();
        assert_eq!((s.engine_faults, s.engine_prefetch, s.engine_cascade), if rules { (0, 0, 1) } else { (0, 1, 0) });
    }
}

/// A fresh buffer a GPU writes is placed whole in its VRAM: no split birth.
#[test]
fn a_fresh_buffer_is_placed_whole() {
    for rules in [false, true] {
        let t = setup("2dgpu-p2p", rules);
        let p = t.launch(0, BUF, 64 * MIB, Access::Write, AllocFlags::empty());
        assert_eq!(p.split, rules, "rules {rules}: {p:?}");
        if !rules {
            assert_eq!(t.sim.placement(BUF, 64 * MIB), Placement::Vram { device: 0, instance: 1 });
        }
    }
}

/// A span left to the faults inside the rest of a chunk another
/// placement's madvise was widened over is no longer that widening's side:
/// the next widening leaves the advice it was reported under alone.
#[test]
fn a_span_left_to_the_faults_in_a_widened_side_keeps_its_advice() {
    let t = setup("2dgpu-p2p", false);
    const SIZE: u64 = 77_824; // 19 pages: its chunk's rest is the side
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    let vram = |d: usize| t.ctx.pagemap(t.dev[d], 0).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, vram(1), AllocFlags::empty()).unwrap();
    let dev = t.ctx.device(t.dev[0]).unwrap();
    let drv = sim::driver::SimDriver::new(t.sim.clone());
    let fd_at = |at: u64| xesvm::driver::xe::query_mem_range_attrs(&drv, dev.fd, dev.vm_id, at, 4096).unwrap()[0].preferred_mem_loc.devmem_fd;
    let left = BUF + MIB;
    let p = t.ctx.alloc_vram(t.dev[0], left, 64 << 10, vram(0), AllocFlags::ENGINE | AllocFlags::EXTENT).unwrap();
    assert!(p.on_fault && p.pagemap == Some(vram(1)), "reported where the side's advice sends its faults: {p:?}");
    let reported = fd_at(left);
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, vram(0), AllocFlags::empty()).unwrap();
    assert_eq!(fd_at(left), reported, "its advice kept");
}

/// An allocation found from a pointer is left to the launch's faults:
/// nothing moves in the call, the kernel's fault places what the kernel
/// touches. PREFETCH_NOW moves it all.
#[test]
fn an_extent_is_left_to_the_faults() {
    let t = setup("dgpu", false);
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let before = t.sim.counters();
    let p = t.ctx.alloc_vram(t.dev[0], BUF, 16 * MIB, t.ctx.pagemap(t.dev[0], 0).unwrap(), AllocFlags::ENGINE | AllocFlags::EXTENT).unwrap();
    assert!(p.on_fault && p.bytes_moved == 0 && p.ioctls == 0, "{p:?}");
    assert_eq!(t.sim.counters().ioctls, before.ioctls, "no ioctl");
    assert_eq!(t.sim.placement(BUF, 16 * MIB), Placement::System);
    let counted = || {
        let s = t.ctx.stats();
        (s.engine_faults, s.engine_prefetch, s.engine_cascade)
    };
    assert_eq!(counted(), (1, 0, 0), "left to the faults");
    let p = t.ctx.alloc_vram(t.dev[0], BUF, 16 * MIB, t.ctx.pagemap(t.dev[0], 0).unwrap(), AllocFlags::ENGINE | AllocFlags::EXTENT | AllocFlags::PREFETCH_NOW).unwrap();
    assert!(!p.on_fault && p.bytes_moved == 16 * MIB, "{p:?}");
    assert_eq!(counted(), (1, 1, 0), "the move asked for now is the runtime's prefetch");
    // An explicit request ignores EXTENT: exactly its span moves.
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 2).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], BUF, 16 * MIB, t.ctx.pagemap(t.dev[0], 0).unwrap(), AllocFlags::EXTENT).unwrap();
    assert_eq!(p.bytes_moved, 16 * MIB, "{p:?}");
    assert_eq!(counted(), (1, 1, 0), "an explicit request is no engine placement");
}

/// An extent left to the faults has its partial chunks' never-populated
/// pages mapped to the zero page the first time (MADV_POPULATE_READ): the
/// kernel makes ranges of 64 KiB or less only over populated pages
/// (`check_pages_threshold`), so the launch's faults there make 64 KiB
/// ranges, not 4 KiB ones. Later placements of it read nothing; after the
/// free hook, a buffer mapped there again is populated again.
#[test]
fn an_extent_left_to_the_faults_has_its_edges_populated_once() {
    let t = setup("dgpu", false);
    let vram = t.ctx.pagemap(t.dev[0], 0).unwrap();
    let place = || t.ctx.alloc_vram(t.dev[0], BUF, MIB, vram, AllocFlags::ENGINE | AllocFlags::EXTENT).unwrap();
    // A GPU-born 1 MiB buffer in a mapping of its own.
    t.sim.munmap(BUF, 2 * MIB).unwrap();
    t.sim.mmap(BUF, MIB, false).unwrap();
    let p = place();
    assert!(p.on_fault && p.bytes_moved == 0 && p.ioctls == 0, "{p:?}");
    assert_eq!(t.ctx.stats().populated_pages, 256);
    let reads = t.sim.counters().page_table_reads;
    assert!(place().on_fault);
    assert_eq!(t.sim.counters().page_table_reads, reads, "populated once");
    let dev = t.ctx.device(t.dev[0]).unwrap();
    t.sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, MIB, sim::Access::Write, 7).unwrap();
    let k = t.sim.counters();
    assert_eq!((k.migrations_4k, k.migrations_64k), (0, 16));
    t.ctx.invalidate(BUF, MIB).unwrap();
    t.sim.munmap(BUF, MIB).unwrap();
    t.sim.mmap(BUF, MIB, false).unwrap();
    place();
    assert_eq!(t.ctx.stats().populated_pages, 512, "freed: populated again");

    // Config::zero_page off (SVM_CONTEXT_NO_ZERO_PAGE): the kernel's own
    // 4 KiB ranges.
    let sim = Sim::new(Topology::preset("dgpu").unwrap()).unwrap();
    let ctx = Context::new(Box::new(sim::driver::SimDriver::new(sim.clone())), Config { zero_page: false, ..Config::default() });
    let d = ctx.open_index(0).unwrap();
    sim.munmap(BUF, 2 * MIB).unwrap();
    sim.mmap(BUF, MIB, false).unwrap();
    let p = ctx.alloc_vram(d, BUF, MIB, ctx.pagemap(d, 0).unwrap(), AllocFlags::ENGINE | AllocFlags::EXTENT).unwrap();
    assert!(p.on_fault && ctx.stats().populated_pages == 0, "{p:?}");
    let dev = ctx.device(d).unwrap();
    sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, MIB, sim::Access::Write, 7).unwrap();
    assert_eq!(sim.counters().migrations_4k, 256);
}

/// The zero page goes only under pages the page table shows never
/// populated, in the span's partial chunks: pages already in VRAM or in
/// system memory stay where they are (populating a device page would
/// migrate it back), and a whole chunk in the middle is not read.
#[test]
fn the_zero_page_goes_only_under_unpopulated_pages_of_partial_chunks() {
    let t = setup("2dgpu-p2p", false);
    // 5 MiB - 64 KiB at BUF + 64 KiB: a partial head chunk, two whole ones,
    // a partial tail chunk; a mapping of its own.
    let (a, n) = (BUF + 64 * 1024, 5 * MIB - 128 * 1024);
    t.sim.munmap(BUF, 6 * MIB).unwrap();
    t.sim.mmap(a, n, false).unwrap();
    // Device 1 wrote the head chunk's first 512 KiB (in its VRAM); the CPU
    // wrote the tail chunk's first 64 KiB.
    let dev1 = t.ctx.device(t.dev[1]).unwrap();
    t.sim.gpu_access(dev1.fd, dev1.vm_id, 0, a, 512 * 1024, sim::Access::Write, 3).unwrap();
    assert_eq!(t.sim.placement(a, 512 * 1024), Placement::Vram { device: 1, instance: 1 });
    let tail = BUF + 4 * MIB;
    t.sim.cpu_access(tail, 64 * 1024, sim::Access::Write, 4).unwrap();
    let walked = t.sim.counters().page_table_pages;
    let vram = t.ctx.pagemap(t.dev[0], 0).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], a, n, vram, AllocFlags::ENGINE | AllocFlags::EXTENT).unwrap();
    assert!(p.on_fault, "{p:?}");
    // Head: 2 MiB - 64 KiB, of which 512 KiB in VRAM; tail: 1 MiB - 64 KiB,
    // of which 64 KiB written.
    let head = (2 * MIB - 64 * 1024 - 512 * 1024) / 4096;
    let tail_pages = (MIB - 64 * 1024 - 64 * 1024) / 4096;
    assert_eq!(t.ctx.stats().populated_pages, head + tail_pages);
    assert_eq!(t.sim.placement(a, 512 * 1024), Placement::Vram { device: 1, instance: 1 }, "device pages left alone");
    assert_eq!(t.sim.checksum(tail, 64 * 1024).unwrap(), {
        let r = Sim::new(Topology::preset("dgpu").unwrap()).unwrap();
        r.cpu_access(tail, 64 * 1024, sim::Access::Write, 4).unwrap();
        r.checksum(tail, 64 * 1024).unwrap()
    }, "written pages unchanged");
    let read = t.sim.counters().page_table_pages - walked;
    assert!(read <= (2 * MIB + MIB) / 4096, "the whole chunks were not read: {read} pages");
}

/// Advice for this device wins where it can be reached; atomics go to the
/// accessing tile's VRAM.
#[test]
fn advice_and_atomics_decide() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 4 * MIB, sim::Access::Write, 1).unwrap();
    t.ctx.set_preferred_on(Some(t.dev[0]), BUF, 4 * MIB, Pagemap::System).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 4 * MIB, Access::Read).unwrap(), Pagemap::System);
    assert_eq!(t.ctx.resolve(t.dev[1], 0, BUF, 4 * MIB, Access::Read).unwrap(), t.ctx.pagemap(t.dev[1], 0).unwrap());
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 4 * MIB, Access::Atomic).unwrap(), t.ctx.pagemap(t.dev[0], 0).unwrap());
}

/// The runtime's read-mostly hint holds whichever engine runs (the header
/// states it for svm_resolve_pagemap, not for the cascade): a read is
/// served where the range lies if that is system memory or the reader's
/// VRAM, else in system memory; a write is not. Before, the default
/// engine ignored it and sent every read to the reader's VRAM.
#[test]
fn the_read_mostly_hint_holds_in_the_default_engine() {
    let t = setup("2dgpu-p2p", false);
    let v0 = t.ctx.pagemap(t.dev[0], 0).unwrap();
    t.sim.cpu_access(BUF, 4 * MIB, sim::Access::Write, 1).unwrap();
    t.ctx.set_read_mostly(BUF, 4 * MIB, true).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 4 * MIB, Access::Read).unwrap(), Pagemap::System);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 4 * MIB, Access::Write).unwrap(), v0);
    t.ctx.alloc_vram(t.dev[0], BUF, 4 * MIB, v0, AllocFlags::default()).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 4 * MIB, Access::Read).unwrap(), v0, "where it lies: the reader's VRAM");
    assert_eq!(t.ctx.resolve(t.dev[1], 0, BUF, 4 * MIB, Access::Read).unwrap(), Pagemap::System, "another's VRAM: system memory");
    t.ctx.set_read_mostly(BUF, 4 * MIB, false).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[1], 0, BUF, 4 * MIB, Access::Read).unwrap(), v0, "unhinted: a linked peer's VRAM, read over the link");
}

/// A buffer two devices take turns at is never moved whole at every
/// turn: a read of what the other holds is served over the link, and a
/// placement into the asking device's VRAM of a span another device holds
/// is left to the faults from the first hand-off on, so each device's
/// kernel moves what it touches (a row split, a slice of the input).
#[test]
fn a_buffer_devices_take_turns_at_is_never_moved_whole_at_every_turn() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let first = t.launch(0, BUF, 16 * MIB, Access::Read, AllocFlags::empty());
    assert_eq!(first.bytes_moved, 16 * MIB, "{first:?}");
    let vram0 = t.ctx.pagemap(t.dev[0], 0).unwrap();
    let second = t.launch(1, BUF, 16 * MIB, Access::Read, AllocFlags::empty());
    assert!(second.pagemap == Some(vram0) && !second.on_fault && second.bytes_moved == 0, "read over the link: {second:?}");
    let third = t.launch(0, BUF, 16 * MIB, Access::Read, AllocFlags::empty());
    // Device 1's kernel read it where it was: for device 0 it is in place.
    assert!(third.in_place && third.bytes_moved == 0, "{third:?}");
    // A write by device 1 asks for its own VRAM: the faults.
    let vram1 = t.ctx.pagemap(t.dev[1], 0).unwrap();
    let w = t.ctx.alloc_vram(t.dev[1], BUF, 16 * MIB, vram1, AllocFlags::ENGINE).unwrap();
    assert!(w.on_fault && w.bytes_moved == 0, "{w:?}");
    // Moved behind device 0's back, it stays with the faults for every device.
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 2).unwrap();
    let fourth = t.launch(0, BUF, 16 * MIB, Access::Read, AllocFlags::empty());
    assert!(fourth.on_fault && fourth.bytes_moved == 0, "shared for every device: {fourth:?}");
}

/// Where the runtime reports launches, the chooser would run the rule
/// cascade; a buffer the devices take turns at reading is read over the
/// link by the one that does not hold it, in every round: each kernel
/// reads its half of an input the runtime knows whole (data split across
/// devices), and a move of the whole buffer to the asking device would
/// carry the other's half across the link at every turn.
#[test]
fn a_buffer_devices_took_turns_at_is_read_over_the_link_when_reports_begin() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let vram0 = t.ctx.pagemap(t.dev[0], 0).unwrap();
    // Each device's kernel reads its own half of the 16 MiB the runtime
    // asks for.
    let turn = |d: usize, report: bool| t.turn(d, (BUF, 16 * MIB), Access::Read, (BUF + d as u64 * 8 * MIB, 8 * MIB), report);
    // The first round is placed before any report comes back.
    assert_eq!(turn(0, false).bytes_moved, 16 * MIB);
    assert_eq!(turn(1, false).pagemap, Some(vram0), "the first turn: over the link");
    for round in 0..3 {
        let (a, b) = (turn(0, true), turn(1, true));
        assert!(a.bytes_moved == 0 && b.bytes_moved == 0, "round {round}: {a:?} {b:?}");
        assert_eq!(b.pagemap, Some(vram0), "round {round}: {b:?}");
    }
    assert_eq!(t.sim.placement(BUF, 16 * MIB), Placement::Vram { device: 0, instance: 1 });
}

/// A buffer devices took turns at still goes where the cascade sends it
/// for several readers: system memory, which every device reads at host
/// bandwidth and which moves no slice to a device that does not read it.
/// Only a move into the asking device's VRAM is left to the faults.
#[test]
fn a_buffer_devices_took_turns_at_goes_to_system_memory_for_several_readers() {
    let t = setup("4dgpu-p2p", false);
    // Below a chunk (a linked peer's larger span is read where it lies).
    const K: u64 = 1024;
    t.sim.cpu_access(BUF, 12 * MIB, sim::Access::Write, 1).unwrap();
    let turn = |d: usize, report: bool| t.turn(d, (BUF, 1536 * K), Access::Read, (BUF + d as u64 * 512 * K, 512 * K), report);
    turn(0, false);
    assert!(turn(1, false).on_fault && turn(2, false).on_fault, "the first round");
    turn(0, true);
    assert!(turn(1, true).on_fault, "into device 1's VRAM: the faults");
    // Device 2 is the second to read it from a peer's VRAM.
    let third = turn(2, true);
    assert!(!third.on_fault && third.pagemap == Some(Pagemap::System), "{third:?}");
    assert_eq!(t.sim.placement(BUF, 1536 * K), Placement::System);
}

/// A buffer one device writes and another reads (a pipeline's stage
/// output) is a hand-off, not a split: where reports begin after the first
/// turn, the cascade moves it to its reader once, and the writer then
/// writes it there over the link, where the faults would move all of it
/// at every turn.
#[test]
fn a_buffer_one_device_writes_and_another_reads_is_handed_off_by_the_cascade() {
    let t = setup("2dgpu-p2p", false);
    // Below a chunk (a linked peer's larger span is read where it lies).
    let n = MIB;
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let turn = |d: usize, a: Access, report: bool| t.turn(d, (BUF, n), a, (BUF, n), report);
    turn(0, Access::Write, false);
    assert!(turn(1, Access::Read, false).on_fault, "the first turn");
    turn(0, Access::Write, true);
    let read = turn(1, Access::Read, true);
    assert!(!read.on_fault && read.bytes_moved == n, "moved to its reader: {read:?}");
    let reader = t.ctx.pagemap(t.dev[1], 0).unwrap();
    for round in 0..2 {
        let (w, r) = (turn(0, Access::Write, true), turn(1, Access::Read, true));
        assert!(w.bytes_moved == 0 && r.bytes_moved == 0, "round {round}: {w:?} {r:?}");
        assert_eq!(w.pagemap, Some(reader), "written where its reader holds it");
    }
}

/// A small span one launch reads and writes (an argument passed twice, a
/// kernel that updates in place): with reports, the cascade serves the
/// read where the data lies, bound in system memory, and the same launch's
/// write there too, not moved (the launch uses it once; a move would pay
/// the copy and the TLB invalidation of the binding just made). The next
/// launch's write, with no read before it, moves it.
#[test]
fn a_small_span_one_launch_reads_and_writes_is_served_where_it_lies() {
    let t = setup("dgpu", false);
    let (s, n) = (BUF + MIB / 16, MIB / 8);
    t.sim.cpu_access(BUF, 2 * MIB, sim::Access::Write, 1).unwrap();
    t.ctx.launch_done(t.dev[0], 1_000).unwrap(); // the runtime reports launches
    let place = |a: Access| {
        let pm = t.ctx.resolve(t.dev[0], 0, s, n, a).unwrap();
        (pm, t.ctx.alloc_vram(t.dev[0], s, n, pm, AllocFlags::ENGINE).unwrap())
    };
    let (pm, read) = place(Access::Read);
    assert!(pm == Pagemap::System && read.pagemap == Some(Pagemap::System) && read.bytes_moved == 0, "{read:?}");
    let (pm, write) = place(Access::Write);
    assert!(pm == Pagemap::System && write.bytes_moved == 0, "the same launch's write: {write:?}");
    assert_eq!(t.sim.placement(s, n), Placement::System);
    t.ctx.launch_submitted(t.dev[0]).unwrap();
    t.ctx.launch_done(t.dev[0], 1_000).unwrap();
    let (pm, next) = place(Access::Write);
    let vram = t.ctx.pagemap(t.dev[0], 0).unwrap();
    assert!(pm == vram && next.pagemap == Some(vram) && next.bytes_moved > 0, "the next launch's write: {next:?}");
}

/// A buffer both devices write, each its half (a solver's vector), is no
/// hand-off: it stays with the faults when reports begin, each half where
/// its writer is.
#[test]
fn a_buffer_both_devices_write_stays_with_the_faults() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let turn = |d: usize, report: bool| t.turn(d, (BUF, 16 * MIB), Access::Write, (BUF + d as u64 * 8 * MIB, 8 * MIB), report);
    turn(0, false);
    assert!(turn(1, false).on_fault, "the first turn");
    for round in 0..3 {
        let (a, b) = (turn(0, true), turn(1, true));
        assert!(a.bytes_moved == 0 && b.bytes_moved == 0 && b.on_fault, "round {round}: {a:?} {b:?}");
    }
    assert_eq!(t.sim.placement(BUF + 8 * MIB, 8 * MIB), Placement::Vram { device: 1, instance: 1 });
}

/// A span the runtime places ignoring the thrash guard (one a kernel uses
/// atomically, which runs in local VRAM whatever the faults do) is moved
/// at every turn, not left to the faults.
#[test]
fn a_span_placed_ignoring_the_thrash_guard_is_moved_at_each_turn() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 4 * MIB, sim::Access::Write, 1).unwrap();
    let insist = AllocFlags::IGNORE_THRASH_GUARD;
    assert_eq!(t.launch(0, BUF, 4 * MIB, Access::Atomic, insist).bytes_moved, 4 * MIB);
    let second = t.launch(1, BUF, 4 * MIB, Access::Atomic, insist);
    assert!(!second.on_fault && second.bytes_moved == 4 * MIB, "{second:?}");
    let third = t.launch(0, BUF, 4 * MIB, Access::Atomic, insist);
    assert!(!third.on_fault && third.bytes_moved == 4 * MIB, "{third:?}");
}

/// A piece sharing a 2 MiB chunk with a neighbour moved to this device,
/// recorded in another device's VRAM: the unprivileged page table says
/// only "not in system memory", which that record explains too, so it is
/// not taken to have come along on a look; where the chunk was uncut in
/// the moving VM, the kernel's range took it and its record followed the
/// move (`Context::carried_along`). Either way it is in this device's
/// VRAM before its launch, which takes no fault.
#[test]
fn a_piece_in_another_vram_is_not_taken_to_have_come_with_its_chunk() {
    let t = setup("2dgpu-p2p", false);
    // A 3 MiB input and a 512 KiB piece packed after it, in one chunk with
    // the input's tail.
    let (input, piece) = (BUF, BUF + 3 * MIB);
    t.sim.cpu_access(BUF, 4 * MIB, sim::Access::Write, 1).unwrap();
    let half = MIB + MIB / 2;
    t.launch(0, input, half, Access::Read, AllocFlags::empty());
    t.launch(0, piece, MIB / 2, Access::Atomic, AllocFlags::IGNORE_THRASH_GUARD);
    t.launch(1, input + half, half, Access::Read, AllocFlags::empty());
    let faults = t.sim.counters().gpu_faults;
    let p = t.launch(1, piece, MIB / 2, Access::Atomic, AllocFlags::IGNORE_THRASH_GUARD);
    assert_eq!(t.sim.bytes_in(piece, MIB / 2, 1, 1).unwrap(), MIB / 2, "in device 1's VRAM before the launch: {p:?}");
    assert_eq!(t.sim.counters().gpu_faults, faults, "moved before the launch");
}

/// The same, round after round, as a runtime with launch reports places
/// it (a histogram packed after the input both devices split, written by
/// the CPU each round): where any piece of the histogram's records is in
/// the other device's VRAM it did not come along with the input's chunk,
/// and device 1's atomic placement moves it before its launch.
#[test]
fn a_piece_partly_in_another_vram_is_not_taken_to_have_come_with_its_chunk() {
    let t = setup("2dgpu-p2p", false);
    // The input ends inside the histogram's first page (packed: each span
    // the runtime asks for is widened to whole pages).
    let (input, hist, size) = (BUF, BUF + 0x1e2_0000, 1688 * 1024);
    let half = (hist - input) / 2;
    let second = (input + half, hist + 4096 - (input + half));
    // One mapping for both, ending inside the histogram's chunk.
    t.sim.munmap(input, 64 * MIB).unwrap();
    t.sim.mmap(input, hist + size - input, false).unwrap();
    t.sim.cpu_access(input, hist - input, sim::Access::Write, 1).unwrap();
    let place = |d: usize, start: u64, len: u64, a: Access| {
        let insist = if a == Access::Atomic { AllocFlags::IGNORE_THRASH_GUARD } else { AllocFlags::empty() };
        let pm = t.ctx.resolve(t.dev[d], 0, start, len, a).unwrap();
        t.ctx.alloc_vram(t.dev[d], start, len, pm, AllocFlags::ENGINE | insist).unwrap()
    };
    let access = |d: usize, start: u64, len: u64, a: sim::Access| {
        let dev = t.ctx.device(t.dev[d]).unwrap();
        t.sim.gpu_access(dev.fd, dev.vm_id, 0, start, len, a, 7).unwrap();
    };
    for round in 0..4 {
        t.sim.cpu_access(hist, size, sim::Access::Write, 2).unwrap();
        place(0, input, half, Access::Read);
        place(0, hist, size, Access::Atomic);
        access(0, input, half, sim::Access::Read);
        access(0, hist, size, sim::Access::Atomic);
        t.ctx.launch_done(t.dev[0], 1_000_000).unwrap();
        place(1, second.0, second.1, Access::Read);
        let p = place(1, hist, size, Access::Atomic);
        access(1, second.0, second.1, sim::Access::Read);
        let faults = t.sim.counters().gpu_faults;
        access(1, hist, size, sim::Access::Atomic);
        assert_eq!(t.sim.counters().gpu_faults, faults, "round {round}: placed before the launch: {p:?}");
        t.ctx.launch_done(t.dev[1], 1_000_000).unwrap();
        t.sim.cpu_access(hist, size, sim::Access::Read, 0).unwrap();
    }
}

/// One device with 32 MiB of VRAM and 48 MiB the CPU wrote at BUF.
fn small_vram() -> (Arc<Sim>, Context, DeviceHandle, Pagemap) {
    let mut topo = Topology::preset("dgpu").unwrap();
    topo.devices[0].vram_per_tile = 32 * MIB;
    let sim = Sim::new(topo).unwrap();
    let ctx = Context::new(Box::new(sim::driver::SimDriver::new(sim.clone())), Config::default());
    let dev = ctx.open_index(0).unwrap();
    let vram = ctx.pagemap(dev, 0).unwrap();
    sim.cpu_access(BUF, 48 * MIB, sim::Access::Write, 1).unwrap();
    (sim, ctx, dev, vram)
}

/// A span larger than the tile's whole VRAM is left to the faults: a
/// prefetch of it would evict its own beginning before the launch.
#[test]
fn a_span_larger_than_the_vram_is_left_to_the_faults() {
    let (_sim, ctx, dev, vram) = small_vram();
    let p = ctx.alloc_vram(dev, BUF, 48 * MIB, vram, AllocFlags::ENGINE).unwrap();
    assert!(p.on_fault && p.bytes_moved == 0, "{p:?}");
    let p = ctx.alloc_vram(dev, BUF, 16 * MIB, vram, AllocFlags::ENGINE).unwrap();
    assert_eq!(p.bytes_moved, 16 * MIB, "{p:?}");
}

/// Where the runtime reports launches, the spans one launch asks for are
/// known together: a span that would make them larger than the tile's
/// VRAM is left to the faults, since placing it would evict the launch's
/// own spans before it reads them.
#[test]
fn a_launch_larger_than_the_vram_leaves_the_excess_to_the_faults() {
    let (_sim, ctx, dev, vram) = small_vram();
    ctx.launch_done(dev, 1_000).unwrap(); // the runtime reports launches
    let a = ctx.alloc_vram(dev, BUF, 24 * MIB, vram, AllocFlags::ENGINE).unwrap();
    assert!(!a.on_fault, "{a:?}");
    let b = ctx.alloc_vram(dev, BUF + 24 * MIB, 16 * MIB, vram, AllocFlags::ENGINE).unwrap();
    assert!(b.on_fault && b.bytes_moved == 0, "24 + 16 MiB in 32 MiB: {b:?}");
    // The next launch starts afresh.
    ctx.launch_done(dev, 1_000).unwrap();
    let c = ctx.alloc_vram(dev, BUF + 24 * MIB, 16 * MIB, vram, AllocFlags::ENGINE | AllocFlags::PREFETCH_NOW).unwrap();
    assert!(!c.on_fault, "{c:?}");
}

/// A span of the launch served in system memory takes no room in the VRAM:
/// the room check counts the launch's spans placed there, not every span
/// it lists (a pipeline's input held in system memory by a hand-off left
/// its output to the faults, which then moved it back and forth).
#[test]
fn a_span_served_in_system_memory_takes_no_room_in_the_launch() {
    let (sim, ctx, dev, vram) = small_vram();
    ctx.launch_done(dev, 1_000).unwrap(); // the runtime reports launches
    let a = ctx.alloc_vram(dev, BUF, 24 * MIB, Pagemap::System, AllocFlags::ENGINE).unwrap();
    assert_eq!(a.pagemap, Some(Pagemap::System), "{a:?}");
    let b = ctx.alloc_vram(dev, BUF + 24 * MIB, 16 * MIB, vram, AllocFlags::ENGINE).unwrap();
    assert!(!b.on_fault && b.bytes_moved == 16 * MIB, "16 MiB in 32 MiB beside 24 MiB in system memory: {b:?}");
    assert_eq!(sim.placement(BUF + 24 * MIB, 16 * MIB), Placement::Vram { device: 0, instance: 1 });
    // Listed again in the same launch, the span in system memory is taken
    // out once: a third span that does not fit beside the second is still
    // left to the faults.
    ctx.alloc_vram(dev, BUF, 24 * MIB, Pagemap::System, AllocFlags::ENGINE).unwrap();
    sim.cpu_access(BUF + 48 * MIB, 20 * MIB, sim::Access::Write, 1).unwrap();
    let c = ctx.alloc_vram(dev, BUF + 48 * MIB, 20 * MIB, vram, AllocFlags::ENGINE).unwrap();
    assert!(c.on_fault && c.bytes_moved == 0, "16 + 20 MiB in 32 MiB: {c:?}");
}

/// Under the cascade (launch reports), a span read again after more than
/// the VRAM's worth of other spans (a cyclic scan larger than the VRAM) is
/// served in place again rather than bought: LRU eviction would take it
/// out before its next read. Within the VRAM the second read buys it
/// (its launches in system memory cost more than its move).
#[test]
fn a_scan_larger_than_the_vram_is_not_bought_round_after_round() {
    for (spans, bought) in [(4u64, false), (2, true)] {
        let (_sim, ctx, dev, vram) = small_vram();
        ctx.launch_done(dev, 1_000).unwrap(); // the runtime reports launches
        let span = 12 * MIB;
        let mut second = Vec::new();
        for round in 0..2 {
            for i in 0..spans {
                let start = BUF + i * span;
                let pm = ctx.resolve(dev, 0, start, span, Access::Read).unwrap();
                ctx.alloc_vram(dev, start, span, pm, AllocFlags::ENGINE).unwrap();
                ctx.launch_submitted(dev).unwrap();
                ctx.launch_done(dev, 100_000_000).unwrap();
                if round == 1 {
                    second.push(pm);
                }
            }
        }
        let want = if bought { vram } else { Pagemap::System };
        assert!(second.iter().all(|&pm| pm == want), "{spans} spans of 12 MiB in 32 MiB: {second:?}");
    }
}

/// Under the cascade (launch reports), a span in system memory that a
/// device read in place is bought on a later read only once the launches
/// that read it there cost its move, at the rate the context's own timed
/// copies out of system memory took (policy/rent.rs, a ski rental): cheap
/// launches keep renting it, round after round; the launch that pays the
/// rest makes the next read buy. The copy that prices it is timed before
/// reports begin, of a span the records put in system memory or one they
/// do not place (sampled); a birth in VRAM before it (nothing copied, far
/// cheaper) prices nothing.
#[test]
fn a_read_in_system_memory_is_bought_once_its_launches_cost_its_move() {
    for recorded in [false, true] {
        let (sim, ctx, dev, vram) = small_vram();
        let (span, other, fresh) = (BUF, BUF + 24 * MIB, BUF + 48 * MIB);
        let born = ctx.alloc_vram(dev, fresh, 4 * MIB, vram, AllocFlags::empty()).unwrap();
        assert_eq!(born.pagemap, Some(vram), "{born:?}");
        if recorded {
            ctx.alloc_vram(dev, other, 8 * MIB, Pagemap::System, AllocFlags::empty()).unwrap();
        }
        // A copy of 8 MiB before any report (an engine placement that moves).
        let t0 = sim.now_ns();
        let m = ctx.alloc_vram(dev, other, 8 * MIB, vram, AllocFlags::ENGINE).unwrap();
        assert_eq!(m.bytes_moved, 8 * MIB, "{m:?}");
        let price = sim.now_ns() - t0;
        ctx.launch_done(dev, 1_000).unwrap(); // the runtime reports launches
        let read = |report_ns: u64| {
            let pm = ctx.resolve(dev, 0, span, 8 * MIB, Access::Read).unwrap();
            let p = ctx.alloc_vram(dev, span, 8 * MIB, pm, AllocFlags::ENGINE).unwrap();
            ctx.launch_submitted(dev).unwrap();
            ctx.launch_done(dev, report_ns).unwrap();
            (pm, p.bytes_moved)
        };
        for round in 0..4 {
            assert_eq!(read(price / 8), (Pagemap::System, 0), "recorded {recorded}, round {round}: its launches cost less than its move so far");
        }
        assert_eq!(read(price), (Pagemap::System, 0), "recorded {recorded}: this launch pays the rest");
        assert_eq!(read(1_000), (vram, 8 * MIB), "recorded {recorded}: bought");
    }
}

/// Before any move was timed nothing prices the rent: a span in system
/// memory is bought on its second read, however cheap its launches, as
/// without reports.
#[test]
fn a_read_in_system_memory_is_bought_on_its_second_read_before_any_move_was_timed() {
    let (_sim, ctx, dev, vram) = small_vram();
    ctx.launch_done(dev, 1_000).unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let pm = ctx.resolve(dev, 0, BUF, 8 * MIB, Access::Read).unwrap();
        ctx.alloc_vram(dev, BUF, 8 * MIB, pm, AllocFlags::ENGINE).unwrap();
        ctx.launch_submitted(dev).unwrap();
        ctx.launch_done(dev, 1_000).unwrap();
        seen.push(pm);
    }
    assert_eq!(seen, [Pagemap::System, vram]);
}

/// With reports, a read over a peer link is rented until the reports of
/// the launches it was served to have paid the span's move, then bought
/// from the kernel's own faults (policy/rent.rs): the reader's VMs stop
/// preferring the peer and its kernel faults the span into its own VRAM
/// (a service handed over to the other device). Placed but not yet
/// reported, a launch pays nothing.
#[test]
fn a_read_over_a_peer_link_is_bought_from_the_faults_once_its_reports_pay_the_move() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let (vram0, vram1) = (t.ctx.pagemap(t.dev[0], 0).unwrap(), t.ctx.pagemap(t.dev[1], 0).unwrap());
    // Device 0 moves it (the timed move prices the buy), and reports.
    assert_eq!(t.launch(0, BUF, 16 * MIB, Access::Read, AllocFlags::empty()).bytes_moved, 16 * MIB);
    t.ctx.launch_done(t.dev[0], 1_000_000).unwrap();
    let read = |report: bool| {
        let p = t.turn(1, (BUF, 16 * MIB), Access::Read, (BUF, 16 * MIB), false);
        if report {
            t.ctx.launch_done(t.dev[1], 2_000_000).unwrap();
        }
        p
    };
    for round in 0..30 {
        let p = read(false);
        assert_eq!((p.pagemap, p.on_fault), (Some(vram0), false), "round {round}, no report: over the link, {p:?}");
    }
    t.ctx.launch_done(t.dev[1], 2_000_000).unwrap();
    let mut rented = 0;
    let bought = loop {
        let p = read(true);
        if p.pagemap != Some(vram0) {
            break p;
        }
        rented += 1;
        assert!(rented < 30, "never bought");
    };
    // A pass of 16 MiB at 20 GB/s (0.84 ms a report) against a move of
    // several ms: a few reports.
    assert!(rented >= 2, "bought after {rented} reports");
    assert_eq!((bought.pagemap, bought.on_fault, bought.bytes_moved), (Some(vram1), true, 0), "{bought:?}");
    assert_eq!(t.sim.placement(BUF, 16 * MIB), Placement::Vram { device: 1, instance: 1 }, "its faults took it");
    let after = t.sim.counters();
    let p = read(true);
    assert_eq!((p.pagemap, p.on_fault), (Some(vram1), true), "{p:?}");
    let k = t.sim.counters();
    assert_eq!((k.bytes_device_to_device, k.remote_access_bytes), (after.bytes_device_to_device, after.remote_access_bytes), "local now");
}

/// Behind a runtime that submits its launches and never reports them (a
/// host running ahead of its queue), each launch a read over a peer link
/// was served to owes a pass (policy/rent.rs): once they owe the span's
/// move, the read is bought from the faults, which take only the half
/// the reader's kernel reads. Without submissions it rents on (the test
/// above: nothing tells one launch's resolves from the next launch's).
#[test]
fn a_read_over_a_peer_link_behind_a_host_that_never_reports_is_bought_once_its_launches_owe_the_move() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
    let (vram0, vram1) = (t.ctx.pagemap(t.dev[0], 0).unwrap(), t.ctx.pagemap(t.dev[1], 0).unwrap());
    // Device 0 moves all of it (the timed move prices the buy).
    assert_eq!(t.launch(0, BUF, 16 * MIB, Access::Read, AllocFlags::empty()).bytes_moved, 16 * MIB);
    t.ctx.launch_submitted(t.dev[0]).unwrap();
    // Device 1's kernel reads the second half of the span it is placed.
    let half = (BUF + 8 * MIB, 8 * MIB);
    let mut rented = 0;
    let bought = loop {
        let p = t.turn(1, (BUF, 16 * MIB), Access::Read, half, false);
        t.ctx.launch_submitted(t.dev[1]).unwrap();
        if p.pagemap != Some(vram0) {
            break p;
        }
        rented += 1;
        assert!(rented < 100, "never bought");
    };
    // A pass of 16 MiB at 20 GB/s (0.84 ms) against a move of about 7 ms:
    // bought once the launches before this one owe it, about nine.
    assert!((7..=11).contains(&rented), "bought after {rented} launches");
    assert_eq!((bought.pagemap, bought.on_fault, bought.bytes_moved), (Some(vram1), true, 0), "{bought:?}");
    assert_eq!(t.sim.placement(half.0, half.1), Placement::Vram { device: 1, instance: 1 }, "its faults took its half");
    assert_eq!(t.sim.placement(BUF, 8 * MIB), Placement::Vram { device: 0, instance: 1 }, "the other half stays");
}

/// A read of a span of a chunk or more that a linked peer's VRAM holds is
/// served there, over the link, under either engine: no move (its faults
/// only bind the peer's pages), where the kernel's faults would pull it
/// over (devices splitting one input each fault what the other holds).
/// Not below a chunk, and not against the runtime's own advice for the
/// reader.
#[test]
fn a_read_of_what_a_linked_peer_holds_is_served_over_the_link() {
    for rules in [false, true] {
        let t = setup("2dgpu-p2p", rules);
        let (big, small) = (BUF, BUF + 8 * MIB);
        t.sim.cpu_access(BUF, 16 * MIB, sim::Access::Write, 1).unwrap();
        let vram0 = t.ctx.pagemap(t.dev[0], 0).unwrap();
        for (s, n) in [(big, 4 * MIB), (small, MIB)] {
            t.ctx.alloc_vram(t.dev[0], s, n, vram0, AllocFlags::empty()).unwrap();
        }
        let before = t.sim.counters();
        let p = t.launch(1, big, 4 * MIB, Access::Read, AllocFlags::empty());
        assert_eq!((p.pagemap, p.bytes_moved, p.on_fault), (Some(vram0), 0, false), "rules {rules}: {p:?}");
        assert_eq!(t.sim.placement(big, 4 * MIB), Placement::Vram { device: 0, instance: 1 }, "rules {rules}: stays");
        let k = t.sim.counters();
        // Its faults bind the peer's pages (one per 2 MiB range), nothing moves.
        assert_eq!((k.bytes_device_to_device, k.bytes_to_vram, k.gpu_faults - before.gpu_faults), (before.bytes_device_to_device, before.bytes_to_vram, 2), "rules {rules}: nothing moved");
        assert!(k.remote_access_bytes > before.remote_access_bytes, "rules {rules}: read over the link");
        // Below a chunk: the reader's own VRAM, as before.
        assert_ne!(t.ctx.resolve(t.dev[1], 0, small, MIB, Access::Read).unwrap(), vram0, "rules {rules}");
        // Advice for the reader on a piece of a larger span keeps it out:
        // that piece is not sent to the peer.
        t.ctx.set_preferred_on(Some(t.dev[1]), big + 4 * MIB, 2 * MIB, Pagemap::System).unwrap();
        assert_ne!(t.ctx.resolve(t.dev[1], 0, big, 6 * MIB, Access::Read).unwrap(), vram0, "rules {rules}");
        // The runtime's advice for the reader wins.
        let vram1 = t.ctx.pagemap(t.dev[1], 0).unwrap();
        t.ctx.set_preferred_on(Some(t.dev[1]), big, 4 * MIB, vram1).unwrap();
        assert_eq!(t.ctx.resolve(t.dev[1], 0, big, 4 * MIB, Access::Read).unwrap(), vram1, "rules {rules}");
    }
    // 6.18 has no multi-device madvise: once a madvise says so, the reader's
    // own VRAM, as the kernel's faults would place it.
    let mut topo = Topology::preset("2dgpu-p2p").unwrap();
    topo.set_kernel(sim::KernelVersion::V6_18);
    let sim = Sim::new(topo).unwrap();
    let ctx = Context::new(Box::new(sim::driver::SimDriver::new(sim.clone())), Config::default());
    let d: Vec<_> = (0..2).map(|i| ctx.open_index(i).unwrap()).collect();
    sim.cpu_access(BUF, 4 * MIB, sim::Access::Write, 1).unwrap();
    let vram0 = ctx.pagemap(d[0], 0).unwrap();
    ctx.alloc_vram(d[0], BUF, 4 * MIB, vram0, AllocFlags::empty()).unwrap();
    assert_eq!(ctx.resolve(d[1], 0, BUF, 4 * MIB, Access::Read).unwrap(), vram0, "not known yet");
    let p = ctx.alloc_vram(d[1], BUF, 4 * MIB, vram0, AllocFlags::ENGINE).unwrap();
    assert!(p.fell_back, "{p:?}");
    // Another span device 0 holds: device 1 reads it in its own VRAM.
    let c = BUF + 8 * MIB;
    sim.cpu_access(c, 4 * MIB, sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(d[0], c, 4 * MIB, vram0, AllocFlags::empty()).unwrap();
    assert_eq!(ctx.resolve(d[1], 0, c, 4 * MIB, Access::Read).unwrap(), ctx.pagemap(d[1], 0).unwrap());
}

/// A span a peer's read left preferring the peer on every VM, then written
/// by the reader: the plain engine leaves it to the faults (devices take
/// turns at it), and the faults map the peer's pages
/// (`xe_vma_resolve_pagemap`): the report says so, not the reader's VRAM.
#[test]
fn a_span_left_to_the_faults_is_reported_where_the_vm_preference_puts_it() {
    let t = setup("2dgpu-p2p", false);
    t.sim.cpu_access(BUF, 4 * MIB, sim::Access::Write, 1).unwrap();
    let vram0 = t.ctx.pagemap(t.dev[0], 0).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, 4 * MIB, vram0, AllocFlags::empty()).unwrap();
    let p = t.launch(1, BUF, 4 * MIB, Access::Read, AllocFlags::empty());
    assert_eq!(p.pagemap, Some(vram0), "read over the link: {p:?}");
    let p = t.launch(1, BUF, 4 * MIB, Access::Write, AllocFlags::empty());
    assert!(p.on_fault, "{p:?}");
    assert_eq!(p.pagemap, Some(vram0), "the faults leave it in the peer: {p:?}");
    assert_eq!(t.sim.placement(BUF, 4 * MIB), Placement::Vram { device: 0, instance: 1 });
    // A span of two such records, the same.
    let b = BUF + 8 * MIB;
    t.sim.cpu_access(b, 8 * MIB, sim::Access::Write, 1).unwrap();
    for s in [b, b + 4 * MIB] {
        t.ctx.alloc_vram(t.dev[0], s, 4 * MIB, vram0, AllocFlags::empty()).unwrap();
        assert_eq!(t.launch(1, s, 4 * MIB, Access::Read, AllocFlags::empty()).pagemap, Some(vram0));
    }
    let p = t.launch(1, b, 8 * MIB, Access::Write, AllocFlags::empty());
    assert!(p.on_fault && p.pagemap == Some(vram0), "{p:?}");
    assert_eq!(t.sim.placement(b, 8 * MIB), Placement::Vram { device: 0, instance: 1 });
    // Under the kernel's default (DEFAULT_DEVICE) the faults take it into
    // the faulting device's VRAM, whatever the placement asked.
    let c = BUF + 32 * MIB;
    t.sim.cpu_access(c, 4 * MIB, sim::Access::Write, 1).unwrap();
    t.launch(0, c, 4 * MIB, Access::Write, AllocFlags::empty());
    let p = t.ctx.alloc_vram(t.dev[1], c, 4 * MIB, Pagemap::System, AllocFlags::ENGINE).unwrap();
    let vram1 = t.ctx.pagemap(t.dev[1], 0).unwrap();
    assert!(p.on_fault && p.pagemap == Some(vram1), "{p:?}");
    let d1 = t.ctx.device(t.dev[1]).unwrap();
    t.sim.gpu_access(d1.fd, d1.vm_id, 0, c, 4 * MIB, sim::Access::Read, 7).unwrap();
    assert_eq!(t.sim.placement(c, 4 * MIB), Placement::Vram { device: 1, instance: 1 });
}

/// A hand-off on devices without a link: device 0 writes a span, device
/// 1's placement leaves it to its faults (a span devices take turns at),
/// and its launch is reported. The records still put the span in device
/// 0's VRAM, and an unprivileged page-table read sees device 1's VRAM
/// alike; the report says device 1's faults ran on it, so device 0's next
/// placement does not find it "in place" where the faults took it
/// (`Record::faulted_by`). Once device 0's own reported faults took it
/// back, the mark is spent: found in place again.
#[test]
fn a_span_a_reported_launch_left_to_its_faults_is_not_found_in_place_where_it_was() {
    let t = setup("2dgpu-nolink", false);
    let span = (BUF, 10 * MIB + 4096);
    let place = |d: usize| {
        let pm = t.ctx.resolve(t.dev[d], 0, span.0, span.1, Access::Write).unwrap();
        t.ctx.alloc_vram(t.dev[d], span.0, span.1, pm, AllocFlags::ENGINE).unwrap()
    };
    let p = t.turn(0, span, Access::Write, span, false);
    assert_eq!(t.sim.placement(span.0, span.1), Placement::Vram { device: 0, instance: 1 }, "{p:?}");
    let p = t.turn(1, span, Access::Read, span, true);
    assert!(p.on_fault, "devices take turns at it: left to the faults, {p:?}");
    assert_eq!(t.sim.placement(span.0, span.1), Placement::Vram { device: 1, instance: 1 }, "device 1's faults took it");
    let p = place(0);
    assert!(!p.in_place, "not found in place in device 0's VRAM: {p:?}");
    // Device 0's launch runs (its faults take it back) and is reported.
    let dev = t.ctx.device(t.dev[0]).unwrap();
    t.sim.gpu_access(dev.fd, dev.vm_id, 0, span.0, span.1, sim::Access::Write, 7).unwrap();
    t.ctx.launch_done(t.dev[0], 1_000_000).unwrap();
    assert_eq!(t.sim.placement(span.0, span.1), Placement::Vram { device: 0, instance: 1 });
    let p = place(0);
    assert!(p.in_place && p.pagemap == Some(t.ctx.pagemap(t.dev[0], 0).unwrap()), "the mark is spent: {p:?}");
}

/// Devices without a link share a buffer the runtime knows whole: device
/// 0 reads all of it, device 1 writes its second half, and device 1's
/// placements leave it to its faults (a span devices take turns at), its
/// launches reported. Device 0 asks for it again: the look takes it for
/// device 1's (the move counts), and device 0's own faults take back what
/// its kernel reads, where a prefetch would move all of device 1's half
/// back before the launch.
#[test]
fn a_span_another_devices_faults_took_is_left_to_the_readers_faults() {
    let t = setup("2dgpu-nolink", false);
    let span = (BUF, 16 * MIB);
    let second = (BUF + 8 * MIB, 8 * MIB);
    t.sim.cpu_access(span.0, span.1, sim::Access::Write, 1).unwrap();
    let p = t.turn(0, span, Access::Read, span, false);
    assert_eq!(t.sim.placement(span.0, span.1), Placement::Vram { device: 0, instance: 1 }, "{p:?}");
    for _ in 0..2 {
        let p = t.turn(1, span, Access::Write, second, true);
        assert!(p.on_fault, "{p:?}");
    }
    assert_eq!(t.sim.placement(second.0, second.1), Placement::Vram { device: 1, instance: 1 });
    let moves = t.ctx.query(span.0, span.1).unwrap().moves_in_window;
    let pm = t.ctx.resolve(t.dev[0], 0, span.0, span.1, Access::Read).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], span.0, span.1, pm, AllocFlags::ENGINE).unwrap();
    assert!(p.on_fault && p.bytes_moved == 0, "left to device 0's faults: {p:?}");
    assert_eq!(t.sim.placement(second.0, second.1), Placement::Vram { device: 1, instance: 1 }, "nothing moved before the launch");
    assert_eq!(t.ctx.query(span.0, span.1).unwrap().moves_in_window, moves + 1, "the move counts");
}

/// An input the CPU wrote and a histogram of `h` bytes packed after it
/// (sharing the input's last page and 2 MiB chunk); the runtime then
/// placed that chunk in device 1's VRAM from device 0 (a peer's): that
/// advice, the same on every VM, covers the histogram's part too. Returns
/// the histogram's span and the chunk's start.
fn packed_histogram(t: &T, h: u64) -> (u64, u64, u64) {
    const PAGE: u64 = 4096;
    let (input, n) = (BUF, 16_674_000u64.next_multiple_of(PAGE));
    let hist = BUF + 16_674_000 / PAGE * PAGE;
    t.sim.cpu_access(input, n, sim::Access::Write, 1).unwrap();
    t.sim.cpu_access(hist, h, sim::Access::Write, 2).unwrap();
    let tail = hist / (2 * MIB) * (2 * MIB);
    t.ctx.alloc_vram(t.dev[0], tail, 2 * MIB, t.ctx.pagemap(t.dev[1], 0).unwrap(), AllocFlags::empty()).unwrap();
    (hist, h, tail)
}

/// Devices 0, 2 and 0 take the histogram in turn for their atomics: each
/// turn moves it into the asking device's VRAM with no madvise and no 4 KiB
/// migration.
fn atomic_turns_leave_the_chunk_uncut(t: &T, hist: u64, h: u64) {
    for d in [0usize, 2, 0] {
        let before = t.sim.counters();
        let p = t.launch(d, hist, h, Access::Atomic, AllocFlags::IGNORE_THRASH_GUARD);
        let after = t.sim.counters();
        assert!(matches!(t.sim.placement(hist, h), Placement::Vram { device, .. } if device == d as u32), "{p:?}");
        assert_eq!(after.madvise_calls, before.madvise_calls, "device {d}: no advice cut the chunk");
        assert_eq!(after.migrations_4k, before.migrations_4k, "device {d}: not moved in 4 KiB ranges");
    }
}

/// A histogram packed after its input in one 2 MiB chunk, which devices
/// take in turn for their atomics: its placement into the asking device's
/// VRAM issues no madvise that would cut the chunk. Atomics fault into
/// local VRAM whatever the preferred location says
/// (`xe_vma_need_vram_for_atomic`, docs/kernel-model.md §3.2), so the
/// advice changes nothing for them, while the cut made the kernel move the
/// histogram in 4 KiB ranges at every turn.
#[test]
fn an_atomic_span_sharing_a_chunk_moves_without_advice_that_cuts_the_chunk() {
    let t = setup("max-node", false);
    let (hist, h, tail) = packed_histogram(&t, 40 * 1024);
    atomic_turns_leave_the_chunk_uncut(&t, hist, h);
    // An explicit request is executed as asked, its advice included (the
    // flag is the engine's).
    let before = t.sim.counters();
    t.ctx.alloc_vram(t.dev[2], hist, h, t.ctx.pagemap(t.dev[2], 0).unwrap(), AllocFlags::IGNORE_THRASH_GUARD).unwrap();
    assert!(t.sim.counters().madvise_calls > before.madvise_calls, "the explicit request advised");
    // Where the runtime set the device atomic mode, a device with device
    // atomics on system memory follows the preferred location for them
    // (docs/kernel-model.md §14, row 22): the advice is applied.
    t.ctx.alloc_vram(t.dev[0], tail, 2 * MIB, t.ctx.pagemap(t.dev[1], 0).unwrap(), AllocFlags::empty()).unwrap();
    t.ctx.set_atomic(hist, h, xesvm::uapi::DRM_XE_ATOMIC_DEVICE).unwrap();
    let before = t.sim.counters();
    t.launch(2, hist, h, Access::Atomic, AllocFlags::IGNORE_THRASH_GUARD);
    assert!(t.sim.counters().madvise_calls > before.madvise_calls, "the device atomic mode: advised");
}

/// A histogram that runs on past the chunk it shares: the advice over that
/// chunk covers its first part only, so its pieces' preferred locations
/// differ while their atomic mode is the same (the two are separate
/// madvise attributes). Its known default mode still spares the chunk the
/// cut: a summary that lost it with the preferred location advised the
/// span at every turn (a two-device atomics program 1.22x slower).
#[test]
fn an_atomic_span_keeps_its_known_mode_where_advice_covers_part_of_it() {
    let t = setup("max-node", false);
    let (hist, h, _) = packed_histogram(&t, 1536 * 1024);
    atomic_turns_leave_the_chunk_uncut(&t, hist, h);
}

/// The same histogram's un-advised prefetch moves the whole uncut chunk,
/// the rest of which a peer's request put in device 1: those records then
/// say device 0, so device 1's next placement of its part moves it back,
/// not "in place" in a VRAM it left.
#[test]
fn the_rest_of_a_chunk_an_atomic_prefetch_took_along_is_placed_again() {
    let t = setup("max-node", false);
    let (hist, h, tail) = packed_histogram(&t, 40 * 1024);
    t.launch(0, hist, h, Access::Atomic, AllocFlags::IGNORE_THRASH_GUARD);
    assert_eq!(t.sim.placement(tail, hist - tail), Placement::Vram { device: 0, instance: 1 }, "the uncut chunk moved whole");
    assert_eq!(t.ctx.query(tail, hist - tail).unwrap().residency, Some(t.ctx.pagemap(t.dev[0], 0).unwrap()), "its rest's records say where it went");
    // Moved back now, or left to the launch's faults (a multi-tile device's
    // rule 6), never reported in place.
    let p = t.launch(1, tail, hist - tail, Access::Read, AllocFlags::empty());
    assert!(!p.in_place && (p.bytes_moved > 0 || p.on_fault), "{p:?}");
    assert_eq!(t.sim.placement(tail, hist - tail), Placement::Vram { device: 1, instance: 1 });
}

/// Where an earlier madvise already cut the chunk in the prefetching VM
/// (a cut is never undone there), the kernel cannot use a 2 MiB range: the
/// un-advised atomic prefetch moves only the span's own range, so the rest
/// of the chunk did not come along and its records keep their place. The
/// library asks the kernel for the VMAs over the chunk first
/// (VM_QUERY_MEM_RANGE_ATTRS) and advises as before where there are
/// several.
#[test]
fn a_chunk_an_earlier_madvise_cut_is_not_taken_as_carried_along() {
    const K: u64 = 1024;
    for preset in ["2dgpu-p2p", "max-node"] {
        let t = setup(preset, false);
        let vram = |d: usize| t.ctx.pagemap(t.dev[d], 0).unwrap();
        let (a, z, hist) = (BUF, BUF + 1536 * K, BUF + MIB);
        t.sim.cpu_access(BUF, 2 * MIB, sim::Access::Write, 1).unwrap();
        // The chunk's tail, explicitly in system memory; then a peer's part,
        // whose madvise cuts the chunk at a + 512 KiB.
        t.ctx.alloc_vram(t.dev[0], z, 512 * K, Pagemap::System, AllocFlags::empty()).unwrap();
        t.ctx.alloc_vram(t.dev[0], a, 512 * K, vram(1), AllocFlags::empty()).unwrap();
        assert!(matches!(t.sim.placement(a, 512 * K), Placement::Vram { device: 1, .. }), "{preset}");
        t.launch(0, hist, 40 * K, Access::Atomic, AllocFlags::IGNORE_THRASH_GUARD);
        assert!(matches!(t.sim.placement(hist, 40 * K), Placement::Vram { device: 0, .. }), "{preset}");
        assert!(matches!(t.sim.placement(a, 512 * K), Placement::Vram { device: 1, .. }), "{preset}: the peer's part stayed");
        assert_eq!(t.ctx.query(a, 512 * K).unwrap().residency, Some(vram(1)), "{preset}: and its record says so");
        // The library's next placements of it into device 0's VRAM move it.
        for _ in 0..2 {
            let p = t.ctx.alloc_vram(t.dev[0], a, 512 * K, vram(0), AllocFlags::ENGINE).unwrap();
            let now = t.sim.placement(a, 512 * K);
            assert!(p.on_fault || now == (Placement::Vram { device: 0, instance: 1 }), "{preset}: reported in device 0's VRAM, lies in {now:?}: {p:?}");
        }
    }
}

/// A bind in system memory makes the span's SVM ranges with no page probe
/// (`vm_bind_ioctl_ops_create`: 64 KiB ranges over untouched pages where a
/// chunk does not fit the mapping), so it puts no zero page under them
/// first (the faults' first placement does: they probe): a GPU-born
/// buffer placed in system memory, bound, written, and later moved, moves
/// in 64 KiB ranges all the same.
#[test]
fn a_first_bind_in_system_memory_needs_no_zero_page_under_partial_chunks() {
    let t = setup("dgpu", false);
    // A GPU-born 1 MiB buffer in a mapping of its own.
    t.sim.munmap(BUF, 2 * MIB).unwrap();
    t.sim.mmap(BUF, MIB, false).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], BUF, MIB, Pagemap::System, AllocFlags::ENGINE).unwrap();
    assert_eq!(p.pagemap, Some(Pagemap::System), "{p:?}");
    assert_eq!(t.ctx.stats().populated_pages, 0);
    let dev = t.ctx.device(t.dev[0]).unwrap();
    t.sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, MIB, sim::Access::Write, 7).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], BUF, MIB, t.ctx.pagemap(t.dev[0], 0).unwrap(), AllocFlags::empty()).unwrap();
    assert_eq!(p.bytes_moved, MIB, "{p:?}");
    let k = t.sim.counters();
    assert_eq!((k.migrations_4k, k.migrations_64k), (0, 16), "moved in 64 KiB ranges");
}

/// An atomic span (the runtime ignores the thrash guard) the CPU reads and
/// clears after every launch, with launch reports: the chooser never runs
/// the faults for it. An atomic fault stamps the kernel's timeslice on the
/// pages it migrates (xe_svm_handle_pagefault: atomic_svm_timeslice_ms),
/// and the CPU's next touch waits it out, which no launch report shows:
/// the launches cost the same under the faults' trial, so the chooser
/// stayed on them, and a histogram program ran 5.7x the prefetch (a
/// third-party reader's scenario; failed before).
#[test]
fn an_atomic_span_the_cpu_takes_back_is_never_left_to_the_faults() {
    let t = setup("dgpu", false);
    let hist = (BUF, 4096);
    t.sim.cpu_access(hist.0, hist.1, sim::Access::Write, 1).unwrap();
    let dev = t.ctx.device(t.dev[0]).unwrap();
    for round in 0..12 {
        let pm = t.ctx.resolve(t.dev[0], 0, hist.0, hist.1, Access::Atomic).unwrap();
        let p = t.ctx.alloc_vram(t.dev[0], hist.0, hist.1, pm, AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD).unwrap();
        assert!(!p.on_fault, "round {round}: {p:?}");
        t.sim.gpu_access(dev.fd, dev.vm_id, 0, hist.0, hist.1, sim::Access::Atomic, 7).unwrap();
        t.ctx.launch_done(t.dev[0], 1_000_000).unwrap();
        t.sim.cpu_access(hist.0, hist.1, sim::Access::Read, 0).unwrap();
        t.sim.cpu_access(hist.0, hist.1, sim::Access::Write, round).unwrap();
    }
}

/// A span one tile of a device holds is used there by the device's other
/// tile (not atomics): its kernels reach either tile's memory at the
/// device's local bandwidth, where a move copies it tile to tile with the
/// CPU's work per page. A stencil each tile of a Max 1550 runs over the
/// same two 256 MiB extents moved both at the second tile's first launch
/// (2 x 113 ms: 1.04x the kernel alone; a third-party reader's scenario).
#[test]
fn a_span_the_other_tile_holds_is_used_where_it_lies() {
    let t = setup("max1550", false);
    let (t0, t1) = (t.ctx.pagemap(t.dev[0], 0).unwrap(), t.ctx.pagemap(t.dev[0], 1).unwrap());
    t.sim.cpu_access(BUF, 8 * MIB, sim::Access::Write, 1).unwrap();
    t.launch(0, BUF, 8 * MIB, Access::Read, AllocFlags::empty());
    assert_eq!(t.sim.placement(BUF, 8 * MIB), Placement::Vram { device: 0, instance: 1 });
    for a in [Access::Read, Access::Write] {
        assert_eq!(t.ctx.resolve(t.dev[0], 1, BUF, 8 * MIB, a), Ok(t0), "{a:?}");
    }
    assert_eq!(t.ctx.resolve(t.dev[0], 1, BUF, 8 * MIB, Access::Atomic), Ok(t1), "atomics run in the tile's own VRAM");
    assert_eq!(t.ctx.resolve(t.dev[0], 1, BUF, 8 * MIB, Access::Prefetch), Ok(t1), "the application asked for it here");
    t.ctx.set_preferred(BUF, 8 * MIB, t1).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 1, BUF, 8 * MIB, Access::Read), Ok(t1), "the runtime's advice wins");
}

/// A mapping left to the faults (SVM_ALLOC_EXTENT) that this device's VM
/// has bound in system memory (an explicit request put it there) is
/// reported in system memory: its kernel reads it there and takes no fault
/// that could move it. It was reported ON_FAULT in VRAM (a third-party
/// reader's report; failed before).
#[test]
fn a_mapping_bound_in_system_memory_is_reported_there_when_left_to_the_faults() {
    let t = setup("dgpu", false);
    t.sim.cpu_access(BUF, 8 * MIB, sim::Access::Write, 1).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, 8 * MIB, Pagemap::System, AllocFlags::default()).unwrap();
    let v0 = t.ctx.pagemap(t.dev[0], 0).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], BUF, 8 * MIB, v0, AllocFlags::ENGINE | AllocFlags::EXTENT).unwrap();
    let dev = t.ctx.device(t.dev[0]).unwrap();
    t.sim.gpu_access(dev.fd, dev.vm_id, 0, BUF, 8 * MIB, sim::Access::Read, 7).unwrap();
    assert_eq!((p.on_fault, p.pagemap), (true, Some(Pagemap::System)), "{p:?}");
    assert_eq!(t.sim.placement(BUF, 8 * MIB), Placement::System, "no fault moved it");
}

/// Under the cascade (the chooser's first launches of a span), a span two
/// devices take back and forth, each writing its half of the extent the
/// runtime places, is left to the faults from its second turn, by a
/// device other than the first turn's (`Turns::turned`): each device's
/// faults then take its half, where the cascade moved the whole span at
/// every turn. A span handed to another device once is not (a service
/// that moved: its queries and answers stay with the cascade).
#[test]
fn a_span_devices_take_back_and_forth_under_the_cascade_is_left_to_the_faults_from_its_second_turn() {
    let t = setup("2dgpu-p2p", false);
    let (span, other) = ((BUF, 16 * MIB), (BUF + 32 * MIB, 16 * MIB));
    for s in [span, other] {
        t.sim.cpu_access(s.0, s.1, sim::Access::Write, 1).unwrap();
        t.turn(0, s, Access::Write, s, true);
    }
    let halves = [(span.0, 8 * MIB), (span.0 + 8 * MIB, 8 * MIB)];
    let mut seen = Vec::new();
    for turn in 0..4 {
        let d = 1 - turn % 2;
        let p = t.turn(d, span, Access::Write, halves[d], true);
        seen.push((p.on_fault, p.bytes_moved));
    }
    // The first two turns move it whole (the second makes it shared), the
    // next ones leave it to the faults, which took each device's half.
    assert_eq!(seen, [(false, 16 * MIB), (false, 16 * MIB), (true, 0), (true, 0)]);
    assert_eq!(t.sim.placement(halves[0].0, halves[0].1), Placement::Vram { device: 0, instance: 1 });
    assert_eq!(t.sim.placement(halves[1].0, halves[1].1), Placement::Vram { device: 1, instance: 1 });
    // Handed over once: device 1 takes the other span, then finds it in place.
    let vram1 = t.ctx.pagemap(t.dev[1], 0).unwrap();
    let moved: Vec<_> = (0..3).map(|_| t.turn(1, other, Access::Write, other, true)).map(|p| (p.pagemap, p.on_fault, p.bytes_moved)).collect();
    assert_eq!(moved, [(Some(vram1), false, 16 * MIB), (Some(vram1), false, 0), (Some(vram1), false, 0)]);
}
