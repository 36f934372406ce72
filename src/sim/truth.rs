//! The simulator's ground truth: where pages really are, their content and
//! the invariants of its world. For tests and measurement only: no `Driver`
//! method answers from here (tests/honest.rs).

use super::*;

impl Sim {
    // -- ground truth -------------------------------------------------------

    /// Where [start, start+size) lives, merged into one answer.
    pub fn placement(&self, start: u64, size: u64) -> Placement {
        let Ok(end) = check_span(start, size) else { return Placement::Mixed };
        let (start, end) = (start & !(PAGE - 1), end.next_multiple_of(PAGE));
        let g = self.state.lock();
        let c = g.mem.census(start, end, None);
        let pages = (end - start) / PAGE;
        if c.unpopulated == pages {
            Placement::Unpopulated
        } else if c.system == pages {
            Placement::System
        } else if c.other_device == pages && c.other_pagemaps[1].is_none() {
            let p = self.pagemaps[c.other_pagemaps[0].unwrap() as usize];
            Placement::Vram { device: p.device, instance: p.instance }
        } else {
            Placement::Mixed
        }
    }

    /// Bytes of [start, start+size) in one place: `instance` 0 is system
    /// memory (device ignored), N the VRAM region of that device's tile N-1.
    pub fn bytes_in(&self, start: u64, size: u64, device: u32, instance: u16) -> Result<u64> {
        let end = check_span(start, size)?;
        let (start, end) = (start & !(PAGE - 1), end.next_multiple_of(PAGE));
        let target = if instance == 0 {
            None
        } else {
            Some(self.pagemap_of(device, instance - 1).ok_or(Errno::EINVAL)?)
        };
        let g = self.state.lock();
        let c = g.mem.census(start, end, target);
        Ok(PAGE * if target.is_none() { c.system } else { c.in_target })
    }

    /// Order-independent checksum of the contents of every page in the span,
    /// read where each page lives, without moving anything.
    pub fn checksum(&self, start: u64, size: u64) -> Result<u64> {
        let end = check_span(start, size)?;
        Ok(self.state.lock().mem.checksum(start & !(PAGE - 1), end.next_multiple_of(PAGE)))
    }

    /// The content token of one page (0: never written).
    pub fn page_token(&self, addr: u64) -> u32 {
        self.state.lock().mem.token(addr & !(PAGE - 1))
    }

    /// Checks the model's invariants: each page in exactly one place with
    /// storage behind it, no pagemap over capacity, allocation accounting exact.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        let g = self.state.lock();
        let (_, per_pm) = g.mem.totals();
        let mut live = vec![0u64; self.pagemaps.len()];
        let mut bytes = vec![0u64; self.pagemaps.len()];
        for (id, a) in g.mem.allocations() {
            live[a.pagemap as usize] += a.live as u64;
            bytes[a.pagemap as usize] += a.bytes();
            let pages = g.mem.alloc_pages(id).len() as u64;
            if pages != a.live as u64 {
                return Err(format!("allocation {id} counts {} live pages but holds {pages}", a.live));
            }
            if a.live == 0 && !a.in_flight {
                return Err(format!("allocation {id} holds no pages and was not freed"));
            }
        }
        for p in 0..self.pagemaps.len() {
            let (used, cap) = (g.mem.used(p as u16), g.mem.capacity(p as u16));
            if used > cap {
                return Err(format!("pagemap {p} over capacity: {used} > {cap}"));
            }
            if used != bytes[p] {
                return Err(format!("pagemap {p} used {used} but allocations sum to {}", bytes[p]));
            }
            if per_pm[p] != live[p] {
                return Err(format!("pagemap {p}: {} pages placed there but allocations hold {}", per_pm[p], live[p]));
            }
        }
        Ok(())
    }

    /// Heap bytes the memory model holds (for the simulator benchmark).
    pub fn footprint(&self) -> u64 {
        self.state.lock().mem.footprint()
    }
}
