//! Tests of the runner (runner.rs).
use super::*;
use xesvm::sim::Topology;

const MIB: u64 = 1 << 20;

fn two() -> Topology {
    let mut t = Topology::preset("2dgpu-p2p").unwrap();
    for d in &mut t.devices {
        d.vram_per_tile = 64 * MIB;
    }
    t
}

/// Every policy runs on an integrated GPU: the baselines bind the mirror
/// with the coherent PAT index the device needs, as the library does (with
/// PAT 0 the kernel refuses a non-coherent mirror there, and `--compare`
/// and `bench --generate --topology igpu` failed for kernel and prefetch).
#[test]
fn every_policy_runs_on_an_integrated_gpu() {
    let mut w = Workload::new("igpu", Topology::preset("igpu").unwrap());
    let a = w.buffer("a", 8 * MIB);
    w.cpu(a, 8 * MIB, true);
    w.launch(0, vec![(a, 8 * MIB, Access::Write)]);
    w.cpu(a, 8 * MIB, false);
    for p in PolicyKind::ALL {
        let r = run(&w, p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        assert!(r.content_ok && r.gpu_errors == 0, "{p:?}");
    }
}

/// Each policy's run of a small scenario moves the bytes it implies.
#[test]
fn each_policy_moves_the_bytes_the_scenario_implies() {
    let mut w = Workload::new("stream", two());
    let a = w.buffer("a", 8 * MIB);
    w.cpu(a, 8 * MIB, true);
    w.launch(1, vec![(a, 8 * MIB, Access::Read)]);
    w.cpu(a, 8 * MIB, false);
    for p in PolicyKind::ALL {
        let r = run(&w, p).unwrap();
        assert!(r.content_ok, "{p:?}");
        assert_eq!(r.bytes_device_to_device, 0);
        assert_eq!(r.gpu_errors, 0);
        assert!(r.simulated_ns >= r.optimum_ns);
        // Every policy moves the 8 MiB to device 1 once, and back once
        // for the CPU read: 16 MiB (the default engine places a launch's
        // span as the runtime's prefetch does, docs/design.md).
        assert_eq!((r.bytes_to_vram, r.bytes_to_system, r.remote_access_bytes), (8 * MIB, 8 * MIB, 0), "{p:?}: {r:?}");
    }
    let k = run(&w, PolicyKind::Kernel).unwrap();
    let x = run(&w, PolicyKind::Xesvm).unwrap();
    assert_eq!(k.gpu_faults, 4, "kernel: one fault per 2 MiB range");
    assert_eq!(x.gpu_faults, 0, "xesvm bound it before the launch");
    assert!(x.simulated_ns < k.simulated_ns);
}

/// The engines' work, the sum of the time categories, is at least the
/// program's time (at every moment some engine is busy: a wait is always
/// for another engine's work) and at most every engine busy all along.
fn assert_breakdown_sums(r: &Report, w: &Workload) {
    let sum: u64 = r.breakdown().iter().map(|&(_, ns)| ns).sum();
    let engines = 2 * w.topology.devices.len() as u64 + 1 + (w.placement_thread == PlacementThread::Helper) as u64;
    assert!(
        r.simulated_ns <= sum && sum <= engines * r.simulated_ns,
        "{} {}: the categories {:?} sum to {sum}, the program took {}",
        w.name,
        r.policy,
        r.breakdown(),
        r.simulated_ns
    );
}

/// Every advance of a simulated clock is charged to one category: the
/// categories sum to the engines' work, on suite workloads and on the
/// example scenarios, under every policy; on one device with every step
/// waiting for the one before, exactly to the program's time.
#[test]
fn time_categories_sum_to_the_engines_work() {
    let params = crate::suite::Params { topology: crate::suite::machine("2dgpu-p2p", 64, 0).unwrap(), iterations: 2 };
    let mut charged = [0u64; 7];
    for w in crate::suite::all(&params) {
        for p in PolicyKind::ALL {
            let r = run(&w, p).unwrap();
            assert_breakdown_sums(&r, &w);
            for (c, (_, ns)) in charged.iter_mut().zip(r.breakdown()) {
                *c += ns;
            }
        }
    }
    let mut serial = Workload::new("serial", two());
    let a = serial.buffer("a", 8 * MIB);
    for _ in 0..3 {
        serial.cpu(a, 8 * MIB, true);
        serial.launch(0, vec![(a, 8 * MIB, Access::Write)]);
    }
    serial.cpu(a, 8 * MIB, false);
    for p in PolicyKind::ALL {
        let r = run(&serial, p).unwrap();
        assert_eq!(r.breakdown().iter().map(|&(_, ns)| ns).sum::<u64>(), r.simulated_ns, "{p:?}");
    }
    // The suite exercises every category.
    assert!(charged.iter().all(|&ns| ns > 0), "{charged:?}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    for name in ["training.toml", "atomics.toml", "free-reuse.toml", "oversubscribe.toml"] {
        let s = crate::scenario::parse(&std::fs::read_to_string(dir.join(name)).unwrap(), &dir).unwrap();
        for p in PolicyKind::ALL {
            assert_breakdown_sums(&run(&s.workload, p).unwrap(), &s.workload);
        }
    }
}

/// A run whose GPU access failed has no ratio to the bound.
#[test]
fn a_failed_access_has_no_ratio() {
    let r = Report { simulated_ns: 10, optimum_ns: 5, gpu_errors: 1, ..Default::default() };
    assert_eq!(r.vs_optimum(), None);
    assert_eq!(Report { gpu_errors: 0, ..r }.vs_optimum(), Some(2.0));
}

/// A launch on tile 0 of `device` over one span, knowing `knows`.
fn launch(w: &mut Workload, device: u32, start: u64, size: u64, access: Access, knows: Knows) {
    w.steps.push(Step::Launch { device, tile: 0, args: vec![Arg::new(start, size, access)], compute_ns: 0, knows, allocs: Vec::new() });
}

fn placement_of<'a>(r: &'a Report, name: &str) -> &'a str {
    &r.placements.iter().find(|(n, _)| n == name).unwrap().1
}

/// Each buffer is its own mapping, an arena of packed buffers one, with
/// holes between and around them: a CPU access there faults.
#[test]
fn buffers_are_mapped_as_a_process_maps_them() {
    let mut w = Workload::new("maps", two());
    let a = w.buffer("a", 3 * MIB + 100);
    let b = w.buffer("b", MIB);
    let c = w.packed_buffer("c", 5000);
    let d = w.packed_buffer("d", MIB);
    assert_eq!(w.mappings(), vec![(a, 3 * MIB + PAGE), (b, (d + MIB).next_multiple_of(PAGE) - b)]);
    assert!(c > b && d > c);
    let sim = Sim::new(w.topology.clone()).unwrap();
    map_buffers(&sim, &w).unwrap();
    let drv = SimDriver::new(sim.clone());
    use xesvm::driver::Driver;
    assert_eq!(drv.cpu_mapping(a + MIB), Ok((a, a + 3 * MIB + PAGE)));
    assert_eq!(drv.cpu_mapping(d + 10), Ok((b, (d + MIB).next_multiple_of(PAGE))));
    for hole in [a - PAGE, a + 3 * MIB + PAGE, b - PAGE, (d + MIB).next_multiple_of(PAGE)] {
        assert_eq!(sim.cpu_access(hole, PAGE, Access::Read, 0), Err(xesvm::Errno::EFAULT), "{hole:#x}");
    }
    sim.cpu_access(a, 3 * MIB + 100, Access::Write, 1).unwrap();
}

/// The prefetch baseline prefetches what it knows: the argument's span,
/// the whole allocation, or nothing (the launch's GPU faults move it).
#[test]
fn the_prefetch_baseline_prefetches_what_the_runtime_knows() {
    let run_at = |knows| {
        let mut w = Workload::new("part", two());
        let a = w.buffer("a", 8 * MIB);
        w.cpu(a, 8 * MIB, true);
        launch(&mut w, 1, a, 2 * MIB, Access::Write, knows);
        run(&w, PolicyKind::Prefetch).unwrap()
    };
    let (p, e, s) = (run_at(Knows::Pointer), run_at(Knows::Extent), run_at(Knows::Span));
    for r in [&p, &e, &s] {
        assert!(r.content_ok && r.gpu_errors == 0, "{r:?}");
    }
    assert_eq!((s.bytes_to_vram, s.gpu_faults), (2 * MIB, 0), "span: the 2 MiB, prefetched");
    assert_eq!((e.bytes_to_vram, e.gpu_faults), (8 * MIB, 0), "extent: the whole buffer, prefetched");
    assert_eq!(placement_of(&e, "a"), "device 1 VRAM (tile 0)");
    assert_eq!(p.bytes_to_vram, 2 * MIB, "pointer: the fault moves its range");
    assert!(p.gpu_faults > 0, "pointer: no prefetch, the launch faults");
    assert!(p.ioctls < s.ioctls, "pointer: no prefetch ioctl ({} vs {})", p.ioctls, s.ioctls);
}

/// The baselines apply the application's own calls as NEO does, with
/// raw ioctls: alloc_vram moves the span, evict brings it back, a
/// preferred location of system memory keeps the kernel's faults from
/// moving it.
#[test]
fn the_baselines_apply_the_applications_calls() {
    let mut w = Workload::new("calls", two());
    let a = w.buffer("a", 4 * MIB);
    let b = w.buffer("b", 4 * MIB);
    let c = w.buffer("c", 4 * MIB);
    for x in [a, b, c] {
        w.cpu(x, 4 * MIB, true);
    }
    w.steps.push(Step::Call(Call::AllocVram { device: 0, start: a, size: 4 * MIB, target: Target::Device { device: 1, tile: 0 } }));
    w.steps.push(Step::Call(Call::AllocVram { device: 0, start: b, size: 4 * MIB, target: Target::Device { device: 0, tile: 0 } }));
    w.steps.push(Step::Call(Call::Evict { start: b, size: 4 * MIB }));
    w.steps.push(Step::Call(Call::Preferred { start: c, size: 4 * MIB, target: Target::System }));
    w.steps.push(Step::Call(Call::AtomicMode { start: c, size: 4 * MIB, mode: DRM_XE_ATOMIC_GLOBAL }));
    launch(&mut w, 0, c, 4 * MIB, Access::Write, Knows::Pointer);
    for p in [PolicyKind::Kernel, PolicyKind::Prefetch] {
        let r = run(&w, p).unwrap();
        assert!(r.content_ok && r.gpu_errors == 0 && r.hint_errors == 0, "{p:?}: {r:?}");
        assert_eq!(placement_of(&r, "a"), "device 1 VRAM (tile 0)", "{p:?}: alloc_vram to the other device's VRAM");
        assert_eq!(placement_of(&r, "b"), "system", "{p:?}: moved, then evicted");
        assert_eq!(placement_of(&r, "c"), "system", "{p:?}: preferred system memory, the faults left it");
        assert_eq!(r.bytes_to_vram, 8 * MIB, "{p:?}");
    }
    // Without the preferred location the kernel's fault moves c.
    w.steps.retain(|s| !matches!(s, Step::Call(Call::Preferred { .. })));
    assert_eq!(placement_of(&run(&w, PolicyKind::Kernel).unwrap(), "c"), "device 0 VRAM (tile 0)");
    // A hint that fails is counted, and the run goes on.
    w.steps.insert(0, Step::Call(Call::AtomicMode { start: a, size: 4 * MIB, mode: 99 }));
    let r = run(&w, PolicyKind::Kernel).unwrap();
    assert_eq!(r.hint_errors, 2, "one madvise per device VM refused");
}

/// At the pointer level the library is handed the mapping the pointer lies
/// in (SVM_ALLOC_EXTENT), not the bytes the kernel touches, and leaves the
/// move to the launch's faults, as the runtime does without xesvm: only
/// what the kernel touches moves. With an allocation table the runtime's
/// own prefetch moves the allocation, and so does the default engine; with
/// the span, the span.
#[test]
fn an_allocation_found_from_a_pointer_is_left_to_the_faults() {
    let run_at = |knows, access| {
        let mut w = Workload::new("part", two());
        let a = w.buffer("a", 16 * MIB);
        let b = w.buffer("b", 6 * MIB);
        let c = w.packed_buffer("c", 6 * MIB);
        for (x, n) in [(a, 16 * MIB), (b, 6 * MIB), (c, 6 * MIB)] {
            w.cpu(x, n, true);
        }
        launch(&mut w, 0, a + 4 * MIB, 2 * MIB, access, knows);
        launch(&mut w, 0, c, 2 * MIB, access, knows);
        run(&w, PolicyKind::Xesvm).unwrap()
    };
    let (p, e, s) = (run_at(Knows::Pointer, Access::Write), run_at(Knows::Extent, Access::Write), run_at(Knows::Span, Access::Write));
    for r in [&p, &e, &s] {
        assert!(r.content_ok && r.gpu_errors == 0, "{r:?}");
    }
    let vram = "device 0 VRAM (tile 0)";
    for r in [&p, &s] {
        assert_eq!((placement_of(r, "a"), placement_of(r, "b"), placement_of(r, "c")), ("mixed", "system", "mixed"), "{r:?}");
        assert_eq!(r.bytes_to_vram, 4 * MIB, "{r:?}");
    }
    assert!(p.gpu_faults > 0, "left to the faults: {p:?}");
    assert_eq!(s.gpu_faults, 0, "span: placed before the launch");
    assert_eq!((placement_of(&e, "a"), placement_of(&e, "b"), placement_of(&e, "c")), (vram, "system", vram), "extent: {e:?}");
    assert_eq!((e.bytes_to_vram, e.gpu_faults), (22 * MIB, 0), "extent: the two allocations, before the launch");
}

#[test]
fn atomics_ping_pong_is_counted() {
    let mut w = Workload::new("hot", two());
    let a = w.buffer("a", 2 * MIB);
    for i in 0..6 {
        w.launch(i % 2, vec![(a, 2 * MIB, Access::Atomic)]);
    }
    let r = run(&w, PolicyKind::Kernel).unwrap();
    // The first atomic is born in VRAM by a clear; every later one forces a move.
    assert_eq!(r.bytes_moved, 5 * 2 * MIB, "atomics force every move");
    assert!(r.simulated_ns >= r.optimum_ns && r.optimum_ns > 0);
    assert_eq!(r.ping_pongs, 4);
    assert!(r.content_ok);
}

/// Two devices each running the same kernels on their own data take
/// about the time of one (docs/cost-model.md, "Timelines"), under every
/// policy; the same kernels all on one device take about twice as long.
/// The kernels dominate, as in a data-parallel step: the host's own
/// work (writing the inputs, a prefetch that blocks it) is what the two
/// devices do not overlap.
#[test]
fn two_independent_devices_take_the_time_of_one() {
    // Each device's launches, interleaved as a program drives two devices;
    // `keep` says whose steps stay.
    let program = |devices: [u32; 2], keep: [bool; 2]| {
        let mut w = Workload::new("independent", two());
        let bufs: Vec<u64> = (0..2).map(|i| w.buffer(&format!("x{i}"), 24 * MIB)).collect();
        for i in (0..2).filter(|&i| keep[i]) {
            w.cpu(bufs[i], 24 * MIB, true);
        }
        for _ in 0..12 {
            for i in (0..2).filter(|&i| keep[i]) {
                let args = vec![Arg { passes: 4, ..Arg::new(bufs[i], 24 * MIB, Access::Write) }];
                w.steps.push(Step::Launch { device: devices[i], tile: 0, args, compute_ns: 10_000_000, knows: Knows::Span, allocs: Vec::new() });
            }
        }
        w.steps.push(Step::Wait);
        w
    };
    for p in [PolicyKind::Kernel, PolicyKind::Prefetch, PolicyKind::Xesvm] {
        let apart = run(&program([0, 1], [true, true]), p).unwrap();
        let together = run(&program([0, 0], [true, true]), p).unwrap();
        let alone = run(&program([0, 1], [true, false]), p).unwrap();
        assert!(apart.content_ok && together.content_ok && alone.content_ok);
        let (a, t, s) = (apart.simulated_ns as f64, together.simulated_ns as f64, alone.simulated_ns as f64);
        assert!(a < 1.15 * s, "{p:?}: two devices {a} ns, one device's share alone {s} ns");
        assert!(t > 1.8 * s, "{p:?}: both on one device {t} ns, one share {s} ns");
        assert!(apart.simulated_ns >= apart.optimum_ns && together.simulated_ns >= together.optimum_ns);
    }
}

/// A program that writes each launch's input on the CPU: prefetching from
/// a helper thread lets the submitting thread write the next input while
/// the copy runs, so it takes less time than prefetching from the
/// submitting thread (as on hardware); both respect the bound.
#[test]
fn prefetching_from_a_helper_thread_overlaps_the_submitting_threads_work() {
    let program = |thread: PlacementThread| {
        let mut w = Workload::new("inputs", two());
        w.placement_thread = thread;
        let out = w.buffer("out", 4 * MIB);
        let inputs: Vec<u64> = (0..6).map(|i| w.buffer(&format!("in{i}"), 24 * MIB)).collect();
        for &b in &inputs {
            w.cpu(b, 24 * MIB, true);
            let args = vec![Arg { passes: 8, ..Arg::new(b, 24 * MIB, Access::Read) }, Arg::new(out, 4 * MIB, Access::Write)];
            w.steps.push(Step::Launch { device: 0, tile: 0, args, compute_ns: 1_000_000, knows: Knows::Span, allocs: Vec::new() });
        }
        w.cpu(out, 4 * MIB, false);
        w
    };
    // The runtime's own prefetch (xesvm's choices may differ with timing).
    let p = PolicyKind::Prefetch;
    let submitting = run(&program(PlacementThread::Submitting), p).unwrap();
    let helper = run(&program(PlacementThread::Helper), p).unwrap();
    assert!(submitting.content_ok && helper.content_ok);
    assert_eq!(submitting.bytes_to_vram, helper.bytes_to_vram, "{p:?}: the same copies");
    assert!(
        (helper.simulated_ns as f64) < 0.9 * submitting.simulated_ns as f64,
        "{p:?}: helper {} ns, submitting {} ns",
        helper.simulated_ns,
        submitting.simulated_ns
    );
    assert!(helper.simulated_ns >= helper.optimum_ns && submitting.simulated_ns >= submitting.optimum_ns);
}
