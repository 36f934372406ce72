//! Soak: random placement operations from many threads on one simulated
//! machine, with injected EBUSY / ENOMEM / EINTR, checking after every phase
//! that nothing was lost and that every invariant holds.
//!
//! Each thread owns a few 2 MiB ranges. It places them (resolve,
//! alloc_vram on any device, evict, preferred locations, invalidations),
//! has the GPUs and the CPU read and write them, and sometimes unmaps and
//! maps them again; it keeps a shadow of what each range must contain,
//! computed from the content tokens of its own writes, never read back from
//! the simulator. A shared region that every thread places and reads but
//! nobody writes must keep its content through all the migrations racing
//! over it. After each phase (all threads stopped at a barrier, injections
//! off) the soak checks:
//!
//! - every range's checksum equals its shadow (no page lost or stale);
//! - the simulator's invariants (`check_invariants`: each page in one
//!   place, no pagemap over capacity, exact accounting);
//! - the context's statistics count exactly the calls the threads made;
//! - the library's per-tile placed-bytes counters agree with its records.
//!
//! `cargo run --release -p xesvm-tools --bin xesvm-soak -- --threads 4 --ops 1000000`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use clap::Parser;
use xesvm::sim::driver::SimDriver;
use xesvm::errno::Errno;
use xesvm::policy::{AllocFlags, Config, Context, DeviceHandle};
use xesvm::topology::Pagemap;
use xesvm::sim::mem::{page_checksum, write_token};
use xesvm::sim::{Access, Injection, Point, Sim, Topology};

const MIB: u64 = 1 << 20;
const RANGE: u64 = 2 * MIB;
const PAGE: u64 = 4096;
/// Private ranges start here, one block of `--ranges` per thread.
const PRIVATE: u64 = 0x20_0000_0000;
/// The shared, read-only region.
const SHARED: u64 = 0x10_0000_0000;

#[derive(Parser, Debug)]
#[command(about = "Random placement operations from many threads, checked after every phase")]
struct Args {
    /// Threads calling the library at once.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Operations in all (over all threads); the run stops at the first of
    /// --ops and --seconds.
    #[arg(long, default_value_t = 200_000)]
    ops: u64,
    /// Wall-clock limit in seconds (0: none).
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
    /// Phases: the checks run after each.
    #[arg(long, default_value_t = 10)]
    phases: u32,
    /// Probability that a driver step fails, for each of the injections
    /// (EBUSY in migrations, ENOMEM in VRAM allocation, EINTR in ioctls).
    #[arg(long, default_value_t = 0.01)]
    inject: f64,
    /// A preset (dgpu, 2dgpu-p2p, 2dgpu-nolink, 4dgpu-p2p, max-node) or a topology file.
    #[arg(long, default_value = "4dgpu-p2p")]
    topology: String,
    /// VRAM per tile in MiB (0: the topology's); small, so that placements
    /// evict each other.
    #[arg(long, default_value_t = 16)]
    vram_mib: u64,
    /// Private 2 MiB ranges per thread.
    #[arg(long, default_value_t = 8)]
    ranges: u64,
    /// Shared read-only 2 MiB ranges.
    #[arg(long, default_value_t = 16)]
    shared: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// xorshift64*: a small, seeded generator (each thread its own).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The checksum a range must have after a write of `value` over all of it.
fn written(start: u64, size: u64, value: u64) -> u64 {
    (start..start + size).step_by(PAGE as usize).fold(0u64, |s, a| s.wrapping_add(page_checksum(a, write_token(value, a))))
}

/// What the threads did, by kind of call and outcome (summed at the end).
#[derive(Default)]
struct Tally {
    calls: [AtomicU64; KINDS],
    ok: [AtomicU64; KINDS],
    errors: [AtomicU64; KINDS],
    fallbacks: AtomicU64,
    pinned: AtomicU64,
    moved: AtomicU64,
    rewrites: AtomicU64,
    /// Resolve calls made by the alloc_vram operations (they resolve first).
    alloc_resolves: AtomicU64,
}
const KINDS: usize = 10;
const NAMES: [&str; KINDS] =
    ["resolve", "alloc_vram", "evict", "set_preferred", "clear_preferred", "invalidate", "query", "gpu access", "cpu access", "remap"];

struct World {
    sim: Arc<Sim>,
    ctx: Context,
    dev: Vec<DeviceHandle>,
    /// Every pagemap with its capacity (0: system memory).
    pagemaps: Vec<(Pagemap, u64)>,
    fds: Vec<(i32, u32)>,
}

fn arm_injections(sim: &Sim, p: f64, seed: u64) {
    if p <= 0.0 {
        return;
    }
    for (i, (point, errno)) in [(Point::Migrate, Errno::EBUSY), (Point::VramAlloc, Errno::ENOMEM), (Point::Ioctl, Errno::EINTR)].into_iter().enumerate() {
        sim.inject(Injection { probability: p, seed: seed.wrapping_mul(31).wrapping_add(i as u64 + 1), ..Injection::count(point, errno, 0) });
    }
}

/// One thread's share of a phase; returns the operations done.
#[allow(clippy::too_many_arguments)] // a thread's whole state, passed once
fn worker(w: &World, t: usize, args: &Args, ops: u64, deadline: Option<Instant>, shadow: &mut [u64], rng: &mut Rng, tally: &Tally) -> u64 {
    let base = PRIVATE + t as u64 * args.ranges * RANGE;
    let n = w.dev.len() as u64;
    for done in 0..ops {
        if done % 256 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return done;
        }
        // Mostly own ranges; placement calls also on the shared region.
        let own = rng.below(4) != 0;
        let r = rng.below(if own { args.ranges } else { args.shared });
        let start = if own { base + r * RANGE } else { SHARED + r * RANGE };
        let d = rng.below(n) as usize;
        let kind = match rng.below(100) {
            0..=19 => 0,
            20..=44 => 1,
            45..=52 => 2,
            53..=56 => 3,
            57..=58 => 4,
            59..=60 => 5,
            61..=64 => 6,
            65..=84 => 7,
            85..=97 => 8,
            _ => 9,
        };
        tally.calls[kind].fetch_add(1, Ordering::Relaxed);
        let res: Result<(), Errno> = match kind {
            0 => w.ctx.resolve(w.dev[d], 0, start, RANGE, access(rng)).map(drop),
            1 => {
                let target = if rng.below(4) == 0 {
                    w.pagemaps[rng.below(w.pagemaps.len() as u64) as usize].0
                } else {
                    tally.alloc_resolves.fetch_add(1, Ordering::Relaxed);
                    match w.ctx.resolve(w.dev[d], 0, start, RANGE, access(rng)) {
                        Ok(pm) => pm,
                        Err(e) => return fail(done, e),
                    }
                };
                // Half of them past the thrash guard, or most would be pinned;
                // half of them the engine's, whose launches are now and then
                // submitted and reported (the chooser's strategies race too).
                let flags = {
                    let mut f = AllocFlags::empty();
                    f.set(AllocFlags::NO_FALLBACK, rng.below(8) == 0);
                    f.set(AllocFlags::IGNORE_THRASH_GUARD, rng.below(2) == 0);
                    f.set(AllocFlags::ENGINE, rng.below(2) == 0);
                    f
                };
                let report = flags.contains(AllocFlags::ENGINE) && rng.below(4) == 0;
                let duration = rng.below(1_000_000);
                w.ctx
                    .alloc_vram(w.dev[d], start, RANGE, target, flags)
                    .map(|p| {
                        tally.fallbacks.fetch_add(p.fell_back as u64, Ordering::Relaxed);
                        tally.pinned.fetch_add(p.pinned as u64, Ordering::Relaxed);
                        tally.moved.fetch_add(p.bytes_moved, Ordering::Relaxed);
                    })
                    .and_then(|()| if report { w.ctx.launch_submitted(w.dev[d]).and_then(|()| w.ctx.launch_done(w.dev[d], duration)) } else { Ok(()) })
            }
            2 => w.ctx.evict(start, RANGE).map(drop),
            3 => w.ctx.set_preferred(start, RANGE, w.pagemaps[rng.below(w.pagemaps.len() as u64) as usize].0),
            4 => w.ctx.clear_preferred(start, RANGE),
            5 => w.ctx.invalidate(start, RANGE),
            6 => w.ctx.query(start, RANGE).map(drop),
            7 => {
                let (fd, vm) = w.fds[d];
                // Writes only to its own ranges; a 64 KiB piece or the whole range.
                let (s, len) = if rng.below(2) == 0 { (start + rng.below(32) * 64 * 1024, 64 * 1024) } else { (start, RANGE) };
                if own && rng.below(3) == 0 {
                    let v = rng.next();
                    rewrite(tally, shadow, r as usize, start, v, |v| w.sim.gpu_access(fd, vm, 0, start, RANGE, Access::Write, v))
                } else {
                    w.sim.gpu_access(fd, vm, 0, s, len, Access::Read, 0)
                }
            }
            8 => {
                if own && rng.below(2) == 0 {
                    let v = rng.next();
                    rewrite(tally, shadow, r as usize, start, v, |v| w.sim.cpu_access(start, RANGE, Access::Write, v))
                } else {
                    w.sim.cpu_access(start, RANGE, Access::Read, 0)
                }
            }
            _ => {
                if own {
                    // munmap + mmap: contents gone, ranges destroyed.
                    w.sim.munmap(start, RANGE).and_then(|_| w.sim.mmap(start, RANGE, false)).map(|_| shadow[r as usize] = 0)
                } else {
                    w.sim.cpu_access(start, RANGE, Access::Read, 0)
                }
            }
        };
        match res {
            Ok(()) => tally.ok[kind].fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                check_errno(NAMES[kind], e);
                tally.errors[kind].fetch_add(1, Ordering::Relaxed)
            }
        };
    }
    ops
}

fn fail(done: u64, e: Errno) -> u64 {
    panic!("resolve failed with {e:?} after {done} operations: resolve never fails on a valid span of open devices");
}

fn access(rng: &mut Rng) -> xesvm::policy::Access {
    if rng.below(3) == 0 {
        xesvm::policy::Access::Write
    } else {
        xesvm::policy::Access::Read
    }
}

/// Which errnos a call may end with under the soak's injections: anything
/// else is a bug (a panic caught as ENOTRECOVERABLE, EINVAL on valid input).
fn check_errno(what: &str, e: Errno) {
    let allowed = [Errno::EBUSY, Errno::ENOMEM, Errno::ENOSPC, Errno::EINTR, Errno::EAGAIN, Errno::ENODATA];
    assert!(allowed.contains(&e), "{what} failed with {e:?} ({e}), which the soak's injections cannot explain");
}

/// A write of a whole range, retried until it succeeds so that the shadow
/// is exact again (a failed write may have written some pages).
fn rewrite(tally: &Tally, shadow: &mut [u64], r: usize, start: u64, v: u64, write: impl Fn(u64) -> Result<(), Errno>) -> Result<(), Errno> {
    let mut first = Ok(());
    for attempt in 0..10_000 {
        match write(v) {
            Ok(()) => {
                shadow[r] = written(start, RANGE, v);
                return first;
            }
            Err(e) => {
                check_errno("a write", e);
                if attempt == 0 {
                    first = Err(e);
                }
                tally.rewrites.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    panic!("a write of {start:#x} failed 10000 times in a row");
}

/// The machine, the context with every device open, and every range
/// written once by the CPU; with the shadows of the private ranges and the
/// shared region's checksum.
fn build(args: &Args) -> (World, Vec<Vec<u64>>, u64) {
    let mut topo = Topology::preset(&args.topology).unwrap_or_else(|| {
        let text = std::fs::read_to_string(&args.topology).unwrap_or_else(|e| panic!("{}: not a preset, and unreadable: {e}", args.topology));
        Topology::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", args.topology))
    });
    if args.vram_mib > 0 {
        for d in &mut topo.devices {
            if d.vram_per_tile > 0 {
                d.vram_per_tile = args.vram_mib * MIB;
            }
        }
    }
    let sim = Sim::new(topo).expect("simulator");
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let dev: Vec<_> = (0..sim.topology().devices.len() as u32).map(|i| ctx.open_index(i).expect("open")).collect();
    let mut pagemaps = vec![(Pagemap::System, 0)];
    for &h in &dev {
        let d = ctx.device(h).expect("device");
        for (tile, t) in d.tiles.iter().enumerate() {
            if let Some(t) = t {
                pagemaps.push((ctx.pagemap(h, tile as u16).expect("pagemap"), t.capacity));
            }
        }
    }
    let fds = dev.iter().map(|&h| ctx.device(h).map(|d| (d.fd, d.vm_id)).unwrap()).collect();
    let w = World { sim, ctx, dev, pagemaps, fds };
    let shadows = (0..args.threads)
        .map(|t| {
            let base = PRIVATE + t as u64 * args.ranges * RANGE;
            (0..args.ranges)
                .map(|r| {
                    let v = (t as u64) << 32 | r;
                    w.sim.cpu_access(base + r * RANGE, RANGE, Access::Write, v).unwrap();
                    written(base + r * RANGE, RANGE, v)
                })
                .collect()
        })
        .collect();
    w.sim.cpu_access(SHARED, args.shared * RANGE, Access::Write, 0x5eed).unwrap();
    let shared_sum = written(SHARED, args.shared * RANGE, 0x5eed);
    (w, shadows, shared_sum)
}

fn main() {
    let args = Args::parse();
    assert!(args.threads >= 1 && args.phases >= 1 && args.ranges >= 1 && args.shared >= 1);
    let (w, mut shadows, shared_sum) = build(&args);
    println!(
        "xesvm-soak: {} threads, {} ops in {} phases, topology {} ({} devices, {} pagemaps, VRAM {} MiB per tile), injection p={} (EBUSY/ENOMEM/EINTR), seed {}",
        args.threads,
        args.ops,
        args.phases,
        args.topology,
        w.dev.len(),
        w.pagemaps.len(),
        w.pagemaps.get(1).map_or(0, |p| p.1 / MIB),
        args.inject,
        args.seed
    );
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let deadline = (args.seconds > 0.0).then(|| Instant::now() + std::time::Duration::from_secs_f64(args.seconds));
    let per_phase = args.ops.div_ceil(args.phases as u64);
    let mut rngs: Vec<Rng> = (0..args.threads).map(|t| Rng(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (t as u64 + 1) << 20 | 1)).collect();
    let before = w.ctx.stats();
    let begun = Instant::now();
    let mut total = 0u64;
    for phase in 0..args.phases {
        arm_injections(&w.sim, args.inject, args.seed ^ phase as u64);
        let barrier = Barrier::new(args.threads);
        let done: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = shadows
                .iter_mut()
                .zip(rngs.iter_mut())
                .enumerate()
                .map(|(t, (shadow, rng))| {
                    let (w, args, tally, barrier, stop) = (&w, &args, &tally, &barrier, &stop);
                    s.spawn(move || {
                        barrier.wait();
                        if stop.load(Ordering::Relaxed) {
                            return 0;
                        }
                        worker(w, t, args, per_phase / args.threads as u64 + (t < (per_phase % args.threads as u64) as usize) as u64, deadline, shadow, rng, tally)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("a soak thread panicked")).sum()
        });
        total += done;
        w.sim.clear_injections();
        check_phase(&w, &args, &shadows, shared_sum, &tally, &before).unwrap_or_else(|e| {
            eprintln!("xesvm-soak: phase {phase}: {e}");
            std::process::exit(1)
        });
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
            println!("(time limit reached after phase {phase})");
            break;
        }
    }
    let secs = begun.elapsed().as_secs_f64();
    report(&w, &tally, &before, total, secs);
}

fn check_phase(w: &World, args: &Args, shadows: &[Vec<u64>], shared_sum: u64, tally: &Tally, before: &xesvm::policy::StatsSnapshot) -> Result<(), String> {
    w.sim.check_invariants().map_err(|e| format!("simulator invariant broken: {e}"))?;
    for (t, shadow) in shadows.iter().enumerate() {
        for (r, &want) in shadow.iter().enumerate() {
            let start = PRIVATE + (t * args.ranges as usize + r) as u64 * RANGE;
            let got = w.sim.checksum(start, RANGE).map_err(|e| format!("checksum: {e}"))?;
            if got != want {
                return Err(format!("content lost: thread {t} range {r} ({start:#x}): checksum {got:#x}, shadow {want:#x}"));
            }
        }
    }
    let got = w.sim.checksum(SHARED, args.shared * RANGE).map_err(|e| format!("checksum: {e}"))?;
    if got != shared_sum {
        return Err(format!("content lost in the shared region: checksum {got:#x}, expected {shared_sum:#x}"));
    }
    // Statistics: exactly the calls made (alloc_vram calls include the
    // resolve each one made first).
    let s = w.ctx.stats();
    let n = |k: usize| tally.calls[k].load(Ordering::Relaxed);
    let resolves = n(0) + tally.alloc_resolves.load(Ordering::Relaxed);
    let (got_r, got_a, got_e) = (s.resolve_calls - before.resolve_calls, s.alloc_calls - before.alloc_calls, s.evict_calls - before.evict_calls);
    if got_a != n(1) || got_e != n(2) || got_r != resolves {
        return Err(format!(
            "statistics are not exact: alloc_calls {got_a} (made {}), evict_calls {got_e} (made {}), resolve_calls {got_r} (made {resolves})",
            n(1),
            n(2)
        ));
    }
    // The library's two books agree: the per-tile counters resolve reads
    // and the records. (What the records believe may exceed a pagemap's
    // capacity: the kernel evicts to make room without telling anyone, and
    // the library learns it at its next look. What really is in VRAM is the
    // simulator's, checked above.)
    for &(pm, _) in &w.pagemaps {
        let Pagemap::Vram { device, tile } = pm else { continue };
        let h = w.dev.iter().copied().find(|h| h.slot == device).expect("open device");
        let counted = w.ctx.device(h).map_err(|e| format!("{e}"))?.placed[tile as usize].load(Ordering::Relaxed);
        let recorded = w.ctx.placed_bytes(pm);
        if counted != recorded {
            return Err(format!("{pm}: the placed-bytes counter says {counted}, the records {recorded}"));
        }
    }
    Ok(())
}

fn report(w: &World, tally: &Tally, before: &xesvm::policy::StatsSnapshot, total: u64, secs: f64) {
    println!("\n{:<16} {:>12} {:>12} {:>10}", "call", "calls", "ok", "errors");
    for (k, name) in NAMES.iter().enumerate() {
        println!(
            "{:<16} {:>12} {:>12} {:>10}",
            name,
            tally.calls[k].load(Ordering::Relaxed),
            tally.ok[k].load(Ordering::Relaxed),
            tally.errors[k].load(Ordering::Relaxed)
        );
    }
    let s = w.ctx.stats();
    let c = w.sim.counters();
    println!(
        "\nalloc_vram outcomes: {} in place, {} migrations ({} MiB), {} fallbacks, {} pinned",
        s.in_place - before.in_place,
        s.migrations - before.migrations,
        tally.moved.load(Ordering::Relaxed) / MIB,
        tally.fallbacks.load(Ordering::Relaxed),
        tally.pinned.load(Ordering::Relaxed)
    );
    println!(
        "retries: {} (EBUSY {}, ENOMEM {}, EINTR {}), LRU evictions {}, writes retried {}, injected failures {}",
        s.retries - before.retries,
        s.retries_ebusy - before.retries_ebusy,
        s.retries_enomem - before.retries_enomem,
        s.retries_eintr - before.retries_eintr,
        s.lru_evictions - before.lru_evictions,
        tally.rewrites.load(Ordering::Relaxed),
        c.injected
    );
    println!(
        "simulator: {} migrations to VRAM, {} to system, {} device to device, {} GPU faults",
        c.migrations_to_vram, c.migrations_to_system, c.migrations_device_to_device, c.gpu_faults
    );
    println!("\n{total} operations in {secs:.1} s: {:.0} ops/s; content lost: 0; invariants: held after every phase", total as f64 / secs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Args {
        Args::parse_from(["xesvm-soak", "--threads", "2", "--ranges", "2", "--shared", "2", "--topology", "2dgpu-p2p"])
    }

    /// The checks can fail: a page written behind the shadow's back, a
    /// changed shared page and a miscounted call are each reported.
    #[test]
    fn phase_checks_catch_lost_content_and_wrong_statistics() {
        let args = small();
        let (w, shadows, shared_sum) = build(&args);
        let tally = Tally::default();
        let before = w.ctx.stats();
        check_phase(&w, &args, &shadows, shared_sum, &tally, &before).unwrap();

        // Thread 1's second range placed in VRAM, then one page of it
        // written by the CPU (faulted back) without the shadow knowing.
        let start = PRIVATE + (args.ranges + 1) * RANGE;
        w.ctx.alloc_vram(w.dev[0], start, RANGE, w.pagemaps[1].0, AllocFlags::default()).unwrap();
        check_phase(&w, &args, &shadows, shared_sum, &tally, &before).expect_err("an alloc_vram nobody counted");
        tally.calls[1].fetch_add(1, Ordering::Relaxed);
        check_phase(&w, &args, &shadows, shared_sum, &tally, &before).unwrap();
        w.sim.cpu_access(start + 5 * PAGE, PAGE, Access::Write, 99).unwrap();
        let e = check_phase(&w, &args, &shadows, shared_sum, &tally, &before).unwrap_err();
        assert!(e.contains("thread 1 range 1"), "{e}");

        let (w, shadows, shared_sum) = build(&args);
        w.sim.cpu_access(SHARED + RANGE, PAGE, Access::Write, 7).unwrap();
        let e = check_phase(&w, &args, &shadows, shared_sum, &Tally::default(), &w.ctx.stats()).unwrap_err();
        assert!(e.contains("shared region"), "{e}");
    }

    /// A short soak on two threads passes its own checks.
    #[test]
    fn short_soak_holds() {
        let args = Args::parse_from(["xesvm-soak", "--threads", "2", "--ops", "4000", "--phases", "2", "--inject", "0.1"]);
        let (w, mut shadows, shared_sum) = build(&args);
        let tally = Tally::default();
        let before = w.ctx.stats();
        arm_injections(&w.sim, args.inject, 3);
        std::thread::scope(|s| {
            for (t, shadow) in shadows.iter_mut().enumerate() {
                let (w, args, tally) = (&w, &args, &tally);
                s.spawn(move || worker(w, t, args, 2000, None, shadow, &mut Rng(t as u64 + 7), tally));
            }
        });
        w.sim.clear_injections();
        check_phase(&w, &args, &shadows, shared_sum, &tally, &before).unwrap();
        assert_eq!((0..KINDS).map(|k| tally.calls[k].load(Ordering::Relaxed)).sum::<u64>(), 4000);
    }
}
