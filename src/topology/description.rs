//! A topology description a runtime gives a kernel context (the context
//! config's `topology_file`, or `XESVM_TOPOLOGY=FILE`): the links between
//! devices that sysfs does not show (Xe Link fabrics, a switch the PCI
//! tree hides), one per line, devices named by PCI address:
//!
//! ```text
//! # comment
//! link 0000:03:00.0 0000:83:00.0 kind=fabric bandwidth_gbps=22 atomics=false
//! link 0000:03:00.0 0000:04:00.0 kind=p2p
//! link 0000:03:00.0 0000:05:00.0 kind=none
//! ```
//!
//! `kind` is `p2p` (default), `fabric` or `none`; `bandwidth_gbps` defaults
//! by kind (20 for p2p, 22 for fabric, docs/cost-model.md); `atomics`
//! defaults to false. A described link wins over what sysfs says; ENOLINK
//! from the kernel still wins over both. Errors name the line.

use super::{Link, LinkKind, LinkState};
use crate::driver::DeviceId;

/// One described link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DescribedLink {
    /// One device.
    pub a: DeviceId,
    /// The other.
    pub b: DeviceId,
    /// What the description says of it.
    pub state: LinkState,
}

/// Parses a description; an error names the 1-based line.
pub fn parse(text: &str) -> Result<Vec<DescribedLink>, String> {
    let mut out: Vec<DescribedLink> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("link") {
            return Err(format!("line {n}: expected `link PCI-ADDRESS PCI-ADDRESS [kind=...] [bandwidth_gbps=...] [atomics=...]`"));
        }
        let mut device = |what: &str| -> Result<DeviceId, String> {
            let w = words.next().ok_or_else(|| format!("line {n}: the {what} device's PCI address is missing"))?;
            DeviceId::parse(w).ok_or_else(|| format!("line {n}: `{w}` is not a PCI address (DDDD:BB:DD.F)"))
        };
        let (a, b) = (device("first")?, device("second")?);
        if a == b {
            return Err(format!("line {n}: a link needs two distinct devices"));
        }
        let (mut kind, mut bandwidth, mut atomics) = (Some(LinkKind::PcieP2p), None, false);
        for w in words {
            let (k, v) = w.split_once('=').ok_or_else(|| format!("line {n}: `{w}` is not key=value"))?;
            match k {
                "kind" => {
                    kind = match v {
                        "p2p" | "pcie" => Some(LinkKind::PcieP2p),
                        "fabric" | "xelink" => Some(LinkKind::Fabric),
                        "none" => None,
                        _ => return Err(format!("line {n}: kind `{v}` is not p2p, fabric or none")),
                    }
                }
                "bandwidth_gbps" => {
                    let g: f64 = v.parse().map_err(|_| format!("line {n}: bandwidth_gbps `{v}` is not a number"))?;
                    if !(g > 0.0 && g.is_finite()) {
                        return Err(format!("line {n}: bandwidth_gbps must be positive"));
                    }
                    bandwidth = Some(g * 1e9);
                }
                "atomics" => {
                    atomics = match v {
                        "true" | "yes" => true,
                        "false" | "no" => false,
                        _ => return Err(format!("line {n}: atomics `{v}` is not true or false")),
                    }
                }
                _ => return Err(format!("line {n}: unknown key `{k}` (kind, bandwidth_gbps, atomics)")),
            }
        }
        let state = match kind {
            None => LinkState::Absent,
            Some(kind) => LinkState::Present(Link {
                kind,
                atomics,
                bandwidth: bandwidth.unwrap_or(if kind == LinkKind::Fabric { 22e9 } else { 20e9 }),
            }),
        };
        if out.iter().any(|l| (l.a, l.b) == (a, b) || (l.a, l.b) == (b, a)) {
            return Err(format!("line {n}: the link {a} {b} is described twice"));
        }
        out.push(DescribedLink { a, b, state });
    }
    Ok(out)
}

/// Reads and parses a description file; an error names the file (and the line).
pub fn read(path: &std::path::Path) -> Result<Vec<DescribedLink>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("topology description {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("topology description {}: {e}", path.display()))
}

/// What a description says of the link between two devices, if anything.
pub fn lookup(links: &[DescribedLink], a: DeviceId, b: DeviceId) -> Option<LinkState> {
    links.iter().find(|l| (l.a, l.b) == (a, b) || (l.a, l.b) == (b, a)).map(|l| l.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_with_kind_bandwidth_and_atomics() {
        let d = parse("# two cards\nlink 0000:03:00.0 0000:83:00.0 kind=fabric atomics=true\nlink 0000:03:00.0 0000:04:00.0\nlink 0000:04:00.0 0000:83:00.0 kind=none\n").unwrap();
        let id = |s| DeviceId::parse(s).unwrap();
        assert_eq!(lookup(&d, id("0000:83:00.0"), id("0000:03:00.0")), Some(LinkState::Present(Link { kind: LinkKind::Fabric, atomics: true, bandwidth: 22e9 })));
        assert_eq!(lookup(&d, id("0000:03:00.0"), id("0000:04:00.0")), Some(LinkState::Present(Link { kind: LinkKind::PcieP2p, atomics: false, bandwidth: 20e9 })));
        assert_eq!(lookup(&d, id("0000:04:00.0"), id("0000:83:00.0")), Some(LinkState::Absent));
        assert_eq!(lookup(&d, id("0000:04:00.0"), id("0000:05:00.0")), None);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            ("\nlinks 0000:03:00.0 0000:04:00.0", "line 2: expected"),
            ("link 0000:03:00.0", "line 1: the second device"),
            ("link 0000:03:00.0 3:0.0", "line 1: `3:0.0` is not a PCI address"),
            ("link 0000:03:00.0 0000:03:00.0", "two distinct"),
            ("link 0000:03:00.0 0000:04:00.0 kind=copper", "kind `copper`"),
            ("link 0000:03:00.0 0000:04:00.0 bandwidth_gbps=-1", "positive"),
            ("link 0000:03:00.0 0000:04:00.0 speed=3", "unknown key `speed`"),
            ("link 0000:03:00.0 0000:04:00.0\nlink 0000:04:00.0 0000:03:00.0", "line 2: the link"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
