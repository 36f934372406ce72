//! What the library knows about the machine: pagemaps (one per VRAM region
//! of each tile, plus system memory) and the links between devices, each
//! with where the fact came from: the platform (sysfs, or the simulated
//! topology), a description the runtime gave (`description`), an ENOLINK
//! answer, or the runtime's svm_link_set.

pub mod description;

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

/// Where a link fact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkSource {
    /// Nothing known.
    #[default]
    Unknown,
    /// What the platform says: sysfs PCI topology (or the simulated machine).
    Platform,
    /// The topology description the runtime gave the context.
    Description,
    /// Learned from the kernel: an ENOLINK answer.
    Learned,
    /// Set by the runtime (svm_link_set).
    Runtime,
}

impl LinkSource {
    /// A short name (`sysfs`, `description`, `ENOLINK`, `runtime`, `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            LinkSource::Unknown => "unknown",
            LinkSource::Platform => "sysfs",
            LinkSource::Description => "description",
            LinkSource::Learned => "ENOLINK",
            LinkSource::Runtime => "runtime",
        }
    }
}

/// A symmetric table of link states between device slots, each with its source.
#[derive(Clone, Debug, Default)]
pub struct Links {
    n: usize,
    states: Vec<(LinkState, LinkSource)>,
}

impl Links {
    fn grow(&mut self, n: usize) {
        if n <= self.n {
            return;
        }
        let mut states = vec![(LinkState::Unknown, LinkSource::Unknown); n * n];
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
        self.get_with_source(a, b).0
    }

    /// The state of the link between two devices, and where it came from.
    pub fn get_with_source(&self, a: u16, b: u16) -> (LinkState, LinkSource) {
        let (a, b) = (a as usize, b as usize);
        if a == b || a >= self.n || b >= self.n {
            return (LinkState::Unknown, LinkSource::Unknown);
        }
        self.states[a * self.n + b]
    }

    /// Sets it (both directions), saying where the fact came from.
    pub fn set(&mut self, a: u16, b: u16, s: LinkState, source: LinkSource) {
        if a == b {
            return;
        }
        self.grow(a.max(b) as usize + 1);
        let n = self.n;
        let source = if s == LinkState::Unknown { LinkSource::Unknown } else { source };
        self.states[a as usize * n + b as usize] = (s, source);
        self.states[b as usize * n + a as usize] = (s, source);
    }

    /// Forgets everything about a slot (its device was closed).
    pub fn forget(&mut self, a: u16) {
        for b in 0..self.n as u16 {
            if b != a {
                self.set(a, b, LinkState::Unknown, LinkSource::Unknown);
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
        l.set(3, 1, p, LinkSource::Platform);
        assert_eq!(l.get(1, 3), p);
        l.set(0, 4, LinkState::Absent, LinkSource::Learned);
        assert_eq!(l.get_with_source(3, 1), (p, LinkSource::Platform), "kept across growth");
        assert_eq!(l.get_with_source(4, 0), (LinkState::Absent, LinkSource::Learned));
        l.forget(3);
        assert_eq!(l.get_with_source(1, 3), (LinkState::Unknown, LinkSource::Unknown));
        assert_eq!(Pagemap::Vram { device: 2, tile: 1 }.device(), Some(2));
    }
}
