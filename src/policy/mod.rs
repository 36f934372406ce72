//! The placement engine: `resolve` (where should a range live), `alloc_vram`
//! (make it live there: the five steps of docs/design.md's placement flow, with a
//! defined answer for every errno), `evict`, and attribute calls that keep
//! every device's VM consistent.
//!
//! It talks to a [`Driver`] and never asks which one, and it decides only on
//! what a process can know (docs/design.md, "What the library may know"): ioctl
//! results, its own records, and the process's page table (`observe`), which
//! says whether pages are in system memory or not. With it the engine checks
//! that a prefetch really placed the range (the kernel reports failed
//! prefetches as success, docs/kernel-model.md §7), that an in-place record is still
//! true, and sees the CPU pull pages back (ping-pong). Where the page table
//! cannot be read it trusts its records, which the runtime can invalidate.
//!
//! Concurrency: the in-place check and `resolve` take read locks only (no
//! ioctl, no allocation). Everything that issues ioctls holds a range lock
//! on its span (`rangelock`): overlapping placements from racing threads
//! take turns and end in one defined place, the last one to run; placements
//! of disjoint ranges run in parallel. Closing a device holds every span.
//!
//! The house, by the call a reader follows: this file owns the context and
//! its devices and links; `adopt` (the runtime's fds and VMs, checked),
//! `resolve`, `place` (alloc_vram and its errno
//! table), `evict`, `attributes` (preferred location and atomic mode on every
//! VM), `observe` (the page table), `record` (bookkeeping and the range
//! query), `links` (what the library knows of the links between devices). The default engine's strategies: `choose` (which one runs, span
//! by span, and its regret), `faults` (the kernel's), `prefetch` (the
//! runtime's), and the rule cascade (`resolve`'s rules, `birth`, `chunks`).

mod adopt;
mod batch;
mod birth;
mod bind;
mod attributes;
mod brlock;
mod choose;
mod chunks;
mod device;
mod errors;
mod evict;
mod faults;
mod links;
mod migrate;
mod observe;
mod place;
mod prefetch;
mod rangelock;
mod record;
mod rent;
mod resolve;
mod stats;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use brlock::{BrLock, ReadGuard};

pub use batch::Batch;
pub use device::{Device, DeviceFd, DeviceHandle, MAX_DEVICES};
pub use observe::Seen;
pub use stats::{Stats, StatsSnapshot};

use crate::driver::query::DeviceInfo;
use crate::driver::xe;
use crate::driver::{Driver, LinkHint, PageTableAccess};
use crate::errno::{Errno, Result};
use crate::topology::description::DescribedLink;
use crate::topology::{Link, LinkKind, LinkSource, LinkState, Links, Pagemap};
use crate::track::{DevAttrs, PrefApplied, Record, Track};
use crate::uapi::*;

/// The page size spans are aligned to.
pub const PAGE: u64 = 4096;
/// The kernel's largest SVM range (its 2 MiB chunk, docs/kernel-model.md §2).
pub const CHUNK: u64 = 2 << 20;
/// Ranges must lie in the user address space (x86-64, 4-level paging).
pub const VA_LIMIT: u64 = 1 << 47;
/// Resolution of the LRU stamp of a range (its last use).
const LRU_GRANULE_NS: u64 = 1_000_000;

/// The access a placement is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A read.
    Read,
    /// A write.
    Write,
    /// GPU atomics.
    Atomic,
    /// The application asked for the range here (an explicit prefetch or
    /// migrate call): a read that will be reused, so never served in place
    /// first (resolve's rent or buy).
    Prefetch,
}

/// Knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// A range that moved this many times within its window is pinned.
    pub thrash_max_moves: u32,
    /// The window the thrash guard counts moves in (driver clock), at least.
    pub thrash_window_ns: u64,
    /// How long a pin lasts.
    pub pin_ns: u64,
    /// How long an observation of a range's pages stays fresh: within it
    /// the engine believes its record without reading the page table.
    pub observe_ttl_ns: u64,
    /// Bind the mirrors of the VMs the library creates with
    /// MADVISE_AUTORESET: the kernel then resets a range's attributes when
    /// memory the GPU used is unmapped, as Intel's compute runtime binds it.
    pub mirror_autoreset: bool,
    /// How long a placement waits for its bind's fence (real time on the
    /// kernel) before it fails with ETIME. Default 1 s, as Intel's compute
    /// runtime waits.
    pub bind_timeout_ns: u64,
    /// Decide engine placements (`AllocFlags::ENGINE`) with the rule
    /// cascade of 0.2 (split birth, rent or buy, walks, readers in
    /// place, deferral to the fault, widening). Off by default: each rule
    /// was written for one workload, and on programs no one tuned them to
    /// they lose to the runtime's plain prefetch (docs/design.md, "The
    /// engine's default"). Without them an engine placement is the
    /// runtime's own prefetch, decided with what xesvm knows: advice per
    /// device, atomics, VRAM room, and the explicit requests it honours.
    pub engine_rules: bool,
    /// Map the zero page (madvise MADV_POPULATE_READ) over the
    /// never-populated pages of a span's partial 2 MiB chunks before the
    /// GPU first binds it there (a span left to the faults, a birth in
    /// system memory), so the kernel makes 64 KiB ranges there, not 4 KiB
    /// ones (`Context::populate_edges`). On by default; off leaves the
    /// kernel's own ranges.
    pub zero_page: bool,
}

impl Default for Config {
    fn default() -> Self {
        // UVM counts two events within 500 us as thrashing and pins for ~150 ms
        // (docs/cost-model.md); placement calls are coarser than faults, so the
        // window is wider.
        // A fresh observation is reused for 200 us: reading the page table
        // costs about 0.2 us per 2 MiB sampled, a wrong belief a GPU fault
        // (>= 30 us, docs/cost-model.md) per 2 MiB; calls closer than that are
        // one launch's worth of placements.
        Config { thrash_max_moves: 4, thrash_window_ns: 50_000_000, pin_ns: 150_000_000, observe_ttl_ns: 200_000, mirror_autoreset: false, bind_timeout_ns: xe::BIND_TIMEOUT_NS as u64, engine_rules: false, zero_page: true }
    }
}

/// How `alloc_vram` ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placed {
    /// Where the range is now (believed, or observed where the driver allows).
    pub pagemap: Option<Pagemap>,
    /// Bytes moved.
    pub bytes_moved: u64,
    /// Retries after EBUSY, ENOMEM/ENOSPC, EINTR/EAGAIN and unverified prefetches.
    pub retries: u32,
    /// Ioctls issued.
    pub ioctls: u32,
    /// Found in place: nothing done.
    pub in_place: bool,
    /// Not placed in the requested pagemap: it fell back (see `cause`).
    pub fell_back: bool,
    /// The thrash guard kept it where it was.
    pub pinned: bool,
    /// The driver confirmed the placement (false on the kernel: believed only).
    pub verified: bool,
    /// Not prefetched: the attributes send it to `pagemap`, and the
    /// launch's first GPU fault moves it there, or maps it there over the
    /// link where `pagemap` is a peer's VRAM (`bytes_moved` is 0).
    pub on_fault: bool,
    /// Part in the accessing device's VRAM, the rest in system memory
    /// (`pagemap`): a split birth (policy/birth.rs: never populated, its
    /// first 2 MiB chunk in the VRAM asked for until the next calls show
    /// who uses it), an arena's last buffer whose tail chunk was born in
    /// system memory (policy/birth.rs, birth in pieces), or an end chunk
    /// that came along into that VRAM with a neighbour's move, asked for
    /// system memory (policy/chunks.rs).
    pub split: bool,
    /// The errno that caused the fallback (or, when the call failed, ended it).
    pub cause: Option<Errno>,
    /// Device VMs (bit = device slot) whose attributes this call set, and
    /// those that refused them (found gone, or ENOLINK on a device that is
    /// not the accessing one): each keeps its own, as a range query shows.
    pub vms_applied: u64,
    /// Device VMs whose madvise failed (not fatally).
    pub vms_refused: u64,
}

/// What alloc_vram did, whether it succeeded or not.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Ok, or the errno the call returns.
    pub result: Result<()>,
    /// Filled either way: on failure, where the range is believed to be
    /// now and the retries, ioctls and VMs of the attempt.
    pub placed: Placed,
}

bitflags::bitflags! {
    /// Flags of `alloc_vram` (the C API's `SVM_ALLOC_*`, bit for bit).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct AllocFlags: u32 {
        /// Fail with the errno instead of falling back to another pagemap.
        const NO_FALLBACK = 1 << 0;
        /// Move even if the thrash guard would pin the range.
        const IGNORE_THRASH_GUARD = 1 << 1;
        /// Prefetch now, never leave the move to the launch's GPU fault.
        const PREFETCH_NOW = 1 << 2;
        /// The target is the engine's own answer (resolve's, for a launch):
        /// the engine may decide how to get there (split birth, the launch's
        /// fault, the thrash guard, widening to a walk or a moved record). Without it the call is an explicit request (an
        /// application's prefetch): the span asked, in the target asked,
        /// or a fallback that says so.
        const ENGINE = 1 << 3;
        /// With ENGINE: the span is the allocation that holds a kernel's
        /// argument pointer (what a runtime knows of malloc memory,
        /// `Context::extent_of`), not the bytes the kernel touches. Without
        /// the rule cascade the engine then leaves the move to the launch's
        /// faults (`Placed::on_fault`): prefetching a whole allocation for a
        /// kernel that touches a slice of it can cost more than the faults
        /// it saves, and the kernel's own fault-driven placement is what the
        /// runtime does without xesvm.
        const EXTENT = 1 << 4;
    }
}

impl AllocFlags {
    /// Whether the engine may re-decide the placement ([`AllocFlags::ENGINE`]).
    pub(crate) fn engine(self) -> bool {
        self.contains(AllocFlags::ENGINE)
    }

    /// Whether the thrash guard applies: engine placements only, unless
    /// the caller turned it off.
    pub(crate) fn guarded(self) -> bool {
        self.engine() && !self.contains(AllocFlags::IGNORE_THRASH_GUARD)
    }

    /// Whether the move may be left to the launch's GPU fault or split:
    /// engine placements only, unless the caller wants it now.
    pub(crate) fn may_defer(self) -> bool {
        self.engine() && !self.contains(AllocFlags::PREFETCH_NOW)
    }
}

/// The per-device part of a range query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAttrs {
    /// The device.
    pub device: DeviceHandle,
    /// As the kernel reports it (VM_QUERY_MEM_RANGE_ATTRS): 0 default device,
    /// -1 default system, else the fd of the preferred device.
    pub preferred_fd: i32,
    /// Its atomic mode (`DRM_XE_ATOMIC_*`).
    pub atomic: u32,
    /// VMAs the span covers on that VM (more than one: attributes differ inside).
    pub vmas: u32,
}

/// What a range query answers.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeInfo {
    /// The library's belief (None: unknown).
    pub residency: Option<Pagemap>,
    /// What the page table showed (None: it cannot be read).
    pub observed: Option<Seen>,
    /// The pagemap the pages not in system memory are in, when they are
    /// all in one of this context's: named by a privileged page table, or
    /// the only VRAM the context ever opened (`Context::only_vram`).
    pub observed_pagemap: Option<Pagemap>,
    /// The runtime's preferred location, where every device it set one
    /// for (all, or each with svm_device_set_preferred_location) has the
    /// same over the whole span.
    pub preferred: Option<Pagemap>,
    /// Moves within the thrash window.
    pub moves_in_window: u32,
    /// Whether the thrash guard holds it now.
    pub pinned: bool,
    /// What each device's VM says.
    pub devices: Vec<DeviceAttrs>,
}

/// `Context::handles`: the slot exists, its device is open; the low 16
/// bits are the slot's generation.
const HANDLE_SLOT: u32 = 1 << 17;
const HANDLE_OPEN: u32 = 1 << 16;

struct Slot {
    gen: u16,
    dev: Option<Arc<Device>>,
}

/// A placement context: a driver, its open devices, and what the library
/// knows about ranges. Safe to use from many threads.
pub struct Context {
    driver: Arc<dyn Driver>,
    config: Config,
    /// The kernel resets attributes after munmap on mirrors bound without
    /// MADVISE_AUTORESET (6.18-rc1/rc2, from `uname -r`); None where the
    /// release does not say, and then a multi-device madvise that answered
    /// (7.0+) is what clears the doubt.
    resets_unflagged: Option<bool>,
    slots: BrLock<Vec<Slot>>,
    /// Each slot's handle state, written under the slots' write lock and
    /// read without it: the C ABI checks a handle and names a pagemap on
    /// every call, and an atomic load there costs a fraction of a lock's
    /// two read-modify-writes (a call that uses the device looks it up
    /// under the lock again).
    handles: [AtomicU32; MAX_DEVICES],
    track: BrLock<Track>,
    links: BrLock<Links>,
    /// The runtime's topology description, by PCI address.
    described: parking_lot::RwLock<Vec<DescribedLink>>,
    /// What this process's page table tells (read once: it does not change).
    access: PageTableAccess,
    /// What serializes calls that issue ioctls: per span (see the module doc).
    ranges: rangelock::RangeLocks,
    stats: Stats,
    /// What this process did with buffers its GPUs wrote first (the split
    /// birth's learning, policy/birth.rs): up for a CPU hand-off, down for
    /// a GPU that kept one.
    births: std::sync::atomic::AtomicI32,
    /// Whether any span was born in system memory in pieces
    /// (policy/birth.rs): until then placements skip the record lookup.
    born_in_pieces: std::sync::atomic::AtomicBool,
    /// The default engine's choice per allocation (policy/choose.rs).
    chooser: choose::Chooser,
    /// Spans devices take turns at (policy/faults.rs).
    turns: faults::Turns,
    /// Spans left to the faults whose edges were populated (policy/faults.rs).
    populated: faults::Populated,
    /// What reads served in system memory cost, per reader and span (policy/rent.rs).
    rent: rent::Rent,
    /// The VRAM pagemaps ever opened in this context (pages this context
    /// placed there may still be there after a close): 0 none, one
    /// (`observe::ONE_VRAM`), or several (`observe::MANY_VRAM`).
    vram_opened: AtomicU32,
    /// The fork generation of the process that created it (driver::fork).
    process: u32,
}

/// What step 1 found.
enum Check {
    /// The record holds: nothing to do.
    InPlace(Placed),
    /// The page table shows the range elsewhere than recorded.
    Moved(Seen),
    /// The call is for a piece of a record the page table shows elsewhere
    /// than recorded: the record's span, to be placed again whole.
    RecordMoved(u64, u64),
    /// No record of the range there.
    Unknown,
}

/// Why one candidate placement did not work.
enum Miss {
    /// Try the next candidate (the errno says why).
    Fallback(Errno),
    /// Stop: return the errno.
    Fatal(Errno),
}

impl From<Errno> for Miss {
    fn from(e: Errno) -> Self {
        Miss::Fatal(e)
    }
}

/// Checks a span: non-empty, page aligned, no overflow, in the user VA.
pub fn check_span(start: u64, size: u64) -> Result<u64> {
    match span_problem(start, size) {
        None => Ok(start + size),
        Some(_) => Err(Errno::EINVAL),
    }
}

/// What is wrong with [start, start+size) as a span, if anything: the
/// rules of [`check_span`], in words (the C ABI's error message).
pub fn span_problem(start: u64, size: u64) -> Option<&'static str> {
    if size == 0 {
        Some("size is zero")
    } else if start % PAGE != 0 || size % PAGE != 0 {
        Some("start and size must be multiples of 4096")
    } else if start.checked_add(size).is_none_or(|e| e > VA_LIMIT) {
        Some("the range overflows the user address space (2^47)")
    } else {
        None
    }
}

impl Context {
    /// A context on the kernel driver (render nodes).
    pub fn new_kernel(config: Config) -> Context {
        Context::new(Box::new(crate::driver::kernel::KernelDriver), config)
    }

    /// A context on any driver behind the seam.
    pub fn new(driver: Box<dyn Driver>, config: Config) -> Context {
        // Whether the kernel resets attributes after munmap without the
        // autoreset flag, from its release (None: the release does not say).
        let resets_unflagged = driver.kernel_release().and_then(|r| crate::driver::resets_without_autoreset(&r));
        Context {
            resets_unflagged,
            access: driver.page_table(),
            driver: Arc::from(driver),
            config,
            slots: BrLock::new(Vec::new()),
            handles: [const { AtomicU32::new(0) }; MAX_DEVICES],
            track: BrLock::new(Track::default()),
            links: BrLock::new(Links::default()),
            described: parking_lot::RwLock::new(Vec::new()),
            ranges: rangelock::RangeLocks::new(),
            stats: Stats::default(),
            births: std::sync::atomic::AtomicI32::new(0),
            born_in_pieces: std::sync::atomic::AtomicBool::new(false),
            chooser: choose::Chooser::default(),
            turns: faults::Turns::default(),
            populated: faults::Populated::default(),
            rent: rent::Rent::default(),
            vram_opened: AtomicU32::new(0),
            process: crate::driver::fork::generation(),
        }
    }

    /// ECHILD in a child forked after the context was created: its devices'
    /// DRM files and VMs are the parent's (shared across fork) and its
    /// records describe the parent's memory. A child creates its own
    /// context; it may destroy the inherited one, which then closes the
    /// child's copies of the fds and leaves the parent's VMs alone.
    pub fn check_process(&self) -> Result<()> {
        if crate::driver::fork::generation() == self.process {
            Ok(())
        } else {
            Err(Errno::ECHILD)
        }
    }

    /// The policy knobs in force.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The statistics, summed over threads.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// How this context reads the page table.
    pub fn page_table(&self) -> PageTableAccess {
        self.access
    }

    /// The driver's clock.
    pub fn now_ns(&self) -> u64 {
        self.driver.now_ns()
    }

    /// The extent of the allocation `addr` lies in, as far as a process
    /// without an allocation table can tell: the CPU mapping that holds it
    /// (`/proc/self/maps`, [`Driver::cpu_mapping`]), `(start, end)`, page
    /// aligned. What a runtime that sees only a kernel's pointer argument
    /// into malloc memory can hand to [`Context::alloc_vram`]. A mapping
    /// may hold several allocations (an allocator's arena; adjacent
    /// anonymous mappings Linux merged), and is one VMA: a madvise or
    /// mprotect over part of an allocation cuts it there.
    ///
    /// The library's records are not consulted: they are the spans calls
    /// named, cut where later calls placed parts (a split birth, an
    /// explicit prefetch of a piece) and widened where the engine chose
    /// (2 MiB chunk sides, a walk's span), and they
    /// outlive a free the library is not told of, so they are neither an
    /// allocation's bounds nor current. One read of the maps per call
    /// (a syscall and the mm lock): a runtime that asks per launch should
    /// cache what it learns until its own free hook says otherwise.
    ///
    /// EFAULT where nothing is mapped at `addr`; ECHILD in a forked child.
    pub fn extent_of(&self, addr: u64) -> Result<(u64, u64)> {
        self.check_process()?;
        // Nothing below mmap_min_addr (64 KiB by default: NULL) or above
        // the user half of the address space (the vsyscall page, which
        // /proc/self/maps lists) can be placed: EFAULT, as for a hole, so
        // that what is answered can always go to a placement as it is.
        const MMAP_MIN_ADDR: u64 = 0x1_0000;
        if !(MMAP_MIN_ADDR..VA_LIMIT).contains(&addr) {
            return Err(Errno::EFAULT);
        }
        let (lo, hi) = self.driver.cpu_mapping(addr)?;
        Ok((lo.max(MMAP_MIN_ADDR), hi.min(VA_LIMIT)))
    }

    // -- devices --------------------------------------------------------------

    /// `tile_vms`: one adopted VM per tile (empty: `vm` serves every tile).
    /// Every error path drops `file`, which closes it if the library owns it.
    fn attach(&self, file: DeviceFd, vm: Option<u32>, autoreset: bool, tile_vms: Vec<u32>) -> Result<DeviceHandle> {
        let fd = file.raw();
        // The driver first: an Xe ioctl number means something else to
        // another DRM driver (DRM_IOCTL_VERSION is the core's).
        if vm.is_none() {
            match crate::driver::query::driver_name(&*self.driver, fd) {
                Ok(name) if name == "xe" => {}
                Ok(_) => return Err(Errno::ENOTTY),
                Err(e) => return Err(e),
            }
        }
        let info = crate::driver::query::query_device(&*self.driver, fd)?;
        if !info.config.has_cpu_addr_mirror() {
            return Err(Errno::EOPNOTSUPP);
        }
        let (vm_id, owns_vm) = match vm {
            Some(id) => (id, false),
            None => (self.create_svm_vm(fd, &info)?, true),
        };
        let id = self.driver.device_id(fd);
        let mut slots = self.slots.write();
        vm.filter(|&vm| Context::holds_vm(&slots, fd, vm, &tile_vms)).map_or(Ok(()), |_| Err(Errno::EEXIST))?;
        // A slot whose generation ran out is never used again: a stale
        // handle must never name a later device (65,535 opens of one slot).
        let slot = match slots.iter().position(|s| s.dev.is_none() && s.gen != u16::MAX) {
            Some(i) => i,
            None => {
                if slots.len() >= device::MAX_DEVICES {
                    drop(slots);
                    if owns_vm {
                        let _ = xe::vm_destroy(&*self.driver, fd, vm_id);
                    }
                    return Err(Errno::ENOSPC);
                }
                slots.push(Slot { gen: 0, dev: None });
                slots.len() - 1
            }
        };
        let gen = slots[slot].gen;
        let mut dev = Device::new(slot as u16, gen, file, vm_id, owns_vm, info, id);
        dev.autoreset = autoreset;
        dev.tile_vms = tile_vms;
        let dev = Arc::new(dev);
        slots[slot].dev = Some(dev.clone());
        // Known to the chooser, and its VRAM to the page-table reads,
        // before its handle exists.
        self.chooser.opened(slot as u16, dev.has_vram());
        self.vram_opened_now(&dev);
        self.handles[slot].store(HANDLE_SLOT | HANDLE_OPEN | gen as u32, Ordering::Release);
        drop(slots);
        self.learn_links(&dev);
        Ok(DeviceHandle { slot: slot as u16, gen })
    }

    /// Creates the LR | FAULT_MODE VM and binds the CPU-address mirror over
    /// the user address space, with user-fence completion (docs/xe-uapi.md §8),
    /// with MADVISE_AUTORESET where the configuration asks (the records then
    /// forget attributes on a free: `invalidate`).
    fn create_svm_vm(&self, fd: RawFd, info: &DeviceInfo) -> Result<u32> {
        let vm = xe::vm_create(&*self.driver, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE)?;
        let va = if info.config.va_bits >= 48 || info.config.va_bits == 0 { VA_LIMIT } else { 1 << info.config.va_bits };
        if let Err(e) = xe::bind_cpu_addr_mirror_pat(&*self.driver, fd, vm, 0, va.min(VA_LIMIT), self.config.mirror_autoreset, info.mirror_pat_index()) {
            let _ = xe::vm_destroy(&*self.driver, fd, vm);
            return Err(e);
        }
        Ok(vm)
    }

    /// Opens a device node (an Xe render node) and makes it ready for SVM.
    pub fn open_path(&self, path: &std::path::Path) -> Result<DeviceHandle> {
        let file = DeviceFd::owned(self.driver.open_path(path)?, self.driver.clone());
        self.attach(file, None, self.config.mirror_autoreset, Vec::new())
    }

    /// Opens device `index`: the index-th Xe render node, or the simulated
    /// device of that index.
    pub fn open_index(&self, index: u32) -> Result<DeviceHandle> {
        let file = DeviceFd::owned(self.driver.open_index(index)?, self.driver.clone());
        self.attach(file, None, self.config.mirror_autoreset, Vec::new())
    }

    /// Closes a device: destroys the VM and closes the fd if the library
    /// created them. Records of its pagemaps become unknown.
    pub fn close(&self, h: DeviceHandle) -> Result<()> {
        let _g = self.ranges.lock(0, u64::MAX);
        let dev = {
            let mut slots = self.slots.write();
            let s = slots.get_mut(h.slot as usize).ok_or(Errno::EINVAL)?;
            if s.gen != h.gen || s.dev.is_none() {
                return Err(Errno::EBADF);
            }
            s.gen = s.gen.saturating_add(1);
            self.handles[h.slot as usize].store(HANDLE_SLOT | s.gen as u32, Ordering::Release);
            // The slot's state is forgotten before the slot is free: a
            // device opened in it next must not lose what it learns, and a
            // report or placement through a stale handle (checked under the
            // slots' read lock) cannot write into the next device's.
            self.track.write().forget_device(h.slot);
            self.links.write().forget(h.slot);
            self.chooser.forget(h.slot);
            self.turns.forget_device(h.slot);
            self.rent.forget_device(h.slot);
            let dev = s.dev.take().unwrap();
            // Its pages may stay in its VRAM, which no handle names now:
            // page-table reads name no VRAM from here on (`only_vram`).
            self.vram_closed(&dev);
            dev
        };
        // The last reference destroys the VM the library created and closes
        // the fd it opened (Device's Drop; only the fd in a forked child).
        drop(dev);
        Ok(())
    }

    fn device_in(slots: &[Slot], h: DeviceHandle) -> Result<&Arc<Device>> {
        let s = slots.get(h.slot as usize).ok_or(Errno::EINVAL)?;
        match &s.dev {
            Some(d) if s.gen == h.gen => Ok(d),
            // A closed device (or a slot reused since): the handle is stale.
            // EBADF, as for a closed fd; ENODEV means the device is gone.
            _ => Err(Errno::EBADF),
        }
    }

    /// Checks a handle without touching the device (no reference taken,
    /// no lock): EINVAL for a slot never opened, EBADF for a closed one,
    /// as [`Context::device_in`] answers.
    pub fn check_device(&self, h: DeviceHandle) -> Result<()> {
        let v = self.handles.get(h.slot as usize).map_or(0, |v| v.load(Ordering::Acquire));
        match v {
            0 => Err(Errno::EINVAL),
            v if v & HANDLE_OPEN != 0 && v as u16 == h.gen => Ok(()),
            _ => Err(Errno::EBADF),
        }
    }

    /// The generation of an open slot (None: empty); no lock.
    pub fn slot_gen(&self, slot: u16) -> Option<u16> {
        let v = self.handles.get(slot as usize).map_or(0, |v| v.load(Ordering::Acquire));
        (v & HANDLE_OPEN != 0).then_some(v as u16)
    }

    /// The device behind a handle (EBADF if closed).
    pub fn device(&self, h: DeviceHandle) -> Result<Arc<Device>> {
        Context::device_in(&self.slots.read(), h).cloned()
    }

    /// Open devices, in slot order.
    pub fn devices(&self) -> Vec<DeviceHandle> {
        self.slots.read().iter().filter_map(|s| s.dev.as_ref().map(|d| DeviceHandle { slot: d.slot, gen: s.gen })).collect()
    }

    /// The pagemap of a device's tile (EINVAL: no such tile; ENXIO: the
    /// tile has no VRAM, an integrated GPU).
    pub fn pagemap(&self, h: DeviceHandle, tile: u16) -> Result<Pagemap> {
        let dev = self.device(h)?;
        if tile as usize >= dev.tiles.len() {
            return Err(Errno::EINVAL);
        }
        if dev.tiles[tile as usize].is_none() {
            return Err(Errno::ENXIO);
        }
        Ok(Pagemap::Vram { device: h.slot, tile })
    }

    /// The size of a VRAM pagemap's region (None: system memory, or unknown).
    fn capacity_of(slots: &[Slot], pm: Pagemap) -> Option<u64> {
        let Pagemap::Vram { tile, .. } = pm else { return None };
        Context::check_pagemap(slots, pm).ok().flatten().and_then(|d| d.tiles[tile as usize]).map(|t| t.capacity)
    }

    /// Checks a pagemap against the open devices: EINVAL unknown, EBADF
    /// closed, and a lost device's own errno (ENODEV unplugged, ECANCELED
    /// wedged) once the library has seen it go: no ioctl names dead memory.
    fn check_pagemap(slots: &[Slot], pm: Pagemap) -> Result<Option<&Arc<Device>>> {
        match pm {
            Pagemap::System => Ok(None),
            Pagemap::Vram { device, tile } => {
                let s = slots.get(device as usize).ok_or(Errno::EINVAL)?;
                let d = s.dev.as_ref().ok_or(Errno::EBADF)?;
                match d.tiles.get(tile as usize) {
                    Some(Some(_)) => {
                        d.check_alive()?;
                        Ok(Some(d))
                    }
                    _ => Err(Errno::EINVAL),
                }
            }
        }
    }

    /// Validates a pagemap named by the runtime.
    pub fn validate_pagemap(&self, pm: Pagemap) -> Result<()> {
        Context::check_pagemap(&self.slots.read(), pm).map(|_| ())
    }

    /// Bytes this context has placed in a pagemap (its own accounting).
    pub fn placed_bytes(&self, pm: Pagemap) -> u64 {
        self.track.read().bytes_on(pm)
    }

    /// For benchmarks and tests: read access to the track under its lock.
    pub fn records(&self) -> ReadGuard<'_, Track> {
        self.track.read()
    }
}
