//! The links between the context's devices: what the library knows of
//! each pair (the runtime's description, the platform's hint, the
//! runtime's word, ENOLINK answers), and whether a device reaches a
//! pagemap in place.

use super::*;

impl Context {
    /// Links of a new device to the open ones: the runtime's description
    /// where it names the pair, else what the platform says (sysfs PCI
    /// topology, the simulated machine); ENOLINK corrects either later.
    pub(super) fn learn_links(&self, dev: &Device) {
        let Some(id) = dev.id else { return };
        let slots = self.slots.read();
        let described = self.described.read();
        let mut links = self.links.write();
        for other in slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.slot != dev.slot) {
            let Some(other_id) = other.id else { continue };
            if let Some(state) = crate::topology::description::lookup(&described, id, other_id) {
                links.set(dev.slot, other.slot, state, LinkSource::Description);
                continue;
            }
            let state = match self.driver.link_hint(id, other_id) {
                None => continue,
                Some(LinkHint::None) => LinkState::Absent,
                Some(LinkHint::Interconnect { fabric, atomics, bandwidth }) => LinkState::Present(Link {
                    kind: if fabric { LinkKind::Fabric } else { LinkKind::PcieP2p },
                    atomics,
                    bandwidth,
                }),
            };
            links.set(dev.slot, other.slot, state, LinkSource::Platform);
        }
    }

    /// The runtime's topology description (docs: `topology::description`):
    /// links sysfs does not show, applied to devices opened from now on and,
    /// at once, to the open ones it names.
    pub fn set_link_description(&self, links: Vec<DescribedLink>) {
        *self.described.write() = links;
        let slots = self.slots.read();
        let devs: Vec<&Arc<Device>> = slots.iter().filter_map(|s| s.dev.as_ref()).collect();
        let described = self.described.read();
        let mut table = self.links.write();
        for a in &devs {
            for b in devs.iter().filter(|b| b.slot > a.slot) {
                if let (Some(ia), Some(ib)) = (a.id, b.id) {
                    if let Some(state) = crate::topology::description::lookup(&described, ia, ib) {
                        table.set(a.slot, b.slot, state, LinkSource::Description);
                    }
                }
            }
        }
    }

    /// Whether device `from` can access `pm` in place: system memory, its
    /// own VRAM, or an open peer's over a usable link.
    pub(super) fn reaches(links: &Links, slots: &[Slot], from: u16, pm: Pagemap) -> bool {
        match pm {
            Pagemap::System => true,
            Pagemap::Vram { device, .. } => device == from || (links.get(from, device).usable() && Context::check_pagemap(slots, pm).is_ok()),
        }
    }

    /// What the library knows of the link between two devices.
    pub fn link(&self, a: DeviceHandle, b: DeviceHandle) -> Result<LinkState> {
        let slots = self.slots.read();
        Context::device_in(&slots, a)?;
        Context::device_in(&slots, b)?;
        Ok(self.links.read().get(a.slot, b.slot))
    }

    /// [`Context::link`], with where the fact came from.
    pub fn link_with_source(&self, a: DeviceHandle, b: DeviceHandle) -> Result<(LinkState, LinkSource)> {
        let slots = self.slots.read();
        Context::device_in(&slots, a)?;
        Context::device_in(&slots, b)?;
        Ok(self.links.read().get_with_source(a.slot, b.slot))
    }

    /// Tells the library what the runtime knows about a link.
    pub fn set_link(&self, a: DeviceHandle, b: DeviceHandle, state: LinkState) -> Result<()> {
        let slots = self.slots.read();
        Context::device_in(&slots, a)?;
        Context::device_in(&slots, b)?;
        if a.slot == b.slot {
            return Err(Errno::EINVAL);
        }
        self.links.write().set(a.slot, b.slot, state, LinkSource::Runtime);
        Ok(())
    }
}
