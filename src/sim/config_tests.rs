//! Unit tests of topologies and topology files (`config.rs`).

use super::*;
use crate::sim::topology_file::parse_size;

#[test]
fn every_preset_is_valid() {
    for (name, _) in PRESETS {
        let t = Topology::preset(name).unwrap();
        t.validate().unwrap();
    }
    let max = Topology::preset("max-node").unwrap();
    assert_eq!((max.devices.len(), max.devices[0].tiles, max.links.len()), (6, 2, 15));
    assert!(max.link(5, 2).unwrap().atomics);
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
        "#,
    )
    .unwrap();
    assert_eq!(t.kernel, KernelVersion::V6_18);
    assert_eq!(t.system_memory, 64 * GIB);
    assert_eq!((t.devices[0].tiles, t.devices[0].vram_per_tile), (2, 8 * GIB));
    assert_eq!(t.devices[1].vram_per_tile, 4 * GIB);
    assert_eq!(t.links[0].kind, LinkKind::Fabric);
    assert_eq!(t.links[0].bandwidth, 22e9);
    assert_eq!(t.costs.fault_service_ns, 25_500);
    assert_eq!(t.costs.h2d_bandwidth, 12e9);
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
        ("[[device]]\nname = 2025-01-01", 2, "cannot read a date"),
        // A [device] table where [[device]] belongs: its header is at fault.
        ("[device]\nname = \"x\"", 1, "[[device]]"),
        ("[[costs]]\nh2d_gbps = 1", 1, "one table: [costs]"),
        ("[[device]]\n[device.x]\ny = 1", 2, "unexpected table `device.x`"),
        ("", 0, "at least one [[device]]"),
        ("[[device]]\n[costs]\nh2d_gbps = -1", 3, "costs.h2d_gbps"),
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
/// 132 us with device folios and 966 us without; the defaults must land
/// within 25 % of both.
#[test]
fn cost_model_reference_points() {
    let mut c = Costs::default();
    let fault = |c: &Costs| c.fault_service_ns + c.copy_ns(2 * MIB, c.h2d_bandwidth);
    let with = fault(&c) as f64;
    assert!((with - 132_000.0).abs() / 132_000.0 <= 0.25, "{with}");
    c.device_huge_pages = false;
    let without = fault(&c) as f64;
    assert!((without - 966_000.0).abs() / 966_000.0 <= 0.25, "{without}");
}
