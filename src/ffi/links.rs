//! Links between devices from C: what the library knows of them, and where
//! each fact came from (`svm_link_get`), and what the runtime tells it
//! (`svm_link_set`).

use core::ffi::c_int;

use super::context::{context, svm_context, svm_device};
use super::types::write_sized;
use super::{guard, invalid, out};
use crate::topology::{Link, LinkKind, LinkSource, LinkState};

/// `svm_link.kind`: nothing known yet (a placement naming the peer will tell).
pub const SVM_LINK_UNKNOWN: u32 = 0;
/// No link: neither device can use the other's VRAM.
pub const SVM_LINK_NONE: u32 = 1;
/// PCIe peer-to-peer.
pub const SVM_LINK_PCIE_P2P: u32 = 2;
/// A fast fabric (Xe Link).
pub const SVM_LINK_FABRIC: u32 = 3;

/// What is known about the link between two devices.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_link {
    /// `sizeof(svm_link)`.
    pub struct_size: u32,
    /// One of `SVM_LINK_*`.
    pub kind: u32,
    /// Whether the link carries device atomics.
    pub atomics: bool,
    /// Zero.
    pub _pad: [u8; 7],
    /// Per-direction bandwidth, GB/s (0 when unknown).
    pub bandwidth_gbps: f64,
    /// svm_link_get: where the fact came from, one of `SVM_LINK_SOURCE_*`
    /// (svm_link_set ignores it). Read and written only when `struct_size`
    /// covers it.
    pub source: u32,
    /// Zero.
    pub _pad2: u32,
}

/// `svm_link.source`: nothing known.
pub const SVM_LINK_SOURCE_UNKNOWN: u32 = 0;
/// What the platform says (sysfs PCI topology; the simulated machine).
pub const SVM_LINK_SOURCE_PLATFORM: u32 = 1;
/// The context's topology description (`topology_file`, `XESVM_TOPOLOGY`).
pub const SVM_LINK_SOURCE_DESCRIPTION: u32 = 2;
/// Learned from the kernel: ENOLINK.
pub const SVM_LINK_SOURCE_LEARNED: u32 = 3;
/// Set with svm_link_set.
pub const SVM_LINK_SOURCE_RUNTIME: u32 = 4;

/// The library's knowledge of the link between two open devices (from the
/// simulated topology, ENOLINK answers, or svm_link_set). -EINVAL for a
/// device and itself, as svm_link_set answers: there is no link to ask
/// about. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_link_get(ctx: *mut svm_context, a: svm_device, b: svm_device, link: *mut svm_link) -> c_int {
    guard("svm_link_get", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `link` is NULL or points to writable memory for its type (the header's contract).
        let l = unsafe { out(link, "link")? };
        let (a, b) = (c.device(a)?, c.device(b)?);
        if a == b {
            return Err(invalid("a device has no link to itself"));
        }
        let (s, source) = c.ctx.link_with_source(a, b)?;
        let source = match source {
            LinkSource::Unknown => SVM_LINK_SOURCE_UNKNOWN,
            LinkSource::Platform => SVM_LINK_SOURCE_PLATFORM,
            LinkSource::Description => SVM_LINK_SOURCE_DESCRIPTION,
            LinkSource::Learned => SVM_LINK_SOURCE_LEARNED,
            LinkSource::Runtime => SVM_LINK_SOURCE_RUNTIME,
        };
        let mut v = match s {
            LinkState::Unknown => svm_link { kind: SVM_LINK_UNKNOWN, ..Default::default() },
            LinkState::Absent => svm_link { kind: SVM_LINK_NONE, ..Default::default() },
            LinkState::Present(k) => svm_link {
                kind: if k.kind == LinkKind::Fabric { SVM_LINK_FABRIC } else { SVM_LINK_PCIE_P2P },
                atomics: k.atomics,
                bandwidth_gbps: k.bandwidth / 1e9,
                ..Default::default()
            },
        };
        v.source = source;
        write_sized(l, l.struct_size, v, |v, n| v.struct_size = n)
    })
}

/// Tells the library about the link between two open devices (what the
/// runtime knows from its own topology discovery). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_link_set(ctx: *mut svm_context, a: svm_device, b: svm_device, link: *const svm_link) -> c_int {
    guard("svm_link_set", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: caller's struct, checked non-NULL.
        let l = unsafe { link.as_ref() }.ok_or_else(|| invalid("link is NULL"))?;
        if (l.struct_size as usize) < core::mem::offset_of!(svm_link, source) {
            return Err(invalid("link->struct_size is not sizeof(svm_link)"));
        }
        // 0 means "not known"; anything else must be a real bandwidth.
        if !l.bandwidth_gbps.is_finite() || l.bandwidth_gbps < 0.0 {
            return Err(invalid(format!("link->bandwidth_gbps {} is negative or not finite", l.bandwidth_gbps)));
        }
        let bw = l.bandwidth_gbps * 1e9;
        let state = match l.kind {
            SVM_LINK_UNKNOWN => LinkState::Unknown,
            SVM_LINK_NONE => LinkState::Absent,
            SVM_LINK_PCIE_P2P => LinkState::Present(Link { kind: LinkKind::PcieP2p, atomics: l.atomics, bandwidth: bw }),
            SVM_LINK_FABRIC => LinkState::Present(Link { kind: LinkKind::Fabric, atomics: l.atomics, bandwidth: bw }),
            k => return Err(invalid(format!("link->kind {k} is not an SVM_LINK_* value"))),
        };
        let (ha, hb) = (c.device(a)?, c.device(b)?);
        if ha == hb {
            return Err(invalid("a device has no link to itself"));
        }
        Ok(c.ctx.set_link(ha, hb, state)?)
    })
}
