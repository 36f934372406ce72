//! The simulated Xe kernel driver: the kernel's SVM behaviour behind the real
//! ioctl interface (docs/design.md, "The simulated driver").
//!
//! It receives the same uAPI structs as the kernel ([`Sim::ioctl`], decoded in
//! `ioctl.rs` with every validation rule of docs/xe-uapi.md §6), keeps the kernel's
//! objects (VMs, VMAs, SVM ranges: `vm.rs`), runs its fault, prefetch,
//! migration and eviction paths (docs/kernel-model.md §2–§9, §12: `svm.rs`) over a
//! physical memory model with content tokens (`mem.rs`), and plays the world
//! around it: GPU and CPU accesses, munmap, a simulated clock (docs/cost-model.md),
//! counters and fault injection.
//!
//! Thread safety: every entry point may be called from many threads. State
//! sits behind one mutex; a migration collects (locks) its pages, releases the
//! mutex while "copying", then finalizes, so racing migrations of the same
//! range see each other's locked pages and get EBUSY as in docs/kernel-model.md §5 and
//! docs/kernel-model.md §13; the driver-wide migrate rwsem serializes the retry.

mod bind;
pub mod classes;
pub mod config;
pub mod topology_file;
mod content;
mod cpu;
pub mod driver;
pub mod inject;
mod ioctl;
mod launch;
pub mod mem;
mod prefetch;
mod process;
mod query;
mod svm;
mod timeline;
mod truth;
mod uaccess;
pub mod vm;

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};

pub use config::{Costs, DeviceSpec, KernelVersion, LinkKind, LinkSpec, Topology};
pub use topology_file::{parse_size, ParseError};
pub use inject::{Injection, Point};
pub use launch::{Arg, LaunchError, Pattern, Queued, SCATTERED_LINK_EFFICIENCY};
pub use timeline::{Ran, HOST_THREADS};
pub use uaccess::trusted as uaccess_trusted;
use mem::{Loc, Memory, PAGE};
use vm::Vm;

use crate::driver::residency::{PageTableAccess, PageTableSource};
use crate::errno::{Errno, Result};

/// Where the pages of a span live: the simulator's ground truth, for the
/// world API (tests, the benchmark's measurements). The library never sees
/// it: it reads the page table through the driver seam like a process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Never populated: no page exists yet.
    Unpopulated,
    /// System memory.
    System,
    /// VRAM region `instance` of simulated device `device`.
    #[allow(missing_docs)]
    Vram { device: u32, instance: u16 },
    /// The span's pages are not all in one place.
    Mixed,
}

/// What a GPU or CPU access does to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A read.
    Read,
    /// A write.
    Write,
    /// A GPU atomic (a write that may require VRAM, docs/kernel-model.md §3.2).
    Atomic,
}

/// Something the simulated machine did, on the simulated clock: what a
/// trace of a run shows (world API: measurement, never the library's input).
/// Each variant's doc names its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SimEvent {
    /// A copy of `bytes` from `from` to `to` (None: system memory; else the
    /// device), taking [at_ns, at_ns + dur_ns).
    Migration { at_ns: u64, dur_ns: u64, bytes: u64, from: Option<u32>, to: Option<u32> },
    /// A GPU page fault of `device`, serviced in [at_ns, at_ns + dur_ns).
    GpuFault { at_ns: u64, dur_ns: u64, device: u32 },
    /// A CPU fault on a device page.
    CpuFault { at_ns: u64 },
    /// VRAM pressure evicted `bytes` of `device`'s VRAM to system memory.
    Eviction { at_ns: u64, bytes: u64, device: u32 },
    /// A new VRAM allocation of `bytes` in `device` cleared on the GPU (its
    /// never-populated pages need nothing more), taking [at_ns, at_ns + dur_ns).
    Clear { at_ns: u64, dur_ns: u64, bytes: u64, device: u32 },
}

/// One VRAM region of one tile.
#[derive(Clone, Copy, Debug)]
pub struct PagemapInfo {
    /// Its device.
    pub device: u32,
    /// Its tile.
    pub tile: u16,
    /// Region instance as DEVICE_QUERY reports it (tile + 1).
    pub instance: u16,
    /// Bytes of VRAM.
    pub capacity: u64,
}

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident,)*) => {
        /// Event counts, named after what the kernel would count.
        #[derive(Default)]
        pub struct Counters { $(pub(crate) $name: AtomicU64,)* }

        /// A snapshot of [`Counters`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct CounterSnapshot { $($(#[$m])* pub $name: u64,)* }

        impl Counters {
            /// The counters now.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Ioctls received (including rejected ones).
    ioctls,
    /// GPU page faults serviced (successful or not).
    gpu_faults,
    /// GPU faults that failed (the GPU got an unsuccessful fault response).
    gpu_fault_errors,
    /// CPU faults on device pages (migrate_to_ram).
    cpu_faults,
    /// CPU faults that had to wait for an atomic timeslice to expire.
    timeslice_waits,
    /// Range migrations system -> VRAM.
    migrations_to_vram,
    /// Migrations VRAM -> system (CPU faults, evictions, prefetch to system).
    migrations_to_system,
    /// Device-to-device migrations over a link.
    migrations_device_to_device,
    /// Bytes copied into VRAM.
    bytes_to_vram,
    /// Bytes copied back to system memory.
    bytes_to_system,
    /// Bytes copied between devices.
    bytes_device_to_device,
    /// New VRAM allocations, each cleared on the GPU before pages move in
    /// (never-populated pages need nothing more: no bytes move for them).
    vram_clears,
    /// Bytes those clears covered.
    bytes_cleared,
    /// Migrations into VRAM by range size.
    migrations_4k,
    /// Migrations of 64 KiB ranges.
    migrations_64k,
    /// Migrations of 2 MiB ranges.
    migrations_2m,
    /// VRAM allocations evicted to system memory under pressure (TTM LRU).
    evictions,
    /// Bytes those evictions moved.
    evicted_bytes,
    /// populate_mm -EBUSY answered by evict-and-retry-once (docs/kernel-model.md §5).
    migrate_retries,
    /// Migrations that failed (any errno).
    migrate_errors,
    /// Prefetch ranges whose failure the kernel turned into success (-ENODATA, docs/kernel-model.md §7).
    prefetch_swallowed,
    /// GPU TLB invalidations (one per tile that lost a binding).
    tlb_invalidations,
    /// MADVISE ioctls.
    madvise_calls,
    /// Ranges prefetches walked (`prefetch_ranges`: not those already
    /// bound where asked, which `xe_svm_range_validate` leaves out).
    prefetch_ranges,
    /// Bytes GPUs accessed in memory that was not their tile's VRAM.
    remote_access_bytes,
    /// Injected failures that fired.
    injected,
    /// Reads of the process's page table (PAGEMAP_SCAN calls or preads), and pages walked.
    page_table_reads,
    /// Pages those reads walked.
    page_table_pages,
    /// madvise(MADV_POPULATE_READ) calls (the process's own, not ioctls).
    populate_calls,
    /// Simulated ns spent on GPU accesses to memory that was not the
    /// accessing tile's VRAM (over a link, or system memory over PCIe).
    /// Every advance of the clock goes to exactly one `time_*_ns` counter
    /// ([`TimeCategory`]), so they sum to [`Sim::now_ns`].
    time_remote_access_ns,
    /// Simulated ns spent migrating: copies between system memory and VRAM
    /// or between devices, clears of new VRAM, and waits for an
    /// atomic timeslice before an eviction.
    time_migration_ns,
    /// Simulated ns spent servicing GPU and CPU faults (the fault, a CPU
    /// fault's timeslice wait, zero-filling never-populated system pages;
    /// the migrations they cause count as migration).
    time_fault_ns,
    /// Simulated ns spent on GPU TLB invalidations (unbinds, madvise,
    /// munmap, migrations that zap mappings).
    time_tlb_ns,
    /// Simulated ns spent in the process's own calls: ioctls received and
    /// reads of its page table.
    time_calls_ns,
    /// Simulated ns GPUs spent on their own device's VRAM (a launch's
    /// bytes touched over the device's local bandwidth).
    time_local_access_ns,
    /// Simulated ns of launches' compute beyond their memory time (the
    /// roofline's compute side).
    time_compute_ns,
}

/// What a stretch of simulated time went to: every advance of the clock is
/// charged to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeCategory {
    /// GPU accesses to memory other than the tile's VRAM.
    RemoteAccess,
    /// Copies, VRAM clears, waits before an eviction.
    Migration,
    /// GPU and CPU fault service, and populating system pages.
    Fault,
    /// GPU TLB invalidations.
    Tlb,
    /// Ioctls and page-table reads.
    Calls,
    /// GPU accesses to the accessing device's own VRAM.
    LocalAccess,
    /// A launch's compute beyond its memory time.
    Compute,
}

impl CounterSnapshot {
    /// The simulated ns charged to each [`TimeCategory`], in declaration order.
    pub fn time_by_category(&self) -> [(TimeCategory, u64); 7] {
        [
            (TimeCategory::RemoteAccess, self.time_remote_access_ns),
            (TimeCategory::Migration, self.time_migration_ns),
            (TimeCategory::Fault, self.time_fault_ns),
            (TimeCategory::Tlb, self.time_tlb_ns),
            (TimeCategory::Calls, self.time_calls_ns),
            (TimeCategory::LocalAccess, self.time_local_access_ns),
            (TimeCategory::Compute, self.time_compute_ns),
        ]
    }

    /// The sum of the `time_*_ns` counters: the clock's reading when the
    /// snapshot was taken (nothing moves the clock uncategorized).
    pub fn time_total_ns(&self) -> u64 {
        self.time_by_category().iter().map(|&(_, ns)| ns).sum()
    }
}

/// An open simulated DRM file: one `open()` of a device node.
struct File {
    device: u32,
    vms: BTreeMap<u32, Vm>,
    _fd: OwnedFd,
}

struct State {
    mem: Memory,
    files: HashMap<RawFd, File>,
    /// Per device: the errno every call gets once it is gone.
    gone: Vec<Option<Errno>>,
    injector: inject::Injector,
    /// A migration's page list, kept between migrations.
    scratch: Vec<u64>,
    /// User fences of binds whose work is done but whose completion the
    /// world has not seen yet: (address, value). A VM_BIND returns before
    /// its fence signals; the fence is written when simulated time next
    /// moves for anyone (the next ioctl, a wait, a GPU or CPU access), so a
    /// caller that does not wait sees the bind still in flight.
    fences: Vec<(u64, u64)>,
}

/// The simulated driver and its world. Share it with `Arc`.
pub struct Sim {
    topo: Topology,
    pagemaps: Vec<PagemapInfo>,
    /// Per device, per tile: its pagemap.
    tile_pagemap: Vec<Vec<u16>>,
    /// Per device: its interconnect (pagemap owner) group.
    owner: Vec<u32>,
    state: Mutex<State>,
    /// `driver_migrate_lock` (docs/kernel-model.md §5).
    migrate_lock: RwLock<()>,
    /// Every engine's clock (timeline.rs).
    timelines: Mutex<timeline::Timelines>,
    clocks: timeline::Clocks,
    /// The host thread the calling code acts as ([`Sim::set_host_thread`]).
    host_thread: std::sync::atomic::AtomicU8,
    counters: Counters,
    /// How the simulated process may read its page table.
    page_table: Mutex<PageTableAccess>,
    /// Whether the simulated process has CAP_SYS_NICE: the CONFIG query's
    /// MAX_EXEC_QUEUE_PRIORITY is HIGH (2) then, NORMAL (1) otherwise.
    sys_nice: std::sync::atomic::AtomicBool,
    /// Events recorded for a trace, when asked for (`record_events`).
    recording: std::sync::atomic::AtomicBool,
    events: Mutex<Vec<SimEvent>>,
}

type Guard<'a> = MutexGuard<'a, State>;

impl Sim {
    /// A simulated machine of this topology (checked first).
    pub fn new(mut topo: Topology) -> std::result::Result<Arc<Sim>, String> {
        topo.validate()?;
        topo.settle_links(&[]); // "fabric" is PCIe P2P without future_fabric
        let mut pagemaps = Vec::new();
        let mut tile_pagemap = Vec::new();
        for (d, spec) in topo.devices.iter().enumerate() {
            let mut tiles = Vec::new();
            if spec.has_vram() {
                for t in 0..spec.tiles {
                    tiles.push(pagemaps.len() as u16);
                    pagemaps.push(PagemapInfo { device: d as u32, tile: t, instance: t + 1, capacity: spec.vram_per_tile });
                }
            }
            tile_pagemap.push(tiles);
        }
        if pagemaps.len() > 120 {
            return Err("too many VRAM regions (at most 120)".into());
        }
        let owner = topo.owner_groups();
        let ndev = topo.devices.len();
        let mem = Memory::new(pagemaps.iter().map(|p| p.capacity).collect());
        Ok(Arc::new(Sim {
            state: Mutex::new(State { mem, files: HashMap::new(), gone: vec![None; topo.devices.len()], injector: Default::default(), scratch: Vec::new(), fences: Vec::new() }),
            topo,
            pagemaps,
            tile_pagemap,
            owner,
            migrate_lock: RwLock::new(()),
            timelines: Mutex::new(timeline::Timelines::new(ndev)),
            clocks: timeline::Clocks::new(ndev),
            host_thread: std::sync::atomic::AtomicU8::new(0),
            counters: Counters::default(),
            page_table: Mutex::new(PageTableAccess { source: PageTableSource::Scan, privileged: false }),
            sys_nice: std::sync::atomic::AtomicBool::new(false),
            recording: std::sync::atomic::AtomicBool::new(false),
            events: Mutex::new(Vec::new()),
        }))
    }

    /// A simulator of one of [`config::PRESETS`].
    pub fn from_preset(name: &str) -> std::result::Result<Arc<Sim>, String> {
        let topo = Topology::preset(name).ok_or_else(|| {
            let names: Vec<_> = config::PRESETS.iter().map(|(n, _)| *n).collect();
            format!("unknown preset \"{name}\" (known: {})", names.join(", "))
        })?;
        Sim::new(topo)
    }

    /// A simulator from a topology file.
    pub fn from_file(path: &std::path::Path) -> std::result::Result<Arc<Sim>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let topo = Topology::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Sim::new(topo)
    }

    /// What `uname -r` answers a process on the simulated machine.
    pub fn uname_release(&self) -> &'static str {
        self.topology().kernel.release()
    }

    /// The topology it simulates.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Its VRAM regions, in pagemap order.
    pub fn pagemaps(&self) -> &[PagemapInfo] {
        &self.pagemaps
    }

    /// The pagemap of a device's tile, if it has VRAM.
    pub fn pagemap_of(&self, device: u32, tile: u16) -> Option<u16> {
        self.tile_pagemap.get(device as usize)?.get(tile as usize).copied()
    }

    /// The pagemap (owner) group of a device: devices in one group reach each
    /// other's VRAM directly.
    pub fn owner_group(&self, device: u32) -> u32 {
        self.owner[device as usize]
    }

    // -- files --------------------------------------------------------------

    /// Opens a device like `open("/dev/dri/renderD*")`: returns a real,
    /// process-unique file descriptor that only this simulator understands.
    pub fn open_device(&self, device: u32) -> Result<RawFd> {
        if device as usize >= self.topo.devices.len() {
            return Err(Errno::ENODEV);
        }
        let mut g = self.state.lock();
        if let Some(e) = g.gone[device as usize] {
            return Err(e);
        }
        // SAFETY: plain syscall; the fd is owned below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        g.files.insert(raw, File { device, vms: BTreeMap::new(), _fd: fd });
        Ok(raw)
    }

    /// Closes a device fd: its VMs go away (pages stay where they are, as the
    /// process's memory does).
    pub fn close_device(&self, fd: RawFd) -> Result<()> {
        let mut g = self.state.lock();
        g.files.remove(&fd).map(drop).ok_or(Errno::EBADF)
    }

    /// The device index behind an fd of this simulator.
    pub fn device_of_fd(&self, fd: RawFd) -> Option<u32> {
        self.state.lock().files.get(&fd).map(|f| f.device)
    }

    // -- clock, counters, injection ------------------------------------------

    /// Adds `ns` to `cat`'s time counter (the clock moved by `ns` for it).
    fn charge(&self, cat: TimeCategory, ns: u64) {
        let c = &self.counters;
        let counter = match cat {
            TimeCategory::RemoteAccess => &c.time_remote_access_ns,
            TimeCategory::Migration => &c.time_migration_ns,
            TimeCategory::Fault => &c.time_fault_ns,
            TimeCategory::Tlb => &c.time_tlb_ns,
            TimeCategory::Calls => &c.time_calls_ns,
            TimeCategory::LocalAccess => &c.time_local_access_ns,
            TimeCategory::Compute => &c.time_compute_ns,
        };
        self.count(counter, ns);
    }

    fn count(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// Starts (or stops) recording [`SimEvent`]s for a trace.
    pub fn record_events(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    /// The events recorded so far, in order; recording goes on.
    pub fn take_events(&self) -> Vec<SimEvent> {
        std::mem::take(&mut *self.events.lock())
    }

    /// Records an event when a trace was asked for (one relaxed load otherwise).
    fn event(&self, e: impl FnOnce() -> SimEvent) {
        if self.recording.load(Ordering::Relaxed) {
            self.events.lock().push(e());
        }
    }

    /// Arms a fault injection.
    pub fn inject(&self, injection: Injection) {
        self.state.lock().injector.arm(injection);
    }

    /// Disarms every injection.
    pub fn clear_injections(&self) {
        self.state.lock().injector.clear();
    }

    fn injected(&self, g: &mut Guard, point: Point, device: u32, request: u32) -> Option<Errno> {
        if g.injector.is_empty() {
            return None;
        }
        let e = g.injector.check(point, device, request);
        if e.is_some() {
            self.count(&self.counters.injected, 1);
        }
        e
    }

    /// Unplugs (ENODEV) or wedges (ECANCELED) a device: its VRAM contents go
    /// back to system memory, and every later call on it fails with `errno`.
    pub fn remove_device(&self, device: u32, errno: Errno) -> Result<()> {
        if device as usize >= self.topo.devices.len() {
            return Err(Errno::ENODEV);
        }
        let mut g = self.state.lock();
        self.mark_gone(&mut g, device, errno);
        Ok(())
    }

    fn mark_gone(&self, g: &mut Guard, device: u32, errno: Errno) {
        if g.gone[device as usize].is_some() {
            return;
        }
        g.gone[device as usize] = Some(errno);
        let victims: Vec<u32> = g
            .mem
            .allocations()
            .filter(|(_, a)| self.pagemaps[a.pagemap as usize].device == device)
            .map(|(id, _)| id)
            .collect();
        for id in victims {
            self.evict_alloc(g, id, false);
        }
    }

    // -- the world: CPU side ------------------------------------------------

    /// Completes the binds whose work is done: writes their user fences,
    /// checked (a fault at signal time is lost, as in the kernel).
    fn signal_fences(&self, g: &mut Guard) {
        // A word the worker cannot write (read-only, unmapped since) is
        // never signalled: user_fence_worker warns ("Copy to user failed")
        // and goes on, and a wait on it ends with ETIME or EFAULT.
        for (addr, value) in std::mem::take(&mut g.fences) {
            let _ = uaccess::write(addr, &value);
        }
    }

    /// Gives the simulated process CAP_SYS_NICE (or not, the default):
    /// `xe_exec_queue_device_get_max_priority` answers HIGH only then, so
    /// the CONFIG query's MAX_EXEC_QUEUE_PRIORITY is 2 with it and 1
    /// without. (Regions' `used` needs no capability: "drm/xe/uapi: loosen
    /// used tracking restriction" dropped the perfmon gate.)
    pub fn set_sys_nice_capable(&self, yes: bool) {
        self.sys_nice.store(yes, Ordering::Relaxed);
    }

    pub(crate) fn sys_nice_capable(&self) -> bool {
        self.sys_nice.load(Ordering::Relaxed)
    }
}

/// Validates a span: non-empty, no overflow, inside the modelled address space.
pub(super) fn check_span(start: u64, size: u64) -> Result<u64> {
    if size == 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.checked_add(size).ok_or(Errno::EINVAL)?;
    if end > mem::VA_END {
        return Err(Errno::EINVAL);
    }
    Ok(end)
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Files own their descriptors; dropping the state closes them.
        self.state.get_mut().files.clear();
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self._fd.as_raw_fd()
    }
}

#[cfg(test)]
mod time_tests {
    use super::*;
    use crate::driver::xe;
    use crate::uapi::*;

    /// Every advance of the clock is charged to one category: the `time_*`
    /// counters sum to the clock after faults, migrations, CPU faults,
    /// munmap and ioctls.
    #[test]
    fn every_advance_of_the_clock_has_a_category() {
        let sim = Sim::from_preset("2dgpu-p2p").unwrap();
        let drv = driver::SimDriver::new(sim.clone());
        let fd = sim.open_device(0).unwrap();
        let vm = xe::vm_create(&drv, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
        xe::bind_cpu_addr_mirror(&drv, fd, vm, 0, 1 << 47, false).unwrap();
        let (a, n) = (1u64 << 30, 8u64 << 20);
        sim.cpu_access(a, n, Access::Write, 1).unwrap();
        sim.gpu_access(fd, vm, 0, a, n, Access::Atomic, 2).unwrap();
        sim.cpu_access(a, n, Access::Read, 3).unwrap();
        sim.gpu_access(fd, vm, 0, a, n, Access::Read, 4).unwrap();
        sim.munmap(a, n).unwrap();
        let k = sim.counters();
        assert_eq!(k.time_total_ns(), sim.now_ns(), "{k:?}");
        assert!(k.time_migration_ns > 0 && k.time_fault_ns > 0 && k.time_tlb_ns > 0 && k.time_calls_ns > 0, "{k:?}");
    }
}
