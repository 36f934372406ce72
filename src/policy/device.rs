//! An open device as the policy sees it: its fd and SVM VM, what DEVICE_QUERY
//! said (tiles and their VRAM), whether it is alive, and whether its kernel
//! takes multi-device madvise.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};

use crate::driver::query::DeviceInfo;
use crate::driver::{xe, DeviceId, Driver};
use crate::errno::{Errno, Result};

/// Devices a context can hold at once.
pub const MAX_DEVICES: usize = 64;

/// A device of a context: its slot, and the slot's generation when it was
/// opened (a closed device's handle no longer matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceHandle {
    /// Its slot in the context.
    pub slot: u16,
    /// The slot's generation (a closed slot's handles go stale).
    pub gen: u16,
}

/// A tile's VRAM region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileVram {
    pub instance: u16,
    pub capacity: u64,
}

/// A device's small reads in system memory seen as walks: runs of pieces
/// each starting where the one before ended (a runtime that calls per
/// piece of a buffer a kernel reads whole). A new walk that starts inside
/// one of the last few, reads that buffer again: reuse, which pieces read
/// at random never show. Best effort: racing calls of one device may
/// lose an update, which only delays the rule.
#[derive(Default)]
pub struct Walk {
    cur_start: AtomicU64,
    cur_end: AtomicU64,
    /// The walks before it (start, end), the oldest overwritten first: a
    /// launch walks each of its arguments in turn.
    last: [(AtomicU64, AtomicU64); WALKS],
    next: AtomicU64,
    /// The span resolve told to move for a walk, for alloc_vram to take whole.
    buy_start: AtomicU64,
    buy_end: AtomicU64,
}

/// Walks a device remembers besides the current one.
const WALKS: usize = 8;

impl Walk {
    /// Records a small read of [start, end); returns the earlier walk's
    /// span when this one starts a new walk inside it.
    pub fn read(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        if self.cur_end.load(Ordering::Relaxed) == start && start != 0 {
            self.cur_end.store(end, Ordering::Relaxed);
            return None;
        }
        let (cs, ce) = (self.cur_start.load(Ordering::Relaxed), self.cur_end.load(Ordering::Relaxed));
        let found = self.last.iter().map(|(s, e)| (s.load(Ordering::Relaxed), e.load(Ordering::Relaxed))).chain([(cs, ce)]).find(|&(s, e)| s <= start && start < e);
        if cs < ce && cs != found.map_or(u64::MAX, |f| f.0) {
            let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % WALKS;
            self.last[i].0.store(cs, Ordering::Relaxed);
            self.last[i].1.store(ce, Ordering::Relaxed);
        }
        self.cur_start.store(start, Ordering::Relaxed);
        self.cur_end.store(end, Ordering::Relaxed);
        found
    }

    /// Offers `span` to the next alloc_vram of a piece inside it.
    pub fn offer(&self, start: u64, end: u64) {
        self.buy_start.store(start, Ordering::Relaxed);
        self.buy_end.store(end, Ordering::Relaxed);
    }

    /// The offered span holding [start, end), taken (offered once).
    pub fn take(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let (bs, be) = (self.buy_start.load(Ordering::Relaxed), self.buy_end.load(Ordering::Relaxed));
        if bs <= start && end <= be && bs < be {
            self.buy_end.store(0, Ordering::Relaxed);
            return Some((bs, be));
        }
        None
    }
}

const MULTI_UNKNOWN: u8 = 0;
const MULTI_YES: u8 = 1;
const MULTI_NO: u8 = 2;

/// A device fd as the library holds it from the moment it exists: owned
/// (the library opened it; closed through its driver when the last holder
/// lets go) or borrowed (adopted: the runtime's, never closed here). The
/// driver closes it, not libc: a simulated driver's fds are not the
/// process's.
pub struct DeviceFd {
    raw: RawFd,
    owned: bool,
    driver: Arc<dyn Driver>,
}

impl DeviceFd {
    /// An fd the library opened: it closes it.
    pub(crate) fn owned(raw: RawFd, driver: Arc<dyn Driver>) -> Self {
        DeviceFd { raw, owned: true, driver }
    }

    /// An fd the runtime owns: the library only uses it.
    pub(crate) fn borrowed(raw: RawFd, driver: Arc<dyn Driver>) -> Self {
        DeviceFd { raw, owned: false, driver }
    }

    /// The fd number.
    pub fn raw(&self) -> RawFd {
        self.raw
    }

    /// Whether the library closes it.
    pub fn is_owned(&self) -> bool {
        self.owned
    }
}

impl Drop for DeviceFd {
    fn drop(&mut self) {
        if self.owned {
            self.driver.close(self.raw);
        }
    }
}

/// An open device: its fd, VM(s), tiles and state. Dropping the last
/// reference destroys the VM the library created (not in a forked child,
/// whose VM ids name the parent's VMs) and closes the fd it opened.
pub struct Device {
    /// Its slot.
    pub slot: u16,
    /// The slot's generation.
    pub gen: u16,
    /// The device fd (the number of `file`, for the calls that take it).
    pub fd: RawFd,
    /// The fd itself: owned, or borrowed from the runtime.
    pub file: DeviceFd,
    /// The fork generation the VM was created in (driver::fork).
    process: u32,
    /// The VM placements bind in (tile 0's, where one VM per tile was adopted).
    pub vm_id: u32,
    /// Whether the library created the VM (and destroys it).
    pub owns_vm: bool,
    /// What DEVICE_QUERY said.
    pub info: DeviceInfo,
    /// Per tile (by tile id): its VRAM, None on an integrated GPU.
    pub tiles: Vec<Option<TileVram>>,
    /// The PCI device behind the fd (fstat + sysfs), where it can be told.
    pub id: Option<DeviceId>,
    /// Bytes this context placed in each tile's VRAM.
    pub placed: Vec<AtomicU64>,
    /// Its small reads in system memory, as walks (policy's walk rule).
    pub walk: Walk,
    dead: AtomicI32,
    multi_device: AtomicU8,
    /// The CPU-address mirror was bound with MADVISE_AUTORESET (the library
    /// bound it so, or the runtime that adopted it says so).
    pub autoreset: bool,
    /// One VM per tile, by tile id, where the runtime keeps them so (Intel's
    /// compute runtime does on multi-tile cards) and adopted them as one
    /// device; empty: the one VM `vm_id` serves every tile.
    pub tile_vms: Vec<u32>,
}

impl Device {
    pub(crate) fn new(slot: u16, gen: u16, file: DeviceFd, vm_id: u32, owns_vm: bool, info: DeviceInfo, id: Option<DeviceId>) -> Self {
        let fd = file.raw();
        let ntiles = info.tiles().iter().max().map_or(1, |&t| t as usize + 1);
        let tiles: Vec<Option<TileVram>> = (0..ntiles as u16)
            .map(|t| info.vram_of_tile(t).map(|r| TileVram { instance: r.instance, capacity: r.total_size }))
            .collect();
        let placed = tiles.iter().map(|_| AtomicU64::new(0)).collect();
        Device {
            slot,
            gen,
            fd,
            file,
            walk: Walk::default(),
            process: crate::driver::fork::generation(),
            vm_id,
            owns_vm,
            info,
            tiles,
            id,
            placed,
            dead: AtomicI32::new(0),
            multi_device: AtomicU8::new(MULTI_UNKNOWN),
            autoreset: false,
            tile_vms: Vec::new(),
        }
    }

    /// Every VM of the device: the attributes are per VM, so advice goes to
    /// each (the records keep one value per device).
    pub fn vms(&self) -> &[u32] {
        if self.tile_vms.is_empty() {
            std::slice::from_ref(&self.vm_id)
        } else {
            &self.tile_vms
        }
    }

    /// The VM whose page tables a tile uses.
    pub fn vm_of_tile(&self, tile: u16) -> u32 {
        self.tile_vms.get(tile as usize).copied().unwrap_or(self.vm_id)
    }

    /// Whether the kernel may reset this VM's madvise attributes when memory
    /// the GPU used is unmapped (docs/kernel-model.md §8): the mirror has
    /// MADVISE_AUTORESET, or the kernel resets without it (`unflagged`:
    /// 6.18-rc1/rc2, or a kernel the library cannot place).
    pub fn resets_attrs_on_free(&self, unflagged: bool) -> bool {
        self.autoreset || unflagged
    }

    /// A multi-device madvise (fd + region_instance) worked on this VM.
    pub fn multi_device_known(&self) -> bool {
        self.multi_device.load(Ordering::Relaxed) == MULTI_YES
    }

    /// Whether it has VRAM.
    pub fn has_vram(&self) -> bool {
        self.tiles.iter().any(|t| t.is_some())
    }

    /// Its tiles with VRAM: a prefetch binds a range on each of them
    /// (rule 6, policy/migrate.rs).
    pub fn vram_tiles(&self) -> usize {
        self.tiles.iter().filter(|t| t.is_some()).count()
    }

    /// ENODEV / ECANCELED once the device was found gone or wedged.
    pub fn check_alive(&self) -> Result<()> {
        match self.dead.load(Ordering::Relaxed) {
            0 => Ok(()),
            e => Err(Errno(e)),
        }
    }

    /// Marks it dead with the errno that said so (ENODEV, ECANCELED).
    pub fn mark_dead(&self, e: Errno) {
        if self.dead.compare_exchange(0, e.0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            crate::log!(crate::log::Level::Info, "device {} is gone ({}): every call on it now fails with it", self.slot, e.short());
        }
    }

    /// Multi-device madvise (fd + region_instance) is usable unless this
    /// kernel refused it (6.18).
    pub fn multi_device_ok(&self) -> bool {
        self.multi_device.load(Ordering::Relaxed) != MULTI_NO
    }

    /// Whether multi-device madvise support is still unknown.
    pub fn multi_device_unknown(&self) -> bool {
        self.multi_device.load(Ordering::Relaxed) == MULTI_UNKNOWN
    }

    /// Records whether multi-device madvise works (7.0+).
    pub fn set_multi_device(&self, yes: bool) {
        self.multi_device.store(if yes { MULTI_YES } else { MULTI_NO }, Ordering::Relaxed);
    }

}

impl super::Context {
    /// In a child forked after the context was created: closes the child's
    /// copies of the fds the library opened and nothing else, taking no lock
    /// a parent thread may have held at fork (the slots are read only where
    /// no writer held them). The caller leaks the rest of the context: its
    /// other locks may be held for ever, and its VMs are the parent's.
    pub fn release_in_child(&self) {
        let Some(slots) = self.slots.try_read() else { return };
        for d in slots.iter().filter_map(|s| s.dev.as_deref()).filter(|d| d.file.is_owned()) {
            self.driver.close_in_child(d.fd);
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // In a forked child the VM belongs to the parent's DRM file: only
        // the child's copy of the fd is closed (by `file`, next).
        if self.owns_vm && crate::driver::fork::generation() == self.process {
            let _ = xe::vm_destroy(&*self.file.driver, self.fd, self.vm_id);
        }
    }
}
