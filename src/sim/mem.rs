//! Physical memory of the simulated machine: where every 4 KiB page of the
//! process lives (unpopulated, system, or a VRAM allocation of one pagemap),
//! the content token of each page *in the storage that holds it*, VRAM
//! allocations (the kernel's per-range BOs) with their LRU and timeslice,
//! and the CPU address-space layout (which spans are mapped, and how).
//!
//! Content is stored physically: a system page's token lives in system
//! storage, a device page's token inside its allocation. A migration copies
//! tokens from source storage to destination storage, so a bug that moves a
//! page without copying, or frees an allocation that still holds pages,
//! changes the content checksum instead of going unnoticed.

use std::collections::BTreeMap;

pub const PAGE: u64 = 4096;
pub const PAGES_PER_BLOCK: usize = 512;
pub const BLOCK: u64 = PAGE * PAGES_PER_BLOCK as u64; // 2 MiB
/// User address space modelled: [0, 2^47) (x86-64 without 5-level paging).
pub const VA_END: u64 = 1 << 47;

/// Where a page is, one byte per page: 0 unpopulated, 1 system, 2 + pagemap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loc {
    Unpopulated,
    System,
    Vram(u16),
}

const LOC_UNPOPULATED: u8 = 0;
const LOC_SYSTEM: u8 = 1;
/// Set while a migration has collected the page and not yet finalized it.
const LOCKED: u8 = 0x80;

impl Loc {
    fn encode(self) -> u8 {
        match self {
            Loc::Unpopulated => LOC_UNPOPULATED,
            Loc::System => LOC_SYSTEM,
            Loc::Vram(p) => 2 + p as u8,
        }
    }
    fn decode(b: u8) -> Loc {
        match b & !LOCKED {
            LOC_UNPOPULATED => Loc::Unpopulated,
            LOC_SYSTEM => Loc::System,
            p => Loc::Vram((p - 2) as u16),
        }
    }
}

/// 2 MiB of address space: page placement, system-side content, and for
/// device pages the allocation that holds them.
struct Block {
    loc: [u8; PAGES_PER_BLOCK],
    sys: [u32; PAGES_PER_BLOCK],
    alloc: [u32; PAGES_PER_BLOCK],
}

/// A VRAM allocation backing (part of) one SVM range in one pagemap.
#[derive(Debug)]
pub struct DevAlloc {
    pub pagemap: u16,
    pub start: u64,
    /// Content of each page of the allocation, indexed from `start`.
    pub tokens: Vec<u32>,
    /// Pages of the allocation that still hold the process's data.
    pub live: u32,
    /// Simulated time before which a CPU fault may not migrate it back (§12).
    pub timeslice_expiry: u64,
    /// A migration into it has not finalized yet (it may still be empty).
    pub in_flight: bool,
    lru: u64,
}

impl DevAlloc {
    pub fn bytes(&self) -> u64 {
        self.tokens.len() as u64 * PAGE
    }
    pub fn end(&self) -> u64 {
        self.start + self.bytes()
    }
}

/// Kind of CPU mapping at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKind {
    Unmapped,
    Anonymous,
    /// File-backed or shmem: never placed in VRAM (kernel-model §2 step 4).
    File,
}

/// A span's placement as get_pages sees it ([`Memory::prepare_pages`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Uniformity {
    pub system: bool,
    pub device: Option<(u16, u32)>,
    pub several_devices: bool,
}

/// A summary of a span's pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub unpopulated: u64,
    pub system: u64,
    /// Pages in the given target pagemap.
    pub in_target: u64,
    /// Pages in any other pagemap.
    pub other_device: u64,
    /// Distinct other pagemaps seen (first two).
    pub other_pagemaps: [Option<u16>; 2],
    pub locked: u64,
}

/// VRAM allocations and their accounting, apart from the page blocks so
/// that batch operations can borrow both at once.
struct AllocTable {
    allocs: Vec<Option<DevAlloc>>,
    free_ids: Vec<u32>,
    /// Per pagemap: LRU stamp → allocation id.
    lru: Vec<BTreeMap<u64, u32>>,
    used: Vec<u64>,
    capacity: Vec<u64>,
    lru_clock: u64,
}

impl AllocTable {
    fn get(&self, id: u32) -> &DevAlloc {
        self.allocs[id as usize].as_ref().expect("live allocation")
    }

    fn get_mut(&mut self, id: u32) -> &mut DevAlloc {
        self.allocs[id as usize].as_mut().expect("live allocation")
    }

    fn token(&self, id: u32, addr: u64) -> u32 {
        match self.allocs.get(id as usize).and_then(|a| a.as_ref()) {
            Some(a) if addr >= a.start && addr < a.end() => a.tokens[((addr - a.start) / PAGE) as usize],
            // A device page with no allocation behind it: its data is gone.
            _ => POISON,
        }
    }

    /// One page of `id` no longer holds data; frees the allocation with its last page.
    fn release(&mut self, id: u32) {
        let a = self.get_mut(id);
        a.live -= 1;
        if a.live == 0 && !a.in_flight {
            self.free(id);
        }
    }

    fn free(&mut self, id: u32) {
        let a = self.allocs[id as usize].take().expect("live allocation");
        debug_assert_eq!(a.live, 0, "freeing an allocation that still holds pages");
        let p = a.pagemap as usize;
        self.used[p] -= a.bytes();
        self.lru[p].remove(&a.lru);
        self.free_ids.push(id);
    }
}

/// Where a batch of pages came from when they moved.
#[derive(Debug, Default)]
pub struct Moved {
    pub pages: u64,
    pub from_system: u64,
    /// Bytes per source pagemap.
    pub from_device: Vec<(u16, u64)>,
}

pub struct Memory {
    blocks: BTreeMap<u64, Box<Block>>,
    t: AllocTable,
    /// Spans that are not plain anonymous memory: start → (end, kind).
    cpu_exceptions: BTreeMap<u64, (u64, CpuKind)>,
}

fn new_block() -> Box<Block> {
    Box::new(Block { loc: [LOC_UNPOPULATED; PAGES_PER_BLOCK], sys: [0; PAGES_PER_BLOCK], alloc: [0; PAGES_PER_BLOCK] })
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

impl Memory {
    pub fn new(capacity: Vec<u64>) -> Self {
        let n = capacity.len();
        Memory {
            blocks: BTreeMap::new(),
            t: AllocTable { allocs: Vec::new(), free_ids: Vec::new(), lru: vec![BTreeMap::new(); n], used: vec![0; n], capacity, lru_clock: 0 },
            cpu_exceptions: BTreeMap::new(),
        }
    }

    pub fn used(&self, p: u16) -> u64 {
        self.t.used[p as usize]
    }

    pub fn capacity(&self, p: u16) -> u64 {
        self.t.capacity[p as usize]
    }

    // -- pages ------------------------------------------------------------

    fn block(&self, addr: u64) -> Option<&Block> {
        self.blocks.get(&(addr / BLOCK)).map(|b| &**b)
    }

    pub fn loc(&self, addr: u64) -> Loc {
        self.block(addr).map_or(Loc::Unpopulated, |b| Loc::decode(b.loc[idx(addr)]))
    }

    pub fn is_locked(&self, addr: u64) -> bool {
        self.block(addr).is_some_and(|b| b.loc[idx(addr)] & LOCKED != 0)
    }

    /// Calls `f(addr, loc, locked)` for every page of [start, end), in order.
    pub fn each_page(&self, start: u64, end: u64, mut f: impl FnMut(u64, Loc, bool)) {
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            match self.blocks.get(&bi) {
                None => (i0..i1).for_each(|i| f(base + i as u64 * PAGE, Loc::Unpopulated, false)),
                Some(b) => {
                    for i in i0..i1 {
                        f(base + i as u64 * PAGE, Loc::decode(b.loc[i]), b.loc[i] & LOCKED != 0)
                    }
                }
            }
        }
    }

    /// The first page of [start, end) for which `f(loc, locked)` holds.
    pub fn find_page(&self, start: u64, end: u64, mut f: impl FnMut(Loc, bool) -> bool) -> Option<(u64, Loc)> {
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            match self.blocks.get(&bi) {
                None => {
                    if f(Loc::Unpopulated, false) {
                        return Some((base + i0 as u64 * PAGE, Loc::Unpopulated));
                    }
                }
                Some(b) => {
                    for i in i0..i1 {
                        let l = Loc::decode(b.loc[i]);
                        if f(l, b.loc[i] & LOCKED != 0) {
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
    pub fn prepare_pages(&mut self, start: u64, end: u64, usable: impl Fn(u16) -> bool) -> Result<Uniformity, u64> {
        let mut u = Uniformity::default();
        for (bi, i0, i1) in block_spans(start, end) {
            let b = self.blocks.entry(bi).or_insert_with(new_block);
            for i in i0..i1 {
                let raw = b.loc[i];
                if raw & LOCKED != 0 {
                    return Err(bi * BLOCK + i as u64 * PAGE);
                }
                match Loc::decode(raw) {
                    Loc::Vram(p) if !usable(p) => return Err(bi * BLOCK + i as u64 * PAGE),
                    Loc::Vram(p) => match u.device {
                        None => u.device = Some((p, b.alloc[i])),
                        Some(d) if d != (p, b.alloc[i]) => u.several_devices = true,
                        Some(_) => {}
                    },
                    Loc::Unpopulated => {
                        b.loc[i] = LOC_SYSTEM;
                        b.sys[i] = 0;
                        u.system = true;
                    }
                    Loc::System => u.system = true,
                }
            }
        }
        Ok(u)
    }

    /// Locks or unlocks pages for a migration in flight.
    pub fn lock_pages(&mut self, pages: &[u64], locked: bool) {
        for group in pages.chunk_by(|a, b| a / BLOCK == b / BLOCK) {
            let b = self.blocks.entry(group[0] / BLOCK).or_insert_with(new_block);
            for &a in group {
                let i = idx(a);
                if locked {
                    b.loc[i] |= LOCKED;
                } else {
                    b.loc[i] &= !LOCKED;
                }
            }
        }
    }

    /// Counts a span's pages by place, relative to `target`.
    pub fn census(&self, start: u64, end: u64, target: Option<u16>) -> Census {
        let mut c = Census::default();
        self.each_page(start, end, |_, loc, locked| {
            c.locked += locked as u64;
            match loc {
                Loc::Unpopulated => c.unpopulated += 1,
                Loc::System => c.system += 1,
                Loc::Vram(p) if Some(p) == target => c.in_target += 1,
                Loc::Vram(p) => {
                    c.other_device += 1;
                    if c.other_pagemaps[0].is_none() {
                        c.other_pagemaps[0] = Some(p);
                    } else if c.other_pagemaps[0] != Some(p) && c.other_pagemaps[1].is_none() {
                        c.other_pagemaps[1] = Some(p);
                    }
                }
            }
        });
        c
    }

    /// The token a page holds, read from the storage that holds it.
    pub fn token(&self, addr: u64) -> u32 {
        match self.block(addr) {
            None => 0,
            Some(b) => {
                let i = idx(addr);
                match Loc::decode(b.loc[i]) {
                    Loc::Unpopulated => 0,
                    Loc::System => b.sys[i],
                    Loc::Vram(_) => self.t.token(b.alloc[i], addr),
                }
            }
        }
    }

    /// Writes the tokens of a write of `value` over [start, end), where each
    /// page lives; untouched pages are populated in system memory first.
    pub fn write_span(&mut self, start: u64, end: u64, value: u64) {
        for (bi, i0, i1) in block_spans(start, end) {
            let base = bi * BLOCK;
            let b = self.blocks.entry(bi).or_insert_with(new_block);
            for i in i0..i1 {
                let a = base + i as u64 * PAGE;
                let tok = write_token(value, a);
                match Loc::decode(b.loc[i]) {
                    Loc::Unpopulated => {
                        b.loc[i] = (b.loc[i] & LOCKED) | LOC_SYSTEM;
                        b.sys[i] = tok;
                    }
                    Loc::System => b.sys[i] = tok,
                    Loc::Vram(_) => {
                        let al = self.t.get_mut(b.alloc[i]);
                        al.tokens[((a - al.start) / PAGE) as usize] = tok;
                    }
                }
            }
        }
    }

    /// Faults untouched pages of [start, end) in as zero-filled system pages.
    pub fn populate_span(&mut self, start: u64, end: u64) {
        for (bi, i0, i1) in block_spans(start, end) {
            let b = self.blocks.entry(bi).or_insert_with(new_block);
            for i in i0..i1 {
                if b.loc[i] & !LOCKED == LOC_UNPOPULATED {
                    b.loc[i] = (b.loc[i] & LOCKED) | LOC_SYSTEM;
                    b.sys[i] = 0;
                }
            }
        }
    }

    /// Moves pages into allocation `id`, carrying their tokens. With
    /// `only_locked`, pages a munmap released meanwhile are skipped, and the
    /// moved ones are unlocked (a migration's finalize).
    pub fn move_into(&mut self, pages: &[u64], id: u32, only_locked: bool) -> Moved {
        let mut m = Moved::default();
        let mut released: Vec<u32> = Vec::new();
        // Destination storage is taken out of the table for the loop, so that
        // source allocations can be read while it is written.
        let mut dst = self.t.allocs[id as usize].take().expect("live allocation");
        let code = Loc::Vram(dst.pagemap).encode();
        for group in pages.chunk_by(|a, b| a / BLOCK == b / BLOCK) {
            let b = self.blocks.entry(group[0] / BLOCK).or_insert_with(new_block);
            for &a in group {
                let i = idx(a);
                let raw = b.loc[i];
                if only_locked && raw & LOCKED == 0 {
                    continue;
                }
                let token = match raw & !LOCKED {
                    LOC_UNPOPULATED => 0,
                    LOC_SYSTEM => b.sys[i],
                    enc => {
                        let p = (enc - 2) as u16;
                        match m.from_device.iter_mut().find(|(q, _)| *q == p) {
                            Some(e) => e.1 += PAGE,
                            None => m.from_device.push((p, PAGE)),
                        }
                        released.push(b.alloc[i]);
                        self.t.token(b.alloc[i], a)
                    }
                };
                if raw & !LOCKED <= LOC_SYSTEM {
                    m.from_system += PAGE;
                }
                dst.tokens[((a - dst.start) / PAGE) as usize] = token;
                b.loc[i] = if only_locked { code } else { (raw & LOCKED) | code };
                b.alloc[i] = id;
                m.pages += 1;
            }
        }
        dst.live += m.pages as u32;
        self.t.allocs[id as usize] = Some(dst);
        for src in released {
            self.t.release(src);
        }
        m
    }

    /// Moves device pages to system memory, carrying their tokens; returns
    /// how many moved (pages not in VRAM are left alone).
    pub fn move_to_system(&mut self, pages: &[u64]) -> u64 {
        let mut n = 0;
        for group in pages.chunk_by(|a, b| a / BLOCK == b / BLOCK) {
            let Some(b) = self.blocks.get_mut(&(group[0] / BLOCK)) else { continue };
            for &a in group {
                let i = idx(a);
                if let Loc::Vram(_) = Loc::decode(b.loc[i]) {
                    b.sys[i] = self.t.token(b.alloc[i], a);
                    self.t.release(b.alloc[i]);
                    b.loc[i] = (b.loc[i] & LOCKED) | LOC_SYSTEM;
                    n += 1;
                }
            }
        }
        n
    }

    /// Discards the pages of [start, end) (munmap): contents gone, device storage released.
    pub fn discard_span(&mut self, start: u64, end: u64) {
        for (bi, i0, i1) in block_spans(start, end) {
            let Some(b) = self.blocks.get_mut(&bi) else { continue };
            for i in i0..i1 {
                if let Loc::Vram(_) = Loc::decode(b.loc[i]) {
                    self.t.release(b.alloc[i]);
                }
                b.loc[i] = LOC_UNPOPULATED;
                b.sys[i] = 0;
            }
        }
    }

    // -- allocations --------------------------------------------------------

    pub fn alloc(&self, id: u32) -> &DevAlloc {
        self.t.get(id)
    }

    /// The allocation of pagemap `p` that holds the page at `addr`.
    pub fn alloc_at(&self, p: u16, addr: u64) -> Option<u32> {
        let b = self.block(addr)?;
        let i = idx(addr);
        if Loc::decode(b.loc[i]) != Loc::Vram(p) {
            return None;
        }
        let id = b.alloc[i];
        self.t.allocs.get(id as usize)?.as_ref().filter(|a| a.pagemap == p).map(|_| id)
    }

    /// Free bytes in a pagemap.
    pub fn free_bytes(&self, p: u16) -> u64 {
        self.t.capacity[p as usize].saturating_sub(self.t.used[p as usize])
    }

    /// Creates an empty allocation of `bytes` at `start` in pagemap `p`, if
    /// it fits. It is in flight until `finish_alloc` or `drop_empty_alloc`.
    pub fn create_alloc(&mut self, p: u16, start: u64, bytes: u64) -> Option<u32> {
        if self.free_bytes(p) < bytes {
            return None;
        }
        let t = &mut self.t;
        t.lru_clock += 1;
        let a = DevAlloc {
            pagemap: p,
            start,
            tokens: vec![0; (bytes / PAGE) as usize],
            live: 0,
            timeslice_expiry: 0,
            in_flight: true,
            lru: t.lru_clock,
        };
        let id = match t.free_ids.pop() {
            Some(id) => {
                t.allocs[id as usize] = Some(a);
                id
            }
            None => {
                t.allocs.push(Some(a));
                (t.allocs.len() - 1) as u32
            }
        };
        t.used[p as usize] += bytes;
        t.lru[p as usize].insert(t.lru_clock, id);
        Some(id)
    }

    /// Ends a migration that moved nothing into `id`: releases it if empty.
    pub fn drop_empty_alloc(&mut self, id: u32) {
        let a = self.t.get_mut(id);
        a.in_flight = false;
        if a.live == 0 {
            self.t.free(id);
        }
    }

    /// Finalizes a migration into `id`: stamps its timeslice expiry.
    pub fn finish_alloc(&mut self, id: u32, expiry: u64) {
        let a = self.t.get_mut(id);
        a.timeslice_expiry = expiry;
        a.in_flight = false;
        if a.live == 0 {
            self.t.free(id);
        }
    }

    /// Marks an allocation most recently used (TTM bumps a BO when it is bound).
    pub fn touch(&mut self, id: u32) {
        let t = &mut self.t;
        let a = t.allocs[id as usize].as_mut().unwrap();
        let p = a.pagemap as usize;
        t.lru[p].remove(&a.lru);
        t.lru_clock += 1;
        a.lru = t.lru_clock;
        t.lru[p].insert(t.lru_clock, id);
    }

    /// The least recently used allocation of a pagemap that no migration is
    /// filling and that does not overlap [exclude_start, exclude_end).
    pub fn lru_victim(&self, p: u16, exclude_start: u64, exclude_end: u64) -> Option<u32> {
        self.t.lru[p as usize].values().copied().find(|&id| {
            let a = self.t.get(id);
            let overlaps = a.start < exclude_end && exclude_start < a.end();
            !a.in_flight && !overlaps && self.find_page(a.start, a.end(), |_, locked| locked).is_none()
        })
    }

    /// Live page addresses of an allocation (pages still placed in it).
    /// A live allocation.
    pub fn allocation(&self, id: u32) -> &DevAlloc {
        self.t.get(id)
    }

    pub fn alloc_pages(&self, id: u32) -> Vec<u64> {
        let a = self.t.get(id);
        let mut out = Vec::with_capacity(a.live as usize);
        for (bi, i0, i1) in block_spans(a.start, a.end()) {
            if let Some(b) = self.blocks.get(&bi) {
                for i in i0..i1 {
                    if b.alloc[i] == id && Loc::decode(b.loc[i]) == Loc::Vram(a.pagemap) {
                        out.push(bi * BLOCK + i as u64 * PAGE);
                    }
                }
            }
        }
        out
    }

    pub fn allocations(&self) -> impl Iterator<Item = (u32, &DevAlloc)> {
        self.t.allocs.iter().enumerate().filter_map(|(i, a)| a.as_ref().map(|a| (i as u32, a)))
    }

    // -- CPU address space --------------------------------------------------

    /// The CPU mapping around `addr`: (start, end, kind). Everything not
    /// munmapped or mapped from a file is anonymous memory.
    pub fn cpu_vma(&self, addr: u64) -> (u64, u64, CpuKind) {
        if addr >= VA_END {
            return (VA_END, u64::MAX, CpuKind::Unmapped);
        }
        if let Some((&s, &(e, k))) = self.cpu_exceptions.range(..=addr).next_back() {
            if addr < e {
                return (s, e, k);
            }
        }
        let start = self.cpu_exceptions.range(..=addr).next_back().map_or(0, |(_, &(e, _))| e);
        let end = self.cpu_exceptions.range(addr..).next().map_or(VA_END, |(&s, _)| s);
        (start, end, CpuKind::Anonymous)
    }

    /// Sets the CPU mapping kind of [start, end), merging neighbours of the same kind.
    pub fn set_cpu_kind(&mut self, start: u64, end: u64, kind: CpuKind) {
        // Cut existing exceptions at the edges, drop those inside.
        let overlapping: Vec<(u64, u64, CpuKind)> = self
            .cpu_exceptions
            .range(..end)
            .filter(|(_, &(e, _))| e > start)
            .map(|(&s, &(e, k))| (s, e, k))
            .collect();
        for (s, e, k) in overlapping {
            self.cpu_exceptions.remove(&s);
            if s < start {
                self.cpu_exceptions.insert(s, (start, k));
            }
            if e > end {
                self.cpu_exceptions.insert(end, (e, k));
            }
        }
        if kind != CpuKind::Anonymous {
            let (mut s, mut e) = (start, end);
            if let Some((&ps, &(pe, pk))) = self.cpu_exceptions.range(..s).next_back() {
                if pe == s && pk == kind {
                    self.cpu_exceptions.remove(&ps);
                    s = ps;
                }
            }
            if let Some(&(ne, nk)) = self.cpu_exceptions.get(&e) {
                if nk == kind {
                    self.cpu_exceptions.remove(&e);
                    e = ne;
                }
            }
            self.cpu_exceptions.insert(s, (e, kind));
        }
    }

    /// Order-independent checksum over (address, token) of every page in a span.
    pub fn checksum(&self, start: u64, end: u64) -> u64 {
        let mut sum = 0u64;
        let mut add = |a: u64, t: u32| sum = sum.wrapping_add(page_checksum(a, t));
        for (&bi, b) in self.blocks.range(start / BLOCK..=(end.saturating_sub(1)) / BLOCK) {
            for i in 0..PAGES_PER_BLOCK {
                let a = bi * BLOCK + i as u64 * PAGE;
                if a < start || a >= end {
                    continue;
                }
                match Loc::decode(b.loc[i]) {
                    Loc::Unpopulated => {}
                    Loc::System => add(a, b.sys[i]),
                    Loc::Vram(_) => add(a, self.t.token(b.alloc[i], a)),
                }
            }
        }
        sum
    }

    /// Pages per place over the whole memory, for invariant checks: (system, per pagemap).
    pub fn totals(&self) -> (u64, Vec<u64>) {
        let mut sys = 0;
        let mut dev = vec![0u64; self.t.capacity.len()];
        for b in self.blocks.values() {
            for &l in &b.loc {
                match Loc::decode(l) {
                    Loc::System => sys += 1,
                    Loc::Vram(p) => dev[p as usize] += 1,
                    Loc::Unpopulated => {}
                }
            }
        }
        (sys, dev)
    }

    /// Approximate heap bytes held by the model (for the simulator benchmark).
    pub fn footprint(&self) -> u64 {
        let blocks = self.blocks.len() as u64 * (core::mem::size_of::<Block>() as u64 + 64);
        let allocs: u64 = self.allocations().map(|(_, a)| a.tokens.len() as u64 * 4 + 96).sum();
        blocks + allocs
    }
}

pub use super::content::{mix, page_checksum, write_token, POISON};

#[cfg(test)]
#[path = "mem_tests.rs"]
mod tests;
