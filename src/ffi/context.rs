//! The placement API from C: contexts, devices, pagemaps, and the calls a
//! runtime makes (`svm_resolve_pagemap`, `svm_alloc_vram`, `svm_evict`,
//! attributes, queries, statistics). Checks and conversions only; the work
//! is `crate::policy::Context`'s.
//!
//! Device and pagemap handles are values that carry their context's serial
//! number, the device slot and the slot's generation, so a handle of another
//! context or made up is refused (-EINVAL), one of a closed device too (-EBADF)
//! without ever being dereferenced.

use core::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicU32, Ordering};
#[cfg(feature = "sim")]
use std::sync::Arc;

use super::types::{svm_sim, write_sized};
use super::{cstr, guard, invalid, out, Failure};
use crate::errno::Errno;
use crate::policy::{Config, Context, DeviceHandle};
use crate::topology::Pagemap;

/// A placement context: one driver (the kernel's, or a simulated one), its
/// open devices, and what the library knows about ranges. Created by
/// `svm_context_create`, released by `svm_context_destroy`. Every function
/// taking a context may be called from many threads at once, except
/// `svm_context_destroy`, which must be the last call on it.
///
/// A context belongs to the process that created it. After `fork`, every
/// call on it in the child returns -ECHILD (its devices' DRM files and VMs
/// are shared with the parent, and its records describe the parent's
/// memory): the child creates its own context. svm_context_destroy in the
/// child closes the child's copies of the fds the library opened, destroys
/// no VM of the parent's, and takes none of the context's locks (a parent
/// thread may have held one at fork): it leaves the context's memory to the
/// child's exit or exec.
pub struct svm_context {
    pub(super) ctx: Context,
    serial: u32,
    /// The simulator behind a SIM context (for svm_context_get_sim).
    #[cfg(feature = "sim")]
    sim: Option<Arc<crate::sim::Sim>>,
    /// This context's own log handler, if it has one.
    log: crate::log::ContextSink,
}

/// An open device of a context (a value; copy it freely). Zero is never a
/// valid device.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct svm_device {
    /// Opaque: the context serial and the device slot.
    pub id: u64,
}

/// A memory a range can live in: one tile's VRAM of an open device, or
/// system memory (a value; copy it freely). Zero is never a valid pagemap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct svm_pagemap {
    /// Opaque: the context serial and the pagemap.
    pub id: u64,
}

/// `svm_context_config.driver`: the Xe kernel driver (render nodes).
pub const SVM_DRIVER_KERNEL: u32 = 0;
/// `svm_context_config.driver`: the simulated Xe driver.
pub const SVM_DRIVER_SIM: u32 = 1;

/// Context options. Zero-initialise, set `struct_size`, then what you need;
/// zero fields take the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct svm_context_config {
    /// `sizeof(svm_context_config)`.
    pub struct_size: u32,
    /// `SVM_DRIVER_KERNEL` or `SVM_DRIVER_SIM`.
    pub driver: u32,
    /// SIM: an existing simulator to use (the context takes its own
    /// reference), or NULL to create one from `sim_preset` or `sim_topology_file`.
    pub sim: *mut svm_sim,
    /// SIM: a preset name (see `svm_sim_create`).
    pub sim_preset: *const c_char,
    /// SIM: a topology file path.
    pub sim_topology_file: *const c_char,
    /// Thrash guard: a range that moved this many times within the window
    /// is pinned where it is. 0: the default (4).
    pub thrash_max_moves: u32,
    /// Zero.
    pub _pad: u32,
    /// Thrash guard window, in the driver's clock (simulated clock on the
    /// simulated driver), at least: a range's window is long enough for
    /// thrash_max_moves moves of it at the context's fastest timed move.
    /// 0: the default (50 ms).
    pub thrash_window_ns: u64,
    /// How long a pin lasts. 0: the default (150 ms).
    pub pin_ns: u64,
    /// How long an observation of a range in the process's page table stays
    /// fresh (the record is believed without a read within it), in the
    /// driver's clock; after the `svm_launch_report` of a launch that used
    /// the range (the host touches a launch's data once it completed), one
    /// sampled page (two where its last page lies in another 64 KiB block)
    /// is read again first, once per report. 0: the default (200 us). Read only when
    /// `struct_size` covers it.
    pub observe_ttl_ns: u64,
    /// `SVM_CONTEXT_*` bits. Read only when `struct_size` covers it.
    pub flags: u32,
    /// Zero.
    pub _pad2: u32,
    /// A topology description for the links sysfs does not show (one
    /// `link PCI PCI [kind=p2p|fabric|none] [bandwidth_gbps=N]
    /// [atomics=true|false]` per line; an error names the line, -EINVAL).
    /// NULL: for a kernel context, the file `XESVM_TOPOLOGY` names, if set.
    /// Read only when `struct_size` covers it.
    pub topology_file: *const c_char,
    /// How long a placement waits for its bind's fence before it fails
    /// with -ETIME, in nanoseconds of real time (the simulated clock on
    /// the simulated driver). 0: the default, 1 s, as Intel's compute
    /// runtime waits for its bind fences. Read only when `struct_size`
    /// covers it (0.2.0).
    pub bind_timeout_ns: u64,
}

/// `svm_context_config.flags`: bind the CPU-address mirror of every VM the
/// library creates with DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET, as Intel's
/// compute runtime binds its own: the kernel resets a range's attributes
/// when memory the GPU used is unmapped, and svm_range_invalidate (the
/// runtime's free hook) makes the library forget them too.
pub const SVM_CONTEXT_MIRROR_AUTORESET: u32 = 1 << 0;
/// `svm_context_config.flags`: decide SVM_ALLOC_ENGINE placements with the
/// rule cascade of 0.2 (split birth, rent or buy, walks, readers
/// served in place, deferral to the fault, widening to a record). Off by
/// default since 0.3.0: without it an engine placement is the runtime's
/// own prefetch to the accessing tile's VRAM, unless advice, atomics,
/// VRAM room or a read of what a linked peer's VRAM holds (read over the
/// link) say otherwise.
pub const SVM_CONTEXT_ENGINE_RULES: u32 = 1 << 1;
/// `svm_context_config.flags`: never map the zero page over the runtime's
/// memory. By default, the first time an engine placement leaves a span to
/// the launch's faults, or births it in system memory, the library maps the
/// zero page (madvise(MADV_POPULATE_READ)) over the never-populated pages
/// of its partial 2 MiB chunks on a discrete GPU, so the kernel's ranges
/// there are 64 KiB, not 4 KiB (it makes a small range only over present
/// pages). The call writes page tables, not content; it allocates nothing
/// for anonymous memory. This flag leaves the kernel's own ranges.
pub const SVM_CONTEXT_NO_ZERO_PAGE: u32 = 1 << 2;

/// Whether a caller's struct of `size` bytes holds the field at `offset`
/// of `len` bytes.
fn covers(size: u32, offset: usize, len: usize) -> bool {
    size as usize >= offset + len
}

/// `svm_context_config` before `observe_ttl_ns` (0.1.0): still accepted.
const CONFIG_SIZE_V1: usize = core::mem::offset_of!(svm_context_config, observe_ttl_ns);

static SERIAL: AtomicU32 = AtomicU32::new(1);

pub(super) unsafe fn context<'a>(ctx: *const svm_context) -> Result<&'a svm_context, Failure> {
    // SAFETY: non-NULL contexts come from svm_context_create (caller contract).
    let c = unsafe { ctx.as_ref() }.ok_or_else(|| invalid("ctx is NULL"))?;
    c.ctx.check_process().map_err(|errno| Failure { errno, message: "the context was created by the parent process: after fork, create a new context in the child (destroying this one is allowed)".into() })?;
    // Lines logged until the call returns go to the context's handler (guard leaves).
    crate::log::enter(&c.log);
    Ok(c)
}

/// Routes the log lines of calls on this context to `handler` (NULL: back
/// to the process-wide handler of svm_set_log_handler, or stderr). Two
/// runtimes in one process each keep their own log this way. Lines logged
/// outside any call on a context (svm_context_create, svm_device_adopt's
/// failures before a context exists) go to the process-wide handler. The
/// level is process-wide (svm_set_log_level, XESVM_LOG). Thread-safe, as
/// svm_set_log_handler: once it returns, the previous handler is not called
/// again; -EDEADLK from inside a handler.
#[no_mangle]
pub unsafe extern "C" fn svm_context_set_log_handler(ctx: *mut svm_context, handler: super::svm_log_handler, user: *mut core::ffi::c_void) -> c_int {
    guard("svm_context_set_log_handler", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        super::refuse_in_handler()?;
        c.log.set(handler, user);
        Ok(())
    })
}

impl svm_context {
    /// This context's serial: unique in the process, never reused.
    pub(super) fn serial(&self) -> u32 {
        self.serial
    }

    pub(super) fn device_id(&self, h: DeviceHandle) -> svm_device {
        svm_device { id: (self.serial as u64) << 32 | (h.gen as u64) << 16 | h.slot as u64 }
    }

    pub(super) fn device(&self, d: svm_device) -> Result<DeviceHandle, Failure> {
        let h = self.device_handle(d)?;
        self.ctx.check_device(h).map_err(Self::device_failure)?;
        Ok(h)
    }

    /// The handle an `svm_device` carries, checked against this context
    /// only: a call that checks it under its own lock (resolve) says why
    /// with [`svm_context::device_failure`].
    pub(super) fn device_handle(&self, d: svm_device) -> Result<DeviceHandle, Failure> {
        if d.id >> 32 != self.serial as u64 {
            return Err(invalid("device is not a device of this context"));
        }
        Ok(DeviceHandle { slot: d.id as u16, gen: (d.id >> 16) as u16 })
    }

    /// What a handle's errno from policy means.
    pub(super) fn device_failure(e: Errno) -> Failure {
        match e {
            Errno::EBADF => Failure { errno: e, message: "device handle was closed".into() },
            Errno::ENODEV => Failure { errno: e, message: "device is gone (unplugged)".into() },
            Errno::ECANCELED => Failure { errno: e, message: "device is wedged (the kernel cancelled its work)".into() },
            e => Failure { errno: e, message: "unknown device".into() },
        }
    }

    pub(super) fn pagemap_id(&self, pm: Pagemap) -> svm_pagemap {
        let gen = match pm {
            Pagemap::Vram { device, .. } => self.ctx.slot_gen(device).unwrap_or(0),
            Pagemap::System => 0,
        };
        self.pagemap_id_of(pm, gen)
    }

    /// The `svm_pagemap` of a pagemap whose device slot has generation `gen`.
    pub(super) fn pagemap_id_of(&self, pm: Pagemap, gen: u16) -> svm_pagemap {
        let low = match pm {
            Pagemap::System => 0xFFFF_FFFF,
            // The slot's whole 16-bit generation, as its device handle
            // carries it: a pagemap of a closed device stays refused until
            // its slot was reopened 65,536 times.
            Pagemap::Vram { device, tile } => (gen as u64) << 16 | (device as u64 & 0xFF) << 8 | (tile as u64 & 0xFF),
        };
        svm_pagemap { id: (self.serial as u64) << 32 | low }
    }

    pub(super) fn pagemap(&self, p: svm_pagemap) -> Result<Pagemap, Failure> {
        if p.id >> 32 != self.serial as u64 {
            return Err(invalid("pagemap is not a pagemap of this context"));
        }
        let low = p.id as u32;
        if low == 0xFFFF_FFFF {
            return Ok(Pagemap::System);
        }
        let (gen, slot, tile) = ((low >> 16) as u16, ((low >> 8) & 0xFF) as u16, (low & 0xFF) as u16);
        match self.ctx.check_device(DeviceHandle { slot, gen }) {
            Ok(()) => {}
            Err(Errno::EBADF) => return Err(Failure { errno: Errno::EBADF, message: "pagemap's device was closed".into() }),
            Err(_) => return Err(invalid("pagemap names a device this context never opened")),
        }
        // The tile is checked where the pagemap is used (EINVAL there).
        Ok(Pagemap::Vram { device: slot, tile })
    }
}

/// Creates a context. `config` may be NULL: the kernel driver with default
/// policy. Errors: -EINVAL (bad config, unknown preset, bad topology file:
/// see svm_last_error()). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_context_create(config: *const svm_context_config, ctx: *mut *mut svm_context) -> c_int {
    guard("svm_context_create", || {
        // SAFETY: `ctx` is NULL or points to writable memory for its type (the header's contract).
        let slot = unsafe { out(ctx, "ctx")? };
        let defaults = Config::default();
        // SAFETY: caller's struct, checked non-NULL.
        let cfg = unsafe { config.as_ref() };
        if let Some(c) = cfg {
            if (c.struct_size as usize) < CONFIG_SIZE_V1 {
                return Err(invalid("config->struct_size is not sizeof(svm_context_config)"));
            }
            // Reserved fields are zero, so that a later version may give
            // them a meaning an older library would otherwise ignore.
            let pad2 = covers(c.struct_size, core::mem::offset_of!(svm_context_config, _pad2), 4) && c._pad2 != 0;
            if c._pad != 0 || pad2 {
                return Err(invalid("config->_pad and config->_pad2 must be zero"));
            }
            // One source of a simulator: a second one would be ignored.
            let sources = [!c.sim.is_null(), !c.sim_preset.is_null(), !c.sim_topology_file.is_null()];
            if sources.iter().filter(|&&set| set).count() > 1 {
                return Err(invalid("set one of config->sim, config->sim_preset and config->sim_topology_file"));
            }
        }
        let policy = match cfg {
            None => defaults,
            Some(c) => {
                let flags = if covers(c.struct_size, core::mem::offset_of!(svm_context_config, flags), 4) { c.flags } else { 0 };
                if flags & !(SVM_CONTEXT_MIRROR_AUTORESET | SVM_CONTEXT_ENGINE_RULES | SVM_CONTEXT_NO_ZERO_PAGE) != 0 {
                    return Err(invalid(format!("config->flags has unknown bits {flags:#x}")));
                }
                Config {
                    thrash_max_moves: if c.thrash_max_moves == 0 { defaults.thrash_max_moves } else { c.thrash_max_moves },
                    thrash_window_ns: if c.thrash_window_ns == 0 { defaults.thrash_window_ns } else { c.thrash_window_ns },
                    pin_ns: if c.pin_ns == 0 { defaults.pin_ns } else { c.pin_ns },
                    observe_ttl_ns: match covers(c.struct_size, core::mem::offset_of!(svm_context_config, observe_ttl_ns), 8) {
                        true if c.observe_ttl_ns != 0 => c.observe_ttl_ns,
                        _ => defaults.observe_ttl_ns,
                    },
                    mirror_autoreset: flags & SVM_CONTEXT_MIRROR_AUTORESET != 0,
                    engine_rules: flags & SVM_CONTEXT_ENGINE_RULES != 0,
                    zero_page: flags & SVM_CONTEXT_NO_ZERO_PAGE == 0,
                    bind_timeout_ns: match covers(c.struct_size, core::mem::offset_of!(svm_context_config, bind_timeout_ns), 8) {
                        true if c.bind_timeout_ns != 0 => c.bind_timeout_ns,
                        _ => defaults.bind_timeout_ns,
                    },
                }
            }
        };
        let (context, sim) = match cfg.map_or(SVM_DRIVER_KERNEL, |c| c.driver) {
            SVM_DRIVER_KERNEL => (Context::new_kernel(policy), None),
            // SAFETY: the config's pointers are NULL or valid (caller contract).
            SVM_DRIVER_SIM => unsafe { sim_context(cfg.unwrap(), policy)? },
            d => return Err(invalid(format!("config->driver {d} is not SVM_DRIVER_KERNEL or SVM_DRIVER_SIM"))),
        };
        #[cfg(not(feature = "sim"))]
        let _: Option<()> = sim;
        // The runtime's topology description: the config's file, else
        // XESVM_TOPOLOGY for a kernel context.
        let description = match cfg {
            Some(c) if covers(c.struct_size, core::mem::offset_of!(svm_context_config, topology_file), 8) && !c.topology_file.is_null() => {
                // SAFETY: a NUL-terminated string (caller contract).
                Some(std::path::PathBuf::from(unsafe { cstr(c.topology_file, "config->topology_file")? }))
            }
            _ if cfg.map_or(SVM_DRIVER_KERNEL, |c| c.driver) == SVM_DRIVER_KERNEL => crate::env::var_os("XESVM_TOPOLOGY").map(std::path::PathBuf::from),
            _ => None,
        };
        if let Some(path) = description {
            context.set_link_description(crate::topology::description::read(&path).map_err(invalid)?);
        }
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed).max(1);
        *slot = Box::into_raw(Box::new(svm_context {
            ctx: context,
            serial,
            #[cfg(feature = "sim")]
            sim,
            log: Default::default(),
        }));
        Ok(())
    })
}

/// Closes every device the context opened (destroying the VMs it created;
/// adopted fds and VMs are left alone) and frees the context. NULL is a
/// no-op. Not thread-safe: no other call on the context may run or follow.
#[no_mangle]
pub unsafe extern "C" fn svm_context_destroy(ctx: *mut svm_context) -> c_int {
    guard("svm_context_destroy", || {
        if ctx.is_null() {
            return Ok(());
        }
        // SAFETY: created by svm_context_create, destroyed once (caller contract).
        let c = unsafe { Box::from_raw(ctx) };
        if c.ctx.check_process().is_err() {
            // A forked child: a parent thread may have held any of the
            // context's locks at fork, and none will ever be released here.
            // The child's fds are closed without them, the rest is leaked.
            c.ctx.release_in_child();
            std::mem::forget(c);
            return Ok(());
        }
        // Its closes log to its own handler, delivered before it is freed.
        crate::log::enter(&c.log);
        for h in c.ctx.devices() {
            let _ = c.ctx.close(h);
        }
        crate::log::leave();
        Ok(())
    })
}

/// A context on the simulated driver: the given simulator, or one made from
/// a preset or a topology file.
///
/// # Safety
/// The config's pointers are NULL or valid.
#[cfg(feature = "sim")]
unsafe fn sim_context(c: &svm_context_config, policy: Config) -> Result<(Context, Option<Arc<crate::sim::Sim>>), Failure> {
    use crate::sim::{driver::SimDriver, Sim};
    let sim: Arc<Sim> = if !c.sim.is_null() {
        // SAFETY: a live simulator handle (caller contract).
        unsafe { (*c.sim).sim.clone() }
    } else if !c.sim_preset.is_null() {
        // SAFETY: a NUL-terminated string (caller contract).
        Sim::from_preset(unsafe { cstr(c.sim_preset, "config->sim_preset")? }).map_err(invalid)?
    } else if !c.sim_topology_file.is_null() {
        // SAFETY: a NUL-terminated string (caller contract).
        let path = unsafe { cstr(c.sim_topology_file, "config->sim_topology_file")? };
        Sim::from_file(std::path::Path::new(path)).map_err(invalid)?
    } else {
        return Err(invalid("SVM_DRIVER_SIM needs config->sim, sim_preset or sim_topology_file"));
    };
    Ok((Context::new(Box::new(SimDriver::new(sim.clone())), policy), Some(sim)))
}

/// A build without the simulator (`--no-default-features`) refuses SIM.
#[cfg(not(feature = "sim"))]
unsafe fn sim_context(_: &svm_context_config, _: Config) -> Result<(Context, Option<()>), Failure> {
    Err(Failure { errno: Errno::EOPNOTSUPP, message: "SVM_DRIVER_SIM: this build of the library has no simulator (built without the `sim` feature)".into() })
}

/// The simulator behind a SIM context, as a new reference (release it with
/// svm_sim_destroy). -ENODEV for a kernel context.
#[cfg(feature = "sim")]
#[no_mangle]
pub unsafe extern "C" fn svm_context_get_sim(ctx: *mut svm_context, sim: *mut *mut svm_sim) -> c_int {
    guard("svm_context_get_sim", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `sim` is NULL or points to writable memory for its type (the header's contract).
        let o = unsafe { out(sim, "sim")? };
        let s = c.sim.as_ref().ok_or_else(|| Failure { errno: Errno::ENODEV, message: "not a simulated context".into() })?;
        *o = Box::into_raw(Box::new(svm_sim { sim: s.clone() }));
        Ok(())
    })
}

fn open_failure(e: Errno, what: String) -> Failure {
    let why = match e {
        Errno::EOPNOTSUPP => "the device has no CPU-address mirror (HAS_CPU_ADDR_MIRROR clear: no SVM)".to_string(),
        Errno::ENOSPC => "no free device slot in this context (64 devices open, or slots retired after 65,535 opens each, so that no stale handle names a later device), or the kernel's VM create or mirror bind ran out of space".to_string(),
        e => e.to_string(),
    };
    Failure { errno: e, message: format!("{what}: {why}") }
}

/// Opens an Xe render node (kernel contexts): queries the device, checks
/// HAS_CPU_ADDR_MIRROR (-EOPNOTSUPP without it), creates an LR|FAULT_MODE VM
/// and binds the CPU-address mirror. -ENOSPC where the context holds 64
/// devices (a slot is retired once its handles ran out, after 65,535 opens
/// of it: a stale handle never names a later device); the errno of
/// opening the path (-ENOENT, -EACCES, ...) otherwise. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_open(ctx: *mut svm_context, path: *const c_char, device: *mut svm_device) -> c_int {
    guard("svm_device_open", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `device` is NULL or points to writable memory for its type (the header's contract).
        let o = unsafe { out(device, "device")? };
        // SAFETY: `path` is NULL or a NUL-terminated string (the header's contract).
        let p = unsafe { cstr(path, "path")? };
        let h = c.ctx.open_path(std::path::Path::new(p)).map_err(|e| match e {
            Errno::EINVAL => invalid("svm_device_open takes a render node on kernel contexts; use svm_device_open_index on simulated ones"),
            e => open_failure(e, p.to_string()),
        })?;
        *o = c.device_id(h);
        Ok(())
    })
}

/// Opens device `index`: the simulated device of that index, or the
/// index-th Xe render node (by minor number). Same checks as svm_device_open.
/// -ENODEV if there is no such device. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_open_index(ctx: *mut svm_context, index: u32, device: *mut svm_device) -> c_int {
    guard("svm_device_open_index", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `device` is NULL or points to writable memory for its type (the header's contract).
        let o = unsafe { out(device, "device")? };
        let h = c.ctx.open_index(index).map_err(|e| open_failure(e, format!("device {index}")))?;
        *o = c.device_id(h);
        Ok(())
    })
}

/// Closes a device: destroys the VM and closes the fd if the library created
/// them. Its handle and pagemaps stop working (-EBADF), in a batch queued
/// before too (its ranges for that VRAM complete with -EBADF in `cause`,
/// and so do all the ranges of a batch of this device whose fence had not
/// signalled).
/// Thread-safe; a call another thread makes with the device's handle or
/// pagemap while this one runs finds the device open or closed, and, like
/// a file descriptor used across close(2), one whose slot a third thread
/// reopened meanwhile may act on the new device: close a device only once
/// the runtime is done with its handles.
#[no_mangle]
pub unsafe extern "C" fn svm_device_close(ctx: *mut svm_context, device: svm_device) -> c_int {
    guard("svm_device_close", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let h = c.device(device)?;
        Ok(c.ctx.close(h)?)
    })
}

/// What the library knows of an open device.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_device_info {
    /// In: `sizeof(svm_device_info)`; out: bytes written.
    pub struct_size: u32,
    /// The device fd (pass it to svm_sim_gpu_access on simulated devices).
    pub fd: i32,
    /// The SVM VM id on that fd.
    pub vm_id: u32,
    /// Tiles of the device.
    pub tiles: u32,
    /// Whether it has VRAM (false: integrated GPU).
    pub has_vram: bool,
    /// Whether the library created the VM (false: adopted).
    pub owns_vm: bool,
    /// Zero.
    pub _pad: u16,
    /// 0 while the device works; -ENODEV or -ECANCELED once it is gone.
    pub status: i32,
    /// PCI device id (CONFIG query).
    pub device_id: u32,
    /// VA bits (CONFIG query).
    pub va_bits: u32,
    /// The device's index in its context (0-63, reused after a close): the
    /// bit that names it in `svm_alloc_result.vms_applied` / `vms_refused`.
    pub index: u32,
    /// Whether `pci_*` hold the device's PCI address (fstat of its fd and
    /// sysfs; not known for an fd whose node sysfs does not describe).
    /// Runtimes order and match devices by it (Intel's compute runtime
    /// orders them in PCI bus order), not by render-node minor. Read only
    /// when `struct_size` covers it (0.2.0).
    pub has_pci: u32,
    /// PCI domain.
    pub pci_domain: u32,
    /// PCI bus.
    pub pci_bus: u8,
    /// PCI device (slot).
    pub pci_device: u8,
    /// PCI function.
    pub pci_function: u8,
    /// Zero.
    pub _pad2: u8,
}

/// Describes an open device. Set `info->struct_size` first. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_get_info(ctx: *mut svm_context, device: svm_device, info: *mut svm_device_info) -> c_int {
    guard("svm_device_get_info", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `info` is NULL or points to writable memory for its type (the header's contract).
        let i = unsafe { out(info, "info")? };
        let d = c.ctx.device(c.device(device)?)?;
        let v = svm_device_info {
            struct_size: 0,
            fd: d.fd,
            vm_id: d.vm_id,
            tiles: d.tiles.len() as u32,
            has_vram: d.has_vram(),
            owns_vm: d.owns_vm,
            _pad: 0,
            status: d.check_alive().err().map_or(0, |e| e.to_status()),
            device_id: d.info.config.device_id as u32,
            va_bits: d.info.config.va_bits,
            index: d.slot as u32,
            has_pci: d.id.is_some() as u32,
            pci_domain: d.id.map_or(0, |id| (id.0 >> 16) as u32),
            pci_bus: d.id.map_or(0, |id| id.bus()),
            pci_device: d.id.map_or(0, |id| ((id.0 >> 3) & 0x1f) as u8),
            pci_function: d.id.map_or(0, |id| (id.0 & 7) as u8),
            _pad2: 0,
        };
        write_sized(i, i.struct_size, v, |v, n| v.struct_size = n)
    })
}

/// The pagemap of a device tile's VRAM. -ENXIO when the tile has no VRAM
/// (integrated GPU), -EINVAL for a tile the device lacks. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_pagemap(ctx: *mut svm_context, device: svm_device, tile: u16, pagemap: *mut svm_pagemap) -> c_int {
    guard("svm_device_pagemap", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `pagemap` is NULL or points to writable memory for its type (the header's contract).
        let o = unsafe { out(pagemap, "pagemap")? };
        let pm = c.ctx.pagemap(c.device(device)?, tile).map_err(|e| match e {
            Errno::ENXIO => Failure { errno: e, message: format!("tile {tile} has no VRAM") },
            e => Failure { errno: e, message: format!("the device has no tile {tile}") },
        })?;
        *o = c.pagemap_id(pm);
        Ok(())
    })
}

/// The system-memory pagemap of a context. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_system_pagemap(ctx: *mut svm_context, pagemap: *mut svm_pagemap) -> c_int {
    guard("svm_system_pagemap", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `pagemap` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(pagemap, "pagemap")? } = c.pagemap_id(Pagemap::System);
        Ok(())
    })
}

/// What a pagemap is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_pagemap_info {
    /// In: `sizeof(svm_pagemap_info)`; out: bytes written.
    pub struct_size: u32,
    /// True for system memory (then device/tile/instance/capacity are 0).
    pub is_system: bool,
    /// Zero.
    pub _pad: [u8; 3],
    /// The device it belongs to.
    pub device: svm_device,
    /// The tile of that device.
    pub tile: u16,
    /// Region instance on the device (DEVICE_QUERY numbering).
    pub instance: u16,
    /// Zero.
    pub _pad2: u32,
    /// Bytes of VRAM (DEVICE_QUERY's size).
    pub capacity: u64,
    /// Bytes this context has placed there.
    pub placed_bytes: u64,
}

/// Describes a pagemap. Set `info->struct_size` first. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_pagemap_get_info(ctx: *mut svm_context, pagemap: svm_pagemap, info: *mut svm_pagemap_info) -> c_int {
    guard("svm_pagemap_get_info", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `info` is NULL or points to writable memory for its type (the header's contract).
        let i = unsafe { out(info, "info")? };
        let pm = c.pagemap(pagemap)?;
        // A device closed meanwhile (another thread) is a closed device's
        // pagemap, not a missing one; its handle's generation keeps a
        // device that reopened the slot out of the answer.
        let failure = |e| c.pagemap(pagemap).err().unwrap_or_else(|| match e {
            Errno::ENODEV | Errno::ECANCELED | Errno::EBADF => svm_context::device_failure(e),
            e => Failure { errno: e, message: "unknown pagemap".into() },
        });
        c.ctx.validate_pagemap(pm).map_err(failure)?;
        let mut v = svm_pagemap_info { placed_bytes: c.ctx.placed_bytes(pm), ..Default::default() };
        match pm {
            Pagemap::System => v.is_system = true,
            Pagemap::Vram { device, tile } => {
                let h = DeviceHandle { slot: device, gen: (pagemap.id >> 16) as u16 };
                let d = c.ctx.device(h).map_err(failure)?;
                let t = d.tiles.get(tile as usize).copied().flatten().ok_or(Errno::EINVAL)?;
                v.device = c.device_id(h);
                v.tile = tile;
                v.instance = t.instance;
                v.capacity = t.capacity;
            }
        }
        write_sized(i, i.struct_size, v, |v, n| v.struct_size = n)
    })
}
