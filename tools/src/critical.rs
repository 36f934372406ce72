//! The bound's critical path (optimum.rs, "Engines at once"): the program
//! replayed in the runner's order (`Queues`: each device's in-order queue,
//! the launches' dependencies, the host waiting where the program waits)
//! with every launch at a floor of its duration and everything else free,
//! and with the hand-off between dependent steps priced.
//!
//! A hand-off: a segment whose previous touch is a step this one must
//! wait for (a CPU step before a launch, in host order; a launch it
//! depends on) was in a place that step allows when it ended, and this
//! step reaches it only after that: read where it is (its memory time
//! from there), or moved first (the copies, which the simulator starts
//! only once no queued launch uses the pages, then its memory time where
//! they land; a launch's memory phase waits for the copies of its pages
//! to arrive). Copies of different segments may run at once on different
//! copy engines, so each segment's copy counts divided by their number.
//! So a launch ends no earlier than that step's end plus, per segment
//! handed off, the cheaper of reading it in place and moving it, plus the
//! least memory time of its other segments, or its compute, whichever is
//! more; a CPU step starts no earlier than the end of a launch it waits for
//! plus the copies home of what it hands back.

use std::collections::HashMap;

use xesvm::sim::{Access, Ran};

use super::{Machine, Place, Signature, Touch, Who};
use crate::queues::Queues;
use crate::workload::{Step, Workload};

/// The buffers a step touches, and whether it writes each.
fn footprint(w: &Workload, s: &Step) -> Vec<(usize, bool)> {
    let spans: Vec<(u64, u64, bool)> = match s {
        Step::Launch { args, .. } => args.iter().map(|a| (a.start, a.size, a.access != Access::Read)).collect(),
        Step::Cpu { start, size, write } => vec![(*start, *size, *write)],
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (start, size, writes) in spans {
        let end = start.saturating_add(size);
        for (i, b) in w.buffers.iter().enumerate() {
            if b.start < end && start < b.start + b.size {
                out.push((i, writes));
            }
        }
    }
    out
}

/// Whether step `j` (before `i`) ends before `i` starts in every run.
fn precedes(w: &Workload, feet: &[Vec<(usize, bool)>], j: usize, i: usize) -> bool {
    let conflict = || feet[j].iter().any(|&(b, wj)| feet[i].iter().any(|&(c, wi)| b == c && (wj || wi)));
    match (&w.steps[j], &w.steps[i]) {
        (Step::Cpu { .. }, Step::Launch { .. }) => true,
        (Step::Launch { device: a, .. }, Step::Launch { device: b, .. }) => a == b || conflict(),
        (Step::Launch { .. }, Step::Cpu { .. }) => conflict(),
        _ => false,
    }
}

/// What a hand-off costs per byte, `engines` copy engines sharing the
/// copies: from where `prev` could leave it to where `cur` can use it.
fn hand_off(m: &Machine, prev: &(Touch, bool), cur: &(Touch, bool), engines: f64) -> f64 {
    let from: Vec<Place> = m.places.iter().copied().filter(|&q| m.fails(&prev.0, prev.1) || m.access(&prev.0, q, prev.1).is_some()).collect();
    let mut best = f64::INFINITY;
    for &p in &m.places {
        let at = match cur.0.who {
            Who::Cpu => (p == Place::System).then_some(0.0),
            _ => m.access(&cur.0, p, cur.1).map(|a| a.mem + a.stall),
        };
        let Some(at) = at else { continue };
        for &q in &from {
            best = best.min(m.mv(q, p) / engines + at);
        }
    }
    if best.is_finite() { best } else { 0.0 }
}

/// The critical path, ns: `roofline` is each launch's floor alone.
pub(super) fn path(m: &Machine, w: &Workload, segs: &[(u64, u64, Signature)], roofline: &[u64], engines: usize) -> u64 {
    let n = w.steps.len();
    let feet: Vec<Vec<(usize, bool)>> = w.steps.iter().map(|s| footprint(w, s)).collect();
    let engines = engines.max(1) as f64;
    // Per launch: its least memory time; per (previous step, step): the
    // hand-offs' cost and the least memory time of the touches they cover.
    let mut least = vec![0.0f64; n];
    let mut edges: HashMap<(usize, usize), (f64, f64)> = HashMap::new();
    for (_, bytes, sig) in segs {
        let b = *bytes as f64;
        for (k, cur) in sig.iter().enumerate() {
            let own = if matches!(cur.0.who, Who::Gpu { .. }) { m.least_mem(&cur.0, cur.1) * b } else { 0.0 };
            least[cur.0.step] += own;
            let Some(prev) = k.checked_sub(1).map(|k| &sig[k]) else { continue };
            let handed = matches!((prev.0.who, cur.0.who), (Who::Cpu | Who::Gpu { .. }, Who::Gpu { .. }) | (Who::Gpu { .. }, Who::Cpu));
            if !handed || prev.0.step == cur.0.step || !precedes(w, &feet, prev.0.step, cur.0.step) {
                continue;
            }
            let e = edges.entry((prev.0.step, cur.0.step)).or_default();
            e.0 += hand_off(m, prev, cur, engines) * b;
            e.1 += own;
        }
    }
    let mut into: Vec<Vec<(usize, f64, f64)>> = vec![Vec::new(); n];
    for ((j, i), (cost, covered)) in edges {
        into[i].push((j, cost, covered));
    }
    let floor = |x: f64| (x - 1.0).max(0.0).floor() as u64;
    let mut q = Queues::new(w);
    let mut free = vec![0u64; w.topology.devices.len()];
    let mut end = vec![0u64; n];
    let mut host = 0u64;
    for (i, s) in w.steps.iter().enumerate() {
        match s {
            Step::Launch { device, args, compute_ns, .. } => {
                let start = free[*device as usize].max(host).max(q.launch_after(args));
                let mut done = start + roofline[i];
                for &(j, cost, covered) in &into[i] {
                    let after = (cost + (least[i] - covered).max(0.0)).max(*compute_ns as f64);
                    done = done.max(end[j] + floor(after));
                }
                let ran = Ran { start_ns: start, end_ns: done };
                free[*device as usize] = done;
                end[i] = done;
                q.launched(args, ran);
            }
            Step::Cpu { start, size, write } => {
                host = host.max(q.cpu_after(*start, *size, *write));
                for &(j, cost, _) in &into[i] {
                    host = host.max(end[j] + floor(cost));
                }
                end[i] = host;
            }
            Step::Free { start, size } => host = host.max(q.free_after(*start, *size)),
            Step::Wait => host = host.max(q.all()),
            Step::Alloc { .. } | Step::Call(_) => {}
        }
    }
    host.max(q.all())
}
