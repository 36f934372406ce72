//! Tests of the scenario reader (scenario.rs).
use super::*;
use xesvm::sim::Pattern;

fn p(text: &str) -> Result<Scenario, String> {
    parse(text, Path::new("."))
}

/// Each text is refused with an error on that line that says `needle`.
fn refused_at_lines(cases: &[(String, usize, &str)]) {
    for (text, line, needle) in cases {
        let e = p(text).err().unwrap_or_else(|| panic!("accepted: {needle}"));
        assert!(e.starts_with(&format!("line {line}:")), "{needle}: {e}");
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

const GOOD: &str = r#"
topology = "2dgpu-p2p"
policy = "kernel"

[[buffer]]
name = "a"
size = "8 MiB"

[[phase]]
name = "p"
repeat = 2

[[phase.step]]
do = "cpu"
access = "write"
buffer = "a"

[[phase.step]]
do = "gpu"
device = 1
access = "atomic"
buffer = "a"
offset = "2 MiB"
size = 4194304

[[phase.step]]
do = "alloc_vram"
device = 0
target = "device:0"
buffer = "a"
"#;

#[test]
fn parses_buffers_phases_and_steps() {
    let s = p(GOOD).unwrap();
    assert_eq!(s.policy, Some(PolicyKind::Kernel));
    assert_eq!(s.workload.buffers[0].size, 8 << 20);
    assert_eq!(s.workload.steps.len(), 6);
    let a = s.workload.buffers[0].start;
    assert_eq!(s.workload.steps[1], Step::Launch { device: 1, tile: 0, args: vec![Arg::new(a + (2 << 20), 4 << 20, Access::Atomic)], compute_ns: 0, knows: Knows::Pointer, allocs: vec![Some(0)] });
    assert!(matches!(s.workload.steps[2], Step::Call(Call::AllocVram { device: 0, target: Target::Device { device: 0, tile: 0 }, .. })));
}

/// Every example shipped in examples/scenarios parses and runs under
/// every policy without losing content, and no policy, the oracle
/// included, beats the scenario's bound (optimum.rs).
#[test]
fn every_example_scenario_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") || name.ends_with(".topology.toml") {
            continue;
        }
        let s = parse(&std::fs::read_to_string(&path).unwrap(), &dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let o = crate::optimum::optimum(&s.workload);
        assert!(o.bound_ns > 0, "{name}: a bound of 0 while GPUs work");
        assert!(o.offline_ns.is_none_or(|off| off >= o.bound_ns), "{name}: {o:?}");
        for p in crate::runner::PolicyKind::ALL {
            let r = crate::runner::run(&s.workload, p).unwrap_or_else(|e| panic!("{name} {p:?}: {e}"));
            assert!(r.content_ok, "{name} {p:?}");
            assert_eq!(r.gpu_errors, 0, "{name} {p:?}");
            assert!(r.simulated_ns >= o.bound_ns, "{name} {p:?}: {} ns < bound {} ns", r.simulated_ns, o.bound_ns);
            if name == "fallback.toml" && p == crate::runner::PolicyKind::Xesvm {
                // What it is there to show (README, Logging): a range larger
                // than the VRAM falls back at once, nothing started for it.
                assert_eq!((r.fallbacks, r.retries, r.bytes_to_system), (1, 0, 0), "{r:?}");
            }
        }
        n += 1;
    }
    assert!(n >= 7, "examples found: {n}");
}

#[test]
fn bad_files_name_the_line() {
    let cases = [
        // Step errors name the line of the step's [[phase.step]] header.
        (GOOD.replace("device = 1", "device = 7"), 18, "topology has 2 devices"),
        (GOOD.replace("buffer = \"a\"\noffset", "buffer = \"b\"\noffset"), 18, "unknown buffer"),
        (GOOD.replace("size = 4194304", "size = 9999999999"), 18, "inside"),
        (GOOD.replace("access = \"atomic\"", "access = \"smash\""), 18, "access \"smash\""),
        (GOOD.replace("target = \"device:0\"", "target = \"device:9\""), 26, "has 2 devices"),
        (GOOD.replace("do = \"cpu\"", "do = \"dance\""), 13, "unknown step"),
        (GOOD.replace("policy = \"kernel\"", "policy = \"magic\""), 3, "unknown policy"),
        (GOOD.replace("size = \"8 MiB\"", "size = \"8 parsecs\""), 7, "cannot read size"),
        (GOOD.replace("repeat = 2", "repeat = 2\ncolour = 3"), 12, "unknown field"),
        (GOOD.replace("[[phase]]", "[[phase]"), 9, ""),
        (GOOD.replace("topology = \"2dgpu-p2p\"", "topology = \"nowhere.toml\""), 2, "neither a preset"),
    ];
    refused_at_lines(&cases);
}

const PACKED: &str = r#"
topology = "2dgpu-p2p"
vram = "64 MiB"

[[buffer]]
name = "a"
size = 4000000

[[buffer]]
name = "b"
size = 12000000
after = "a"

[[phase]]
name = "loop"
repeat = 3

[[phase.step]]
do = "gpu"
device = 1
access = "write"
buffer = "a"
[[phase.step.span]]
access = "read"
buffer = "b"
offset = 100
size = 5000

[[phase.step]]
do = "cpu"
access = "read"
buffer = "a"

[[phase.step]]
do = "free"
buffer = "b"

[[phase.step]]
do = "alloc"
buffer = "b"

[[phase.step]]
do = "gpu"
device = 0
access = "write"
buffer = "b"
"#;

/// Sizes in bytes, a buffer packed after another, a launch over two
/// spans widened to pages, free and alloc of the pages a buffer holds
/// alone, VRAM per tile.
#[test]
fn packed_buffers_byte_sizes_and_free_alloc() {
    let s = p(PACKED).unwrap();
    let w = &s.workload;
    assert!(w.topology.devices.iter().all(|d| d.vram_per_tile == 64 << 20));
    let (a, b) = (&w.buffers[0], &w.buffers[1]);
    assert_eq!((a.size, b.size), (4_000_000, 12_000_000));
    assert_eq!(b.start, a.start + 4_000_000, "4000000 is a multiple of 256: back to back");
    assert_eq!(a.pages(), (a.start, 977 * 4096), "4,000,000 bytes lie on 977 pages");
    // The launch: all of a's pages, and b's bytes 100..5100 widened to pages
    // (b starts inside a's last page, so that is the page a shares).
    let lo = (b.start + 100) / 4096 * 4096;
    let hi = (b.start + 5100).next_multiple_of(4096);
    assert_eq!(w.steps[0], Step::Launch { device: 1, tile: 0, args: vec![Arg::new(a.start, 977 * 4096, Access::Write), Arg::new(lo, hi - lo, Access::Read)], compute_ns: 0, knows: Knows::Pointer, allocs: vec![Some(0), Some(1)] });
    // free and alloc cover b's pages but the one it shares with a.
    let own = (a.start + 977 * 4096, (b.start + b.size).next_multiple_of(4096) - (a.start + 977 * 4096));
    assert_eq!(w.steps[2], Step::Free { start: own.0, size: own.1 });
    assert_eq!(w.steps[3], Step::Alloc { start: own.0, size: own.1 });
    assert_eq!(w.steps.len(), 15);
    // Under every policy: content as last written (b's freed pages are
    // gone, a's shared page kept), and no policy beats the bound.
    let o = crate::optimum::optimum(w);
    for pk in crate::runner::PolicyKind::ALL {
        let r = crate::runner::run(w, pk).unwrap_or_else(|e| panic!("{pk:?}: {e}"));
        assert!(r.content_ok, "{pk:?}");
        assert_eq!(r.gpu_errors, 0, "{pk:?}");
        assert!(r.simulated_ns >= o.bound_ns, "{pk:?}: {} < {}", r.simulated_ns, o.bound_ns);
    }
}

/// A runtime's allocation table answers for the exact pointer: an 8-byte
/// buffer packed after a 20 MiB one shares its page, and the extent of a
/// launch that reads only it is its own page, not the big neighbour's 20
/// MiB (the page-widened span overlaps the big one's last page more; the
/// runner handed its whole extent over, and both the prefetch baseline
/// and the library moved 20 MiB for 8 bytes).
#[test]
fn an_extent_is_the_allocation_the_pointer_lies_in() {
    let s = p(r#"
topology = "b60"
knows = "extent"
[[buffer]]
name = "big"
size = 20971620
[[buffer]]
name = "small"
size = 8
after = "big"
[[phase]]
name = "p"
[[phase.step]]
do = "cpu"
access = "write"
buffer = "big"
[[phase.step]]
do = "gpu"
device = 0
access = "read"
buffer = "small"
"#)
    .unwrap();
    let r = crate::runner::run(&s.workload, crate::runner::PolicyKind::Prefetch).unwrap();
    assert!(r.content_ok);
    assert!(r.bytes_to_vram <= 2 << 20, "the small buffer's page (and its 2 MiB range at most), not 20 MiB: {}", r.bytes_to_vram);
}

/// A freed buffer's life ends: its data need not move back, so the
/// bound of "GPU writes, free, alloc, GPU writes" is two births, not a
/// birth and a move.
#[test]
fn the_bound_starts_a_new_life_after_a_free() {
    let one = PACKED.replace("repeat = 3", "repeat = 1");
    let w = p(&one).unwrap().workload;
    let freed = crate::optimum::optimum(&w).bound_ns;
    let kept = p(&one.replace("[[phase.step]]\ndo = \"free\"\nbuffer = \"b\"\n\n[[phase.step]]\ndo = \"alloc\"\nbuffer = \"b\"\n\n", "")).unwrap().workload;
    assert_eq!(kept.steps.len(), w.steps.len() - 2);
    assert!(freed <= crate::optimum::optimum(&kept).bound_ns);
}

#[test]
fn bad_packing_and_lifetimes_name_the_line() {
    let touch_freed = PACKED.replace("[[phase.step]]\ndo = \"alloc\"\nbuffer = \"b\"\n", "");
    let cases = [
        (PACKED.replace("after = \"a\"", "after = \"c\""), 9, "`after` must name the buffer defined just before"),
        (PACKED.replace("offset = 100", "offset = 11999000"), 18, "inside \"b\""),
        (touch_freed.clone(), 39, "touches \"b\" while it is freed"),
        (PACKED.replace("do = \"alloc\"", "do = \"free\""), 38, "already freed"),
        (PACKED.replace("do = \"free\"", "do = \"alloc\""), 34, "not freed"),
        (PACKED.replace("do = \"free\"\nbuffer = \"b\"", "do = \"free\"\nbuffer = \"b\"\nsize = 4096"), 34, "takes only `buffer`"),
        (
            PACKED.replace("do = \"cpu\"\naccess = \"read\"\nbuffer = \"a\"", "do = \"cpu\"\naccess = \"read\"\nbuffer = \"a\"\n[[phase.step.span]]\naccess = \"read\"\nbuffer = \"b\""),
            29,
            "only a gpu step",
        ),
        (PACKED.replace("vram = \"64 MiB\"", "vram = 1000"), 3, "at least 16 MiB"),
        (PACKED.replace("do = \"free\"", "do = \"release\""), 34, "unknown step \"release\""),
    ];
    refused_at_lines(&cases);
    // A buffer lying on no page of its own cannot be freed.
    let tiny = PACKED.replace("size = 12000000", "size = 100").replace("size = 5000", "size = 0");
    let e = p(&tiny.replace("offset = 100\nsize = 0\n", "")).err().unwrap();
    assert!(e.starts_with("line 32:") && e.contains("shares every page"), "{e}");
}

const SHAPED: &str = r#"
topology = "dgpu"
knows = "extent"

[[buffer]]
name = "a"
size = 3000000

[[phase]]

[[phase.step]]
do = "gpu"
device = 0
access = "read"
buffer = "a"
passes = 4
pattern = "scattered"
touched = 0.25
compute = "1.5 ms"
knows = "span"

[[phase.step.span]]
access = "write"
buffer = "a"
passes = 2

[[phase.step]]
do = "gpu"
device = 0
access = "read"
buffer = "a"
"#;

/// Passes, pattern and compute reach the launch's arguments; `knows`
/// defaults to the scenario's; compute beyond the memory time is charged
/// as compute, and the bound sees it.
#[test]
fn launch_shape_fields_reach_the_launch() {
    let w = p(SHAPED).unwrap().workload;
    let Step::Launch { args, compute_ns, knows, .. } = &w.steps[0] else { panic!("{:?}", w.steps[0]) };
    assert_eq!((*compute_ns, *knows), (1_500_000, Knows::Span));
    assert_eq!((args[0].passes, args[0].pattern), (4, Pattern::Scattered { permille: 250 }));
    assert_eq!((args[1].passes, args[1].pattern, args[1].access), (2, Pattern::Streaming, Access::Write));
    let Step::Launch { args, compute_ns, knows, .. } = &w.steps[1] else { panic!() };
    assert_eq!((*compute_ns, *knows, args[0].passes), (0, Knows::Extent, 1));
    let o = crate::optimum::optimum(&w);
    assert!(o.bound_ns >= 1_500_000, "the first launch computes 1.5 ms: {}", o.bound_ns);
    for pk in crate::runner::PolicyKind::ALL {
        let r = crate::runner::run(&w, pk).unwrap();
        assert!(r.compute_ns > 0 && r.local_ns > 0, "{pk:?}: {r:?}");
        assert!(r.simulated_ns >= o.bound_ns, "{pk:?}");
    }
}

#[test]
fn bad_launch_shapes_name_the_line() {
    let cases = [
        (SHAPED.replace("passes = 4", "passes = 0"), 11, "passes must be at least 1"),
        (SHAPED.replace("touched = 0.25", "touched = 1.5"), 11, "a fraction in (0, 1]"),
        (SHAPED.replace("touched = 0.25\n", ""), 11, "needs `touched`"),
        (SHAPED.replace("pattern = \"scattered\"", "pattern = \"random\""), 11, "streaming or scattered"),
        (SHAPED.replace("compute = \"1.5 ms\"", "compute = \"1.5 weeks\""), 11, "cannot read duration"),
        (SHAPED.replace("knows = \"span\"", "knows = \"all\""), 11, "pointer, extent or span"),
        (SHAPED.replace("knows = \"extent\"", "knows = \"all\""), 3, "pointer, extent or span"),
        (format!("{SHAPED}\n[[phase.step]]\ndo = \"cpu\"\naccess = \"read\"\nbuffer = \"a\"\npasses = 2\n"), 33, "only a gpu step has `passes`"),
    ];
    refused_at_lines(&cases);
}
