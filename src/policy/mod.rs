//! The placement engine: `resolve` (where should a range live), `alloc_vram`
//! (make it live there: the five steps of design.md's placement flow, with a
//! defined answer for every errno), `evict`, and attribute calls that keep
//! every device's VM consistent.
//!
//! It talks to a [`Driver`] and never asks which one, and it decides only on
//! what a process can know (design.md, "What the library may know"): ioctl
//! results, its own records, and the process's page table (`observe`), which
//! says whether pages are in system memory or not. With it the engine checks
//! that a prefetch really placed the range (the kernel reports failed
//! prefetches as success, kernel-model §7), that an in-place record is still
//! true, and sees the CPU pull pages back (ping-pong). Where the page table
//! cannot be read it trusts its records, which the runtime can invalidate.
//!
//! Concurrency: the in-place check and `resolve` take read locks only (no
//! ioctl, no allocation). Everything that issues ioctls is serialized per
//! context, so overlapping placements from racing threads end in one defined
//! place: the last one to run.

mod brlock;
mod device;
mod observe;
mod stats;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use brlock::{BrLock, ReadGuard};

pub use device::{Device, DeviceHandle};
pub use observe::Seen;
pub use stats::{Stats, StatsSnapshot};

use crate::driver::query::DeviceInfo;
use crate::driver::xe;
use crate::driver::{Driver, LinkHint, PageTableAccess};
use crate::errno::{Errno, Result};
use crate::topology::{Link, LinkKind, LinkState, Links, Pagemap};
use crate::track::{DevAttrs, PrefApplied, Record, Track};
use crate::uapi::*;

pub const PAGE: u64 = 4096;
/// Ranges must lie in the user address space (x86-64, 4-level paging).
pub const VA_LIMIT: u64 = 1 << 47;
/// Resolution of the LRU stamp of a range (its last use).
const LRU_GRANULE_NS: u64 = 1_000_000;
/// EINTR/EAGAIN restarts per ioctl before giving up.
const MAX_RESTARTS: u32 = 8;

/// The access a placement is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Atomic,
}

/// Knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// A range that moved this many times within `thrash_window_ns` is pinned.
    pub thrash_max_moves: u32,
    pub thrash_window_ns: u64,
    /// How long a pin lasts.
    pub pin_ns: u64,
    /// How long an observation of a range's pages stays fresh: within it
    /// the engine believes its record without reading the page table.
    pub observe_ttl_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        // UVM counts two events within 500 us as thrashing and pins for ~150 ms
        // (cost-model.md); placement calls are coarser than faults, so the
        // window is wider.
        // A fresh observation is reused for 200 us: reading the page table
        // costs about 0.2 us per 2 MiB sampled, a wrong belief a GPU fault
        // (>= 30 us, cost-model.md) per 2 MiB; calls closer than that are
        // one launch's worth of placements.
        Config { thrash_max_moves: 4, thrash_window_ns: 50_000_000, pin_ns: 150_000_000, observe_ttl_ns: 200_000 }
    }
}

/// How `alloc_vram` ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placed {
    /// Where the range is now (believed, or observed where the driver allows).
    pub pagemap: Option<Pagemap>,
    pub bytes_moved: u64,
    /// Retries after EBUSY, ENOMEM/ENOSPC, EINTR/EAGAIN and unverified prefetches.
    pub retries: u32,
    pub ioctls: u32,
    /// Found in place: nothing done.
    pub in_place: bool,
    /// Not placed in the requested pagemap: it fell back (see `cause`).
    pub fell_back: bool,
    /// The thrash guard kept it where it was.
    pub pinned: bool,
    /// The driver confirmed the placement (false on the kernel: believed only).
    pub verified: bool,
    /// The errno that caused the fallback, if any.
    pub cause: Option<Errno>,
}

/// Flags of `alloc_vram`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocFlags {
    /// Fail with the errno instead of falling back to another pagemap.
    pub no_fallback: bool,
    /// Move even if the thrash guard would pin the range.
    pub ignore_thrash_guard: bool,
}

/// The per-device part of a range query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAttrs {
    pub device: DeviceHandle,
    /// As the kernel reports it (VM_QUERY_MEM_RANGE_ATTRS): 0 default device,
    /// -1 default system, else the fd of the preferred device.
    pub preferred_fd: i32,
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
    /// The pagemap a privileged page table names for the pages not in
    /// system memory, when they are all in one of this context's.
    pub observed_pagemap: Option<Pagemap>,
    pub preferred: Option<Pagemap>,
    pub moves_in_window: u32,
    pub pinned: bool,
    pub devices: Vec<DeviceAttrs>,
}

struct Slot {
    gen: u16,
    dev: Option<Arc<Device>>,
}

/// A placement context: a driver, its open devices, and what the library
/// knows about ranges. Safe to use from many threads.
pub struct Context {
    driver: Box<dyn Driver>,
    config: Config,
    slots: BrLock<Vec<Slot>>,
    track: BrLock<Track>,
    links: BrLock<Links>,
    /// What this process's page table tells (read once: it does not change).
    access: PageTableAccess,
    /// Serializes everything that issues ioctls (see the module doc).
    slow: Mutex<()>,
    stats: Stats,
}

/// What step 1 found.
enum Check {
    /// The record holds: nothing to do.
    InPlace(Placed),
    /// The page table shows the range elsewhere than recorded.
    Moved(Seen),
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
    if size == 0 || start % PAGE != 0 || size % PAGE != 0 {
        return Err(Errno::EINVAL);
    }
    match start.checked_add(size) {
        Some(end) if end <= VA_LIMIT => Ok(end),
        _ => Err(Errno::EINVAL),
    }
}

impl Context {
    /// A context on the kernel driver (render nodes).
    pub fn new_kernel(config: Config) -> Context {
        Context::new(Box::new(crate::driver::kernel::KernelDriver), config)
    }

    /// A context on any driver behind the seam.
    pub fn new(driver: Box<dyn Driver>, config: Config) -> Context {
        Context {
            access: driver.page_table(),
            driver,
            config,
            slots: BrLock::new(Vec::new()),
            track: BrLock::new(Track::default()),
            links: BrLock::new(Links::default()),
            slow: Mutex::new(()),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> Config {
        self.config
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// How this context reads the page table.
    pub fn page_table(&self) -> PageTableAccess {
        self.access
    }

    pub fn now_ns(&self) -> u64 {
        self.driver.now_ns()
    }

    // -- devices --------------------------------------------------------------

    fn attach(&self, fd: RawFd, owns_fd: bool, vm: Option<u32>) -> Result<DeviceHandle> {
        let close = |fd| {
            if owns_fd {
                self.driver.close(fd)
            }
        };
        let info = match crate::driver::query::query_device(&*self.driver, fd) {
            Ok(i) => i,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        };
        if !info.config.has_cpu_addr_mirror() {
            close(fd);
            return Err(Errno::EOPNOTSUPP);
        }
        let (vm_id, owns_vm) = match vm {
            Some(id) => (id, false),
            None => match self.create_svm_vm(fd, &info) {
                Ok(id) => (id, true),
                Err(e) => {
                    close(fd);
                    return Err(e);
                }
            },
        };
        let id = self.driver.device_id(fd);
        let mut slots = self.slots.write();
        let slot = match slots.iter().position(|s| s.dev.is_none()) {
            Some(i) => i,
            None => {
                if slots.len() >= device::MAX_DEVICES {
                    drop(slots);
                    if owns_vm {
                        let _ = xe::vm_destroy(&*self.driver, fd, vm_id);
                    }
                    close(fd);
                    return Err(Errno::ENOSPC);
                }
                slots.push(Slot { gen: 0, dev: None });
                slots.len() - 1
            }
        };
        let gen = slots[slot].gen;
        let dev = Arc::new(Device::new(slot as u16, gen, fd, owns_fd, vm_id, owns_vm, info, id));
        slots[slot].dev = Some(dev.clone());
        drop(slots);
        self.learn_links(&dev);
        Ok(DeviceHandle { slot: slot as u16, gen })
    }

    /// Creates the LR | FAULT_MODE VM and binds the CPU-address mirror over
    /// the user address space, with user-fence completion (xe-uapi.md §8).
    /// No MADVISE_AUTORESET: the library tracks attributes itself and a
    /// silent reset on munmap would make its records wrong.
    fn create_svm_vm(&self, fd: RawFd, info: &DeviceInfo) -> Result<u32> {
        let vm = xe::vm_create(&*self.driver, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE)?;
        let va = if info.config.va_bits >= 48 || info.config.va_bits == 0 { VA_LIMIT } else { 1 << info.config.va_bits };
        if let Err(e) = xe::bind_cpu_addr_mirror(&*self.driver, fd, vm, 0, va.min(VA_LIMIT), false) {
            let _ = xe::vm_destroy(&*self.driver, fd, vm);
            return Err(e);
        }
        Ok(vm)
    }

    /// Links of a new device to the open ones, from what the platform says
    /// (sysfs PCI topology, a topology file); ENOLINK corrects it later.
    fn learn_links(&self, dev: &Device) {
        let Some(id) = dev.id else { return };
        let slots = self.slots.read();
        let mut links = self.links.write();
        for other in slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.slot != dev.slot) {
            let Some(other_id) = other.id else { continue };
            let state = match self.driver.link_hint(id, other_id) {
                None => continue,
                Some(LinkHint::None) => LinkState::Absent,
                Some(LinkHint::Interconnect { fabric, atomics, bandwidth }) => LinkState::Present(Link {
                    kind: if fabric { LinkKind::Fabric } else { LinkKind::PcieP2p },
                    atomics,
                    bandwidth,
                }),
            };
            links.set(dev.slot, other.slot, state);
        }
    }

    /// Opens a device node (an Xe render node) and makes it ready for SVM.
    pub fn open_path(&self, path: &std::path::Path) -> Result<DeviceHandle> {
        let fd = self.driver.open_path(path)?;
        self.attach(fd, true, None)
    }

    /// Opens device `index`: the index-th Xe render node, or the simulated
    /// device of that index.
    pub fn open_index(&self, index: u32) -> Result<DeviceHandle> {
        let fd = self.driver.open_index(index)?;
        self.attach(fd, true, None)
    }

    /// Adopts an fd and a fault-mode VM (with the CPU-address mirror bound)
    /// that the runtime owns: the library never closes or destroys them.
    pub fn adopt(&self, fd: RawFd, vm_id: u32) -> Result<DeviceHandle> {
        if fd < 0 || vm_id == 0 {
            return Err(Errno::EINVAL);
        }
        self.attach(fd, false, Some(vm_id))
    }

    /// Closes a device: destroys the VM and closes the fd if the library
    /// created them. Records of its pagemaps become unknown.
    pub fn close(&self, h: DeviceHandle) -> Result<()> {
        let _g = self.slow.lock();
        let dev = {
            let mut slots = self.slots.write();
            let s = slots.get_mut(h.slot as usize).ok_or(Errno::EINVAL)?;
            if s.gen != h.gen || s.dev.is_none() {
                return Err(Errno::ENODEV);
            }
            s.gen = s.gen.wrapping_add(1);
            s.dev.take().unwrap()
        };
        self.track.write().forget_device(h.slot);
        self.links.write().forget(h.slot);
        dev.release(&*self.driver);
        Ok(())
    }

    fn device_in<'a>(slots: &'a [Slot], h: DeviceHandle) -> Result<&'a Arc<Device>> {
        let s = slots.get(h.slot as usize).ok_or(Errno::EINVAL)?;
        match &s.dev {
            Some(d) if s.gen == h.gen => Ok(d),
            // A closed device (or a slot reused since): the handle is stale.
            _ => Err(Errno::ENODEV),
        }
    }

    /// Checks a handle without touching the device (no reference taken).
    pub fn check_device(&self, h: DeviceHandle) -> Result<()> {
        Context::device_in(&self.slots.read(), h).map(|_| ())
    }

    /// The generation of an open slot (None: empty).
    pub fn slot_gen(&self, slot: u16) -> Option<u16> {
        self.slots.read().get(slot as usize).filter(|s| s.dev.is_some()).map(|s| s.gen)
    }

    /// The device behind a handle (ENODEV if closed).
    pub fn device(&self, h: DeviceHandle) -> Result<Arc<Device>> {
        Context::device_in(&self.slots.read(), h).cloned()
    }

    /// Open devices, in slot order.
    pub fn devices(&self) -> Vec<DeviceHandle> {
        self.slots.read().iter().filter_map(|s| s.dev.as_ref().map(|d| DeviceHandle { slot: d.slot, gen: s.gen })).collect()
    }

    /// The pagemap of a device's tile (ENODEV: no VRAM there).
    pub fn pagemap(&self, h: DeviceHandle, tile: u16) -> Result<Pagemap> {
        let dev = self.device(h)?;
        if tile as usize >= dev.tiles.len() {
            return Err(Errno::EINVAL);
        }
        if dev.tiles[tile as usize].is_none() {
            return Err(Errno::ENODEV);
        }
        Ok(Pagemap::Vram { device: h.slot, tile })
    }

    /// Checks a pagemap against the open devices: EINVAL unknown, ENODEV gone.
    fn check_pagemap(slots: &[Slot], pm: Pagemap) -> Result<Option<&Arc<Device>>> {
        match pm {
            Pagemap::System => Ok(None),
            Pagemap::Vram { device, tile } => {
                let s = slots.get(device as usize).ok_or(Errno::EINVAL)?;
                let d = s.dev.as_ref().ok_or(Errno::ENODEV)?;
                match d.tiles.get(tile as usize) {
                    Some(Some(_)) => Ok(Some(d)),
                    _ => Err(Errno::EINVAL),
                }
            }
        }
    }

    /// Validates a pagemap named by the runtime.
    pub fn validate_pagemap(&self, pm: Pagemap) -> Result<()> {
        Context::check_pagemap(&self.slots.read(), pm).map(|_| ())
    }

    pub fn link(&self, a: DeviceHandle, b: DeviceHandle) -> Result<LinkState> {
        let slots = self.slots.read();
        Context::device_in(&slots, a)?;
        Context::device_in(&slots, b)?;
        Ok(self.links.read().get(a.slot, b.slot))
    }

    /// Tells the library what the runtime knows about a link.
    pub fn set_link(&self, a: DeviceHandle, b: DeviceHandle, state: LinkState) -> Result<()> {
        let slots = self.slots.read();
        Context::device_in(&slots, a)?;
        Context::device_in(&slots, b)?;
        if a.slot == b.slot {
            return Err(Errno::EINVAL);
        }
        self.links.write().set(a.slot, b.slot, state);
        Ok(())
    }

    // -- resolve ------------------------------------------------------------

    /// Where [start, start+size) should live for an access by `tile` of a
    /// device: kernel-model §3 and §14, plus what the library knows (capacity
    /// this context placed, pins and ping-pong history, links). No ioctl, no
    /// allocation.
    pub fn resolve(&self, h: DeviceHandle, tile: u16, start: u64, size: u64, access: Access) -> Result<Pagemap> {
        let end = check_span(start, size)?;
        self.stats.local().resolve_calls.fetch_add(1, Ordering::Relaxed);
        let slots = self.slots.read();
        let dev = Context::device_in(&slots, h)?;
        dev.check_alive()?;
        if tile as usize >= dev.tiles.len() {
            return Err(Errno::EINVAL);
        }
        // Integrated GPU: no device memory at all (row 23).
        let Some(t) = dev.tiles[tile as usize] else { return Ok(Pagemap::System) };
        let local = Pagemap::Vram { device: h.slot, tile };
        let track = self.track.read();
        // The record of the span, else the one covering most of it (a piece
        // a peer peeked at must not speak for the whole buffer).
        let exact = track.exact(start, end);
        let widest = || track.overlapping(start, end).max_by_key(|(s, r)| r.end.min(end) - (*s).max(start));
        // Whether one record holds more than the span (the span is part of it).
        let part_of_larger = exact.is_none() && widest().is_some_and(|(s, r)| s <= start && r.end >= end);
        let rec = exact.or_else(|| widest().map(|(_, r)| r));
        if access == Access::Atomic {
            // GPU atomics run in local VRAM only (§3.2, rows 15-19); CPU-only atomics fail (row 21).
            if rec.is_some_and(|r| r.attrs(h.slot).atomic == DRM_XE_ATOMIC_CPU) {
                return Err(Errno::EACCES);
            }
            return Ok(local);
        }
        let links = self.links.read();
        let reachable = |pm: Pagemap| match pm {
            Pagemap::System => true,
            Pagemap::Vram { device, .. } => {
                device == h.slot || (links.get(h.slot, device).usable() && Context::check_pagemap(&slots, pm).is_ok())
            }
        };
        if let Some(r) = rec {
            // An explicit preferred location wins where it can be reached (rows 10-13).
            if let Some(p) = r.preferred.filter(|&p| reachable(p)) {
                return Ok(p);
            }
            // Pinned or ping-ponging: leave it where it is (mapped remotely).
            if let Some(cur) = r.residency.filter(|&p| reachable(p)) {
                let now = self.driver.now_ns();
                let thrashing = r.thrashing(now, self.config.thrash_window_ns, self.config.thrash_max_moves);
                if now < r.pinned_until || (thrashing && cur != local) {
                    return Ok(cur);
                }
                // A read of part of what a linked peer holds is served over
                // the link (row 12) rather than moving a piece of the peer's
                // range here and back.
                if access == Access::Read && part_of_larger && cur != local && cur != Pagemap::System {
                    return Ok(cur);
                }
            }
        }
        // Default: the accessing tile's VRAM, if this context has room there.
        let already = rec.is_some_and(|r| r.residency == Some(local));
        let placed = dev.placed[tile as usize].load(Ordering::Relaxed);
        if already || placed.saturating_add(size) <= t.capacity {
            return Ok(local);
        }
        match rec.and_then(|r| r.residency).filter(|&p| reachable(p)) {
            Some(cur) => Ok(cur),
            None => Ok(Pagemap::System),
        }
    }

    // -- alloc_vram ----------------------------------------------------------

    /// Makes [start, start+size) resident in `target` for accesses by device
    /// `h` (design.md, "The placement flow"), and reports what happened.
    pub fn alloc_vram(&self, h: DeviceHandle, start: u64, size: u64, target: Pagemap, flags: AllocFlags) -> Result<Placed> {
        let end = check_span(start, size)?;
        self.stats.local().alloc_calls.fetch_add(1, Ordering::Relaxed);
        {
            // Step 1: the cheap check, zero ioctls.
            let slots = self.slots.read();
            let dev = Context::device_in(&slots, h)?;
            dev.check_alive()?;
            if let Some(d) = Context::check_pagemap(&slots, target)? {
                d.check_alive()?;
            }
            if let Check::InPlace(p) = self.in_place(&slots, dev, start, end, target) {
                self.stats.local().in_place.fetch_add(1, Ordering::Relaxed);
                return Ok(p);
            }
        }
        let _g = self.slow.lock();
        let slots = self.slots.read();
        let dev = Context::device_in(&slots, h)?.clone();
        // Another thread may have placed it while we waited (an observation
        // made before the wait would be stale now: this one is fresh).
        let seen = match self.in_place(&slots, &dev, start, end, target) {
            Check::InPlace(p) => {
                self.stats.local().in_place.fetch_add(1, Ordering::Relaxed);
                return Ok(p);
            }
            Check::Moved(seen) => Some(seen),
            Check::Unknown => None,
        };
        let r = self.place(&slots, &dev, start, end, target, flags, seen);
        if let Ok(p) = &r {
            self.stats.local().bytes_moved.fetch_add(p.bytes_moved, Ordering::Relaxed);
            self.stats.local().retries.fetch_add(p.retries as u64, Ordering::Relaxed);
            if p.bytes_moved > 0 {
                self.stats.local().migrations.fetch_add(1, Ordering::Relaxed);
            }
            if p.fell_back {
                self.stats.local().fallbacks.fetch_add(1, Ordering::Relaxed);
            }
            if p.pinned {
                self.stats.local().pins.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    /// Step 1: the record says the range is in `target`, the accessing
    /// device's VM will leave it there, and that still holds (believed,
    /// fresh, settled, or confirmed by the page table).
    fn in_place(&self, slots: &[Slot], dev: &Device, start: u64, end: u64, target: Pagemap) -> Check {
        let track = self.track.read();
        let Some(rec) = track.exact(start, end) else { return Check::Unknown };
        if rec.residency != Some(target) || !faults_keep(dev, rec.attrs(dev.slot).pref, target) {
            return Check::Unknown;
        }
        let now = self.driver.now_ns();
        let verified = match self.confirm(slots, rec, start, end, target, now) {
            Ok(v) => v,
            Err(seen) => return Check::Moved(seen),
        };
        rec.use_once();
        // LRU stamp: rewritten only when stale, so that threads finding the
        // same range in place do not bounce its cache line.
        if now.saturating_sub(rec.last_used.load(Ordering::Relaxed)) > LRU_GRANULE_NS {
            rec.last_used.store(now, Ordering::Relaxed);
        }
        Check::InPlace(Placed { pagemap: Some(target), in_place: true, verified, ..Default::default() })
    }

    /// The slow path of alloc_vram: thrash guard, then candidates in order
    /// (target, local VRAM, system) until one works.
    #[allow(clippy::too_many_arguments)]
    fn place(&self, slots: &[Slot], dev: &Arc<Device>, start: u64, end: u64, target: Pagemap, flags: AllocFlags, seen: Option<Seen>) -> Result<Placed> {
        let now = self.driver.now_ns();
        let mut summary = self.summary(start, end);
        let mut placed = Placed::default();
        // What the page table shows (observed now, unless step 1 just did).
        // A range not where the record says was moved by someone else: the
        // CPU pulled it back, or another device's GPU fault took it. That
        // move counts in its history (so CPU-GPU ping-pong meets the thrash
        // guard too), and the current place is what was seen.
        // Only ranges the engine placed are looked at, and only where the
        // answer can change the decision: a range believed in the target
        // (is it still?), or any, for a reader that can name devices. A
        // range believed elsewhere is moved either way; the read after the
        // prefetch verifies it.
        let worth = summary.residency.is_some_and(|r| r == target || self.access.names_devices());
        let seen = seen.or_else(|| if worth { self.observe(start, end) } else { None });
        if let Some(seen) = &seen {
            let actual = self.place_of(slots, seen, summary.residency);
            if summary.residency.is_some() && actual != summary.residency {
                summary.record_move(now);
            }
            summary.residency = actual;
        }

        // Step 5 (checked first): the thrash guard.
        if !flags.ignore_thrash_guard {
            if let Some(cur) = summary.residency.filter(|&c| c != target) {
                if now < summary.pinned_until || summary.thrashing(now, self.config.thrash_window_ns, self.config.thrash_max_moves) {
                    let until = summary.pinned_until.max(now + self.config.pin_ns);
                    // Map it remotely from the accessing device where the link allows.
                    let remote = match cur {
                        Pagemap::System => Some(PrefApplied::DefaultSystem),
                        Pagemap::Vram { device, .. } if device == dev.slot => None,
                        Pagemap::Vram { device, tile } if self.links.read().get(dev.slot, device).usable() => {
                            let inst = Context::check_pagemap(slots, cur)?.and_then(|d| d.tiles[tile as usize]).map(|t| t.instance);
                            inst.filter(|_| dev.multi_device_ok()).map(|instance| PrefApplied::Device { slot: device, instance })
                        }
                        _ => None,
                    };
                    let mut attrs = None;
                    if let Some(p) = remote {
                        if summary.attrs(dev.slot).pref != p {
                            let mut a = summary.attrs(dev.slot);
                            a.pref = p;
                            if self.madvise_pref(slots, dev, start, end, p, &mut placed).is_ok() {
                                attrs = Some(a);
                            }
                        }
                    }
                    self.track.write().replace(start, end, |pieces| {
                        let mut r = merge_pieces(pieces);
                        r.moves = summary.moves.clone();
                        r.residency = Some(cur);
                        r.pinned_until = until;
                        if let Some(a) = attrs {
                            r.set_attrs(dev.slot, a);
                        }
                        r
                    });
                    placed.pagemap = Some(cur);
                    placed.pinned = true;
                    return Ok(placed);
                }
            }
        }

        // The runtime follows resolve's advice to leave a thrashing range
        // where it is (served remotely): that is a pin too, so that the uses
        // it now gets there do not end it before its time.
        if !flags.ignore_thrash_guard
            && summary.residency == Some(target)
            && target.device() != Some(dev.slot)
            && summary.thrashing(now, self.config.thrash_window_ns, self.config.thrash_max_moves)
        {
            summary.pinned_until = summary.pinned_until.max(now + self.config.pin_ns);
            placed.pinned = true;
        }
        let mut candidates = vec![target];
        if !flags.no_fallback {
            if let Pagemap::Vram { device, .. } = target {
                if device != dev.slot {
                    if let Some(tile) = dev.tiles.iter().position(|t| t.is_some()) {
                        candidates.push(Pagemap::Vram { device: dev.slot, tile: tile as u16 });
                    }
                }
            }
            if target != Pagemap::System {
                candidates.push(Pagemap::System);
            }
        }
        let mut last = Errno::EIO;
        for (i, &cand) in candidates.iter().enumerate() {
            match self.try_candidate(slots, dev, start, end, cand, &summary, seen.as_ref(), &mut placed) {
                Ok(()) => {
                    if i > 0 {
                        placed.fell_back = true;
                        placed.cause = Some(last);
                    }
                    placed.pagemap = Some(cand);
                    return Ok(placed);
                }
                Err(Miss::Fatal(e)) => return Err(e),
                Err(Miss::Fallback(e)) => last = e,
            }
        }
        Err(last)
    }

    /// What is known of [start, end), merged over the records covering it.
    fn summary(&self, start: u64, end: u64) -> Record {
        let track = self.track.read();
        let pieces: Vec<Record> = track.overlapping(start, end).map(|(_, r)| r.clone()).collect();
        let covered = track.covers(start, end);
        let mut s = merge_pieces(pieces);
        if !covered {
            s.residency = None;
        }
        s
    }

    /// Attributes + prefetch + verification for one candidate (steps 2-4).
    #[allow(clippy::too_many_arguments)]
    fn try_candidate(&self, slots: &[Slot], dev: &Arc<Device>, start: u64, end: u64, cand: Pagemap, summary: &Record, seen: Option<&Seen>, placed: &mut Placed) -> std::result::Result<(), Miss> {
        // Step 2: the same preferred location on every device VM, skipping
        // madvise calls whose effect is recorded. What was applied is recorded
        // however the attempt ends, so the record never disagrees with the kernel.
        let mut applied = Vec::new();
        let outcome = self
            .apply_preferred(slots, Some(dev.slot), start, end, cand, summary, placed, &mut applied)
            .and_then(|()| self.migrate_verified(slots, dev, start, end, cand, summary, seen, placed));
        let moved = match outcome {
            Ok(moved) => moved,
            Err(m) => {
                self.record(start, end, &applied, |_| {});
                return Err(m);
            }
        };
        if moved {
            placed.bytes_moved += end - start;
        }
        // Record what is true now.
        let now = self.driver.now_ns();
        let observed_at = if placed.verified { now.max(1) } else { 0 };
        self.record(start, end, &applied, |r| {
            r.residency = Some(cand);
            r.observed_at.store(observed_at, Ordering::Relaxed);
            r.last_used.store(now, Ordering::Relaxed);
            r.moves = summary.moves.clone();
            r.pinned_until = r.pinned_until.max(summary.pinned_until);
            *r.uses.get_mut() = summary.uses.load(Ordering::Relaxed);
            if moved {
                r.record_move(now);
            }
            // The launch this placement is for uses it here.
            r.use_once();
        });
        self.account(slots, summary.residency, Some(cand), end - start);
        Ok(())
    }

    /// Steps 3 and 4: PREFETCH with user fence, each errno's answer, and the
    /// check that the range really is there. Returns whether data moved.
    #[allow(clippy::too_many_arguments)]
    fn migrate_verified(&self, slots: &[Slot], dev: &Arc<Device>, start: u64, end: u64, cand: Pagemap, summary: &Record, seen: Option<&Seen>, placed: &mut Placed) -> std::result::Result<bool, Miss> {
        let size = end - start;
        let (region, via) = match cand {
            Pagemap::System => (0, dev.clone()),
            Pagemap::Vram { device, tile } => {
                let owner = Context::check_pagemap(slots, cand)?.expect("VRAM pagemap").clone();
                owner.check_alive().map_err(Miss::Fallback)?;
                let inst = owner.tiles[tile as usize].unwrap().instance;
                if device == dev.slot {
                    (inst as u32, dev.clone())
                } else {
                    // A peer: prefetch from the accessing VM, consulting the
                    // preferred location just set (IGT xe_multigpu_svm).
                    (DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC, dev.clone())
                }
            }
        };
        let (mut busy_retried, mut room_retried) = (false, false);
        // The page table shows it already there (system memory, or the
        // pagemap the record believes or a privileged reader names): no
        // prefetch to issue.
        // (For system memory the page table alone answers; look now if step
        // 1 did not: one read is cheaper than a prefetch that can fail.)
        let looked = match (seen, cand) {
            (None, Pagemap::System) => self.observe(start, end),
            (s, _) => s.copied(),
        };
        let already = looked.is_some_and(|s| {
            self.agrees(slots, &s, cand) && (cand == Pagemap::System || self.access.names_devices() || summary.residency == Some(cand))
        });
        loop {
            if already {
                placed.verified = true;
                break;
            }
            match self.prefetch(&via, start, size, region, placed) {
                Ok(()) => {}
                Err(Errno::EBUSY) if !busy_retried => {
                    // The kernel thread's rule: evict to system, retry once.
                    busy_retried = true;
                    placed.retries += 1;
                    self.stats.count_errno(Errno::EBUSY);
                    let _ = self.prefetch(&via, start, size, 0, placed);
                    continue;
                }
                Err(e @ (Errno::ENOMEM | Errno::ENOSPC)) if !room_retried && cand != Pagemap::System => {
                    room_retried = true;
                    placed.retries += 1;
                    self.stats.count_errno(e);
                    self.make_room(slots, cand, start, end, placed);
                    continue;
                }
                Err(e @ (Errno::EBUSY | Errno::ENOMEM | Errno::ENOSPC)) => {
                    self.stats.count_errno(e);
                    return Err(Miss::Fallback(e));
                }
                Err(Errno::ENOLINK) => {
                    self.stats.count_errno(Errno::ENOLINK);
                    if let Some(d) = cand.device() {
                        self.links.write().set(dev.slot, d, LinkState::Absent);
                    }
                    return Err(Miss::Fallback(Errno::ENOLINK));
                }
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    self.stats.count_errno(e);
                    via.mark_dead(e);
                    return Err(Miss::Fatal(e));
                }
                Err(e) => {
                    self.stats.count_errno(e);
                    return Err(Miss::Fatal(e));
                }
            }
            // Step 4: a prefetch that reported success but left the range
            // elsewhere (kernel-model §7) counts as EBUSY, where observable.
            if let Some(after) = self.observe(start, end) {
                if !self.agrees(slots, &after, cand) {
                    self.stats.local().unverified.fetch_add(1, Ordering::Relaxed);
                    if !busy_retried {
                        busy_retried = true;
                        placed.retries += 1;
                        let _ = self.prefetch(&via, start, size, 0, placed);
                        continue;
                    }
                    return Err(Miss::Fallback(Errno::EBUSY));
                }
                placed.verified = true;
            }
            break;
        }
        Ok(!already && summary.residency != Some(cand))
    }

    /// Keeps each device's bytes-placed counter (used by resolve) in step.
    fn account(&self, slots: &[Slot], old: Option<Pagemap>, new: Option<Pagemap>, size: u64) {
        if old == new {
            return;
        }
        let counter = |pm: Option<Pagemap>| match pm {
            Some(Pagemap::Vram { device, tile }) => {
                slots.get(device as usize).and_then(|s| s.dev.as_ref()).map(|d| &d.placed[tile as usize])
            }
            _ => None,
        };
        if let Some(c) = counter(old) {
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(size)));
        }
        if let Some(c) = counter(new) {
            c.fetch_add(size, Ordering::Relaxed);
        }
    }

    /// The preferred location each device VM should have for `cand`: the
    /// pagemap by fd + instance where the kernel supports multi-device madvise
    /// and the device can reach it; DEFAULT_DEVICE on the owner where it does
    /// not (6.18); DEFAULT_SYSTEM everywhere for system memory. When `cand`
    /// is the accessing device's own VRAM (the kernel's default placement,
    /// kernel-model §3.1), every other VM gets the kernel's default,
    /// DEFAULT_DEVICE, too: one value on every VM, and no madvise (with its
    /// PTE zap and TLB invalidation) each time the accessing device changes.
    fn desired_pref(&self, slots: &[Slot], on: &Device, cand: Pagemap, accessing: Option<u16>) -> Option<PrefApplied> {
        match cand {
            Pagemap::System => Some(PrefApplied::DefaultSystem),
            Pagemap::Vram { device, .. } if accessing == Some(device) && on.slot != device => Some(PrefApplied::DefaultDevice),
            Pagemap::Vram { device, tile } => {
                let owner = Context::check_pagemap(slots, cand).ok()??;
                let instance = owner.tiles[tile as usize]?.instance;
                if on.slot == device {
                    // Own VRAM: DEFAULT_DEVICE says "the faulting tile", which is
                    // the target on single-tile devices and on 6.18.
                    if on.tiles.len() == 1 || !on.multi_device_ok() {
                        Some(PrefApplied::DefaultDevice)
                    } else {
                        Some(PrefApplied::Device { slot: device, instance })
                    }
                } else if on.multi_device_ok() && self.links.read().get(on.slot, device).usable() {
                    Some(PrefApplied::Device { slot: device, instance })
                } else {
                    None // cannot be expressed on this VM: leave it alone
                }
            }
        }
    }

    /// Step 2 for every open device; returns what was applied (for the record).
    #[allow(clippy::too_many_arguments)]
    fn apply_preferred(
        &self,
        slots: &[Slot],
        accessing_slot: Option<u16>,
        start: u64,
        end: u64,
        cand: Pagemap,
        summary: &Record,
        placed: &mut Placed,
        applied: &mut Vec<(u16, DevAttrs)>,
    ) -> std::result::Result<(), Miss> {
        // A preferred location the runtime set stays on every VM: the
        // default-placement rule of desired_pref applies only without one.
        let default_for = accessing_slot.filter(|_| summary.preferred.is_none());
        for d in slots.iter().filter_map(|s| s.dev.as_ref()) {
            if d.check_alive().is_err() {
                continue;
            }
            // Only the accessing device's failures make the candidate fall back.
            let accessing = accessing_slot == Some(d.slot);
            let Some(want) = self.desired_pref(slots, d, cand, default_for) else {
                if accessing {
                    // The accessing device cannot reach the peer pagemap: no
                    // link (ENOLINK), or no multi-device madvise (6.18).
                    let no_link = cand.device().is_some_and(|t| !self.links.read().get(d.slot, t).usable());
                    return Err(Miss::Fallback(if no_link { Errno::ENOLINK } else { Errno::EOPNOTSUPP }));
                }
                continue;
            };
            let mut a = summary.attrs(d.slot);
            if a.pref == want {
                continue; // recorded: the madvise would zap PTEs for nothing
            }
            match self.madvise_pref(slots, d, start, end, want, placed) {
                Ok(()) => {
                    a.pref = want;
                    applied.push((d.slot, a));
                }
                Err(Errno::ENOLINK) => {
                    if let Some(t) = cand.device() {
                        self.links.write().set(d.slot, t, LinkState::Absent);
                    }
                    self.stats.count_errno(Errno::ENOLINK);
                    if accessing {
                        return Err(Miss::Fallback(Errno::ENOLINK));
                    }
                }
                Err(Errno::EINVAL) if matches!(want, PrefApplied::Device { .. }) && d.multi_device_unknown() => {
                    // region_instance is pad on 6.18: this kernel has no multi-device madvise.
                    d.set_multi_device(false);
                    if let Some(w) = self.desired_pref(slots, d, cand, default_for) {
                        if self.madvise_pref(slots, d, start, end, w, placed).is_ok() {
                            a.pref = w;
                            applied.push((d.slot, a));
                        }
                    } else if accessing {
                        return Err(Miss::Fallback(Errno::EOPNOTSUPP));
                    }
                }
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    d.mark_dead(e);
                    self.stats.count_errno(e);
                    if accessing {
                        return Err(Miss::Fatal(e));
                    }
                    if cand.device() == Some(d.slot) {
                        return Err(Miss::Fallback(e));
                    }
                }
                Err(e) => {
                    self.stats.count_errno(e);
                    return Err(Miss::Fatal(e));
                }
            }
        }
        Ok(())
    }

    fn madvise_pref(&self, slots: &[Slot], on: &Device, start: u64, end: u64, p: PrefApplied, placed: &mut Placed) -> Result<()> {
        let fd_of = |slot: u16| slots.get(slot as usize).and_then(|s| s.dev.as_ref()).map_or(-1, |d| d.fd);
        let loc = p.to_uapi(fd_of);
        let r = self.restarting(placed, || xe::madvise_preferred_loc(&*self.driver, on.fd, on.vm_id, start, end - start, loc));
        self.stats.local().madvise.fetch_add(1, Ordering::Relaxed);
        if r.is_ok() && matches!(p, PrefApplied::Device { .. }) {
            on.set_multi_device(true);
        }
        r
    }

    fn prefetch(&self, on: &Device, start: u64, size: u64, region: u32, placed: &mut Placed) -> Result<()> {
        self.stats.local().prefetch.fetch_add(1, Ordering::Relaxed);
        self.restarting(placed, || xe::prefetch(&*self.driver, on.fd, on.vm_id, start, size, region))
    }

    /// Runs an ioctl, restarting on EINTR/EAGAIN (bounded), counting it.
    fn restarting(&self, placed: &mut Placed, mut f: impl FnMut() -> Result<()>) -> Result<()> {
        let mut n = 0;
        loop {
            placed.ioctls += 1;
            self.stats.local().ioctls.fetch_add(1, Ordering::Relaxed);
            match f() {
                Err(e @ (Errno::EINTR | Errno::EAGAIN)) if n < MAX_RESTARTS => {
                    n += 1;
                    placed.retries += 1;
                    self.stats.count_errno(e);
                }
                r => return r,
            }
        }
    }

    /// ENOMEM/ENOSPC: evicts this context's least recently used ranges on
    /// `pm` (not overlapping the one being placed) until `size` bytes are free.
    fn make_room(&self, slots: &[Slot], pm: Pagemap, start: u64, end: u64, placed: &mut Placed) {
        let Some(owner) = Context::check_pagemap(slots, pm).ok().flatten().cloned() else { return };
        let victims = self.track.read().lru_on(pm);
        let mut freed = 0;
        for (s, e) in victims {
            if freed >= end - start {
                break;
            }
            if s < end && start < e {
                continue;
            }
            if self.prefetch(&owner, s, e - s, 0, placed).is_ok() {
                freed += e - s;
                self.stats.local().lru_evictions.fetch_add(1, Ordering::Relaxed);
                self.track.write().replace(s, e, |pieces| {
                    let mut r = merge_pieces(pieces);
                    r.residency = Some(Pagemap::System);
                    r.observed_at.store(0, Ordering::Relaxed);
                    r
                });
                self.account(slots, Some(pm), Some(Pagemap::System), e - s);
            }
        }
    }

    // -- evict, attributes, queries ------------------------------------------

    /// Sends [start, start+size) back to system memory on every device that
    /// holds any of it. Returns the bytes that moved (as far as known).
    pub fn evict(&self, start: u64, size: u64) -> Result<Placed> {
        let end = check_span(start, size)?;
        self.stats.local().evict_calls.fetch_add(1, Ordering::Relaxed);
        let _g = self.slow.lock();
        let slots = self.slots.read();
        let mut placed = Placed::default();
        let alive: Vec<Arc<Device>> = slots.iter().filter_map(|s| s.dev.clone()).filter(|d| d.check_alive().is_ok()).collect();
        let summary = self.summary(start, end);
        // Who holds it: the page table says whether anyone does (and who, to
        // a privileged reader); else the record; else every device.
        let before = self.observe(start, end);
        let named = before.and_then(|s| Context::named_pagemap(&slots, &s));
        let holders: Vec<Arc<Device>> = match (before, named, summary.residency) {
            (Some(s), _, _) if s.in_system() => Vec::new(),
            (_, Some(Pagemap::Vram { device, .. }), _) => alive.iter().filter(|d| d.slot == device).cloned().collect(),
            (None, _, Some(Pagemap::System)) => Vec::new(),
            (_, _, Some(Pagemap::Vram { device, .. })) => alive.iter().filter(|d| d.slot == device).cloned().collect(),
            _ => alive.clone(),
        };
        for d in &holders {
            match self.prefetch(d, start, size, 0, &mut placed) {
                Ok(()) => {}
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => d.mark_dead(e),
                Err(e) => {
                    self.stats.count_errno(e);
                    return Err(e);
                }
            }
        }
        if !holders.is_empty() {
            placed.bytes_moved = size;
            self.stats.local().evictions.fetch_add(1, Ordering::Relaxed);
        }
        if before.is_some() {
            let in_system = |c: &Context| c.observe(start, end).is_some_and(|s| s.in_system());
            placed.verified = holders.is_empty() || in_system(self);
            if !placed.verified {
                // Swallowed failure, or a GPU fault raced us: once more, from every device.
                placed.retries += 1;
                self.stats.count_errno(Errno::EBUSY);
                for d in &alive {
                    let _ = self.prefetch(d, start, size, 0, &mut placed);
                }
                placed.verified = in_system(self);
            }
            if !placed.verified {
                // It will not stay: concurrent GPU accesses keep pulling it back.
                return Err(Errno::EBUSY);
            }
        }
        let now = self.driver.now_ns();
        let moved = !holders.is_empty();
        let observed_at = if placed.verified { now.max(1) } else { 0 };
        self.track.write().replace(start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            r.residency = Some(Pagemap::System);
            r.observed_at.store(observed_at, Ordering::Relaxed);
            if moved {
                r.record_move(now);
            }
            r
        });
        self.account(&slots, summary.residency, Some(Pagemap::System), size);
        placed.pagemap = Some(Pagemap::System);
        Ok(placed)
    }

    /// Sets the preferred location of a range on every device VM (the
    /// kernel's attributes are per VM; conflicting values are undefined, so
    /// the library keeps them equal). Devices that cannot reach the pagemap
    /// keep theirs; the range query shows each VM's value.
    pub fn set_preferred(&self, start: u64, size: u64, pm: Pagemap) -> Result<()> {
        let end = check_span(start, size)?;
        let _g = self.slow.lock();
        let slots = self.slots.read();
        Context::check_pagemap(&slots, pm)?;
        let summary = self.summary(start, end);
        let mut placed = Placed::default();
        let mut applied = Vec::new();
        // Step 2 of alloc_vram, with no accessing device.
        let result = self.apply_preferred(&slots, None, start, end, pm, &summary, &mut placed, &mut applied).map_err(|m| match m {
            Miss::Fallback(e) | Miss::Fatal(e) => e,
        });
        let ok = result.is_ok();
        self.record(start, end, &applied, |r| {
            if ok {
                r.preferred = Some(pm);
            }
        });
        result
    }

    /// Sets the atomic mode (DRM_XE_ATOMIC_*) of a range on every device VM.
    pub fn set_atomic(&self, start: u64, size: u64, mode: u32) -> Result<()> {
        let end = check_span(start, size)?;
        if mode > DRM_XE_ATOMIC_CPU {
            return Err(Errno::EINVAL);
        }
        let _g = self.slow.lock();
        let slots = self.slots.read();
        let summary = self.summary(start, end);
        let mut applied = Vec::new();
        let mut placed = Placed::default();
        for d in slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.check_alive().is_ok()) {
            let mut a = summary.attrs(d.slot);
            if a.atomic == mode {
                continue;
            }
            self.stats.local().madvise.fetch_add(1, Ordering::Relaxed);
            match self.restarting(&mut placed, || xe::madvise_atomic(&*self.driver, d.fd, d.vm_id, start, size, mode)) {
                Ok(()) => {
                    a.atomic = mode;
                    applied.push((d.slot, a));
                }
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => d.mark_dead(e),
                Err(e) => {
                    // What was applied before the failure stays recorded.
                    self.record(start, end, &applied, |_| {});
                    return Err(e);
                }
            }
        }
        self.record(start, end, &applied, |_| {});
        Ok(())
    }

    /// Records over [start, end) the attributes applied to each VM, then
    /// whatever else `more` sets.
    fn record(&self, start: u64, end: u64, applied: &[(u16, DevAttrs)], more: impl FnOnce(&mut Record)) {
        self.track.write().replace(start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            for (slot, a) in applied {
                r.set_attrs(*slot, *a);
            }
            more(&mut r);
            r
        });
    }

    /// Forgets where [start, start+size) is (the runtime knows the CPU or a
    /// free touched it); attributes stay recorded, as the kernel keeps them.
    pub fn invalidate(&self, start: u64, size: u64) -> Result<()> {
        let end = check_span(start, size)?;
        let _g = self.slow.lock();
        let slots = self.slots.read();
        let summary = self.summary(start, end);
        self.track.write().replace(start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            r.residency = None;
            r.observed_at.store(0, Ordering::Relaxed);
            r
        });
        self.account(&slots, summary.residency, None, size);
        Ok(())
    }

    /// Attributes on every device VM (asked of the kernel) and what the
    /// library knows of the range's residency.
    pub fn query(&self, start: u64, size: u64) -> Result<RangeInfo> {
        let end = check_span(start, size)?;
        let _g = self.slow.lock();
        let slots = self.slots.read();
        let summary = self.summary(start, end);
        let mut devices = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let Some(d) = &s.dev else { continue };
            if d.check_alive().is_err() {
                continue;
            }
            // Restarted on EINTR/EAGAIN like every other ioctl the library issues.
            let mut restarts = 0;
            let attrs = loop {
                self.stats.local().ioctls.fetch_add(2, Ordering::Relaxed);
                match xe::query_mem_range_attrs(&*self.driver, d.fd, d.vm_id, start, size) {
                    Err(e @ (Errno::EINTR | Errno::EAGAIN)) if restarts < MAX_RESTARTS => {
                        restarts += 1;
                        self.stats.count_errno(e);
                    }
                    Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                        d.mark_dead(e);
                        break None;
                    }
                    r => break Some(r?),
                }
            };
            let Some(attrs) = attrs else { continue };
            let first = attrs.first();
            devices.push(DeviceAttrs {
                device: DeviceHandle { slot: i as u16, gen: s.gen },
                preferred_fd: first.map_or(0, |a| a.preferred_mem_loc.devmem_fd as i32),
                atomic: first.map_or(0, |a| a.atomic.val),
                vmas: attrs.len() as u32,
            });
        }
        let now = self.driver.now_ns();
        let observed = self.observe(start, end);
        let observed_pagemap = observed.filter(Seen::all_away).and_then(|o| Context::named_pagemap(&slots, &o));
        Ok(RangeInfo {
            residency: summary.residency,
            observed,
            observed_pagemap,
            preferred: summary.preferred,
            moves_in_window: summary.moves_within(now, self.config.thrash_window_ns) as u32,
            pinned: now < summary.pinned_until,
            devices,
        })
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

/// Whether a device's GPU faults leave a range in `target` under the
/// preferred location recorded for its VM (kernel-model §3.1; §14 rows 4,
/// 10, 12): its own VRAM under DEFAULT_DEVICE or named, a peer's only when
/// named, system memory under DEFAULT_SYSTEM (or on a device without VRAM).
/// Otherwise its next fault would migrate the range (rows 3, 5, 13), so the
/// placement is not done even where the pages are.
fn faults_keep(dev: &Device, pref: PrefApplied, target: Pagemap) -> bool {
    match (target, pref) {
        (Pagemap::System, PrefApplied::DefaultSystem) => true,
        (Pagemap::System, PrefApplied::DefaultDevice) => !dev.has_vram(),
        (Pagemap::Vram { device, .. }, PrefApplied::DefaultDevice) => device == dev.slot,
        (Pagemap::Vram { device, .. }, PrefApplied::Device { slot, .. }) => slot == device,
        _ => false,
    }
}

/// One record from the pieces that covered a span: residency only if all
/// agree, attributes per device only if all agree (else unknown, which makes
/// the next call re-apply them), the longest history and latest pin.
fn merge_pieces(pieces: Vec<Record>) -> Record {
    let mut it = pieces.into_iter();
    let Some(mut r) = it.next() else { return Record::new(0) };
    for p in it {
        if p.residency != r.residency {
            r.residency = None;
        }
        if p.preferred != r.preferred {
            r.preferred = None;
        }
        let n = r.attrs.len().max(p.attrs.len());
        for slot in 0..n as u16 {
            if r.attrs(slot) != p.attrs(slot) {
                // Unknown: an impossible value forces the next madvise.
                r.set_attrs(slot, DevAttrs { pref: PrefApplied::Device { slot: u16::MAX, instance: 0 }, atomic: u32::MAX });
            }
        }
        if p.moves.len() > r.moves.len() {
            r.moves = p.moves;
        }
        let uses = p.uses.load(Ordering::Relaxed).max(r.uses.load(Ordering::Relaxed));
        r.uses = std::sync::atomic::AtomicU32::new(uses);
        r.pinned_until = r.pinned_until.max(p.pinned_until);
        let lu = p.last_used.load(Ordering::Relaxed).max(r.last_used.load(Ordering::Relaxed));
        r.last_used = AtomicU64::new(lu);
        // Confirmed as a whole only as of the oldest piece's confirmation.
        let at = p.observed_at.load(Ordering::Relaxed).min(r.observed_at.load(Ordering::Relaxed));
        r.observed_at = AtomicU64::new(at);
    }
    r
}
