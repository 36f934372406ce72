//! Scenario files for `xesvm run`: a topology, buffers, and phases of steps
//! (GPU accesses, CPU accesses, runtime calls), in TOML.
//!
//! ```toml
//! topology = "2dgpu-p2p"        # a preset, or a topology file (relative to this file)
//! policy = "xesvm"              # optional default: kernel | prefetch | xesvm
//! vram = "96 MiB"               # optional: VRAM per tile of every device with VRAM
//! knows = "pointer"            # optional: what the runtime knows at a launch (below)
//! placement_thread = "submitting" # optional: where the runtime places memory from (below)
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
//! do = "gpu"                    # gpu | cpu | alloc_vram | evict | preferred | atomic_mode | free | alloc | wait
//! device = 0                    # gpu, alloc_vram
//! tile = 0                      # optional
//! access = "write"              # gpu: read | write | atomic; cpu: read | write
//! buffer = "a"
//! offset = "0"                  # optional, default 0 (bytes)
//! size = "32 MiB"               # optional, default: to the end of the buffer
//! target = "device:1"           # alloc_vram, preferred: system | device:N | device:N:T
//! mode = "device"               # atomic_mode: undefined | device | global | cpu
//!
//! passes = 4                    # gpu, optional: times the kernel goes over the span (default 1)
//! pattern = "scattered"         # gpu, optional: streaming (default) | scattered
//! touched = 0.05                # scattered: fraction of the span one pass touches
//! compute = "2 ms"              # gpu, optional: the kernel's compute time (ns, or with ns/us/ms/s)
//! knows = "span"                # gpu, optional: pointer | extent | span (default: the scenario's)
//!
//! [[phase.step.span]]           # gpu: more arguments of the same launch
//! access = "read"
//! buffer = "b"                  # offset, size optional as above
//! passes = 8                    # passes, pattern, touched as above, per argument
//! ```
//!
//! A launch costs the roofline of its `compute` and its memory time: per
//! argument, the bytes it touches (span x passes, x touched when
//! scattered) over the bandwidth of the path to where each page lies, a
//! scattered pattern over a link at a fraction of streaming
//! (`xesvm::sim::SCATTERED_LINK_EFFICIENCY`). `knows` says what the
//! runtime has at the launch: `pointer` (malloc memory: the kernel's
//! argument pointers only; the default), `extent` (the allocation each
//! pointer lies in: a runtime with an allocation table) or `span` (the
//! exact bytes: an application that prefetches or advises precisely).
//!
//! Devices run at once (docs/cost-model.md, "Timelines"). Each device has
//! one in-order queue: a `gpu` step is queued and the host goes on; it
//! runs when its device is free and the launches it depends on are done
//! (those that wrote a buffer it touches, or touched one it writes, on any
//! device). A `cpu` step waits for the launches over its buffers, a `free`
//! for every launch over its pages, and `wait` for everything queued.
//! `placement_thread` says where the runtime prefetches and the library
//! places from: `submitting` (the default, NEO today: the thread that
//! submits waits for each copy) or `helper` (a helper thread copies while
//! the submitting thread goes on; the launch waits for the copy).
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
use xesvm::sim::{Access, Arg, Pattern, Topology};
use xesvm::uapi::*;

use crate::runner::PolicyKind;
use crate::workload::{Call, Knows, PlacementThread, Step, Target, Workload, PAGE};

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// A duration: nanoseconds, or a number with a unit ("250 us", "1.5 ms").
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Duration {
    Ns(u64),
    Text(String),
}

fn duration_ns(d: &Duration) -> Result<u64, String> {
    let t = match d {
        Duration::Ns(n) => return Ok(*n),
        Duration::Text(t) => t.trim(),
    };
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let scale = match unit {
        "" | "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("cannot read duration \"{t}\" (e.g. \"250 us\", \"2 ms\")")),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale < 1e15 => Ok((v * scale).round() as u64),
        _ => Err(format!("cannot read duration \"{t}\" (e.g. \"250 us\", \"2 ms\")")),
    }
}

fn knows_of(s: &str) -> Result<Knows, String> {
    match s {
        "pointer" => Ok(Knows::Pointer),
        "extent" => Ok(Knows::Extent),
        "span" => Ok(Knows::Span),
        k => Err(format!("knows \"{k}\" (pointer, extent or span)")),
    }
}

/// An argument's passes and pattern: `passes` at least 1; `pattern`
/// "streaming" (the default) or "scattered" with `touched`, the fraction
/// of the span a pass touches, in (0, 1].
fn use_of(passes: Option<u32>, pattern: Option<&str>, touched: Option<f64>) -> Result<(u32, Pattern), String> {
    let passes = passes.unwrap_or(1);
    if passes == 0 {
        return Err("passes must be at least 1".into());
    }
    let pattern = match (pattern.unwrap_or("streaming"), touched) {
        ("streaming", None) => Pattern::Streaming,
        ("streaming", Some(_)) => return Err("`touched` goes with pattern = \"scattered\"".into()),
        ("scattered", Some(f)) if f > 0.0 && f <= 1.0 => Pattern::Scattered { permille: ((f * 1000.0).round() as u16).max(1) },
        ("scattered", Some(f)) => return Err(format!("touched {f}: a fraction in (0, 1]")),
        ("scattered", None) => return Err("pattern \"scattered\" needs `touched` (the fraction of the span a pass touches)".into()),
        (p, _) => return Err(format!("pattern \"{p}\" (streaming or scattered)")),
    };
    Ok((passes, pattern))
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
    passes: Option<u32>,
    pattern: Option<String>,
    touched: Option<f64>,
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
    passes: Option<u32>,
    pattern: Option<String>,
    touched: Option<f64>,
    compute: Option<Duration>,
    knows: Option<String>,
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
    knows: Option<Spanned<String>>,
    placement_thread: Option<Spanned<String>>,
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
            return Err(format!(
                "line {line}: {} step: \"{name}\" is {} (a phase that repeats runs its steps again)",
                if free { "free" } else { "alloc" },
                if free { "already freed" } else { "not freed" }
            ));
        }
        freed[i] = free;
        return Ok(());
    }
    let spans: Vec<(u64, u64)> = match step {
        Step::Launch { args, .. } => args.iter().map(|a| (a.start, a.size)).collect(),
        Step::Cpu { start, size, .. } => vec![(*start, *size)],
        Step::Call(Call::AllocVram { start, size, .. } | Call::Evict { start, size } | Call::Preferred { start, size, .. } | Call::AtomicMode { start, size, .. }) => {
            vec![(*start, *size)]
        }
        Step::Free { .. } | Step::Alloc { .. } | Step::Wait => Vec::new(),
    };
    for (i, _) in freed.iter().enumerate().filter(|(_, &f)| f) {
        let Some((lo, n)) = w.own_pages(i) else {
            continue;
        };
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
            let body = std::fs::read_to_string(&path).map_err(|e| format!("line {}: topology \"{topo_name}\" is neither a preset nor a readable file ({e})", at(def.topology.span())))?;
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
    let knows = match &def.knows {
        Some(k) => knows_of(k.get_ref()).map_err(|e| format!("line {}: {e}", at(k.span())))?,
        None => Knows::default(),
    };
    let placement_thread = match def.placement_thread.as_ref() {
        None => PlacementThread::Submitting,
        Some(t) => match t.get_ref().as_str() {
            "submitting" => PlacementThread::Submitting,
            "helper" => PlacementThread::Helper,
            other => return Err(format!("line {}: placement_thread \"{other}\" (submitting or helper)", at(t.span()))),
        },
    };
    let devices = topology.devices.len() as u32;
    let mut w = Workload::new("scenario", topology);
    w.placement_thread = placement_thread;
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
            Some(prev) => return Err(format!("line {}: buffer \"{}\": `after` must name the buffer defined just before it, not \"{prev}\"", at(b.span()), b.get_ref().name)),
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
            if d.action != "gpu" {
                let launch_only = [
                    (!d.spans.is_empty(), "span"),
                    (d.passes.is_some(), "passes"),
                    (d.pattern.is_some(), "pattern"),
                    (d.touched.is_some(), "touched"),
                    (d.compute.is_some(), "compute"),
                    (d.knows.is_some(), "knows"),
                ];
                if let Some((_, what)) = launch_only.iter().find(|x| x.0) {
                    return Err(err(format!("only a gpu step has `{what}`")));
                }
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
                    let (passes, pattern) = use_of(d.passes, d.pattern.as_deref(), d.touched).map_err(&err)?;
                    let mut args = vec![Arg { start, size, access, passes, pattern }];
                    let mut allocs = vec![Some(buffer(&need(d.buffer.as_ref(), "buffer")?)?)];
                    for x in &d.spans {
                        let (start, size) = bytes(&x.buffer, x.offset.as_ref(), x.size.as_ref())?;
                        let (passes, pattern) = use_of(x.passes, x.pattern.as_deref(), x.touched).map_err(&err)?;
                        args.push(Arg { start, size, access: gpu_access(&x.access)?, passes, pattern });
                        allocs.push(Some(buffer(&x.buffer)?));
                    }
                    let compute_ns = d.compute.as_ref().map(duration_ns).transpose().map_err(&err)?.unwrap_or(0);
                    let knows = d.knows.as_deref().map(knows_of).transpose().map_err(&err)?.unwrap_or(knows);
                    Step::Launch { device: dev, tile, args, compute_ns, knows, allocs }
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
                "wait" => {
                    if d.buffer.is_some() || d.device.is_some() || d.access.is_some() {
                        return Err(err("takes nothing (the host waits for every launch queued so far)".into()));
                    }
                    Step::Wait
                }
                other => return Err(format!("line {line}: unknown step \"{other}\" (gpu, cpu, alloc_vram, evict, preferred, atomic_mode, free, alloc or wait)")),
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
#[path = "scenario_tests.rs"]
mod tests;
