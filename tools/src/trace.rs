//! Chrome trace-event JSON of a run on the simulated clocks (opens in
//! Perfetto and chrome://tracing), one track per engine
//! (docs/cost-model.md, "Timelines"): each host thread (CPU steps, the
//! runtime's calls and placements), each device's compute engine (its
//! launches, from when they started to when they ended) and each device's
//! copy engine (the copies and clears it ran: into its VRAM, and out of it
//! to system memory); gaps and overlaps between tracks are where engines
//! waited or ran at once. Spans for launches, CPU steps, runtime calls and
//! migrations (bytes, source, destination); instants for faults, retries,
//! evictions, pins and fallbacks.

use std::path::Path;

use serde_json::{json, Value};
use xesvm::sim::SimEvent;

/// Track ids: host thread 0 (the CPU), each device's compute engine, each
/// device's copy engine, the other host threads.
pub const CPU: u32 = 0;
pub fn device(d: u32) -> u32 {
    1 + d
}
pub fn host(thread: usize) -> u32 {
    if thread == 0 { CPU } else { 900 + thread as u32 }
}
/// The copy engine a copy between `from` and `to` runs on: the
/// destination device's, or the source's for a copy to system memory.
pub fn copy_engine(from: Option<u32>, to: Option<u32>) -> u32 {
    match to.or(from) {
        None => 999,
        Some(d) => 1000 + d,
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn place(d: Option<u32>) -> String {
    d.map_or("system".into(), |d| format!("device {d}"))
}

#[derive(Default)]
pub struct Trace {
    events: Vec<Value>,
}

impl Trace {
    /// A trace with named tracks for `devices` devices.
    pub fn new(title: &str, devices: u32) -> Trace {
        let mut t = Trace::default();
        t.events.push(json!({"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": title}}));
        let mut name = |tid: u32, n: String| t.events.push(json!({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": n}}));
        name(CPU, "CPU thread 0 (submits)".into());
        name(host(1), "CPU thread 1 (placement helper)".into());
        name(copy_engine(None, None), "copies to system memory (no device)".into());
        for d in 0..devices {
            name(device(d), format!("GPU {d} compute"));
            name(copy_engine(None, Some(d)), format!("GPU {d} copy engine"));
        }
        t
    }

    pub fn span(&mut self, name: &str, tid: u32, start_ns: u64, end_ns: u64, args: Value) {
        self.events.push(json!({
            "ph": "X", "name": name, "pid": 1, "tid": tid,
            "ts": us(start_ns), "dur": us(end_ns.saturating_sub(start_ns)), "args": args,
        }));
    }

    pub fn instant(&mut self, name: &str, tid: u32, at_ns: u64, args: Value) {
        self.events.push(json!({"ph": "i", "s": "t", "name": name, "pid": 1, "tid": tid, "ts": us(at_ns), "args": args}));
    }

    /// What the simulated machine recorded: migrations as spans, faults and
    /// evictions as instants.
    pub fn add_sim_events(&mut self, events: &[SimEvent]) {
        for e in events {
            match *e {
                SimEvent::Migration { at_ns, dur_ns, bytes, from, to } => self.span(
                    "migration",
                    copy_engine(from, to),
                    at_ns,
                    at_ns + dur_ns,
                    json!({"bytes": bytes, "from": place(from), "to": place(to)}),
                ),
                SimEvent::GpuFault { at_ns, dur_ns, device: d } => {
                    self.instant("gpu fault", device(d), at_ns, json!({"service_us": us(dur_ns)}))
                }
                SimEvent::CpuFault { at_ns } => self.instant("cpu fault", CPU, at_ns, json!({})),
                SimEvent::Eviction { at_ns, bytes, device: d } => {
                    self.instant("eviction", device(d), at_ns, json!({"bytes": bytes, "cause": "VRAM pressure"}))
                }
                SimEvent::Clear { at_ns, dur_ns, bytes, device: d } => {
                    self.span("vram clear", copy_engine(None, Some(d)), at_ns, at_ns + dur_ns, json!({"bytes": bytes, "first touch": true}))
                }
            }
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"traceEvents": self.events, "displayTimeUnit": "ns"})
    }

    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string(&self.to_json()).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{self, PolicyKind};
    use crate::workload::{Knows, Step};

    /// Each engine has its own track, and the tracks show devices at once:
    /// two devices running independent launches overlap, and each device's
    /// launches never overlap one another (one in-order queue).
    #[test]
    fn tracks_show_devices_running_at_once() {
        use crate::workload::Workload;
        use xesvm::sim::{Access, Arg, Topology};
        let mut w = Workload::new("two", Topology::preset("2dgpu-p2p").unwrap());
        let bufs: Vec<u64> = (0..2).map(|i| w.buffer(&format!("x{i}"), 8 << 20)).collect();
        for _ in 0..3 {
            for (d, &b) in bufs.iter().enumerate() {
                let args = vec![Arg::new(b, 8 << 20, Access::Write)];
                w.steps.push(Step::Launch { device: d as u32, tile: 0, args, compute_ns: 2_000_000, knows: Knows::Span, allocs: Vec::new() });
            }
        }
        let mut t = Trace::new("two", 2);
        runner::run_traced(&w, PolicyKind::Kernel, Some(&mut t)).unwrap();
        let spans = |tid: u32| -> Vec<(f64, f64)> {
            t.events.iter().filter(|e| e["name"] == "launch" && e["tid"] == tid).map(|e| (e["ts"].as_f64().unwrap(), e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap())).collect()
        };
        let (a, b) = (spans(device(0)), spans(device(1)));
        assert_eq!((a.len(), b.len()), (3, 3));
        for s in [&a, &b] {
            assert!(s.windows(2).all(|p| p[0].1 <= p[1].0), "one queue per device: {s:?}");
        }
        assert!(a.iter().any(|x| b.iter().any(|y| x.0 < y.1 && y.0 < x.1)), "the devices ran at once: {a:?} {b:?}");
        let migrations_on = |tid: u32| t.events.iter().filter(|e| e["name"] == "migration" && e["tid"] == tid).count();
        assert!(migrations_on(copy_engine(None, Some(0))) + migrations_on(copy_engine(None, Some(1))) == 0, "written from scratch: clears only");
        let clears_on = |tid: u32| t.events.iter().filter(|e| e["name"] == "vram clear" && e["tid"] == tid).count();
        assert!(clears_on(copy_engine(None, Some(0))) > 0 && clears_on(copy_engine(None, Some(1))) > 0);
    }

    /// A bundled scenario's trace, written and read back as JSON: every
    /// event is well formed for the trace-event format, and its spans and
    /// instants match the run's counters.
    #[test]
    fn trace_of_a_bundled_scenario_matches_the_run() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
        let text = std::fs::read_to_string(dir.join("handoff.toml")).unwrap();
        let pointer = crate::scenario::parse(&text, &dir).unwrap().workload;
        let launches = pointer.steps.iter().filter(|s| matches!(s, Step::Launch { .. })).count();
        // As written (pointers only), and with the exact spans known.
        let mut span = pointer.clone();
        for s in &mut span.steps {
            if let Step::Launch { knows, .. } = s {
                *knows = Knows::Span;
            }
        }
        for (w, p) in [PolicyKind::Kernel, PolicyKind::Prefetch, PolicyKind::Xesvm].into_iter().flat_map(|p| [(&pointer, p), (&span, p)]) {
            let knows = if std::ptr::eq(w, &span) { Knows::Span } else { Knows::Pointer };
            let mut t = Trace::new("handoff", w.topology.devices.len() as u32);
            let r = runner::run_traced(w, p, Some(&mut t)).unwrap();
            let path = std::env::temp_dir().join(format!("xesvm-trace-{}-{}.json", std::process::id(), p.name()));
            t.write(&path).unwrap();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            std::fs::remove_file(&path).unwrap();
            let events = v["traceEvents"].as_array().unwrap();
            let count = |name: &str, ph: &str| events.iter().filter(|e| e["name"] == name && e["ph"] == ph).count() as u64;
            for e in events {
                let ph = e["ph"].as_str().unwrap();
                assert!(["X", "i", "M"].contains(&ph), "{e}");
                assert!(e["pid"].is_u64() && e["tid"].is_u64() && e["name"].is_string(), "{e}");
                if ph != "M" {
                    assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
                }
                if ph == "X" {
                    assert!(e["dur"].as_f64().unwrap() >= 0.0, "{e}");
                }
            }
            assert_eq!(count("launch", "X"), launches as u64, "{p:?}");
            assert_eq!(count("migration", "X"), r.migrations, "{p:?}");
            assert_eq!(count("gpu fault", "i"), r.gpu_faults, "{p:?}");
            assert_eq!(count("cpu fault", "i"), r.cpu_faults, "{p:?}");
            assert_eq!(count("eviction", "i"), r.evictions, "{p:?}");
            let moved: u64 = events.iter().filter(|e| e["name"] == "migration").map(|e| e["args"]["bytes"].as_u64().unwrap()).sum();
            assert_eq!(moved, r.bytes_moved, "{p:?}");
            assert_eq!(count("alloc_vram", "X") > 0, p == PolicyKind::Xesvm, "{p:?}");
            // The prefetch baseline knows nothing to prefetch from pointers alone.
            assert_eq!(count("prefetch", "X") > 0, p == PolicyKind::Prefetch && knows == Knows::Span, "{p:?} {knows:?}");
        }
    }
}
