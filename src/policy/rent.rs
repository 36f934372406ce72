//! The rent of a read served in place from system memory (resolve's rent
//! or buy, docs/design.md "Deciding: rent or buy"), priced where launch
//! reports tell what the rent costs: per reader and span, what the
//! reported launches that used it in system memory cost since the
//! records last held it in that reader's VRAM, and what moving it costs,
//! at the lowest rate per byte of this context's own timed copies of a
//! 2 MiB chunk or more out of system memory into VRAM (policy/place.rs
//! times the prefetch of a span its record puts in system memory, or,
//! until a first price, one the page table shows all there; a birth
//! copies nothing and prices nothing).
//!
//! Without reports resolve buys on the reader's second read: a pass of
//! the span costs what its copy does. A move costs more than its copy
//! (the kernel's work per page, docs/cost-model.md): an 11.8 MB slice a
//! kernel reads a tenth of, scattered, rents for 0.46 ms a launch and
//! moves in 8-10 ms. With reports it buys once the rented launches have
//! cost the move (ski rental): at most the move over against renting to
//! the end, and at most the rent paid, the move's price, over against
//! buying at once. A launch's duration holds its rent and may hold more
//! (other spans, compute): then it buys sooner. A runtime that places
//! launches before the earlier ones' reports come rents for those in
//! flight too, past the price by at most its queue's depth. A span with
//! no tab (no report of a launch that used it in system memory, or the
//! table started over), or one its reader's recent reports did not charge
//! (`STALE_REPORTS`), is bought on its second read, as without reports.
//!
//! A read of a span a linked peer's VRAM holds (resolve serves it over
//! the link, policy/resolve.rs) keeps a tab of its own, per reader and
//! span (`PeerTab`): with reports, each reported launch it was served to
//! pays a pass of the span at the link's bandwidth or the launch's whole
//! duration, whichever is less (both bound what the link cost it), and
//! each launch submitted with the read placed and not reported yet owes
//! a pass, the one being placed aside (a runtime running ahead commits
//! them before their reports come; without reports they are the whole
//! rent, counted where the runtime delimits its launches,
//! `svm_launch_submit`: else the rent is never paid). Once the rent reaches the span's move
//! the read is bought from the kernel's own faults, which take what the
//! reader's kernel touches: its part of an input the devices split, or
//! a buffer handed over to it. The price is the whole span's move where
//! the faults move only the part touched, so a reader of a fraction f
//! rents up to 1/f of its buy: conservative, as nothing tells f. A buy is
//! undone where the reader's launches placed after it (its second on; its
//! first carries the faults' move) cost as much as a rented one did: another
//! device takes the span back (both read all of it) or a shared chunk
//! goes back and forth at every launch. The read is then rented again,
//! and the next buy costs twice the move. A write to the span starts its
//! tabs again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::CHUNK;

/// What one reader paid for one span since it last held it in its VRAM:
/// the reported durations of its launches that used it in system memory,
/// and the reader's report that last charged it.
#[derive(Default, Clone, Copy)]
struct Tab {
    paid_ns: u64,
    charged_at: u64,
}

/// A tab its reader's last this many reports did not charge is not
/// rented on: the reader's next read buys. A launch lists at most 64
/// spans for its report (policy/choose.rs), and a runtime may drop a
/// report; without this a span read in such launches would rent on a tab
/// nothing pays, forever. A span read once every this many launches or
/// less often buys on its second read, as without reports.
const STALE_REPORTS: u64 = 32;

/// At most this many (reader, span) tabs are kept (a program that churns
/// through more starts over, as the chooser's entries do).
const MAX_TABS: usize = 4096;

pub(crate) struct Rent {
    tabs: Mutex<HashMap<(u64, u64, u16), Tab, super::choose::SpanHash>>,
    /// Reports per device slot.
    reports: [AtomicU64; super::MAX_DEVICES],
    /// Whether `tabs` holds anything (a report's one load where none does).
    any: AtomicBool,
    /// The lowest picoseconds per byte a timed move of a chunk or more
    /// took (0: none yet).
    move_ps_per_byte: AtomicU64,
    /// Reads served over a peer link, per (start, len, reader).
    peer: Mutex<HashMap<(u64, u64, u16), PeerTab, super::choose::SpanHash>>,
    /// Whether `peer` holds anything (the one load of a placement, a
    /// write's resolve or a report where none does).
    any_peer: AtomicBool,
    /// Launches submitted per device slot (`svm_launch_submit`).
    submits: [AtomicU64; super::MAX_DEVICES],
    /// Whether a peer tab ever bought (a placement's one load where none did).
    any_bought: AtomicBool,
}

/// A reader's reads of a span served over a peer link.
#[derive(Default)]
struct PeerTab {
    /// The rent its reported launches paid.
    paid_ns: u64,
    /// A pass over the link, at the last read served there.
    pass_ns: u64,
    /// Launches the read was served over the link for, not reported yet.
    pending: u32,
    /// The reader's submissions at the last placement `pending` counted
    /// (None: the next placement counts).
    placed_at: Option<u64>,
    /// The buy's price in moves of the span (1; doubled at each undone buy).
    moves: u32,
    /// Left to the reader's faults.
    bought: bool,
    /// Reports since the buy.
    since_buy: u32,
    /// The last reported launch it was served over the link.
    rented_ns: Option<u64>,
}

/// A buy undone doubles the price, up to this many moves.
const MAX_PEER_MOVES: u32 = 64;

impl Default for Rent {
    fn default() -> Self {
        Rent {
            tabs: Mutex::default(),
            reports: std::array::from_fn(|_| AtomicU64::new(0)),
            any: AtomicBool::new(false),
            move_ps_per_byte: AtomicU64::new(0),
            peer: Mutex::default(),
            any_peer: AtomicBool::new(false),
            submits: std::array::from_fn(|_| AtomicU64::new(0)),
            any_bought: AtomicBool::new(false),
        }
    }
}

impl Rent {
    /// Device `reader` reports a launch (before its spans are charged).
    pub(crate) fn report(&self, reader: u16) {
        self.reports[reader as usize % super::MAX_DEVICES].fetch_add(1, Ordering::Relaxed);
    }

    /// Device `reader` submitted a launch: the placements since its last
    /// are that launch's.
    pub(crate) fn submitted(&self, reader: u16) {
        self.submits[reader as usize % super::MAX_DEVICES].fetch_add(1, Ordering::Relaxed);
    }

    fn reports_of(&self, reader: u16) -> u64 {
        self.reports[reader as usize % super::MAX_DEVICES].load(Ordering::Relaxed)
    }

    /// A prefetch copied `bytes` out of system memory into VRAM in `ns`
    /// (the library's own clock around it): a copy of a chunk or more
    /// prices the buy.
    pub(crate) fn moved(&self, ns: u64, bytes: u64) {
        if bytes >= CHUNK && ns > 0 {
            let ps = (ns as u128 * 1000 / bytes as u128).clamp(1, u64::MAX as u128) as u64;
            let _ = self.move_ps_per_byte.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| (r == 0 || ps < r).then_some(ps));
        }
    }

    /// Device `reader` reads [start, start+len), which device `holder`'s
    /// VRAM holds, over a link where a pass costs `pass_ns`; `learning`:
    /// the runtime reports launches. None where `holder` bought its own
    /// reads of the span (it holds only what its faults took: not a home
    /// to read from). Else whether the read is bought (left to the
    /// reader's faults): once the rent reaches the span's move (times the
    /// tab's `moves`): what its reported launches paid, and a pass for
    /// each launch placed and submitted since and not reported; otherwise
    /// it is served over the link. Never bought before a move was timed,
    /// nor where the runtime neither reports nor submits launches. One
    /// lock where any tab exists, none otherwise without either.
    pub(crate) fn peer_read(&self, reader: u16, holder: u16, start: u64, len: u64, pass_ns: u64, learning: bool) -> Option<bool> {
        let submits = self.submits[reader as usize % super::MAX_DEVICES].load(Ordering::Relaxed);
        let counted = learning || submits > 0;
        if !counted && !self.any_peer.load(Ordering::Relaxed) {
            return Some(false);
        }
        let mut m = self.peer.lock();
        if m.get(&(start, len, holder)).is_some_and(|t| t.bought) {
            return None;
        }
        let Some(price) = self.price_ns(len).filter(|_| counted) else { return Some(false) };
        if m.len() >= MAX_TABS && !m.contains_key(&(start, len, reader)) {
            m.clear();
        }
        self.any_peer.store(true, Ordering::Relaxed);
        let t = m.entry((start, len, reader)).or_default();
        if !t.bought && t.placed_at != Some(submits) {
            (t.pending, t.placed_at) = (t.pending.saturating_add(1), Some(submits));
        }
        let owed = (t.pending.saturating_sub(1) as u64).saturating_mul(pass_ns);
        if !t.bought && t.paid_ns.saturating_add(owed) >= price.saturating_mul(t.moves.max(1) as u64) {
            (t.bought, t.since_buy, t.pending, t.placed_at) = (true, 0, 0, None);
            self.any_bought.store(true, Ordering::Relaxed);
            crate::log!(crate::log::Level::Debug, "read {} device {reader} over a peer link: {} us paid and {} us owed of a {} us move: bought (the faults)", crate::log::Span(start, len), t.paid_ns / 1000, owed / 1000, price / 1000);
        }
        if !t.bought {
            t.pass_ns = pass_ns;
        }
        Some(t.bought)
    }

    /// Whether device `reader` bought its reads of [start, start+len) over
    /// a peer link.
    pub(crate) fn peer_bought(&self, reader: u16, start: u64, len: u64) -> bool {
        self.any_bought.load(Ordering::Relaxed) && self.peer.lock().get(&(start, len, reader)).is_some_and(|t| t.bought)
    }

    /// Device `reader`'s launch that used [start, start+len) took
    /// `cost_ns`: the rent of a read served over a peer link, or, where
    /// its placement left it to the faults as bought (`bought`), the test
    /// of the buy (see the module doc). A launch placed before the buy
    /// and reported after it (a runtime running ahead) tests nothing.
    pub(crate) fn peer_reported(&self, reader: u16, start: u64, len: u64, cost_ns: u64, bought: bool) {
        if !self.any_peer.load(Ordering::Relaxed) {
            return;
        }
        let mut m = self.peer.lock();
        let Some(t) = m.get_mut(&(start, len, reader)) else { return };
        if !t.bought {
            if bought {
                return; // placed bought, reported after an undo
            }
            if t.pending > 0 {
                t.pending -= 1;
                if t.pending == 0 {
                    t.placed_at = None;
                }
                t.paid_ns = t.paid_ns.saturating_add(t.pass_ns.min(cost_ns));
                t.rented_ns = Some(cost_ns);
            }
            return;
        }
        if !bought {
            return;
        }
        t.since_buy = t.since_buy.saturating_add(1);
        if t.since_buy >= 2 && t.rented_ns.is_some_and(|r| cost_ns >= r) {
            crate::log!(crate::log::Level::Debug, "read {} device {reader} over a peer link: a launch after the buy took {} us, a rented one {} us: rented again", crate::log::Span(start, len), cost_ns / 1000, t.rented_ns.unwrap_or(0) / 1000);
            (t.bought, t.paid_ns, t.pending, t.placed_at, t.moves) = (false, 0, 0, None, t.moves.max(1).saturating_mul(2).min(MAX_PEER_MOVES));
        }
    }

    /// A device writes [start, end): the peer tabs over it start again.
    pub(crate) fn peer_written(&self, start: u64, end: u64) {
        if self.any_peer.load(Ordering::Relaxed) {
            self.peer.lock().retain(|&(s, len, _), _| s + len <= start || s >= end);
        }
    }

    /// Whether a copy priced the buy yet.
    pub(crate) fn priced(&self) -> bool {
        self.move_ps_per_byte.load(Ordering::Relaxed) != 0
    }

    /// What moving `len` bytes costs, as the cheapest timed move went
    /// (None before one was timed).
    pub(crate) fn price_ns(&self, len: u64) -> Option<u64> {
        let r = self.move_ps_per_byte.load(Ordering::Relaxed);
        (r != 0).then(|| (len as u128 * r as u128 / 1000).min(u64::MAX as u128) as u64)
    }

    /// Device `reader`'s launch that used [start, start+len) took
    /// `cost_ns`, and the records hold the span whole in system memory
    /// (`in_system`: the launch rented it, and its tab pays the cost) or
    /// in the reader's VRAM (`in_own`: bought, and its tab starts
    /// again). Spans resolve serves where they lie whatever they cost
    /// (small reads) keep no tab. One lock, at a report, never on a
    /// placement.
    pub(crate) fn reported(&self, reader: u16, start: u64, len: u64, cost_ns: u64, in_system: bool, in_own: bool) {
        if in_system && len > super::resolve::SMALL_READ {
            let mut tabs = self.tabs.lock();
            if tabs.len() >= MAX_TABS && !tabs.contains_key(&(start, len, reader)) {
                tabs.clear();
            }
            let t = tabs.entry((start, len, reader)).or_default();
            t.paid_ns = t.paid_ns.saturating_add(cost_ns);
            t.charged_at = self.reports_of(reader);
            self.any.store(true, Ordering::Relaxed);
        } else if in_own && self.any.load(Ordering::Relaxed) {
            self.tabs.lock().remove(&(start, len, reader));
        }
    }

    /// Whether device `reader` still rents [start, start+len): its
    /// reported launches there cost less than moving it. None where no
    /// move was timed yet (nothing prices the buy); false where it has no
    /// tab, or one its last STALE_REPORTS reports did not charge.
    pub(crate) fn renting(&self, reader: u16, start: u64, len: u64) -> Option<bool> {
        let price = self.price_ns(len)?;
        if !self.any.load(Ordering::Relaxed) {
            return Some(false);
        }
        let now = self.reports_of(reader);
        Some(self.tabs.lock().get(&(start, len, reader)).is_some_and(|t| t.paid_ns < price && now.saturating_sub(t.charged_at) <= STALE_REPORTS))
    }

    /// Forgets the spans overlapping [start, end) (freed: a buffer
    /// allocated there again is a new one).
    pub(crate) fn forget(&self, start: u64, end: u64) {
        if self.any.load(Ordering::Relaxed) {
            self.tabs.lock().retain(|&(s, len, _), _| s + len <= start || s >= end);
        }
        self.peer_written(start, end);
    }

    /// Forgets device `slot`'s tabs (closed).
    pub(crate) fn forget_device(&self, slot: u16) {
        if self.any.load(Ordering::Relaxed) {
            self.tabs.lock().retain(|&(_, _, r), _| r != slot);
        }
        if self.any_peer.load(Ordering::Relaxed) {
            self.peer.lock().retain(|&(_, _, r), _| r != slot);
        }
        // The slot's next device starts uncounted (its runtime may not submit).
        self.submits[slot as usize % super::MAX_DEVICES].store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No price before a move of a chunk or more was timed; then a reader
    /// rents until its reported launches in system memory cost the move,
    /// and a report that finds it in the reader's VRAM starts its tab
    /// again.
    #[test]
    fn a_reader_rents_until_its_launches_cost_a_move() {
        let r = Rent::default();
        let len = 8 * CHUNK;
        r.reported(1, 0, len, 5_000_000, true, false);
        assert_eq!(r.renting(1, 0, len), None, "no move timed yet");
        r.moved(1_000_000, 4096);
        assert_eq!(r.renting(1, 0, len), None, "a page's move prices nothing");
        r.moved(2_000_000, 2 * CHUNK); // 0.476 ns a byte: 16 MiB cost 8 ms
        assert_eq!(r.renting(1, 0, len), Some(true), "5 ms paid of 8");
        r.reported(1, 0, len, 5_000_000, false, false);
        assert_eq!(r.renting(1, 0, len), Some(true), "a launch that found it elsewhere pays nothing");
        r.reported(1, 0, len, 3_000_000, true, false);
        assert_eq!(r.renting(1, 0, len), Some(false), "8 ms paid");
        assert_eq!(r.renting(0, 0, len), Some(false), "another reader has no tab: its second read buys");
        r.reported(1, 0, len, 1_000, false, true);
        assert_eq!(r.renting(1, 0, len), Some(false), "bought: no tab until it rents again");
        r.reported(1, 0, len, 1_000, true, false);
        assert_eq!(r.renting(1, 0, len), Some(true), "a new tab");
        r.reported(1, 0, 64 << 10, 1_000, true, false);
        assert_eq!(r.renting(1, 0, 64 << 10), Some(false), "a small read keeps no tab");
    }

    /// A tab its reader's last 32 reports did not charge buys; the
    /// lowest rate prices, a slower move changes nothing.
    #[test]
    fn a_tab_nothing_charges_stops_renting() {
        let r = Rent::default();
        r.moved(1_000_000, CHUNK);
        r.moved(9_000_000, CHUNK);
        r.report(1);
        r.reported(1, 0, CHUNK, 500_000, true, false);
        assert_eq!(r.renting(1, 0, CHUNK), Some(true), "0.5 ms paid of 1 (the slower move priced nothing)");
        for _ in 0..STALE_REPORTS {
            r.report(1);
        }
        assert_eq!(r.renting(1, 0, CHUNK), Some(true), "charged 32 reports ago");
        r.report(1);
        assert_eq!(r.renting(1, 0, CHUNK), Some(false), "33: stale, bought");
        r.reported(1, 0, CHUNK, 100_000, true, false);
        assert_eq!(r.renting(1, 0, CHUNK), Some(true), "charged again");
    }

    /// A read over a peer link rents until its reported launches paid the
    /// span's move, each a pass or its duration, the less; placements pay
    /// nothing. Bought, it holds while the launches after the move cost
    /// less than a rented one; one as dear undoes it, and the next buy
    /// costs two moves. A write starts the tabs again.
    #[test]
    fn a_read_over_a_peer_link_rents_until_its_reports_pay_the_move() {
        let r = Rent::default();
        let len = 8 * CHUNK;
        // Device 1 reads what device 0 holds.
        let read = |r: &Rent| r.peer_read(1, 0, 0, len, 1_000_000, true) == Some(true);
        assert!(!read(&r), "no move timed: served over the link");
        r.moved(2_000_000, 2 * CHUNK); // 0.476 ns a byte: 16 MiB cost 8 ms
        for _ in 0..20 {
            assert!(!read(&r), "placed, not reported: nothing paid");
        }
        let rent = |n: u32, cost_ns: u64| {
            for _ in 0..n {
                assert!(!read(&r));
                r.peer_reported(1, 0, len, cost_ns, false);
            }
        };
        rent(1, 500_000);
        rent(7, 3_000_000);
        r.peer_reported(1, 0, len, 3_000_000, false);
        assert!(!read(&r), "7.5 ms paid (a report with no pass served pays nothing)");
        r.peer_reported(1, 0, len, 3_000_000, false);
        assert!(read(&r) && r.peer_bought(1, 0, len), "8.5 ms: bought");
        assert!(!r.peer_bought(0, 0, len) && !r.peer_bought(1, 0, CHUNK), "another reader, another span");
        assert_eq!(r.peer_read(0, 1, 0, len, 1_000_000, true), None, "a reader that bought is no home to read from");
        assert_eq!(r.peer_read(2, 0, 0, len, 1_000_000, false), Some(false), "no reports: served over the link");
        r.peer_reported(1, 0, len, 9_000_000, false);
        assert!(r.peer_bought(1, 0, len), "a launch placed before the buy tests nothing");
        r.peer_reported(1, 0, len, 20_000_000, true);
        r.peer_reported(1, 0, len, 1_000_000, true);
        assert!(r.peer_bought(1, 0, len), "the faults' move, then cheaper than the rent");
        r.peer_reported(1, 0, len, 3_000_000, true);
        assert!(!r.peer_bought(1, 0, len), "as dear as a rented launch: undone");
        rent(9, 3_000_000);
        assert!(!read(&r), "9 ms of two moves' 16");
        r.peer_reported(1, 0, len, 3_000_000, false);
        rent(6, 3_000_000);
        assert!(read(&r), "16 ms: bought again");
        r.peer_written(len - 4096, len);
        assert!(!r.peer_bought(1, 0, len) && !read(&r), "written: a new tab");
        r.peer_reported(1, 0, len, 3_000_000, false);
        r.forget_device(1);
        assert!(!r.peer_bought(1, 0, len), "closed");
    }

    /// Launches placed and submitted but not reported (a runtime running
    /// ahead, or one that never reports) owe a pass each, the one being
    /// placed aside: the buy comes at the same launch as where each
    /// reports before the next is placed, and a resolve repeated for one
    /// launch owes nothing more. Without submissions nothing is owed.
    #[test]
    fn a_read_over_a_peer_link_owes_a_pass_for_each_launch_placed_and_not_reported() {
        let r = Rent::default();
        let len = 8 * CHUNK;
        r.moved(2_000_000, 2 * CHUNK); // 16 MiB cost 8 ms
        let read = |r: &Rent, reader: u16, learning: bool| r.peer_read(reader, 0, 0, len, 1_000_000, learning) == Some(true);
        for _ in 0..20 {
            assert!(!read(&r, 1, false), "no reports, no launches: nothing owed");
        }
        for n in 1..=8 {
            r.submitted(1);
            assert!(!read(&r, 1, false) && !read(&r, 1, false), "launch {n}: {} ms owed", n - 1);
        }
        r.submitted(1);
        assert!(read(&r, 1, false) && r.peer_bought(1, 0, len), "launch 9: 8 ms owed of an 8 ms move, never reported: bought");
        // Device 2 runs one launch ahead of its reports.
        r.submitted(2);
        for n in 1..=8 {
            assert!(!read(&r, 2, true), "launch {n}: {} ms paid and owed", n - 1);
            r.submitted(2);
            if n > 1 {
                r.peer_reported(2, 0, len, 3_000_000, false);
            }
        }
        assert!(read(&r, 2, true), "launch 9: 7 ms paid, 1 owed: bought");
    }

    /// A freed span's tabs go, and a closed reader's.
    #[test]
    fn freed_spans_and_closed_readers_are_forgotten() {
        let r = Rent::default();
        r.moved(1_000_000, CHUNK);
        for reader in [1, 2] {
            r.reported(reader, 0, CHUNK, 10_000_000, true, false);
            assert_eq!(r.renting(reader, 0, CHUNK), Some(false), "10 ms paid of 1");
        }
        // A tab that starts again rents.
        let fresh = |reader| {
            r.reported(reader, 0, CHUNK, 1_000, true, false);
            r.renting(reader, 0, CHUNK) == Some(true)
        };
        r.forget_device(2);
        assert_eq!(r.renting(1, 0, CHUNK), Some(false), "another reader's tab stays");
        assert!(fresh(2), "closed: its tab went");
        r.forget(CHUNK - 1, CHUNK);
        assert!(fresh(1), "freed: its tab went");
    }
}
