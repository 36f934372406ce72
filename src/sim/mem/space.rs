//! The CPU address space: which spans are mapped, and how (anonymous,
//! file-backed, or not at all), as the exceptions to "anonymous".

use super::*;

/// Kind of CPU mapping at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKind {
    /// Not mapped.
    Unmapped,
    /// Anonymous memory (malloc, mmap MAP_ANONYMOUS).
    Anonymous,
    /// File-backed or shmem: never placed in VRAM (docs/kernel-model.md §2 step 4).
    File,
}

impl Memory {

    /// The CPU mapping around `addr`: (start, end, kind). Everything not
    /// munmapped or mapped from a file is anonymous memory.
    pub fn cpu_vma(&self, addr: u64) -> (u64, u64, CpuKind) {
        if addr >= VA_END {
            return (VA_END, u64::MAX, CpuKind::Unmapped);
        }
        if let Some((&s, &(e, k))) = self.cpu_exceptions.range(..=addr).next_back() {
            if addr < e {
                return (s, e, k);
            }
        }
        let start = self.cpu_exceptions.range(..=addr).next_back().map_or(0, |(_, &(e, _))| e);
        let end = self.cpu_exceptions.range(addr..).next().map_or(VA_END, |(&s, _)| s);
        (start, end, CpuKind::Anonymous)
    }

    /// Sets the CPU mapping kind of [start, end), merging neighbours of the same kind.
    pub fn set_cpu_kind(&mut self, start: u64, end: u64, kind: CpuKind) {
        // Cut existing exceptions at the edges, drop those inside.
        let overlapping: Vec<(u64, u64, CpuKind)> = self
            .cpu_exceptions
            .range(..end)
            .filter(|(_, &(e, _))| e > start)
            .map(|(&s, &(e, k))| (s, e, k))
            .collect();
        for (s, e, k) in overlapping {
            self.cpu_exceptions.remove(&s);
            if s < start {
                self.cpu_exceptions.insert(s, (start, k));
            }
            if e > end {
                self.cpu_exceptions.insert(end, (e, k));
            }
        }
        if kind != CpuKind::Anonymous {
            let (mut s, mut e) = (start, end);
            if let Some((&ps, &(pe, pk))) = self.cpu_exceptions.range(..s).next_back() {
                if pe == s && pk == kind {
                    self.cpu_exceptions.remove(&ps);
                    s = ps;
                }
            }
            if let Some(&(ne, nk)) = self.cpu_exceptions.get(&e) {
                if nk == kind {
                    self.cpu_exceptions.remove(&e);
                    e = ne;
                }
            }
            self.cpu_exceptions.insert(s, (e, kind));
        }
    }
}
