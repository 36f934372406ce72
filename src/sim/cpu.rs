//! The simulated process's CPU side: its mappings (mmap, munmap) and its
//! accesses, which fault device pages back and populate never-populated
//! ones as Linux's fault path does.

use super::*;

impl Sim {
    /// Maps [start, start+size) anew (MAP_FIXED): anonymous, or file-backed
    /// (`file`), which can never be placed in VRAM. Old contents are gone.
    pub fn mmap(&self, start: u64, size: u64, file: bool) -> Result<()> {
        let end = map_span(start, size)?;
        let mut g = self.state.lock();
        self.unmap_span(&mut g, start, end);
        g.mem.set_cpu_kind(start, end, if file { mem::CpuKind::File } else { mem::CpuKind::Anonymous });
        Ok(())
    }

    /// munmap: the pages' contents are gone, ranges over them are destroyed
    /// (MMU notifier UNMAP + garbage collector, docs/kernel-model.md §8), and mirror
    /// VMAs bound with MADVISE_AUTORESET get default attributes back.
    pub fn munmap(&self, start: u64, size: u64) -> Result<()> {
        let end = map_span(start, size)?;
        let mut g = self.state.lock();
        self.unmap_span(&mut g, start, end);
        g.mem.set_cpu_kind(start, end, mem::CpuKind::Unmapped);
        Ok(())
    }

    /// A CPU access: device pages are faulted back to system memory first
    /// (after any atomic timeslice, docs/kernel-model.md §5.3), then read or written there.
    pub fn cpu_access(&self, start: u64, size: u64, access: Access, value: u64) -> Result<()> {
        let end = check_span(start, size)?;
        let (start, end) = (start & !(PAGE - 1), end.next_multiple_of(PAGE));
        self.cpu_fault_span(start, end, if access == Access::Read { CpuFault::Read } else { CpuFault::Write(value) })
    }

    /// The CPU's fault path over page-aligned [start, end): device pages
    /// back to system memory, then never-populated pages as `how` says.
    pub(super) fn cpu_fault_span(&self, start: u64, end: u64, how: CpuFault) -> Result<()> {
        let mut g = self.state.lock();
        self.signal_fences(&mut g);
        self.wait_arrived(start, end);
        let mut a = start;
        while a < end {
            let (_, vend, kind) = g.mem.cpu_vma(a);
            if kind == mem::CpuKind::Unmapped {
                return Err(Errno::EFAULT);
            }
            let stop = end.min(vend);
            // Fault device pages back (waiting for pages a migration holds).
            while let Some((x, _)) = g.mem.find_page(a, stop, |l, locked| locked || matches!(l, Loc::Vram(_))) {
                self.wait_unlocked(&mut g, x)?;
                if let Loc::Vram(p) = g.mem.loc(x) {
                    self.cpu_fault(&mut g, p, x);
                }
            }
            // Never-populated pages are zero-filled by the CPU fault, or
            // mapped to the zero page.
            match how {
                CpuFault::Write(value) => {
                    let born = g.mem.write_span(a, stop, value);
                    self.charge_zero_fill(born);
                }
                CpuFault::Read => {
                    // A read of the zero page faults nothing: it stays mapped.
                    let mut pieces = Vec::new();
                    g.mem.zero_page_split(a, stop, |s, e, zero| if !zero { pieces.push((s, e)) });
                    let born = pieces.into_iter().map(|(s, e)| g.mem.populate_span(s, e)).sum();
                    self.charge_zero_fill(born);
                }
                CpuFault::ZeroPage => {
                    let mapped = g.mem.map_zero_page(a, stop);
                    self.advance(mapped * self.topo.costs.zero_page_map_ns, TimeCategory::Calls);
                }
            }
            a = stop;
        }
        Ok(())
    }

    /// Waits (yielding the state lock) while a migration holds the page.
    pub(super) fn wait_unlocked(&self, g: &mut Guard, addr: u64) -> Result<()> {
        for _ in 0..100_000 {
            if !g.mem.is_locked(addr) {
                return Ok(());
            }
            MutexGuard::unlocked(g, std::thread::yield_now);
        }
        Err(Errno::EBUSY)
    }
}

/// What a CPU fault does with a never-populated page.
#[derive(Clone, Copy)]
pub(super) enum CpuFault {
    /// A read: a zero-filled page (the simulator models the CPU's own first
    /// read as a fill, not the zero page); a page the zero page maps
    /// already stays so.
    Read,
    /// A write of this value.
    Write(u64),
    /// MADV_POPULATE_READ: the shared zero page, nothing allocated.
    ZeroPage,
}

/// A span for mmap(MAP_FIXED) / munmap: as Linux, the start must be page
/// aligned (EINVAL) and the length is rounded up to whole pages.
fn map_span(start: u64, size: u64) -> Result<u64> {
    if start % PAGE != 0 {
        return Err(Errno::EINVAL);
    }
    let end = check_span(start, size)?;
    match end.checked_next_multiple_of(PAGE) {
        Some(e) if e <= mem::VA_END => Ok(e),
        _ => Err(Errno::EINVAL),
    }
}
