//! `resolve`: where a range should live for an access (docs/kernel-model.md §3 and
//! the decision table of docs/kernel-model.md §14), refined by what the library knows: capacity
//! this context placed, pins and ping-pong history, links, what a peer
//! holds. No ioctl, no allocation, read locks only, but for the
//! learned costs' own locks where a rule asks them (the chooser's for a
//! device, policy/choose.rs; the rent's for a read in system memory
//! again, policy/rent.rs); the runtime's own
//! strategy changes nothing, and the cascade notes the access in the
//! records (a write, a read of a span born split, a walk) for the
//! placement that follows. Either notes who writes and who reads a span
//! devices take turns at (policy/faults.rs; one relaxed load, and a read
//! lock and an atomic or only where such spans exist).

use std::sync::atomic::Ordering;

use super::*;

/// Reads up to this size are served where the data is (see `resolve`).
pub(super) const SMALL_READ: u64 = 256 << 10;
/// The bandwidth of a peer link where nothing said it: PCIe P2P's
/// (docs/cost-model.md). The launch's reported duration caps a pass's
/// rent in any case (policy/rent.rs).
const PEER_LINK_BW: f64 = 20e9;

impl Context {
    /// Where [start, start+size) should live for an access by `tile` of a
    /// device: docs/kernel-model.md §3 and §14, plus what the library knows (capacity
    /// this context placed, pins and ping-pong history, links). No ioctl, no
    /// allocation.
    pub fn resolve(&self, h: DeviceHandle, tile: u16, start: u64, size: u64, access: Access) -> Result<Pagemap> {
        self.resolve_tagged(h, tile, start, size, access).map(|(pm, _)| pm)
    }

    /// [`Context::resolve`], with the generation of the answer's device slot
    /// (0 for system memory), read under the same lock: what the C ABI puts
    /// in an `svm_pagemap`, so that a call takes the slots lock once. The
    /// handle is checked here only (EINVAL unknown, ENODEV closed).
    pub fn resolve_tagged(&self, h: DeviceHandle, tile: u16, start: u64, size: u64, access: Access) -> Result<(Pagemap, u16)> {
        let end = check_span(start, size)?;
        self.stats.local().resolve_calls.fetch_add(1, Ordering::Relaxed);
        let slots = self.slots.read();
        let pm = self.resolve_in(&slots, h, tile, start, end, access)?;
        let gen = match pm {
            Pagemap::Vram { device, .. } => slots.get(device as usize).map_or(0, |s| s.gen),
            Pagemap::System => 0,
        };
        Ok((pm, gen))
    }

    fn resolve_in(&self, slots: &[Slot], h: DeviceHandle, tile: u16, start: u64, end: u64, access: Access) -> Result<Pagemap> {
        // A span born in pieces is served in system memory (policy/birth.rs).
        let pieces = access != Access::Atomic && self.any_born_in_pieces();
        let size = end - start;
        let dev = Context::device_in(slots, h)?;
        dev.check_alive()?;
        if tile as usize >= dev.tiles.len() {
            return Err(Errno::EINVAL);
        }
        // Who writes and who reads a span devices take turns at, as asked
        // (policy/faults.rs: a hand-off from one writer to other readers).
        if access != Access::Prefetch {
            self.turns.note(h.slot, start, size, access != Access::Read);
            if access != Access::Read {
                self.rent.peer_written(start, end);
            }
        }
        // Integrated GPU: no device memory at all (row 23).
        let Some(t) = dev.tiles[tile as usize] else { return Ok(Pagemap::System) };
        let local = Pagemap::Vram { device: h.slot, tile };
        let born = pieces && self.born_in_pieces(start, end);
        let track = self.track.read();
        // The record of the span, else the one covering most of it (a piece
        // a peer peeked at must not speak for the whole buffer), if it
        // covers at least half: a packed neighbour's record shares a page
        // with the span and says nothing of the rest.
        let exact = track.exact(start, end);
        let widest = || {
            track
                .overlapping(start, end)
                .max_by_key(|(s, r)| r.end.min(end) - (*s).max(start))
                .filter(|&(s, r)| super::record::speaks_for(s, r.end, start, end))
        };
        // Whether one record holds more than the span (the span is part of it).
        let part_of_larger = exact.is_none() && widest().is_some_and(|(s, r)| s <= start && r.end >= end);
        let rec = exact.or_else(|| widest().map(|(_, r)| r));
        // The cascade decides this span (policy/choose.rs), or the runtime's
        // own strategy does.
        let cascade = self.config.engine_rules || self.chooser.cascade_next(h.slot, start, size);
        if access == Access::Atomic {
            // The cascade's writer bookkeeping (the default engine's resolve
            // changes nothing).
            if let Some(r) = rec.filter(|_| cascade) {
                r.written();
            }
            // GPU atomics run in local VRAM only (docs/kernel-model.md §3.2, rows 15-19); CPU-only atomics fail (row 21).
            if rec.is_some_and(|r| r.attrs(h.slot).atomic == DRM_XE_ATOMIC_CPU) {
                return Err(Errno::EACCES);
            }
            return Ok(local);
        }
        // Born in system memory where VRAM would have taken it 4 KiB at a
        // time (policy/birth.rs): served there.
        if born && rec.is_some_and(|r| !r.read_mostly) {
            return Ok(Pagemap::System);
        }
        let links = self.links.read();
        let reachable = |pm: Pagemap| Context::reaches(&links, slots, h.slot, pm);
        // A read of a span of a chunk or more that a linked peer's VRAM
        // holds is served there, over the link, whatever strategy runs,
        // until the launches it was served to have paid its move
        // (rent or buy, policy/rent.rs): a pass costs its bytes
        // at the link's bandwidth (20 GB/s for PCIe P2P, about 0.05 ms a
        // MiB), where moving it here costs the copy and the CPU's work per
        // page (about 0.4 ms a MiB, docs/cost-model.md), and the peer's
        // next use may move it back (devices splitting an input, or taking
        // turns at it, each fault what the other holds). Not where the
        // runtime advised this device otherwise, or marked read-mostly, on
        // any piece of the span (their own rules), not below a chunk (the
        // madvise that maps it remotely would cut a packed neighbour's
        // chunk), not on a kernel without multi-device madvise (6.18: the
        // VM cannot be told to map a peer's pages). The records are walked
        // only for a span a peer holds.
        // Measured on generated programs (ten seeds, 200 each): 132
        // programs 3 % to 3x faster, 16 slower by more than 3 %
        // (multi-round atomics on two devices, up to 1.33x: every round
        // reads over the link what one move would have made local);
        // programs more than 2 % behind the better baseline 24 -> 16, and
        // on 4dgpu-p2p and max-node (seed 65) 5 -> 1 and 6 -> 1.
        let peer = rec
            .filter(|_| access == Access::Read && size >= CHUNK)
            .and_then(|r| r.residency)
            .filter(|&p| p.device().is_some_and(|d| d != h.slot) && dev.multi_device_ok() && reachable(p));
        let unadvised = || track.overlapping(start, end).all(|(_, r)| !r.read_mostly) && !track.advice.any_for(start, end, h.slot);
        // Rent or buy (policy/rent.rs): once the passes served over the
        // link paid the span's move (reported, or owed by launches
        // submitted and not reported), the read is left to this device's
        // faults (alloc_vram, `Rent::peer_bought`); a peer that bought its
        // own reads of the span is no home to read from. A resolve
        // repeated for one launch owes nothing more.
        if let Some((p, holder)) = peer.filter(|_| unadvised()).and_then(|p| Some((p, p.device()?))) {
            let bw = match links.get(h.slot, holder) {
                crate::topology::LinkState::Present(l) if l.bandwidth > 0.0 => l.bandwidth,
                _ => PEER_LINK_BW,
            };
            match self.rent.peer_read(h.slot, holder, start, size, (size as f64 / bw * 1e9) as u64, self.chooser.learning()) {
                Some(true) => {
                    crate::log!(crate::log::Level::Debug, "resolve {} device {}: a linked peer holds it, and its reads over the link paid its move: bought, left to this device's faults", crate::log::Span(start, size), h.slot);
                    return Ok(local);
                }
                Some(false) => {
                    crate::log!(crate::log::Level::Debug, "resolve {} device {}: a linked peer holds it: read there, {p} (over the link)", crate::log::Span(start, size), h.slot);
                    return Ok(p);
                }
                None => {}
            }
        }
        // The runtime's advice for this device (kept apart from the records).
        let advised = track.advice.prevailing(start, end, h.slot);
        // A span another tile of this device holds is used where it lies
        // (atomics were answered above): the device's kernels reach either
        // tile's memory at its local bandwidth (docs/cost-model.md, "A
        // launch"), where a move copies it tile to tile with the CPU's work
        // per 4 KiB page (about 0.7 ms per 2 MiB without device huge pages).
        // Not where the runtime advised this device or marked it
        // read-mostly (their own rules), nor for an explicit prefetch (the
        // application asked for it here).
        let sibling = rec
            .filter(|r| !r.read_mostly && advised.is_none() && access != Access::Prefetch)
            .and_then(|r| r.residency)
            .filter(|p| p.device() == Some(h.slot) && *p != local);
        if let Some(p) = sibling {
            // The cascade's writer bookkeeping, as below.
            if let Some(r) = rec.filter(|_| cascade && access == Access::Write) {
                r.written();
            }
            crate::log!(crate::log::Level::Debug, "resolve {} device {} tile {tile}: used where it lies, {p} (the same device)", crate::log::Span(start, size), h.slot);
            return Ok(p);
        }
        if !cascade {
            let read = matches!(access, Access::Read | Access::Prefetch);
            return Ok(super::prefetch::resolve_plain(rec, advised, read, local, size, dev.placed[tile as usize].load(Ordering::Relaxed), t.capacity, reachable));
        }
        // Producer and consumer: a write to data that moved to a device that
        // read it from this one's VRAM (its reader holds it now) is written
        // there, over the link, rather than pulled back and moved to the
        // reader again every round. The readers stay recorded, so the next
        // round decides the same; the reader's own write ends it.
        let feeds_reader = rec
            .filter(|_| access == Access::Write)
            .and_then(|r| r.residency.filter(|&p| reachable(p) && p.device().is_some_and(|d| d != h.slot && r.read_from_peer_by(d))));
        if access == Access::Write && feeds_reader.is_none() {
            if let Some(r) = rec {
                r.written();
            }
        }
        // A small read of memory not in VRAM is read where it is: a remote
        // read of 64 KiB over PCIe takes about 1.4 us, while a migration
        // moves a whole SVM range (2 MiB, about 94 us with its fixed costs,
        // docs/cost-model.md) for the few bytes asked (irregular gathers).
        if access == Access::Read && size <= SMALL_READ && rec.is_none_or(|r| r.residency.is_none_or(|p| p == Pagemap::System)) {
            // Unless the device walks a buffer piece by piece again (a new
            // walk inside an earlier one, of two chunks or more): that is
            // reuse, and the earlier walk's remote pass buys the move of
            // what it covered (rent or buy, as for one large read). Not
            // where another device reads it in place too: it stays where
            // every reader reaches it (several readers).
            if let Some((ws, we)) = dev.walk.read(start, end) {
                let (cs, ce) = (ws.next_multiple_of(CHUNK), we & !(CHUNK - 1));
                let placed = dev.placed[tile as usize].load(Ordering::Relaxed);
                let alone = || track.overlapping(cs, ce).all(|(_, r)| r.residency == Some(Pagemap::System) && !r.readers_in_place(h.slot).1);
                if ce >= cs + 2 * CHUNK && placed.saturating_add(ce - cs) <= t.capacity && (cs..ce).contains(&start) && alone() {
                    crate::log!(crate::log::Level::Debug, "resolve {} device {}: walks {} piece by piece again: moved to {local} (rent or buy)", crate::log::Span(start, size), h.slot, crate::log::Span(cs, ce - cs));
                    dev.walk.offer(cs, ce);
                    return Ok(local);
                }
            }
            return Ok(Pagemap::System);
        }
        // A read of a span born split (policy/birth.rs): the GPU uses what
        // it wrote, so the owner's call that follows buys the rest at once.
        if access == Access::Read {
            if let Some(r) = rec.filter(|r| r.probe_born && !r.probe_read.load(Ordering::Relaxed)) {
                r.probe_read.store(true, Ordering::Relaxed);
            }
        }
        // An explicit prefetch reads; it only skips the rules that serve a
        // first read in place.
        let read = matches!(access, Access::Read | Access::Prefetch);
        if let Some(r) = rec {
            // An explicit preferred location wins where it can be reached (rows 10-13).
            if let Some(p) = advised.filter(|&p| reachable(p)) {
                return Ok(p);
            }
            // Read-mostly (the runtime's hint): several devices read it. One
            // copy must serve them all (no replication in xe), so a read is
            // served where it lies if that is system memory or this device's
            // VRAM, and otherwise from system memory, which every device reads
            // at host bandwidth (46 GB/s against 20 GB/s for a peer link in
            // docs/cost-model.md): readers never pull it back and forth.
            if let Some(cur) = feeds_reader {
                crate::log!(crate::log::Level::Debug, "resolve {} device {}: written where its reader holds it, {cur} (producer and consumer)", crate::log::Span(start, size), h.slot);
                return Ok(cur);
            }
            if read && r.read_mostly {
                return Ok(match r.residency {
                    Some(p) if p == local || p == Pagemap::System => p,
                    _ => Pagemap::System,
                });
            }
            // Pinned or ping-ponging: leave it where it is (mapped remotely),
            // or, where this device cannot reach it (no link), in system
            // memory, which every device reaches (alloc_vram's guard pins it
            // there).
            if let Some(cur) = r.residency {
                let now = self.driver.now_ns();
                let thrashing = r.thrashing(now, self.thrash_window(size), self.config.thrash_max_moves);
                if now < r.pinned_until || (thrashing && cur != local) {
                    return Ok(if reachable(cur) { cur } else { Pagemap::System });
                }
            }
            if let Some(cur) = r.residency.filter(|&p| reachable(p)) {
                // A read of part of what a linked peer holds is served over
                // the link (row 12) rather than moving a piece of the peer's
                // range here and back.
                if read && part_of_larger && cur != local && cur != Pagemap::System {
                    return Ok(cur);
                }
            }
            // Several readers of what a peer holds: data another device also
            // read from a peer's VRAM since it was last written goes to
            // system memory, which every device reads at host bandwidth (46
            // GB/s against 20 for a peer link, docs/cost-model.md): moving it
            // from reader to reader would copy it once per reader, and VRAM
            // would hold one copy per reader's worth of room.
            let in_peer = r.residency.and_then(|p| p.device()).is_some_and(|d| d != h.slot);
            if in_peer && access == Access::Read && r.read_from_peer(h.slot) {
                crate::log!(crate::log::Level::Debug, "resolve {} device {}: read from a peer's VRAM by another device since its last write: system memory (several readers)", crate::log::Span(start, size), h.slot);
                return Ok(Pagemap::System);
            }
        }
        // Rent or buy (ski rental): a read of data in system memory is served
        // in place the first time this device reads it, and migrated the next
        // time. A remote read of the whole span costs what its migration's
        // copy does (both cross the same link, docs/cost-model.md), so the
        // remote pass already paid buys the move: at most twice the better
        // choice whatever comes next, and data read once (streaming) never
        // moves. Where launch reports tell what the rent costs, the move's
        // price is what the context's own moves took, the kernel's work per
        // page included, and it is bought once the launches that used it
        // there cost that (policy/rent.rs). Data other devices also read in
        // place stays where every reader reaches it at host bandwidth.
        if access == Access::Read && rec.is_none_or(|r| r.residency.is_none_or(|p| p == Pagemap::System)) {
            let (mine, others) = rec.map_or((false, false), |r| r.readers_in_place(h.slot));
            if !mine || others {
                return Ok(Pagemap::System);
            }
            // Nor is it bought where this device used more than its VRAM
            // since its last read (a cyclic scan of more than the VRAM): the
            // kernel evicts the least recently used first, so the move
            // would be evicted again before the next read, and each round
            // would pay a move and an eviction for one local pass.
            if self.chooser.reused_beyond(h.slot, start, size, t.capacity) {
                crate::log!(crate::log::Level::Debug, "resolve {} device {}: read again after more than its VRAM's worth of other spans: served in place (reuse distance)", crate::log::Span(start, size), h.slot);
                return Ok(Pagemap::System);
            }
            // Where launch reports price the rent (policy/rent.rs), it is
            // bought once the launches that used it there cost a move.
            if self.chooser.learning() && self.rent.renting(h.slot, start, size) == Some(true) {
                crate::log!(crate::log::Level::Debug, "resolve {} device {}: read again, its launches in system memory cost less than its move so far: served in place (rent)", crate::log::Span(start, size), h.slot);
                return Ok(Pagemap::System);
            }
        }
        // One launch, one use: a small span the launch being placed has
        // bound in system memory for a read (an argument passed twice, a
        // kernel that updates in place) is written there too. The read's
        // answer rented it for this launch; a move now would pay the copy
        // and the TLB invalidation of the binding just made (about 0.4 ms
        // for 256 KiB, docs/cost-model.md) for a launch that writes it at
        // host bandwidth in about 6 us. The next launch decides afresh.
        // Measured on generated programs (ten seeds, 200 each): five
        // small-allocation programs 6-16 % faster, none more than 0.2 %
        // slower.
        if access == Access::Write
            && size <= SMALL_READ
            && exact.is_some_and(|r| r.residency == Some(Pagemap::System) && r.bound_for(h.slot))
            && self.chooser.in_open_launch(h.slot, start, size)
        {
            crate::log!(crate::log::Level::Debug, "resolve {} device {}: written by the launch that reads it in place: served there (one launch, one use)", crate::log::Span(start, size), h.slot);
            return Ok(Pagemap::System);
        }
        // Writer and readers meet in system memory: data there that another
        // device used in place since its last move, written now by this
        // one, stays: both reach it at host bandwidth (46 GB/s, docs/cost-model.md),
        // where moving it here would make the other's next pass cross a
        // peer link (20 GB/s) or move it back (a stage's output the next
        // stage reads). Its own record only: a piece another device read
        // does not speak for a larger span written.
        if access == Access::Write && exact.is_some_and(|r| r.residency == Some(Pagemap::System) && r.readers_in_place(h.slot).1) {
            crate::log!(crate::log::Level::Debug, "resolve {} device {}: written in system memory, where another device uses it in place (writer and readers)", crate::log::Span(start, size), h.slot);
            return Ok(Pagemap::System);
        }
        // Default: the accessing tile's VRAM, if this context has room there.
        let already = rec.is_some_and(|r| r.residency == Some(local));
        let placed = dev.placed[tile as usize].load(Ordering::Relaxed);
        if already || placed.saturating_add(size) <= t.capacity {
            return Ok(local);
        }
        match rec.and_then(|r| r.residency).filter(|&p| reachable(p)) {
            Some(cur) => Ok(cur),
            None => Ok(Pagemap::System),
        }
    }
}
