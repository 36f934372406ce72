//! Tests of the generator: the same seed draws the same programs, every
//! program's scenario file parses back into the workload the bench runs,
//! and on a handful of programs no policy beats the bound and no content
//! is lost.

use super::*;
use crate::workload::Step;

#[test]
fn the_same_seed_draws_the_same_programs() {
    let a = generate(12, 7, "2dgpu-p2p", 0).unwrap();
    let b = generate(12, 7, "2dgpu-p2p", 0).unwrap();
    assert_eq!(a.iter().map(|p| &p.toml).collect::<Vec<_>>(), b.iter().map(|p| &p.toml).collect::<Vec<_>>());
    // Program i does not depend on how many are drawn.
    assert_eq!(program(7, 5, "2dgpu-p2p", 0).unwrap().toml, a[5].toml);
    // Another seed draws other programs.
    let c = generate(12, 8, "2dgpu-p2p", 0).unwrap();
    assert!(a.iter().zip(&c).all(|(x, y)| x.toml != y.toml));
    // The generator itself: splitmix64's first outputs for seed 0.
    let mut r = Rng::new(0);
    assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
}

/// Every family turns up, every program parses back (as `--emit` writes
/// it, read as `xesvm run` reads it) into the same workload, on machines
/// with one to four devices, and sizes are bytes, not page multiples.
#[test]
fn emitted_programs_parse_back() {
    let dir = std::env::temp_dir().join(format!("xesvm-gen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut families = std::collections::BTreeSet::new();
    let mut unaligned = 0;
    for (seed, preset) in [(3, "2dgpu-p2p"), (4, "4dgpu-p2p"), (5, "dgpu")] {
        for p in generate(40, seed, preset, 0).unwrap() {
            families.insert(p.family);
            let w = p.workload().unwrap();
            let path = dir.join(format!("{}.toml", p.name));
            std::fs::write(&path, &p.toml).unwrap();
            let back = crate::scenario::parse(&std::fs::read_to_string(&path).unwrap(), &dir).unwrap_or_else(|e| panic!("{}: {e}", p.name)).workload;
            assert_eq!(back.steps, w.steps, "{}", p.name);
            assert_eq!(back.buffers.iter().map(|b| (b.start, b.size)).collect::<Vec<_>>(), w.buffers.iter().map(|b| (b.start, b.size)).collect::<Vec<_>>());
            assert!(w.steps.iter().any(|s| matches!(s, Step::Launch { .. })), "{}: no GPU work", p.name);
            let n = w.topology.devices.len() as u32;
            assert!(w.steps.iter().all(|s| !matches!(s, Step::Launch { device, .. } if *device >= n)), "{}", p.name);
            unaligned += w.buffers.iter().filter(|b| b.size % 4096 != 0).count();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(families.len(), FAMILIES.len(), "{families:?}");
    assert!(unaligned > 50, "sizes in bytes: {unaligned}");
}

/// A handful of generated programs (small VRAM, so they run fast) under
/// every policy: none beats the bound, none loses content, no GPU access
/// fails; the free-and-reuse family frees and allocates for real.
#[test]
fn no_policy_beats_the_bound_on_generated_programs() {
    let mut picked: Vec<Program> = Vec::new();
    for i in 0..200 {
        let p = program(11, i, "2dgpu-p2p", 32).unwrap();
        if ["free-reuse", "small-allocs", "pipeline", "solver", "decode", "training"].contains(&p.family) && !picked.iter().any(|q| q.family == p.family) {
            picked.push(p);
        }
    }
    assert_eq!(picked.len(), 6);
    let outcomes = run_all(&picked, |_, _| {}).unwrap();
    for o in &outcomes {
        assert!(o.problems().is_empty(), "{}: {:?}\n{}", o.program.name, o.problems(), o.program.toml);
        assert!(o.reports.iter().all(|r| r.optimum_ns > 0), "{}", o.program.name);
    }
    let free = outcomes.iter().find(|o| o.program.family == "free-reuse").unwrap();
    assert!(free.program.workload().unwrap().steps.iter().any(|s| matches!(s, Step::Free { .. })));
    let s = summary(&outcomes, "test");
    assert!(s.contains("bound violations and content failures: none"), "{s}");
}
