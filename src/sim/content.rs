//! Content tokens: what a write leaves in a page, and each page's term of
//! the order-independent checksum, so a client that knows what it wrote can
//! compute the checksum the simulator should report.

use super::mem::PAGE;

/// The token a device page reads as when its storage was freed under it.
pub const POISON: u32 = 0xDEAD_BEEF;

/// A 64-bit mixer (splitmix64's finalizer).
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One page's term of [`Memory::checksum`] (0 for a page never written), so
/// that a client that knows what it wrote can compute the expected sum.
pub fn page_checksum(addr: u64, token: u32) -> u64 {
    if token == 0 {
        0
    } else {
        mix((addr / PAGE) ^ ((token as u64) << 32))
    }
}

/// The token a write of `value` leaves in the page at `addr` (never 0, never POISON).
pub fn write_token(value: u64, addr: u64) -> u32 {
    let t = mix(value.rotate_left(17) ^ (addr / PAGE)) as u32;
    match t {
        0 | POISON => 1,
        t => t,
    }
}
