//! The placement engine on the simulated driver: the cheap check, each errno
//! path of alloc_vram, fallbacks, the thrash guard, evict, consistent
//! attributes, resolve against the rows of docs/kernel-model.md §14, and races.

use std::sync::Arc;

use xesvm::sim::Placement;
use xesvm::errno::Errno;
use xesvm::policy::{Access, AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::{self, Injection, Point, Sim, Topology};
use xesvm::topology::{LinkState, Pagemap};
use xesvm::uapi::*;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;
const R: u64 = 2 * MIB;

struct T {
    sim: Arc<Sim>,
    ctx: Context,
    dev: Vec<DeviceHandle>,
}

fn setup_topo(topo: Topology, config: Config) -> T {
    let sim = Sim::new(topo).unwrap();
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(sim.clone())), config);
    let dev = (0..sim.topology().devices.len() as u32).map(|i| ctx.open_index(i).unwrap()).collect();
    T { sim, ctx, dev }
}

fn setup(preset: &str) -> T {
    setup_topo(Topology::preset(preset).unwrap(), rules())
}

/// [`setup`] where every placement looks at the page table (no freshness
/// period).
fn setup_looking(preset: &str) -> T {
    setup_topo(Topology::preset(preset).unwrap(), Config { observe_ttl_ns: 0, ..rules() })
}

impl T {
    fn vram(&self, d: usize) -> Pagemap {
        self.ctx.pagemap(self.dev[d], 0).unwrap()
    }
    fn fd_vm(&self, d: usize) -> (i32, u32) {
        let dev = self.ctx.device(self.dev[d]).unwrap();
        (dev.fd, dev.vm_id)
    }
    fn gpu(&self, d: usize, start: u64, size: u64, a: sim::Access) -> Result<(), Errno> {
        let (fd, vm) = self.fd_vm(d);
        self.sim.gpu_access(fd, vm, 0, start, size, a, start ^ d as u64)
    }
    fn alloc(&self, d: usize, start: u64, size: u64, pm: Pagemap) -> xesvm::policy::Placed {
        // As a runtime places a launch's span: resolve's answer, the engine's to refine.
        self.ctx.alloc_vram(self.dev[d], start, size, pm, AllocFlags::ENGINE).unwrap()
    }
    /// Device `d` reads the span with no GPU fault: it was bound.
    fn reads_without_faults(&self, d: usize, start: u64, size: u64, why: &str) {
        let faults = self.sim.counters().gpu_faults;
        self.gpu(d, start, size, sim::Access::Read).unwrap();
        assert_eq!(self.sim.counters().gpu_faults, faults, "{why}");
    }
    fn on(&self, start: u64, size: u64) -> Placement {
        self.sim.placement(start, size)
    }
    fn vram_of(&self, d: u32) -> Placement {
        Placement::Vram { device: d, instance: 1 }
    }
    /// A mapping of its own at [at, at+len), with nothing mapped around it
    /// in the 8 MiB from BUF + 16 MiB.
    fn mapping(&self, at: u64, len: u64) {
        self.sim.munmap(BUF + 16 * MIB, 8 * MIB).unwrap();
        self.sim.mmap(at, len, false).unwrap();
    }
    /// A 3 MiB arena at BUF + 16 MiB and its last buffer (start, size),
    /// whose second chunk reaches past the mapping from `tail` on.
    fn arena_last_buffer(&self) -> (u64, u64, u64) {
        let m = BUF + 16 * MIB;
        self.mapping(m, 3 * MIB);
        (m + MIB, 2 * MIB, m + 2 * MIB)
    }
}

#[test]
fn open_checks_the_cpu_address_mirror() {
    let mut topo = Topology::preset("dgpu").unwrap();
    topo.devices[0].page_faults = false;
    let sim = Sim::new(topo).unwrap();
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(sim)), rules());
    assert_eq!(ctx.open_index(0), Err(Errno::EOPNOTSUPP));
    assert_eq!(ctx.open_index(7), Err(Errno::ENODEV));
}

#[test]
fn alloc_then_gpu_access_causes_no_fault_and_in_place_is_free() {
    let t = setup("dgpu");
    t.sim.cpu_access(BUF, 4 * R, sim::Access::Write, 1).unwrap();
    let sum = t.sim.checksum(BUF, 4 * R).unwrap();
    let p = t.alloc(0, BUF, 4 * R, t.vram(0));
    assert_eq!((p.pagemap, p.bytes_moved, p.in_place, p.verified), (Some(t.vram(0)), 4 * R, false, true));
    assert_eq!(t.on(BUF, 4 * R), t.vram_of(0));
    let faults = t.sim.counters().gpu_faults;
    t.gpu(0, BUF, 4 * R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults, "prefetch bound it");
    let ioctls = t.sim.counters().ioctls;
    let again = t.alloc(0, BUF, 4 * R, t.vram(0));
    assert!(again.in_place && again.ioctls == 0);
    assert_eq!(t.sim.counters().ioctls, ioctls, "the cheap check issues no ioctl");
    assert_eq!(t.sim.checksum(BUF, 4 * R).unwrap(), sum);
}

#[test]
fn in_place_record_is_rechecked_when_something_moved() {
    let t = setup("dgpu");
    t.alloc(0, BUF, R, t.vram(0));
    t.sim.cpu_access(BUF, 4096, sim::Access::Read, 0).unwrap(); // CPU fault: back to system
    // The page table shows the CPU pulled it back: a hand-off, held in
    // system memory where both sides reach it (one round trip, not two).
    let p = t.alloc(0, BUF, R, t.vram(0));
    assert!(!p.in_place && p.pinned, "the driver shows it moved: {p:?}");
    assert_eq!((p.pagemap, p.bytes_moved), (Some(Pagemap::System), 0));
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Write), Ok(Pagemap::System), "resolve follows the pin");
    // A caller that overrides the guard gets it moved again.
    let p = t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::IGNORE_THRASH_GUARD).unwrap();
    assert_eq!((p.pagemap, p.bytes_moved), (Some(t.vram(0)), R));
    assert_eq!(t.on(BUF, R), t.vram_of(0));
}

/// An observation from before the report of a launch that used the range
/// does not vouch for after it: the host touches a launch's data once it
/// completed (a histogram read 20 us after its atomic launch), well inside
/// the freshness period. Believed in VRAM, the next atomic launch would
/// fault it back and stamp the kernel's atomic timeslice
/// (xe_svm_handle_pagefault), and the CPU's next read would wait it out
/// (5 ms).
#[test]
fn an_observation_from_before_a_launch_report_is_not_fresh() {
    // A freshness period far longer than the test: only the report ends it.
    let t = setup_topo(Topology::preset("dgpu").unwrap(), Config { observe_ttl_ns: 1_000_000_000, ..Config::default() });
    let insist = AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD;
    t.ctx.launch_done(t.dev[0], 1_000).unwrap(); // the runtime reports launches
    let (a, b) = (BUF, BUF + R);
    for s in [a, b] {
        t.sim.cpu_access(s, 4096, sim::Access::Write, 1).unwrap();
        let p = t.ctx.alloc_vram(t.dev[0], s, 4096, t.vram(0), insist).unwrap();
        assert_eq!(p.bytes_moved, 4096, "{p:?}");
    }
    t.ctx.launch_submitted(t.dev[0]).unwrap();
    t.gpu(0, a, 4096, sim::Access::Atomic).unwrap();
    for s in [a, b] {
        t.sim.cpu_access(s, 4096, sim::Access::Read, 2).unwrap(); // pulled back
    }
    // Not reported yet: inside the freshness period the record is believed.
    let p = t.ctx.alloc_vram(t.dev[0], a, 4096, t.vram(0), insist).unwrap();
    assert!(p.in_place, "believed while fresh: {p:?}");
    t.ctx.launch_done(t.dev[0], 10_000).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], b, 4096, t.vram(0), insist).unwrap();
    assert!(!p.in_place && p.bytes_moved == 4096, "the page table read after the report finds it pulled back: {p:?}");
    assert_eq!(t.on(b, 4096), t.vram_of(0));
}

/// After the report of a launch that used it, a large span still within
/// its freshness period is looked at again with one sample, not the whole
/// set: launches reported back to back over spans the host never touches
/// would pay a full read each (a wavefront over two 16 MB matrices: 3 % of
/// the program). The sample does not extend the freshness period: when
/// it ends, the whole set is read again.
#[test]
fn after_a_launch_report_a_fresh_span_is_looked_at_with_one_sample() {
    let ttl = 2_000_000;
    let t = setup_topo(Topology::preset("dgpu").unwrap(), Config { observe_ttl_ns: ttl, ..Config::default() });
    t.ctx.launch_done(t.dev[0], 1_000).unwrap(); // the runtime reports launches
    t.sim.cpu_access(BUF, 8 * R, sim::Access::Write, 1).unwrap();
    let p = t.alloc(0, BUF, 8 * R, t.vram(0));
    assert_eq!(p.bytes_moved, 8 * R, "{p:?}");
    let reads = t.ctx.stats().observe_reads;
    assert!(t.alloc(0, BUF, 8 * R, t.vram(0)).in_place);
    assert_eq!(t.ctx.stats().observe_reads, reads, "fresh: not read");
    t.ctx.launch_submitted(t.dev[0]).unwrap();
    t.gpu(0, BUF, 8 * R, sim::Access::Read).unwrap(); // the launch
    t.ctx.launch_done(t.dev[0], 10_000).unwrap();
    assert!(t.alloc(0, BUF, 8 * R, t.vram(0)).in_place);
    assert_eq!(t.ctx.stats().observe_reads, reads + 1, "one sample after the report");
    assert!(t.alloc(0, BUF, 8 * R, t.vram(0)).in_place);
    assert_eq!(t.ctx.stats().observe_reads, reads + 1, "fresh again");
    // Reports keep coming, each of a launch that used it, until the period
    // of the last full read is over.
    let other = BUF + 64 * MIB;
    let t0 = t.sim.now_ns();
    let mut most = 0;
    while t.sim.now_ns() < t0 + 2 * ttl {
        t.sim.cpu_access(other, R, sim::Access::Write, 2).unwrap();
        t.ctx.launch_submitted(t.dev[0]).unwrap();
        t.ctx.launch_done(t.dev[0], 10_000).unwrap();
        let before = t.ctx.stats().observe_reads;
        // Asked for now: hundreds of reported launches would otherwise buy
        // the chooser's trial of the faults, which leave the span unread.
        assert!(t.ctx.alloc_vram(t.dev[0], BUF, 8 * R, t.vram(0), AllocFlags::ENGINE | AllocFlags::PREFETCH_NOW).unwrap().in_place);
        most = most.max(t.ctx.stats().observe_reads - before);
    }
    assert_eq!(most, 8, "the whole set (one sample per chunk) read again once the period ended");
}

/// A hand-off seen by a process that cannot name devices (PAGEMAP_SCAN,
/// unprivileged): a span the library put in device 0's VRAM, pulled back
/// whole by the CPU, then asked for device 1. The page table shows its
/// pages present in system memory, which needs no PFN: held there (the
/// hand-off), not moved to device 1 to be pulled back again.
#[test]
fn a_hand_off_to_another_device_is_seen_without_naming_devices() {
    let t = setup_looking("2dgpu-p2p");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.alloc(0, BUF, R, t.vram(0));
    assert_eq!(t.on(BUF, R), t.vram_of(0));
    t.sim.cpu_access(BUF, R, sim::Access::Read, 0).unwrap();
    assert_eq!(t.on(BUF, R), Placement::System);
    let p = t.alloc(1, BUF, R, t.vram(1));
    assert!(p.pinned && p.pagemap == Some(Pagemap::System) && p.bytes_moved == 0, "the hand-off: {p:?}");
    assert_eq!(t.on(BUF, R), Placement::System);
}

/// A span that shares its last page with a neighbour placed after it in
/// system memory (a decode step's token before the logits the CPU reads:
/// the neighbour's record holds the shared page) is still known where its
/// own record puts it: the CPU's pull-back shows at its next placement,
/// and the hand-off holds it in system memory instead of moving it both
/// ways at every step.
#[test]
fn a_span_whose_last_page_a_later_neighbour_took_still_sees_its_hand_off() {
    let t = setup_looking("dgpu");
    const K: u64 = 1024;
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let (token, tlen, logits, llen) = (BUF, 40 * K, BUF + 36 * K, 360 * K);
    for step in 0..2 {
        t.alloc(0, token, tlen, t.vram(0));
        let p = t.ctx.alloc_vram(t.dev[0], logits, llen, Pagemap::System, AllocFlags::empty()).unwrap();
        assert_eq!(p.pagemap, Some(Pagemap::System), "step {step}");
        t.sim.cpu_access(logits, llen, sim::Access::Read, 0).unwrap();
        t.sim.cpu_access(token, 4096, sim::Access::Write, 2 + step).unwrap();
    }
    let p = t.alloc(0, token, tlen, t.vram(0));
    assert!(p.pinned && p.pagemap == Some(Pagemap::System) && p.bytes_moved == 0, "the hand-off: {p:?}");
    assert_eq!(t.on(token, 32 * K), Placement::System);
}

/// Its own record does not speak for a span where a neighbour sharing its
/// page was placed in another VRAM after it: that prefetch moved the
/// chunk they share, the span with it, and an unprivileged page-table
/// read cannot tell the two VRAMs apart. Its next placement moves it back
/// rather than report it in place where it no longer is; and an eviction
/// without a page table reaches the device that took it.
#[test]
fn a_span_a_neighbour_took_into_another_vram_is_not_believed_in_place() {
    const K: u64 = 1024;
    let (a, alen, b, blen) = (BUF, 40 * K, BUF + 36 * K, 360 * K);
    for flags in [AllocFlags::empty(), AllocFlags::ENGINE] {
        let t = setup("2dgpu-p2p");
        t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
        t.ctx.alloc_vram(t.dev[0], a, alen, t.vram(0), flags).unwrap();
        t.ctx.alloc_vram(t.dev[1], b, blen, t.vram(1), flags).unwrap();
        assert_eq!(t.on(a, alen), t.vram_of(1), "{flags:?}: the chunk moved whole");
        assert_eq!(t.ctx.query(a, alen).unwrap().residency, None, "{flags:?}: where it is, unknown");
        let p = t.ctx.alloc_vram(t.dev[0], a, alen, t.vram(0), flags).unwrap();
        assert_eq!(t.on(a, alen), t.vram_of(0), "{flags:?}: {p:?}");
    }
    for flags in [AllocFlags::empty(), AllocFlags::ENGINE] {
        let t = setup("2dgpu-p2p");
        t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
        t.sim.set_page_table(xesvm::driver::PageTableAccess::UNAVAILABLE).unwrap();
        t.ctx.alloc_vram(t.dev[0], a, alen, Pagemap::System, flags).unwrap();
        t.ctx.alloc_vram(t.dev[1], b, blen, t.vram(1), flags).unwrap();
        t.ctx.evict(a, alen).unwrap();
        assert_eq!(t.on(a, alen), Placement::System, "{flags:?}: the eviction reached device 1");
    }
}

/// A gap between records holds the kernel's default attributes and no
/// hint: a span recorded in part with an atomic mode gets it applied over
/// the rest too, one piece's preferred location notwithstanding, and a
/// preferred location set over part of it is not the whole span's.
#[test]
fn an_attribute_or_hint_recorded_over_part_of_a_span_is_not_the_whole_spans() {
    const K: u64 = 1024;
    for preferred in [false, true] {
        let t = setup("2dgpu-p2p");
        t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
        t.ctx.set_atomic(BUF, 60 * K, DRM_XE_ATOMIC_DEVICE).unwrap();
        if preferred {
            t.ctx.set_preferred(BUF, 32 * K, t.vram(0)).unwrap();
        }
        t.ctx.set_atomic(BUF, 100 * K, DRM_XE_ATOMIC_DEVICE).unwrap();
        let q = t.ctx.query(BUF + 60 * K, 40 * K).unwrap();
        assert!(q.devices.iter().all(|d| d.atomic == DRM_XE_ATOMIC_DEVICE), "preferred {preferred}: {:?}", q.devices);
    }
    // Nor is a hint given over part of a span the whole span's.
    let t = setup("2dgpu-p2p");
    t.ctx.set_preferred(BUF, 32 * K, t.vram(0)).unwrap();
    assert_eq!(t.ctx.query(BUF, 32 * K).unwrap().preferred, Some(t.vram(0)));
    assert_eq!(t.ctx.query(BUF, 100 * K).unwrap().preferred, None, "preferred over a third of it");
}

/// A hand-off pin holds its own span only: a packed neighbour sharing its
/// first page (a runtime widens spans to whole pages) is placed as asked,
/// not held with it. Its record of the shared page does not speak for the
/// neighbour's history (merged in, pins spread along an arena).
#[test]
fn a_hand_off_pin_does_not_hold_a_packed_neighbour() {
    let t = setup_looking("dgpu");
    const K: u64 = 1024;
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let (a, alen, b, blen) = (BUF, 64 * K, BUF + 60 * K, 240 * K);
    let p = t.ctx.alloc_vram(t.dev[0], b, blen, Pagemap::System, AllocFlags::empty()).unwrap();
    assert_eq!(p.pagemap, Some(Pagemap::System));
    t.alloc(0, a, alen, t.vram(0));
    t.sim.cpu_access(a, 4096, sim::Access::Read, 0).unwrap();
    let p = t.alloc(0, a, alen, t.vram(0));
    assert!(p.pinned && p.pagemap == Some(Pagemap::System), "the hand-off: {p:?}");
    let p = t.alloc(0, b, blen, t.vram(0));
    assert!(!p.pinned && p.pagemap == Some(t.vram(0)) && p.bytes_moved > 0, "the neighbour moves: {p:?}");
    assert_eq!(t.on(b + 4 * K, blen - 4 * K), t.vram_of(0));
}

/// The hand-off rule holds a span the CPU pulled back in system memory
/// only where the GPU used it once between the library's move and the
/// pull-back: used more often, every use held would read it over the host
/// link, where moving it again costs one copy each way per hand-off
/// whatever the uses between (an input the CPU refills once per phase of
/// launches).
#[test]
fn a_span_the_gpu_used_more_than_once_before_the_cpu_pulled_it_back_moves_again() {
    for uses in [1, 2, 6] {
        let t = setup_looking("dgpu");
        t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
        let p = t.alloc(0, BUF, R, t.vram(0));
        assert!(p.bytes_moved == R, "{uses}: the first move: {p:?}");
        for _ in 1..uses {
            let p = t.alloc(0, BUF, R, t.vram(0));
            assert!(p.in_place, "{uses}: used again in place: {p:?}");
        }
        t.sim.cpu_access(BUF, 4096, sim::Access::Write, 2).unwrap();
        let p = t.alloc(0, BUF, R, t.vram(0));
        match uses {
            1 => assert!(p.pinned && p.pagemap == Some(Pagemap::System), "one use: the hand-off holds it: {p:?}"),
            _ => assert!(!p.pinned && p.pagemap == Some(t.vram(0)) && p.bytes_moved == R, "{uses} uses: moved again: {p:?}"),
        }
    }
}

/// Two 256 KiB buffers packed in one 2 MiB chunk, written by the CPU, on
/// a device whose placements read the page table every time: (t, a, b,
/// len).
fn packed_pair() -> (T, u64, u64, u64) {
    let t = setup_looking("dgpu");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    (t, BUF, BUF + (256 << 10), 256 << 10)
}

/// The library's own move of a span back to system memory takes its packed
/// neighbour's pages in the same allocation window with it
/// (`migrate_to_ram`, docs/kernel-model.md §5.5): that is no CPU pull-back,
/// so the neighbour's next placement moves it as asked, not held in system
/// memory as a hand-off. Each way back: a placement, an evict.
#[test]
fn a_neighbour_carried_back_by_the_librarys_own_move_is_not_a_hand_off() {
    const K: u64 = 1024;
    for evict in [false, true] {
        let (t, a, b, len) = packed_pair();
        t.alloc(0, a, len, t.vram(0));
        t.alloc(0, b, len, t.vram(0));
        assert_eq!(t.on(BUF, R), t.vram_of(0), "the chunk moved whole");
        match evict {
            false => assert_eq!(t.ctx.alloc_vram(t.dev[0], a, len, Pagemap::System, AllocFlags::empty()).unwrap().pagemap, Some(Pagemap::System)),
            true => assert_eq!(t.ctx.evict(a, len).unwrap().pagemap, Some(Pagemap::System)),
        }
        assert_eq!(t.on(b, len), Placement::System, "the neighbour came along (evict {evict})");
        let p = t.alloc(0, b, len, t.vram(0));
        assert!(!p.pinned && p.pagemap == Some(t.vram(0)) && p.bytes_moved > 0, "moved, not held (evict {evict}): {p:?}");
        assert_eq!(t.on(b + 4 * K, len - 4 * K), t.vram_of(0));
    }
}

/// A buffer freed and allocated again at its address without the free
/// hook starts with no history: its next placement finds it never
/// populated where the record put it in VRAM, and counts only its own
/// move. A packed neighbour's move back to system memory in between does
/// not hide the free by recording the new buffer's pages there (a move
/// back makes what it moves present; never-populated pages were not).
#[test]
fn a_buffer_freed_and_mapped_again_starts_with_no_moves() {
    let (t, a, b, len) = packed_pair();
    let now = AllocFlags::ENGINE | AllocFlags::PREFETCH_NOW;
    t.ctx.alloc_vram(t.dev[0], b, len, t.vram(0), now).unwrap();
    t.ctx.alloc_vram(t.dev[0], a, len, t.vram(0), now).unwrap();
    assert_eq!(t.ctx.query(b, len).unwrap().moves_in_window, 1);
    t.sim.munmap(b, len).unwrap();
    t.sim.mmap(b, len, false).unwrap();
    t.ctx.alloc_vram(t.dev[0], a, len, Pagemap::System, AllocFlags::empty()).unwrap();
    assert_eq!(t.ctx.query(b, len).unwrap().residency, Some(t.vram(0)), "not recorded as carried back");
    let p = t.ctx.alloc_vram(t.dev[0], b, len, t.vram(0), now).unwrap();
    assert!(!p.pinned && p.pagemap == Some(t.vram(0)), "placed: {p:?}");
    assert_eq!(t.ctx.query(b, len).unwrap().moves_in_window, 1, "its own move only");
}

/// A thrash guard's pin belongs to the buffer it held: freed and allocated
/// again at its address without the free hook, the new buffer is placed
/// as asked, not held where the old one was.
#[test]
fn a_buffer_freed_and_mapped_again_does_not_inherit_a_pin() {
    let cfg = Config { thrash_max_moves: 2, thrash_window_ns: 10_000_000_000, pin_ns: 10_000_000_000, observe_ttl_ns: 0, ..rules() };
    let t = setup_topo(Topology::preset("2dgpu-p2p").unwrap(), cfg);
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let now = AllocFlags::ENGINE | AllocFlags::PREFETCH_NOW;
    let mut pinned = None;
    for i in 0..4 {
        let p = t.ctx.alloc_vram(t.dev[i % 2], BUF, R, t.vram(i % 2), now).unwrap();
        if p.pinned {
            pinned = Some(i);
            break;
        }
    }
    let i = pinned.expect("the thrash guard pins it");
    assert!(t.ctx.query(BUF, R).unwrap().pinned);
    t.sim.munmap(BUF, R).unwrap();
    t.sim.mmap(BUF, R, false).unwrap();
    let d = i % 2;
    let p = t.ctx.alloc_vram(t.dev[d], BUF, R, t.vram(d), now).unwrap();
    assert!(!p.pinned && p.pagemap == Some(t.vram(d)), "the new buffer is placed: {p:?}");
    assert!(!t.ctx.query(BUF, R).unwrap().pinned);
}

/// A span freed and allocated again at its address without the runtime's
/// free hook, then partly written by the CPU, is not a hand-off: the page
/// table shows never-populated pages beside the new ones (a pull-back makes
/// every page it moves present; only a munmap discards device pages), so
/// it is placed again, not held in system memory.
#[test]
fn a_span_freed_and_partly_written_again_is_not_a_hand_off() {
    let t = setup_looking("dgpu");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.alloc(0, BUF, R, t.vram(0));
    t.sim.munmap(BUF, R).unwrap();
    t.sim.mmap(BUF, R, false).unwrap();
    t.sim.cpu_access(BUF + R / 2, R / 2, sim::Access::Write, 2).unwrap();
    let p = t.alloc(0, BUF, R, t.vram(0));
    assert!(!p.pinned && p.bytes_moved > 0, "placed again: {p:?}");
    assert_eq!(t.on(BUF, R), t.vram_of(0));
}

/// A scratch buffer freed and allocated again at its address every round
/// without the runtime's free hook, born by the GPU each time: each new
/// buffer is placed in VRAM. The freed buffers' moves are not its history,
/// so the thrash guard never holds it in system memory, where the GPU
/// would write it remotely.
#[test]
fn a_buffer_freed_and_mapped_again_every_round_does_not_inherit_its_moves() {
    let t = setup_looking("dgpu");
    for round in 0..6 {
        // Moved now: no split birth, the thrash guard still on.
        let p = t.ctx.alloc_vram(t.dev[0], BUF, 4 * R, t.vram(0), AllocFlags::ENGINE | AllocFlags::PREFETCH_NOW).unwrap();
        assert!(!p.pinned && p.pagemap == Some(t.vram(0)), "round {round}: placed in VRAM: {p:?}");
        t.gpu(0, BUF, 4 * R, sim::Access::Write).unwrap();
        assert_eq!(t.on(BUF, 4 * R), t.vram_of(0), "round {round}");
        t.sim.munmap(BUF, 4 * R).unwrap();
        t.sim.mmap(BUF, 4 * R, false).unwrap();
    }
}

#[test]
fn evict_then_cpu_access_finds_data_intact() {
    let t = setup("2dgpu-p2p");
    t.gpu(1, BUF, 2 * R, sim::Access::Write).unwrap();
    let sum = t.sim.checksum(BUF, 2 * R).unwrap();
    let e = t.ctx.evict(BUF, 2 * R).unwrap();
    assert_eq!((e.pagemap, e.verified), (Some(Pagemap::System), true));
    assert_eq!(t.on(BUF, 2 * R), Placement::System);
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Read, 0).unwrap();
    assert_eq!(t.sim.checksum(BUF, 2 * R).unwrap(), sum);
    let again = t.ctx.evict(BUF, 2 * R).unwrap();
    assert_eq!(again.ioctls, 0, "already in system: nothing to do");
}

/// evict reports what it moved, as the page table showed it: of two
/// chunks, the one in VRAM, not the whole span.
#[test]
fn evict_reports_the_bytes_that_were_away() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    t.gpu(0, BUF + R, R, sim::Access::Write).unwrap();
    assert_eq!(t.on(BUF + R, R), t.vram_of(0));
    let e = t.ctx.evict(BUF, 2 * R).unwrap();
    assert_eq!((e.bytes_moved, e.verified), (R, true));
    assert_eq!(t.on(BUF, 2 * R), Placement::System);
}

#[test]
fn peer_placement_over_p2p_and_remote_access() {
    let t = setup("2dgpu-p2p");
    t.alloc(0, BUF, R, t.vram(0));
    // alloc_vram for B moves it over the link.
    let p = t.alloc(1, BUF, R, t.vram(1));
    assert_eq!((p.pagemap, p.fell_back), (Some(t.vram(1)), false));
    assert_eq!(t.on(BUF, R), t.vram_of(1));
    assert_eq!(t.sim.counters().migrations_device_to_device, 1);
    // Preferred location A: B's accesses are served remotely, without migration.
    t.ctx.set_preferred(BUF, R, t.vram(0)).unwrap();
    t.alloc(0, BUF, R, t.vram(0));
    let m = t.sim.counters();
    t.gpu(1, BUF, R, sim::Access::Read).unwrap();
    let m2 = t.sim.counters();
    assert_eq!(m2.migrations_device_to_device + m2.migrations_to_vram, m.migrations_device_to_device + m.migrations_to_vram);
    assert_eq!(t.on(BUF, R), t.vram_of(0));
    assert!(m2.remote_access_bytes > m.remote_access_bytes);
    // Atomics from B put it in B's local VRAM (docs/kernel-model.md §3.2).
    t.gpu(1, BUF, R, sim::Access::Atomic).unwrap();
    assert_eq!(t.on(BUF, R), t.vram_of(1));
    // A placement for B in A's VRAM: B maps it over the link.
    let p = t.alloc(1, BUF + R, R, t.vram(0));
    assert_eq!((p.pagemap, p.fell_back), (Some(t.vram(0)), false));
    let f = t.sim.counters().gpu_faults;
    t.gpu(1, BUF + R, R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, f, "bound over P2P by the CONSULT prefetch");
}

#[test]
fn no_link_falls_back_to_local_and_remembers() {
    let t = setup("2dgpu-nolink");
    let p = t.alloc(1, BUF, R, t.vram(0));
    assert_eq!((p.pagemap, p.fell_back, p.cause), (Some(t.vram(1)), true, Some(Errno::ENOLINK)));
    assert_eq!(t.on(BUF, R), t.vram_of(1));
    assert_eq!(t.ctx.link(t.dev[0], t.dev[1]).unwrap(), LinkState::Absent);
    let strict = t.ctx.alloc_vram(t.dev[1], BUF + R, R, t.vram(0), AllocFlags::NO_FALLBACK);
    assert_eq!(strict, Err(Errno::ENOLINK));
}

#[test]
fn ebusy_evicts_and_retries_once() {
    let t = setup("dgpu");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 3).unwrap();
    let sum = t.sim.checksum(BUF, R).unwrap();
    // The kernel swallows the failed migration (-ENODATA); the library sees
    // the range stayed in system, counts EBUSY, evicts and retries once.
    t.sim.inject(Injection::count(Point::Migrate, Errno::EBUSY, 2));
    let p = t.alloc(0, BUF, R, t.vram(0));
    assert_eq!((p.pagemap, p.retries, p.fell_back), (Some(t.vram(0)), 1, false));
    assert_eq!(t.ctx.stats().unverified, 1);
    // Failing again after the retry: fall back to system, and say so.
    t.sim.inject(Injection::count(Point::Migrate, Errno::EBUSY, 4));
    let p = t.alloc(0, BUF + R, R, t.vram(0));
    assert_eq!((p.pagemap, p.fell_back, p.cause), (Some(Pagemap::System), true, Some(Errno::EBUSY)));
    assert!(p.retries <= 2);
    assert_eq!(t.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn ioctl_errnos_get_their_answers() {
    // EINTR: restarted, bounded.
    let t = setup("dgpu");
    let inj = |e: Errno, n: u64| Injection { request: DRM_IOCTL_XE_VM_BIND, ..Injection::count(Point::Ioctl, e, n) };
    t.sim.inject(inj(Errno::EINTR, 3));
    let p = t.alloc(0, BUF, R, t.vram(0));
    assert_eq!((p.pagemap, p.retries), (Some(t.vram(0)), 3));
    // Persistent EINTR: restarts until the deadline, then the errno comes back.
    t.sim.inject(inj(Errno::EINTR, u64::MAX));
    let t0 = xesvm::driver::monotonic_ns();
    assert_eq!(t.ctx.alloc_vram(t.dev[0], BUF + R, R, t.vram(0), AllocFlags::default()), Err(Errno::EINTR));
    assert!(xesvm::driver::monotonic_ns() - t0 >= xesvm::driver::RESTART_DEADLINE_NS);
    t.sim.clear_injections();
    // EBUSY from the ioctl itself: evict, retry once.
    t.sim.inject(inj(Errno::EBUSY, 1));
    let p = t.alloc(0, BUF + 2 * R, R, t.vram(0));
    assert_eq!((p.pagemap, p.retries), (Some(t.vram(0)), 1));
    // ENOMEM: make room, retry once; then fall back to system.
    t.sim.inject(inj(Errno::ENOMEM, 1));
    let p = t.alloc(0, BUF + 3 * R, R, t.vram(0));
    assert_eq!((p.pagemap, p.retries, p.fell_back), (Some(t.vram(0)), 1, false));
    t.sim.inject(inj(Errno::ENOMEM, 50));
    let p = t.alloc(0, BUF + 4 * R, R, t.vram(0));
    assert_eq!((p.pagemap, p.fell_back, p.cause), (Some(Pagemap::System), true, Some(Errno::ENOMEM)));
    assert!(p.retries <= 2, "{p:?}");
    t.sim.clear_injections();
    // EINVAL / EFAULT: returned.
    t.sim.inject(inj(Errno::EFAULT, 1));
    assert_eq!(t.ctx.alloc_vram(t.dev[0], BUF + 5 * R, R, t.vram(0), AllocFlags::default()), Err(Errno::EFAULT));
    // ENODEV: the device is marked dead; every later call says so.
    t.sim.inject(inj(Errno::ENODEV, 1));
    assert_eq!(t.ctx.alloc_vram(t.dev[0], BUF + 6 * R, R, t.vram(0), AllocFlags::default()), Err(Errno::ENODEV));
    assert_eq!(t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::default()), Err(Errno::ENODEV));
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Read), Err(Errno::ENODEV));
    let s = t.ctx.stats();
    assert!(s.retries_eintr >= 3 && s.retries_ebusy >= 1 && s.retries_enomem >= 2 && s.errors_enodev >= 1);
}

#[test]
fn vram_pressure_evicts_this_contexts_lru_ranges() {
    let mut topo = Topology::preset("dgpu").unwrap();
    topo.devices[0].vram_per_tile = 8 * MIB;
    let t = setup_topo(topo, rules());
    let mut sums = Vec::new();
    for i in 0..6 {
        t.sim.cpu_access(BUF + i * R, R, sim::Access::Write, i).unwrap();
        sums.push(t.sim.checksum(BUF + i * R, R).unwrap());
        let p = t.alloc(0, BUF + i * R, R, t.vram(0));
        assert_eq!(p.pagemap, Some(t.vram(0)));
    }
    assert!(t.sim.counters().evictions >= 2, "the kernel evicted the oldest to fit");
    for i in 0..6 {
        assert_eq!(t.sim.checksum(BUF + i * R, R).unwrap(), sums[i as usize]);
    }
    // resolve knows the capacity is taken.
    let big = t.ctx.resolve(t.dev[0], 0, BUF + 32 * R, 8 * MIB, Access::Read).unwrap();
    assert_eq!(big, Pagemap::System);
    t.sim.check_invariants().unwrap();
}

#[test]
fn ping_pong_is_pinned_by_the_thrash_guard() {
    let cfg = Config { thrash_max_moves: 3, thrash_window_ns: 10_000_000_000, pin_ns: 10_000_000_000, ..rules() };
    let t = setup_topo(Topology::preset("2dgpu-p2p").unwrap(), cfg);
    let mut moved = 0;
    let mut pinned_at = None;
    for i in 0..8 {
        let d = i % 2;
        let p = t.alloc(d, BUF, R, t.vram(d));
        if p.pinned {
            pinned_at.get_or_insert(i);
            assert_ne!(p.pagemap, Some(t.vram(d)), "stays where it is");
        }
        if p.bytes_moved > 0 {
            moved += 1;
            assert_eq!(p.retries, 0, "{i}: {p:?}");
        }
    }
    assert_eq!(moved, 3, "N moves, then pinned");
    assert_eq!(pinned_at, Some(3));
    assert_eq!(t.ctx.stats().pins, 3, "every call after the third move, but in-place hits");
    let q = t.ctx.query(BUF, R).unwrap();
    assert!(q.pinned);
    // The pinned range is mapped remotely: device 0 reads it without migrating.
    let before = t.sim.counters();
    t.gpu(0, BUF, R, sim::Access::Read).unwrap();
    t.gpu(1, BUF, R, sim::Access::Read).unwrap();
    let after = t.sim.counters();
    assert_eq!(after.migrations_device_to_device, before.migrations_device_to_device);
    // Overriding the guard still moves it.
    let p = t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::IGNORE_THRASH_GUARD).unwrap();
    assert!(!p.pinned && p.pagemap == Some(t.vram(0)));
}

/// The thrash guard's window is long enough for its moves: a span whose
/// move takes longer than the configured window (here 1 ns) meets it all
/// the same, once a move out of system memory priced moves
/// (`Context::thrash_window`: thrash_max_moves moves at the context's
/// fastest timed rate). In a fixed window it moved at every turn.
#[test]
fn a_span_whose_moves_outlast_the_window_still_meets_the_thrash_guard() {
    let cfg = Config { thrash_max_moves: 3, thrash_window_ns: 1, pin_ns: 10_000_000_000, ..rules() };
    let t = setup_topo(Topology::preset("2dgpu-p2p").unwrap(), cfg);
    t.sim.cpu_access(BUF, 4 * R, sim::Access::Write, 1).unwrap();
    let mut moved = 0;
    for i in 0..8 {
        let d = i % 2;
        let p = t.alloc(d, BUF, 4 * R, t.vram(d));
        if i >= 3 {
            assert!(p.pinned || p.in_place, "{i}: held where it is: {p:?}");
        }
        moved += (p.bytes_moved > 0) as u32;
    }
    assert_eq!(moved, 3, "three moves, then pinned");
    assert!(t.ctx.stats().pins >= 2);
}

/// The library cannot see CPU faults, but the driver's placement shows the

// Without a link neither device can map the other's VRAM (docs/kernel-model.md §3.3),
// so a pin in a peer's VRAM would be undone by the next GPU fault: the guard
// pins a thrashing range in system memory instead, which both reach, and
// resolve says so too.
#[test]
fn thrashing_between_unlinked_devices_is_pinned_in_system_memory() {
    let cfg = Config { thrash_max_moves: 3, thrash_window_ns: 10_000_000_000, pin_ns: 10_000_000_000, ..rules() };
    let t = setup_topo(Topology::preset("2dgpu-nolink").unwrap(), cfg);
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let mut last = None;
    for i in 0..8 {
        let d = i % 2;
        let p = t.alloc(d, BUF, R, t.vram(d));
        last = Some(p);
    }
    let p = last.unwrap();
    assert!(p.pinned, "{p:?}");
    assert_eq!(p.pagemap, Some(Pagemap::System));
    assert_eq!(t.on(BUF, R), Placement::System);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Write), Ok(Pagemap::System));
    assert_eq!(t.ctx.resolve(t.dev[1], 0, BUF, R, Access::Write), Ok(Pagemap::System));
    // Both devices now use it where it is: no more moves.
    let before = t.sim.counters();
    for d in [0, 1, 0, 1] {
        let p = t.alloc(d, BUF, R, Pagemap::System);
        assert_eq!(p.bytes_moved, 0);
        t.gpu(d, BUF, R, sim::Access::Read).unwrap();
    }
    let after = t.sim.counters();
    assert_eq!((after.bytes_to_vram, after.bytes_to_system), (before.bytes_to_vram, before.bytes_to_system));
}

/// range left: that move counts, so CPU-GPU ping-pong meets the thrash
/// guard and the range stays in system memory, written remotely.
#[test]
fn cpu_gpu_ping_pong_is_pinned_in_system_memory() {
    let cfg = Config { thrash_max_moves: 4, thrash_window_ns: 10_000_000_000, pin_ns: 10_000_000_000, ..rules() };
    let t = setup_topo(Topology::preset("dgpu").unwrap(), cfg);
    let mut pinned = 0;
    for _ in 0..6 {
        let p = t.alloc(0, BUF, R, t.vram(0));
        if p.pinned {
            pinned += 1;
            assert_eq!(p.pagemap, Some(Pagemap::System));
        }
        t.gpu(0, BUF, R, sim::Access::Write).unwrap();
        t.sim.cpu_access(BUF, R, sim::Access::Read, 0).unwrap();
    }
    assert!(pinned >= 3, "pinned {pinned} times");
    assert_eq!(t.on(BUF, R), Placement::System);
    let before = t.sim.counters();
    t.gpu(0, BUF, R, sim::Access::Write).unwrap();
    t.sim.cpu_access(BUF, R, sim::Access::Read, 0).unwrap();
    let after = t.sim.counters();
    assert_eq!(after.migrations_to_vram, before.migrations_to_vram, "the GPU writes system memory remotely");
    assert_eq!(after.cpu_faults, before.cpu_faults);
}

#[test]
fn attributes_are_consistent_on_every_vm_and_skipped_when_recorded() {
    let t = setup("2dgpu-p2p");
    t.ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    t.ctx.set_preferred(BUF, R, t.vram(1)).unwrap();
    let q = t.ctx.query(BUF, R).unwrap();
    let (fd1, _) = t.fd_vm(1);
    assert_eq!(q.devices.len(), 2);
    // Device 0's VM names device 1's VRAM; device 1's own VM keeps
    // DEFAULT_DEVICE, which is the same place (and saves a madvise).
    assert_eq!((q.devices[0].atomic, q.devices[0].preferred_fd, q.devices[0].vmas), (DRM_XE_ATOMIC_DEVICE, fd1, 1));
    assert_eq!((q.devices[1].atomic, q.devices[1].preferred_fd, q.devices[1].vmas), (DRM_XE_ATOMIC_DEVICE, 0, 1));
    let m = t.sim.counters().madvise_calls;
    t.ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    t.ctx.set_preferred(BUF, R, t.vram(1)).unwrap();
    assert_eq!(t.sim.counters().madvise_calls, m, "recorded: no madvise issued");
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Read).unwrap(), t.vram(1));
    assert_eq!(t.ctx.set_atomic(BUF, R, 9), Err(Errno::EINVAL));
}

/// A madvise that fails on one VM after succeeding on another: what was
/// applied stays recorded, so setting the old value back reaches the kernel.
#[test]
fn partly_applied_attributes_stay_recorded() {
    let t = setup("2dgpu-p2p");
    let inj = Injection { device: Some(1), request: DRM_IOCTL_XE_MADVISE, ..Injection::count(Point::Ioctl, Errno::EFAULT, 1) };
    t.sim.inject(inj);
    assert_eq!(t.ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE), Err(Errno::EFAULT));
    let q = t.ctx.query(BUF, R).unwrap();
    assert_eq!((q.devices[0].atomic, q.devices[1].atomic), (DRM_XE_ATOMIC_DEVICE, DRM_XE_ATOMIC_UNDEFINED));
    t.ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_UNDEFINED).unwrap();
    let q = t.ctx.query(BUF, R).unwrap();
    assert_eq!(q.devices[0].atomic, DRM_XE_ATOMIC_UNDEFINED, "the library knew device 0 had DEVICE");
}

#[test]
fn resolve_follows_the_decision_table() {
    let t = setup("2dgpu-p2p");
    let r = |d: usize, a: Access| t.ctx.resolve(t.dev[d], 0, BUF, R, a).unwrap();
    // Rows 2-9: default placement is the accessing tile's VRAM (a write at
    // once; a read of system data after one read in place: rent or buy).
    assert_eq!(r(0, Access::Read), Pagemap::System);
    assert_eq!(r(1, Access::Write), t.vram(1));
    // Rows 15-19: atomics always local.
    t.ctx.set_preferred(BUF, R, t.vram(1)).unwrap();
    assert_eq!(r(0, Access::Atomic), t.vram(0));
    // Rows 11-12: an explicit peer preference is honoured for reads/writes.
    assert_eq!(r(0, Access::Read), t.vram(1));
    // Row 10: preferred system.
    t.ctx.set_preferred(BUF, R, Pagemap::System).unwrap();
    assert_eq!(r(1, Access::Read), Pagemap::System);
    // Row 21: atomics with attr CPU are refused.
    t.ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_CPU).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Atomic), Err(Errno::EACCES));
    // Row 14: an unreachable peer preference is not honoured.
    let n = setup("2dgpu-nolink");
    n.ctx.set_preferred(BUF, R, n.vram(1)).unwrap();
    assert_eq!(n.ctx.resolve(n.dev[0], 0, BUF, R, Access::Write).unwrap(), n.vram(0));
    // Row 23: integrated GPU.
    let i = setup("igpu");
    assert_eq!(i.ctx.resolve(i.dev[0], 0, BUF, R, Access::Atomic).unwrap(), Pagemap::System);
    assert_eq!(i.ctx.pagemap(i.dev[0], 0), Err(Errno::ENXIO), "a tile without VRAM");
}

#[test]
fn kernel_6_18_degrades_peer_placement_clearly() {
    let mut topo = Topology::preset("2dgpu-p2p").unwrap();
    topo.set_kernel(sim::KernelVersion::V6_18);
    let t = setup_topo(topo, rules());
    let p = t.alloc(1, BUF, R, t.vram(0));
    assert!(p.fell_back, "{p:?}");
    assert_eq!(p.pagemap, Some(t.vram(1)));
    let p = t.alloc(0, BUF + R, R, t.vram(0));
    assert_eq!((p.pagemap, p.fell_back), (Some(t.vram(0)), false));
}

/// A slot whose 16-bit generation ran out is retired, never reused: after
/// 65,535 opens and closes of one slot, a stale handle from the first
/// open would otherwise name the device opened next (the generation
/// wrapped to 0, and the C probe's stale handle and pagemap worked again).
#[test]
fn a_slot_whose_generation_ran_out_is_retired() {
    let t = setup("dgpu");
    let first = t.dev[0];
    t.ctx.close(first).unwrap();
    let mut last = first;
    for _ in 0..u16::MAX - 1 {
        last = t.ctx.open_index(0).unwrap();
        assert_eq!(last.slot, first.slot);
        t.ctx.close(last).unwrap();
    }
    assert_eq!(last.gen, u16::MAX - 1);
    let next = t.ctx.open_index(0).unwrap();
    assert_ne!(next.slot, first.slot, "the retired slot is not reused");
    for stale in [first, last] {
        assert_eq!(t.ctx.check_device(stale), Err(Errno::EBADF));
        assert_eq!(t.ctx.close(stale), Err(Errno::EBADF));
    }
    assert_eq!(t.ctx.check_device(next), Ok(()));
}

#[test]
fn bad_input_is_einval_and_stale_handles_are_ebadf() {
    let t = setup("2dgpu-p2p");
    let d = t.dev[0];
    let v = t.vram(0);
    let v1 = t.vram(1);
    let f = AllocFlags::default();
    assert_eq!(t.ctx.alloc_vram(d, BUF, 0, v, f), Err(Errno::EINVAL));
    assert_eq!(t.ctx.alloc_vram(d, BUF + 1, R, v, f), Err(Errno::EINVAL));
    assert_eq!(t.ctx.alloc_vram(d, BUF, R + 5, v, f), Err(Errno::EINVAL));
    assert_eq!(t.ctx.alloc_vram(d, u64::MAX - 4095, 8192, v, f), Err(Errno::EINVAL));
    assert_eq!(t.ctx.alloc_vram(d, BUF, R, Pagemap::Vram { device: 9, tile: 0 }, f), Err(Errno::EINVAL));
    assert_eq!(t.ctx.alloc_vram(d, BUF, R, Pagemap::Vram { device: 0, tile: 3 }, f), Err(Errno::EINVAL));
    assert_eq!(t.ctx.resolve(d, 5, BUF, R, Access::Read), Err(Errno::EINVAL));
    assert_eq!(t.ctx.evict(BUF, 0).map(|_| ()), Err(Errno::EINVAL));
    t.ctx.close(t.dev[1]).unwrap();
    assert_eq!(t.ctx.alloc_vram(t.dev[1], BUF, R, v, f), Err(Errno::EBADF));
    assert_eq!(t.ctx.close(t.dev[1]), Err(Errno::EBADF));
    assert_eq!(t.ctx.alloc_vram(d, BUF, R, v1, f), Err(Errno::EBADF), "pagemap of a closed device");
    // A new device in the same slot does not revive the old handle.
    let again = t.ctx.open_index(1).unwrap();
    assert_eq!(again.slot, t.dev[1].slot);
    assert_eq!(t.ctx.alloc_vram(t.dev[1], BUF, R, v, f), Err(Errno::EBADF));
    // The lock-free handle check the C ABI makes answers as the records do.
    assert_eq!(t.ctx.check_device(t.dev[1]), Err(Errno::EBADF), "closed, slot reopened");
    assert_eq!(t.ctx.check_device(again), Ok(()));
    assert_eq!(t.ctx.slot_gen(again.slot), Some(again.gen));
    assert_ne!(again.gen, t.dev[1].gen);
    assert_eq!(t.ctx.check_device(DeviceHandle { slot: 7, gen: 0 }), Err(Errno::EINVAL), "never opened");
    assert_eq!(t.ctx.check_device(DeviceHandle { slot: 4000, gen: 0 }), Err(Errno::EINVAL), "beyond the slots");
    t.ctx.close(again).unwrap();
    assert_eq!((t.ctx.check_device(again), t.ctx.slot_gen(again.slot)), (Err(Errno::EBADF), None));
}

/// A runtime's own fd on device 0 of `preset`, with a driver to issue its
/// ioctls.
fn runtime_device(preset: &str) -> (Arc<Sim>, xesvm::sim::driver::SimDriver, i32) {
    let sim = Sim::from_preset(preset).unwrap();
    let fd = sim.open_device(0).unwrap();
    (sim.clone(), xesvm::sim::driver::SimDriver::new(sim), fd)
}

/// A runtime's fault-mode VM on `fd` with the CPU-address mirror bound.
fn mirror_vm(drv: &xesvm::sim::driver::SimDriver, fd: i32) -> u32 {
    let vm = xesvm::driver::xe::vm_create(drv, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    xesvm::driver::xe::bind_cpu_addr_mirror(drv, fd, vm, 0, 1 << 47, false).unwrap();
    vm
}

#[test]
fn adopted_devices_are_never_destroyed() {
    let (sim, drv, fd) = runtime_device("dgpu");
    let vm = mirror_vm(&drv, fd);
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(sim.clone())), rules());
    let d = ctx.adopt(fd, vm).unwrap();
    let pm = ctx.pagemap(d, 0).unwrap();
    ctx.alloc_vram(d, BUF, R, pm, AllocFlags::default()).unwrap();
    ctx.close(d).unwrap();
    drop(ctx);
    // The runtime's fd and VM still work.
    xesvm::driver::xe::prefetch(&drv, fd, vm, BUF, R, 0).unwrap();
    assert_eq!(sim.placement(BUF, R), Placement::System);
}

/// One VM is one device: adopting the runtime's VM twice, or the VM the
/// library made for a device it opened, through the same fd, is EEXIST
/// (two devices over one VM had no link to each other, and closing one
/// stopped the other). Once closed, the VM may be adopted again.
#[test]
fn a_vm_adopted_twice_is_eexist() {
    let (sim, drv, fd) = runtime_device("dgpu");
    let vm = mirror_vm(&drv, fd);
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(sim.clone())), rules());
    let d = ctx.adopt(fd, vm).unwrap();
    assert_eq!(ctx.adopt_checked(fd, vm, false).map_err(|(e, _)| e), Err(Errno::EEXIST));
    let own = ctx.open_index(0).unwrap();
    let dev = ctx.device(own).unwrap();
    assert_eq!(ctx.adopt(dev.fd, dev.vm_id), Err(Errno::EEXIST), "the library's own device");
    // Refused before the probe: the held VM's attributes are not touched.
    let madvise = sim.counters().madvise_calls;
    assert_eq!(ctx.adopt(fd, vm), Err(Errno::EEXIST));
    assert_eq!(sim.counters().madvise_calls, madvise, "no probe of a held VM");
    ctx.close(d).unwrap();
    assert!(ctx.adopt(fd, vm).is_ok(), "closed, it may be adopted again");
}

/// One VM per tile: a second adoption sharing any tile's VM with a held
/// device is EEXIST, whichever tile it names it for.
#[test]
fn a_tile_vm_adopted_twice_is_eexist() {
    let (sim, drv, fd) = runtime_device("max-node");
    let (a, b, c) = (mirror_vm(&drv, fd), mirror_vm(&drv, fd), mirror_vm(&drv, fd));
    let ctx = Context::new(Box::new(xesvm::sim::driver::SimDriver::new(sim.clone())), rules());
    ctx.adopt_tiles_checked(fd, &[a, b], false).unwrap();
    assert_eq!(ctx.adopt_tiles_checked(fd, &[c, b], false).map_err(|(e, _)| e), Err(Errno::EEXIST));
    assert_eq!(ctx.adopt(fd, b), Err(Errno::EEXIST));
}

/// Two threads placing overlapping ranges on different devices: the range
/// ends in one defined place, its content intact, and the library's record
/// agrees with the driver.
#[test]
fn racing_placements_end_in_one_defined_place() {
    for round in 0..20 {
        let t = Arc::new(setup("2dgpu-p2p"));
        t.sim.cpu_access(BUF, 4 * R, sim::Access::Write, round).unwrap();
        let sum = t.sim.checksum(BUF, 4 * R).unwrap();
        let hs: Vec<_> = (0..2)
            .map(|d| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let (s, n) = if d == 0 { (BUF, 3 * R) } else { (BUF + R, 3 * R) };
                    t.ctx.alloc_vram(t.dev[d], s, n, t.vram(d), AllocFlags::default()).unwrap()
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(t.sim.checksum(BUF, 4 * R).unwrap(), sum);
        for (s, _) in t.ctx.records().overlapping(BUF, BUF + 4 * R) {
            let _ = s;
        }
        let mid = t.on(BUF + R, 2 * R);
        assert!(mid == t.vram_of(0) || mid == t.vram_of(1), "{mid:?}");
        t.sim.check_invariants().unwrap();
    }
}

/// svm_range_query restarts an interrupted VM_QUERY_MEM_RANGE_ATTRS like
/// every other ioctl the library issues (bounded), instead of returning EINTR.
#[test]
fn range_query_restarts_interrupted_ioctls() {
    let t = setup("2dgpu-p2p");
    t.alloc(0, BUF, R, t.vram(0));
    let inj = |n| Injection { request: DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, ..Injection::count(Point::Ioctl, Errno::EINTR, n) };
    t.sim.inject(inj(3));
    let q = t.ctx.query(BUF, R).unwrap();
    assert_eq!(q.devices.len(), 2);
    assert!(t.ctx.stats().retries_eintr >= 3);
    t.sim.inject(inj(u64::MAX));
    assert_eq!(t.ctx.query(BUF, R).err(), Some(Errno::EINTR), "bounded: a persistent EINTR comes back");
}

/// The per-tile placed-bytes counters resolve reads agree with the records
/// whatever happens to a range: moved behind the library's back and placed
/// again, split by a placement of half of it, held by the thrash guard,
/// invalidated, evicted (found by xesvm-soak, where they drifted by
/// hundreds of MiB).
#[test]
fn placed_byte_counters_follow_the_records() {
    let t = setup_topo(Topology::preset("2dgpu-p2p").unwrap(), Config { thrash_max_moves: 2, ..rules() });
    let agree = |t: &T, what: &str| {
        for d in 0..2 {
            let counted = t.ctx.device(t.dev[d]).unwrap().placed[0].load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(counted, t.ctx.placed_bytes(t.vram(d)), "device {d} after {what}");
        }
    };
    t.alloc(0, BUF, 2 * R, t.vram(0));
    agree(&t, "placing 4 MiB");
    // The CPU pulls it back to system memory; the library still believes VRAM.
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Read, 0).unwrap();
    t.alloc(0, BUF, 2 * R, t.vram(0));
    agree(&t, "placing it again after the CPU took it");
    t.alloc(1, BUF, R, t.vram(1));
    agree(&t, "moving half of it");
    for i in 0..6 {
        let d = i % 2;
        let _ = t.ctx.alloc_vram(t.dev[d], BUF, 2 * R, t.vram(d), AllocFlags::default());
        agree(&t, "ping-pong (the thrash guard holds it)");
    }
    t.ctx.invalidate(BUF + R, R).unwrap();
    agree(&t, "invalidating half");
    t.ctx.evict(BUF, 2 * R).unwrap();
    agree(&t, "evicting");
    assert_eq!(t.ctx.placed_bytes(t.vram(0)) + t.ctx.placed_bytes(t.vram(1)), 0);
}

/// A fence wait that every signal interrupts, and whose timeout never runs
/// down, ends: WAIT_USER_FENCE restarts are bounded (found by fuzz_calls,
/// where a persistent injected EINTR made alloc_vram spin forever). The
/// placement then answers EINTR, its own restarts bounded too.
#[test]
fn a_fence_wait_interrupted_forever_ends() {
    let t = setup("dgpu");
    let every = Injection { request: DRM_IOCTL_XE_WAIT_USER_FENCE, probability: 1.0, seed: 1, ..Injection::count(Point::Ioctl, Errno::EINTR, 0) };
    t.sim.inject(every);
    let began = std::time::Instant::now();
    let r = t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::NO_FALLBACK);
    assert_eq!(r.err(), Some(Errno::EINTR));
    assert!(began.elapsed() < std::time::Duration::from_secs(5), "took {:?}", began.elapsed());
    t.sim.clear_injections();
    // The bind itself happened: the range is placed by the next call.
    let p = t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::default()).unwrap();
    assert_eq!(p.pagemap, Some(t.vram(0)));
    assert!(t.sim.bytes_in(BUF, R, 0, 1).unwrap() == R);
}

// A small read of data in system memory is served there (remote read) rather
// than moving a whole 2 MiB SVM range for it; writes and large reads still go
// to VRAM (docs/kernel-model.md §14 row for system data, refined by docs/cost-model.md).
#[test]
fn small_reads_of_system_data_stay_in_system_memory() {
    let t = setup("dgpu");
    t.sim.cpu_access(BUF, 4 * R, sim::Access::Write, 1).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 64 << 10, Access::Read), Ok(Pagemap::System));
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 64 << 10, Access::Write), Ok(t.vram(0)));
    // Once the library put it in VRAM, a small read is served there.
    t.alloc(0, BUF, R, t.vram(0));
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 64 << 10, Access::Read), Ok(t.vram(0)));
}

// Placing in system memory data already there moves nothing but still binds
// it for the device (docs/kernel-model.md §7): the launch takes no GPU fault.
#[test]
fn alloc_to_system_of_resident_data_binds_without_moving() {
    let t = setup("dgpu");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    let moved = t.sim.counters().bytes_to_vram + t.sim.counters().bytes_to_system;
    let p = t.alloc(0, BUF, 2 * R, Pagemap::System);
    assert_eq!((p.pagemap, p.bytes_moved), (Some(Pagemap::System), 0));
    assert_eq!(t.sim.counters().bytes_to_vram + t.sim.counters().bytes_to_system, moved);
    let faults = t.sim.counters().gpu_faults;
    t.gpu(0, BUF, 2 * R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults, "the prefetch bound it");
    assert_eq!(t.on(BUF, 2 * R), Placement::System);
}

// Runtimes repeat their advice before every launch: an unchanged preferred
// location issues no madvise (each would zap PTEs, docs/kernel-model.md §9), a
// changed one is applied on every VM.
#[test]
fn repeated_preferred_location_issues_nothing_and_a_change_applies() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    t.ctx.set_preferred(BUF, 2 * R, t.vram(0)).unwrap();
    let ioctls = t.sim.counters().ioctls;
    for _ in 0..3 {
        t.ctx.set_preferred(BUF, 2 * R, t.vram(0)).unwrap();
    }
    assert_eq!(t.sim.counters().ioctls, ioctls, "unchanged: no ioctl");
    t.ctx.set_preferred(BUF, 2 * R, t.vram(1)).unwrap();
    assert!(t.sim.counters().ioctls > ioctls, "changed: madvise on the VMs");
    assert_eq!(t.ctx.query(BUF, 2 * R).unwrap().preferred, Some(t.vram(1)));
    // A part of the span is another record: applied, not skipped.
    let ioctls = t.sim.counters().ioctls;
    t.ctx.set_preferred(BUF, R, t.vram(0)).unwrap();
    assert!(t.sim.counters().ioctls > ioctls);
    assert_eq!(t.ctx.query(BUF, R).unwrap().preferred, Some(t.vram(0)));
    assert_eq!(t.ctx.query(BUF + R, R).unwrap().preferred, Some(t.vram(1)));
    // Unknown pagemaps are still refused on the fast path.
    assert_eq!(t.ctx.set_preferred(BUF, 2 * R, Pagemap::Vram { device: 9, tile: 0 }), Err(Errno::EINVAL));
}

/// Capacity first (docs/design.md): a range larger than the whole VRAM region
/// is never started there. It falls back at once (ENOSPC, nothing moved,
/// no prefetch), and what is already in that VRAM stays; with NO_FALLBACK
/// the call fails with ENOSPC.
#[test]
fn a_migration_that_cannot_fit_is_never_started() {
    let mut topo = Topology::preset("dgpu").unwrap();
    topo.devices[0].vram_per_tile = 64 * MIB;
    let t = setup_topo(topo, rules());
    t.sim.cpu_access(BUF, 48 * MIB, sim::Access::Write, 1).unwrap();
    t.sim.cpu_access(BUF + 64 * MIB, 96 * MIB, sim::Access::Write, 2).unwrap();
    t.alloc(0, BUF, 48 * MIB, t.vram(0));
    let before = t.sim.counters();
    let p = t.alloc(0, BUF + 64 * MIB, 96 * MIB, t.vram(0));
    let after = t.sim.counters();
    assert!(p.fell_back && p.cause == Some(Errno::ENOSPC) && p.pagemap == Some(Pagemap::System), "{p:?}");
    // Nothing went into VRAM or came out of it (the fallback's prefetch to
    // system memory only binds the range for the GPU, moving nothing).
    assert_eq!((after.bytes_to_vram, after.bytes_to_system, after.evictions), (before.bytes_to_vram, before.bytes_to_system, before.evictions));
    assert_eq!(t.on(BUF, 48 * MIB), t.vram_of(0), "the weights stay");
    let strict = AllocFlags::NO_FALLBACK;
    assert_eq!(t.ctx.alloc_vram(t.dev[0], BUF + 64 * MIB, 96 * MIB, t.vram(0), strict).map(|_| ()), Err(Errno::ENOSPC));
}

// Rent or buy (resolve): a read of data in system memory is served in place
// the first time a device reads it and moved the next time; data another
// device also reads in place stays in system memory.
#[test]
fn reads_of_system_data_rent_once_then_buy() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    let read = |d: usize, start: u64| t.ctx.resolve(t.dev[d], 0, start, R, Access::Read).unwrap();
    // First read: in place, bound for the device, nothing moved, no fault.
    assert_eq!(read(0, BUF), Pagemap::System);
    let p = t.alloc(0, BUF, R, Pagemap::System);
    assert_eq!(p.bytes_moved, 0);
    let faults = t.sim.counters().gpu_faults;
    t.gpu(0, BUF, R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults, "bound by the prefetch");
    // Second read by the same device: the remote pass paid for the move.
    assert_eq!(read(0, BUF), t.vram(0));
    assert_eq!(t.alloc(0, BUF, R, t.vram(0)).bytes_moved, R);
    // Another range read in place by both devices stays in system memory.
    let other = BUF + R;
    assert_eq!(read(0, other), Pagemap::System);
    t.alloc(0, other, R, Pagemap::System);
    assert_eq!(read(1, other), Pagemap::System);
    t.alloc(1, other, R, Pagemap::System);
    assert_eq!((read(0, other), read(1, other)), (Pagemap::System, Pagemap::System), "shared readers: host bandwidth for all");
    // Writes are never rented, except where another device uses the data in
    // place: writer and readers meet in system memory.
    assert_eq!(t.ctx.resolve(t.dev[0], 0, other, R, Access::Write).unwrap(), Pagemap::System);
    let third = BUF + 2 * R;
    assert_eq!(read(0, third), Pagemap::System);
    t.alloc(0, third, R, Pagemap::System);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, third, R, Access::Write).unwrap(), t.vram(0), "read in place by this device alone");
}

/// A device owns the fd the library opened, from open to the last
/// reference: closing the device (or dropping the context) closes it once;
/// an adopted fd is borrowed and stays open.
#[test]
fn a_device_owns_the_fd_it_opened_and_borrows_an_adopted_one() {
    use xesvm::driver::{ioctl, xe};
    use xesvm::sim::driver::SimDriver;
    let sim = Sim::from_preset("dgpu").unwrap();
    let raw = SimDriver::new(sim.clone());
    let alive = |fd| {
        let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, ..Default::default() };
        ioctl(&raw, fd, DRM_IOCTL_XE_DEVICE_QUERY, &mut q)
    };
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), rules());
    let h = ctx.open_index(0).unwrap();
    let fd = ctx.device(h).unwrap().fd;
    assert_eq!(alive(fd), Ok(()));
    ctx.close(h).unwrap();
    assert_eq!(alive(fd), Err(Errno::EBADF), "closed with the device");
    // A context dropped with its devices open releases them.
    let h = ctx.open_index(0).unwrap();
    let fd = ctx.device(h).unwrap().fd;
    drop(ctx);
    assert_eq!(alive(fd), Err(Errno::EBADF), "closed with the context");
    // Adopted: the runtime's fd and VM outlive the device and the context.
    let fd = sim.open_device(0).unwrap();
    let vm = mirror_vm(&raw, fd);
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), rules());
    let h = ctx.adopt(fd, vm).unwrap();
    ctx.close(h).unwrap();
    drop(ctx);
    assert_eq!(alive(fd), Ok(()), "an adopted fd stays open");
    assert!(xe::query_mem_range_attrs(&raw, fd, vm, 0, 1 << 20).is_ok(), "and its VM exists");
}

/// Rule 6 (docs/design.md, "Deciding: rent or buy"): on a device with two
/// tiles, a range that moved before is not prefetched but left to the
/// launch's GPU fault, which binds only the tile that faults, so its next
/// move pays one TLB invalidation, not one per tile. SVM_ALLOC_PREFETCH_NOW
/// prefetches anyway; the first placement (from system memory) prefetches.
#[test]
fn multi_tile_moves_are_left_to_the_gpu_fault() {
    let t = setup("max-node");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let first = t.alloc(0, BUF, R, t.vram(0));
    assert!(!first.on_fault);
    assert_eq!(first.bytes_moved, R);
    assert_eq!(t.on(BUF, R), t.vram_of(0));

    let p = t.alloc(1, BUF, R, t.vram(1));
    assert!(p.on_fault, "{p:?}");
    assert_eq!((p.pagemap, p.bytes_moved), (Some(t.vram(1)), 0));
    assert_eq!(t.on(BUF, R), t.vram_of(0), "nothing moved yet");
    let faults = t.sim.counters().gpu_faults;
    t.gpu(1, BUF, R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults - faults, 1);
    assert_eq!(t.on(BUF, R), t.vram_of(1), "the fault moved it where the madvise said");
    assert!(t.ctx.alloc_vram(t.dev[1], BUF, R, t.vram(1), AllocFlags::default()).unwrap().in_place);

    let tlb = t.sim.counters().tlb_invalidations;
    let q = t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::PREFETCH_NOW).unwrap();
    assert!(!q.on_fault);
    assert_eq!(q.bytes_moved, R);
    assert_eq!(t.on(BUF, R), t.vram_of(0));
    assert_eq!(t.sim.counters().tlb_invalidations - tlb, 1, "bound on the one tile that faulted");
}

/// Rule 6 stands aside for an atomic span (the runtime insists) the CPU
/// pulled back: the atomic fault would stamp the kernel's 5 ms timeslice on
/// it (xe_svm_handle_pagefault), which the CPU's next read waits out; the
/// prefetch asks for none. From a peer's VRAM too, where the span's moves
/// between pull-backs cost less in the other tile's TLB invalidations (40
/// us a range) than that timeslice: one 2 MiB range is prefetched.
#[test]
fn an_atomic_span_the_cpu_pulled_back_is_prefetched_on_a_multi_tile_device() {
    let t = setup("max-node");
    let insist = AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD;
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    assert!(!t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), insist).unwrap().on_fault);
    t.gpu(0, BUF, R, sim::Access::Atomic).unwrap();
    t.sim.cpu_access(BUF, R, sim::Access::Read, 0).unwrap();
    assert_eq!(t.on(BUF, R), Placement::System, "the CPU pulled it back");
    let p = t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), insist).unwrap();
    assert!(!p.on_fault && p.bytes_moved == R, "prefetched: {p:?}");
    assert_eq!(t.on(BUF, R), t.vram_of(0));
    let p = t.ctx.alloc_vram(t.dev[1], BUF, R, t.vram(1), insist).unwrap();
    assert!(!p.on_fault && p.bytes_moved == R, "one range from a peer's VRAM, prefetched: {p:?}");
    assert_eq!(t.on(BUF, R), t.vram_of(1));
}

/// A histogram cut into 92 ranges (4 KiB and 64 KiB pieces at both ends
/// of a span across a 2 MiB boundary, its neighbours' pages placed in
/// system memory keeping the madvise at its ends): four moves per
/// pull-back would pay 14.7 ms of the other tile's invalidations against
/// one 5 ms timeslice, so from a peer's VRAM it is left to the fault.
/// Before the CPU ever pulled it back, its one move so far costs 3.7 ms
/// of invalidations, under the one timeslice a first pull-back would
/// wait out: prefetched.
#[test]
fn an_atomic_span_of_many_ranges_is_left_to_the_fault_from_a_peer_on_a_multi_tile_device() {
    let t = setup("max-node");
    let (start, size) = (BUF + 4096, 2 * R - 2 * 4096);
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    for page in [BUF, BUF + 2 * R - 4096] {
        assert_eq!(t.alloc(0, page, 4096, Pagemap::System).pagemap, Some(Pagemap::System));
    }
    let [first, p0, p1] = histogram_round_then_turns(&t, start, size);
    assert!(!first.on_fault && first.bytes_moved == size, "no pull-back seen yet, prefetched: {first:?}");
    assert!(!p0.on_fault && p0.bytes_moved == size, "from system memory, prefetched: {p0:?}");
    assert!(p1.on_fault, "from a peer's VRAM, left to the fault: {p1:?}");
}

/// Before the CPU ever pulled it back, a histogram in 92 ranges that
/// devices 0 and 1 took twice each would pay 14.7 ms of the other tile's
/// invalidations for its next move, more than the one 5 ms timeslice a
/// pull-back would wait out: left to the fault.
#[test]
fn an_atomic_span_of_many_ranges_moved_often_is_left_to_the_fault_before_any_pull_back() {
    let t = setup("max-node");
    let (start, size) = (BUF + 4096, 2 * R - 2 * 4096);
    let insist = AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD;
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    for page in [BUF, BUF + 2 * R - 4096] {
        assert_eq!(t.alloc(0, page, 4096, Pagemap::System).pagemap, Some(Pagemap::System));
    }
    let mut last = None;
    for d in [0, 1, 0, 1, 0] {
        let p = t.ctx.alloc_vram(t.dev[d], start, size, t.vram(d), insist).unwrap();
        t.gpu(d, start, size, sim::Access::Atomic).unwrap();
        last = Some(p);
    }
    let p = last.unwrap();
    assert!(p.on_fault, "four moves before, no pull-back: left to the fault: {p:?}");
}

/// An atomic histogram on devices 0 and 1 of a multi-tile machine: device
/// 0 prefetches it, device 1 takes it before the CPU ever touched it, the
/// CPU reads it back; then each device asks for it again. Returns device
/// 1's first placement and those two.
fn histogram_round_then_turns(t: &T, start: u64, size: u64) -> [xesvm::policy::Placed; 3] {
    let insist = AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD;
    assert!(!t.ctx.alloc_vram(t.dev[0], start, size, t.vram(0), insist).unwrap().on_fault);
    t.gpu(0, start, size, sim::Access::Atomic).unwrap();
    let first = t.ctx.alloc_vram(t.dev[1], start, size, t.vram(1), insist).unwrap();
    t.gpu(1, start, size, sim::Access::Atomic).unwrap();
    t.sim.cpu_access(start, size, sim::Access::Read, 0).unwrap();
    assert_eq!(t.on(start, size), Placement::System, "the CPU pulled it back");
    let p0 = t.ctx.alloc_vram(t.dev[0], start, size, t.vram(0), insist).unwrap();
    // Device 0 uses it before device 1 asks, as in a round.
    t.gpu(0, start, size, sim::Access::Atomic).unwrap();
    [first, p0, t.ctx.alloc_vram(t.dev[1], start, size, t.vram(1), insist).unwrap()]
}

/// A histogram of one page the CPU pulled back before is prefetched from a
/// peer's VRAM: which device runs last before the CPU's next read is not
/// known, and that one's atomic fault would stamp the 5 ms timeslice; a
/// prefetch costs each device at most its other tile's TLB invalidation on
/// one range.
#[test]
fn a_one_range_histogram_the_cpu_reads_is_prefetched_from_a_peer_on_a_multi_tile_device() {
    let t = setup("max-node");
    let page = 4096;
    t.sim.cpu_access(BUF, page, sim::Access::Write, 1).unwrap();
    let [first, p0, p1] = histogram_round_then_turns(&t, BUF, page);
    assert!(!first.on_fault && first.bytes_moved == page, "no pull-back seen yet, prefetched: {first:?}");
    assert!(!p0.on_fault && p0.bytes_moved == page, "{p0:?}");
    assert!(!p1.on_fault && p1.bytes_moved == page, "from a peer's VRAM, prefetched: {p1:?}");
    assert_eq!(t.on(BUF, page), t.vram_of(1));
}

/// Per-device bind state (docs/design.md, "Deciding: rent or buy"): a range
/// in system memory that another device placed is bound for a device whose
/// VM never had it by one queued prefetch (one ioctl, found in place), so
/// its launch does not fault range by range; once bound, nothing more. A
/// move unbinds it everywhere, and the next use binds again.
#[test]
fn a_range_in_system_memory_is_bound_once_for_each_device() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    let first = t.alloc(0, BUF, 2 * R, Pagemap::System);
    assert_eq!(first.bytes_moved, 0);
    let p = t.alloc(1, BUF, 2 * R, Pagemap::System);
    assert!(p.in_place && p.ioctls == 1, "{p:?}");
    let faults = t.sim.counters().gpu_faults;
    t.gpu(1, BUF, 2 * R, sim::Access::Read).unwrap();
    t.gpu(0, BUF, 2 * R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults, "bound for both devices");
    let again = t.alloc(1, BUF, 2 * R, Pagemap::System);
    assert!(again.in_place && again.ioctls == 0, "{again:?}");

    // Moved to GPU 0 and back: every binding went with the moves.
    t.alloc(0, BUF, 2 * R, t.vram(0));
    t.ctx.evict(BUF, 2 * R).unwrap();
    let p = t.alloc(1, BUF, 2 * R, Pagemap::System);
    assert!(p.ioctls >= 1, "{p:?}");
    let faults = t.sim.counters().gpu_faults;
    t.gpu(1, BUF, 2 * R, sim::Access::Read).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults);
}

/// A madvise splits the mirror VMA at its span's ends and destroys the SVM
/// ranges straddling them (`xe_svm_unmap_address_range`, kernel-model §8):
/// a packed neighbour bound in system memory in the same chunk loses its
/// binding, and its next placement binds it again (its record said bound).
/// (The runtime placed the neighbour there: one this device's engine
/// placement rents there would have come along.)
#[test]
fn a_neighbour_in_the_chunk_a_madvise_splits_is_bound_again() {
    let t = setup("2dgpu-p2p");
    let (a, b) = (BUF, BUF + MIB);
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let explicit = |flags| t.ctx.alloc_vram(t.dev[0], a, MIB, Pagemap::System, flags).unwrap();
    assert_eq!(explicit(AllocFlags::empty()).bytes_moved, 0);
    let again = explicit(AllocFlags::empty());
    assert!(again.in_place && again.ioctls == 0, "{again:?}");
    // The neighbour moves to GPU 0's VRAM: its preferred location is
    // advised over its span alone (a neighbour is recorded in the chunk).
    t.alloc(0, b, MIB, t.vram(0));
    let p = t.alloc(0, a, MIB, Pagemap::System);
    assert!(p.in_place && p.ioctls == 1, "bound again: {p:?}");
    t.reads_without_faults(0, a, MIB, "the launch finds it bound");
}

/// An engine placement in system memory that shares a chunk with a
/// neighbour recorded elsewhere is bound, not advised: a madvise would
/// split the VMA inside the chunk and destroy the SVM ranges straddling
/// the cut (the neighbour's too), where the bind alone spares the launch
/// its faults. (The neighbour is in the peer's VRAM: one in this device's
/// would have taken the span along, and it would stay there.)
#[test]
fn system_memory_beside_a_packed_neighbour_is_bound_not_advised() {
    let t = setup("2dgpu-p2p");
    let (a, b) = (BUF, BUF + MIB);
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.alloc(1, a, MIB, t.vram(1));
    let p = t.alloc(0, b, MIB, Pagemap::System);
    assert_eq!(p.vms_applied, 0, "no madvise: {p:?}");
    assert_eq!(t.on(b, MIB), Placement::System);
    t.reads_without_faults(0, b, MIB, "bound by the prefetch");
}

/// The runtime's free hook (`invalidate`): the munmap unbound the span and
/// every SVM range straddling its ends, so the next placement of the span,
/// or of a packed neighbour in its chunks, binds again.
#[test]
fn after_the_free_hook_a_span_and_its_neighbour_are_bound_again() {
    let t = setup("2dgpu-p2p");
    let (a, b) = (BUF, BUF + MIB);
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.alloc(0, a, MIB, Pagemap::System);
    t.alloc(0, b, MIB, Pagemap::System);
    t.sim.munmap(b, MIB).unwrap();
    t.sim.mmap(b, MIB, false).unwrap();
    t.ctx.invalidate(b, MIB).unwrap();
    t.sim.cpu_access(b, MIB, sim::Access::Write, 2).unwrap();
    for span in [a, b] {
        let p = t.alloc(0, span, MIB, Pagemap::System);
        assert!(p.ioctls >= 1, "bound again: {p:?}");
    }
    t.reads_without_faults(0, BUF, R, "the launch finds both bound");
}

/// On a device without VRAM the engine is the runtime's prefetch, which
/// binds at every launch: a free and allocation again that nobody told the
/// library of (munmap, mmap) unbinds a span its record still calls bound.
#[test]
fn an_integrated_gpu_binds_at_every_placement() {
    let t = setup("igpu");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Read), Ok(Pagemap::System));
    t.alloc(0, BUF, R, Pagemap::System);
    t.sim.munmap(BUF, R).unwrap();
    t.sim.mmap(BUF, R, false).unwrap();
    t.sim.cpu_access(BUF, R, sim::Access::Write, 2).unwrap();
    let p = t.alloc(0, BUF, R, Pagemap::System);
    assert!(p.in_place && p.ioctls == 1, "bound again: {p:?}");
    t.reads_without_faults(0, BUF, R, "the launch finds it bound");
}

/// Where no device has VRAM, every page is in system memory: a placement
/// reads no page table (no answer could change it), and a span never
/// populated is bound and populated by one queued prefetch, not waited for.
#[test]
fn an_integrated_gpu_places_without_reading_the_page_table() {
    let t = setup("igpu");
    let reads = t.sim.counters().page_table_reads;
    let p = t.alloc(0, BUF, R, Pagemap::System);
    // One ioctl: the queued prefetch, no fence to wait on.
    assert!(p.pagemap == Some(Pagemap::System) && p.ioctls == 1 && !p.verified, "bound, believed: {p:?}");
    assert_eq!(t.sim.counters().page_table_reads, reads, "no page-table read");
    t.reads_without_faults(0, BUF, R, "the launch finds it bound");
    assert_eq!(t.on(BUF, R), Placement::System);
}

/// A mapping that ends inside a chunk is covered there by ranges smaller
/// than 2 MiB: a neighbour's prefetch moves the pieces it covers and the
/// first of the next buffer's, not the rest. The page table's sample of the
/// buffer's start would call it moved; its last page says it is not, so
/// the placement moves it and the launch does not fault.
#[test]
fn a_buffer_partly_moved_with_its_neighbour_is_still_placed() {
    let t = setup("2dgpu-p2p");
    let (a, b, end) = (BUF, BUF + 0x68_4000, BUF + 0x6E_6000);
    t.sim.munmap(BUF, 4 * R).unwrap();
    t.sim.mmap(BUF, end - BUF, false).unwrap();
    t.sim.cpu_access(BUF, end - BUF, sim::Access::Write, 1).unwrap();
    t.alloc(0, a, b - a, t.vram(0));
    assert_eq!(t.on(b, 4096), t.vram_of(0), "the first piece went with the neighbour");
    assert_eq!(t.on(end - 4096, 4096), Placement::System);
    let p = t.alloc(0, b, end - b, t.vram(0));
    assert!(p.bytes_moved > 0, "{p:?}");
    t.reads_without_faults(0, b, end - b, "no fault");
}

/// A record speaks for a span only if it holds half of it: a packed
/// neighbour's record sharing one page with the span does not make it a
/// span devices take turns at (the default engine would leave it to the
/// faults) nor say where it is.
#[test]
fn a_neighbours_record_sharing_a_page_does_not_speak_for_the_span() {
    let t = setup_topo(Topology::preset("2dgpu-p2p").unwrap(), Config::default());
    let (a, b) = (BUF, BUF + MIB);
    t.sim.cpu_access(BUF, 3 * MIB, sim::Access::Write, 1).unwrap();
    t.alloc(0, a, MIB + 4096, t.vram(0));
    let p = t.alloc(1, b, 2 * MIB, t.vram(1));
    assert!(!p.on_fault && p.bytes_moved > 0, "{p:?}");
}

/// Several readers of what a peer holds (docs/design.md, "Deciding: rent or
/// buy"): the first device to read GPU 0's data moves it (a peer link copies
/// it once); a second reader since the last write sends it to system
/// memory, which every device reads at host bandwidth, instead of moving it
/// from reader to reader. A write starts the count again. Below a chunk: a
/// larger span a linked peer holds is read over the link by every reader.
#[test]
fn data_several_devices_read_from_a_peer_goes_to_system_memory() {
    let t = setup("4dgpu-p2p");
    const R: u64 = MIB / 2;
    // Populated first (a never-populated buffer is born split, policy/birth.rs).
    t.sim.cpu_access(BUF, 32 * R, sim::Access::Write, 1).unwrap();
    let read = |d: usize| t.ctx.resolve(t.dev[d], 0, BUF, 2 * R, Access::Read).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, 2 * R, Access::Write), Ok(t.vram(0)));
    t.alloc(0, BUF, 2 * R, t.vram(0));
    t.gpu(0, BUF, 2 * R, sim::Access::Write).unwrap();
    assert_eq!(read(1), t.vram(1), "one reader: moved to it");
    t.alloc(1, BUF, 2 * R, t.vram(1));
    assert_eq!(read(2), Pagemap::System, "a second reader: system memory");
    t.alloc(2, BUF, 2 * R, Pagemap::System);
    assert!(t.on(BUF, 2 * R) == Placement::System);
    assert_eq!(read(3), Pagemap::System, "read in place by the others");

    // Elsewhere: GPU 1 is told to move GPU 0's data (and does not yet);
    // GPU 0 writes it again, a new value whose readers start again.
    const B: u64 = BUF + 16 * R;
    let read = |d: usize| t.ctx.resolve(t.dev[d], 0, B, 2 * R, Access::Read).unwrap();
    t.alloc(0, B, 2 * R, t.vram(0));
    assert_eq!(read(1), t.vram(1));
    assert_eq!(t.ctx.resolve(t.dev[0], 0, B, 2 * R, Access::Write), Ok(t.vram(0)));
    assert_eq!(read(2), t.vram(2), "one reader since the write");
    assert_eq!(read(3), Pagemap::System, "two");
}

/// A runtime that places per 64 KiB piece: the kernel migrates whole SVM
/// ranges (up to 2 MiB, docs/kernel-model.md §2), so the first piece of a
/// chunk brings the chunk along. The other pieces are found there with one
/// page-table read each and no prefetch.
#[test]
fn pieces_of_a_chunk_another_piece_moved_are_found_there() {
    let t = setup("2dgpu-p2p");
    const PIECE: u64 = 64 << 10;
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let first = t.alloc(0, BUF, PIECE, t.vram(0));
    assert!(first.ioctls >= 1 && first.bytes_moved == PIECE);
    assert_eq!(t.on(BUF, R), t.vram_of(0), "the kernel moved the whole range");
    let reads = t.sim.counters().page_table_reads;
    for i in 1..(R / PIECE) {
        let p = t.alloc(0, BUF + i * PIECE, PIECE, t.vram(0));
        assert!(p.ioctls == 0 && p.verified && p.bytes_moved == 0, "piece {i}: {p:?}");
    }
    assert_eq!(t.sim.counters().page_table_reads - reads, R / PIECE - 1, "one read a piece");
    // A piece of another chunk nothing placed is prefetched.
    t.sim.cpu_access(BUF + R, R, sim::Access::Write, 1).unwrap();
    assert!(t.alloc(0, BUF + R, PIECE, t.vram(0)).ioctls >= 1);
}

/// Producer and consumer (docs/design.md, "Deciding: rent or buy"): GPU 0
/// writes a buffer every round and GPU 1 reads it. After GPU 1 took it (its
/// first read from GPU 0's VRAM), GPU 0's writes go where GPU 1 holds it,
/// over the link, instead of pulling it back and GPU 1 moving it again each
/// round. GPU 1's own write ends it.
#[test]
fn a_producer_writes_where_its_consumer_holds_the_data() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    // Below a chunk (a consumer reads a larger span where it lies, over the
    // link, and never holds it).
    const R: u64 = MIB / 2;
    let want = |d: usize, a: Access| t.ctx.resolve(t.dev[d], 0, BUF, 2 * R, a).unwrap();
    assert_eq!(want(0, Access::Write), t.vram(0));
    t.alloc(0, BUF, 2 * R, t.vram(0));
    t.gpu(0, BUF, 2 * R, sim::Access::Write).unwrap();
    assert_eq!(want(1, Access::Read), t.vram(1), "the consumer's first read moves it");
    t.alloc(1, BUF, 2 * R, t.vram(1));
    let moved = t.sim.counters().bytes_device_to_device;
    for round in 0..3 {
        assert_eq!(want(0, Access::Write), t.vram(1), "round {round}: written where the reader holds it");
        let p = t.alloc(0, BUF, 2 * R, t.vram(1));
        assert_eq!(p.bytes_moved, 0);
        t.gpu(0, BUF, 2 * R, sim::Access::Write).unwrap();
        assert_eq!(want(1, Access::Read), t.vram(1));
        t.alloc(1, BUF, 2 * R, t.vram(1));
        t.gpu(1, BUF, 2 * R, sim::Access::Read).unwrap();
    }
    assert_eq!(t.sim.counters().bytes_device_to_device, moved, "nothing moved back and forth");
    assert_eq!(t.on(BUF, 2 * R), t.vram_of(1));
    // The consumer writes it itself: the producer takes it back.
    assert_eq!(want(1, Access::Write), t.vram(1));
    assert_eq!(want(0, Access::Write), t.vram(0));
}

/// Two GPUs read random 64 KiB pieces of a table the CPU wrote, calling
/// per piece: each piece is served in system memory and bound for the
/// device by one queued prefetch, not advised (a madvise would cut the
/// chunk a neighbour allocation may move in later, and the neighbour
/// would then migrate in 4 KiB pieces); a piece asked again by the same
/// device costs no ioctl, nothing moves, and the launches take no GPU
/// fault.
#[test]
fn pieces_of_a_table_read_at_random_are_bound_per_device_not_advised() {
    let t = setup("2dgpu-p2p");
    const PIECE: u64 = 64 << 10;
    const TABLE: u64 = 4 * R;
    t.sim.cpu_access(BUF, TABLE, sim::Access::Write, 1).unwrap();
    let faults = t.sim.counters().gpu_faults;
    let mut x = 7u64;
    let mut placed = std::collections::HashSet::new();
    let mut repeats = 0;
    for round in 0..8 {
        for d in 0..2 {
            for _ in 0..16 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let start = BUF + (x >> 33) % (TABLE / PIECE) * PIECE;
                assert_eq!(t.ctx.resolve(t.dev[d], 0, start, PIECE, Access::Read), Ok(Pagemap::System));
                let ioctls = t.sim.counters().ioctls;
                let p = t.alloc(d, start, PIECE, Pagemap::System);
                assert_eq!((p.pagemap, p.bytes_moved), (Some(Pagemap::System), 0), "round {round}: {p:?}");
                let spent = t.sim.counters().ioctls - ioctls;
                if placed.insert((d, start)) {
                    assert!(spent <= 1, "round {round}, device {d}: a new piece costs one bind: {p:?}");
                } else {
                    assert!(p.in_place && spent == 0, "round {round}, device {d}: a piece asked again: {p:?}");
                    repeats += 1;
                }
                t.gpu(d, start, PIECE, sim::Access::Read).unwrap();
            }
        }
    }
    assert!(repeats > 50, "the test asks pieces again ({repeats})");
    assert_eq!(t.ctx.stats().madvise, 0, "no piece advised");
    // An explicit request for a piece bound there gets the whole flow:
    // system memory advised on every VM, so no fault moves it.
    t.alloc(0, BUF, PIECE, Pagemap::System);
    assert!(t.alloc(0, BUF, PIECE, Pagemap::System).in_place);
    let p = t.ctx.alloc_vram(t.dev[0], BUF, PIECE, Pagemap::System, AllocFlags::default()).unwrap();
    assert!(!p.in_place && p.vms_applied == 0b11, "{p:?}");
    assert_eq!(t.sim.counters().gpu_faults, faults, "every piece was bound before its launch");
    assert_eq!(t.on(BUF, TABLE), Placement::System, "nothing moved");
    assert_eq!(t.sim.counters().bytes_to_vram, 0);
}

/// Small allocations packed in an arena: a small read of one served in
/// system memory leaves the mapping whole, so its neighbour's move into
/// VRAM later migrates in the ranges the prefetch alone would use (a
/// chunk-wide madvise to system memory for the small read, undone at the
/// neighbour's unaligned ends, cut it into 4 KiB ranges: 23 of them here).
#[test]
fn a_small_read_in_system_memory_does_not_cut_its_neighbours_move() {
    let t = setup("2dgpu-p2p");
    const A: u64 = 136 << 10;
    const B: u64 = 284 << 10;
    t.sim.cpu_access(BUF, A + B, sim::Access::Write, 1).unwrap();
    let p = t.alloc(0, BUF, A, Pagemap::System);
    assert_eq!((p.pagemap, p.bytes_moved), (Some(Pagemap::System), 0));
    let small = t.sim.counters().migrations_4k;
    let p = t.alloc(0, BUF + A, B, t.vram(0));
    assert_eq!((p.pagemap, p.bytes_moved), (Some(t.vram(0)), B), "{p:?}");
    assert_eq!(t.on(BUF + A, B), t.vram_of(0));
    assert_eq!(t.sim.counters().migrations_4k - small, 0, "no 4 KiB ranges");
}

/// Split birth (policy/birth.rs): a buffer nothing populated, asked of
/// GPU 0's VRAM, is born there for its first chunk only and in system
/// memory for the rest. The CPU reading it back pulls that chunk back,
/// which the page table shows: the next call holds the whole buffer in
/// system memory (one 2 MiB copy back, not the whole buffer).
#[test]
fn a_gpu_born_buffer_the_cpu_reads_back_is_held_in_system_memory() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 16 * R;
    let p = t.alloc(0, BUF, SIZE, t.vram(0));
    assert_eq!((p.pagemap, p.bytes_moved), (Some(Pagemap::System), 0), "{p:?}");
    assert_eq!(t.on(BUF, R), t.vram_of(0), "the probe is born in VRAM");
    assert_eq!(t.on(BUF + R, SIZE - R), Placement::System);
    let faults = t.sim.counters().gpu_faults;
    t.gpu(0, BUF, SIZE, sim::Access::Write).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults, "both parts were bound");
    t.sim.cpu_access(BUF, SIZE, sim::Access::Read, 0).unwrap();
    assert_eq!(t.sim.counters().bytes_to_system, R, "only the probe came back");
    for round in 0..3 {
        assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, SIZE, Access::Write), Ok(if round == 0 { t.vram(0) } else { Pagemap::System }));
        let p = t.ctx.alloc_vram(t.dev[0], BUF, SIZE, t.ctx.resolve(t.dev[0], 0, BUF, SIZE, Access::Write).unwrap(), AllocFlags::ENGINE).unwrap();
        assert_eq!(p.pagemap, Some(Pagemap::System), "round {round}: {p:?}");
        t.gpu(0, BUF, SIZE, sim::Access::Write).unwrap();
        t.sim.cpu_access(BUF, SIZE, sim::Access::Read, 0).unwrap();
    }
    assert_eq!(t.sim.counters().bytes_to_vram + t.sim.counters().bytes_to_system, R, "nothing else moved");
}

/// A split-born buffer the GPU keeps using (no CPU in between) moves to its
/// VRAM whole on the owner's third call (rent or buy); another device's
/// call ends the split at once, and the normal flow places the whole span.
#[test]
fn a_split_birth_ends_in_vram_for_its_owner_or_at_another_device() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 8 * R;
    for call in 0..3 {
        let p = t.alloc(0, BUF, SIZE, t.vram(0));
        let want = if call < 2 { Pagemap::System } else { t.vram(0) };
        assert_eq!((p.pagemap, p.split), (Some(want), call < 2), "call {call}: {p:?}");
        t.gpu(0, BUF, SIZE, sim::Access::Write).unwrap();
    }
    assert_eq!(t.on(BUF, SIZE), t.vram_of(0));

    // A fresh process (that one learned its GPU keeps what it writes).
    let t = setup("2dgpu-p2p");
    const B: u64 = BUF + 64 * R;
    t.alloc(0, B, SIZE, t.vram(0));
    t.gpu(0, B, SIZE, sim::Access::Write).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[1], 0, B, SIZE, Access::Read), Ok(Pagemap::System), "read in place first");
    let p = t.alloc(1, B, SIZE, Pagemap::System);
    assert_eq!(p.pagemap, Some(Pagemap::System));
    assert_eq!(t.on(B, SIZE), Placement::System, "the probe went back to system memory");
    // Writer and readers meet there: GPU 0 writing it again keeps it there.
    assert_eq!(t.ctx.resolve(t.dev[0], 0, B, SIZE, Access::Write), Ok(Pagemap::System));
    // Data the CPU populated is not split.
    const C: u64 = BUF + 128 * R;
    t.sim.cpu_access(C, SIZE, sim::Access::Write, 1).unwrap();
    assert_eq!(t.alloc(0, C, SIZE, t.vram(0)).pagemap, Some(t.vram(0)));
    assert_eq!(t.on(C, SIZE), t.vram_of(0));
}

/// A split-born buffer its owner reads (a table the GPU initialized, an
/// intermediate it writes and reads back): the GPU keeps what it wrote, so
/// the owner's call after the read moves the rest at once.
#[test]
fn a_split_birth_its_owner_reads_moves_there_on_the_next_call() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 8 * R;
    assert!(t.alloc(0, BUF, SIZE, t.vram(0)).split);
    t.gpu(0, BUF, SIZE, sim::Access::Write).unwrap();
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, SIZE, Access::Read), Ok(t.vram(0)));
    let p = t.alloc(0, BUF, SIZE, t.vram(0));
    assert_eq!((p.pagemap, p.split, p.bytes_moved), (Some(t.vram(0)), false, SIZE - R), "only the rest moved: {p:?}");
    assert_eq!(t.on(BUF, SIZE), t.vram_of(0));
}

/// The split birth learns: once a GPU of this process kept a buffer it
/// wrote (its owner read it), the next never-populated buffer is born
/// whole in VRAM; CPU hand-offs of split buffers bring the split back.
#[test]
fn split_birth_follows_what_this_process_does_with_gpu_written_buffers() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 4 * R;
    let kept = |at: u64| {
        assert!(t.alloc(0, at, SIZE, t.vram(0)).split);
        t.gpu(0, at, SIZE, sim::Access::Write).unwrap();
        t.ctx.resolve(t.dev[0], 0, at, SIZE, Access::Read).unwrap();
        assert!(!t.alloc(0, at, SIZE, t.vram(0)).split, "bought");
    };
    let handed = |at: u64| {
        assert!(t.alloc(0, at, SIZE, t.vram(0)).split);
        t.gpu(0, at, SIZE, sim::Access::Write).unwrap();
        t.sim.cpu_access(at, SIZE, sim::Access::Read, 0).unwrap();
        assert_eq!(t.alloc(0, at, SIZE, t.vram(0)).pagemap, Some(Pagemap::System), "held");
    };
    handed(BUF);
    kept(BUF + 16 * R);
    kept(BUF + 32 * R);
    let p = t.alloc(0, BUF + 48 * R, SIZE, t.vram(0));
    assert!(!p.split && p.pagemap == Some(t.vram(0)), "learned: born whole in VRAM: {p:?}");
    assert_eq!(t.on(BUF + 48 * R, SIZE), t.vram_of(0));
}

/// The walk rule: a runtime that calls per 64 KiB piece of a buffer a
/// kernel reads whole. The first walk reads it where it lies (rent); a new
/// walk inside it reads it again, and the last walk's span moves to VRAM
/// at once (buy), not piece by piece. A buffer walked once never moves.
#[test]
fn a_buffer_walked_piece_by_piece_again_moves_whole() {
    let t = setup("2dgpu-p2p");
    const PIECE: u64 = 64 << 10;
    const SIZE: u64 = 8 * R;
    const ONCE: u64 = BUF + 32 * R;
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    t.sim.cpu_access(ONCE, SIZE, sim::Access::Write, 1).unwrap();
    let walk = |at: u64| {
        for i in 0..SIZE / PIECE {
            let s = at + i * PIECE;
            let pm = t.ctx.resolve(t.dev[0], 0, s, PIECE, Access::Read).unwrap();
            t.alloc(0, s, PIECE, pm);
            t.gpu(0, s, PIECE, sim::Access::Read).unwrap();
        }
    };
    walk(BUF);
    walk(ONCE);
    assert_eq!(t.sim.counters().bytes_to_vram, 0, "the first walks rent");
    walk(BUF);
    assert_eq!(t.on(BUF, SIZE), t.vram_of(0), "walked again: moved whole");
    assert_eq!(t.on(ONCE, SIZE), Placement::System, "walked once: never moved");
    assert_eq!(t.sim.counters().migrations_to_vram, SIZE / R, "one migration per range, no piece moved alone");
    // Later walks find it in place: one look per record and freshness
    // period, not one per piece, and no ioctl.
    for _ in 0..3 {
        t.gpu(0, ONCE, SIZE, sim::Access::Read).unwrap(); // past the observations' freshness
    }
    let (reads, ioctls) = (t.sim.counters().page_table_reads, t.sim.counters().ioctls);
    for i in 0..SIZE / PIECE {
        let s = BUF + i * PIECE;
        assert_eq!(t.ctx.resolve(t.dev[0], 0, s, PIECE, Access::Read), Ok(t.vram(0)));
        assert!(t.alloc(0, s, PIECE, t.vram(0)).in_place);
    }
    assert!(t.sim.counters().page_table_reads - reads <= SIZE / R, "one sampled look of the record");
    assert_eq!(t.sim.counters().ioctls, ioctls);

    // Walked by two devices: it stays where both read it (several readers).
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    for _ in 0..3 {
        for d in 0..2 {
            for i in 0..SIZE / PIECE {
                let s = BUF + i * PIECE;
                let pm = t.ctx.resolve(t.dev[d], 0, s, PIECE, Access::Read).unwrap();
                t.alloc(d, s, PIECE, pm);
            }
        }
    }
    assert_eq!((t.on(BUF, SIZE), t.sim.counters().bytes_to_vram), (Placement::System, 0));
}

/// A piece of a record placed whole that the CPU took back: the first
/// piece's look finds the record moved, and the record is placed again
/// whole (here held in system memory, the hand-off), so the other pieces
/// find it in place instead of each reading the page table and splitting it.
#[test]
fn a_piece_of_a_record_the_cpu_took_back_replaces_the_record_whole() {
    let t = setup("2dgpu-p2p");
    const PIECE: u64 = 64 << 10;
    const SIZE: u64 = 8 * R;
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    t.alloc(0, BUF, SIZE, t.vram(0));
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 2).unwrap();
    let reads = t.sim.counters().page_table_reads;
    let first = t.alloc(0, BUF, PIECE, t.vram(0));
    assert_eq!((first.pagemap, first.pinned), (Some(Pagemap::System), true), "{first:?}");
    for i in 1..SIZE / PIECE {
        let s = BUF + i * PIECE;
        let pm = t.ctx.resolve(t.dev[0], 0, s, PIECE, Access::Read).unwrap();
        assert_eq!(pm, Pagemap::System, "piece {i}");
        assert!(t.alloc(0, s, PIECE, pm).in_place, "piece {i}");
    }
    let n = t.sim.counters().page_table_reads - reads;
    assert!(n <= 3 * SIZE / R, "a few sampled looks at the record, not one per piece ({}): {n} reads", SIZE / PIECE);
    assert_eq!(t.ctx.query(BUF, SIZE).unwrap().residency, Some(Pagemap::System), "one record");
}

// Explicit requests (no AllocFlags::ENGINE): an application's prefetch is an
// instruction. Each case below is one the engine re-decides when it is
// handed the choice.

/// A fresh buffer prefetched to VRAM lives there whole: no split birth.
#[test]
fn an_explicit_prefetch_of_a_fresh_buffer_moves_all_of_it() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 32 * R;
    let p = t.ctx.alloc_vram(t.dev[0], BUF, SIZE, t.vram(0), AllocFlags::empty()).unwrap();
    assert_eq!((p.pagemap, p.split, p.fell_back), (Some(t.vram(0)), false, false), "{p:?}");
    assert_eq!(t.on(BUF, SIZE), t.vram_of(0));
    // The engine, handed the same choice, splits it.
    let q = t.alloc(0, BUF + SIZE, SIZE, t.vram(0));
    assert!(q.split, "{q:?}");
}

/// A two-tile device: an explicit prefetch moves now, never left to the fault.
#[test]
fn an_explicit_prefetch_to_a_multi_tile_device_moves_now() {
    let t = setup("max-node");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, R, t.vram(0), AllocFlags::empty()).unwrap();
    let p = t.ctx.alloc_vram(t.dev[1], BUF, R, t.vram(1), AllocFlags::empty()).unwrap();
    assert!(!p.on_fault, "{p:?}");
    assert_eq!((p.pagemap, p.bytes_moved), (Some(t.vram(1)), R));
    assert_eq!(t.on(BUF, R), t.vram_of(1));
}

/// Alternating explicit prefetches between two GPUs are each honoured: the
/// thrash guard never pins an explicit request.
#[test]
fn alternating_explicit_prefetches_are_never_pinned() {
    let cfg = Config { thrash_max_moves: 3, thrash_window_ns: 10_000_000_000, pin_ns: 10_000_000_000, ..rules() };
    let t = setup_topo(Topology::preset("2dgpu-p2p").unwrap(), cfg);
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    for i in 0..10 {
        let d = i % 2;
        let p = t.ctx.alloc_vram(t.dev[d], BUF, R, t.vram(d), AllocFlags::empty()).unwrap();
        assert!(!p.pinned && p.pagemap == Some(t.vram(d)) && p.bytes_moved == R, "prefetch {i}: {p:?}");
        assert_eq!(t.on(BUF, R), t.vram_of(d as u32), "prefetch {i}");
    }
    assert_eq!(t.ctx.stats().pins, 0);
}

/// A piece of a buffer the CPU took back: the explicit request moves the
/// piece asked, not the buffer's whole record.
#[test]
fn an_explicit_prefetch_of_a_piece_moves_only_the_piece() {
    let t = setup("dgpu");
    const SIZE: u64 = 8 * R;
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, t.vram(0), AllocFlags::empty()).unwrap();
    t.sim.cpu_access(BUF, SIZE, sim::Access::Read, 0).unwrap(); // the CPU takes all of it back
    let p = t.ctx.alloc_vram(t.dev[0], BUF + R, R, t.vram(0), AllocFlags::empty()).unwrap();
    assert_eq!((p.pagemap, p.bytes_moved, p.pinned), (Some(t.vram(0)), R, false), "{p:?}");
    assert_eq!(t.on(BUF + R, R), t.vram_of(0));
    assert_eq!(t.on(BUF, R), Placement::System, "the rest stays where the CPU left it");
    assert_eq!(t.on(BUF + 2 * R, SIZE - 2 * R), Placement::System);
}

/// An explicit request that cannot be honoured says so: fallback with the
/// cause, or the errno under NO_FALLBACK.
#[test]
fn an_explicit_prefetch_that_cannot_fit_falls_back_and_says_why() {
    let t = setup("2dgpu-p2p");
    let cap = t.ctx.device(t.dev[0]).unwrap().tiles[0].unwrap().capacity;
    let size = cap + 2 * R;
    t.sim.cpu_access(BUF, size, sim::Access::Write, 1).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], BUF, size, t.vram(0), AllocFlags::empty()).unwrap();
    assert!(p.fell_back && p.cause == Some(Errno::ENOSPC) && p.pagemap == Some(Pagemap::System), "{p:?}");
    assert_eq!(t.ctx.alloc_vram(t.dev[0], BUF, size, t.vram(0), AllocFlags::NO_FALLBACK).map(|_| ()), Err(Errno::ENOSPC));
}

/// Per-device advice (Level Zero's hDevice, NEO's drm_memory_manager):
/// applied to that device's VM only, and honoured by resolve for that
/// device only; the kernel shows the other VM unchanged.
#[test]
fn per_device_advice_reaches_that_devices_vm_only() {
    let t = setup("2dgpu-p2p");
    let before = t.sim.counters().madvise_calls;
    t.ctx.set_preferred_on(Some(t.dev[0]), BUF, R, Pagemap::System).unwrap();
    assert_eq!(t.sim.counters().madvise_calls - before, 1, "one VM");
    let attrs = |d: usize| {
        let (fd, vm) = t.fd_vm(d);
        let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
        xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, R).unwrap()[0]
    };
    assert_eq!(attrs(0).preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM);
    assert_eq!(attrs(1).preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, BUF, R, Access::Write), Ok(Pagemap::System));
    assert_eq!(t.ctx.resolve(t.dev[1], 0, BUF, R, Access::Write), Ok(t.vram(1)));
    t.ctx.set_atomic_on(Some(t.dev[1]), BUF, R, DRM_XE_ATOMIC_CPU).unwrap();
    assert_eq!((attrs(0).atomic.val, attrs(1).atomic.val), (DRM_XE_ATOMIC_UNDEFINED, DRM_XE_ATOMIC_CPU));
    assert_eq!(t.ctx.resolve(t.dev[1], 0, BUF, R, Access::Atomic), Err(Errno::EACCES));
    t.ctx.clear_preferred_on(Some(t.dev[0]), BUF, R).unwrap();
    assert_eq!(attrs(0).preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE);
    // A closed device's handle is refused.
    let d1 = t.dev[1];
    t.ctx.close(d1).unwrap();
    assert_eq!(t.ctx.set_atomic_on(Some(d1), BUF, R, DRM_XE_ATOMIC_DEVICE), Err(Errno::EBADF));
}

/// A placement for one device leaves alone the VM of another device the
/// runtime advised otherwise: that advice is an explicit request too.
#[test]
fn a_placement_keeps_another_devices_advice() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.ctx.set_preferred_on(Some(t.dev[0]), BUF, R, Pagemap::System).unwrap();
    let p = t.ctx.alloc_vram(t.dev[1], BUF, R, t.vram(1), AllocFlags::empty()).unwrap();
    assert_eq!(p.pagemap, Some(t.vram(1)));
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let a = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, R).unwrap()[0];
    assert_eq!(a.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "GPU 0 keeps its advice");
}

/// A placement's madvise covers the span's whole 2 MiB chunks where nothing
/// else is recorded there: the mirror VMA is not split at a buffer's end
/// inside a chunk (where the kernel could then use only 64 KiB and 4 KiB
/// ranges). A neighbor placed elsewhere in that chunk keeps its attributes.
#[test]
fn a_placement_advises_whole_chunks_where_they_are_free() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 4_001_792; // 4,000,000 bytes on whole pages
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, Pagemap::System, AllocFlags::empty()).unwrap();
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let vmas = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, 2 * R).unwrap();
    assert_eq!(vmas.len(), 1, "one VMA over both chunks: {vmas:?}");
    assert!(vmas[0].start <= BUF && vmas[0].end >= BUF + 2 * R);
    assert_eq!(vmas[0].preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM);
    // A neighbor already placed in VRAM inside the next buffer's chunk: the
    // next placement (system memory) leaves its attributes alone.
    const B: u64 = BUF + 16 * R;
    t.sim.cpu_access(B, 4 * R, sim::Access::Write, 1).unwrap();
    t.ctx.set_preferred(B, 4096, t.vram(1)).unwrap();
    t.ctx.alloc_vram(t.dev[0], B + 4096, SIZE, Pagemap::System, AllocFlags::empty()).unwrap();
    let first = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, B, 4096).unwrap()[0];
    assert_ne!(first.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "the neighbor keeps its own");
}

/// A side of a chunk that holds only what an earlier placement's widened
/// madvise applied (nothing placed there) is free for the next placement
/// into VRAM: a small buffer placed in system memory and then asked into
/// VRAM is advised over its chunk again, not cut at its own end, and it
/// moves in one range, not a 64 KiB range and 4 KiB ones past the cut
/// (docs/kernel-model.md §2).
#[test]
fn a_side_only_an_earlier_widening_advised_is_widened_over_again() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 77_824; // 19 pages, ending inside its chunk
    t.sim.cpu_access(BUF, SIZE, sim::Access::Write, 1).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, Pagemap::System, AllocFlags::empty()).unwrap();
    let before = t.sim.counters().migrations_to_vram;
    let p = t.ctx.alloc_vram(t.dev[0], BUF, SIZE, t.vram(0), AllocFlags::empty()).unwrap();
    assert_eq!(p.pagemap, Some(t.vram(0)), "{p:?}");
    assert_eq!(t.on(BUF, SIZE), t.vram_of(0));
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let vmas = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, R).unwrap();
    assert_eq!(vmas.len(), 1, "not cut at the buffer's end: {vmas:?}");
    assert!(vmas[0].start <= BUF && vmas[0].end >= BUF + R);
    let copies = t.sim.counters().migrations_to_vram - before;
    assert!(copies <= 1, "one range, not a 64 KiB one and 4 KiB pages: {copies}");
}

/// A neighbour the device rents in system memory (the engine served its
/// read there) shares the chunk of a span the same device moves in: the
/// move takes the neighbour's part along in one 2 MiB range, where the cut
/// at the span's start would move the span in 64 KiB ranges now and the
/// neighbour in the same pieces at its own buy; the neighbour's next
/// placement there finds it in place (policy/chunks.rs `rented_by`).
#[test]
fn a_neighbour_this_device_rents_moves_along_in_one_range() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    t.alloc(0, BUF, MIB, Pagemap::System);
    let before = t.sim.counters().migrations_to_vram;
    t.alloc(0, BUF + MIB, MIB, t.vram(0));
    assert_eq!(t.on(BUF + MIB, MIB), t.vram_of(0));
    assert_eq!(t.sim.counters().migrations_to_vram - before, 1, "one 2 MiB range");
    assert_eq!(t.on(BUF, MIB), t.vram_of(0), "the rented neighbour came along");
    assert_eq!(t.ctx.query(BUF, MIB).unwrap().residency, None, "its record no longer says system memory");
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let vmas = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, R).unwrap();
    assert!(vmas.iter().all(|v| v.preferred_mem_loc.devmem_fd == DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE), "{vmas:?}");
    let moved = t.sim.counters().migrations_to_vram;
    t.alloc(0, BUF, MIB, t.vram(0));
    assert_eq!(t.sim.counters().migrations_to_vram, moved, "its buy moves nothing");
}

/// The bound on what comes along (`DRAG_PER_CUT`, 32), at either end of
/// a span: a 1 MiB rented neighbour comes along with a span whose part of
/// the chunk the madvise changes is 32 KiB, not with one whose part is
/// 28 KiB.
#[test]
fn a_rented_neighbour_comes_along_up_to_thirty_two_times_the_cut_it_spares() {
    for (part, along) in [(32 << 10, true), (28 << 10, false)] {
        for head in [true, false] {
            let t = setup("2dgpu-p2p");
            t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
            // The neighbour's widening advises its whole chunk to system
            // memory; the span reaches `part` bytes into that chunk.
            let (n, s) = if head { (BUF, BUF + R - part) } else { (BUF + R + part, BUF + 512 * 1024 + part) };
            t.alloc(0, n, MIB, Pagemap::System);
            t.alloc(0, s, R - 512 * 1024, t.vram(0));
            let want = if along { t.vram_of(0) } else { Placement::System };
            assert_eq!(t.on(n, MIB), want, "a part of {part} bytes, the neighbour at the span's {}", if head { "head" } else { "tail" });
        }
    }
}

/// Inside one chunk, the rented neighbours on both sides count together:
/// 1008 KiB on each side of a 32 KiB span stay, though either alone would
/// be within 32 times the span's part.
#[test]
fn rented_neighbours_on_both_sides_of_a_span_count_together() {
    let t = setup("2dgpu-p2p");
    const K: u64 = 1024;
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    t.alloc(0, BUF, 1008 * K, Pagemap::System);
    t.alloc(0, BUF + 1040 * K, 1008 * K, Pagemap::System);
    t.alloc(0, BUF + 1008 * K, 32 * K, t.vram(0));
    assert_eq!(t.on(BUF + 1008 * K, 32 * K), t.vram_of(0));
    assert_eq!(t.on(BUF, 1008 * K), Placement::System);
    assert_eq!(t.on(BUF + 1040 * K, 1008 * K), Placement::System);
}

/// A placement into a peer's VRAM takes nothing of what this device rents
/// along (the rent's premise, its own next use buying it, is this
/// device's VRAM).
#[test]
fn a_placement_into_a_peers_vram_takes_no_rented_neighbour_along() {
    let t = setup("2dgpu-p2p");
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    t.alloc(0, BUF, MIB, Pagemap::System);
    t.alloc(0, BUF + MIB, MIB, t.vram(1));
    assert_eq!(t.on(BUF + MIB, MIB), t.vram_of(1));
    assert_eq!(t.on(BUF, MIB), Placement::System);
}

/// A span inside one chunk, between a neighbour this device rents and one
/// the runtime placed: the chunk cannot end up whole, so nothing comes
/// along, and the rented neighbour keeps its advice.
#[test]
fn a_span_inside_one_chunk_takes_nothing_along_where_the_chunk_stays_cut() {
    let t = setup("2dgpu-p2p");
    const HALF: u64 = MIB / 2;
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF + MIB, MIB, Pagemap::System, AllocFlags::empty()).unwrap();
    t.alloc(0, BUF, HALF, Pagemap::System);
    t.alloc(0, BUF + HALF, HALF, t.vram(0));
    assert_eq!(t.on(BUF + HALF, HALF), t.vram_of(0));
    assert_eq!(t.on(BUF, HALF), Placement::System);
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let attrs = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, 4096).unwrap()[0];
    assert_eq!(attrs.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "{attrs:?}");
}

/// What the runtime placed in system memory itself (a placement, a batch
/// or an eviction), what another device reads there too, and a neighbour far larger
/// than the part of the chunk the span's madvise changes stay where they
/// are: the span's move does not take them along.
#[test]
fn a_neighbour_the_runtime_placed_or_another_device_reads_or_far_larger_stays() {
    type Neighbour = fn(&T);
    let cases: [(&str, Neighbour); 5] = [
        ("placed at the runtime's request", |t| {
            t.ctx.alloc_vram(t.dev[0], BUF, MIB, Pagemap::System, AllocFlags::empty()).unwrap();
        }),
        ("read in place by another device too", |t| {
            t.alloc(0, BUF, MIB, Pagemap::System);
            t.alloc(1, BUF, MIB, Pagemap::System);
        }),
        ("placed by the runtime's batch", |t| {
            t.alloc(0, BUF, MIB, Pagemap::System);
            let mut b = t.ctx.place_batch(t.dev[0], &[(BUF, MIB, Pagemap::System)], None).unwrap();
            t.ctx.complete_batch(&mut b, 1_000_000_000).unwrap();
        }),
        ("evicted there by the runtime", |t| {
            t.alloc(0, BUF, MIB, Pagemap::System);
            t.ctx.evict(BUF, MIB).unwrap();
        }),
        ("its part 256 times the span's changed part", |t| {
            t.alloc(0, BUF, MIB, Pagemap::System);
        }),
    ];
    for (i, (why, neighbour)) in cases.into_iter().enumerate() {
        let t = setup("2dgpu-p2p");
        t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
        neighbour(&t);
        // The last case's span changes one page of the chunk (its part
        // advised to system memory by the neighbour's widening).
        let (s, len) = if i == 4 { (BUF + R - 4096, MIB) } else { (BUF + MIB, MIB) };
        t.alloc(0, s, len, t.vram(0));
        assert_eq!(t.on(s, len), t.vram_of(0), "{why}");
        assert_eq!(t.on(BUF, MIB), Placement::System, "{why}: the neighbour stays");
    }
}

/// A queued batch's range is a placement, not such a side: a placement
/// into VRAM in its chunk before the batch completes leaves the advice the
/// batch applied alone.
#[test]
fn a_batch_in_flight_in_the_chunk_keeps_its_advice() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 77_824;
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let queued = BUF + MIB;
    let _b = t.ctx.place_batch(t.dev[0], &[(queued, 64 << 10, Pagemap::System)], None).unwrap();
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, t.vram(1), AllocFlags::empty()).unwrap();
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let ours = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, 4096).unwrap()[0];
    let theirs = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, queued, 4096).unwrap()[0];
    assert_eq!(theirs.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "the batch keeps its own: {theirs:?}");
    assert_ne!(ours.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "{ours:?}");
}

/// What the runtime advised in the chunk is not a side: a placement's
/// widening leaves that advice alone (its preferred location and its
/// atomic mode).
#[test]
fn a_widening_leaves_the_runtimes_advice_in_the_chunk_alone() {
    let t = setup("2dgpu-p2p");
    const SIZE: u64 = 77_824;
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let attrs = |at: u64| xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, at, 4096).unwrap()[0];
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let atomic = BUF + MIB;
    t.ctx.set_atomic(atomic, 64 << 10, DRM_XE_ATOMIC_DEVICE).unwrap();
    let before = attrs(atomic);
    t.ctx.alloc_vram(t.dev[0], BUF, SIZE, t.vram(1), AllocFlags::empty()).unwrap();
    let after = attrs(atomic);
    assert_eq!(after.preferred_mem_loc.devmem_fd, before.preferred_mem_loc.devmem_fd, "{after:?}");
    assert_eq!(after.atomic.val, DRM_XE_ATOMIC_DEVICE);
    assert_ne!(attrs(BUF).preferred_mem_loc.devmem_fd, before.preferred_mem_loc.devmem_fd, "the span itself is advised");
}

/// The engine with its rule cascade (`Config::engine_rules`), which these
/// tests exercise; tests/engine_plain.rs covers the default engine.
fn rules() -> Config {
    Config { engine_rules: true, ..Config::default() }
}

/// A first read served where the data lies (resolve's rent or buy) of a
/// span that came along into the reader's VRAM with a neighbour's move
/// (the kernel migrates whole 2 MiB ranges, docs/kernel-model.md §2) is
/// left there: moving it back would copy the chunk, the neighbour's part
/// included, for a read that is local already. A span reaching into a
/// chunk still in system memory keeps that part there, bound.
#[test]
fn a_first_read_of_what_came_along_with_a_neighbour_is_not_moved_back() {
    let t = setup("dgpu");
    t.sim.cpu_access(BUF, 3 * R, sim::Access::Write, 1).unwrap();
    let n = 5 * MIB / 2;
    let pm = t.ctx.resolve(t.dev[0], 0, BUF, n, Access::Write).unwrap();
    assert_eq!(pm, t.vram(0));
    t.alloc(0, BUF, n, pm);
    t.gpu(0, BUF, n, sim::Access::Write).unwrap();
    assert_eq!(t.on(BUF + n, 2 * R - n), t.vram_of(0), "the neighbour's second chunk moved whole");
    let moved = t.sim.counters().bytes_to_system;
    // All of it came along.
    let (a, b) = (BUF + n, BUF + n + MIB);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, a, MIB, Access::Read).unwrap(), Pagemap::System, "a first read is served in place");
    let p = t.alloc(0, a, MIB, Pagemap::System);
    assert!(p.in_place && p.bytes_moved == 0 && p.pagemap == Some(t.vram(0)) && !p.split, "{p:?}");
    assert_eq!(t.on(a, MIB), t.vram_of(0));
    // Its head came along, its tail did not.
    assert_eq!(t.ctx.resolve(t.dev[0], 0, b, MIB, Access::Read).unwrap(), Pagemap::System);
    let p = t.alloc(0, b, MIB, Pagemap::System);
    assert!(!p.in_place && p.bytes_moved == 0 && p.split && p.pagemap == Some(Pagemap::System), "the rest bound: {p:?}");
    assert_eq!(t.on(b, 2 * R - (b - BUF)), t.vram_of(0));
    assert_eq!(t.on(BUF + 2 * R, b + MIB - BUF - 2 * R), Placement::System);
    assert_eq!(t.sim.counters().bytes_to_system, moved, "nothing moved back");
    t.reads_without_faults(0, a, 2 * MIB, "the tail was bound");
    // A runtime asking for the move now, or explicitly, gets it.
    let p = t.ctx.alloc_vram(t.dev[0], a, MIB / 2, Pagemap::System, AllocFlags::ENGINE | AllocFlags::PREFETCH_NOW).unwrap();
    assert!(p.pagemap == Some(Pagemap::System) && t.on(a, MIB / 2) == Placement::System, "{p:?}");
    let p = t.ctx.alloc_vram(t.dev[0], a, MIB, Pagemap::System, AllocFlags::empty()).unwrap();
    assert!(p.pagemap == Some(Pagemap::System) && t.on(a, MIB) == Placement::System, "{p:?}");
}

/// The same at the kernel's 64 KiB ranges, inside a chunk a madvise cut
/// (packed small allocations): a span whose head page shares a 64 KiB
/// range with a neighbour placed in VRAM keeps that head there, the rest
/// is bound in system memory, and the neighbour's range is not moved back
/// (its next launch would move it again). The span is mixed at chunk scale,
/// so the 2 MiB rule alone moved the range back.
#[test]
fn a_first_read_of_a_head_range_that_came_along_inside_a_cut_chunk_is_not_moved_back() {
    let t = setup("dgpu");
    const K: u64 = 1024;
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    // Another buffer's advice on the chunk's first page cuts the mirror there.
    t.ctx.set_preferred(BUF, 4 * K, Pagemap::System).unwrap();
    let (n, s, len) = (BUF + 64 * K, BUF + 104 * K, 200 * K);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, n, 40 * K, Access::Write).unwrap(), t.vram(0));
    t.alloc(0, n, 40 * K, t.vram(0));
    assert_eq!(t.on(s, 24 * K), t.vram_of(0), "came along with the neighbour's 64 KiB range");
    assert_eq!(t.on(BUF + 128 * K, s + len - BUF - 128 * K), Placement::System);
    let moved = t.sim.counters().bytes_to_system;
    assert_eq!(t.ctx.resolve(t.dev[0], 0, s, len, Access::Read).unwrap(), Pagemap::System, "a first read is served in place");
    let p = t.alloc(0, s, len, Pagemap::System);
    assert!(!p.in_place && p.bytes_moved == 0 && p.split && p.pagemap == Some(Pagemap::System), "the rest bound: {p:?}");
    assert_eq!(t.on(n, 64 * K), t.vram_of(0), "the neighbour's range stays");
    assert_eq!(t.sim.counters().bytes_to_system, moved, "nothing moved back");
    t.reads_without_faults(0, s, len, "the head local, the rest bound");
}

/// A placement's madvise leaves alone the VMAs that hold its value
/// already (VM_QUERY_MEM_RANGE_ATTRS): a span whose head came along into
/// VRAM with a neighbour's 2 MiB range (default advice there) and whose
/// tail was advised to system memory is moved to VRAM without a cut inside
/// that range, which would evict it whole (`xe_svm_unmap_address_range`).
#[test]
fn a_placement_does_not_cut_a_range_whose_vma_holds_its_advice_already() {
    let t = setup("dgpu");
    const K: u64 = 1024;
    t.sim.cpu_access(BUF, 2 * R, sim::Access::Write, 1).unwrap();
    // A small piece read in place at the chunk's start (bound, not advised),
    // then a neighbour written: its move takes the whole 2 MiB range.
    let (p0, n) = (BUF + 512 * K, BUF + 640 * K);
    assert_eq!(t.ctx.resolve(t.dev[0], 0, p0, 64 * K, Access::Read).unwrap(), Pagemap::System);
    t.alloc(0, p0, 64 * K, Pagemap::System);
    t.alloc(0, n, R - 704 * K, t.vram(0));
    let (s, len) = (BUF + R - 64 * K, 364 * K);
    assert_eq!(t.on(s, 64 * K), t.vram_of(0), "came along with the neighbour's range");
    assert_eq!(t.ctx.resolve(t.dev[0], 0, s, len, Access::Read).unwrap(), Pagemap::System);
    let p = t.alloc(0, s, len, Pagemap::System);
    assert!(p.split && p.bytes_moved == 0, "{p:?}");
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    let tail = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF + R, 4 * K).unwrap()[0];
    assert_eq!(tail.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, "the tail advised to system memory");
    let to_system = t.sim.counters().bytes_to_system;
    let p = t.alloc(0, s, len, t.vram(0));
    assert_eq!(p.pagemap, Some(t.vram(0)));
    assert_eq!(t.sim.counters().bytes_to_system, to_system, "the neighbour's range is not evicted");
    assert_eq!(t.on(n, R - 704 * K), t.vram_of(0));
    assert_eq!(t.on(s, len), t.vram_of(0));
    let vmas = xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, s, len).unwrap();
    assert!(vmas.iter().all(|v| v.preferred_mem_loc.devmem_fd == DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE), "{vmas:?}");
}

/// Birth in pieces (policy/birth.rs): a never-populated buffer whose every
/// 2 MiB chunk reaches past its mapping would be born in VRAM in small
/// ranges, and moved in them when another device or tile takes it; the
/// engine births it in system memory and serves it there. A runtime that
/// insists (atomics) or asks explicitly moves it.
#[test]
fn a_fresh_buffer_whose_chunks_reach_past_its_mapping_is_born_in_system_memory() {
    let t = setup("2dgpu-p2p");
    let (a, n) = (BUF + 16 * MIB + 64 * 1024, MIB + 64 * 1024);
    t.mapping(a, n);
    assert_eq!(t.ctx.extent_of(a).unwrap(), (a, a + n));
    let clears = t.sim.counters().vram_clears;
    let pm = t.ctx.resolve(t.dev[0], 0, a, n, Access::Write).unwrap();
    assert_eq!(pm, t.vram(0), "resolve knows nothing of the mapping");
    let p = t.alloc(0, a, n, pm);
    assert!(p.pagemap == Some(Pagemap::System) && p.bytes_moved == 0, "{p:?}");
    let faults = t.sim.counters().gpu_faults;
    t.gpu(0, a, n, sim::Access::Write).unwrap();
    assert_eq!(t.sim.counters().gpu_faults, faults, "bound for the launch");
    assert_eq!(t.sim.counters().vram_clears, clears, "no VRAM allocated");
    assert_eq!(t.on(a, n), Placement::System);
    // Served there afterwards: read, written, or asked of VRAM by the engine.
    for access in [Access::Read, Access::Write] {
        assert_eq!(t.ctx.resolve(t.dev[0], 0, a, n, access).unwrap(), Pagemap::System);
    }
    let p = t.alloc(0, a, n, t.vram(0));
    assert!(p.pagemap == Some(Pagemap::System) && p.bytes_moved == 0, "{p:?}");
    assert_eq!(t.on(a, n), Placement::System);
    // Atomics run in local VRAM: the runtime insists, and it moves, in 64
    // KiB ranges: the birth put the zero page under it, so the kernel's
    // ranges there passed check_pages.
    let k = t.sim.counters();
    let p = t.ctx.alloc_vram(t.dev[0], a, n, t.vram(0), AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD).unwrap();
    assert!(p.pagemap == Some(t.vram(0)) && t.on(a, n) == t.vram_of(0), "{p:?}");
    let moved = t.sim.counters();
    assert_eq!((moved.migrations_4k - k.migrations_4k, moved.migrations_64k - k.migrations_64k), (0, n / (64 * 1024)));
    assert_eq!(t.ctx.resolve(t.dev[0], 0, a, n, Access::Read).unwrap(), t.vram(0), "served where it lives now");
}

/// Where the context has one VRAM (one single-tile device), nothing else
/// would take such a buffer: it is born there, in 64 KiB ranges (a
/// prefetch makes them with no page probe). Served in system memory, a
/// grid's result row was read and written over the host link at every
/// step (rodinia-pathfinder 1.075x the prefetch).
#[test]
fn a_fresh_small_buffer_is_born_in_the_only_vram() {
    let t = setup("dgpu");
    let (a, n) = (BUF + 16 * MIB + 64 * 1024, MIB + 64 * 1024);
    t.mapping(a, n);
    let pm = t.ctx.resolve(t.dev[0], 0, a, n, Access::Write).unwrap();
    let p = t.alloc(0, a, n, pm);
    assert!(p.pagemap == Some(t.vram(0)) && t.on(a, n) == t.vram_of(0), "{p:?}");
}

/// Birth in pieces leaves the runtime's advice alone: a span it gave a
/// preferred location is born where the advice says.
#[test]
fn a_fresh_buffer_the_runtime_advised_is_not_born_in_pieces() {
    let t = setup("dgpu");
    let (a, n) = (BUF + 16 * MIB + 64 * 1024, MIB + 64 * 1024);
    t.mapping(a, n);
    t.ctx.set_preferred(a, n, t.vram(0)).unwrap();
    let pm = t.ctx.resolve(t.dev[0], 0, a, n, Access::Write).unwrap();
    let p = t.alloc(0, a, n, pm);
    assert!(p.pagemap == Some(t.vram(0)) && t.on(a, n) == t.vram_of(0), "{p:?}");
}

/// The same buffer asked of VRAM explicitly, or inside a mapping that
/// holds a whole 2 MiB chunk of it, is born in VRAM as asked.
#[test]
fn a_fresh_buffer_asked_explicitly_or_with_a_chunk_inside_its_mapping_is_born_in_vram() {
    let t = setup("dgpu");
    let (a, n) = (BUF + 16 * MIB + 64 * 1024, MIB + 64 * 1024);
    t.mapping(a, n);
    let p = t.ctx.alloc_vram(t.dev[0], a, n, t.vram(0), AllocFlags::empty()).unwrap();
    assert!(p.pagemap == Some(t.vram(0)) && t.on(a, n) == t.vram_of(0), "explicit: {p:?}");
    let b = BUF + 32 * MIB;
    let p = t.alloc(0, b, MIB + 64 * 1024, t.vram(0));
    assert!(p.pagemap == Some(t.vram(0)) && t.on(b, MIB) == t.vram_of(0), "a chunk inside: {p:?}");
}

/// An arena's last buffer, whose head chunk lies inside the mapping and
/// whose last chunk reaches past it, is born whole in VRAM: the head in a
/// 2 MiB range, the tail in 64 KiB ones (a prefetch makes its ranges with
/// no page probe, `vm_bind_ioctl_ops_create`). Its tail was once born in
/// system memory and read over the host link at every pass (a solver's
/// GPU-born matrix 3x the prefetch, once prefetched ranges were 64 KiB).
#[test]
fn an_arenas_last_buffer_is_born_whole_in_vram() {
    let t = setup("dgpu");
    let (a, n, tail) = t.arena_last_buffer();
    let p = t.alloc(0, a, n, t.vram(0));
    assert!(!p.split && p.pagemap == Some(t.vram(0)), "{p:?}");
    assert_eq!((t.on(a, MIB), t.on(tail, MIB)), (t.vram_of(0), t.vram_of(0)));
    t.reads_without_faults(0, a, n, "head and tail in VRAM");
}

/// On 6.18 a multi-device madvise is EINVAL (region_instance is pad), and
/// the library takes the value the VM can hold instead (DEFAULT_DEVICE for
/// a tile of the device itself). That second madvise cuts only the VMAs
/// that differ from it, as the first does: here none (the span's two
/// pieces hold the default preferred location, with atomic advice of
/// their own), so no second madvise at all.
#[test]
fn the_6_18_retry_of_a_multi_device_madvise_cuts_only_what_differs() {
    let mut topo = Topology::preset("max-node").unwrap();
    topo.set_kernel(sim::KernelVersion::V6_18);
    let t = setup_topo(topo, rules());
    // Two records (advise_span looks at the kernel's VMAs only where the
    // span is held in more than one piece).
    t.ctx.set_atomic(BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    t.ctx.set_atomic(BUF + R, R, DRM_XE_ATOMIC_GLOBAL).unwrap();
    let tile1 = t.ctx.pagemap(t.dev[0], 1).unwrap();
    let before = t.sim.counters().madvise_calls;
    t.ctx.set_preferred_on(Some(t.dev[0]), BUF, 2 * R, tile1).unwrap();
    // The refused madvise (EINVAL: no multi-device madvise) changed
    // nothing, and no retry was needed.
    assert_eq!(t.sim.counters().madvise_calls - before, 0, "no madvise applied");
    let (fd, vm) = t.fd_vm(0);
    let drv = xesvm::sim::driver::SimDriver::new(t.sim.clone());
    for v in xesvm::driver::xe::query_mem_range_attrs(&drv, fd, vm, BUF, 2 * R).unwrap() {
        assert_eq!(v.preferred_mem_loc.devmem_fd, DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE, "{v:?}");
    }
}

/// An atomic histogram on a multi-tile device whose records lost its place
/// (its first half placed on its own before, the rest never): rule 6 asks
/// whether the CPU takes it back, and only the page table answers. Found
/// in system memory after the library moved part of it, it was pulled
/// back, and it is prefetched (an atomic fault would stamp the 5 ms
/// timeslice the CPU's next read waits out), by the next device that
/// takes it too.
#[test]
fn an_atomic_span_whose_records_lost_its_place_is_looked_at_before_rule_6() {
    let t = setup("max-node");
    let insist = AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD;
    let (hist, size) = (BUF + 4096, 40 * 1024);
    t.sim.cpu_access(hist, size, sim::Access::Write, 1).unwrap();
    assert!(!t.ctx.alloc_vram(t.dev[0], hist, size / 2, t.vram(0), insist).unwrap().on_fault);
    t.gpu(0, hist, size / 2, sim::Access::Atomic).unwrap();
    t.sim.cpu_access(hist, size, sim::Access::Read, 0).unwrap();
    assert_eq!(t.on(hist, size), Placement::System, "the CPU pulled it back");
    let p = t.ctx.alloc_vram(t.dev[0], hist, size, t.vram(0), insist).unwrap();
    assert!(!p.on_fault && p.bytes_moved == size, "looked at, prefetched: {p:?}");
    t.gpu(0, hist, size, sim::Access::Atomic).unwrap();
    let p = t.ctx.alloc_vram(t.dev[1], hist, size, t.vram(1), insist).unwrap();
    assert!(!p.on_fault && p.bytes_moved == size, "the pull-back counts for the next device: {p:?}");
}

/// Two devices read packed pieces of one chunk: a piece that a peer's
/// later move took into the peer's VRAM is not taken for one that came
/// along into the reader's own (an unprivileged page-table read sees "not
/// in system memory" for both): the later move decides where the chunk
/// lies. Kept, the reader's faults would pull it across at each turn.
/// Where the reader's own neighbour moved last, the piece is left there.
#[test]
fn a_piece_a_peers_later_move_took_is_not_taken_for_one_that_came_along() {
    const K: u64 = 1024;
    for peer_last in [true, false] {
        let t = setup("2dgpu-nolink");
        t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
        let (a, b, s) = (BUF, BUF + 512 * K, BUF + MIB);
        let (first, last) = if peer_last { ((0, a), (1, b)) } else { ((1, b), (0, a)) };
        t.alloc(first.0, first.1, 256 * K, t.vram(first.0));
        t.alloc(last.0, last.1, 256 * K, t.vram(last.0));
        assert_eq!(t.on(s, 256 * K), t.vram_of(last.0 as u32), "came along with the later neighbour");
        assert_eq!(t.ctx.resolve(t.dev[0], 0, s, 256 * K, Access::Read).unwrap(), Pagemap::System, "a first read is served in place");
        let p = t.alloc(0, s, 256 * K, Pagemap::System);
        if peer_last {
            assert!(!p.in_place && p.pagemap == Some(Pagemap::System), "not left in a VRAM it is not in: {p:?}");
            assert_eq!(t.on(s, 256 * K), Placement::System);
        } else {
            assert!(p.in_place && p.bytes_moved == 0 && p.pagemap == Some(t.vram(0)), "left where it came along: {p:?}");
            assert_eq!(t.on(s, 256 * K), t.vram_of(0));
        }
    }
}

/// The peer's move was later, but the reader's next launch found its own
/// piece in place and its kernel faulted the chunk back (a fault records
/// no move): the reader's placement decides, and the piece, local
/// already, is left there, its neighbour not dragged out with it.
#[test]
fn a_chunk_the_readers_faults_took_back_after_a_peers_move_is_left_there() {
    const K: u64 = 1024;
    let t = setup("2dgpu-nolink");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    let (a, b, s) = (BUF, BUF + 512 * K, BUF + MIB);
    t.alloc(0, a, 256 * K, t.vram(0));
    t.alloc(1, b, 256 * K, t.vram(1));
    assert_eq!(t.on(s, 256 * K), t.vram_of(1));
    // Device 0's next launch on its piece: placed (found in place), its kernel reads it.
    t.alloc(0, a, 256 * K, t.vram(0));
    t.gpu(0, a, 256 * K, sim::Access::Read).unwrap();
    assert_eq!(t.on(BUF, R), t.vram_of(0), "the reader's faults took the chunk back");
    assert_eq!(t.ctx.resolve(t.dev[0], 0, s, 256 * K, Access::Read).unwrap(), Pagemap::System);
    let p = t.alloc(0, s, 256 * K, Pagemap::System);
    assert!(p.in_place && p.bytes_moved == 0, "local already, left there: {p:?}");
    assert_eq!(t.on(a, 256 * K), t.vram_of(0), "the reader's own piece not dragged out");
}

/// A bind fence not signalled in time (ETIME) after the kernel already did
/// the copy: the placement fails with ETIME and says the range's place is
/// unknown (the kernel neither cancels a bind nor says how far it got,
/// xe_wait_user_fence_ioctl), and the record trusts nothing, so the next
/// calls find it where it really is: an engine placement asked for system
/// memory leaves it in the local VRAM it found it in (what a privileged
/// reader does; the one VRAM names it as well), an explicit one moves it
/// back, and the next moves it forth.
#[test]
fn a_fence_timed_out_leaves_the_place_unknown_and_the_next_call_finds_it() {
    let t = setup("dgpu");
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    t.sim.inject(Injection { request: DRM_IOCTL_XE_WAIT_USER_FENCE, ..Injection::count(Point::Ioctl, Errno::ETIME, 1) });
    let o = t.ctx.alloc_vram_outcome(t.dev[0], BUF, R, t.vram(0), AllocFlags::NO_FALLBACK);
    assert_eq!((o.result, o.placed.pagemap, o.placed.cause), (Err(Errno::ETIME), None, Some(Errno::ETIME)));
    assert_eq!(t.on(BUF, R), Placement::Vram { device: 0, instance: 1 }, "the copy happened");
    assert_eq!(t.ctx.query(BUF, R).unwrap().residency, None);
    let found = t.alloc(0, BUF, R, Pagemap::System);
    assert_eq!((found.pagemap, found.bytes_moved, found.in_place), (Some(t.vram(0)), 0, true), "local already");
    assert_eq!(t.ctx.query(BUF, R).unwrap().residency, Some(t.vram(0)));
    let back = t.ctx.alloc_vram(t.dev[0], BUF, R, Pagemap::System, AllocFlags::default()).unwrap();
    assert_eq!((back.pagemap, back.bytes_moved), (Some(Pagemap::System), R));
    assert_eq!(t.on(BUF, R), Placement::System);
    let again = t.alloc(0, BUF, R, t.vram(0));
    assert_eq!((again.pagemap, again.bytes_moved), (Some(t.vram(0)), R));
}

/// Placing memory nothing maps is EFAULT, as svm_find_extent answers: the
/// kernel's prefetch skips holes without a CPU mapping and succeeds
/// (docs/kernel-model.md §7), and the page table then shows nothing there.
/// Before, the library took that for a prefetch that left the range
/// elsewhere, fell back to system memory and reported a verified success.
#[test]
fn placing_memory_nothing_maps_is_efault() {
    let t = setup_looking("dgpu");
    t.sim.munmap(BUF, 2 * R).unwrap();
    let o = t.ctx.alloc_vram_outcome(t.dev[0], BUF, R, t.vram(0), AllocFlags::default());
    assert_eq!((o.result, o.placed.fell_back, o.placed.verified), (Err(Errno::EFAULT), false, false), "{:?}", o.placed);
    // Mapped again, it places.
    t.sim.mmap(BUF, 2 * R, false).unwrap();
    t.sim.cpu_access(BUF, R, sim::Access::Write, 1).unwrap();
    assert_eq!(t.alloc(0, BUF, R, t.vram(0)).pagemap, Some(t.vram(0)));
}

/// A pin "for ever" (`pin_ns` = u64::MAX, which svm_context_create
/// accepts) holds, where its end overflowed: a panic across the C
/// boundary in a debug build (-ENOTRECOVERABLE), a pin already over in a
/// release one.
#[test]
fn a_pin_for_ever_holds_and_never_overflows() {
    let t = setup_topo(Topology::preset("dgpu").unwrap(), Config { pin_ns: u64::MAX, ..rules() });
    t.alloc(0, BUF, R, t.vram(0));
    t.sim.cpu_access(BUF, 4096, sim::Access::Read, 0).unwrap();
    let p = t.alloc(0, BUF, R, t.vram(0));
    assert!(p.pinned && p.pagemap == Some(Pagemap::System), "the hand-off: {p:?}");
    t.sim.host_wait(t.sim.now_ns() + 10_000_000_000);
    let p = t.alloc(0, BUF, R, t.vram(0));
    assert!(p.pinned && p.pagemap == Some(Pagemap::System), "still pinned ten seconds on: {p:?}");
}

/// A span that starts on its 2 MiB chunk's last page: that page is sampled
/// (the first sample skipped to the page after, which lies in the next
/// chunk, so the first chunk went unseen). An explicit request found the
/// span "in place" where the CPU had taken that page back, and an evict
/// left it in VRAM, each reporting success.
#[test]
fn a_span_starting_on_a_chunks_last_page_is_seen_there() {
    let t = setup_looking("dgpu");
    let s = BUF + 2 * MIB - 4096;
    t.sim.cpu_access(BUF, 8 * MIB, sim::Access::Write, 1).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], s, 8192, t.vram(0), AllocFlags::default()).unwrap();
    assert_eq!((p.bytes_moved, t.on(s, 8192)), (8192, t.vram_of(0)));
    t.sim.cpu_access(s, 4096, sim::Access::Write, 2).unwrap();
    let p = t.ctx.alloc_vram(t.dev[0], s, 8192, t.vram(0), AllocFlags::default()).unwrap();
    assert!(!p.in_place && t.on(s, 8192) == t.vram_of(0), "moved again: {p:?}, {:?}", t.on(s, 8192));
    // Elsewhere, the GPU's fault takes such a span's first page only; an
    // evict sends it back.
    let s2 = BUF + 6 * MIB - 4096;
    t.gpu(0, s2, 4096, sim::Access::Write).unwrap();
    assert_ne!(t.on(s2, 4096), Placement::System, "the GPU's fault took the page");
    t.ctx.evict(s2, 8192).unwrap();
    assert_eq!(t.on(s2, 8192), Placement::System, "the evict saw the first page in VRAM");
}
