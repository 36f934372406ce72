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
