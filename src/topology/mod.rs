//! What the library knows about the machine: pagemaps (one per VRAM region
//! of each tile, plus system memory) and the links between devices. Links
//! come from the driver where it can tell (the simulated topology), are
//! learned from ENOLINK answers, and can be set by the runtime.

/// Where a range can live, as the library names it. `device` is the slot of
/// an open device in its context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pagemap {
    /// System memory.
    System,
    /// The VRAM of a device's tile.
    Vram {
        /// The device's slot.
        device: u16,
        /// The tile.
        tile: u16,
    },
}

impl std::fmt::Display for Pagemap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pagemap::System => f.write_str("system"),
            Pagemap::Vram { device, tile } => write!(f, "device {device} VRAM tile {tile}"),
        }
    }
}

impl Pagemap {
    /// The device whose VRAM it is (None: system memory).
    pub fn device(self) -> Option<u16> {
        match self {
            Pagemap::System => None,
            Pagemap::Vram { device, .. } => Some(device),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// What kind of link two devices have.
pub enum LinkKind {
    /// PCIe peer-to-peer.
    PcieP2p,
    /// Xe Link.
    Fabric,
}

/// A link between two devices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Its kind.
    pub kind: LinkKind,
    /// Whether device atomics may be served over it (the Xe kernel never
    /// does so today, docs/kernel-model.md §3.2; the flag informs resolve only).
    pub atomics: bool,
    /// Bytes per second per direction.
    pub bandwidth: f64,
}

/// What is known about the link between two devices.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum LinkState {
    /// Not known yet: a madvise naming the peer will tell (ENOLINK or not).
    #[default]
    Unknown,
    /// None (learned from ENOLINK, or set).
    Absent,
    /// A usable link.
    Present(Link),
}

impl LinkState {
    /// Whether data in one device's VRAM may be used by the other.
    pub fn usable(self) -> bool {
        !matches!(self, LinkState::Absent)
    }
}

/// A symmetric table of link states between device slots.
#[derive(Clone, Debug, Default)]
pub struct Links {
    n: usize,
    states: Vec<LinkState>,
}

impl Links {
    fn grow(&mut self, n: usize) {
        if n <= self.n {
            return;
        }
        let mut states = vec![LinkState::Unknown; n * n];
        for a in 0..self.n {
            for b in 0..self.n {
                states[a * n + b] = self.states[a * self.n + b];
            }
        }
        self.n = n;
        self.states = states;
    }

    /// The state of the link between two devices.
    pub fn get(&self, a: u16, b: u16) -> LinkState {
        let (a, b) = (a as usize, b as usize);
        if a == b || a >= self.n || b >= self.n {
            return LinkState::Unknown;
        }
        self.states[a * self.n + b]
    }

    /// Sets it (both directions).
    pub fn set(&mut self, a: u16, b: u16, s: LinkState) {
        if a == b {
            return;
        }
        self.grow(a.max(b) as usize + 1);
        let n = self.n;
        self.states[a as usize * n + b as usize] = s;
        self.states[b as usize * n + a as usize] = s;
    }

    /// Forgets everything about a slot (its device was closed).
    pub fn forget(&mut self, a: u16) {
        for b in 0..self.n as u16 {
            if b != a {
                self.set(a, b, LinkState::Unknown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_symmetric_and_grow() {
        let mut l = Links::default();
        assert_eq!(l.get(0, 5), LinkState::Unknown);
        let p = LinkState::Present(Link { kind: LinkKind::PcieP2p, atomics: false, bandwidth: 20e9 });
        l.set(3, 1, p);
        assert_eq!(l.get(1, 3), p);
        l.set(0, 4, LinkState::Absent);
        assert_eq!(l.get(3, 1), p, "kept across growth");
        assert!(!l.get(4, 0).usable());
        l.forget(3);
        assert_eq!(l.get(1, 3), LinkState::Unknown);
        assert_eq!(Pagemap::Vram { device: 2, tile: 1 }.device(), Some(2));
    }
}
