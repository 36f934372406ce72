//! The runner: plays a workload on a fresh simulated machine under one of
//! the policies, and reports what the simulated driver counted and clocked.
//!
//! Every number a report holds comes from the simulated driver's counters
//! and clock, or from the library's own statistics; nothing is computed
//! from formulas here except the lower bound, which `optimum` derives from
//! the trace alone.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use xesvm::driver::{xe, PageTableAccess, PageTableSource};
use xesvm::policy::{self, AllocFlags, Config, Context, DeviceHandle};
use xesvm::sim::driver::SimDriver;
use xesvm::sim::mem::{page_checksum, write_token};
use xesvm::sim::{Access, Arg, Placement, Sim};
use xesvm::topology::Pagemap;
use xesvm::uapi::*;

use crate::queues::Queues;
use crate::trace::{self, Trace};
use crate::workload::{Call, Knows, PlacementThread, Step, Target, Workload, CHUNK, PAGE};

/// How the runtime behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// The kernel alone: GPU faults, no runtime calls.
    Kernel,
    /// The first patch of the kernel thread: before each launch, prefetch to
    /// the accessing device what the launch's `knows` level gives (each
    /// argument's span, its allocation's pages, or nothing from pointers
    /// alone); on EBUSY or EFAULT evict to system and retry once.
    Prefetch,
    /// xesvm's default policy through the library: before each launch,
    /// resolve the pagemap of each span its `knows` level gives (the
    /// argument's span, its allocation's pages, or the extent the library
    /// finds from the pointer) and alloc_vram there (atomic spans with
    /// SVM_ALLOC_IGNORE_THRASH_GUARD); explicit calls too. The process reads
    /// its page table with PAGEMAP_SCAN, unprivileged: what any process has.
    Xesvm,
    /// The same, for a process with CAP_SYS_ADMIN: page-table entries carry
    /// PFNs (read with pread), so pages in VRAM name their device.
    XesvmPrivileged,
    /// The same engine told the simulator's ground truth for free: not
    /// realizable on hardware; how close the honest engine gets to perfect
    /// information.
    Oracle,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 5] = [PolicyKind::Kernel, PolicyKind::Prefetch, PolicyKind::Xesvm, PolicyKind::XesvmPrivileged, PolicyKind::Oracle];
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Kernel => "kernel",
            PolicyKind::Prefetch => "prefetch",
            PolicyKind::Xesvm => "xesvm",
            PolicyKind::XesvmPrivileged => "xesvm-privileged",
            PolicyKind::Oracle => "oracle",
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The machine the suite ran on (bench), empty for a scenario.
    pub machine: String,
    pub workload: String,
    pub policy: String,
    /// Simulated time from the first step to the last (device setup left out).
    pub simulated_ns: u64,
    pub bytes_moved: u64,
    pub bytes_to_vram: u64,
    pub bytes_to_system: u64,
    pub bytes_device_to_device: u64,
    pub migrations: u64,
    pub gpu_faults: u64,
    pub cpu_faults: u64,
    pub evictions: u64,
    /// Chunk moves straight back to where the chunk was before its last move.
    pub ping_pongs: u64,
    pub remote_access_bytes: u64,
    pub retries: u64,
    pub fallbacks: u64,
    pub pins: u64,
    /// The library's engine placements by the strategy its engine ran
    /// (left to the faults, the runtime's prefetch, the rule cascade).
    pub engine_faults: u64,
    pub engine_prefetch: u64,
    pub engine_cascade: u64,
    /// The application's hints (runtime calls) that failed under a
    /// baseline, which goes on as NEO does (one per failed ioctl).
    pub hint_errors: u64,
    pub ioctls: u64,
    /// Reads of the process's page table the library made (each charged to the clock).
    pub page_table_reads: u64,
    /// GPU accesses that failed (the GPU saw an unsuccessful fault).
    pub gpu_errors: u64,
    /// Where the simulated time went (the simulator's `time_*_ns` counters
    /// over the run): launches' compute beyond their memory time, GPU
    /// accesses to the device's own VRAM and elsewhere, migrations
    /// (copies, VRAM clears), GPU and CPU fault service, TLB invalidations
    /// (unbinds, munmap), the process's own calls (ioctls, page-table
    /// reads). They sum to `simulated_ns`.
    pub compute_ns: u64,
    pub local_ns: u64,
    pub remote_ns: u64,
    pub migration_ns: u64,
    pub fault_ns: u64,
    pub tlb_ns: u64,
    pub calls_ns: u64,
    /// The offline optimum's lower bound on simulated time (optimum.rs).
    pub optimum_ns: u64,
    /// A feasible offline schedule's time, where VRAM capacity binds.
    pub offline_ns: Option<u64>,
    /// The bound with the runtime's calls honoured, where they force work
    /// no access needs (`Optimum::calls_ns`): printed beside the bound.
    pub calls_bound_ns: Option<u64>,
    pub content_ok: bool,
    /// Final placement of each buffer.
    pub placements: Vec<(String, String)>,
}

impl Report {
    /// Simulated time over the optimum's bound (None when the bound is 0,
    /// or when a GPU access failed: the bound prices the whole program, the
    /// run did not do it all).
    pub fn vs_optimum(&self) -> Option<f64> {
        (self.optimum_ns > 0 && self.gpu_errors == 0).then(|| self.simulated_ns as f64 / self.optimum_ns as f64)
    }

    /// The time categories as (column name, ns), in a fixed order; they sum to `simulated_ns`.
    pub fn breakdown(&self) -> [(&'static str, u64); 7] {
        [("compute", self.compute_ns), ("local", self.local_ns), ("remote", self.remote_ns), ("migration", self.migration_ns), ("fault", self.fault_ns), ("tlb", self.tlb_ns), ("calls", self.calls_ns)]
    }

    /// The engine's placements by strategy, and the thrash guard's pins
    /// among them ("cascade 12, prefetch 3, faults 1; 2 pins"; "none"
    /// without engine placements).
    pub fn strategies(&self) -> String {
        let mut v: Vec<(u64, &str)> = vec![(self.engine_cascade, "cascade"), (self.engine_prefetch, "prefetch"), (self.engine_faults, "faults")];
        v.retain(|&(n, _)| n > 0);
        if v.is_empty() {
            return "none".into();
        }
        v.sort_by_key(|&(n, _)| std::cmp::Reverse(n));
        let mut s = v.iter().map(|(n, name)| format!("{name} {n}")).collect::<Vec<_>>().join(", ");
        if self.pins > 0 {
            s += &format!("; {} pin{}", self.pins, if self.pins == 1 { "" } else { "s" });
        }
        s
    }
}

/// The runtime a run drives: raw ioctls (kernel, prefetch) or the library.
#[allow(clippy::large_enum_variant)] // one per run, never moved in a loop
enum Runtime {
    Raw { drv: SimDriver, devs: Vec<(i32, u32)> },
    Lib { ctx: Context, devs: Vec<DeviceHandle> },
}

fn placement_name(p: Placement) -> String {
    match p {
        Placement::Unpopulated => "untouched".into(),
        Placement::System => "system".into(),
        Placement::Vram { device, instance } => {
            format!("device {device} VRAM (tile {})", instance - 1)
        }
        Placement::Mixed => "mixed".into(),
    }
}

/// Plays a workload under a policy on a fresh simulated machine.
pub fn run(w: &Workload, policy: PolicyKind) -> Result<Report, String> {
    run_traced(w, policy, None)
}

/// [`run`], recording what happened on the simulated clock into `trace`.
pub fn run_traced(w: &Workload, policy: PolicyKind, mut trace: Option<&mut Trace>) -> Result<Report, String> {
    let sim: Arc<Sim> = Sim::new(w.topology.clone())?;
    sim.record_events(trace.is_some());
    map_buffers(&sim, w)?;
    let ndev = w.topology.devices.len() as u32;
    let rt = match policy {
        PolicyKind::Xesvm | PolicyKind::XesvmPrivileged | PolicyKind::Oracle => {
            let driver = match policy {
                PolicyKind::Oracle => SimDriver::oracle(sim.clone()),
                PolicyKind::XesvmPrivileged => {
                    sim.set_page_table(PageTableAccess { source: PageTableSource::Read, privileged: true }).map_err(|e| e.to_string())?;
                    SimDriver::new(sim.clone())
                }
                _ => SimDriver::new(sim.clone()),
            };
            let ctx = Context::new(Box::new(driver), Config::default());
            // The honest rows run on what a process has: never the oracle's
            // page table, and the one their row names.
            let want = match policy {
                PolicyKind::Oracle => PageTableAccess { source: PageTableSource::Oracle, privileged: true },
                PolicyKind::XesvmPrivileged => PageTableAccess { source: PageTableSource::Read, privileged: true },
                _ => PageTableAccess { source: PageTableSource::Scan, privileged: false },
            };
            if ctx.page_table() != want {
                return Err(format!("{}: the engine reads the page table as {:?}, not {want:?}", policy.name(), ctx.page_table()));
            }
            let devs = (0..ndev).map(|i| ctx.open_index(i)).collect::<Result<Vec<_>, _>>().map_err(|e| format!("open: {e}"))?;
            Runtime::Lib { ctx, devs }
        }
        _ => {
            let drv = SimDriver::new(sim.clone());
            let mut devs = Vec::new();
            for i in 0..ndev {
                let fd = sim.open_device(i).map_err(|e| format!("open: {e}"))?;
                let vm = xe::vm_create(&drv, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).map_err(|e| format!("vm: {e}"))?;
                // With the PAT index the device's mirror needs, as the
                // library binds it (coherent on an integrated GPU: the
                // kernel refuses a non-coherent mirror there).
                let pat = xesvm::driver::query::query_device(&drv, fd).map_err(|e| format!("query: {e}"))?.mirror_pat_index();
                xe::bind_cpu_addr_mirror_pat(&drv, fd, vm, 0, 1 << 47, false, pat).map_err(|e| format!("bind: {e}"))?;
                devs.push((fd, vm));
            }
            Runtime::Raw { drv, devs }
        }
    };
    let fd_vm = |d: u32| -> (i32, u32) {
        match &rt {
            Runtime::Raw { devs, .. } => devs[d as usize],
            Runtime::Lib { ctx, devs } => {
                let dev = ctx.device(devs[d as usize]).unwrap();
                (dev.fd, dev.vm_id)
            }
        }
    };
    // The clock counts from the first step: opening the devices (DEVICE_QUERY,
    // VM_CREATE, the mirror bind) is once per process, whatever the policy,
    // and the bound leaves it out too.
    let started = sim.makespan_ns();
    let k0 = sim.counters();
    let mut queues = Queues::new(w);
    // The host thread placements run on (docs/cost-model.md, "Timelines").
    let placer = match w.placement_thread {
        PlacementThread::Submitting => 0,
        PlacementThread::Helper => 1,
    };
    // Launch durations the runtime learns from its timestamps once they
    // complete: (end, device, duration), reported when the host is there.
    let mut pending: Vec<(u64, u32, u64)> = Vec::new();
    let mut shadow: HashMap<u64, u32> = HashMap::new();
    let mut chunks = ChunkHistory::new(w);
    let mut report = Report { workload: w.name.clone(), policy: policy.name().into(), ..Default::default() };
    let (mut retries, mut fallbacks, mut pins, mut hint_errors) = (0u64, 0u64, 0u64, 0u64);
    let to_pm = |ctx: &Context, devs: &[DeviceHandle], t: Target| -> Result<Pagemap, String> {
        match t {
            Target::System => Ok(Pagemap::System),
            Target::Device { device, tile } => ctx.pagemap(devs[device as usize], tile).map_err(|e| format!("pagemap: {e}")),
        }
    };
    for (i, step) in w.steps.iter().enumerate() {
        let value = i as u64 + 1;
        if let Runtime::Lib { ctx, devs } = &rt {
            let now = sim.now_ns();
            pending.retain(|&(end, d, dur)| {
                if end <= now {
                    let _ = ctx.launch_done(devs[d as usize], dur);
                }
                end > now
            });
        }
        match step {
            Step::Launch { device, tile, args, compute_ns, knows, allocs } => {
                let track = trace::device(*device);
                let ptrack = trace::host(placer);
                sim.set_host_thread(placer);
                match &rt {
                    Runtime::Raw { drv, devs } if policy == PolicyKind::Prefetch => {
                        let (fd, vm) = devs[*device as usize];
                        let region = if w.topology.devices[*device as usize].has_vram() { *tile as u32 + 1 } else { 0 };
                        // What the baseline knows to prefetch: the exact spans,
                        // the allocations, or (pointers only) nothing.
                        let spans = match knows {
                            Knows::Span => args.iter().map(|a| (a.start, a.size, a.access)).collect(),
                            Knows::Extent => extents(w, args, allocs),
                            Knows::Pointer => Vec::new(),
                        };
                        for (s, n, _) in spans {
                            let t0 = sim.now_ns();
                            let r = xe::prefetch(drv, fd, vm, s, n, region);
                            if let Some(t) = trace.as_deref_mut() {
                                t.span("prefetch", ptrack, t0, sim.now_ns(), json!({"start": s, "bytes": n, "device": device, "result": format!("{r:?}")}));
                            }
                            if let Err(e) = r {
                                if e == xesvm::Errno::EBUSY || e == xesvm::Errno::EFAULT {
                                    retries += 1;
                                    let _ = xe::prefetch(drv, fd, vm, s, n, 0);
                                    let _ = xe::prefetch(drv, fd, vm, s, n, region);
                                }
                            }
                        }
                    }
                    Runtime::Lib { ctx, devs } => {
                        let h = devs[*device as usize];
                        // The spans the runtime hands the library: the exact
                        // ones, the allocations' (its allocation table), or
                        // the extents the library finds from the pointers.
                        let spans = match knows {
                            Knows::Span => args.iter().map(|a| (a.start, a.size, a.access)).collect(),
                            Knows::Extent => extents(w, args, allocs),
                            Knows::Pointer => merged(args.iter().filter_map(|a| ctx.extent_of(a.start).ok().map(|(s, e)| (s, e - s, a.access)))),
                        };
                        for (s, n, a) in spans {
                            let pa = match a {
                                Access::Read => policy::Access::Read,
                                Access::Write => policy::Access::Write,
                                Access::Atomic => policy::Access::Atomic,
                            };
                            let t0 = sim.now_ns();
                            let Ok(pm) = ctx.resolve(h, *tile, s, n, pa) else {
                                continue;
                            };
                            // Atomics must run in local VRAM: the kernel would move a
                            // pinned range anyway, so the thrash guard cannot help them.
                            let mut flags = if a == Access::Atomic { AllocFlags::ENGINE | AllocFlags::IGNORE_THRASH_GUARD } else { AllocFlags::ENGINE };
                            // A mapping found from a pointer (it may hold a
                            // whole arena), not the bytes the kernel touches:
                            // SVM_ALLOC_EXTENT. An allocation from the
                            // runtime's own table is what its prefetch would
                            // move (the prefetch baseline at that level).
                            if *knows == Knows::Pointer {
                                flags |= AllocFlags::EXTENT;
                            }
                            let r = ctx.alloc_vram(h, s, n, pm, flags);
                            if let Some(t) = trace.as_deref_mut() {
                                trace_placement(t, ptrack, t0, sim.now_ns(), s, n, &pm.to_string(), &r);
                            }
                            if let Ok(p) = r {
                                retries += p.retries as u64;
                                fallbacks += p.fell_back as u64;
                                pins += p.pinned as u64;
                            }
                        }
                    }
                    _ => {}
                }
                queues.placed(sim.now_ns());
                sim.set_host_thread(0);
                let (fd, vm) = fd_vm(*device);
                // Queued: the host goes on; the launch runs when its device
                // is free and what it depends on is done.
                let q = sim.enqueue(fd, vm, *tile, args, *compute_ns, value, queues.launch_after(args));
                // The runtime knows which placements were for this launch
                // (svm_launch_submit): its report, later, is theirs.
                if let Runtime::Lib { ctx, devs } = &rt {
                    let _ = ctx.launch_submitted(devs[*device as usize]);
                }
                queues.launched(args, q.ran);
                // What ran wrote its pages: all arguments, or those before
                // the one whose access failed.
                let ran = match q.result {
                    Ok(()) => args.len(),
                    Err(e) => {
                        report.gpu_errors += 1;
                        e.arg
                    }
                };
                // A runtime with timestamps learns the launch's duration
                // (svm_launch_report) once it completed.
                pending.push((q.ran.end_ns, *device, q.ran.end_ns - q.ran.start_ns));
                for a in args[..ran].iter().filter(|a| a.access != Access::Read) {
                    for p in pages(a.start, a.size) {
                        shadow.insert(p, write_token(value, p));
                    }
                }
                if let Some(t) = trace.as_deref_mut() {
                    let bytes: u64 = args.iter().map(|a| a.size).sum();
                    t.span("launch", track, q.ran.start_ns, q.ran.end_ns, json!({"step": i, "spans": args.len(), "bytes": bytes, "compute_ns": compute_ns}));
                }
            }
            Step::Cpu { start, size, write } => {
                let a = if *write { Access::Write } else { Access::Read };
                sim.host_wait(queues.cpu_after(*start, *size, *write));
                let t0 = sim.now_ns();
                sim.cpu_access(*start, *size, a, value).map_err(|e| format!("step {i}: CPU access failed: {e}"))?;
                if let Some(t) = trace.as_deref_mut() {
                    let name = if *write { "cpu write" } else { "cpu read" };
                    t.span(name, trace::CPU, t0, sim.now_ns(), json!({"step": i, "start": start, "bytes": size}));
                }
                if *write {
                    for p in pages(*start, *size) {
                        shadow.insert(p, write_token(value, p));
                    }
                }
            }
            // The program frees or allocates memory: the simulated process
            // munmaps or mmaps the pages, and no runtime is told.
            Step::Free { start, size } => {
                for p in pages(*start, *size) {
                    shadow.remove(&p);
                }
                sim.host_wait(queues.free_after(*start, *size));
                let t0 = sim.now_ns();
                sim.munmap(*start, *size).map_err(|e| format!("step {i}: munmap failed: {e}"))?;
                if let Some(t) = trace.as_deref_mut() {
                    t.span("free", trace::CPU, t0, sim.now_ns(), json!({"step": i, "start": start, "bytes": size}));
                }
            }
            Step::Alloc { start, size } => {
                let t0 = sim.now_ns();
                sim.mmap(*start, *size, false).map_err(|e| format!("step {i}: mmap failed: {e}"))?;
                if let Some(t) = trace.as_deref_mut() {
                    t.span("alloc", trace::CPU, t0, sim.now_ns(), json!({"step": i, "start": start, "bytes": size}));
                }
            }
            Step::Wait => sim.host_wait(queues.all()),
            Step::Call(c) => {
                // The runtime's own hints run on the host at once, without
                // waiting for GPU work (../README.md; NEO's prefetch and
                // madvise at execute), on its placement thread.
                sim.set_host_thread(placer);
                let (ctx, devs) = match &rt {
                    Runtime::Lib { ctx, devs } => (ctx, devs),
                    Runtime::Raw { drv, devs } => {
                        // The application's own call, as NEO issues it: raw
                        // ioctls, and a hint that fails is ignored.
                        let t0 = sim.now_ns();
                        let failed = raw_call(drv, devs, w, c);
                        hint_errors += failed;
                        if let Some(t) = trace.as_deref_mut() {
                            t.span("runtime call", trace::host(placer), t0, sim.now_ns(), json!({"call": format!("{c:?}"), "failed ioctls": failed}));
                        }
                        queues.placed(sim.now_ns());
                        sim.set_host_thread(0);
                        chunks.sample(&sim);
                        continue;
                    }
                };
                let t0 = sim.now_ns();
                let r = match *c {
                    Call::AllocVram { device, start, size, target } => {
                        let pm = to_pm(ctx, devs, target)?;
                        ctx.alloc_vram(devs[device as usize], start, size, pm, AllocFlags::default()).map(|p| {
                            retries += p.retries as u64;
                            fallbacks += p.fell_back as u64;
                            pins += p.pinned as u64;
                        })
                    }
                    Call::Evict { start, size } => ctx.evict(start, size).map(|_| ()),
                    Call::Preferred { start, size, target } => ctx.set_preferred(start, size, to_pm(ctx, devs, target)?),
                    Call::AtomicMode { start, size, mode } => ctx.set_atomic(start, size, mode),
                };
                if let Some(t) = trace.as_deref_mut() {
                    t.span("runtime call", trace::host(placer), t0, sim.now_ns(), json!({"call": format!("{c:?}"), "result": format!("{r:?}")}));
                }
                queues.placed(sim.now_ns());
                sim.set_host_thread(0);
                r.map_err(|e| format!("step {i}: {c:?} failed: {e}"))?;
            }
        }
        chunks.sample(&sim);
    }
    if let Some(t) = trace {
        t.add_sim_events(&sim.take_events());
    }
    let k = sim.counters();
    // An honest row that placed something (a prefetch issued) and never
    // read the page table decided on something other than what a process
    // sees. Placements left to the faults (EXTENT) need no read, nor does
    // a machine without VRAM (every page is in system memory).
    if let Runtime::Lib { ctx, .. } = &rt {
        let s = ctx.stats();
        (report.engine_faults, report.engine_prefetch, report.engine_cascade) = (s.engine_faults, s.engine_prefetch, s.engine_cascade);
        let vram = sim.topology().devices.iter().any(|d| d.has_vram());
        if policy != PolicyKind::Oracle && vram && s.prefetch > 0 && k.page_table_reads == 0 {
            return Err(format!("{}: {} prefetches and no page-table read", policy.name(), s.prefetch));
        }
    }
    report.simulated_ns = sim.makespan_ns() - started;
    report.compute_ns = k.time_compute_ns - k0.time_compute_ns;
    report.local_ns = k.time_local_access_ns - k0.time_local_access_ns;
    report.remote_ns = k.time_remote_access_ns - k0.time_remote_access_ns;
    report.migration_ns = k.time_migration_ns - k0.time_migration_ns;
    report.fault_ns = k.time_fault_ns - k0.time_fault_ns;
    report.tlb_ns = k.time_tlb_ns - k0.time_tlb_ns;
    report.calls_ns = k.time_calls_ns - k0.time_calls_ns;
    report.bytes_to_vram = k.bytes_to_vram;
    report.bytes_to_system = k.bytes_to_system;
    report.bytes_device_to_device = k.bytes_device_to_device;
    report.bytes_moved = k.bytes_to_vram + k.bytes_to_system + k.bytes_device_to_device;
    report.migrations = k.migrations_to_vram + k.migrations_to_system + k.migrations_device_to_device;
    report.gpu_faults = k.gpu_faults;
    report.cpu_faults = k.cpu_faults;
    report.evictions = k.evictions;
    report.remote_access_bytes = k.remote_access_bytes;
    report.ioctls = k.ioctls;
    report.page_table_reads = k.page_table_reads;
    report.ping_pongs = chunks.ping_pongs;
    report.retries = retries;
    report.fallbacks = fallbacks;
    report.pins = pins;
    report.hint_errors = hint_errors;
    let o = crate::optimum::optimum(w);
    report.optimum_ns = o.bound_ns;
    report.offline_ns = o.offline_ns;
    report.calls_bound_ns = o.calls_ns;
    // Content: every page holds what was last written to it.
    let mut ok = true;
    for b in &w.buffers {
        let (lo, n) = b.pages();
        let want = (lo..lo + n).step_by(PAGE as usize).fold(0u64, |acc, p| acc.wrapping_add(page_checksum(p, shadow.get(&p).copied().unwrap_or(0))));
        ok &= sim.checksum(lo, n).map_err(|e| e.to_string())? == want;
        report.placements.push((b.name.clone(), placement_name(sim.placement(lo, n))));
    }
    sim.check_invariants()?;
    report.content_ok = ok;
    Ok(report)
}

/// The pages [start, start+size) lies on: what the simulator writes (an
/// access covers whole pages) and what the content check compares.
fn pages(start: u64, size: u64) -> impl Iterator<Item = u64> {
    (start / PAGE * PAGE..(start + size).next_multiple_of(PAGE)).step_by(PAGE as usize)
}

/// Maps the buffers as a process has them: every buffer its own anonymous
/// mapping, an arena of packed buffers one, and the rest of their region
/// (a 2 MiB hole on each side too) unmapped.
fn map_buffers(sim: &Sim, w: &Workload) -> Result<(), String> {
    let maps = w.mappings();
    let (Some(first), Some(last)) = (maps.first(), maps.last()) else { return Ok(()) };
    let lo = (first.0 & !(CHUNK - 1)).saturating_sub(CHUNK);
    let hi = (last.0 + last.1).next_multiple_of(CHUNK) + CHUNK;
    sim.munmap(lo, hi - lo).map_err(|e| format!("munmap of the buffers' region: {e}"))?;
    for &(s, n) in &maps {
        sim.mmap(s, n, false).map_err(|e| format!("mmap of [{s:#x}, +{n:#x}): {e}"))?;
    }
    Ok(())
}

/// How strongly an access claims its span: atomics over writes over reads.
fn strength(a: Access) -> u8 {
    match a {
        Access::Read => 0,
        Access::Write => 1,
        Access::Atomic => 2,
    }
}

/// Spans with the strongest access of the arguments that named each, in
/// the order first named: two pointers into one allocation are one span.
fn merged(spans: impl Iterator<Item = (u64, u64, Access)>) -> Vec<(u64, u64, Access)> {
    let mut v: Vec<(u64, u64, Access)> = Vec::new();
    for (s, n, a) in spans {
        match v.iter_mut().find(|x| (x.0, x.1) == (s, n)) {
            Some(x) if strength(a) > strength(x.2) => x.2 = a,
            Some(_) => {}
            None => v.push((s, n, a)),
        }
    }
    v
}

/// What a runtime with an allocation table knows of a launch: the pages of
/// each allocation (the workload's buffer, a packed one itself) an
/// argument is into.
fn extents(w: &Workload, args: &[Arg], allocs: &[Option<usize>]) -> Vec<(u64, u64, Access)> {
    let alloc = |i: usize, a: &Arg| allocs.get(i).copied().flatten().map(|b| &w.buffers[b]).or_else(|| w.buffer_of(a.start, a.size));
    merged(args.iter().enumerate().filter_map(|(i, a)| alloc(i, a).map(|b| (b.pages().0, b.pages().1, a.access))))
}

/// An application's call under a baseline, issued as Intel's compute
/// runtime issues it with raw ioctls:
/// alloc_vram a PREFETCH to the target's region on the VM of the device
/// that holds it (system memory: region 0 on the calling device's VM),
/// evict a PREFETCH to region 0 on every device's VM, preferred location
/// and atomic mode a madvise on every device's VM. Hints never fail: the
/// failed ioctls are counted and the run goes on.
fn raw_call(drv: &SimDriver, devs: &[(i32, u32)], w: &Workload, c: &Call) -> u64 {
    let region = |device: u32, tile: u16| if w.topology.devices[device as usize].has_vram() { tile as u32 + 1 } else { 0 };
    let results: Vec<Result<(), xesvm::Errno>> = match *c {
        Call::AllocVram { device, start, size, target } => {
            let (on, r) = match target {
                Target::System => (device, 0),
                Target::Device { device: d, tile } => (d, region(d, tile)),
            };
            let (fd, vm) = devs[on as usize];
            vec![xe::prefetch(drv, fd, vm, start, size, r)]
        }
        Call::Evict { start, size } => devs.iter().map(|&(fd, vm)| xe::prefetch(drv, fd, vm, start, size, 0)).collect(),
        Call::Preferred { start, size, target } => devs
            .iter()
            .enumerate()
            .map(|(i, &(fd, vm))| {
                let loc = match target {
                    Target::System => xe::PreferredLoc::DefaultSystem,
                    Target::Device { device, .. } if device as usize == i && w.topology.devices[i].tiles == 1 => xe::PreferredLoc::DefaultDevice,
                    Target::Device { device, tile } => xe::PreferredLoc::Device { devmem_fd: devs[device as usize].0, region_instance: region(device, tile) as u16 },
                };
                xe::madvise_preferred_loc(drv, fd, vm, start, size, loc)
            })
            .collect(),
        Call::AtomicMode { start, size, mode } => devs.iter().map(|&(fd, vm)| xe::madvise_atomic(drv, fd, vm, start, size, mode)).collect(),
    };
    results.iter().filter(|r| r.is_err()).count() as u64
}

/// A runtime placement call as a span, with instants for what it reports.
#[allow(clippy::too_many_arguments)]
fn trace_placement(t: &mut Trace, track: u32, t0: u64, t1: u64, start: u64, size: u64, target: &str, r: &Result<policy::Placed, xesvm::Errno>) {
    let outcome = match r {
        Ok(p) if p.in_place => "in place".to_string(),
        Ok(p) if p.pinned => "pinned".to_string(),
        Ok(p) if p.fell_back => format!("fell back ({:?})", p.cause),
        Ok(p) if p.bytes_moved > 0 => "moved".to_string(),
        Ok(p) if p.on_fault => "left to faults".to_string(),
        Ok(_) => "placed".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    t.span("alloc_vram", track, t0, t1, json!({"start": start, "bytes": size, "target": target, "outcome": outcome}));
    if let Ok(p) = r {
        if p.retries > 0 {
            t.instant("retry", track, t1, json!({"retries": p.retries}));
        }
        if p.pinned {
            t.instant("pin", track, t1, json!({"start": start, "bytes": size}));
        }
        if p.fell_back {
            t.instant("fallback", track, t1, json!({"cause": format!("{:?}", p.cause)}));
        }
    }
}

/// Per 2 MiB chunk of every buffer: where it was, to count ping-pongs.
struct ChunkHistory {
    chunks: Vec<(u64, u64)>,
    /// (current place, place before the last move)
    places: Vec<(Placement, Option<Placement>)>,
    ping_pongs: u64,
}

impl ChunkHistory {
    fn new(w: &Workload) -> Self {
        let chunks: Vec<(u64, u64)> = w
            .buffers
            .iter()
            .flat_map(|b| {
                let (lo, n) = b.pages();
                (lo..lo + n).step_by(CHUNK as usize).map(move |s| (s, CHUNK.min(lo + n - s)))
            })
            .collect();
        let places = vec![(Placement::Unpopulated, None); chunks.len()];
        ChunkHistory { chunks, places, ping_pongs: 0 }
    }

    fn sample(&mut self, sim: &Sim) {
        for (i, &(s, n)) in self.chunks.iter().enumerate() {
            let now = sim.placement(s, n);
            let (cur, prev) = self.places[i];
            if now != cur && cur != Placement::Unpopulated {
                if Some(now) == prev {
                    self.ping_pongs += 1;
                }
                self.places[i] = (now, Some(cur));
            } else if now != cur {
                self.places[i] = (now, prev);
            }
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
