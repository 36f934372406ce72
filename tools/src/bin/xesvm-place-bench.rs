//! The cost of xesvm's decision path, through the C ABI, on the simulated
//! two-device topology: nanoseconds per `svm_resolve_pagemap`, per
//! `svm_alloc_vram` that finds the range already in place, and per
//! `svm_range_query`, `svm_get_stats` and `svm_set_preferred_location` that
//! changes nothing (median and p99 over at least a million calls, 1 and 2
//! threads), ioctls per call, and each as a ratio to a rejected ioctl on
//! /dev/null timed in the same run: absolute figures move 2-3x between runs
//! on shared machines, the ratio much less.
//!
//! `cargo run --release -p xesvm-tools --bin xesvm-place-bench [-- calls [threads,...]]`
//! (thread counts for the decision path: default `1,2`; `1,2,4,8,16` on a
//! machine with the cores).
//!
//! Each call is timed on its own with the TSC (x86-64; calibrated against
//! the monotonic clock) or the monotonic clock elsewhere; the timer's own
//! cost, measured the same way around an empty body, is subtracted.

use std::ptr;
use std::sync::Barrier;
use std::time::Instant;

use xesvm::ffi::context::*;
use xesvm::ffi::launch::{svm_launch_report, svm_launch_submit};
use xesvm::ffi::placement::*;
use xesvm::ffi::range::*;
use xesvm::ffi::sim::*;
use xesvm::ffi::types::*;

const MIB: u64 = 1 << 20;
const BUF: u64 = 0x10_0000_0000;
const RANGES: u64 = 64;

#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}
#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    xesvm::driver::monotonic_ns()
}

/// Nanoseconds per tick.
fn calibrate() -> f64 {
    let (t0, c0) = (Instant::now(), ticks());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (t1, c1) = (Instant::now(), ticks());
    (t1 - t0).as_nanos() as f64 / (c1 - c0) as f64
}

struct Setup {
    ctx: *mut svm_context,
    sim: *mut svm_sim,
    dev: svm_device,
    vram: svm_pagemap,
}
unsafe impl Sync for Setup {}

/// A simulator of `preset` and a context on it with the default policy.
fn sim_context(preset: &std::ffi::CStr) -> (*mut svm_sim, *mut svm_context) {
    unsafe {
        let mut sim = ptr::null_mut();
        assert_eq!(svm_sim_create(preset.as_ptr(), &mut sim), 0);
        let cfg = svm_context_config {
            struct_size: core::mem::size_of::<svm_context_config>() as u32,
            driver: SVM_DRIVER_SIM,
            sim,
            sim_preset: ptr::null(),
            sim_topology_file: ptr::null(),
            thrash_max_moves: 0,
            _pad: 0,
            thrash_window_ns: 0,
            pin_ns: 0,
            observe_ttl_ns: 0,
            flags: 0,
            _pad2: 0,
            topology_file: ptr::null(),
            bind_timeout_ns: 0,
        };
        let mut ctx = ptr::null_mut();
        assert_eq!(svm_context_create(&cfg, &mut ctx), 0);
        (sim, ctx)
    }
}

fn setup() -> Setup {
    unsafe {
        let (sim, ctx) = sim_context(c"2dgpu-p2p");
        let mut dev = svm_device::default();
        let mut other = svm_device::default();
        assert_eq!(svm_device_open_index(ctx, 0, &mut dev), 0);
        assert_eq!(svm_device_open_index(ctx, 1, &mut other), 0);
        let mut vram = svm_pagemap::default();
        assert_eq!(svm_device_pagemap(ctx, dev, 0, &mut vram), 0);
        for i in 0..RANGES {
            assert_eq!(svm_set_preferred_location(ctx, BUF + i * 2 * MIB, 2 * MIB, vram), 0);
            assert_eq!(svm_alloc_vram(ctx, dev, BUF + i * 2 * MIB, 2 * MIB, vram, 0, ptr::null_mut()), 0);
        }
        Setup { ctx, sim, dev, vram }
    }
}

fn ioctls(s: &Setup) -> u64 {
    let mut c = svm_sim_counters { struct_size: core::mem::size_of::<svm_sim_counters>() as u32, ..Default::default() };
    unsafe { assert_eq!(svm_sim_get_counters(s.sim, &mut c), 0) };
    c.ioctls
}

/// Per-call tick samples of `f` over `calls` calls per thread (after
/// `warmup` calls each), and the wall time from the first thread's start to
/// the last one's end.
fn run(threads: usize, calls: u64, warmup: u64, f: &(dyn Fn(u64) + Sync)) -> (Vec<u64>, f64) {
    let barrier = Barrier::new(threads);
    let mut all = Vec::new();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut v = Vec::with_capacity(calls as usize);
                    for i in 0..warmup {
                        f(i + t as u64);
                    }
                    barrier.wait();
                    let t0 = Instant::now();
                    for i in 0..calls {
                        let a = ticks();
                        f(i + t as u64);
                        let b = ticks();
                        v.push(b - a);
                    }
                    (v, t0, Instant::now())
                })
            })
            .collect();
        for h in hs {
            let (v, t0, t1) = h.join().unwrap();
            all.extend(v);
            first = Some(first.map_or(t0, |f| f.min(t0)));
            last = Some(last.map_or(t1, |l| l.max(t1)));
        }
    });
    (all, (last.unwrap() - first.unwrap()).as_secs_f64())
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let calls: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let thread_counts: Vec<usize> = std::env::args()
        .nth(2)
        .map(|a| a.split(',').map(|t| t.trim().parse().expect("thread counts: a comma-separated list such as 1,2,4")).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let ns_per_tick = calibrate();
    let s = setup();
    let (mut empty, _) = run(1, calls, 10_000, &|_| {});
    let overhead = pct(&mut empty, 0.5);
    let ns = |t: u64| t.saturating_sub(overhead) as f64 * ns_per_tick;

    // The reference: the cheapest call that enters the kernel's ioctl path
    // (request 0 on /dev/null: ENOTTY).
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let null_fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    let rejected = |_: u64| {
        // SAFETY: request 0 takes no argument; /dev/null rejects it.
        let r = unsafe { libc::ioctl(null_fd, 0, 0) };
        debug_assert_eq!(r, -1);
        std::hint::black_box(r);
    };
    let (mut v, _) = run(1, calls, 10_000, &rejected);
    let (ref_med, ref_p99) = (ns(pct(&mut v, 0.5)), ns(pct(&mut v, 0.99)));

    let s = &s; // the closures share the whole (Sync) setup
    // A second context whose runtime reports launches (svm_launch_report):
    // resolve then looks the span's learned strategy up (policy/choose.rs).
    let reported = setup();
    unsafe { assert_eq!(svm_launch_report(reported.ctx, reported.dev, 1_000), 0) };
    let r = &reported;
    let resolve_reported = |i: u64| unsafe {
        let mut pm = svm_pagemap::default();
        let st = svm_resolve_pagemap(r.ctx, r.dev, 0, BUF + (i % RANGES) * 2 * MIB, 2 * MIB, SVM_ACCESS_READ, &mut pm);
        debug_assert_eq!(st, 0);
        std::hint::black_box(pm);
    };
    // An engine placement found in place where launches are reported: the
    // chooser's lookup and the launch's span list; every eighth call ends
    // a launch (submitted and reported), as a runtime's steady loop does.
    let engine_reported = |i: u64| unsafe {
        let mut res = svm_alloc_result { struct_size: core::mem::size_of::<svm_alloc_result>() as u32, ..Default::default() };
        let st = svm_alloc_vram(r.ctx, r.dev, BUF + (i % RANGES) * 2 * MIB, 2 * MIB, r.vram, SVM_ALLOC_ENGINE, &mut res);
        debug_assert!(st == 0 && res.flags & (SVM_RESULT_IN_PLACE | SVM_RESULT_ON_FAULT) != 0);
        if i % 8 == 7 {
            assert_eq!(svm_launch_submit(r.ctx, r.dev), 0);
            assert_eq!(svm_launch_report(r.ctx, r.dev, 10_000), 0);
        }
        std::hint::black_box(res);
    };
    let resolve = |i: u64| unsafe {
        let mut pm = svm_pagemap::default();
        let st = svm_resolve_pagemap(s.ctx, s.dev, 0, BUF + (i % RANGES) * 2 * MIB, 2 * MIB, SVM_ACCESS_READ, &mut pm);
        debug_assert_eq!(st, 0);
        std::hint::black_box(pm);
    };
    let in_place = |i: u64| unsafe {
        let mut r = svm_alloc_result { struct_size: core::mem::size_of::<svm_alloc_result>() as u32, ..Default::default() };
        let st = svm_alloc_vram(s.ctx, s.dev, BUF + (i % RANGES) * 2 * MIB, 2 * MIB, s.vram, 0, &mut r);
        debug_assert!(st == 0 && r.flags & SVM_RESULT_IN_PLACE != 0);
        std::hint::black_box(r);
    };

    let query = |i: u64| unsafe {
        let mut q = svm_range_info { struct_size: core::mem::size_of::<svm_range_info>() as u32, ..Default::default() };
        let st = svm_range_query(s.ctx, BUF + (i % RANGES) * 2 * MIB, 2 * MIB, &mut q);
        debug_assert_eq!(st, 0);
        std::hint::black_box(q);
    };
    let stats = |_: u64| unsafe {
        let mut st = svm_stats { struct_size: core::mem::size_of::<svm_stats>() as u32, ..Default::default() };
        let r = svm_get_stats(s.ctx, &mut st);
        debug_assert_eq!(r, 0);
        std::hint::black_box(st);
    };
    // The ranges already prefer device 0's VRAM (set in setup): nothing to do.
    let preferred = |i: u64| unsafe {
        let r = svm_set_preferred_location(s.ctx, BUF + (i % RANGES) * 2 * MIB, 2 * MIB, s.vram);
        debug_assert_eq!(r, 0);
    };

    println!("xesvm decision path on the simulated 2-device topology (2dgpu-p2p), {calls} calls per thread");
    println!("timer overhead {:.1} ns subtracted; x ioctl: median / a rejected ioctl's median (targets: resolve <= 0.20, in place <= 0.30)", overhead as f64 * ns_per_tick);
    println!();
    println!("{:<34} {:>8} {:>11} {:>11} {:>8} {:>8} {:>12}", "call", "threads", "median ns", "p99 ns", "x ioctl", "p99/med", "ioctls/call");
    println!("{:<34} {:>8} {:>11.1} {:>11.1} {:>8.2} {:>8.1} {:>12}", "ioctl rejected (/dev/null)", 1, ref_med, ref_p99, 1.0, ref_p99 / ref_med.max(0.1), "-");
    let calls_under_test: [(&str, &(dyn Fn(u64) + Sync)); 7] = [
        ("svm_resolve_pagemap", &resolve),
        ("svm_resolve_pagemap (reports on)", &resolve_reported),
        ("svm_alloc_vram (in place)", &in_place),
        ("svm_alloc_vram (engine, reports)", &engine_reported),
        ("svm_range_query", &query),
        ("svm_get_stats", &stats),
        ("svm_set_preferred_location (same)", &preferred),
    ];
    for (name, f) in calls_under_test {
        for &threads in &thread_counts {
            let before = ioctls(s);
            let (mut v, _) = run(threads, calls, 10_000, f);
            // The warm-up calls issue ioctls too.
            let n = (threads as u64 * (calls + 10_000)) as f64;
            let io = (ioctls(s) - before) as f64 / n;
            let (med, p99) = (ns(pct(&mut v, 0.5)), ns(pct(&mut v, 0.99)));
            println!("{:<34} {:>8} {:>11.1} {:>11.1} {:>8.2} {:>8.1} {:>12.3}", name, threads, med, p99, med / ref_med.max(0.1), p99 / med.max(0.1), io);
        }
    }
    println!();
    println!("peer reference (H100, CUDA 13): cudaMemRangeGetAttribute 70 ns, cudaMemAdvise 870 ns per call");
    unsafe {
        svm_context_destroy(s.ctx);
        svm_sim_destroy(s.sim);
        svm_context_destroy(r.ctx);
        svm_sim_destroy(r.sim);
    }
    moving(calls.clamp(100, 4000) / 2, ns_per_tick);
}

/// Placements that move data, from 1 to 16 threads on disjoint ranges: each
/// call moves the thread's next range to the next device's VRAM (one
/// madvise per VM, a prefetch, a fence wait, a page-table read). Calls on
/// disjoint ranges hold disjoint range locks, so what limits the scaling is
/// the simulated driver (one lock) and the machine's cores.
fn moving(calls: u64, ns_per_tick: f64) {
    const MOVING_RANGES: u64 = 16;
    println!();
    println!("svm_alloc_vram that moves 2 MiB (4dgpu-p2p), {calls} calls per thread, {} cores here", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("{:<8} {:>14} {:>9} {:>11} {:>11} {:>8}", "threads", "placements/s", "scaling", "median us", "p99 us", "p99/med");
    let mut base = 0.0;
    for threads in [1usize, 2, 4, 8, 16] {
        let (sim, ctx, dev, vram) = unsafe {
            let (sim, ctx) = sim_context(c"4dgpu-p2p");
            let mut dev = [svm_device::default(); 4];
            let mut vram = [svm_pagemap::default(); 4];
            for d in 0..4 {
                assert_eq!(svm_device_open_index(ctx, d as u32, &mut dev[d]), 0);
                assert_eq!(svm_device_pagemap(ctx, dev[d], 0, &mut vram[d]), 0);
            }
            (sim, ctx, dev, vram)
        };
        struct Shared(*mut svm_context);
        unsafe impl Sync for Shared {}
        let shared = Shared(ctx);
        let shared = &shared;
        let (mut v, wall) = run(threads, calls, 100, &move |i: u64| {
            let slot = thread_slot();
            let start = BUF + (slot * MOVING_RANGES + i % MOVING_RANGES) * 2 * MIB;
            let d = ((i / MOVING_RANGES + slot) % 4) as usize;
            let st = unsafe { svm_alloc_vram(shared.0, dev[d], start, 2 * MIB, vram[d], SVM_ALLOC_IGNORE_THRASH_GUARD, ptr::null_mut()) };
            debug_assert_eq!(st, 0);
        });
        let rate = (threads as u64 * calls) as f64 / wall;
        if threads == 1 {
            base = rate;
        }
        let (med, p99) = (pct(&mut v, 0.5) as f64 * ns_per_tick / 1000.0, pct(&mut v, 0.99) as f64 * ns_per_tick / 1000.0);
        println!("{:<8} {:>14.0} {:>8.2}x {:>11.1} {:>11.1} {:>8.1}", threads, rate, rate / base, med, p99, p99 / med.max(0.001));
        unsafe {
            svm_context_destroy(ctx);
            svm_sim_destroy(sim);
        }
    }
}

/// A small index per thread, in the order threads first ask.
fn thread_slot() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local!(static SLOT: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    SLOT.with(|s| *s)
}
