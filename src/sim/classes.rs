//! The device classes the presets are built from, each named for the part
//! whose figures it carries: memory per tile, local memory bandwidth, host
//! link, PCI id and platform flags. Every figure is cited in
//! docs/cost-model.md ("Device classes") with its source or marked [U].
//!
//! Bandwidths are effective figures, bytes/s per direction.

use super::config::{DeviceSpec, GIB};

/// Arc B580: 456 GB/s GDDR6 ([P] Intel's specification: 19 Gbps x 192 bit).
pub const B580_LOCAL: f64 = 456e9;
/// Arc B580's PCIe 4.0 x8: [D] 15.75 GB/s theoretical x ~0.83 effective.
pub const B580_HOST: f64 = 13e9;

/// A class of device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Arc B580-class: 1 tile, 12 GiB GDDR6 at 456 GB/s, PCIe 4.0 x8.
    B580,
    /// Arc Pro B60-class: 1 tile, 24 GiB GDDR6 at 456 GB/s, PCIe 5.0 x8.
    B60,
    /// Data Center GPU Max 1550-class: 2 tiles x 64 GiB HBM2e, 3.2 TB/s per
    /// card (1.6 TB/s per tile's local memory), PCIe 5.0 x16.
    Max1550,
    /// An integrated GPU: no VRAM; its memory is system memory.
    Integrated,
}

impl Class {
    /// A device of this class named `name`.
    pub fn device(self, name: &str) -> DeviceSpec {
        match self {
            Class::B580 => DeviceSpec::discrete(name, 1, 12 * GIB),
            Class::B60 => {
                let mut d = DeviceSpec::discrete(name, 1, 24 * GIB);
                // [U] 0xe211 as pci.ids names Arc Pro B60 (BMG G21).
                d.device_id = 0xe211;
                // [D] PCIe 5.0 x8: 31.5 GB/s theoretical x ~0.83.
                d.host_bandwidth = 26e9;
                d
            }
            Class::Max1550 => {
                let mut d = DeviceSpec::discrete(name, 2, 64 * GIB);
                d.device_id = 0x0bd5;
                // pvc_desc in xe_pci.c has no needs_scratch (only LNL, BMG and
                // PTL set it): SCRATCH_PAGE | FAULT_MODE is EINVAL.
                d.needs_scratch = false;
                // [P] 3.2 TB/s per card, two tiles: a kernel on one tile
                // reads its own tile's HBM at half of that.
                d.local_bandwidth = 1.6e12;
                // [D] PCIe 5.0 x16: 63 GB/s theoretical x ~0.8.
                d.host_bandwidth = 50e9;
                d
            }
            Class::Integrated => {
                let mut d = DeviceSpec::discrete(name, 1, 0);
                d.integrated = true;
                d.device_atomics_on_smem = true;
                d.device_id = 0x64a0;
                // [U] a laptop's LPDDR5X, about 100 GB/s: the GPU's only
                // memory, so both its local and its "host" bandwidth.
                d.local_bandwidth = 100e9;
                d.host_bandwidth = 100e9;
                d
            }
        }
    }

    /// A class by name, as a topology file's `class` key gives it.
    pub fn parse(s: &str) -> Option<Class> {
        Some(match s {
            "b580" => Class::B580,
            "b60" => Class::B60,
            "max1550" => Class::Max1550,
            "integrated" | "igpu" => Class::Integrated,
            _ => return None,
        })
    }
}
