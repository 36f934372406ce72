//! The chooser's unit tests (policy/choose.rs).

use super::*;

/// Without reports the runtime's strategy always; with them, the
/// cascade TRIAL_AFTER times, one trial of the runtime's strategy and
/// one of the faults, then the cheapest, switching only for one more than
/// 2 % cheaper than the current one's last cost.
#[test]
fn the_cascade_then_the_trials_then_the_lazy_leader() {
    let c = Chooser::default();
    assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true, true).0, Strategy::Faults);
    assert!(!c.learning() && !c.cascade_next(0, 0, 4096));
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    for _ in 0..TRIAL_AFTER {
        assert!(c.cascade_next(0, 0, 4096));
        assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
        // Moving the span is cheap next to the launch (40 ns).
        c.spent(0, (0, 4096), 40, 4096);
        let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    }
    // The runtime's trial: cheaper than the cascade.
    assert!(!c.cascade_next(0, 0, 4096));
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Prefetch);
    c.spent(0, (0, 4096), 100, 0);
    let _ = c.launch_done(0, 500, |_, _, _, _| {});
    // The faults' trial: dearer. The runtime's strategy runs from now on.
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Faults);
    let _ = c.launch_done(0, 1_200, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Prefetch);
    // Dearer than its trial, but its mean still below the cascade's: it stays.
    let _ = c.launch_done(0, 1_040, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Prefetch);
    // Dearer by more: to the cheapest, the cascade.
    let _ = c.launch_done(0, 2_000, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
    // The cascade got dear: the faults are the cheapest now, but not
    // where the runtime asks for the move now.
    let _ = c.launch_done(0, 3_000, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Faults);
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, false, true).0, Strategy::Prefetch);
    // Another device and another span start with the cascade.
    assert_eq!(c.choose(1, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
    assert_eq!(c.choose(0, 4096, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
    // A mapping found from a pointer keeps the runtime's faults.
    assert_eq!(c.choose(0, 8192, 4096, Strategy::Faults, true, true).0, Strategy::Faults);
}

/// The trial waits while moving the span would cost more than
/// 1/TRIAL_SHARE of its launch under the cascade, or nothing has
/// been moved to the device yet.
#[test]
fn the_trial_waits_until_moving_is_cheap() {
    let c = Chooser::default();
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    for _ in 0..TRIAL_AFTER + 2 {
        assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
        let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    }
    assert!(c.cascade_next(0, 0, 4096), "no move timed yet: no trial");
    // A move of another span at 1 ns a byte: 4096 ns for this one.
    c.choose(0, 1 << 20, 4096, Strategy::Prefetch, true, true);
    c.spent(0, (1 << 20, 4096), 4096, 4096);
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    assert!(c.cascade_next(0, 0, 4096), "a move dearer than a quarter launch: no trial");
    c.choose(0, 1 << 20, 4096, Strategy::Prefetch, true, true);
    c.spent(0, (1 << 20, 4096), 41, 4096);
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    assert!(!c.cascade_next(0, 0, 4096), "a cheap move: the trial");
}

/// Ski rental for the faults: a span whose move stays dearer than a
/// quarter of one launch gets no trial at first, and the faults' trial
/// once its launches under the cascade have cost TRIAL_SHARE times the
/// move; the runtime's prefetch (which moves all of it) still waits.
#[test]
fn the_faults_trial_runs_once_the_launches_have_paid_for_the_move() {
    let c = Chooser::default();
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    // A move of another span at 1 ns a byte: 4096 ns for this one, four
    // launches' worth.
    c.choose(0, 1 << 20, 4096, Strategy::Prefetch, true, true);
    c.spent(0, (1 << 20, 4096), 4096, 4096);
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    let launches = 4 * 4096 / 1_000 + 1;
    for _ in 0..launches {
        assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
        let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    }
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, false, true).0, Strategy::Cascade, "the runtime asks for the move now: no faults");
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Faults, "paid for: the faults' trial");
    let _ = c.launch_done(0, 600, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Faults, "cheaper: they stay");
    let _ = c.launch_done(0, 2_000, |_, _, _, _| {});
    assert_eq!(c.choose(0, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade, "dearer: back to the cascade");
}

/// The bytes a launch asks for count each span once: launches queued
/// before their reports place the same span again.
#[test]
fn launch_bytes_count_each_span_once() {
    let c = Chooser::default();
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    c.choose(0, 0, 4096, Strategy::Prefetch, true, true);
    c.choose(0, 8192, 4096, Strategy::Prefetch, true, true);
    c.choose(0, 0, 4096, Strategy::Prefetch, true, true);
    assert_eq!(c.device(0).lock().launches.open.bytes, 8192);
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    assert_eq!(c.device(0).lock().launches.open.bytes, 0);
}

/// Announced submissions: each report is the oldest announced
/// launch's, so a runtime running ahead of its queue charges each span
/// its own launch's cost, and the coming launch's bytes are its own.
#[test]
fn reports_match_submitted_launches_in_order() {
    let c = Chooser::default();
    let _ = c.launch_done(0, 1, |_, _, _, _| {}); // reports from now on
    let cost = |start| c.device(0).lock().entries[&(start, 4096)].last[Strategy::Cascade.index()];
    c.choose(0, 0, 4096, Strategy::Prefetch, true, true);
    c.launch_submitted(0);
    c.choose(0, 8192, 4096, Strategy::Prefetch, true, true);
    c.spent(0, (8192, 4096), 50, 0);
    c.launch_submitted(0);
    c.choose(0, 0, 4096, Strategy::Prefetch, true, true);
    assert_eq!(c.device(0).lock().launches.open.bytes, 4096, "the open launch's bytes only");
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    assert_eq!((cost(0), cost(8192)), (Some(1_000), None));
    let _ = c.launch_done(0, 3_000, |_, _, _, _| {});
    assert_eq!((cost(0), cost(8192)), (Some(1_000), Some(3_050)));
    // The open launch was never submitted: without a submission left,
    // a report takes the placements since the previous one.
    let _ = c.launch_done(0, 7_000, |_, _, _, _| {});
    assert_eq!(cost(0), Some(7_000));
    assert_eq!(c.device(0).lock().launches.open.bytes, 0);
}

/// A span a placement left to the launch's faults comes back with the
/// launch's report and when it was left, whether or not reports had begun
/// when it was placed; a span the chooser placed keeps its strategy, and
/// one only the faults listed teaches none.
#[test]
fn a_span_left_to_the_faults_comes_back_with_its_report() {
    let c = Chooser::default();
    let mut seen = Vec::new();
    c.faulted(0, 0, 4096, 10);
    c.faulted(0, 0, 4096, 20);
    let _ = c.launch_done(0, 1_000, |s, l, f, _| seen.push((s, l, f)));
    assert_eq!(seen, [(0, 4096, Some(10))], "listed once, before reports began");
    // The chooser's own faults: listed as chosen, and when they were left.
    c.choose(0, 8192, 4096, Strategy::Prefetch, true, true);
    c.choose(0, 0, 4096, Strategy::Prefetch, true, true);
    c.faulted(0, 8192, 4096, 30);
    seen.clear();
    let _ = c.launch_done(0, 2_000, |s, l, f, _| seen.push((s, l, f)));
    assert_eq!(seen, [(8192, 4096, Some(30)), (0, 4096, None)]);
    let entry = |span| c.device(0).lock().entries[&span];
    assert_eq!(entry((8192, 4096)).last[Strategy::Cascade.index()], Some(2_000));
    // Left only to the faults (a span devices take turns at): its entry
    // learns nothing from the launch.
    let before = entry((0, 4096));
    c.faulted(0, 0, 4096, 40);
    let _ = c.launch_done(0, 5_000, |_, _, _, _| {});
    let after = entry((0, 4096));
    assert_eq!((after.cost, after.last, after.seen, after.launches_ns), (before.cost, before.last, before.seen, before.launches_ns));
    // Chosen after the faults listed it in the same launch: it counts.
    c.faulted(0, 0, 4096, 50);
    c.choose(0, 0, 4096, Strategy::Prefetch, true, true);
    assert_eq!(c.device(0).lock().launches.open.bytes, 4096, "its bytes count");
    let _ = c.launch_done(0, 6_000, |_, _, _, _| {});
    assert_eq!(entry((0, 4096)).last[Strategy::Cascade.index()], Some(6_000));
}

/// A span two launches of each round use, a dear one and a cheap one: a
/// strategy's cost is the mean of its last two launches, so the faults,
/// tried on the cheap launch and then dear on the other, are compared
/// with the cascade's round, not its cheap launch alone (the last cost
/// alone kept the faults at 9x the cascade's dear launch: a free-reuse
/// scratch buffer, 2.6x the prefetch).
#[test]
fn a_strategy_is_priced_over_the_launches_of_a_round() {
    let c = Chooser::default();
    let _ = c.launch_done(0, 1, |_, _, _, _| {});
    let span = (0, 4096);
    let round = |dear: u64, cheap: u64| {
        c.choose(0, span.0, span.1, Strategy::Prefetch, true, true);
        let _ = c.launch_done(0, dear, |_, _, _, _| {});
        c.choose(0, span.0, span.1, Strategy::Prefetch, true, true);
        let _ = c.launch_done(0, cheap, |_, _, _, _| {});
    };
    let entry = || c.device(0).lock().entries[&span];
    round(2_000_000, 400_000);
    assert_eq!(entry().cost[Strategy::Cascade.index()], Some(1_200_000), "the mean of the round");
    // The next round's dear launch: the mean of the last two again.
    round(3_000_000, 400_000);
    assert_eq!(entry().cost[Strategy::Cascade.index()], Some(1_700_000));
}

/// A device without VRAM runs the runtime's strategy, reports or not.
#[test]
fn a_device_without_vram_keeps_the_runtimes_strategy() {
    let c = Chooser::default();
    c.opened(1, false);
    let _ = c.launch_done(1, 1_000, |_, _, _, _| {});
    assert!(!c.cascade_next(1, 0, 4096));
    assert_eq!(c.choose(1, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Prefetch);
    c.forget(1);
    c.opened(1, true);
    assert_eq!(c.choose(1, 0, 4096, Strategy::Prefetch, true, true).0, Strategy::Cascade);
}

/// The prefetch's trial is charged its launch and the other spans'
/// placements, not its own move, which a span that stays in place pays
/// once (a cascade at 1,040 a launch against a trial of 800 with a move
/// of 300: 1,300 would send it back to the cascade); its next launch that
/// pays the move again corrects the estimate.
#[test]
fn the_prefetch_trial_is_charged_without_its_own_move() {
    let c = Chooser::default();
    let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    let (a, b) = ((0, 4096), (1 << 20, 4096));
    for _ in 0..TRIAL_AFTER {
        assert_eq!(c.choose(0, a.0, a.1, Strategy::Prefetch, false, true).0, Strategy::Cascade);
        c.spent(0, a, 40, 4096);
        let _ = c.launch_done(0, 1_000, |_, _, _, _| {});
    }
    assert_eq!(c.choose(0, a.0, a.1, Strategy::Prefetch, false, true).0, Strategy::Prefetch, "the trial");
    c.spent(0, a, 300, 4096);
    assert_eq!(c.choose(0, b.0, b.1, Strategy::Prefetch, false, true).0, Strategy::Cascade);
    c.spent(0, b, 200, 0);
    let _ = c.launch_done(0, 800, |_, _, _, _| {});
    assert_eq!(c.choose(0, a.0, a.1, Strategy::Prefetch, false, true).0, Strategy::Prefetch, "800 + 200 against 1,040");
    c.spent(0, a, 300, 4096);
    let _ = c.launch_done(0, 900, |_, _, _, _| {});
    assert_eq!(c.choose(0, a.0, a.1, Strategy::Prefetch, false, true).0, Strategy::Cascade, "moved again: 1,000 and 1,200 in the mean");
}

/// The lazy leader's margin is the 2 % the engine is held to against the
/// better baseline: the current strategy stays while it is at most 2 %
/// dearer than the cheapest, and is left at 3 % (a strategy up to 5 %
/// dearer stayed before: solvers whose faults cost a few GPU faults a
/// launch more than the prefetch).
#[test]
fn the_lazy_leader_leaves_a_strategy_two_percent_dearer() {
    let with = |faults: u64| {
        let mut e = Entry { current: Strategy::Faults, seen: TRIAL_AFTER, ..Entry::default() };
        e.cost[Strategy::Faults.index()] = Some(faults);
        e.cost[Strategy::Prefetch.index()] = Some(1_000);
        e.cost[Strategy::Cascade.index()] = Some(1_100);
        e.next(None, true)
    };
    assert_eq!(with(1_020), Strategy::Faults, "2 % dearer: stays");
    assert_eq!(with(1_030), Strategy::Prefetch, "3 % dearer: the cheapest runs");
}
