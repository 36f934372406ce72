//! Unit tests of topologies and topology files (`config.rs`).

use super::*;
use crate::sim::classes::Class;
use crate::sim::topology_file::parse_size;

#[test]
fn every_preset_is_valid() {
    for (name, _) in PRESETS {
        let t = Topology::preset(name).unwrap();
        t.validate().unwrap();
    }
    let max = Topology::preset("max-node").unwrap();
    assert_eq!((max.devices.len(), max.devices[0].tiles, max.links.len()), (6, 2, 15));
    // Upstream xe has no Xe Link path for SVM: PCIe P2P, 0.8 x 50 GB/s, no atomics.
    let l = max.link(5, 2).unwrap();
    assert_eq!((l.kind, l.atomics, l.bandwidth), (LinkKind::PcieP2p, false, 0.8 * 50e9));
    assert!(Topology::preset("2dgpu-nolink").unwrap().link(0, 1).is_none());
    assert!(!Topology::preset("igpu").unwrap().devices[0].has_vram());
    assert!(Topology::preset("nope").is_none());
}

#[test]
fn parses_a_full_file() {
    let t = Topology::parse(
        r#"
        kernel = "6.18"   # old behaviour
        system_memory = "64 GiB"
        [[device]]
        name = "a"
        tiles = 2
        vram_per_tile = "8 GiB"
        [[device]]
        name = "b"
        vram_per_tile = 4_294_967_296
        [[link]]
        devices = [0, 1]
        kind = "fabric"
        atomics = true
        [costs]
        fault_service_us = 25.5
        h2d_gbps = 12
        d2h_gbps = 12
        "#,
    )
    .unwrap();
    assert_eq!(t.kernel, KernelVersion::V6_18);
    assert_eq!(t.system_memory, 64 * GIB);
    assert_eq!((t.devices[0].tiles, t.devices[0].vram_per_tile), (2, 8 * GIB));
    assert_eq!(t.devices[1].vram_per_tile, 4 * GIB);
    // No future_fabric: the "fabric" link is PCIe P2P at 0.8 x the slower
    // host link, which [costs] h2d_gbps set for every device.
    assert_eq!((t.links[0].kind, t.links[0].atomics), (LinkKind::PcieP2p, false));
    assert_eq!(t.links[0].bandwidth, 0.8 * 12e9);
    assert_eq!(t.costs.fault_service_ns, 25_500);
    assert!(t.devices.iter().all(|d| d.host_bandwidth == 12e9));
    // 6.18: no device folios.
    assert!(!t.costs.device_huge_pages);
}

/// The figures of each class and the presets made of them (docs/cost-model.md,
/// "Device classes").
#[test]
fn presets_are_instances_of_classes() {
    let one = |name: &str| Topology::preset(name).unwrap().devices[0].clone();
    let b580 = one("b580");
    assert_eq!((b580.tiles, b580.vram_per_tile, b580.local_bandwidth, b580.host_bandwidth), (1, 12 * GIB, 456e9, 13e9));
    assert_eq!(one("dgpu"), b580);
    assert_eq!(Topology::preset("2dgpu-nolink").unwrap().devices[1].host_bandwidth, 13e9);
    let b60 = one("b60");
    assert_eq!((b60.tiles, b60.vram_per_tile, b60.local_bandwidth, b60.host_bandwidth), (1, 24 * GIB, 456e9, 26e9));
    for (name, n) in [("2dgpu-p2p", 2), ("4dgpu-p2p", 4)] {
        let t = Topology::preset(name).unwrap();
        assert_eq!((t.devices.len(), t.links.len()), (n, n * (n - 1) / 2));
        assert!(t.devices.iter().all(|d| *d == Class::B60.device(&d.name)));
        assert_eq!(t.link(0, 1).unwrap().bandwidth, 0.8 * 26e9);
    }
    let max = one("max1550");
    assert_eq!((max.tiles, max.vram_per_tile, max.local_bandwidth, max.host_bandwidth), (2, 64 * GIB, 1.6e12, 50e9));
    assert_eq!((max.device_id, max.needs_scratch), (0x0bd5, false));
    assert_eq!(max.clear_bandwidth(), 0.8e12);
    let igpu = one("igpu");
    assert_eq!((igpu.local_bandwidth, igpu.host_bandwidth), (100e9, 100e9));
}

#[test]
fn fabric_only_with_the_future_setting() {
    let text = |future: bool| {
        format!(
            "future_fabric = {future}\n[[device]]\nclass = \"max1550\"\n[[device]]\nclass = \"max1550\"\nhost_gbps = 40\n\
             [[link]]\ndevices = [0, 1]\nkind = \"fabric\"\natomics = true\n"
        )
    };
    let t = Topology::parse(&text(true)).unwrap();
    let l = t.link(0, 1).unwrap();
    assert_eq!((l.kind, l.atomics, l.bandwidth), (LinkKind::Fabric, true, 22e9));
    let t = Topology::parse(&text(false)).unwrap();
    let l = t.link(0, 1).unwrap();
    assert_eq!((l.kind, l.atomics, l.bandwidth), (LinkKind::PcieP2p, false, 0.8 * 40e9));
    assert_eq!((t.devices[0].host_bandwidth, t.devices[1].host_bandwidth), (50e9, 40e9));
    assert_eq!(t.devices[0], Class::Max1550.device("gpu0"));
}

/// Device folios follow the kernel release unless the file sets them.
#[test]
fn device_folios_follow_the_kernel() {
    let parse = |extra: &str| Topology::parse(&format!("{extra}\n[[device]]\n")).unwrap().costs.device_huge_pages;
    assert!(!parse("kernel = \"6.18\""));
    assert!(!parse("kernel = \"7.0\""));
    assert!(parse("kernel = \"7.1\""));
    assert!(parse("kernel = \"7.0\"\n[costs]\ndevice_huge_pages = true"));
    let mut t = Topology::preset("2dgpu-p2p").unwrap();
    assert!(!t.costs.device_huge_pages);
    t.set_kernel(KernelVersion::V7_1);
    assert!(t.costs.device_huge_pages);
    t.huge_pages_override = Some(false);
    t.set_kernel(KernelVersion::V7_1);
    assert!(!t.costs.device_huge_pages);
}

#[test]
fn errors_name_line_and_field() {
    let cases: &[(&str, usize, &str)] = &[
        ("[[device]]\ntiles = 3", 2, "device.tiles"),
        ("[[device]]\ntiles = \"two\"", 2, "expected an integer"),
        ("[[device]]\nvram_per_tile = \"16 GB\"", 2, "cannot read size"),
        ("kernel = \"5.4\"", 1, "unknown version"),
        ("[[device]]\ncolour = 1", 2, "unknown field `device.colour`"),
        ("[[device]]\n[[link]]\ndevices = [0]", 3, "two device indices"),
        ("[[device]]\n[[link]]\ndevices = [0, 4]", 2, "distinct existing devices"),
        ("[gpu]", 1, "unknown table"),
        // Syntax errors are toml_edit's, with their line.
        ("[[device]]\nname = \"x", 2, "invalid basic string"),
        ("just words", 1, "expected `.`, `=`"),
        // One toml_edit gives no words for: still a message.
        ("garbage =", 1, "a key without a value"),
        ("[[device]]\nname = 2025-01-01", 2, "cannot read a date"),
        // A [device] table where [[device]] belongs: its header is at fault.
        ("[device]\nname = \"x\"", 1, "[[device]]"),
        ("[[costs]]\nh2d_gbps = 1", 1, "one table: [costs]"),
        ("[[device]]\n[device.x]\ny = 1", 2, "unexpected table `device.x`"),
        ("", 0, "at least one [[device]]"),
        ("[[device]]\n[costs]\nh2d_gbps = -1", 3, "costs.h2d_gbps"),
        ("[[device]]\n[costs]\nh2d_gbps = 46\nd2h_gbps = 15", 4, "one copy engine"),
        ("[[device]]\n[costs]\np2p_gbps = 20", 3, "link.bandwidth_gbps"),
        ("[[device]]\nclass = \"h100\"", 2, "unknown class"),
        ("[[device]]\nhost_gbps = 0", 2, "device.host_gbps"),
    ];
    for (text, line, needle) in cases {
        let e = Topology::parse(text).unwrap_err();
        assert_eq!(e.line, *line, "{text:?} -> {e}");
        assert!(e.message.contains(needle), "{text:?} -> {e}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("16 GiB"), Some(16 * GIB));
    assert_eq!(parse_size("512MiB"), Some(512 * MIB));
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("3 parsecs"), None);
    assert_eq!(parse_size("99999999999 TiB"), None);
}

/// docs/cost-model.md, "Reference points": one 2 MiB GPU fault end to end is
/// 132 us with device folios and 966 us without, measured on Battlemage
/// with a fast PCIe link; the defaults on the fastest Battlemage class
/// (B60, PCIe 5.0 x8) must land within 25 % of both.
#[test]
fn cost_model_reference_points() {
    let mut c = Costs::default();
    let host = Class::B60.device("g").host_bandwidth;
    c.device_huge_pages = true;
    let fault = |c: &Costs| c.fault_service_ns + c.copy_ns(2 * MIB, host);
    let with = fault(&c) as f64;
    assert!((with - 132_000.0).abs() / 132_000.0 <= 0.25, "{with}");
    c.device_huge_pages = false;
    let without = fault(&c) as f64;
    assert!((without - 966_000.0).abs() / 966_000.0 <= 0.25, "{without}");
}
