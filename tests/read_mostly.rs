//! The read-mostly hint (Level Zero SET_READ_MOSTLY): not an error, a hint
//! resolve uses. A range several devices read is served from one place
//! every reader reaches, and readers never pull it back and forth.

use xesvm::sim::driver::SimDriver;
use xesvm::policy::{Access, AllocFlags, Config, Context};
use xesvm::sim::Sim;
use xesvm::topology::Pagemap;

const BUF: u64 = 0x10_0000_0000;
const R: u64 = 8 << 20;

#[test]
fn read_mostly_data_is_read_where_every_reader_reaches_it() {
    let sim = Sim::from_preset("2dgpu-p2p").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), rules());
    let (d0, d1) = (ctx.open_index(0).unwrap(), ctx.open_index(1).unwrap());
    let v0 = ctx.pagemap(d0, 0).unwrap();
    let ioctls = || sim.counters().ioctls;

    // Placed on GPU 0 first (the CPU filled the table), then hinted.
    sim.cpu_access(BUF, R, xesvm::sim::Access::Write, 1).unwrap();
    ctx.alloc_vram(d0, BUF, R, v0, AllocFlags::default()).unwrap();
    let before = ioctls();
    ctx.set_read_mostly(BUF, R, true).unwrap();
    assert_eq!(ioctls(), before, "a hint: no ioctl");
    // GPU 0 reads it where it is, in its own VRAM.
    assert_eq!(ctx.resolve(d0, 0, BUF, R, Access::Read), Ok(v0));
    // GPU 1 reads it from system memory, not from GPU 0 (no ping-pong) ...
    assert_eq!(ctx.resolve(d1, 0, BUF, R, Access::Read), Ok(Pagemap::System));
    ctx.alloc_vram(d1, BUF, R, Pagemap::System, AllocFlags::default()).unwrap();
    // ... and once there, both read it there.
    for d in [d0, d1] {
        assert_eq!(ctx.resolve(d, 0, BUF, R, Access::Read), Ok(Pagemap::System));
    }
    // A piece of it too.
    assert_eq!(ctx.resolve(d1, 0, BUF + (2 << 20), 2 << 20, Access::Read), Ok(Pagemap::System));
    // Writes and atomics ignore the hint. A write stays where GPU 1 reads
    // it in place (writer and readers meet in system memory).
    assert_eq!(ctx.resolve(d0, 0, BUF, R, Access::Write), Ok(Pagemap::System));
    assert_eq!(ctx.resolve(d1, 0, BUF, R, Access::Atomic), Ok(ctx.pagemap(d1, 0).unwrap()));
    // Cleared: the default again (the reader's VRAM).
    ctx.set_read_mostly(BUF, R, false).unwrap();
    assert_eq!(ctx.resolve(d1, 0, BUF, R, Access::Read), Ok(ctx.pagemap(d1, 0).unwrap()));
}

/// The engine with its rule cascade (`Config::engine_rules`), which these
/// tests exercise; tests/engine_plain.rs covers the default engine.
fn rules() -> Config {
    Config { engine_rules: true, ..Config::default() }
}

/// The hint holds only where it was given, and a call over more than that
/// span keeps it there: an atomic mode, a cleared preferred location or an
/// eviction over [0, 2R) merged the hinted half's record with the other's and
/// dropped it, so a read of data in system memory went to the reader's
/// VRAM (a third-party reader's report; failed before).
#[test]
fn the_hint_survives_an_attribute_call_over_more_than_its_span() {
    for call in 0..4 {
        let sim = Sim::from_preset("2dgpu-p2p").unwrap();
        let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
        let d0 = ctx.open_index(0).unwrap();
        sim.cpu_access(BUF, 2 * R, xesvm::sim::Access::Write, 1).unwrap();
        ctx.set_read_mostly(BUF + R, R, true).unwrap();
        assert_eq!(ctx.resolve(d0, 0, BUF + R, R, Access::Read), Ok(Pagemap::System));
        match call {
            0 => ctx.set_atomic(BUF, 2 * R, 1).unwrap(),
            1 => ctx.set_atomic_on(Some(d0), BUF + R / 2, R, 1).unwrap(),
            2 => ctx.clear_preferred(BUF, 2 * R).unwrap(),
            // An eviction's record rewrite too (a reviewer's case).
            _ => drop(ctx.evict(BUF, 2 * R).unwrap()),
        }
        assert_eq!(ctx.resolve(d0, 0, BUF + R, R, Access::Read), Ok(Pagemap::System), "call {call}");
        assert_ne!(ctx.resolve(d0, 0, BUF, R, Access::Read), Ok(Pagemap::System), "call {call}: not where it was not given");
    }
}
