//! The kernel's prefetch path (docs/kernel-model.md §7): VM_BIND PREFETCH
//! ops walked range by range (`prefetch_ranges`), stopping at the first
//! range that fails, and the binds they leave to execute.

use std::os::fd::RawFd;

use super::mem::PAGE;
use super::{Guard, Sim};
use crate::errno::{Errno, Result};

impl Sim {
    // -- prefetch -----------------------------------------------------------

    /// VM_BIND PREFETCH over a CPU-mirror span (docs/kernel-model.md §7),
    /// the part `prefetch_ranges` does: each range migrated and its pages
    /// collected; the ranges to bind are pushed to `binds` (the ioctl binds
    /// them at execution, or voids them all). `target` None = system.
    /// A range's failure becomes -ENODATA: counted, and returned as
    /// Ok(true) (swallowed). `prefetch_ranges` returns at the first failing
    /// range, and `vm_bind_ioctl_ops_prefetch_ranges` at the first failing
    /// op: once `stopped` is set, the rest of the span and every later
    /// PREFETCH op of the ioctl only get their ranges created
    /// (`vm_bind_ioctl_ops_create` made them all before any migration),
    /// and nothing of theirs is migrated or collected.
    #[allow(clippy::too_many_arguments)] // the ioctl's own fields: file, VM, device, span, region
    pub(super) fn prefetch(&self, g: &mut Guard, fd: RawFd, vm_id: u32, dev: u32, start: u64, end: u64, target: Option<u16>, binds: &mut Vec<u64>, stopped: &mut bool) -> Result<bool> {
        let mut swallowed = false;
        let all_tiles = (1u8 << self.topo.devices[dev as usize].tiles) - 1;
        let mut a = start;
        while a < end {
            // vm_bind_ioctl_ops_create's ctx has no check_pages_threshold.
            let (rs, re) = match self.find_or_insert(g, fd, vm_id, dev, a, false) {
                Ok(s) => s,
                Err(Errno::ENOENT) => {
                    a = g.mem.cpu_vma(a).1.min(end); // skip the CPU hole
                    continue;
                }
                Err(e) => return Err(e),
            };
            if *stopped {
                a = re.max(a + PAGE);
                continue;
            }
            let r = g.files[&fd].vms[&vm_id].ranges[&rs].clone();
            // xe_svm_range_validate: bound on every tile and where the
            // prefetch asks (system: no device pages, `!dpagemap`), the range
            // is left out of the op, and prefetch_ranges never walks it.
            if r.bound == all_tiles && r.dpagemap == target {
                a = re.max(a + PAGE);
                continue;
            }
            self.count(&self.counters.prefetch_ranges, 1);
            let ok = match target {
                None => {
                    if g.mem.census(rs, re, None).other_device > 0 {
                        self.evict_range(g, rs, re);
                    }
                    self.get_pages(g, fd, vm_id, rs, re, None, false)
                }
                Some(p) => {
                    let migrated = if self.range_migratable(g, dev, rs) && self.size_rule(dev, re - rs) && r.dpagemap != Some(p) {
                        self.alloc_vram(g, rs, re, p, 0)
                    } else {
                        Ok(())
                    };
                    match migrated {
                        // Any migration failure becomes -ENODATA (docs/kernel-model.md §7).
                        Err(_) => Err(Errno::ENODATA),
                        Ok(()) => self.get_pages(g, fd, vm_id, rs, re, Some(self.owner_of_pagemap(p)), false),
                    }
                }
            };
            match ok {
                Ok(()) => binds.push(rs),
                Err(Errno::ENODATA | Errno::EOPNOTSUPP | Errno::EFAULT | Errno::EPERM) => {
                    // -ENODATA: "retry from userspace"; the ioctl still
                    // succeeds. prefetch_ranges returns here: no later
                    // range of this op, nor of a later op, is migrated.
                    self.count(&self.counters.prefetch_swallowed, 1);
                    swallowed = true;
                    *stopped = true;
                }
                Err(e) => return Err(e),
            }
            a = re.max(a + PAGE);
        }
        Ok(swallowed)
    }

    /// The execution step of a bind array's prefetches: binds every range
    /// collected, unless one failed (ENODATA), which voids the page-table
    /// work of the whole ioctl (`xe_vm_bind_ioctl` skips
    /// `vm_bind_ioctl_ops_execute`, docs/kernel-model.md §7): ranges already
    /// migrated stay where they went, unbound.
    pub(super) fn execute_prefetch_binds(&self, g: &mut Guard, fd: RawFd, vm_id: u32, dev: u32, binds: &[u64], voided: bool) {
        if voided {
            return;
        }
        let all_tiles = (1u8 << self.topo.devices[dev as usize].tiles) - 1;
        for &rs in binds {
            // A range of this array an earlier op destroyed is gone.
            if g.files[&fd].vms[&vm_id].ranges.contains_key(&rs) {
                self.bind(g, fd, vm_id, rs, all_tiles);
            }
        }
    }
}
