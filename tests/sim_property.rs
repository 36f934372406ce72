//! Property test of the simulated driver: random sequences of madvise,
//! prefetch, GPU and CPU accesses and munmap, from several threads over
//! several devices (two linked, one not) with VRAM small enough to evict.
//! After every step: every page in exactly one place with storage behind it,
//! no VRAM region over capacity (`check_invariants`), and no content token
//! lost (each thread owns the writes to its region and keeps a shadow; other
//! threads may migrate its pages at any time).

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use xesvm::driver::xe::PreferredLoc;
use xesvm::sim::mem::write_token;
use xesvm::sim::{Access, KernelVersion, LinkKind, LinkSpec, Topology};
use xesvm::uapi::DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC;

const THREADS: usize = 4;
const CHUNKS: u64 = 6; // 2 MiB chunks per thread region
const CHUNK: u64 = 2 * MIB;
const PAGE: u64 = 4096;

fn region(t: usize) -> u64 {
    BUF + t as u64 * 64 * MIB
}

#[derive(Clone, Debug)]
enum Op {
    GpuRead { dev: usize, owner: usize, chunk: u64 },
    GpuWrite { dev: usize, chunk: u64, value: u64, atomic: bool },
    CpuRead { owner: usize, chunk: u64 },
    CpuWrite { chunk: u64, value: u64 },
    Prefetch { dev: usize, owner: usize, chunk: u64, region: u32 },
    Madvise { dev: usize, owner: usize, chunk: u64, pref: u8 },
    Munmap { chunk: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let dev = 0..3usize;
    let owner = 0..THREADS;
    let chunk = 0..CHUNKS;
    prop_oneof![
        3 => (dev.clone(), owner.clone(), chunk.clone()).prop_map(|(dev, owner, chunk)| Op::GpuRead { dev, owner, chunk }),
        3 => (dev.clone(), chunk.clone(), any::<u64>(), any::<bool>()).prop_map(|(dev, chunk, value, atomic)| Op::GpuWrite { dev, chunk, value, atomic }),
        2 => (owner.clone(), chunk.clone()).prop_map(|(owner, chunk)| Op::CpuRead { owner, chunk }),
        2 => (chunk.clone(), any::<u64>()).prop_map(|(chunk, value)| Op::CpuWrite { chunk, value }),
        2 => (dev.clone(), owner.clone(), chunk.clone(), prop_oneof![Just(0u32), Just(1), Just(DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC)])
            .prop_map(|(dev, owner, chunk, region)| Op::Prefetch { dev, owner, chunk, region }),
        2 => (dev, owner, chunk.clone(), 0..5u8).prop_map(|(dev, owner, chunk, pref)| Op::Madvise { dev, owner, chunk, pref }),
        1 => chunk.prop_map(|chunk| Op::Munmap { chunk }),
    ]
}

fn topology() -> Topology {
    let mut t = Topology::preset("2dgpu-p2p").unwrap();
    t.set_kernel(KernelVersion::V7_0);
    t.devices.push(t.devices[0].clone());
    for d in &mut t.devices {
        d.vram_per_tile = 8 * MIB; // 4 ranges: constant pressure
    }
    t.links = vec![LinkSpec { a: 0, b: 1, kind: LinkKind::PcieP2p, bandwidth: 20e9, atomics: false }];
    t
}

fn run_thread(rig: &Rig, me: usize, ops: &[Op]) -> Result<(), String> {
    let mut shadow: HashMap<u64, u32> = HashMap::new();
    let base = region(me);
    for (step, op) in ops.iter().enumerate() {
        let at = |owner: usize, chunk: u64| region(owner) + chunk * CHUNK;
        match *op {
            Op::GpuRead { dev, owner, chunk } => {
                let _ = rig.gpu(dev, at(owner, chunk), CHUNK, Access::Read);
            }
            Op::GpuWrite { dev, chunk, value, atomic } => {
                let a = at(me, chunk);
                let access = if atomic { Access::Atomic } else { Access::Write };
                if rig.sim.gpu_access(rig.fds[dev], rig.vms[dev], 0, a, CHUNK, access, value).is_ok() {
                    for p in (a..a + CHUNK).step_by(PAGE as usize) {
                        shadow.insert(p, write_token(value, p));
                    }
                }
            }
            Op::CpuRead { owner, chunk } => match rig.sim.cpu_access(at(owner, chunk), CHUNK, Access::Read, 0) {
                // Another thread may have it unmapped for a moment: SIGSEGV there.
                Err(xesvm::Errno::EFAULT) if owner != me => {}
                r => r.map_err(|e| format!("cpu read: {e:?}"))?,
            },
            Op::CpuWrite { chunk, value } => {
                let a = at(me, chunk);
                rig.sim.cpu_access(a, CHUNK, Access::Write, value).map_err(|e| format!("cpu write: {e:?}"))?;
                for p in (a..a + CHUNK).step_by(PAGE as usize) {
                    shadow.insert(p, write_token(value, p));
                }
            }
            Op::Prefetch { dev, owner, chunk, region } => {
                rig.prefetch(dev, at(owner, chunk), CHUNK, region).map_err(|e| format!("prefetch: {e:?}"))?;
            }
            Op::Madvise { dev, owner, chunk, pref } => {
                let loc = match pref {
                    0 => PreferredLoc::DefaultDevice,
                    1 => PreferredLoc::DefaultSystem,
                    k => PreferredLoc::Device { devmem_fd: rig.fds[(k - 2) as usize], region_instance: 1 },
                };
                match rig.pref(dev, at(owner, chunk), CHUNK, loc) {
                    Ok(()) | Err(xesvm::Errno::ENOLINK) => {}
                    Err(e) => return Err(format!("madvise: {e:?}")),
                }
            }
            Op::Munmap { chunk } => {
                let a = at(me, chunk);
                rig.sim.munmap(a, CHUNK).map_err(|e| format!("munmap: {e:?}"))?;
                rig.sim.mmap(a, CHUNK, false).map_err(|e| format!("mmap: {e:?}"))?;
                for p in (a..a + CHUNK).step_by(PAGE as usize) {
                    shadow.remove(&p);
                }
            }
        }
        rig.sim.check_invariants().map_err(|e| format!("step {step} ({op:?}): {e}"))?;
        for p in (base..base + CHUNKS * CHUNK).step_by(PAGE as usize) {
            let want = shadow.get(&p).copied().unwrap_or(0);
            let got = rig.sim.page_token(p);
            if got != want {
                return Err(format!("thread {me} step {step} ({op:?}): page {p:#x} holds {got:#x}, wrote {want:#x}"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_random_workloads_keep_every_page(ops in proptest::collection::vec(proptest::collection::vec(op(), 30), THREADS)) {
        let rig = Arc::new(Rig::new(topology()));
        let handles: Vec<_> = ops.into_iter().enumerate().map(|(me, ops)| {
            let rig = rig.clone();
            std::thread::spawn(move || run_thread(&rig, me, &ops))
        }).collect();
        for h in handles {
            let r = h.join().expect("thread panicked");
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
        prop_assert!(rig.sim.check_invariants().is_ok());
    }
}
