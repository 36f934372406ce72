//! `xesvm`: see what xesvm finds and does before linking it.
//!
//! * `xesvm info`: devices, tiles, memory regions, links, kernel features
//!   (the kernel driver where Xe render nodes exist, else a simulated
//!   topology, and it says which).
//! * `xesvm run SCENARIO`: a scenario file on the simulated driver under a
//!   policy, with what happened.
//! * `xesvm bench`: the standard workload suite under every policy, against
//!   the offline lower bound.

mod generate;
mod optimum;
mod queues;
mod report;
mod runner;
mod scenario;
mod suite;
mod trace;
mod workload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use xesvm::driver::kernel::{discover, open_render_node, KernelDriver, Roots};
use xesvm::driver::query::{query_device, MemClass};
use xesvm::sim::driver::SimDriver;
use xesvm::driver::{xe, Driver};
use xesvm::sim::Sim;
use xesvm::uapi::*;
use xesvm::Errno;

use runner::PolicyKind;

#[derive(Parser)]
#[command(name = "xesvm", version, about = "Shared-virtual-memory placement for Intel Xe GPUs: inspect, run scenarios, benchmark policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
    /// The summary and the tables as docs/benchmarks.md holds them.
    Markdown,
}

#[derive(Subcommand)]
enum Command {
    /// Devices, tiles, memory regions, links and kernel features.
    Info {
        /// Use this simulated preset even if Xe render nodes exist.
        #[arg(long, conflicts_with = "topology")]
        sim: Option<String>,
        /// Use a simulated topology file.
        #[arg(long)]
        topology: Option<PathBuf>,
    },
    /// Run a scenario file on the simulated driver.
    Run {
        scenario: PathBuf,
        /// Policy (default: the scenario's, else xesvm).
        #[arg(long, value_enum)]
        policy: Option<PolicyKind>,
        /// Run it under every policy and print the comparison table.
        #[arg(long, conflicts_with = "policy")]
        compare: bool,
        /// Write a Chrome trace-event JSON of the run (Perfetto, chrome://tracing).
        #[arg(long, conflicts_with = "compare")]
        trace: Option<PathBuf>,
    },
    /// The standard workload suite under every policy, against the offline
    /// optimum, on 2dgpu-p2p, 4dgpu-p2p, max-node and 2dgpu-nolink (or one
    /// machine with --topology).
    Bench {
        /// A preset or a topology file; default: the four machines above.
        #[arg(long)]
        topology: Option<String>,
        /// Only the first N devices of the machine.
        #[arg(long)]
        devices: Option<u32>,
        /// VRAM per tile, MiB (buffers are sized against it); default: 256
        /// (128 on max-node), or as a topology file says.
        #[arg(long)]
        vram_mib: Option<u64>,
        /// Iterations of the iterative workloads.
        #[arg(long, default_value_t = 8)]
        iterations: u32,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also write an SVG chart of simulated time per workload and policy.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Only workloads whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Write a Chrome trace-event JSON per workload and policy into this directory.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Instead of the suite: N programs drawn from families of runtime
        /// patterns (on a preset, default 2dgpu-p2p; VRAM per tile drawn
        /// unless --vram-mib), priced against the bound.
        #[arg(long, value_name = "N", conflicts_with_all = ["devices", "only", "trace", "svg"])]
        generate: Option<u32>,
        /// The seed of --generate (the same seed draws the same programs).
        #[arg(long, default_value_t = 1, requires = "generate")]
        seed: u64,
        /// Write each generated program into this directory as a scenario
        /// file (`xesvm run DIR/NAME.toml --compare` reruns it).
        #[arg(long, value_name = "DIR", requires = "generate")]
        emit: Option<PathBuf>,
        /// Also split each run's simulated time by where it went (migration,
        /// remote access, faults, TLB invalidations, the process's calls):
        /// columns in the table and markdown, per policy shares with
        /// --generate. CSV and JSON always carry the split.
        #[arg(long)]
        breakdown: bool,
    },
}

fn main() -> ExitCode {
    // Like other command-line tools: a closed pipe (`| head`) ends us quietly.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Info { sim, topology } => info(sim, topology),
        Command::Run { scenario, policy, compare, trace } => run(scenario, policy, compare, trace),
        Command::Bench { generate: Some(n), seed, emit, topology, vram_mib, format, breakdown, .. } => generated(n, seed, topology, vram_mib, emit, format, breakdown),
        Command::Bench { topology, devices, vram_mib, iterations, format, svg, only, trace, breakdown, .. } => {
            bench(topology, devices, vram_mib, iterations, format, svg, only, trace, breakdown)
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xesvm: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `info` reports on: a driver, its fds, their names, and the simulator behind them.
type Opened = (Box<dyn Driver>, Vec<i32>, Vec<String>, Option<Arc<Sim>>);

fn info(sim: Option<String>, topology: Option<PathBuf>) -> Result<(), String> {
    let nodes = if sim.is_none() && topology.is_none() { discover(&Roots::default()).unwrap_or_default() } else { Vec::new() };
    let (drv, fds, names, topo): Opened = if !nodes.is_empty() {
        println!("driver: the Xe kernel driver ({} render node(s))", nodes.len());
        let mut fds = Vec::new();
        let mut names = Vec::new();
        for n in &nodes {
            match open_render_node(&n.path) {
                Ok(fd) => {
                    use std::os::fd::IntoRawFd;
                    fds.push(fd.into_raw_fd());
                    names.push(n.path.display().to_string());
                }
                Err(e) => println!("  {}: cannot open: {e}", n.path.display()),
            }
        }
        (Box::new(KernelDriver), fds, names, None)
    } else {
        let s = match (&sim, &topology) {
            (_, Some(path)) => {
                println!("driver: simulated, topology file {}", path.display());
                Sim::from_file(path)?
            }
            (Some(p), _) => {
                println!("driver: simulated, preset \"{p}\"");
                Sim::from_preset(p)?
            }
            (None, None) => {
                println!("driver: simulated, preset \"2dgpu-p2p\" (no Xe render node found on this machine)");
                Sim::from_preset("2dgpu-p2p")?
            }
        };
        println!("simulated kernel behaviour: {}", s.topology().kernel);
        let fds: Vec<i32> = (0..s.topology().devices.len() as u32).map(|i| s.open_device(i).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
        let names = s.topology().devices.iter().map(|d| d.name.clone()).collect();
        (Box::new(SimDriver::new(s.clone())), fds, names, Some(s))
    };
    let pt = drv.page_table();
    println!("residency: this process reads its page table by {} ({})", pt.name(), match (pt.available(), pt.names_devices()) {
        (false, _) => "the library decides on its own records only",
        (true, false) => "pages in VRAM show as not in system memory; which device, the library's records say",
        (true, true) => "pages in VRAM name their device",
    });
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut vram_inst = Vec::new();
    for (i, (&fd, name)) in fds.iter().zip(&names).enumerate() {
        let info = match query_device(&*drv, fd) {
            Ok(i) => i,
            Err(e) => {
                println!("device {i} ({name}): DEVICE_QUERY failed: {e}");
                vram_inst.push(None);
                continue;
            }
        };
        let at = drv.device_id(fd).map_or("PCI address unknown".to_string(), |d| format!("at {d}"));
        println!("\ndevice {i}: {name} (PCI id {:#06x} {at}, VA bits {})", info.config.device_id, info.config.va_bits);
        println!("  tiles: {:?}", info.tiles());
        for r in &info.regions {
            let class = match r.class {
                MemClass::System => "system".to_string(),
                MemClass::Vram => "VRAM".to_string(),
                MemClass::Other(c) => format!("class {c}"),
            };
            println!("  region instance {}: {class:<6} {:>8.2} GiB, used {:.2} GiB, min page {} B", r.instance, gib(r.total_size), gib(r.used), r.min_page_size);
        }
        let mirror = info.config.has_cpu_addr_mirror();
        println!("  CPU-address mirror (SVM): {}", if mirror { "yes" } else { "no" });
        vram_inst.push(info.vram_of_tile(0).map(|r| r.instance));
        if !mirror {
            continue;
        }
        // madvise exists if a well-formed one on a VM without VMAs returns 0 (docs/xe-uapi.md §9.4).
        let flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
        if let Ok(vm) = xe::vm_create(&*drv, fd, flags) {
            let madvise = xe::madvise_atomic(&*drv, fd, vm, 1 << 30, 1 << 21, DRM_XE_ATOMIC_UNDEFINED);
            println!("  madvise: {}", if madvise.is_ok() { "yes (6.18+)" } else { "no" });
            // Multi-device madvise: own fd + own VRAM instance succeeds on 7.0+, EINVAL on 6.18.
            if let (Ok(()), Some(inst)) = (madvise, vram_inst[i]) {
                let _ = xe::bind_cpu_addr_mirror(&*drv, fd, vm, 0, 1 << 47, false);
                let multi = xe::madvise_preferred_loc(&*drv, fd, vm, 1 << 30, 1 << 21, xe::PreferredLoc::Device { devmem_fd: fd, region_instance: inst });
                println!("  multi-device madvise: {}", match multi {
                    Ok(()) => "yes (7.0+)".to_string(),
                    Err(Errno::EINVAL) => "no (6.18/6.19: region_instance is pad)".to_string(),
                    Err(e) => format!("unknown ({e})"),
                });
            }
            let _ = xe::vm_destroy(&*drv, fd, vm);
        }
    }
    println!("\nlinks:");
    if fds.len() < 2 {
        println!("  (one device)");
    }
    for a in 0..fds.len() {
        for b in a + 1..fds.len() {
            let text = match &topo {
                Some(s) => match s.topology().link(a as u32, b as u32) {
                    Some(l) => format!("{:?}, {:.0} GB/s, atomics {}", l.kind, l.bandwidth / 1e9, if l.atomics { "yes" } else { "no" }),
                    None => "none".into(),
                },
                None => match vram_inst[b] {
                    // Ask the kernel: a madvise naming the peer's VRAM is ENOLINK without an interconnect.
                    Some(inst) => probe_link(&*drv, fds[a], fds[b], inst),
                    None => "peer has no VRAM".into(),
                },
            };
            println!("  {a} <-> {b}: {text}");
        }
    }
    library_links(&topo, nodes.iter().map(|n| n.path.clone()).collect())
}

/// The links as the library's engine holds them once it opened every
/// device, with where each fact came from: sysfs (or the simulated
/// machine), the description XESVM_TOPOLOGY names, or nothing yet (a
/// placement naming the peer learns it: ENOLINK).
fn library_links(sim: &Option<Arc<Sim>>, nodes: Vec<PathBuf>) -> Result<(), String> {
    let ctx = match sim {
        Some(s) => xesvm::policy::Context::new(Box::new(SimDriver::new(s.clone())), xesvm::policy::Config::default()),
        None => xesvm::policy::Context::new_kernel(xesvm::policy::Config::default()),
    };
    if let Some(path) = std::env::var_os("XESVM_TOPOLOGY") {
        ctx.set_link_description(xesvm::topology::description::read(std::path::Path::new(&path)).map_err(|e| format!("XESVM_TOPOLOGY: {e}"))?);
    }
    let devs: Vec<_> = match sim {
        Some(s) => (0..s.topology().devices.len() as u32).filter_map(|i| ctx.open_index(i).ok()).collect(),
        None => nodes.iter().filter_map(|p| ctx.open_path(p).ok()).collect(),
    };
    if devs.len() < 2 {
        return Ok(());
    }
    println!("
links as the library holds them (and where each fact came from):");
    for (i, &a) in devs.iter().enumerate() {
        for (j, &b) in devs.iter().enumerate().skip(i + 1) {
            let (state, source) = ctx.link_with_source(a, b).map_err(|e| e.to_string())?;
            let text = match state {
                xesvm::topology::LinkState::Unknown => "not known yet (a placement naming the peer tells)".to_string(),
                xesvm::topology::LinkState::Absent => "none".to_string(),
                xesvm::topology::LinkState::Present(l) => format!("{:?}, {:.0} GB/s, atomics {}", l.kind, l.bandwidth / 1e9, if l.atomics { "yes" } else { "no" }),
            };
            println!("  {i} <-> {j}: {text} (source: {})", source.name());
        }
    }
    Ok(())
}

fn probe_link(drv: &dyn Driver, fd: i32, peer: i32, inst: u16) -> String {
    let flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
    let Ok(vm) = xe::vm_create(drv, fd, flags) else { return "unknown".into() };
    let _ = xe::bind_cpu_addr_mirror(drv, fd, vm, 0, 1 << 47, false);
    let r = xe::madvise_preferred_loc(drv, fd, vm, 1 << 30, 1 << 21, xe::PreferredLoc::Device { devmem_fd: peer, region_instance: inst });
    let _ = xe::vm_destroy(drv, fd, vm);
    match r {
        Ok(()) => "interconnect (peer VRAM usable)".into(),
        Err(Errno::ENOLINK) => "none (ENOLINK)".into(),
        Err(e) => format!("unknown ({e})"),
    }
}

fn run(path: PathBuf, policy: Option<PolicyKind>, compare: bool, trace_path: Option<PathBuf>) -> Result<(), String> {
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let s = scenario::parse(&text, &base).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = s.workload;
    w.name = path.file_stem().map_or("scenario".into(), |n| n.to_string_lossy().into_owned());
    println!("scenario {}: {} devices, {} buffer(s), {} steps", path.display(), w.topology.devices.len(), w.buffers.len(), w.steps.len());
    if compare {
        let reports: Vec<_> = PolicyKind::ALL.iter().map(|&p| runner::run(&w, p)).collect::<Result<_, _>>()?;
        print!("{}", report::table(&reports, true));
        println!("where the time went, as shares of the engines' work (migr: copies and VRAM clears; remote: accesses outside the\n\
                  tile's VRAM; fault: GPU and CPU fault service; tlb: TLB invalidations, unbinds and munmap included; calls: ioctls and\n\
                  page-table reads):");
        print!("{}", report::breakdown_summary(&reports));
        return if reports.iter().all(|r| r.content_ok) { Ok(()) } else { Err("content was lost".into()) };
    }
    let p = policy.or(s.policy).unwrap_or(PolicyKind::Xesvm);
    let mut t = trace_path.as_ref().map(|_| trace::Trace::new(&format!("{} ({})", w.name, p.name()), w.topology.devices.len() as u32));
    let r = runner::run_traced(&w, p, t.as_mut())?;
    print!("{}", report::run_report(&r));
    if let (Some(t), Some(path)) = (t, trace_path) {
        t.write(&path)?;
        eprintln!("trace written to {}", path.display());
    }
    if r.content_ok {
        Ok(())
    } else {
        Err("content was lost".into())
    }
}

#[allow(clippy::too_many_arguments)]
fn bench(
    topology: Option<String>,
    devices: Option<u32>,
    vram_mib: Option<u64>,
    iterations: u32,
    format: Format,
    svg: Option<PathBuf>,
    only: Option<String>,
    trace_dir: Option<PathBuf>,
    breakdown: bool,
) -> Result<(), String> {
    if iterations == 0 || vram_mib.is_some_and(|v| v < 16) {
        return Err("need at least 1 iteration and 16 MiB of VRAM".into());
    }
    let machines: Vec<(String, xesvm::sim::Topology)> = match &topology {
        None => suite::MACHINES
            .iter()
            .map(|&(name, preset, vram)| Ok((name.to_string(), suite::machine(preset, vram_mib.unwrap_or(vram), devices.unwrap_or(0))?)))
            .collect::<Result<_, String>>()?,
        Some(t) => {
            let default_vram = if xesvm::sim::Topology::preset(t).is_some() { 256 } else { 0 };
            vec![(t.clone(), suite::machine(t, vram_mib.unwrap_or(default_vram), devices.unwrap_or(0))?)]
        }
    };
    let mut runs: Vec<(String, xesvm::sim::Topology, Vec<workload::Workload>)> = Vec::new();
    for (name, topo) in machines {
        let params = suite::Params { topology: topo.clone(), iterations };
        let ws: Vec<_> = suite::all(&params).into_iter().filter(|w| only.as_ref().is_none_or(|o| w.name.contains(o.as_str()))).collect();
        runs.push((name, topo, ws));
    }
    let total = runs.iter().map(|r| r.2.len()).sum::<usize>() as u64 * PolicyKind::ALL.len() as u64;
    // Hidden at first: only runs longer than a second get a bar (on a terminal).
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::hidden());
    bar.set_style(indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}").unwrap().progress_chars("=> "));
    let start = std::time::Instant::now();
    let mut reports = Vec::new();
    for (machine, _, workloads) in &runs {
        for w in workloads {
            for &p in &PolicyKind::ALL {
                if start.elapsed().as_secs_f64() > 1.0 && std::io::stderr().is_terminal() && bar.is_hidden() {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
                bar.set_message(format!("{machine}: {} / {}", w.name, p.name()));
                let mut r = match &trace_dir {
                    None => runner::run(w, p)?,
                    Some(dir) => {
                        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                        let mut t = trace::Trace::new(&format!("{machine}: {} ({})", w.name, p.name()), w.topology.devices.len() as u32);
                        let r = runner::run_traced(w, p, Some(&mut t))?;
                        t.write(&dir.join(format!("{machine}-{}-{}.json", w.name, p.name())))?;
                        r
                    }
                };
                r.machine = machine.clone();
                reports.push(r);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let machine_table = |machine: &str, topo: &xesvm::sim::Topology| {
        let rs: Vec<_> = reports.iter().filter(|r| r.machine == machine).cloned().collect();
        format!(
            "{}\n(optimum: a lower bound on the program's time from the trace, capacity relaxed; offline: an offline schedule where VRAM\n \
             capacity binds, as if one engine ran it; sim time: from the first step to when the last engine finishes, device setup left out;\n \
             vs optimum: sim time / optimum; pt reads: page-table reads, each charged to the simulated clock; oracle: the engine told the simulator's ground truth,\n \
             not realizable on hardware{})\n\n{}",
            describe(machine, topo, iterations),
            if breakdown {
                ";\n migr, remote, fault, tlb, calls ms: simulated time spent on copies and VRAM clears, on accesses outside the tile's\n \
                 VRAM, on GPU and CPU fault service, on TLB invalidations (unbinds, munmap), on ioctls and page-table reads"
            } else {
                ""
            },
            report::table(&rs, breakdown)
        )
    };
    match format {
        Format::Table => {
            for (machine, topo, _) in &runs {
                println!("{}", machine_table(machine, topo));
            }
        }
        Format::Markdown => {
            let means = |m: &str| report::geomeans(&reports.iter().filter(|r| r.machine == m).cloned().collect::<Vec<_>>());
            let policies: Vec<String> = runs.first().map(|(m, _, _)| means(m).into_iter().map(|(p, _)| p).collect()).unwrap_or_default();
            println!("| machine | {} |\n|---|{}", policies.join(" | "), "---|".repeat(policies.len()));
            for (machine, _, _) in &runs {
                let g = means(machine);
                println!("| `{machine}` | {} |", g.iter().map(|(_, x)| format!("{x:.2}")).collect::<Vec<_>>().join(" | "));
            }
            for (machine, topo, _) in &runs {
                let g = means(machine).iter().map(|(p, x)| format!("{p} {x:.2}")).collect::<Vec<_>>().join(", ");
                println!("\n<details><summary><code>{machine}</code>: {g}</summary>\n\n```\n{}```\n\n</details>", machine_table(machine, topo));
            }
        }
        Format::Csv => print!("{}", report::csv(&reports)),
        Format::Json => println!("{}", report::json(&reports)),
    }
    if let Some(path) = svg {
        std::fs::write(&path, report::svg(&reports)).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    if reports.iter().any(|r| !r.content_ok) {
        return Err("content was lost in at least one run".into());
    }
    Ok(())
}

/// `xesvm bench --generate N`: generated programs under every policy.
fn generated(n: u32, seed: u64, topology: Option<String>, vram_mib: Option<u64>, emit: Option<PathBuf>, format: Format, breakdown: bool) -> Result<(), String> {
    let preset = topology.unwrap_or_else(|| "2dgpu-p2p".into());
    if vram_mib.is_some_and(|v| v < 16) {
        return Err("need at least 16 MiB of VRAM".into());
    }
    let programs = generate::generate(n, seed, &preset, vram_mib.unwrap_or(0))?;
    if let Some(dir) = &emit {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for p in &programs {
            let path = dir.join(format!("{}.toml", p.name));
            std::fs::write(&path, &p.toml).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        eprintln!("{} scenario files written to {}", programs.len(), dir.display());
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(n as u64 * PolicyKind::ALL.len() as u64), indicatif::ProgressDrawTarget::hidden());
    bar.set_style(indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}").unwrap().progress_chars("=> "));
    let start = std::time::Instant::now();
    let outcomes = generate::run_all(&programs, |p, k| {
        if start.elapsed().as_secs_f64() > 1.0 && std::io::stderr().is_terminal() && bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_message(format!("{} / {}", p.name, k.name()));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let header = format!(
        "xesvm bench --generate {n} --seed {seed} on {preset}: {n} programs from {} families; simulated driver\n\
         (columns: simulated time over the bound per policy; xesvm/base: xesvm's time over the better of kernel and prefetch)",
        generate::FAMILIES.len()
    );
    let reports: Vec<runner::Report> = outcomes.iter().flat_map(|o| o.reports.iter().cloned()).collect();
    match format {
        Format::Csv => print!("{}", report::csv(&reports)),
        Format::Json => println!("{}", report::json(&reports)),
        Format::Table | Format::Markdown => {
            println!("{}\n", header.lines().next().unwrap_or_default());
            print!("{}", generate::table(&outcomes));
            println!();
            print!("{}", generate::summary(&outcomes, &header));
            if breakdown {
                println!("where the time went, per policy over every program, as shares of the engines' work (migr: copies and VRAM\n\
                          clears; remote: accesses outside the tile's VRAM; fault: GPU and CPU fault service; tlb: TLB invalidations;\n\
                          calls: ioctls and page-table reads):");
                print!("{}", report::breakdown_summary(&reports));
            }
        }
    }
    let bad = outcomes.iter().filter(|o| !o.problems().is_empty()).count();
    if bad > 0 {
        return Err(format!("{bad} generated program(s) broke the bound or lost content (listed above)"));
    }
    Ok(())
}

/// One line on the machine a table is for.
fn describe(name: &str, t: &xesvm::sim::Topology, iterations: u32) -> String {
    let tiles: u32 = t.devices.iter().map(|d| d.tiles as u32).sum();
    let vram = t.devices.iter().find(|d| d.has_vram()).map_or(0, |d| d.vram_per_tile >> 20);
    let links = if t.links.is_empty() { "no links".to_string() } else { format!("{} links", t.links.len()) };
    format!(
        "xesvm bench on {name}: {} devices, {tiles} tiles x {vram} MiB VRAM, {links}, {iterations} iterations; simulated driver, kernel {} behaviour",
        t.devices.len(),
        t.kernel
    )
}
