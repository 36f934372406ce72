//! VRAM allocations (the kernel's per-range BOs): their pages' content,
//! per-pagemap accounting and LRU, and the [`Memory`] calls that create,
//! find and drop them.

use std::collections::BTreeMap;

use super::*;

/// Device-side content of an allocation: an extent's content, or one token per page.
#[derive(Debug)]
pub(super) enum Tokens {
    Extent(Content),
    Split(Vec<u32>),
}

/// A VRAM allocation backing (part of) one SVM range in one pagemap.
#[derive(Debug)]
pub struct DevAlloc {
    /// The pagemap it lives in.
    pub pagemap: u16,
    /// First address it backs.
    pub start: u64,
    /// Pages of the allocation.
    pub pages: u32,
    /// Content of each page of the allocation.
    pub(super) tokens: Tokens,
    /// Pages of the allocation that still hold the process's data.
    pub live: u32,
    /// Simulated time before which a CPU fault may not migrate it back (docs/kernel-model.md §5.3).
    pub timeslice_expiry: u64,
    /// A migration into it has not finalized yet (it may still be empty).
    pub in_flight: bool,
    pub(super) lru: u64,
}

impl DevAlloc {
    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.pages as u64 * PAGE
    }
    /// One past the last address it backs.
    pub fn end(&self) -> u64 {
        self.start + self.bytes()
    }

    pub(super) fn token(&self, addr: u64) -> u32 {
        match &self.tokens {
            Tokens::Extent(c) => c.token(addr),
            Tokens::Split(v) => v[((addr - self.start) / PAGE) as usize],
        }
    }

    pub(super) fn set_token(&mut self, addr: u64, token: u32) {
        if let Tokens::Extent(c) = self.tokens {
            self.tokens = Tokens::Split((0..self.pages as u64).map(|i| c.token(self.start + i * PAGE)).collect());
        }
        if let Tokens::Split(v) = &mut self.tokens {
            v[((addr - self.start) / PAGE) as usize] = token;
        }
    }

    /// Whether it is exactly the block at `base` (then an extent can move in whole).
    pub(super) fn is_block(&self, base: u64) -> bool {
        self.start == base && self.pages as usize == PAGES_PER_BLOCK
    }

    /// The content of the whole block at `base`, when the allocation holds it as an extent.
    pub(super) fn extent_of(&self, base: u64) -> Option<Content> {
        match self.tokens {
            Tokens::Extent(c) if self.is_block(base) => Some(c),
            _ => None,
        }
    }
}

/// VRAM allocations and their accounting, apart from the page blocks so
/// that batch operations can borrow both at once.
pub(super) struct AllocTable {
    pub(super) allocs: Vec<Option<DevAlloc>>,
    pub(super) free_ids: Vec<u32>,
    /// Per pagemap: LRU stamp (creation order, as TTM places a BO once) → allocation id.
    pub(super) lru: Vec<BTreeMap<u64, u32>>,
    pub(super) used: Vec<u64>,
    pub(super) capacity: Vec<u64>,
    pub(super) lru_clock: u64,
}

impl AllocTable {
    pub(super) fn get(&self, id: u32) -> &DevAlloc {
        self.allocs[id as usize].as_ref().expect("live allocation")
    }

    pub(super) fn get_mut(&mut self, id: u32) -> &mut DevAlloc {
        self.allocs[id as usize].as_mut().expect("live allocation")
    }

    pub(super) fn token(&self, id: u32, addr: u64) -> u32 {
        match self.allocs.get(id as usize).and_then(|a| a.as_ref()) {
            Some(a) if addr >= a.start && addr < a.end() => a.token(addr),
            // A device page with no allocation behind it: its data is gone.
            _ => POISON,
        }
    }

    /// `n` pages of `id` no longer hold data; frees the allocation with its last page.
    pub(super) fn release(&mut self, id: u32, n: u32) {
        let a = self.get_mut(id);
        a.live -= n;
        if a.live == 0 && !a.in_flight {
            self.free(id);
        }
    }

    pub(super) fn free(&mut self, id: u32) {
        let a = self.allocs[id as usize].take().expect("live allocation");
        debug_assert_eq!(a.live, 0, "freeing an allocation that still holds pages");
        let p = a.pagemap as usize;
        self.used[p] -= a.bytes();
        self.lru[p].remove(&a.lru);
        self.free_ids.push(id);
    }
}

impl Memory {

    /// A live allocation.
    pub fn alloc(&self, id: u32) -> &DevAlloc {
        self.t.get(id)
    }

    /// The allocation of pagemap `p` that holds the page at `addr`.
    pub fn alloc_at(&self, p: u16, addr: u64) -> Option<u32> {
        let b = self.block(addr)?;
        let i = idx(addr);
        if Loc::decode(b.loc(i)) != Loc::Vram(p) {
            return None;
        }
        let id = b.alloc(i);
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
            pages: (bytes / PAGE) as u32,
            tokens: Tokens::Extent(Content::Zero),
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
    pub fn alloc_pages(&self, id: u32) -> Vec<u64> {
        let a = self.t.get(id);
        let mut out = Vec::with_capacity(a.live as usize);
        let here = Loc::Vram(a.pagemap).encode();
        for (bi, i0, i1) in block_spans(a.start, a.end()) {
            let base = bi * BLOCK;
            match self.blocks.get(&bi) {
                Some(Block::Extent { loc, alloc, .. }) if *alloc == id && loc & !LOCKED == here => {
                    out.extend((i0..i1).map(|i| base + i as u64 * PAGE));
                }
                None | Some(Block::Extent { .. }) => {}
                Some(Block::Split(p)) => {
                    out.extend((i0..i1).filter(|&i| p.alloc[i] == id && p.loc[i] & !LOCKED == here).map(|i| base + i as u64 * PAGE));
                }
            }
        }
        out
    }

    /// Every live allocation, with its id.
    pub fn allocations(&self) -> impl Iterator<Item = (u32, &DevAlloc)> {
        self.t.allocs.iter().enumerate().filter_map(|(i, a)| a.as_ref().map(|a| (i as u32, a)))
    }
}
