//! Scenario files for `xesvm run`: a topology, buffers, and phases of steps
//! (GPU accesses, CPU accesses, runtime calls), in TOML.
//!
//! ```toml
//! topology = "2dgpu-p2p"        # a preset, or a topology file (relative to this file)
//! policy = "xesvm"              # optional default: kernel | prefetch | xesvm
//! vram = "96 MiB"               # optional: VRAM per tile of every device with VRAM
//!
//! [[buffer]]
//! name = "a"
//! size = "64 MiB"               # bytes (any number: 4000000), or a size with a unit
//!
//! [[buffer]]
//! name = "b"
//! size = 12000000
//! after = "a"                   # optional: packed right after the previous buffer
//!                               # (its end rounded up to 256 bytes), as an allocator packs
//!
//! [[phase]]
//! name = "compute"
//! repeat = 4                    # optional, default 1
//!
//! [[phase.step]]
//! do = "gpu"                    # gpu | cpu | alloc_vram | evict | preferred | atomic_mode | free | alloc
//! device = 0                    # gpu, alloc_vram
//! tile = 0                      # optional
//! access = "write"              # gpu: read | write | atomic; cpu: read | write
//! buffer = "a"
//! offset = "0"                  # optional, default 0 (bytes)
//! size = "32 MiB"               # optional, default: to the end of the buffer
//! target = "device:1"           # alloc_vram, preferred: system | device:N | device:N:T
//! mode = "device"               # atomic_mode: undefined | device | global | cpu
//!
//! [[phase.step.span]]           # gpu: more spans the same launch touches
//! access = "read"
//! buffer = "b"                  # offset, size optional as above
//! ```
//!
//! Offsets and sizes are bytes, anything inside the buffer; an access
//! covers the pages its bytes lie on, as a runtime widens it. `free` unmaps
//! the pages the buffer holds alone (munmap: contents gone, no runtime is
//! told), `alloc` maps them again at the same address; a freed buffer
//! cannot be touched until then.
//!
//! Errors name the line: TOML syntax and unknown fields from the parser,
//! unknown buffers, devices, targets and out-of-range spans from the checks
//! below.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use xesvm::sim::parse_size;
use xesvm::sim::{Access, Topology};
use xesvm::uapi::*;

use crate::runner::PolicyKind;
use crate::workload::{Call, Step, Target, Workload, PAGE};

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct BufferDef {
    name: String,
    size: Spanned<Size>,
    after: Option<String>,
}

/// A further span of a gpu step's launch.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SpanDef {
    access: String,
    buffer: String,
    offset: Option<Size>,
    size: Option<Size>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct StepDef {
    #[serde(rename = "do")]
    action: String,
    device: Option<u32>,
    tile: Option<u16>,
    access: Option<String>,
    buffer: Option<String>,
    offset: Option<Size>,
    size: Option<Size>,
    target: Option<String>,
    mode: Option<String>,
    #[serde(default, rename = "span")]
    spans: Vec<SpanDef>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct PhaseDef {
    name: Option<String>,
    repeat: Option<u32>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<StepDef>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ScenarioDef {
    topology: Spanned<String>,
    policy: Option<Spanned<String>>,
    vram: Option<Spanned<Size>>,
    #[serde(default, rename = "buffer")]
    buffers: Vec<Spanned<BufferDef>>,
    #[serde(default, rename = "phase")]
    phases: Vec<PhaseDef>,
}

/// A parsed scenario.
pub struct Scenario {
    pub workload: Workload,
    pub policy: Option<PolicyKind>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

fn size_of(s: &Size) -> Result<u64, String> {
    match s {
        Size::Bytes(b) => Ok(*b),
        Size::Text(t) => parse_size(t).ok_or_else(|| format!("cannot read size \"{t}\" (e.g. \"64 MiB\")")),
    }
}

fn target_of(s: &str, devices: u32) -> Result<Target, String> {
    if s == "system" {
        return Ok(Target::System);
    }
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("target \"{s}\": expected \"system\", \"device:N\" or \"device:N:TILE\"");
    if parts.len() < 2 || parts.len() > 3 || parts[0] != "device" {
        return Err(bad());
    }
    let device: u32 = parts[1].parse().map_err(|_| bad())?;
    let tile: u16 = parts.get(2).map_or(Ok(0), |t| t.parse()).map_err(|_| bad())?;
    if device >= devices {
        return Err(format!("target \"{s}\": the topology has {devices} devices"));
    }
    Ok(Target::Device { device, tile })
}

/// A step of a phase, its line, and the buffer it frees (true) or allocates.
type PhaseStep = (Step, usize, Option<(usize, bool)>);

/// Checks that a step touches no freed buffer's own pages, frees only a
/// live buffer and allocates only a freed one; updates `freed`.
fn check_live(w: &Workload, freed: &mut Vec<bool>, step: &Step, line: usize, life: Option<(usize, bool)>) -> Result<(), String> {
    freed.resize(w.buffers.len(), false);
    if let Some((i, free)) = life {
        let name = &w.buffers[i].name;
        if freed[i] == free {
            return Err(format!("line {line}: {} step: \"{name}\" is {} (a phase that repeats runs its steps again)", if free { "free" } else { "alloc" }, if free { "already freed" } else { "not freed" }));
        }
        freed[i] = free;
        return Ok(());
    }
    let spans: Vec<(u64, u64)> = match step {
        Step::Launch { accesses, .. } => accesses.iter().map(|a| (a.0, a.1)).collect(),
        Step::Cpu { start, size, .. } => vec![(*start, *size)],
        Step::Call(Call::AllocVram { start, size, .. } | Call::Evict { start, size } | Call::Preferred { start, size, .. } | Call::AtomicMode { start, size, .. }) => vec![(*start, *size)],
        Step::Free { .. } | Step::Alloc { .. } => Vec::new(),
    };
    for (i, _) in freed.iter().enumerate().filter(|(_, &f)| f) {
        let Some((lo, n)) = w.own_pages(i) else { continue };
        if spans.iter().any(|&(s, m)| s < lo + n && s + m > lo) {
            return Err(format!("line {line}: a step touches \"{}\" while it is freed (an `alloc` step allocates it again)", w.buffers[i].name));
        }
    }
    Ok(())
}

/// Parses a scenario. `base` resolves a relative topology file path.
pub fn parse(text: &str, base: &Path) -> Result<Scenario, String> {
    let def: ScenarioDef = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        format!("line {line}: {}", e.message())
    })?;
    let at = |span: std::ops::Range<usize>| line_of(text, span.start);
    let topo_name = def.topology.get_ref();
    let topology = match Topology::preset(topo_name) {
        Some(t) => t,
        None => {
            let path = base.join(topo_name);
            let body = std::fs::read_to_string(&path)
                .map_err(|e| format!("line {}: topology \"{topo_name}\" is neither a preset nor a readable file ({e})", at(def.topology.span())))?;
            Topology::parse(&body).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    let policy = match &def.policy {
        None => None,
        Some(p) => Some(match p.get_ref().as_str() {
            "kernel" => PolicyKind::Kernel,
            "prefetch" => PolicyKind::Prefetch,
            "xesvm" => PolicyKind::Xesvm,
            "xesvm-privileged" => PolicyKind::XesvmPrivileged,
            "oracle" => PolicyKind::Oracle,
            other => return Err(format!("line {}: unknown policy \"{other}\" (kernel, prefetch, xesvm, xesvm-privileged or oracle)", at(p.span()))),
        }),
    };
    let mut freed: Vec<bool> = Vec::new();
    let mut topology = topology;
    if let Some(v) = &def.vram {
        let bytes = size_of(v.get_ref()).map_err(|e| format!("line {}: vram: {e}", at(v.span())))?;
        if bytes < 16 << 20 || bytes % 4096 != 0 {
            return Err(format!("line {}: vram: {bytes} bytes per tile (at least 16 MiB, whole pages)", at(v.span())));
        }
        for d in topology.devices.iter_mut().filter(|d| d.has_vram()) {
            d.vram_per_tile = bytes;
        }
    }
    let devices = topology.devices.len() as u32;
    let mut w = Workload::new("scenario", topology);
    for b in &def.buffers {
        let size = size_of(b.get_ref().size.get_ref()).map_err(|e| format!("line {}: buffer size: {e}", at(b.get_ref().size.span())))?;
        if size == 0 {
            return Err(format!("line {}: buffer \"{}\" has size 0", at(b.span()), b.get_ref().name));
        }
        if w.buffers.iter().any(|x| x.name == b.get_ref().name) {
            return Err(format!("line {}: buffer \"{}\" is defined twice", at(b.span()), b.get_ref().name));
        }
        match &b.get_ref().after {
            None => w.buffer(&b.get_ref().name, size),
            Some(prev) if w.buffers.last().is_some_and(|l| &l.name == prev) => w.packed_buffer(&b.get_ref().name, size),
            Some(prev) => {
                return Err(format!(
                    "line {}: buffer \"{}\": `after` must name the buffer defined just before it, not \"{prev}\"",
                    at(b.span()),
                    b.get_ref().name
                ))
            }
        };
    }
    for phase in &def.phases {
        // (step, its line, the buffer it frees or allocates)
        let mut steps: Vec<PhaseStep> = Vec::new();
        for s in &phase.steps {
            let line = at(s.span());
            let d = s.get_ref();
            let err = |m: String| format!("line {line}: {} step: {m}", d.action);
            let need = |v: Option<&String>, what: &str| v.cloned().ok_or_else(|| err(format!("`{what}` is missing")));
            let buffer = |name: &str| w.buffers.iter().position(|b| b.name == name).ok_or_else(|| err(format!("unknown buffer \"{name}\"")));
            // A span of bytes in a buffer, widened to the pages it lies on.
            let bytes = |name: &str, offset: Option<&Size>, size: Option<&Size>| -> Result<(u64, u64), String> {
                let b = &w.buffers[buffer(name)?];
                let off = offset.map(size_of).transpose().map_err(&err)?.unwrap_or(0);
                let size = size.map(size_of).transpose().map_err(&err)?.unwrap_or(b.size.saturating_sub(off));
                if size == 0 || off.checked_add(size).is_none_or(|e| e > b.size) {
                    return Err(err(format!("offset {off} + size {size} must be non-zero and inside \"{name}\" ({} bytes)", b.size)));
                }
                let lo = (b.start + off) / PAGE * PAGE;
                Ok((lo, (b.start + off + size).next_multiple_of(PAGE) - lo))
            };
            let span = |d: &StepDef| -> Result<(u64, u64), String> { bytes(&need(d.buffer.as_ref(), "buffer")?, d.offset.as_ref(), d.size.as_ref()) };
            let device = |d: &StepDef| -> Result<u32, String> {
                let dev = d.device.ok_or_else(|| err("`device` is missing".into()))?;
                if dev >= devices {
                    return Err(err(format!("device {dev}: the topology has {devices} devices")));
                }
                Ok(dev)
            };
            if !d.spans.is_empty() && d.action != "gpu" {
                return Err(err("only a gpu step has further spans".into()));
            }
            let gpu_access = |a: &str| match a {
                "read" => Ok(Access::Read),
                "write" => Ok(Access::Write),
                "atomic" => Ok(Access::Atomic),
                a => Err(err(format!("access \"{a}\" (read, write or atomic)"))),
            };
            let mut life = None;
            let step = match d.action.as_str() {
                "gpu" => {
                    let access = gpu_access(&need(d.access.as_ref(), "access")?)?;
                    let dev = device(d)?;
                    let tile = d.tile.unwrap_or(0);
                    if tile >= w.topology.devices[dev as usize].tiles {
                        return Err(err(format!("device {dev} has no tile {tile}")));
                    }
                    let (start, size) = span(d)?;
                    let mut accesses = vec![(start, size, access)];
                    for x in &d.spans {
                        let (start, size) = bytes(&x.buffer, x.offset.as_ref(), x.size.as_ref())?;
                        accesses.push((start, size, gpu_access(&x.access)?));
                    }
                    Step::Launch { device: dev, tile, accesses }
                }
                "cpu" => {
                    let write = match need(d.access.as_ref(), "access")?.as_str() {
                        "read" => false,
                        "write" => true,
                        a => return Err(err(format!("access \"{a}\" (read or write)"))),
                    };
                    let (start, size) = span(d)?;
                    Step::Cpu { start, size, write }
                }
                "alloc_vram" => {
                    let dev = device(d)?;
                    let target = target_of(&need(d.target.as_ref(), "target")?, devices).map_err(&err)?;
                    let (start, size) = span(d)?;
                    Step::Call(Call::AllocVram { device: dev, start, size, target })
                }
                "evict" => {
                    let (start, size) = span(d)?;
                    Step::Call(Call::Evict { start, size })
                }
                "preferred" => {
                    let target = target_of(&need(d.target.as_ref(), "target")?, devices).map_err(&err)?;
                    let (start, size) = span(d)?;
                    Step::Call(Call::Preferred { start, size, target })
                }
                "atomic_mode" => {
                    let mode = match need(d.mode.as_ref(), "mode")?.as_str() {
                        "undefined" => DRM_XE_ATOMIC_UNDEFINED,
                        "device" => DRM_XE_ATOMIC_DEVICE,
                        "global" => DRM_XE_ATOMIC_GLOBAL,
                        "cpu" => DRM_XE_ATOMIC_CPU,
                        m => return Err(err(format!("mode \"{m}\" (undefined, device, global or cpu)"))),
                    };
                    let (start, size) = span(d)?;
                    Step::Call(Call::AtomicMode { start, size, mode })
                }
                "free" | "alloc" => {
                    let name = need(d.buffer.as_ref(), "buffer")?;
                    if d.offset.is_some() || d.size.is_some() || d.device.is_some() || d.access.is_some() {
                        return Err(err("takes only `buffer` (the whole buffer is freed or allocated)".into()));
                    }
                    let i = buffer(&name)?;
                    let (start, size) = w.own_pages(i).ok_or_else(|| err(format!("\"{name}\" shares every page it lies on with other buffers: nothing to unmap")))?;
                    let free = d.action == "free";
                    life = Some((i, free));
                    if free {
                        Step::Free { start, size }
                    } else {
                        Step::Alloc { start, size }
                    }
                }
                other => {
                    return Err(format!(
                        "line {line}: unknown step \"{other}\" (gpu, cpu, alloc_vram, evict, preferred, atomic_mode, free or alloc)"
                    ))
                }
            };
            steps.push((step, line, life));
        }
        let repeat = phase.repeat.unwrap_or(1);
        if repeat == 0 {
            return Err(format!("phase \"{}\": repeat must be at least 1", phase.name.as_deref().unwrap_or("?")));
        }
        // Freed buffers stay untouched until allocated again. Two passes
        // see every state a repeated phase can start from (each pass leaves
        // a buffer as its last free or alloc says).
        for _ in 0..repeat.min(2) {
            for (step, line, life) in &steps {
                check_live(&w, &mut freed, step, *line, *life)?;
            }
        }
        for _ in 0..repeat {
            w.steps.extend(steps.iter().map(|s| s.0.clone()));
        }
    }
    Ok(Scenario { workload: w, policy })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.workload.steps[1], Step::Launch { device: 1, tile: 0, accesses: vec![(a + (2 << 20), 4 << 20, Access::Atomic)] });
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
        assert_eq!(w.steps[0], Step::Launch { device: 1, tile: 0, accesses: vec![(a.start, 977 * 4096, Access::Write), (lo, hi - lo, Access::Read)] });
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
            (PACKED.replace("do = \"cpu\"\naccess = \"read\"\nbuffer = \"a\"", "do = \"cpu\"\naccess = \"read\"\nbuffer = \"a\"\n[[phase.step.span]]\naccess = \"read\"\nbuffer = \"b\""), 29, "only a gpu step"),
            (PACKED.replace("vram = \"64 MiB\"", "vram = 1000"), 3, "at least 16 MiB"),
            (PACKED.replace("do = \"free\"", "do = \"release\""), 34, "unknown step \"release\""),
        ];
        refused_at_lines(&cases);
        // A buffer lying on no page of its own cannot be freed.
        let tiny = PACKED.replace("size = 12000000", "size = 100").replace("size = 5000", "size = 0");
        let e = p(&tiny.replace("offset = 100\nsize = 0\n", "")).err().unwrap();
        assert!(e.starts_with("line 32:") && e.contains("shares every page"), "{e}");
    }
}
