//! `alloc_vram`, the placement flow of docs/design.md: the in-place check (step
//! 1), the thrash guard (step 5, checked first), then candidates in order
//! (target, local VRAM, system), each with attributes (step 2, in
//! `attributes`), the prefetch (step 3) and the answer to every errno and
//! to a prefetch the page table shows did not happen (step 4, both in
//! `migrate`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::choose::Strategy;
use super::chunks::faults_keep;
use crate::log::Span;
use super::*;

/// The GPU uses a span may have had in VRAM between the library's move
/// and the CPU's pull-back for the hand-off rule to hold it in system
/// memory. Held, each use reads it over the host link: at least one pass
/// of its bytes, and as many more as the kernel re-reads it (its passes,
/// which the library cannot see; docs/cost-model.md, bytes touched).
/// Moved, each hand-off pays one copy each way, whatever the uses
/// between. One use per hand-off trades the two copies for one pass or a
/// few; from two, the passes cost what the copies do or more, and the
/// hold is a guess the record of one stint makes (an input the CPU
/// refills once per phase of launches was held through six launches of
/// two passes each). The uses stand for those to come; they are the
/// span's own records' (`Context::summary`): a packed neighbour's uses of
/// the page they share are the neighbour's.
/// docs/design.md ("Hand-off") has the measurements and the alternatives.
const HAND_OFF_MAX_USES: u32 = 1;

/// One placement on its slow path: what every step of the flow shares
/// (the slots, read once; the accessing device; the span; what is known of
/// it as the attempt goes; what the page table showed). The result being
/// built (`Placed`) travels beside it.
pub(super) struct Attempt<'a> {
    pub(super) slots: &'a [Slot],
    pub(super) dev: &'a Arc<Device>,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) summary: Record,
    pub(super) seen: Option<Seen>,
    pub(super) flags: AllocFlags,
    /// The runtime's own request (no SVM_ALLOC_ENGINE), which `flags` do
    /// not tell where the engine runs the runtime's strategy: what it finds
    /// already there, all of it is (`Context::observe_whole`).
    pub(super) explicit: bool,
}

impl Context {
    /// Makes [start, start+size) resident in `target` for accesses by device
    /// `h` (docs/design.md, "The placement flow"), and reports what happened.
    pub fn alloc_vram(&self, h: DeviceHandle, start: u64, size: u64, target: Pagemap, flags: AllocFlags) -> Result<Placed> {
        let o = self.alloc_vram_outcome(h, start, size, target, flags);
        o.result.map(|()| o.placed)
    }

    /// [`Context::alloc_vram`], reporting what happened on failure too.
    pub fn alloc_vram_outcome(&self, h: DeviceHandle, start: u64, size: u64, target: Pagemap, flags: AllocFlags) -> Outcome {
        let mut placed = Placed::default();
        // The placement time the default engine learns from (policy/choose.rs),
        // clocked from the call's first driver call.
        let mut t0 = None;
        let mut ran = None;
        let result = self.alloc_vram_into(h, start, size, target, flags, &mut placed, &mut t0, &mut ran);
        // Counted by the strategy that ran, once the call succeeded: the
        // cascade's whatever it did (its rule 6 leaves a span to the fault
        // too); the runtime's prefetch where the library left the span to
        // the faults instead (devices take turns at it, no room) as the
        // faults'; the faults' where they could not leave it (the runtime
        // asked for the move now) as the prefetch it got.
        if let (Some(s), true) = (ran, result.is_ok()) {
            let stats = self.stats.local();
            let by = match s {
                Strategy::Cascade => &stats.engine_cascade,
                Strategy::Faults if placed.on_fault || placed.in_place => &stats.engine_faults,
                Strategy::Prefetch if placed.on_fault => &stats.engine_faults,
                Strategy::Faults | Strategy::Prefetch => &stats.engine_prefetch,
            };
            by.fetch_add(1, Ordering::Relaxed);
        }
        // A span asked into this device's VRAM but left outside takes no
        // room there: the launch's later spans' room check leaves it out.
        // (One asked elsewhere never counted: no lock on that path.)
        let into_vram = target.device() == Some(h.slot);
        let outside = into_vram && flags.engine() && result.is_ok() && !placed.on_fault && placed.pagemap.and_then(|p| p.device()) != Some(h.slot) && self.chooser.learning();
        self.placement_learned(h, (start, size), outside, t0, placed.bytes_moved);
        if let Err(e) = result {
            placed.cause = Some(e);
            // Where the range is believed to be now, after the attempt.
            if check_span(start, size).is_ok() {
                placed.pagemap = self.summary(start, start + size).residency;
            }
        }
        Outcome { result, placed }
    }

    /// [`Context::alloc_vram_outcome`] for [start, start+size); `clock`
    /// gets the driver's clock where an engine placement whose runtime
    /// reports launches makes a driver call (a call found in place without
    /// one spends nothing worth learning: the in-place check's own clock
    /// read is the call's only one); `ran` the engine's strategy for an
    /// engine placement.
    #[allow(clippy::too_many_arguments)]
    fn alloc_vram_into(&self, h: DeviceHandle, start: u64, size: u64, target: Pagemap, flags: AllocFlags, out: &mut Placed, clock: &mut Option<u64>, ran: &mut Option<Strategy>) -> Result<()> {
        let mut end = check_span(start, size)?;
        let mut start = start;
        // The flag is the engine's (include/xesvm.h): an explicit request
        // is executed as asked whatever it says (its advice included).
        let flags = if flags.engine() { flags } else { flags - AllocFlags::IGNORE_THRASH_GUARD };
        // This thread's counters, looked up once for the call's steps
        // (the caller counts the strategy that ran).
        let stats = self.stats.local();
        stats.alloc_calls.fetch_add(1, Ordering::Relaxed);
        // The engine's strategy (policy/choose.rs): the runtime's own (an
        // engine placement executed as its prefetch would be, resolve
        // having chosen the target; a mapping found from a pointer, and a
        // span devices took turns at asked into this device's VRAM, left
        // to the faults: `Turns::taken`), or, where launch reports show it
        // costs less, the rule cascade. The runtime that ignores the thrash
        // guard insists on the move (a span the kernel uses atomically,
        // which runs in local VRAM whatever the faults do).
        let engine = flags.engine() && !self.config.engine_rules;
        let may_leave = engine && !flags.contains(AllocFlags::PREFETCH_NOW);
        let insists = flags.contains(AllocFlags::IGNORE_THRASH_GUARD);
        let extent = flags.contains(AllocFlags::EXTENT);
        let engine_call = flags.engine();
        // Born in system memory in pieces (policy/birth.rs): an engine
        // placement serves it there, whatever strategy runs, unless the
        // runtime insists (atomics run in local VRAM).
        let in_pieces_ok = flags.may_defer() && !insists;
        let served = |born: bool, asked: Pagemap| if born && in_pieces_ok && asked.device() == Some(h.slot) { Pagemap::System } else { asked };
        let asked = target;
        let target = served(engine_call && self.born_in_pieces(start, end), asked);
        // The handle is checked before the chooser counts the call: a
        // closed handle's slot may hold another device by now (a close
        // forgets the slot's state under this lock, `Context::close`).
        let slots = self.slots.read();
        let dev = Context::device_in(&slots, h)?;
        // Without reports the runtime's strategy meets the turns in
        // leave_to_faults (`Turns::shared`): no lookup here.
        let taken = may_leave && !extent && !insists && target.device() == Some(h.slot) && self.chooser.learning() && self.turns.taken(start, end - start);
        // Nor a read over a peer link that its rent bought (resolve,
        // policy/rent.rs): the kernel's faults take what its kernel touches.
        let bought = may_leave && !insists && target.device() == Some(h.slot) && self.rent.peer_bought(h.slot, start, end - start);
        // Its tab's key: the span as asked, before any widening below.
        let asked_span = (start, end - start);
        let taken = taken || bought;
        // Nor the faults for an atomic span the CPU takes back between
        // launches: an atomic fault stamps the kernel's timeslice on what it
        // migrates (xe_svm_handle_pagefault: atomic_svm_timeslice_ms, 5 ms;
        // a prefetch asks for none), and the CPU's next touch waits it out,
        // a cost no launch report shows (a histogram the CPU reads after
        // each of 50 launches: 5.7x the prefetch when the launches' costs
        // tied and the faults stayed).
        let faults_ok = may_leave && !(insists && !extent && self.pulled_back_before(start, end));
        let (strategy, before) = match engine {
            true if taken => (Strategy::Faults, self.chooser.left_to_faults(h.slot, end - start)),
            true => self.chooser.choose(h.slot, start, end - start, if extent { Strategy::Faults } else { Strategy::Prefetch }, faults_ok, asked.device() == Some(h.slot)),
            false => (Strategy::Cascade, 0),
        };
        if engine_call {
            *ran = Some(strategy);
        }
        let plain = engine && strategy != Strategy::Cascade;
        let flags = if plain { flags - AllocFlags::ENGINE } else { flags };
        // Left to the faults: the first time, the zero page goes under the
        // span's partial chunks (`Context::populate_edges_once`), so the
        // faults there make 64 KiB ranges, not 4 KiB ones.
        let on_fault = |slots: &[Slot], dev: &Device, start: u64, end: u64, out: &mut Placed| {
            if engine_call && target != Pagemap::System {
                self.populate_edges_once(dev, start, end);
            }
            // Bought: the VMs stop preferring the peer, so the faults
            // bring what the kernel touches here.
            if bought {
                self.unprefer_peer(slots, dev, start, end);
            }
            // Reported where the faults will put it: a VM told to prefer a
            // peer's VRAM (a read resolve served there) maps the peer's
            // pages. An atomic span the runtime insists on runs in local
            // VRAM whatever the preference says.
            let pagemap = if insists { target } else { self.faults_pagemap(slots, dev, start, end, target) };
            self.end_sides_in(start, end);
            // A bought read's faults take only the part its kernel reads:
            // the records keep the peer as the span's home (marked as taken
            // by these faults, the peer's next look would take all of it
            // for this device's), and its launch's report goes to the tab.
            if bought {
                self.chooser.listed(h.slot, asked_span.0, asked_span.1);
            } else if pagemap.device() == Some(h.slot) {
                self.note_left_to_faults(h.slot, start, end);
            }
            *out = Placed { pagemap: Some(pagemap), on_fault: true, ..Placed::default() };
            Ok(())
        };
        {
            // Step 1: the cheap check, zero ioctls.
            dev.check_alive()?;
            if let Some(d) = Context::check_pagemap(&slots, target)? {
                d.check_alive()?;
            }
            // What is here already stays reported in place (a span devices
            // took turns at, where this one's kernel left it).
            if may_leave && strategy == Strategy::Faults && !taken {
                return on_fault(&slots, dev, start, end, out);
            }
            let learn = engine && self.chooser.learning();
            match self.in_place(&slots, dev, start, end, target, flags, !engine_call, false, learn.then_some(&mut *clock)) {
                Check::InPlace(p) => {
                    stats.in_place.fetch_add(1, Ordering::Relaxed);
                    *out = p;
                    return Ok(());
                }
                // A piece of a record placed whole that moved behind the
                // library's back (the CPU took it, most often): the record
                // is placed again whole, once, not piece by piece.
                Check::RecordMoved(rs, re) if flags.engine() => (start, end) = (rs, re),
                _ => {}
            }
            if learn && clock.is_none() {
                *clock = Some(self.driver.now_ns());
            }
            // Where the runtime insists, turns between devices do not leave
            // it to the faults either, nor where it asks for a peer's VRAM
            // (resolve serves a read there, over the link).
            let turns = plain && !insists && target.device().is_none_or(|d| d == h.slot);
            // The cascade's turns count too (`Turns::turned`): a span devices
            // take back and forth is left to the faults from then on
            // (`taken`, above, which looks it up as asked), as under the
            // runtime's strategy.
            if may_leave && !extent && !insists && strategy == Strategy::Cascade && target.device() == Some(h.slot) && self.chooser.learning() {
                self.note_turn(h.slot, asked_span.0, asked_span.0 + asked_span.1);
            }
            if may_leave && (taken || self.leave_to_faults(dev, h.slot, target, start, end, before, turns)) {
                return on_fault(&slots, dev, start, end, out);
            }
            // An explicit request places the span asked, no more.
            let small = flags.engine() && end - start <= super::resolve::SMALL_READ;
            // A piece of a walk resolve told to move: the walk's span moves whole.
            if small && target.device() == Some(h.slot) {
                (start, end) = dev.walk.take(start, end).unwrap_or((start, end));
            }
        }
        drop(slots);
        let _g = self.ranges.lock(start, end);
        // Decided again under the lock: another call may have moved the
        // span (atomics) or recorded its birth since.
        let born_in_pieces = engine_call && self.born_in_pieces(start, end);
        let target = served(born_in_pieces, asked);
        let slots = self.slots.read();
        let dev = Context::device_in(&slots, h)?.clone();
        // The target's device may have been closed while we waited: its
        // pagemap stopped working (-EBADF, never a fallback).
        Context::check_pagemap(&slots, target)?;
        // Another thread may have placed it while we waited (an observation
        // made before the wait would be stale now: this one is fresh).
        let seen = match self.in_place(&slots, &dev, start, end, target, flags, !engine_call, true, None) {
            Check::InPlace(p) => {
                stats.in_place.fetch_add(1, Ordering::Relaxed);
                *out = p;
                return Ok(());
            }
            Check::Moved(seen) => Some(seen),
            Check::Unknown | Check::RecordMoved(..) => None,
        };
        let t0 = if crate::log::tracing() { crate::trace::now() } else { 0 };
        let mut attempt = Attempt { slots: &slots, dev: &dev, start, end, summary: self.summary(start, end), seen, flags, explicit: !engine_call };
        // Split birth (policy/birth.rs): a span born half-way, or about to be.
        let r = match self
            .split_review(&mut attempt, target, out)
            .or_else(|| flags.may_defer().then(|| self.split_birth(&mut attempt, target, out)).flatten())
            .or_else(|| in_pieces_ok.then(|| self.birth_in_pieces(&mut attempt, target, out)).flatten())
        {
            Some(r) => r,
            None => self.place(&mut attempt, target, flags, out),
        };
        let p = &*out;
        if t0 != 0 {
            let outcome = match &r {
                Ok(()) => format!("{} ({} bytes moved, {} ioctls)", p.pagemap.map_or("?".into(), |p| p.to_string()), p.bytes_moved, p.ioctls),
                Err(e) => e.short().to_string(),
            };
            crate::trace::span("alloc_vram", t0, crate::trace::now(), &format!("{} device {} to {target}: {outcome}", Span(start, end - start), h.slot));
        }
        if born_in_pieces && r.is_ok() && p.pagemap == Some(Pagemap::System) {
            // The placement's record rewrite merged the flag away.
            self.mark_born_in_pieces(start, end);
        }
        if r.is_ok() {
            stats.bytes_moved.fetch_add(p.bytes_moved, Ordering::Relaxed);
            stats.retries.fetch_add(p.retries as u64, Ordering::Relaxed);
            if p.bytes_moved > 0 {
                stats.migrations.fetch_add(1, Ordering::Relaxed);
            }
            if p.fell_back {
                stats.fallbacks.fetch_add(1, Ordering::Relaxed);
            }
            if p.pinned {
                stats.pins.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    /// Step 1: the record says the range is in `target`, the accessing
    /// device's VM will leave it there, and that still holds (believed,
    /// fresh, settled, or confirmed by the page table). Where it found it
    /// so with a page-table read or an ioctl, `clock` (asked for where the
    /// engine learns placement times) gets the clock from before them.
    /// `explicit`: the runtime's own request (no SVM_ALLOC_ENGINE), which
    /// `flags` do not tell where the engine runs the runtime's strategy.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn in_place(&self, slots: &[Slot], dev: &Device, start: u64, end: u64, target: Pagemap, flags: AllocFlags, explicit: bool, held: bool, clock: Option<&mut Option<u64>>) -> Check {
        let track = self.track.read();
        // The span's record, or the one it is a piece of: a runtime that
        // places a buffer and then calls per piece finds each piece in place
        // without a page-table read or a record split.
        let Some((rec_start, rec)) = track.containing(start, end) else { return Check::Unknown };
        // Its faults keep it there, or, for the engine, it is a small read in
        // system memory bound for this device's VM (bound, not advised:
        // `try_candidate`): the GPU reads it through the binding and takes
        // no fault that could move it. Who else moves it, or unbinds it
        // unseen (the bound bit is a hint), shows in the page table once
        // the observation is stale (observe_ttl_ns). A larger span goes on to the slow path's look, which also
        // sees a pull-back or a chunk that came along; an explicit request
        // gets the whole flow (its advice included).
        let small_bound = || flags.engine() && target == Pagemap::System && rec.end - rec_start <= super::resolve::SMALL_READ && rec.bound_for(dev.slot);
        if rec.residency != Some(target) || !(faults_keep(dev, rec.attrs(dev.slot).pref, target) || small_bound()) {
            return Check::Unknown;
        }
        if explicit && self.advice_may_be_reset(slots, dev, target) {
            return Check::Unknown; // advised again, as the runtime would
        }
        // Another device's reported launch was left to its faults on it
        // since the library placed it here (`Record::faulted_by`): an
        // unprivileged page-table read sees its VRAM as this one's, so
        // only the slow path's look and what it infers can tell.
        if target.device().is_some_and(|d| rec.faulted_by_others(d) != 0) && !self.reads_name_vram() {
            return Check::Unknown;
        }
        let now = self.driver.now_ns();
        // A piece is looked at as its whole record: a runtime that calls per
        // piece pays one page-table look per record and freshness period,
        // not one per piece. Where the record no longer holds, the slow path
        // looks at the piece alone. A bind it needs covers the whole record.
        let piece = (rec_start, rec.end) != (start, end);
        let (ls, le) = if piece { (rec_start, rec.end) } else { (start, end) };
        let (verified, looked) = match self.confirm(slots, rec, ls, le, target, now) {
            Ok(v) => v,
            // Found moved by a page-table read: the call's time runs from here.
            Err(seen) => {
                if let Some(clock) = clock {
                    *clock = Some(now);
                }
                return if piece { Check::RecordMoved(rec_start, rec.end) } else { Check::Moved(seen) };
            }
        };
        rec.use_once();
        if !flags.engine() && !rec.explicit.load(Ordering::Relaxed) {
            rec.explicit.store(true, Ordering::Relaxed);
        }
        let mut placed = Placed { pagemap: Some(target), in_place: true, verified, ..Default::default() };
        if target == Pagemap::System {
            if dev.has_vram() {
                rec.read_in_place(dev.slot);
            }
            // In place, but this device's VM never had it bound: one queued
            // prefetch binds the whole record (docs/kernel-model.md §7), where
            // the launch would fault once per 2 MiB range (20 us each), and
            // its other pieces find it bound. A device without VRAM is bound
            // at every placement, as the runtime's own prefetch binds it at
            // every launch (policy/choose.rs): a free nobody told the library
            // of (munmap, mmap again) unbinds what the record calls bound,
            // and there nothing else is placed that a skipped bind would pay.
            // The bind takes the record's range lock like every placement
            // (a call moving it now holds it: then the launch faults
            // instead, and the next call binds), or the caller holds it.
            let rebind = !dev.has_vram();
            let bind = !rec.bound_for(dev.slot) || rebind;
            let lock = if bind && !held { self.ranges.try_lock(rec_start, rec.end) } else { None };
            let locked = lock.is_some() || (held && start <= rec_start && rec.end <= end);
            if bind && locked && self.bind_in_system(dev, rec_start, rec.end - rec_start, &mut placed) {
                crate::log!(crate::log::Level::Debug, "alloc_vram {} device {}: in system memory, {} bound for this device's VM (one queued prefetch)", Span(start, end - start), dev.slot, Span(rec_start, rec.end - rec_start));
                rec.set_bound(dev.slot, true);
            }
        }
        // LRU stamp: rewritten only when stale, so that threads finding the
        // same range in place do not bounce its cache line.
        if now.saturating_sub(rec.last_used.load(Ordering::Relaxed)) > LRU_GRANULE_NS {
            rec.last_used.store(now, Ordering::Relaxed);
        }
        // A page-table read or a bind: the call's time runs from before them.
        if let Some(clock) = clock.filter(|_| looked || placed.ioctls > 0) {
            *clock = Some(now);
        }
        Check::InPlace(placed)
    }

    /// The thrash guard's window for a span of `len` bytes: at least
    /// `Config::thrash_window_ns`, and long enough for
    /// `thrash_max_moves` moves of the span back to back at the context's
    /// cheapest timed rate (policy/rent.rs). In a fixed 50 ms a span whose
    /// move takes longer never met the guard, however often it went back
    /// and forth: a 128 MiB buffer four devices write a quarter of in turn
    /// moved whole at every turn, 60 ms a move (3.4x the kernel, 1.3x
    /// now). Long enough for two moves each (twice that) it also held
    /// offload rounds whose GPU iterates twice between the CPU's fill and
    /// read: measured slower (docs/design.md).
    pub(super) fn thrash_window(&self, len: u64) -> u64 {
        let w = self.config.thrash_window_ns;
        self.rent.price_ns(len).map_or(w, |p| w.max(p.saturating_mul(self.config.thrash_max_moves as u64)))
    }

    /// The slow path of alloc_vram: thrash guard, then candidates in order
    /// (target, local VRAM, system) until one works.
    pub(super) fn place(&self, a: &mut Attempt, target: Pagemap, flags: AllocFlags, placed: &mut Placed) -> Result<()> {
        let Attempt { slots, dev, start, end, .. } = *a;
        let now = self.driver.now_ns();
        // What the page table shows (observed now, unless step 1 just did).
        // A range not where the record says was moved by someone else: the
        // CPU pulled it back, or another device's GPU fault took it. That
        // move counts in its history (so CPU-GPU ping-pong meets the thrash
        // guard too), and the current place is what was seen.
        // Only ranges the engine placed are looked at, and only where the
        // answer can change the decision: a range believed in the target
        // (is it still?), a range believed in any VRAM (the CPU may have
        // pulled it back: a hand-off, held below, which any process sees as
        // pages present in system memory), or any, for a reader that can
        // name devices. A range believed in system memory and now away was
        // taken by a GPU fault, which an unprivileged reader cannot place:
        // it is moved either way, and the read after the prefetch verifies it.
        // An engine placement in system memory looks in any case (the
        // prefetch to system memory would read first): the span may have
        // come along with a chunk mate (`came_along`).
        let mut taken_by_faults = false;
        let worth = a.summary.residency.is_some_and(|r| r == target || r != Pagemap::System || self.reads_name_vram()) || (flags.engine() && target == Pagemap::System);
        // An atomic span rule 6 may leave to the fault (policy/migrate.rs)
        // whose records lost its place (its pieces placed apart, a packed
        // neighbour's chunk included), though one of them put it in VRAM:
        // rule 6 asks whether the CPU takes it back, and only the page
        // table answers (under 1 us, against a 5 ms timeslice). Found in
        // system memory, every page present, it was pulled back.
        let lost = flags.contains(AllocFlags::IGNORE_THRASH_GUARD)
            && super::migrate::rule_6_may_defer(dev, target, flags, &a.summary)
            && a.summary.residency.is_none()
            && self.track.read().overlapping(start, end).any(|(_, r)| matches!(r.residency, Some(Pagemap::Vram { .. })));
        if a.seen.is_none() && (worth || lost) && self.any_vram() {
            a.seen = self.observe(start, end);
        }
        if let Some(seen) = &a.seen {
            // Pages the record puts in VRAM that are now all unpopulated were
            // freed (only a munmap discards device pages) without the runtime's
            // free hook: where the kernel resets attributes on free, they may
            // be gone (docs/kernel-model.md §8), so the records forget them too.
            let freed = matches!(a.summary.residency, Some(Pagemap::Vram { .. })) && seen.samples > 0 && seen.unpopulated == seen.samples;
            if freed {
                crate::log!(crate::log::Level::Info, "alloc_vram {}: the page table shows it unpopulated: freed and mapped again; its attributes are re-applied", Span(start, end - start));
                self.forget_reset_attrs(slots, start, end);
                self.populated.forget(start, end);
                // A new buffer: the freed one's moves and pin are not its
                // own (a scratch buffer reallocated every round would count
                // a move a round, and the thrash guard would hold it in
                // system memory, where its GPU writes it remotely).
                self.rewrite(slots, start, end, |pieces| {
                    let mut r = super::record::merge_pieces(pieces);
                    r.moves.clear();
                    r.pinned_until = 0;
                    r
                });
                let residency = a.summary.residency;
                a.summary = self.summary(start, end);
                a.summary.residency = residency;
            }
            let taken_by = a.summary.residency.and_then(|p| p.device()).map_or(0, |d| a.summary.faulted_by_others(d));
            let actual = self.place_of(slots, seen, a.summary.residency, taken_by);
            if let Some(kept) = self.came_along(a, target) {
                return self.keep_came_along(a, kept, now, placed);
            }
            let lost_back = lost && actual == Some(Pagemap::System) && seen.unpopulated == 0;
            if (a.summary.residency.is_some() && actual != a.summary.residency) || lost_back {
                let pulled_back = (matches!(a.summary.residency, Some(Pagemap::Vram { .. })) && actual == Some(Pagemap::System)) || lost_back;
                if !freed {
                    a.summary.record_move_by(now, pulled_back);
                }
                // Hand-off in one round trip: pages the library put in VRAM
                // are back in system memory, so the CPU used them (or the
                // kernel evicted them, short of room). Moving them again would
                // pay a copy each way per hand-off; held in system memory,
                // both sides reach them at host bandwidth. The pin expires
                // (pin_ns), so a phase without the CPU migrates again. Not
                // where a page was never populated: a pull-back makes what
                // it moves present, so the span was freed and mapped again
                // unseen, and its present pages are a new buffer's first
                // touches (free-reuse programs up to 2.9x faster). Nor where
                // the GPU used it more than once between the move and the
                // pull-back (`HAND_OFF_MAX_USES`).
                let one_use = a.summary.moves.last().is_some_and(|m| m.uses_before <= HAND_OFF_MAX_USES);
                if pulled_back && flags.guarded() && seen.unpopulated == 0 && one_use {
                    crate::log!(crate::log::Level::Info, "alloc_vram {}: the page table shows it pulled back to system memory: held there for {} ms (hand-off)", Span(start, end - start), self.config.pin_ns / 1_000_000);
                    a.summary.pinned_until = a.summary.pinned_until.max(now.saturating_add(self.config.pin_ns));
                }
            }
            // Believed here, seen in another device's VRAM (unprivileged:
            // inferred from that device's reported faults, `place_of`).
            taken_by_faults = a.summary.residency == Some(target) && actual.is_some_and(|p| p != target && p.device().is_some());
            a.summary.residency = actual;
        }

        // Step 5 (checked first): the thrash guard.
        let mut target = target;
        if flags.guarded() {
            if let Some(cur) = a.summary.residency.filter(|&c| c != target) {
                if now < a.summary.pinned_until || a.summary.thrashing(now, self.thrash_window(end - start), self.config.thrash_max_moves) {
                    let until = a.summary.pinned_until.max(now.saturating_add(self.config.pin_ns));
                    if !Context::reaches(&self.links.read(), slots, dev.slot, cur) {
                        // Held where this device cannot reach it (no link), the
                        // range would move here on the first GPU fault anyway:
                        // the pin goes to system memory, which every device
                        // reaches (one move, then no more).
                        crate::log!(crate::log::Level::Info, "alloc_vram {} device {}: thrashing in {cur}, which it cannot reach: pinned in system memory, not {target}", Span(start, end - start), dev.slot);
                        a.summary.pinned_until = until;
                        placed.pinned = true;
                        target = Pagemap::System;
                    } else {
                        self.hold(a, cur, until, placed)?;
                        crate::log!(crate::log::Level::Info, "alloc_vram {} device {}: pinned in {cur} (moved {} times in the window), not moved to {target}", Span(start, end - start), dev.slot, a.summary.moves_within(now, self.thrash_window(end - start)));
                        return Ok(());
                    }
                }
            }
        }

        // The runtime follows resolve's advice to leave a thrashing range
        // where it is (served remotely): that is a pin too, so that the uses
        // it now gets there do not end it before its time.
        if flags.guarded()
            && a.summary.residency == Some(target)
            && target.device() != Some(dev.slot)
            && a.summary.thrashing(now, self.thrash_window(end - start), self.config.thrash_max_moves)
        {
            a.summary.pinned_until = a.summary.pinned_until.max(now.saturating_add(self.config.pin_ns));
            placed.pinned = true;
            crate::log!(crate::log::Level::Info, "alloc_vram {} device {}: pinned in {target}, served remotely (thrashing)", Span(start, end - start), dev.slot);
        }
        // The look took it for another device's VRAM, whose reported
        // faults ran on it (`place_of`), and this device asks for it back
        // without the guard holding it: its own faults take back what its
        // kernel touches (a device reading its half of an input the devices
        // split takes back nothing), where a prefetch would move all of it,
        // the other's part included, for the other to fault back. Not where
        // this device writes it (a stage's output, written whole: the
        // prefetch moves it in one go, and a hand-off meets the thrash
        // guard). The move stays in its history. Measured on 15,800
        // generated programs against moving it: 7 faster (nolink solvers up
        // to 1.5x), none slower.
        if !self.reads_name_vram() && taken_by_faults && !placed.pinned && flags.may_defer() && target.device() == Some(dev.slot) && !self.turns.written_by(dev.slot, start, end) {
            // Its record keeps this device (its faults bring back what it
            // uses) and the move the look counted.
            self.record_look(slots, start, end, &a.summary.moves, |_| {});
            crate::log!(crate::log::Level::Debug, "alloc_vram {} device {}: another device's faults took it: left to this one's faults", Span(start, end - start), dev.slot);
            *placed = Placed { pagemap: Some(target), on_fault: true, ..Placed::default() };
            return Ok(());
        }
        let mut candidates = vec![target];
        if !flags.contains(AllocFlags::NO_FALLBACK) {
            if let Pagemap::Vram { device, .. } = target {
                if device != dev.slot {
                    if let Some(tile) = dev.tiles.iter().position(|t| t.is_some()) {
                        candidates.push(Pagemap::Vram { device: dev.slot, tile: tile as u16 });
                    }
                }
            }
            if target != Pagemap::System {
                candidates.push(Pagemap::System);
            }
        }
        let mut last = Errno::EIO;
        for (i, &cand) in candidates.iter().enumerate() {
            // Capacity first (docs/design.md, "Capacity first"): a range larger than
            // the whole VRAM region (DEVICE_QUERY's size) can never fit there.
            // The kernel would still start the migration, evict everything
            // else in that VRAM for it, and then fail; it is never started.
            if let Some(cap) = Context::capacity_of(slots, cand).filter(|&cap| end - start > cap) {
                crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: larger than its {} MiB of VRAM, not started (ENOSPC)", Span(start, end - start), cap >> 20);
                self.stats.count_errno(Errno::ENOSPC);
                last = Errno::ENOSPC;
                continue;
            }
            match self.try_candidate(a, cand, placed) {
                Ok(()) => {
                    if i > 0 {
                        placed.fell_back = true;
                        placed.cause = Some(last);
                        crate::log!(crate::log::Level::Info, "alloc_vram {} device {}: fell back to {cand} from {target} ({})", Span(start, end - start), dev.slot, last.short());
                    }
                    placed.pagemap = Some(cand);
                    return Ok(());
                }
                Err(Miss::Fatal(e)) => return Err(e),
                Err(Miss::Fallback(e)) => last = e,
            }
        }
        Err(last)
    }
}
