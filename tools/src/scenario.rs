//! Scenario files for `xesvm run`: a topology, buffers, and phases of steps
//! (GPU accesses, CPU accesses, runtime calls), in TOML.
//!
//! ```toml
//! topology = "2dgpu-p2p"        # a preset, or a topology file (relative to this file)
//! policy = "xesvm"              # optional default: kernel | prefetch | xesvm
//!
//! [[buffer]]
//! name = "a"
//! size = "64 MiB"               # bytes, or a size with a unit
//!
//! [[phase]]
//! name = "compute"
//! repeat = 4                    # optional, default 1
//!
//! [[phase.step]]
//! do = "gpu"                    # gpu | cpu | alloc_vram | evict | preferred | atomic_mode
//! device = 0                    # gpu, alloc_vram
//! tile = 0                      # optional
//! access = "write"              # gpu: read | write | atomic; cpu: read | write
//! buffer = "a"
//! offset = "0"                  # optional, default 0
//! size = "32 MiB"               # optional, default: to the end of the buffer
//! target = "device:1"           # alloc_vram, preferred: system | device:N | device:N:T
//! mode = "device"               # atomic_mode: undefined | device | global | cpu
//! ```
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
use crate::workload::{Call, Step, Target, Workload};

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
        w.buffer(&b.get_ref().name, size);
    }
    for phase in &def.phases {
        let mut steps = Vec::new();
        for s in &phase.steps {
            let line = at(s.span());
            let d = s.get_ref();
            let err = |m: String| format!("line {line}: {} step: {m}", d.action);
            let need = |v: Option<&String>, what: &str| v.cloned().ok_or_else(|| err(format!("`{what}` is missing")));
            let span = |d: &StepDef| -> Result<(u64, u64), String> {
                let name = need(d.buffer.as_ref(), "buffer")?;
                let b = w.buffers.iter().find(|b| b.name == name).ok_or_else(|| err(format!("unknown buffer \"{name}\"")))?;
                let off = d.offset.as_ref().map(size_of).transpose().map_err(&err)?.unwrap_or(0);
                let size = d.size.as_ref().map(size_of).transpose().map_err(&err)?.unwrap_or(b.size.saturating_sub(off));
                if size == 0 || off % 4096 != 0 || size % 4096 != 0 || off.checked_add(size).is_none_or(|e| e > b.size) {
                    return Err(err(format!("offset {off} + size {size} must be non-zero, 4 KiB aligned and inside \"{name}\" ({} bytes)", b.size)));
                }
                Ok((b.start + off, size))
            };
            let device = |d: &StepDef| -> Result<u32, String> {
                let dev = d.device.ok_or_else(|| err("`device` is missing".into()))?;
                if dev >= devices {
                    return Err(err(format!("device {dev}: the topology has {devices} devices")));
                }
                Ok(dev)
            };
            let step = match d.action.as_str() {
                "gpu" => {
                    let access = match need(d.access.as_ref(), "access")?.as_str() {
                        "read" => Access::Read,
                        "write" => Access::Write,
                        "atomic" => Access::Atomic,
                        a => return Err(err(format!("access \"{a}\" (read, write or atomic)"))),
                    };
                    let dev = device(d)?;
                    let tile = d.tile.unwrap_or(0);
                    if tile >= w.topology.devices[dev as usize].tiles {
                        return Err(err(format!("device {dev} has no tile {tile}")));
                    }
                    let (start, size) = span(d)?;
                    Step::Launch { device: dev, tile, accesses: vec![(start, size, access)] }
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
                other => {
                    return Err(format!(
                        "line {line}: unknown step \"{other}\" (gpu, cpu, alloc_vram, evict, preferred or atomic_mode)"
                    ))
                }
            };
            steps.push(step);
        }
        let repeat = phase.repeat.unwrap_or(1);
        if repeat == 0 {
            return Err(format!("phase \"{}\": repeat must be at least 1", phase.name.as_deref().unwrap_or("?")));
        }
        for _ in 0..repeat {
            w.steps.extend(steps.iter().cloned());
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
        for (text, line, needle) in cases {
            let e = p(&text).err().unwrap_or_else(|| panic!("accepted: {needle}"));
            assert!(e.starts_with(&format!("line {line}:")), "{needle}: {e}");
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
