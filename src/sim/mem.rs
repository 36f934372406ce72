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

pub struct Memory {
    blocks: BTreeMap<u64, Box<Block>>,
    allocs: Vec<Option<DevAlloc>>,
    free_ids: Vec<u32>,
    /// Per pagemap: LRU stamp → allocation id.
    lru: Vec<BTreeMap<u64, u32>>,
    pub used: Vec<u64>,
    pub capacity: Vec<u64>,
    lru_clock: u64,
    /// Spans that are not plain anonymous memory: start → (end, kind).
    cpu_exceptions: BTreeMap<u64, (u64, CpuKind)>,
    /// Bumped whenever any page changes place.
    pub epoch: u64,
}

impl Memory {
    pub fn new(capacity: Vec<u64>) -> Self {
        let n = capacity.len();
        Memory {
            blocks: BTreeMap::new(),
            allocs: Vec::new(),
            free_ids: Vec::new(),
            lru: vec![BTreeMap::new(); n],
            used: vec![0; n],
            capacity,
            lru_clock: 0,
            cpu_exceptions: BTreeMap::new(),
            epoch: 0,
        }
    }

    // -- pages ------------------------------------------------------------

    fn block(&self, addr: u64) -> Option<&Block> {
        self.blocks.get(&(addr / BLOCK)).map(|b| &**b)
    }

    fn block_mut(&mut self, addr: u64) -> &mut Block {
        self.blocks
            .entry(addr / BLOCK)
            .or_insert_with(|| {
                Box::new(Block { loc: [LOC_UNPOPULATED; PAGES_PER_BLOCK], sys: [0; PAGES_PER_BLOCK], alloc: [0; PAGES_PER_BLOCK] })
            })
    }

    fn idx(addr: u64) -> usize {
        ((addr % BLOCK) / PAGE) as usize
    }

    pub fn loc(&self, addr: u64) -> Loc {
        self.block(addr).map_or(Loc::Unpopulated, |b| Loc::decode(b.loc[Self::idx(addr)]))
    }

    pub fn is_locked(&self, addr: u64) -> bool {
        self.block(addr).is_some_and(|b| b.loc[Self::idx(addr)] & LOCKED != 0)
    }

    pub fn set_locked(&mut self, addr: u64, locked: bool) {
        let b = self.block_mut(addr);
        let i = Self::idx(addr);
        if locked {
            b.loc[i] |= LOCKED;
        } else {
            b.loc[i] &= !LOCKED;
        }
    }

    /// Counts a span's pages by place, relative to `target`.
    pub fn census(&self, start: u64, end: u64, target: Option<u16>) -> Census {
        let mut c = Census::default();
        let mut a = start;
        while a < end {
            let stop = end.min((a / BLOCK + 1) * BLOCK);
            match self.block(a) {
                None => c.unpopulated += (stop - a) / PAGE,
                Some(b) => {
                    for i in Self::idx(a)..Self::idx(a) + ((stop - a) / PAGE) as usize {
                        let raw = b.loc[i];
                        if raw & LOCKED != 0 {
                            c.locked += 1;
                        }
                        match Loc::decode(raw) {
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
                    }
                }
            }
            a = stop;
        }
        c
    }

    /// The token a page holds, read from the storage that holds it.
    pub fn token(&self, addr: u64) -> u32 {
        match self.loc(addr) {
            Loc::Unpopulated => 0,
            Loc::System => self.block(addr).map_or(0, |b| b.sys[Self::idx(addr)]),
            Loc::Vram(p) => match self.alloc_at(p, addr) {
                Some(id) => {
                    let a = self.allocs[id as usize].as_ref().unwrap();
                    a.tokens[((addr - a.start) / PAGE) as usize]
                }
                // A device page with no allocation behind it: its data is gone.
                None => POISON,
            },
        }
    }

    /// Writes a token where the page lives (populating an untouched page in system memory).
    pub fn write_token(&mut self, addr: u64, token: u32) {
        match self.loc(addr) {
            Loc::Unpopulated => {
                self.place_system(addr, token);
                self.epoch += 1;
            }
            Loc::System => self.block_mut(addr).sys[Self::idx(addr)] = token,
            Loc::Vram(p) => {
                if let Some(id) = self.alloc_at(p, addr) {
                    let a = self.allocs[id as usize].as_mut().unwrap();
                    a.tokens[((addr - a.start) / PAGE) as usize] = token;
                }
            }
        }
    }

    fn place_system(&mut self, addr: u64, token: u32) {
        let b = self.block_mut(addr);
        let i = Self::idx(addr);
        b.loc[i] = (b.loc[i] & LOCKED) | LOC_SYSTEM;
        b.sys[i] = token;
    }

    /// Faults an unpopulated page in as a zero-filled system page.
    pub fn populate_system(&mut self, addr: u64) {
        if self.loc(addr) == Loc::Unpopulated {
            self.place_system(addr, 0);
            self.epoch += 1;
        }
    }

    /// Moves one page to system memory, carrying its token. Returns the
    /// source pagemap if it was a device page.
    pub fn page_to_system(&mut self, addr: u64) -> Option<u16> {
        let Loc::Vram(p) = self.loc(addr) else { return None };
        let token = self.token(addr);
        self.release_device_page(p, addr);
        self.place_system(addr, token);
        self.epoch += 1;
        Some(p)
    }

    /// Moves one page into allocation `id`, carrying its token.
    pub fn page_to_alloc(&mut self, addr: u64, id: u32) {
        let token = self.token(addr);
        if let Loc::Vram(p) = self.loc(addr) {
            self.release_device_page(p, addr);
        }
        let a = self.allocs[id as usize].as_mut().unwrap();
        let pm = a.pagemap;
        a.tokens[((addr - a.start) / PAGE) as usize] = token;
        a.live += 1;
        let b = self.block_mut(addr);
        let i = Self::idx(addr);
        b.loc[i] = (b.loc[i] & LOCKED) | Loc::Vram(pm).encode();
        b.alloc[i] = id;
        self.epoch += 1;
    }

    /// Discards a page (munmap): its content is gone, its device storage released.
    pub fn discard(&mut self, addr: u64) {
        match self.loc(addr) {
            Loc::Unpopulated => return,
            Loc::Vram(p) => self.release_device_page(p, addr),
            Loc::System => {}
        }
        let b = self.block_mut(addr);
        let i = Self::idx(addr);
        b.loc[i] = LOC_UNPOPULATED;
        b.sys[i] = 0;
        self.epoch += 1;
    }

    fn release_device_page(&mut self, p: u16, addr: u64) {
        if let Some(id) = self.alloc_at(p, addr) {
            let a = self.allocs[id as usize].as_mut().unwrap();
            a.live -= 1;
            if a.live == 0 {
                self.free_alloc(id);
            }
        }
    }

    // -- allocations --------------------------------------------------------

    pub fn alloc(&self, id: u32) -> &DevAlloc {
        self.allocs[id as usize].as_ref().expect("live allocation")
    }

    /// The allocation of pagemap `p` that holds the page at `addr`.
    pub fn alloc_at(&self, p: u16, addr: u64) -> Option<u32> {
        let b = self.block(addr)?;
        let i = Self::idx(addr);
        if Loc::decode(b.loc[i]) != Loc::Vram(p) {
            return None;
        }
        let id = b.alloc[i];
        self.allocs.get(id as usize)?.as_ref().filter(|a| a.pagemap == p).map(|_| id)
    }

    /// Free bytes in a pagemap.
    pub fn free_bytes(&self, p: u16) -> u64 {
        self.capacity[p as usize].saturating_sub(self.used[p as usize])
    }

    /// Creates an empty allocation of `bytes` at `start` in pagemap `p`, if it fits.
    pub fn create_alloc(&mut self, p: u16, start: u64, bytes: u64) -> Option<u32> {
        if self.free_bytes(p) < bytes {
            return None;
        }
        self.lru_clock += 1;
        let a = DevAlloc {
            pagemap: p,
            start,
            tokens: vec![0; (bytes / PAGE) as usize],
            live: 0,
            timeslice_expiry: 0,
            in_flight: true,
            lru: self.lru_clock,
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.allocs[id as usize] = Some(a);
                id
            }
            None => {
                self.allocs.push(Some(a));
                (self.allocs.len() - 1) as u32
            }
        };
        self.used[p as usize] += bytes;
        self.lru[p as usize].insert(self.lru_clock, id);
        Some(id)
    }

    /// Releases an allocation that holds no pages (a failed or redundant migration).
    pub fn drop_empty_alloc(&mut self, id: u32) {
        if self.allocs[id as usize].as_ref().is_some_and(|a| a.live == 0) {
            self.free_alloc(id);
        }
    }

    fn free_alloc(&mut self, id: u32) {
        let a = self.allocs[id as usize].take().expect("live allocation");
        debug_assert_eq!(a.live, 0, "freeing an allocation that still holds pages");
        let p = a.pagemap as usize;
        self.used[p] -= a.bytes();
        self.lru[p].remove(&a.lru);
        self.free_ids.push(id);
    }

    /// Finalizes a migration into `id`: stamps its timeslice expiry.
    pub fn finish_alloc(&mut self, id: u32, expiry: u64) {
        let a = self.allocs[id as usize].as_mut().unwrap();
        a.timeslice_expiry = expiry;
        a.in_flight = false;
    }

    /// Marks an allocation most recently used (TTM bumps a BO when it is bound).
    pub fn touch(&mut self, id: u32) {
        let a = self.allocs[id as usize].as_mut().unwrap();
        let p = a.pagemap as usize;
        self.lru[p].remove(&a.lru);
        self.lru_clock += 1;
        a.lru = self.lru_clock;
        self.lru[p].insert(self.lru_clock, id);
    }

    /// The least recently used allocation of a pagemap, skipping those whose
    /// pages a migration holds locked.
    pub fn lru_victim(&self, p: u16, exclude_start: u64, exclude_end: u64) -> Option<u32> {
        self.lru[p as usize].values().copied().find(|&id| {
            let a = self.alloc(id);
            let overlaps = a.start < exclude_end && exclude_start < a.end();
            !a.in_flight && !overlaps && !(a.start..a.end()).step_by(PAGE as usize).any(|x| self.is_locked(x))
        })
    }

    /// Live page addresses of an allocation (pages still placed in it).
    pub fn alloc_pages(&self, id: u32) -> Vec<u64> {
        let a = self.alloc(id);
        (a.start..a.end())
            .step_by(PAGE as usize)
            .filter(|&x| self.loc(x) == Loc::Vram(a.pagemap) && self.alloc_at(a.pagemap, x) == Some(id))
            .collect()
    }

    pub fn allocations(&self) -> impl Iterator<Item = (u32, &DevAlloc)> {
        self.allocs.iter().enumerate().filter_map(|(i, a)| a.as_ref().map(|a| (i as u32, a)))
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

    /// All populated pages in [start, end) (skipping untouched blocks quickly).
    pub fn populated_pages(&self, start: u64, end: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for (&bi, b) in self.blocks.range(start / BLOCK..=(end.saturating_sub(1)) / BLOCK) {
            let base = bi * BLOCK;
            for (i, &l) in b.loc.iter().enumerate() {
                let a = base + i as u64 * PAGE;
                if a >= start && a < end && l & !LOCKED != LOC_UNPOPULATED {
                    out.push(a);
                }
            }
        }
        out
    }

    /// Order-independent checksum over (address, token) of every page in a span.
    pub fn checksum(&self, start: u64, end: u64) -> u64 {
        let mut sum = 0u64;
        for a in self.populated_pages(start, end) {
            let t = self.token(a);
            if t != 0 {
                sum = sum.wrapping_add(mix((a / PAGE) ^ ((t as u64) << 32)));
            }
        }
        sum
    }

    /// Pages per place over the whole memory, for invariant checks: (system, per pagemap).
    pub fn totals(&self) -> (u64, Vec<u64>) {
        let mut sys = 0;
        let mut dev = vec![0u64; self.capacity.len()];
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

/// The token a device page reads as when its storage was freed under it.
pub const POISON: u32 = 0xDEAD_BEEF;

/// A 64-bit mixer (splitmix64's finalizer).
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The token a write of `value` leaves in the page at `addr` (never 0, never POISON).
pub fn write_token(value: u64, addr: u64) -> u32 {
    let t = mix(value ^ mix(addr / PAGE)) as u32;
    match t {
        0 | POISON => 1,
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_travel_with_pages_and_capacity_is_accounted() {
        let mut m = Memory::new(vec![BLOCK]);
        let base = 10 * BLOCK;
        for i in 0..4 {
            m.write_token(base + i * PAGE, write_token(7, base + i * PAGE));
        }
        let before = m.checksum(base, base + BLOCK);
        let id = m.create_alloc(0, base, 64 * 1024).unwrap();
        assert_eq!(m.free_bytes(0), BLOCK - 64 * 1024);
        for i in 0..4 {
            m.page_to_alloc(base + i * PAGE, id);
        }
        assert_eq!(m.loc(base), Loc::Vram(0));
        assert_eq!(m.checksum(base, base + BLOCK), before);
        assert!(m.create_alloc(0, base + BLOCK, BLOCK).is_none(), "over capacity");
        for i in 0..4 {
            assert_eq!(m.page_to_system(base + i * PAGE), Some(0));
        }
        // The allocation freed itself when its last page left.
        assert_eq!(m.free_bytes(0), BLOCK);
        assert_eq!(m.checksum(base, base + BLOCK), before);
        assert_eq!(m.census(base, base + BLOCK, None).system, 4);
    }

    #[test]
    fn cpu_layout_splits_and_merges() {
        let mut m = Memory::new(vec![]);
        assert_eq!(m.cpu_vma(BLOCK), (0, VA_END, CpuKind::Anonymous));
        m.set_cpu_kind(BLOCK, 3 * BLOCK, CpuKind::Unmapped);
        assert_eq!(m.cpu_vma(2 * BLOCK), (BLOCK, 3 * BLOCK, CpuKind::Unmapped));
        assert_eq!(m.cpu_vma(0), (0, BLOCK, CpuKind::Anonymous));
        assert_eq!(m.cpu_vma(5 * BLOCK), (3 * BLOCK, VA_END, CpuKind::Anonymous));
        m.set_cpu_kind(3 * BLOCK, 4 * BLOCK, CpuKind::Unmapped);
        assert_eq!(m.cpu_vma(2 * BLOCK), (BLOCK, 4 * BLOCK, CpuKind::Unmapped));
        m.set_cpu_kind(2 * BLOCK, 3 * BLOCK, CpuKind::File);
        assert_eq!(m.cpu_vma(2 * BLOCK + PAGE), (2 * BLOCK, 3 * BLOCK, CpuKind::File));
        assert_eq!(m.cpu_vma(3 * BLOCK), (3 * BLOCK, 4 * BLOCK, CpuKind::Unmapped));
        m.set_cpu_kind(0, 8 * BLOCK, CpuKind::Anonymous);
        assert_eq!(m.cpu_vma(2 * BLOCK), (0, VA_END, CpuKind::Anonymous));
    }

    #[test]
    fn discarding_releases_device_storage() {
        let mut m = Memory::new(vec![BLOCK]);
        let id = m.create_alloc(0, 0, 2 * PAGE).unwrap();
        m.page_to_alloc(0, id);
        m.page_to_alloc(PAGE, id);
        m.discard(0);
        assert_eq!(m.used[0], 2 * PAGE);
        m.discard(PAGE);
        assert_eq!(m.used[0], 0);
        assert_eq!(m.loc(PAGE), Loc::Unpopulated);
    }
}
