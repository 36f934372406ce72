//! The shared zero page over never-populated memory (madvise
//! MADV_POPULATE_READ): a side table of spans, which matters only while a
//! page is unpopulated. Such a page is present to the page table and to the
//! kernel's `check_pages` probe, and a hole to a migration.

use super::*;

impl Memory {
    /// Maps the shared zero page over the never-populated pages of
    /// [start, end) (MADV_POPULATE_READ): returns how many it mapped.
    pub fn map_zero_page(&mut self, start: u64, end: u64) -> u64 {
        let pages = self.unbacked(start, end);
        if pages > 0 {
            self.unmap_zero_page(start, end);
            // Merge with touching neighbours, so the spans stay few.
            let mut s = start;
            let mut e = end;
            if let Some((&ps, &pe)) = self.zero_mapped.range(..start).next_back() {
                if pe == start {
                    s = ps;
                    self.zero_mapped.remove(&ps);
                }
            }
            if let Some(ne) = self.zero_mapped.remove(&end) {
                e = ne;
            }
            self.zero_mapped.insert(s, e);
        }
        pages
    }

    /// Whether the zero page maps `addr` (meaningful for an unpopulated page).
    pub fn zero_page_at(&self, addr: u64) -> bool {
        self.zero_mapped.range(..=addr).next_back().is_some_and(|(_, &e)| addr < e)
    }

    /// The pages of [start, end) neither populated nor mapped to the zero
    /// page: what the kernel's `check_pages` probe finds absent.
    pub fn unbacked(&self, start: u64, end: u64) -> u64 {
        let mut n = 0;
        self.each_run(start, end, |s, e, loc, _| {
            if loc == Loc::Unpopulated {
                n += (e - s) / PAGE - self.zero_pages_in(s, e);
            }
        });
        n
    }

    /// Splits [start, end) into pieces inside and outside zero-page spans:
    /// `f(start, end, zero)` for each, in order.
    pub fn zero_page_split(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64, bool)) {
        let first = self.zero_mapped.range(..start).next_back().map_or(start, |(&s, _)| s);
        let mut at = start;
        for (&s, &e) in self.zero_mapped.range(first..end) {
            let (s, e) = (s.max(start), e.min(end));
            if e <= at {
                continue;
            }
            if s > at {
                f(at, s, false);
            }
            f(s.max(at), e, true);
            at = e;
        }
        if at < end {
            f(at, end, false);
        }
    }

    /// Pages of [start, end) inside zero-page spans.
    fn zero_pages_in(&self, start: u64, end: u64) -> u64 {
        let first = self.zero_mapped.range(..start).next_back().map_or(start, |(&s, _)| s);
        self.zero_mapped.range(first..end).map(|(&s, &e)| e.min(end).saturating_sub(s.max(start)) / PAGE).sum()
    }

    /// Forgets the zero page over [start, end) (munmap, mmap).
    pub(super) fn unmap_zero_page(&mut self, start: u64, end: u64) {
        let first = self.zero_mapped.range(..start).next_back().map_or(start, |(&s, _)| s);
        let hit: Vec<(u64, u64)> = self.zero_mapped.range(first..end).map(|(&s, &e)| (s, e)).filter(|&(s, e)| s < end && e > start).collect();
        for (s, e) in hit {
            self.zero_mapped.remove(&s);
            if s < start {
                self.zero_mapped.insert(s, start);
            }
            if e > end {
                self.zero_mapped.insert(end, e);
            }
        }
    }
}
