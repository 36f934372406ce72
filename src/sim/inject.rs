//! Fault injection: make a chosen point of the simulated driver fail with a
//! chosen errno, a given number of times or with a seeded probability, so
//! that every error path above can be driven deterministically.

use crate::errno::Errno;

/// Where a failure is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// `drm_pagemap_populate_mm` (a migration to VRAM, fault or prefetch).
    Migrate,
    /// Creating the VRAM allocation for a migration.
    VramAlloc,
    /// Entry of an ioctl (optionally only one request).
    Ioctl,
    /// The device goes away at its next ioctl: that ioctl and every later one
    /// on it fail with the errno (ENODEV unplugged, ECANCELED wedged).
    DeviceRemoval,
}

#[derive(Clone, Debug)]
/// One armed failure: where, which errno, how often.
pub struct Injection {
    /// Where it fires.
    pub point: Point,
    /// Only this device (None: any).
    pub device: Option<u32>,
    /// Only this ioctl request (Ioctl point; 0: any).
    pub request: u32,
    /// The errno it fails with.
    pub errno: Errno,
    /// Hits to let through before failing.
    pub skip: u64,
    /// Failures left to inject in count mode (`probability == 0`).
    pub count: u64,
    /// In (0, 1]: fail each hit with this probability, forever.
    pub probability: f64,
    /// Seed of the probability draw.
    pub seed: u64,
}

impl Injection {
    /// Fails the next `count` hits of `point` with `errno`.
    pub fn count(point: Point, errno: Errno, count: u64) -> Self {
        Injection { point, device: None, request: 0, errno, skip: 0, count, probability: 0.0, seed: 0 }
    }

    /// Whether this hit fails.
    fn fire(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        if self.probability > 0.0 {
            // xorshift64*: deterministic per seed.
            let mut x = self.seed | 1;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.seed = x;
            let r = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
            return r < self.probability;
        }
        if self.count > 0 {
            self.count -= 1;
            return true;
        }
        false
    }

    fn spent(&self) -> bool {
        self.probability <= 0.0 && self.count == 0 && self.skip == 0
    }
}

/// The armed injections.
#[derive(Default)]
pub struct Injector {
    armed: Vec<Injection>,
    /// Failures fired so far.
    pub fired: u64,
}

impl Injector {
    /// Arms an injection.
    pub fn arm(&mut self, i: Injection) {
        self.armed.push(i);
    }

    /// Disarms every injection.
    pub fn clear(&mut self) {
        self.armed.clear();
    }

    /// Whether nothing is armed.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// The errno to fail with at this point, if an injection fires.
    pub fn check(&mut self, point: Point, device: u32, request: u32) -> Option<Errno> {
        let pos = self.armed.iter_mut().position(|i| {
            i.point == point
                && i.device.is_none_or(|d| d == device)
                && (i.request == 0 || i.request == request)
                && i.fire()
        })?;
        let errno = self.armed[pos].errno;
        if self.armed[pos].spent() {
            self.armed.remove(pos);
        }
        self.fired += 1;
        Some(errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_skip_filter_and_probability() {
        let mut j = Injector::default();
        let mut i = Injection::count(Point::Migrate, Errno::EBUSY, 2);
        i.skip = 1;
        i.device = Some(1);
        j.arm(i);
        assert_eq!(j.check(Point::Migrate, 0, 0), None, "other device");
        assert_eq!(j.check(Point::Migrate, 1, 0), None, "skipped");
        assert_eq!(j.check(Point::Migrate, 1, 0), Some(Errno::EBUSY));
        assert_eq!(j.check(Point::VramAlloc, 1, 0), None, "other point");
        assert_eq!(j.check(Point::Migrate, 1, 0), Some(Errno::EBUSY));
        assert_eq!(j.check(Point::Migrate, 1, 0), None, "spent");
        assert!(j.is_empty());

        let run = |seed| {
            let mut j = Injector::default();
            j.arm(Injection { probability: 0.3, seed, ..Injection::count(Point::Ioctl, Errno::EINTR, 0) });
            (0..1000).filter(|_| j.check(Point::Ioctl, 0, 7).is_some()).count()
        };
        assert_eq!(run(42), run(42), "seeded: repeatable");
        let n = run(42);
        assert!((200..400).contains(&n), "{n}");
    }
}
