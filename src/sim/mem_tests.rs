//! Unit tests of the memory model (`mem.rs`).

use super::*;

#[test]
fn tokens_travel_with_pages_and_capacity_is_accounted() {
    let mut m = Memory::new(vec![BLOCK]);
    let base = 10 * BLOCK;
    m.write_span(base, base + 4 * PAGE, 7);
    let before = m.checksum(base, base + BLOCK);
    let id = m.create_alloc(0, base, 64 * 1024).unwrap();
    assert_eq!(m.free_bytes(0), BLOCK - 64 * 1024);
    let pages: Vec<u64> = (0..4).map(|i| base + i * PAGE).collect();
    let moved = m.move_into(&pages, id, false);
    m.finish_alloc(id, 0);
    assert_eq!((moved.pages, moved.from_system), (4, 4 * PAGE));
    assert_eq!(m.loc(base), Loc::Vram(0));
    assert_eq!(m.checksum(base, base + BLOCK), before);
    assert!(m.create_alloc(0, base + BLOCK, BLOCK).is_none(), "over capacity");
    assert_eq!(m.move_to_system(&pages), 4);
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
    m.move_into(&[0, PAGE], id, false);
    m.finish_alloc(id, 0);
    m.discard_span(0, PAGE);
    assert_eq!(m.used(0), 2 * PAGE);
    m.discard_span(PAGE, 2 * PAGE);
    assert_eq!(m.used(0), 0);
    assert_eq!(m.loc(PAGE), Loc::Unpopulated);
}

#[test]
fn a_new_allocation_at_the_same_start_does_not_hide_the_old_one() {
    let mut m = Memory::new(vec![4 * BLOCK]);
    let old = m.create_alloc(0, 0, 16 * PAGE).unwrap();
    m.move_into(&[0], old, false);
    m.finish_alloc(old, 0);
    let tmp = m.create_alloc(0, 0, BLOCK).unwrap();
    m.drop_empty_alloc(tmp);
    assert_eq!(m.alloc_at(0, 0), Some(old));
    assert_ne!(m.token(0), POISON);
}

/// Test-only: changes the token of one page where it is stored, as a bug
/// that loses a page's data would.
fn corrupt(m: &mut Memory, addr: u64) {
    let base = addr & !(BLOCK - 1);
    let b = m.blocks.get_mut(&(addr / BLOCK)).expect("a touched block");
    let p = b.split(base);
    let i = idx(addr);
    match Loc::decode(p.loc[i]) {
        Loc::System => p.sys[i] ^= 1,
        Loc::Vram(_) => {
            let a = m.t.get_mut(p.alloc[i]);
            let t = a.token(addr);
            a.set_token(addr, t ^ 1);
        }
        Loc::Unpopulated => panic!("no content to corrupt"),
    }
}

fn expected(start: u64, pages: u64, token: impl Fn(u64) -> u32) -> u64 {
    (0..pages).map(|i| start + i * PAGE).fold(0u64, |s, a| s.wrapping_add(page_checksum(a, token(a))))
}

/// A block written whole is an extent, and moves into a block-sized
/// allocation as one; a one-page write splits the allocation's content, and
/// one page corrupted inside the split extent changes the checksum.
#[test]
fn extents_move_whole_and_split_pages_stay_exact() {
    let mut m = Memory::new(vec![4 * BLOCK]);
    let base = 8 * BLOCK;
    m.write_span(base, base + BLOCK, 5);
    assert_eq!(m.block_counts(), (1, 0), "a whole write leaves an extent");
    let want = expected(base, 512, |a| write_token(5, a));
    assert_eq!(m.checksum(base, base + BLOCK), want);

    let id = m.create_alloc(0, base, BLOCK).unwrap();
    let pages: Vec<u64> = (0..512).map(|i| base + i * PAGE).collect();
    assert_eq!(m.move_into(&pages, id, false).pages, 512);
    m.finish_alloc(id, 0);
    assert_eq!(m.block_counts(), (1, 0), "moved as an extent");
    assert_eq!(m.checksum(base, base + BLOCK), want);

    // One page rewritten in VRAM: the allocation's tokens split.
    m.write_span(base + 7 * PAGE, base + 8 * PAGE, 9);
    let want = expected(base, 512, |a| if a == base + 7 * PAGE { write_token(9, a) } else { write_token(5, a) });
    assert_eq!(m.checksum(base, base + BLOCK), want);
    assert_eq!(m.token(base + 7 * PAGE), write_token(9, base + 7 * PAGE));
    assert_eq!(m.token(base + 8 * PAGE), write_token(5, base + 8 * PAGE));

    // Back to system page by page (the allocation is no longer an extent).
    assert_eq!(m.move_to_system(&pages), 512);
    assert_eq!(m.used(0), 0);
    assert_eq!(m.checksum(base, base + BLOCK), want);

    // A corrupted page in the split content is caught, in system memory
    // and in VRAM alike.
    corrupt(&mut m, base + 300 * PAGE);
    assert_ne!(m.checksum(base, base + BLOCK), want);
    let mut m2 = Memory::new(vec![4 * BLOCK]);
    m2.write_span(base, base + BLOCK, 5);
    let id = m2.create_alloc(0, base, BLOCK).unwrap();
    m2.move_into(&pages, id, false);
    m2.finish_alloc(id, 0);
    corrupt(&mut m2, base + 511 * PAGE);
    assert_ne!(m2.checksum(base, base + BLOCK), expected(base, 512, |a| write_token(5, a)));
}

mod model {
    //! The memory model against a page-by-page reference: random writes,
    //! migrations (whole blocks and 64 KiB pieces, from system memory or
    //! another allocation), evictions and discards leave every page's token
    //! and place where the reference says, extents or not.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const BLOCKS: u64 = 3;
    const BASE: u64 = 16 * BLOCK;

    #[derive(Clone, Debug)]
    enum Op {
        Write { page: u64, pages: u64, value: u64 },
        /// Into pagemap `p`: a whole block, or a 64 KiB piece.
        Migrate { p: u16, block: u64, piece: Option<u64> },
        ToSystem { block: u64, piece: Option<u64> },
        Discard { page: u64, pages: u64 },
        Populate { page: u64, pages: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        let span = (0..BLOCKS * 512, 1..600u64);
        let piece = prop_oneof![Just(None), (0..32u64).prop_map(Some)];
        prop_oneof![
            (span.clone(), any::<u64>()).prop_map(|((page, pages), value)| Op::Write { page, pages, value }),
            (span.clone(), Just(512u64)).prop_map(|((page, _), _)| Op::Write { page: page / 512 * 512, pages: 512, value: page }),
            (0..2u16, 0..BLOCKS, piece.clone()).prop_map(|(p, block, piece)| Op::Migrate { p, block, piece }),
            (0..BLOCKS, piece).prop_map(|(block, piece)| Op::ToSystem { block, piece }),
            span.clone().prop_map(|(page, pages)| Op::Discard { page, pages }),
            span.prop_map(|(page, pages)| Op::Populate { page, pages }),
        ]
    }

    fn span_pages(block: u64, piece: Option<u64>) -> (u64, u64) {
        match piece {
            None => (BASE + block * BLOCK, 512),
            Some(k) => (BASE + block * BLOCK + k * 16 * PAGE, 16),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn extents_match_a_page_by_page_reference(ops in proptest::collection::vec(op(), 1..40)) {
            let mut m = Memory::new(vec![BLOCKS * BLOCK, BLOCKS * BLOCK]);
            // page address -> (place, token)
            let mut r: HashMap<u64, (Loc, u32)> = HashMap::new();
            let end = BASE + BLOCKS * BLOCK;
            for op in ops {
                match op {
                    Op::Write { page, pages, value } => {
                        let s = BASE + page * PAGE;
                        let e = (s + pages * PAGE).min(end);
                        m.write_span(s, e, value);
                        for a in (s..e).step_by(PAGE as usize) {
                            let loc = match r.get(&a) { Some((Loc::Vram(p), _)) => Loc::Vram(*p), _ => Loc::System };
                            r.insert(a, (loc, write_token(value, a)));
                        }
                    }
                    Op::Migrate { p, block, piece } => {
                        let (s, n) = span_pages(block, piece);
                        let Some(id) = m.create_alloc(p, s, n * PAGE) else { continue };
                        let pages: Vec<u64> = (0..n).map(|i| s + i * PAGE).collect();
                        m.move_into(&pages, id, false);
                        m.finish_alloc(id, 0);
                        for a in pages {
                            let t = r.get(&a).map_or(0, |x| x.1);
                            r.insert(a, (Loc::Vram(p), t));
                        }
                    }
                    Op::ToSystem { block, piece } => {
                        let (s, n) = span_pages(block, piece);
                        let pages: Vec<u64> = (0..n).map(|i| s + i * PAGE).collect();
                        m.move_to_system(&pages);
                        for a in pages {
                            if let Some((l @ Loc::Vram(_), _)) = r.get_mut(&a) {
                                *l = Loc::System;
                            }
                        }
                    }
                    Op::Discard { page, pages } => {
                        let s = BASE + page * PAGE;
                        let e = (s + pages * PAGE).min(end);
                        m.discard_span(s, e);
                        for a in (s..e).step_by(PAGE as usize) {
                            r.remove(&a);
                        }
                    }
                    Op::Populate { page, pages } => {
                        let s = BASE + page * PAGE;
                        let e = (s + pages * PAGE).min(end);
                        m.populate_span(s, e);
                        for a in (s..e).step_by(PAGE as usize) {
                            r.entry(a).or_insert((Loc::System, 0));
                        }
                    }
                }
                for a in (BASE..end).step_by(PAGE as usize) {
                    let (loc, tok) = r.get(&a).copied().unwrap_or((Loc::Unpopulated, 0));
                    prop_assert_eq!(m.loc(a), loc, "place of {:#x}", a);
                    prop_assert_eq!(m.token(a), tok, "token of {:#x}", a);
                }
                let want = (BASE..end).step_by(PAGE as usize).fold(0u64, |s, a| s.wrapping_add(page_checksum(a, r.get(&a).map_or(0, |x| x.1))));
                prop_assert_eq!(m.checksum(BASE, end), want);
                let (sys, dev) = m.totals();
                prop_assert_eq!(sys, r.values().filter(|x| x.0 == Loc::System).count() as u64);
                for p in 0..2u16 {
                    prop_assert_eq!(dev[p as usize], r.values().filter(|x| x.0 == Loc::Vram(p)).count() as u64);
                    let live: u64 = m.allocations().filter(|(_, a)| a.pagemap == p).map(|(_, a)| a.live as u64).sum();
                    prop_assert_eq!(live, dev[p as usize], "live pages of pagemap {}", p);
                }
            }
        }
    }
}
