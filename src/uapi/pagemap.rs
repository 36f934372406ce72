//! The process's own page table as Linux exposes it (docs/observation.md §3):
//! the PAGEMAP_SCAN ioctl on `/proc/self/pagemap` (Linux 6.7+,
//! `include/uapi/linux/fs.h`) and the 8-byte entries a plain `pread` of the
//! same file returns (`Documentation/admin-guide/mm/pagemap.rst`).
//!
//! Pure data, with compile-time layout checks like the Xe structs. Fields
//! and categories keep the kernel's names, described in
//! docs/observation.md §3; they carry no doc comment of their own.
#![allow(non_camel_case_types)]
#![allow(missing_docs)]

use core::mem::{align_of, offset_of, size_of};

/// The ioctl type byte of PAGEMAP_SCAN (`'f'`, shared with the fs ioctls).
pub const PAGEMAP_IOCTL_TYPE: u32 = b'f' as u32;

/// `_IOWR('f', 16, struct pm_scan_arg)` = 0xC0606610 (docs/observation.md §3).
pub const PAGEMAP_SCAN: u32 =
    ((super::IOC_READ | super::IOC_WRITE) << 30) | ((size_of::<pm_scan_arg>() as u32) << 16) | (PAGEMAP_IOCTL_TYPE << 8) | 16;
const _: () = assert!(PAGEMAP_SCAN == 0xC060_6610);

/// `struct pm_scan_arg`: 96 bytes, all u64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct pm_scan_arg {
    /// `sizeof(struct pm_scan_arg)`.
    pub size: u64,
    /// `PM_SCAN_WP_MATCHING` / `PM_SCAN_CHECK_WPASYNC`; 0 to only read.
    pub flags: u64,
    pub start: u64,
    pub end: u64,
    /// Out: where the walk stopped (== end when it finished).
    pub walk_end: u64,
    /// Pointer to `vec_len` × [`page_region`].
    pub vec: u64,
    pub vec_len: u64,
    /// Stop after this many pages matched (0: no limit).
    pub max_pages: u64,
    pub category_inverted: u64,
    pub category_mask: u64,
    pub category_anyof_mask: u64,
    pub return_mask: u64,
}
const _: () = assert!(size_of::<pm_scan_arg>() == 96 && align_of::<pm_scan_arg>() == 8);
const _: () = assert!(offset_of!(pm_scan_arg, walk_end) == 32 && offset_of!(pm_scan_arg, return_mask) == 88);

/// `struct page_region`: one run of pages with equal categories.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct page_region {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}
const _: () = assert!(size_of::<page_region>() == 24);

// Categories (docs/observation.md §3).
pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
pub const PAGE_IS_FILE: u64 = 1 << 2;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;
pub const PAGE_IS_HUGE: u64 = 1 << 6;
pub const PAGE_IS_SOFT_DIRTY: u64 = 1 << 7;

// Bits of a pagemap entry read with pread (8 bytes per 4 KiB page).
pub const PM_ENTRY_BYTES: u64 = 8;
pub const PM_PRESENT: u64 = 1 << 63;
pub const PM_SWAP: u64 = 1 << 62;
pub const PM_FILE: u64 = 1 << 61;
/// Bits 0-54: the PFN of a present page, or `swp_type | offset << 5` of a
/// swap entry; zero without CAP_SYS_ADMIN (docs/observation.md §2).
pub const PM_PFN_MASK: u64 = (1 << 55) - 1;
/// Bits of the swap type in a swap entry's low bits.
pub const PM_SWAP_TYPE_BITS: u32 = 5;
/// Swap types below this are swap areas (swap files and partitions):
/// `MAX_SWAPFILES` is 32 less the special types above it (device-private,
/// migration, hwpoison, PTE marker, swap-in error: at most 10 in any
/// release, `include/linux/swap.h`), so it is never below 22, and a real
/// swap area has a type under it. Types from 22 up are taken as special
/// (a device-private or migration entry), which is right unless 23 or
/// more swap areas are active at once (docs/observation.md §2).
pub const PM_SWAP_AREA_TYPES: u64 = 22;
