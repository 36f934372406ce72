//! Output of `xesvm bench` and `xesvm run`: an aligned table, CSV, JSON, and
//! an SVG chart of simulated time per workload and policy.

use std::fmt::Write;

use crate::runner::Report;

const MIB: f64 = (1u64 << 20) as f64;

fn ratio(r: &Report) -> String {
    if r.gpu_errors > 0 {
        return format!("{} failed", r.gpu_errors);
    }
    r.vs_optimum().map_or("-".into(), |x| format!("{x:.2}"))
}

/// The breakdown columns' headers, in [`Report::breakdown`]'s order.
const BREAKDOWN_HEADERS: [&str; 7] = ["compute ms", "local ms", "remote ms", "migr ms", "fault ms", "tlb ms", "calls ms"];

/// Runs left out of the ratios because a GPU access failed.
pub fn failed_runs(reports: &[Report]) -> usize {
    reports.iter().filter(|r| r.gpu_errors > 0).count()
}

/// What the summary line says about runs left out ("" when none were).
pub fn left_out_note(reports: &[Report]) -> String {
    match failed_runs(reports) {
        0 => String::new(),
        1 => " (1 run with failed accesses left out)".into(),
        n => format!(" ({n} runs with failed accesses left out)"),
    }
}

/// The geometric mean of `vs optimum` per policy, in first-seen order
/// (runs with a failed GPU access have no ratio and are left out).
pub fn geomeans(reports: &[Report]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64, usize)> = Vec::new();
    for r in reports {
        let Some(x) = r.vs_optimum() else { continue };
        match out.iter_mut().find(|(p, _, _)| *p == r.policy) {
            Some(e) => {
                e.1 += x.ln();
                e.2 += 1;
            }
            None => out.push((r.policy.clone(), x.ln(), 1)),
        }
    }
    out.into_iter().map(|(p, s, n)| (p, (s / n as f64).exp())).collect()
}

/// The benchmark table: one row per workload and policy, plus the bound;
/// with `breakdown`, each row's simulated time split by category too. A
/// run whose GPU access failed shows "N failed" instead of its ratio.
pub fn table(reports: &[Report], breakdown: bool) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{:<18} {:<16} {:>12} {:>11} {:>10} {:>8} {:>9} {:>11} {:>8} {:>10} {:>7}",
        "workload", "policy", "sim time ms", "moved MiB", "migrations", "faults", "ping-pong", "remote MiB", "pt reads", "vs optimum", "content"
    );
    if breakdown {
        for h in BREAKDOWN_HEADERS {
            let _ = write!(s, " {h:>10}");
        }
    }
    s.push('\n');
    let mut last = "";
    for r in reports {
        if r.workload != last && !last.is_empty() {
            s.push('\n');
        }
        if r.workload != last {
            let _ = writeln!(s, "{:<18} {:<16} {:>12.3}", r.workload, "optimum", r.optimum_ns as f64 / 1e6);
            if let Some(c) = r.calls_bound_ns {
                let _ = writeln!(s, "{:<18} {:<16} {:>12.3}", "", "calls honoured", c as f64 / 1e6);
            }
            if let Some(off) = r.offline_ns {
                let _ = writeln!(s, "{:<18} {:<16} {:>12.3}", "", "offline", off as f64 / 1e6);
            }
        }
        last = &r.workload;
        let _ = write!(
            s,
            "{:<18} {:<16} {:>12.3} {:>11.1} {:>10} {:>8} {:>9} {:>11.1} {:>8} {:>10} {:>7}",
            "",
            r.policy,
            r.simulated_ns as f64 / 1e6,
            r.bytes_moved as f64 / MIB,
            r.migrations,
            r.gpu_faults,
            r.ping_pongs,
            r.remote_access_bytes as f64 / MIB,
            r.page_table_reads,
            ratio(r),
            if r.content_ok { "ok" } else { "LOST" }
        );
        if breakdown {
            for (_, ns) in r.breakdown() {
                let _ = write!(s, " {:>10.3}", ns as f64 / 1e6);
            }
        }
        s.push('\n');
    }
    let g = geomeans(reports);
    if !g.is_empty() {
        let parts: Vec<String> = g.iter().map(|(p, x)| format!("{p} {x:.2}")).collect();
        let _ = writeln!(s, "\ngeometric mean of vs optimum: {}{}", parts.join(", "), left_out_note(reports));
    }
    s
}

/// Per policy, in first-seen order: its simulated time summed over the
/// reports, and each category's share of it, as one line each.
pub fn breakdown_summary(reports: &[Report]) -> String {
    let mut totals: Vec<(String, u64, [u64; 7])> = Vec::new();
    for r in reports {
        let i = match totals.iter().position(|t| t.0 == r.policy) {
            Some(i) => i,
            None => {
                totals.push((r.policy.clone(), 0, [0; 7]));
                totals.len() - 1
            }
        };
        totals[i].1 += r.simulated_ns;
        for (c, (_, ns)) in totals[i].2.iter_mut().zip(r.breakdown()) {
            *c += ns;
        }
    }
    let mut s = String::new();
    // Shares of the engines' work (which may exceed the time: engines run at once).
    for (p, total, cats) in totals {
        let work: u64 = cats.iter().sum();
        let parts: Vec<String> =
            BREAKDOWN_HEADERS.iter().zip(cats).map(|(h, ns)| format!("{} {:.0}%", h.trim_end_matches(" ms"), if work > 0 { ns as f64 * 100.0 / work as f64 } else { 0.0 })).collect();
        let _ = writeln!(s, "  {p:<17} {:>12.3} ms, engine work {:>12.3} ms: {}", total as f64 / 1e6, work as f64 / 1e6, parts.join(", "));
    }
    s
}

pub fn csv(reports: &[Report]) -> String {
    let mut s = String::from(
        "machine,workload,policy,simulated_ns,optimum_ns,vs_optimum,offline_ns,bytes_moved,migrations,gpu_faults,cpu_faults,ping_pongs,remote_access_bytes,evictions,retries,fallbacks,pins,ioctls,page_table_reads,gpu_errors,content_ok,migration_ns,remote_ns,fault_ns,tlb_ns,calls_ns,compute_ns,local_ns,engine_faults,engine_prefetch,engine_cascade\n",
    );
    for r in reports {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.machine,
            r.workload,
            r.policy,
            r.simulated_ns,
            r.optimum_ns,
            r.vs_optimum().map_or(String::new(), |x| format!("{x:.4}")),
            r.offline_ns.map_or(String::new(), |x| x.to_string()),
            r.bytes_moved,
            r.migrations,
            r.gpu_faults,
            r.cpu_faults,
            r.ping_pongs,
            r.remote_access_bytes,
            r.evictions,
            r.retries,
            r.fallbacks,
            r.pins,
            r.ioctls,
            r.page_table_reads,
            r.gpu_errors,
            r.content_ok,
            r.migration_ns,
            r.remote_ns,
            r.fault_ns,
            r.tlb_ns,
            r.calls_ns,
            r.compute_ns,
            r.local_ns,
            r.engine_faults,
            r.engine_prefetch,
            r.engine_cascade
        );
    }
    s
}

pub fn json(reports: &[Report]) -> String {
    serde_json::to_string_pretty(reports).expect("reports serialize")
}

/// Horizontal grouped bars: per workload, each policy's simulated time as a
/// fraction of that workload's slowest policy (times differ by orders of
/// magnitude between workloads), labelled with the milliseconds.
pub fn svg(reports: &[Report]) -> String {
    // One group per machine and workload, in run order.
    let mut groups: Vec<(&str, &str)> = Vec::new();
    let mut policies: Vec<&str> = Vec::new();
    for r in reports {
        if !groups.contains(&(r.machine.as_str(), r.workload.as_str())) {
            groups.push((&r.machine, &r.workload));
        }
        if !policies.contains(&r.policy.as_str()) {
            policies.push(&r.policy);
        }
    }
    let colors = ["#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e"];
    let (left, bar, gap, width) = (230.0, 16.0, 14.0, 520.0);
    let group = bar * policies.len() as f64 + gap;
    let height = 60.0 + group * groups.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#, left + width + 120.0);
    let _ = writeln!(s, r#"<text x="10" y="22" font-size="15" font-weight="bold">Simulated time per workload and policy (bar: share of the slowest policy; line: the optimum)</text>"#);
    for (i, p) in policies.iter().enumerate() {
        let x = left + i as f64 * 120.0;
        let _ = writeln!(s, r#"<rect x="{x}" y="34" width="12" height="12" fill="{}"/><text x="{}" y="45">{p}</text>"#, colors[i % colors.len()], x + 16.0);
    }
    for (gi, &(m, w)) in groups.iter().enumerate() {
        let y0 = 60.0 + gi as f64 * group;
        let rows: Vec<&Report> = reports.iter().filter(|r| r.machine == m && r.workload == w).collect();
        let max = rows.iter().map(|r| r.simulated_ns).max().unwrap_or(1).max(1) as f64;
        let label = if m.is_empty() { w.to_string() } else { format!("{m}: {w}") };
        let _ = writeln!(s, r#"<text x="10" y="{}">{label}</text>"#, y0 + bar * policies.len() as f64 / 2.0 + 4.0);
        for r in &rows {
            let pi = policies.iter().position(|p| *p == r.policy).unwrap_or(0);
            let y = y0 + pi as f64 * bar;
            let len = (r.simulated_ns as f64 / max * width).max(1.0);
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{y}" width="{len:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{:.2} ms</text>"#,
                bar - 2.0,
                colors[pi % colors.len()],
                left + len + 4.0,
                y + bar - 5.0,
                r.simulated_ns as f64 / 1e6
            );
        }
        if let Some(opt) = rows.iter().map(|r| r.optimum_ns).find(|&o| o > 0) {
            let x = left + opt as f64 / max * width;
            let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="black" stroke-dasharray="3,2"/>"#, y0 + bar * policies.len() as f64);
        }
    }
    s.push_str("</svg>\n");
    s
}

/// `xesvm run`'s account of one run.
pub fn run_report(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "policy: {}", r.policy);
    let work: u64 = r.breakdown().iter().map(|&(_, ns)| ns).sum();
    let _ = writeln!(s, "simulated time: {:.3} ms (when the last engine finished)", r.simulated_ns as f64 / 1e6);
    let _ = writeln!(
        s,
        "where the time went: {:.3} ms of engine work, {:.2}x the simulated time (devices, copy engines and host threads at once):",
        work as f64 / 1e6,
        if r.simulated_ns > 0 { work as f64 / r.simulated_ns as f64 } else { 0.0 }
    );
    let share = |ns: u64| {
        if work > 0 {
            ns as f64 * 100.0 / work as f64
        } else {
            0.0
        }
    };
    for (what, ns, note) in [
        ("compute", r.compute_ns, "launches' compute beyond their memory time"),
        ("local access", r.local_ns, "GPUs in their own VRAM"),
        ("migration", r.migration_ns, "copies, VRAM clears"),
        ("remote access", r.remote_ns, "in place over a link or from system memory"),
        ("faults", r.fault_ns, "GPU and CPU fault service"),
        ("TLB invalidations", r.tlb_ns, "unbinds, munmap"),
        ("calls", r.calls_ns, "the runtime's ioctls and page-table reads"),
    ] {
        let _ = writeln!(s, "  {what:<18} {:>10.3} ms {:>5.1}%  ({note})", ns as f64 / 1e6, share(ns));
    }
    let _ = writeln!(s, "placements at the end:");
    for (b, p) in &r.placements {
        let _ = writeln!(s, "  {b:<16} {p}");
    }
    let _ = writeln!(s, "offline optimum: {:.3} ms (a lower bound){}", r.optimum_ns as f64 / 1e6, r.offline_ns.map_or(String::new(), |o| format!("; offline schedule {:.3} ms", o as f64 / 1e6)));
    if let Some(c) = r.calls_bound_ns {
        let _ = writeln!(s, "honouring the runtime's calls costs at least {:.3} ms (the bound with each call's span where it names)", c as f64 / 1e6);
    }
    let _ = writeln!(s, "migrations: {} ({:.1} MiB moved)", r.migrations, r.bytes_moved as f64 / MIB);
    let _ = writeln!(s, "  system -> VRAM     {:>10.1} MiB", r.bytes_to_vram as f64 / MIB);
    let _ = writeln!(s, "  VRAM -> system     {:>10.1} MiB", r.bytes_to_system as f64 / MIB);
    let _ = writeln!(s, "  device -> device   {:>10.1} MiB (over links)", r.bytes_device_to_device as f64 / MIB);
    let _ = writeln!(s, "  remote accesses    {:>10.1} MiB (mapped, not moved)", r.remote_access_bytes as f64 / MIB);
    let _ = writeln!(s, "GPU faults: {} ({} failed), CPU faults: {}, VRAM evictions: {}", r.gpu_faults, r.gpu_errors, r.cpu_faults, r.evictions);
    let _ = writeln!(s, "ping-pongs: {}, retries: {}, fallbacks: {}, pins: {}, ioctls: {}", r.ping_pongs, r.retries, r.fallbacks, r.pins, r.ioctls);
    if r.engine_faults + r.engine_prefetch + r.engine_cascade > 0 {
        let _ = writeln!(s, "engine placements by strategy: {}", r.strategies());
    }
    let _ = writeln!(s, "content check: {}", if r.content_ok { "every page holds what was last written to it" } else { "DATA LOST" });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(machine: &str, workload: &str, policy: &str, ns: u64) -> Report {
        Report { machine: machine.into(), workload: workload.into(), policy: policy.into(), simulated_ns: ns, optimum_ns: ns / 2, ..Default::default() }
    }

    /// A run with a failed GPU access shows it in place of its ratio and
    /// stays out of the geometric mean, which says so.
    #[test]
    fn failed_accesses_are_marked_and_left_out_of_the_mean() {
        let mut failed = report("", "w", "kernel", 9_000_000);
        failed.gpu_errors = 3;
        let rs = [report("", "v", "kernel", 4_000_000), failed, report("", "w", "xesvm", 2_000_000)];
        assert_eq!(geomeans(&rs), vec![("kernel".to_string(), 2.0), ("xesvm".to_string(), 2.0)]);
        let t = table(&rs, false);
        assert!(t.contains("3 failed"), "{t}");
        assert!(t.contains("kernel 2.00, xesvm 2.00 (1 run with failed accesses left out)"), "{t}");
        assert!(!table(&rs[..1], false).contains("left out"));
        assert!(csv(&rs).lines().nth(2).unwrap().contains(",,"), "no ratio in the CSV either");
    }

    /// With the breakdown, each row carries its categories, which sum to its time.
    #[test]
    fn the_breakdown_adds_columns() {
        let r = Report { migration_ns: 1_000_000, remote_ns: 500_000, calls_ns: 250_000, local_ns: 250_000, ..report("", "w", "xesvm", 2_000_000) };
        let t = table(std::slice::from_ref(&r), true);
        assert!(t.lines().next().unwrap().ends_with("compute ms   local ms  remote ms    migr ms   fault ms     tlb ms   calls ms"), "{t}");
        assert!(t.contains("     0.000      0.250      0.500      1.000      0.000      0.000      0.250\n"), "{t}");
        assert!(!table(std::slice::from_ref(&r), false).contains("migr ms"));
        assert!(breakdown_summary(&[r]).contains("compute 0%, local 12%, remote 25%, migr 50%, fault 0%, tlb 0%, calls 12%"));
    }

    #[test]
    fn svg_keeps_machines_apart_and_marks_the_optimum() {
        let rs = [report("a", "w", "kernel", 4_000_000), report("a", "w", "xesvm", 2_000_000), report("b", "w", "kernel", 8_000_000), report("b", "w", "xesvm", 8_000_000)];
        let s = svg(&rs);
        assert!(s.contains(">a: w<") && s.contains(">b: w<"), "{s}");
        assert_eq!(s.matches("<line").count(), 2);
        // Bars are scaled within their own group: each group's slowest is full width.
        assert_eq!(s.matches(r#"width="520.0""#).count(), 3);
    }
}
