//! Adoption: the runtime's own fd and VMs as the way in (docs/integration.md,
//! "Set up once per process"), each checked before it is taken: the fd is
//! xe, the VM exists, and it has a CPU-address mirror.

use std::os::fd::RawFd;

use super::*;

const HELD: &str = "this fd's VM is a device of this context already (adopted, or opened by the library)";

impl Context {
    /// Adopts an fd and a fault-mode VM (with the CPU-address mirror bound)
    /// that the runtime owns: the library borrows both (never closes the fd
    /// or destroys the VM; the runtime keeps them open until it closes the
    /// device here). See [`Context::adopt_checked`].
    pub fn adopt(&self, fd: RawFd, vm_id: u32) -> Result<DeviceHandle> {
        self.adopt_checked(fd, vm_id, false).map_err(|(e, _)| e)
    }

    /// [`Context::adopt`], saying why a VM is refused: the fd must be an Xe
    /// device (DRM_IOCTL_VERSION, before any Xe ioctl), the VM must exist on
    /// it (VM_QUERY_MEM_RANGE_ATTRS answers EINVAL for an unknown VM), and
    /// have a CPU-address mirror binding (`xe::probe_cpu_addr_mirror`: a
    /// NEO VM on anything but Battlemage has none), which also proves fault
    /// mode, since the kernel binds a mirror only there.
    /// `autoreset`: the runtime bound the mirror with MADVISE_AUTORESET.
    pub fn adopt_checked(&self, fd: RawFd, vm_id: u32, autoreset: bool) -> std::result::Result<DeviceHandle, (Errno, &'static str)> {
        self.adopt_tiles_checked(fd, &[vm_id], autoreset)
    }

    /// Adopts a device whose runtime keeps one VM per tile (`vm_ids[t]` for
    /// tile t, every tile of the device: Intel's compute runtime on
    /// multi-tile cards) as one device, each VM checked as in
    /// [`Context::adopt_checked`]. Advice goes to every VM; a placement in a
    /// tile's VRAM prefetches through that tile's VM, in a batch too (one
    /// VM_BIND per VM); system memory, peers and range queries use tile 0's.
    pub fn adopt_tiles_checked(&self, fd: RawFd, vm_ids: &[u32], autoreset: bool) -> std::result::Result<DeviceHandle, (Errno, &'static str)> {
        if fd < 0 {
            return Err((Errno::EBADF, "the fd is negative: not open"));
        }
        if vm_ids.is_empty() || vm_ids.contains(&0) {
            return Err((Errno::EINVAL, "vm_id 0 names no VM"));
        }
        let mut unique = vm_ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != vm_ids.len() {
            return Err((Errno::EINVAL, "one VM named for two tiles"));
        }
        // Before the probe, which would change the held VM's attributes
        // for a while (`attach` asks again, under the lock, last).
        if Context::holds_vm(&self.slots.read(), fd, vm_ids[0], vm_ids) {
            return Err((Errno::EEXIST, HELD));
        }
        for &vm_id in vm_ids {
            self.check_adoptable(fd, vm_id)?;
        }
        let tile_vms = if vm_ids.len() > 1 {
            let tiles = crate::driver::query::query_device(&*self.driver, fd).map_err(|e| (e, "DEVICE_QUERY failed"))?.tiles().len();
            if tiles != vm_ids.len() {
                return Err((Errno::EINVAL, "the VMs named are not one per tile of the device"));
            }
            vm_ids.to_vec()
        } else {
            Vec::new()
        };
        self.attach(DeviceFd::borrowed(fd, self.driver.clone()), Some(vm_ids[0]), autoreset, tile_vms).map_err(|e| match e {
            Errno::EEXIST => (e, HELD),
            e => (e, "the device could not be attached"),
        })
    }

    /// Whether an open device of `slots` holds VM `vm` (or one of
    /// `tile_vms`) through fd `fd` already: a second device over it would
    /// be no device of its own (no link to the first, whose VRAM it
    /// shares), and closing either would stop the other. A dup of the fd
    /// is not seen: an fd's number is all the library compares.
    pub(super) fn holds_vm(slots: &[Slot], fd: RawFd, vm: u32, tile_vms: &[u32]) -> bool {
        let asked = |id: u32| id == vm || tile_vms.contains(&id);
        let held = |d: &Device| d.fd == fd && (asked(d.vm_id) || d.tile_vms.iter().any(|&id| asked(id)));
        slots.iter().filter_map(|s| s.dev.as_deref()).any(held)
    }

    /// One VM the runtime offers: the fd is an Xe device, the VM exists on
    /// it and has a CPU-address mirror (so it is in fault mode).
    fn check_adoptable(&self, fd: RawFd, vm_id: u32) -> std::result::Result<(), (Errno, &'static str)> {
        self.stats.local().ioctls.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        match crate::driver::query::driver_name(&*self.driver, fd) {
            Ok(name) if name == "xe" => {}
            Ok(_) => return Err((Errno::ENOTTY, "the fd is a DRM device of another driver, not xe")),
            Err(Errno::EBADF) => return Err((Errno::EBADF, "the fd is not open")),
            Err(e) => return Err((e, "the fd is not a DRM device (DRM_IOCTL_VERSION failed)")),
        }
        self.stats.local().ioctls.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        let vmas = match xe::query_mem_range_attrs(&*self.driver, fd, vm_id, 0, VA_LIMIT) {
            Ok(v) => v,
            Err(Errno::EINVAL) => return Err((Errno::EINVAL, "no VM with this id on this fd")),
            Err(e) => return Err((e, "VM_QUERY_MEM_RANGE_ATTRS failed: a kernel without SVM madvise (6.18+)")),
        };
        const NO_MIRROR: &str = "the VM has no CPU-address mirror binding: bind MAP | CPU_ADDR_MIRROR over the address space first (in a VM created with LR_MODE | FAULT_MODE)";
        if vmas.is_empty() {
            return Err((Errno::EINVAL, NO_MIRROR));
        }
        match xe::probe_cpu_addr_mirror(&*self.driver, fd, vm_id, &vmas) {
            Ok(true) => Ok(()),
            Ok(false) => Err((Errno::EINVAL, NO_MIRROR)),
            Err(e) => Err((e, "the CPU-address-mirror probe (MADVISE) failed")),
        }
    }
}
