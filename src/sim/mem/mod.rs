//! Physical memory of the simulated machine: where every 4 KiB page of the
//! process lives (unpopulated, system, or a VRAM allocation of one pagemap),
//! the content token of each page *in the storage that holds it*, VRAM
//! allocations (the kernel's per-range BOs) with their LRU and timeslice,
//! and the CPU address-space layout (which spans are mapped, and how).
//!
//! By concern: `pages` (the per-page location and content encoding, in 2
//! MiB blocks), `vram` (allocations, their accounting and LRU), `space`
//! (the CPU mappings); this file holds [`Memory`] and the page operations
//! that move data between them.
//!
//! Content is stored physically: a system page's token lives in system
//! storage, a device page's token inside its allocation. A migration copies
//! tokens from source storage to destination storage, so a bug that moves a
//! page without copying, or frees an allocation that still holds pages,
//! changes the content checksum instead of going unnoticed.

use std::collections::BTreeMap;

mod pages;
mod space;
mod vram;
mod zero;

use pages::*;
pub use pages::Loc;
pub use space::CpuKind;
use vram::*;
pub use vram::DevAlloc;

/// The page size.
pub const PAGE: u64 = 4096;
/// Pages per 2 MiB block.
pub const PAGES_PER_BLOCK: usize = 512;
/// A block: 2 MiB.
pub const BLOCK: u64 = PAGE * PAGES_PER_BLOCK as u64; // 2 MiB
/// User address space modelled: [0, 2^47) (x86-64 without 5-level paging).
pub const VA_END: u64 = 1 << 47;

/// A span's placement as get_pages sees it ([`Memory::prepare_pages`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Uniformity {
    /// Some page is in system memory (or unpopulated).
    pub system: bool,
    /// The one pagemap and allocation holding device pages, if only one.
    pub device: Option<(u16, u32)>,
    /// Device pages of more than one pagemap or allocation.
    pub several_devices: bool,
}

/// A summary of a span's pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Pages never populated.
    pub unpopulated: u64,
    /// Pages in system memory.
    pub system: u64,
    /// Pages in the given target pagemap.
    pub in_target: u64,
    /// Pages in any other pagemap.
    pub other_device: u64,
    /// Distinct other pagemaps seen (first two).
    pub other_pagemaps: [Option<u16>; 2],
    /// Pages locked by a migration in flight.
    pub locked: u64,
}

/// Where a batch of pages came from when they moved.
#[derive(Debug, Default)]
pub struct Moved {
    /// Pages moved.
    pub pages: u64,
    /// Bytes that had a system page to copy from.
    pub from_system: u64,
    /// Bytes that were never populated: no source page, nothing to copy
    /// (`migrate_vma_setup` collects them as holes; the VRAM is cleared).
    pub from_unpopulated: u64,
    /// Bytes per source pagemap.
    pub from_device: Vec<(u16, u64)>,
}

/// Hashes a block index: one multiply (block indices are dense and need no
/// defence against collisions chosen by an attacker).
#[derive(Default)]
struct BlockHasher(u64);

impl std::hash::Hasher for BlockHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, k: u64) {
        self.0 = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Blocks = std::collections::HashMap<u64, Block, std::hash::BuildHasherDefault<BlockHasher>>;

/// The simulated machine's memory: every page's place and content, VRAM allocations, the CPU mappings.
pub struct Memory {
    /// By block index. A hash map: a migration looks its block up several
    /// times, and nothing needs them in order.
    blocks: Blocks,
    t: AllocTable,
    /// Spans that are not plain anonymous memory: start → (end, kind).
    cpu_exceptions: BTreeMap<u64, (u64, CpuKind)>,
    /// Spans the shared zero page maps (madvise MADV_POPULATE_READ over
    /// never-populated memory): start → end, disjoint. They matter only
    /// while a page is unpopulated: such a page is present to the page
    /// table and to the kernel's `check_pages` probe, and a hole to a
    /// migration (`migrate_vma_collect_pmd` collects the zero pfn as
    /// one); anything that populates it takes it out of that state.
    zero_mapped: BTreeMap<u64, u64>,
}


fn idx(addr: u64) -> usize {
    ((addr % BLOCK) / PAGE) as usize
}

/// Splits [start, end) at 2 MiB block boundaries: (block index, first page, last page + 1).
fn block_spans(start: u64, end: u64) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut a = start;
    std::iter::from_fn(move || {
        if a >= end {
            return None;
        }
        let bi = a / BLOCK;
        let stop = end.min((bi + 1) * BLOCK);
        let r = (bi, idx(a), idx(a) + ((stop - a) / PAGE) as usize);
        a = stop;
        Some(r)
    })
}

/// A page list (in address order, no repeats) by block; a list that is one
/// whole block, as whole-range migrations give, without a scan.
fn by_block(pages: &[u64]) -> impl Iterator<Item = &[u64]> {
    let whole = pages.len() == PAGES_PER_BLOCK && pages[0] % BLOCK == 0 && pages[PAGES_PER_BLOCK - 1] == pages[0] + BLOCK - PAGE;
    let (one, rest) = if whole { (Some(pages), &[][..]) } else { (None, pages) };
    one.into_iter().chain(rest.chunk_by(|a, b| a / BLOCK == b / BLOCK))
}

impl Memory {
    /// Memory with the VRAM capacity of each pagemap.
    pub fn new(capacity: Vec<u64>) -> Self {
        let n = capacity.len();
        Memory {
            blocks: Blocks::default(),
            t: AllocTable { allocs: Vec::new(), free_ids: Vec::new(), lru: vec![BTreeMap::new(); n], used: vec![0; n], capacity, lru_clock: 0 },
            cpu_exceptions: BTreeMap::new(),
            zero_mapped: BTreeMap::new(),
        }
    }

    /// Bytes of a pagemap in use.
    pub fn used(&self, p: u16) -> u64 {
        self.t.used[p as usize]
    }

    /// Bytes a pagemap holds.
    pub fn capacity(&self, p: u16) -> u64 {
        self.t.capacity[p as usize]
    }

    // -- pages ------------------------------------------------------------

    fn block(&self, addr: u64) -> Option<&Block> {
        self.blocks.get(&(addr / BLOCK))
    }

    fn block_mut(&mut self, bi: u64) -> &mut Block {
        self.blocks.entry(bi).or_insert(UNPOPULATED_BLOCK)
    }

    /// Where the page at `addr` is.
    pub fn loc(&self, addr: u64) -> Loc {
        self.block(addr).map_or(Loc::Unpopulated, |b| Loc::decode(b.loc(idx(addr))))
    }

    /// Whether a migration in flight holds the page at `addr`.
    pub fn is_locked(&self, addr: u64) -> bool {
        self.block(addr).is_some_and(|b| b.loc(idx(addr)) & LOCKED != 0)
    }

    /// Calls `f(run_start, run_end, loc, locked)` for each run of pages of
    /// [start, end) in the same state, in order (an extent is one run).
    pub fn each_run(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64, Loc, bool)) {
        let mut run: Option<(u64, u64, u8)> = None;
        let mut emit = |run: Option<(u64, u64, u8)>| {
            if let Some((s, e, raw)) = run {
                f(s, e, Loc::decode(raw), raw & LOCKED != 0)
            }
        };
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            let mut extend = |a: u64, n: u64, raw: u8| match &mut run {
                Some((_, e, r)) if *e == a && *r == raw => *e += n * PAGE,
                _ => emit(run.replace((a, a + n * PAGE, raw))),
            };
            match self.blocks.get(&bi).unwrap_or(&UNPOPULATED_BLOCK) {
                Block::Extent { loc, .. } => extend(base + i0 as u64 * PAGE, (i1 - i0) as u64, *loc),
                Block::Split(p) => (i0..i1).for_each(|i| extend(base + i as u64 * PAGE, 1, p.loc[i])),
            }
        }
        emit(run);
    }

    /// A lower bound on the never-populated bytes of [start, end) that a
    /// walk populating it would have to back: its CPU-mapped bytes less
    /// every 2 MiB block something touched. Costs the number of mapping
    /// exceptions and touched blocks, not the span's length.
    pub fn untouched_mapped_bytes(&self, start: u64, end: u64) -> u64 {
        let end = end.min(VA_END);
        if start >= end {
            return 0;
        }
        let unmapped: u64 = self
            .cpu_exceptions
            .range(..end)
            .filter(|(_, &(e, k))| e > start && k == CpuKind::Unmapped)
            .map(|(&s, &(e, _))| e.min(end) - s.max(start))
            .sum();
        let (b0, b1) = (start / BLOCK, end.div_ceil(BLOCK));
        let touched = if b1 - b0 <= self.blocks.len() as u64 {
            (b0..b1).filter(|b| self.blocks.contains_key(b)).count()
        } else {
            self.blocks.keys().filter(|&&b| (b0..b1).contains(&b)).count()
        } as u64;
        (end - start - unmapped).saturating_sub(touched * BLOCK)
    }

    /// The first page of [start, end) for which `f(loc, locked)` holds.
    pub fn find_page(&self, start: u64, end: u64, mut f: impl FnMut(Loc, bool) -> bool) -> Option<(u64, Loc)> {
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            match self.blocks.get(&bi).unwrap_or(&UNPOPULATED_BLOCK) {
                Block::Extent { loc, .. } => {
                    if f(Loc::decode(*loc), loc & LOCKED != 0) {
                        return Some((base + i0 as u64 * PAGE, Loc::decode(*loc)));
                    }
                }
                Block::Split(p) => {
                    for i in i0..i1 {
                        let l = Loc::decode(p.loc[i]);
                        if f(l, p.loc[i] & LOCKED != 0) {
                            return Some((base + i as u64 * PAGE, l));
                        }
                    }
                }
            }
        }
        None
    }

    /// get_pages in one pass: stops at the first page that a migration holds
    /// or that `usable` rejects (returning its address), else populates
    /// untouched pages in system memory and returns the span's uniformity.
    /// `born` counts the pages it populated, also on a pass that stopped.
    pub fn prepare_pages(&mut self, start: u64, end: u64, usable: impl Fn(u16) -> bool, born: &mut u64) -> Result<Uniformity, u64> {
        let mut u = Uniformity::default();
        let see = |u: &mut Uniformity, raw: u8, alloc: u32, addr: u64| -> Result<(), u64> {
            if raw & LOCKED != 0 {
                return Err(addr);
            }
            match Loc::decode(raw) {
                Loc::Vram(p) if !usable(p) => return Err(addr),
                Loc::Vram(p) => match u.device {
                    None => u.device = Some((p, alloc)),
                    Some(d) if d != (p, alloc) => u.several_devices = true,
                    Some(_) => {}
                },
                Loc::Unpopulated | Loc::System => u.system = true,
            }
            Ok(())
        };
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            let whole = i0 == 0 && i1 == PAGES_PER_BLOCK;
            let b = self.block_mut(bi);
            if let Block::Extent { loc, alloc, .. } = b {
                see(&mut u, *loc, *alloc, base + i0 as u64 * PAGE)?;
                if *loc != LOC_UNPOPULATED {
                    continue;
                }
                if whole {
                    *b = Block::Extent { loc: LOC_SYSTEM, alloc: 0, sys: Content::Zero };
                    *born += PAGES_PER_BLOCK as u64;
                    continue;
                }
            }
            let p = b.split(base);
            for i in i0..i1 {
                see(&mut u, p.loc[i], p.alloc[i], base + i as u64 * PAGE)?;
                if p.loc[i] == LOC_UNPOPULATED {
                    p.loc[i] = LOC_SYSTEM;
                    p.sys[i] = 0;
                    *born += 1;
                }
            }
        }
        Ok(u)
    }

    /// Locks or unlocks pages for a migration in flight.
    pub fn lock_pages(&mut self, pages: &[u64], locked: bool) {
        let set = |raw: &mut u8| {
            if locked {
                *raw |= LOCKED
            } else {
                *raw &= !LOCKED
            }
        };
        for group in by_block(pages) {
            let bi = group[0] / BLOCK;
            let b = self.block_mut(bi);
            match b {
                // The whole block (page lists are in address order, no repeats).
                Block::Extent { loc, .. } if group.len() == PAGES_PER_BLOCK => set(loc),
                _ => {
                    let p = b.split(bi * BLOCK);
                    group.iter().for_each(|&a| set(&mut p.loc[idx(a)]));
                }
            }
        }
    }

    /// Counts a span's pages by place, relative to `target`.
    pub fn census(&self, start: u64, end: u64, target: Option<u16>) -> Census {
        let mut c = Census::default();
        let mut add = |raw: u8, n: u64| {
            c.locked += if raw & LOCKED != 0 { n } else { 0 };
            match Loc::decode(raw) {
                Loc::Unpopulated => c.unpopulated += n,
                Loc::System => c.system += n,
                Loc::Vram(p) if Some(p) == target => c.in_target += n,
                Loc::Vram(p) => {
                    c.other_device += n;
                    if c.other_pagemaps[0].is_none() {
                        c.other_pagemaps[0] = Some(p);
                    } else if c.other_pagemaps[0] != Some(p) && c.other_pagemaps[1].is_none() {
                        c.other_pagemaps[1] = Some(p);
                    }
                }
            }
        };
        for (bi, i0, i1) in block_spans(start, end) {
            match self.blocks.get(&bi).unwrap_or(&UNPOPULATED_BLOCK) {
                Block::Extent { loc, .. } => add(*loc, (i1 - i0) as u64),
                Block::Split(p) => p.loc[i0..i1].iter().for_each(|&raw| add(raw, 1)),
            }
        }
        c
    }

    /// The token a page holds, read from the storage that holds it.
    pub fn token(&self, addr: u64) -> u32 {
        match self.block(addr) {
            None => 0,
            Some(b) => {
                let i = idx(addr);
                match Loc::decode(b.loc(i)) {
                    Loc::Unpopulated => 0,
                    Loc::System => b.sys(addr & !(BLOCK - 1), i),
                    Loc::Vram(_) => self.t.token(b.alloc(i), addr),
                }
            }
        }
    }

    /// Writes the tokens of a write of `value` over [start, end), where each
    /// page lives; untouched pages are populated in system memory first.
    /// Returns how many it populated.
    pub fn write_span(&mut self, start: u64, end: u64, value: u64) -> u64 {
        let mut born = 0;
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            let whole = i0 == 0 && i1 == PAGES_PER_BLOCK;
            let b = self.blocks.entry(bi).or_insert(UNPOPULATED_BLOCK);
            if let (true, Block::Extent { loc, alloc, sys }) = (whole, &mut *b) {
                match Loc::decode(*loc) {
                    Loc::Unpopulated | Loc::System => {
                        if Loc::decode(*loc) == Loc::Unpopulated {
                            born += PAGES_PER_BLOCK as u64;
                        }
                        *loc = (*loc & LOCKED) | LOC_SYSTEM;
                        *sys = Content::Written(value);
                        continue;
                    }
                    Loc::Vram(_) => {
                        let al = self.t.get_mut(*alloc);
                        if al.is_block(base) {
                            al.tokens = Tokens::Extent(Content::Written(value));
                            continue;
                        }
                    }
                }
            }
            let p = b.split(base);
            for i in i0..i1 {
                let a = base + i as u64 * PAGE;
                let tok = write_token(value, a);
                match Loc::decode(p.loc[i]) {
                    Loc::Unpopulated => {
                        p.loc[i] = (p.loc[i] & LOCKED) | LOC_SYSTEM;
                        p.sys[i] = tok;
                        born += 1;
                    }
                    Loc::System => p.sys[i] = tok,
                    Loc::Vram(_) => self.t.get_mut(p.alloc[i]).set_token(a, tok),
                }
            }
        }
        born
    }

    /// Faults untouched pages of [start, end) in as zero-filled system pages;
    /// returns how many.
    pub fn populate_span(&mut self, start: u64, end: u64) -> u64 {
        let mut born = 0;
        for (bi, i0, i1) in block_spans(start, end) {
            let whole = i0 == 0 && i1 == PAGES_PER_BLOCK;
            let b = self.block_mut(bi);
            if let Block::Extent { loc, sys, .. } = b {
                if *loc & !LOCKED != LOC_UNPOPULATED {
                    continue; // nothing untouched
                }
                if whole {
                    *loc = (*loc & LOCKED) | LOC_SYSTEM;
                    *sys = Content::Zero;
                    born += PAGES_PER_BLOCK as u64;
                    continue;
                }
            }
            let p = b.split(bi * BLOCK);
            for i in i0..i1 {
                if p.loc[i] & !LOCKED == LOC_UNPOPULATED {
                    p.loc[i] = (p.loc[i] & LOCKED) | LOC_SYSTEM;
                    p.sys[i] = 0;
                    born += 1;
                }
            }
        }
        born
    }

    /// Moves pages into allocation `id`, carrying their tokens. With
    /// `only_locked`, pages a munmap released meanwhile are skipped, and the
    /// moved ones are unlocked (a migration's finalize).
    pub fn move_into(&mut self, pages: &[u64], id: u32, only_locked: bool) -> Moved {
        let mut m = Moved::default();
        // Destination storage is taken out of the table for the loop, so that
        // source allocations can be read (and released: `dst` is never one)
        // while it is written.
        let mut dst = self.t.allocs[id as usize].take().expect("live allocation");
        let code = Loc::Vram(dst.pagemap).encode();
        let from_device = |m: &mut Moved, p: u16, n: u64| match m.from_device.iter_mut().find(|(q, _)| *q == p) {
            Some(e) => e.1 += n * PAGE,
            None => m.from_device.push((p, n * PAGE)),
        };
        for group in by_block(pages) {
            let bi = group[0] / BLOCK;
            let base = bi * BLOCK;
            let b = self.blocks.entry(bi).or_insert(UNPOPULATED_BLOCK);
            // The whole block as an extent into an empty allocation that is
            // exactly the block: the content moves as it is, in O(1).
            if let Block::Extent { loc, alloc, sys } = *b {
                let content = match loc & !LOCKED {
                    LOC_UNPOPULATED => Some(Content::Zero),
                    LOC_SYSTEM => Some(sys),
                    _ => self.t.allocs.get(alloc as usize).and_then(|a| a.as_ref()).and_then(|a| a.extent_of(base)),
                };
                if let (true, true, Some(content)) = (group.len() == PAGES_PER_BLOCK && dst.live == 0 && dst.is_block(base), !only_locked || loc & LOCKED != 0, content) {
                    let n = PAGES_PER_BLOCK as u64;
                    match loc & !LOCKED {
                        LOC_UNPOPULATED => m.from_unpopulated += n * PAGE,
                        LOC_SYSTEM => m.from_system += n * PAGE,
                        enc => {
                            from_device(&mut m, (enc - 2) as u16, n);
                            self.t.release(alloc, n as u32);
                        }
                    }
                    dst.tokens = Tokens::Extent(content);
                    *b = Block::Extent { loc: if only_locked { code } else { (loc & LOCKED) | code }, alloc: id, sys: Content::Zero };
                    m.pages += n;
                    continue;
                }
            }
            let p = b.split(base);
            for &a in group {
                let i = idx(a);
                let raw = p.loc[i];
                if only_locked && raw & LOCKED == 0 {
                    continue;
                }
                let token = match raw & !LOCKED {
                    LOC_UNPOPULATED => 0,
                    LOC_SYSTEM => p.sys[i],
                    enc => {
                        from_device(&mut m, (enc - 2) as u16, 1);
                        let token = self.t.token(p.alloc[i], a);
                        self.t.release(p.alloc[i], 1);
                        token
                    }
                };
                match raw & !LOCKED {
                    LOC_UNPOPULATED => m.from_unpopulated += PAGE,
                    LOC_SYSTEM => m.from_system += PAGE,
                    _ => {}
                }
                dst.set_token(a, token);
                p.loc[i] = if only_locked { code } else { (raw & LOCKED) | code };
                p.alloc[i] = id;
                m.pages += 1;
            }
        }
        dst.live += m.pages as u32;
        self.t.allocs[id as usize] = Some(dst);
        m
    }

    /// Moves device pages to system memory, carrying their tokens; returns
    /// how many moved (pages not in VRAM are left alone).
    pub fn move_to_system(&mut self, pages: &[u64]) -> u64 {
        let mut n = 0;
        for group in by_block(pages) {
            let bi = group[0] / BLOCK;
            let base = bi * BLOCK;
            let Some(b) = self.blocks.get_mut(&bi) else { continue };
            if let Block::Extent { loc, alloc, .. } = *b {
                if !matches!(Loc::decode(loc), Loc::Vram(_)) {
                    continue; // nothing in VRAM here
                }
                let content = self.t.allocs.get(alloc as usize).and_then(|a| a.as_ref()).and_then(|a| a.extent_of(base));
                if let (true, Some(content)) = (group.len() == PAGES_PER_BLOCK, content) {
                    self.t.release(alloc, PAGES_PER_BLOCK as u32);
                    *b = Block::Extent { loc: (loc & LOCKED) | LOC_SYSTEM, alloc: 0, sys: content };
                    n += PAGES_PER_BLOCK as u64;
                    continue;
                }
            }
            let p = b.split(base);
            for &a in group {
                let i = idx(a);
                if let Loc::Vram(_) = Loc::decode(p.loc[i]) {
                    p.sys[i] = self.t.token(p.alloc[i], a);
                    self.t.release(p.alloc[i], 1);
                    p.loc[i] = (p.loc[i] & LOCKED) | LOC_SYSTEM;
                    n += 1;
                }
            }
        }
        n
    }

    /// Discards the pages of [start, end) (munmap): contents gone, device storage released.
    pub fn discard_span(&mut self, start: u64, end: u64) {
        if !self.zero_mapped.is_empty() {
            self.unmap_zero_page(start, end);
        }
        for (bi, i0, i1) in block_spans(start, end) {
            let Some(b) = self.blocks.get_mut(&bi) else { continue };
            if let Block::Extent { loc, alloc, .. } = *b {
                if i0 == 0 && i1 == PAGES_PER_BLOCK {
                    if let Loc::Vram(_) = Loc::decode(loc) {
                        self.t.release(alloc, PAGES_PER_BLOCK as u32);
                    }
                    *b = UNPOPULATED_BLOCK;
                    continue;
                }
                if loc == LOC_UNPOPULATED {
                    continue;
                }
            }
            let p = b.split(bi * BLOCK);
            for i in i0..i1 {
                if let Loc::Vram(_) = Loc::decode(p.loc[i]) {
                    self.t.release(p.alloc[i], 1);
                }
                p.loc[i] = LOC_UNPOPULATED;
                p.sys[i] = 0;
            }
        }
    }

    // -- page-level checks and totals ---------------------------------------

    /// Order-independent checksum over (address, token) of every page in a span.
    pub fn checksum(&self, start: u64, end: u64) -> u64 {
        let mut sum = 0u64;
        if end <= start {
            return 0;
        }
        let (first, last) = (start / BLOCK, (end - 1) / BLOCK);
        // The span's block indices, or the touched blocks in it, whichever is
        // fewer (the sum does not depend on the order).
        let touched: Vec<(u64, &Block)> = if last - first < self.blocks.len() as u64 {
            (first..=last).filter_map(|bi| self.blocks.get(&bi).map(|b| (bi, b))).collect()
        } else {
            self.blocks.iter().filter(|(&bi, _)| bi >= first && bi <= last).map(|(&bi, b)| (bi, b)).collect()
        };
        for (bi, b) in touched {
            let base = bi * BLOCK;
            for i in 0..PAGES_PER_BLOCK {
                let a = base + i as u64 * PAGE;
                if a < start || a >= end {
                    continue;
                }
                let t = match Loc::decode(b.loc(i)) {
                    Loc::Unpopulated => 0,
                    Loc::System => b.sys(base, i),
                    Loc::Vram(_) => self.t.token(b.alloc(i), a),
                };
                sum = sum.wrapping_add(page_checksum(a, t));
            }
        }
        sum
    }

    /// Pages per place over the whole memory, for invariant checks: (system, per pagemap).
    pub fn totals(&self) -> (u64, Vec<u64>) {
        let mut sys = 0;
        let mut dev = vec![0u64; self.t.capacity.len()];
        let mut add = |raw: u8, n: u64| match Loc::decode(raw) {
            Loc::System => sys += n,
            Loc::Vram(p) => dev[p as usize] += n,
            Loc::Unpopulated => {}
        };
        for b in self.blocks.values() {
            match b {
                Block::Extent { loc, .. } => add(*loc, PAGES_PER_BLOCK as u64),
                Block::Split(p) => p.loc.iter().for_each(|&l| add(l, 1)),
            }
        }
        (sys, dev)
    }

    /// Blocks kept as extents and split into pages (for the simulator benchmark).
    pub fn block_counts(&self) -> (u64, u64) {
        let split = self.blocks.values().filter(|b| matches!(b, Block::Split(_))).count() as u64;
        (self.blocks.len() as u64 - split, split)
    }

    /// Approximate heap bytes held by the model (for the simulator benchmark).
    pub fn footprint(&self) -> u64 {
        let (_, split) = self.block_counts();
        let blocks = self.blocks.len() as u64 * (core::mem::size_of::<Block>() as u64 + 32) + split * core::mem::size_of::<Pages>() as u64;
        let allocs: u64 = self
            .allocations()
            .map(|(_, a)| match &a.tokens {
                Tokens::Extent(_) => 0,
                Tokens::Split(v) => v.len() as u64 * 4,
            } + core::mem::size_of::<DevAlloc>() as u64)
            .sum();
        blocks + allocs + self.t.allocs.capacity() as u64 * core::mem::size_of::<Option<DevAlloc>>() as u64
    }
}

pub use super::content::{mix, page_checksum, write_token, POISON};

#[cfg(test)]
#[path = "../mem_tests.rs"]
mod tests;
