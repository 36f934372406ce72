//! Adopting a device the runtime already owns, from C: its fd and its VM
//! (one, or one per tile), borrowed, never closed. Checks and conversions
//! only; the checks of the fd and the VMs are
//! `crate::policy::Context::adopt_tiles_checked`'s.

use core::ffi::c_int;

use super::context::{context, svm_context, svm_device};
use super::{guard, invalid, out, Failure};

/// Adopts a device fd and a VM the runtime already owns. The library
/// borrows both: it never closes the fd or destroys the VM, and the runtime
/// keeps them open until it closes the device here (svm_device_close).
/// The fd and the VM are checked first, in this order:
/// - -ENOTTY "not xe" (DRM_IOCTL_VERSION names another driver), or the
///   errno of that ioctl for an fd that is no DRM device (-EBADF: not open),
///   before any Xe ioctl;
/// - -EINVAL "no VM with this id on this fd" (VM_QUERY_MEM_RANGE_ATTRS);
/// - -EINVAL "the VM has no CPU-address mirror binding": Intel's compute
///   runtime binds one only where shared-system USM is on (Battlemage by
///   default). Found from the one attribute only a mirror VMA takes: a VMA
///   with a non-default preferred location is one; otherwise the largest
///   VMAs have their migration policy flipped, read back and restored (two
///   madvise calls each, which unbind the mirror's GPU mappings there once;
///   the next GPU access faults them back). A mirror proves fault mode: the
///   kernel binds one only in a LR_MODE | FAULT_MODE VM;
/// - the kernel's errno for a kernel without SVM madvise (before 6.18);
/// - -EEXIST where this fd's VM is a device of this context already
///   (adopted before, or the library's own from svm_device_open_index):
///   one VM is one device. An fd's number is compared, not what a dup of
///   it shares.
///
/// svm_last_error() says which. Same as svm_device_adopt_flags with flags 0.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_adopt(ctx: *mut svm_context, fd: c_int, vm_id: u32, device: *mut svm_device) -> c_int {
    // SAFETY: the caller's contract is adopt's (ctx and device NULL or valid).
    guard("svm_device_adopt", || unsafe { adopt(ctx, fd, &[vm_id], 0, device) })
}

/// `svm_device_adopt_flags` flag: the runtime bound the VM's CPU-address
/// mirror with DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET (the kernel resets a
/// range's attributes when memory the GPU used is unmapped), so the library
/// forgets its attribute records on svm_range_invalidate.
pub const SVM_ADOPT_MIRROR_AUTORESET: u32 = 1 << 0;

/// svm_device_adopt, saying how the runtime bound the mirror
/// (`SVM_ADOPT_*` flags; unknown bits: -EINVAL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_adopt_flags(ctx: *mut svm_context, fd: c_int, vm_id: u32, flags: u32, device: *mut svm_device) -> c_int {
    // SAFETY: the caller's contract is adopt's (ctx and device NULL or valid).
    guard("svm_device_adopt_flags", || unsafe { adopt(ctx, fd, &[vm_id], flags, device) })
}

/// Adopts a device whose runtime keeps one VM per tile, as Intel's compute
/// runtime does on multi-tile cards: `vm_ids[t]` is tile t's VM, one for
/// every tile of the device (`n`, at most 2), each checked as
/// svm_device_adopt checks its VM. The card is one device: advice goes to
/// every tile's VM, a placement in a tile's VRAM prefetches through that
/// tile's VM, in a batch too (one VM_BIND per VM, the earlier ones waited
/// for, the batch's fence on the last); system memory, peers and range
/// queries use tile 0's. -EINVAL when two or more VMs are not one per
/// tile (svm_last_error() says how); one VM is svm_device_adopt's case,
/// one VM for every tile. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_adopt_tiles(ctx: *mut svm_context, fd: c_int, vm_ids: *const u32, n: u32, flags: u32, device: *mut svm_device) -> c_int {
    guard("svm_device_adopt_tiles", || {
        if vm_ids.is_null() || n == 0 || n > 2 {
            return Err(invalid(format!("vm_ids must point to 1 or 2 VM ids, one per tile (n is {n})")));
        }
        // SAFETY: the caller passes n readable ids (checked non-NULL); ctx
        // and device as adopt's contract.
        unsafe { adopt(ctx, fd, core::slice::from_raw_parts(vm_ids, n as usize), flags, device) }
    })
}

/// The adoptions' one path: a VM for the device, or one per tile.
unsafe fn adopt(ctx: *mut svm_context, fd: c_int, vm_ids: &[u32], flags: u32, device: *mut svm_device) -> super::FfiResult {
    // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
    let c = unsafe { context(ctx)? };
    // SAFETY: `device` is NULL or points to writable memory for its type (the header's contract).
    let o = unsafe { out(device, "device")? };
    if flags & !SVM_ADOPT_MIRROR_AUTORESET != 0 {
        return Err(invalid(format!("unknown flags {flags:#x}")));
    }
    let vms = match vm_ids {
        [one] => format!("VM {one}"),
        ids => format!("VMs {ids:?}"),
    };
    let h = c
        .ctx
        .adopt_tiles_checked(fd, vm_ids, flags & SVM_ADOPT_MIRROR_AUTORESET != 0)
        .map_err(|(errno, why)| Failure { errno, message: format!("fd {fd}, {vms}: {why}") })?;
    *o = c.device_id(h);
    Ok(())
}
