//! The simulated clocks (docs/cost-model.md, "Timelines"): devices run at
//! once, copies run on copy engines, and transfers that overlap on a lane
//! share its bandwidth.

mod common;

use common::*;
use xesvm::driver::xe::PreferredLoc;
use xesvm::sim::{Access, Arg, Sim, Topology};

const SIZE: u64 = 64 * MIB;
const PASSES: u32 = 16;

fn read(rig: &Rig, dev: usize) -> xesvm::sim::Queued {
    let arg = Arg { passes: PASSES, ..Arg::new(BUF, SIZE, Access::Read) };
    rig.sim.enqueue(rig.fds[dev], rig.vms[dev], 0, &[arg], 0, 0, 0)
}

/// The time `readers` (devices 1..) take to read BUF where `place` left it,
/// each launched at once, from the first start to the last end.
fn readers(topo: Topology, readers: usize, place: impl Fn(&Rig)) -> u64 {
    let rig = Rig::new(topo);
    rig.sim.cpu_access(BUF, SIZE, Access::Write, 1).unwrap();
    place(&rig);
    let runs: Vec<_> = (1..=readers).map(|d| read(&rig, d)).collect();
    assert!(runs.iter().all(|q| q.result.is_ok()));
    // Nothing waited on the host: every launch started when it was queued.
    let now = rig.sim.now_ns();
    assert!(runs.iter().all(|q| q.ran.start_ns == now), "{runs:?} {now}");
    runs.iter().map(|q| q.ran.end_ns).max().unwrap() - now
}

/// `got` is `want` (what the lanes' bandwidth allows), or up to 15 %
/// above it: the transfer simulated first takes its full rate and the
/// others what is left, so where one reader's path is slower than the
/// shared lane, the lane idles in part at the end (a fair share would
/// finish both together).
fn close(got: u64, want: f64, what: &str) {
    let r = got as f64 / want;
    assert!((0.99..1.15).contains(&r), "{what}: {got} ns, expected about {want:.0} ns ({r:.3}x)");
}

/// Two devices reading a third's VRAM in place share its host link: the
/// bytes of both cross it, at its bandwidth (the P2P path of one reader
/// alone is slower than the link: 0.8x of it).
#[test]
fn readers_of_one_peer_share_its_link() {
    let topo = Topology::preset("4dgpu-p2p").unwrap();
    let link = topo.devices[0].host_bandwidth;
    let p2p = topo.peer_bandwidth(1, 0);
    let in_dev0 = |r: &Rig| {
        r.prefetch(0, BUF, SIZE, 1).unwrap();
        for d in 1..4 {
            r.pref_device(d, BUF, SIZE, 0).unwrap();
        }
        assert!(r.in_vram(BUF, SIZE, 0));
    };
    let bytes = (SIZE * PASSES as u64) as f64;
    let one = readers(topo.clone(), 1, in_dev0);
    close(one, bytes / p2p * 1e9, "one reader");
    let two = readers(topo.clone(), 2, in_dev0);
    close(two, 2.0 * bytes / link * 1e9, "two readers");
    let three = readers(topo, 3, in_dev0);
    close(three, 3.0 * bytes / link * 1e9, "three readers");
}

/// Devices reading system memory each over their own link run at once
/// until the host's memory is what binds: then they share it.
#[test]
fn readers_of_system_memory_share_the_hosts_memory() {
    let in_system = |r: &Rig| {
        for d in 0..r.fds.len() {
            r.pref(d, BUF, SIZE, PreferredLoc::DefaultSystem).unwrap();
        }
    };
    let mut topo = Topology::preset("4dgpu-p2p").unwrap();
    let link = topo.devices[1].host_bandwidth;
    let bytes = (SIZE * PASSES as u64) as f64;
    // The workstation's memory outruns three links: each reads at its own.
    assert!(topo.host_memory_bandwidth > 3.0 * link);
    close(readers(topo.clone(), 3, in_system), bytes / link * 1e9, "three readers, fast memory");
    // Memory slower than two links: three readers take what it allows.
    topo.host_memory_bandwidth = 1.5 * link;
    close(readers(topo.clone(), 1, in_system), bytes / link * 1e9, "one reader, slow memory");
    close(readers(topo, 3, in_system), 3.0 * bytes / (1.5 * link) * 1e9, "three readers, slow memory");
}

/// A queued launch leaves the host where it was; `launch` waits for it.
/// A prefetch's copy blocks the calling thread but runs beside a launch
/// queued before it on the same device.
#[test]
fn a_prefetch_runs_beside_the_kernel_before_it() {
    let rig = Rig::preset("b60");
    let other = BUF + 2 * SIZE;
    rig.sim.cpu_access(BUF, SIZE, Access::Write, 1).unwrap();
    rig.sim.cpu_access(other, SIZE, Access::Write, 1).unwrap();
    rig.prefetch(0, BUF, SIZE, 1).unwrap();
    let t0 = rig.sim.now_ns();
    let compute = 50_000_000;
    let q = rig.sim.enqueue(rig.fds[0], rig.vms[0], 0, &[Arg::new(BUF, SIZE, Access::Read)], compute, 0, 0);
    assert_eq!((q.ran.start_ns, rig.sim.now_ns()), (t0, t0), "queued, not waited for");
    assert_eq!(q.ran.end_ns, t0 + compute, "compute-bound");
    // The next launch's data moves while the kernel runs.
    rig.prefetch(0, other, SIZE, 1).unwrap();
    let copied = rig.sim.now_ns();
    assert!(copied > t0 && copied < q.ran.end_ns, "{t0} {copied} {}", q.ran.end_ns);
    assert_eq!(rig.sim.device_free_ns(0), q.ran.end_ns);
    // A launch the host waits for: it starts when the device is free.
    rig.sim.launch(rig.fds[0], rig.vms[0], 0, &[Arg::new(other, SIZE, Access::Read)], compute, 0).unwrap();
    assert_eq!(rig.sim.now_ns(), q.ran.end_ns + compute);
    assert_eq!(rig.sim.makespan_ns(), rig.sim.now_ns());
}

/// `Sim` is what the tests above drive; its clocks start at zero.
#[test]
fn clocks_start_at_zero() {
    let sim = Sim::from_preset("2dgpu-p2p").unwrap();
    assert_eq!((sim.now_ns(), sim.makespan_ns(), sim.device_free_ns(1)), (0, 0, 0));
}
