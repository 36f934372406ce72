//! The page encoding: where each 4 KiB page is and what its system-side
//! storage holds, per 2 MiB block, kept as one extent while the block is
//! uniform and split into per-page arrays once something touches part of it.

use super::*;

/// Where a page is, one byte per page: 0 unpopulated, 1 system, 2 + pagemap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loc {
    /// Never populated.
    Unpopulated,
    /// System memory.
    System,
    /// VRAM of this pagemap.
    Vram(u16),
}

pub(super) const LOC_UNPOPULATED: u8 = 0;
pub(super) const LOC_SYSTEM: u8 = 1;
/// Set while a migration has collected the page and not yet finalized it.
pub(super) const LOCKED: u8 = 0x80;

impl Loc {
    pub(super) fn encode(self) -> u8 {
        match self {
            Loc::Unpopulated => LOC_UNPOPULATED,
            Loc::System => LOC_SYSTEM,
            Loc::Vram(p) => 2 + p as u8,
        }
    }
    pub(super) fn decode(b: u8) -> Loc {
        match b & !LOCKED {
            LOC_UNPOPULATED => Loc::Unpopulated,
            LOC_SYSTEM => Loc::System,
            p => Loc::Vram((p - 2) as u16),
        }
    }
}

/// What a span of pages holds when one write (or none) filled it: each
/// page's token follows from its address, so the span needs no per-page
/// storage until something writes or moves part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Content {
    /// Never written: token 0 everywhere.
    Zero,
    /// Written whole by a write of this value: `write_token(value, addr)`.
    Written(u64),
}

impl Content {
    pub(super) fn token(self, addr: u64) -> u32 {
        match self {
            Content::Zero => 0,
            Content::Written(v) => write_token(v, addr),
        }
    }
}

/// Per-page state of a block that something split.
pub(super) struct Pages {
    pub(super) loc: [u8; PAGES_PER_BLOCK],
    pub(super) sys: [u32; PAGES_PER_BLOCK],
    pub(super) alloc: [u32; PAGES_PER_BLOCK],
}

/// 2 MiB of address space: page placement, system-side content, and for
/// device pages the allocation that holds them. A block is an extent while
/// all of its pages share one location byte (lock bit included), one
/// allocation and one system-side content, which is what whole-range
/// migrations, writes and faults leave: then it takes no per-page storage
/// and moves in O(1). Touching part of it splits it into per-page arrays.
pub(super) enum Block {
    Extent { loc: u8, alloc: u32, sys: Content },
    Split(Box<Pages>),
}

pub(super) const UNPOPULATED_BLOCK: Block = Block::Extent { loc: LOC_UNPOPULATED, alloc: 0, sys: Content::Zero };

impl Block {
    pub(super) fn loc(&self, i: usize) -> u8 {
        match self {
            Block::Extent { loc, .. } => *loc,
            Block::Split(p) => p.loc[i],
        }
    }

    pub(super) fn alloc(&self, i: usize) -> u32 {
        match self {
            Block::Extent { alloc, .. } => *alloc,
            Block::Split(p) => p.alloc[i],
        }
    }

    /// The system-side token of page `i` of the block at `base`.
    pub(super) fn sys(&self, base: u64, i: usize) -> u32 {
        match self {
            Block::Extent { sys, .. } => sys.token(base + i as u64 * PAGE),
            Block::Split(p) => p.sys[i],
        }
    }

    /// Per-page arrays, splitting an extent first.
    pub(super) fn split(&mut self, base: u64) -> &mut Pages {
        if let Block::Extent { loc, alloc, sys } = *self {
            let mut p = Box::new(Pages { loc: [loc; PAGES_PER_BLOCK], sys: [0; PAGES_PER_BLOCK], alloc: [alloc; PAGES_PER_BLOCK] });
            if sys != Content::Zero {
                for (i, t) in p.sys.iter_mut().enumerate() {
                    *t = sys.token(base + i as u64 * PAGE);
                }
            }
            *self = Block::Split(p);
        }
        match self {
            Block::Split(p) => p,
            Block::Extent { .. } => unreachable!(),
        }
    }
}

