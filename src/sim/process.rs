//! What the simulated process can know, answered with Linux's limits: the
//! PCI address of a device (what fstat + sysfs give), what the platform
//! says of links, and its own page table (`/proc/self/pagemap`,
//! docs/observation.md), with the cost of each read on the clock.


use super::mem::{self, Loc, PAGE};
use super::{LinkKind, Sim, TimeCategory};
use crate::driver::residency::{push_run, DeviceId, PageTableAccess, PageTableSource, Residency, ResidencyRun, VramRegion};
use crate::driver::LinkHint;
use crate::errno::{Errno, Result};

impl Sim {

    /// The PCI address sysfs would show for a device (bus 3 onwards).
    pub fn device_id(&self, device: u32) -> DeviceId {
        DeviceId::pci(0, 3u8.wrapping_add(device as u8), 0, 0)
    }

    /// The device of a PCI address from [`Sim::device_id`].
    pub fn device_of_id(&self, id: DeviceId) -> Option<u32> {
        (0..self.topo.devices.len() as u32).find(|&d| self.device_id(d) == id)
    }

    /// What the platform tells of the link between two devices: the
    /// topology's link (as sysfs PCI topology or a topology file would), not
    /// the kernel's owner groups, which only ENOLINK reveals.
    pub fn link_hint(&self, a: u32, b: u32) -> LinkHint {
        match self.topo.link(a, b) {
            None => LinkHint::None,
            Some(l) => LinkHint::Interconnect { fabric: l.kind == LinkKind::Fabric, atomics: l.atomics, bandwidth: l.bandwidth },
        }
    }

    /// The simulated process's CPU mapping holding `addr`, as its
    /// `/proc/self/maps` lists it: the maximal span of one kind (anonymous
    /// or file-backed) around it, adjacent anonymous mappings merged as
    /// Linux merges them. EFAULT where nothing is mapped. Reading the file
    /// costs a syscall and the mm lock, charged as one page-table call
    /// (`pagemap_call_ns`).
    pub fn cpu_mapping(&self, addr: u64) -> Result<(u64, u64)> {
        let (s, e, kind) = self.state.lock().mem.cpu_vma(addr);
        self.advance(self.topo.costs.pagemap_call_ns, TimeCategory::Calls);
        if kind == mem::CpuKind::Unmapped {
            return Err(Errno::EFAULT);
        }
        Ok((s, e))
    }

    /// madvise(MADV_POPULATE_READ) over [start, start+size) (page
    /// aligned): every page is faulted in as a CPU read would, without
    /// reading. A never-populated page of anonymous memory gets the shared
    /// zero page (`zero_page_map_ns` each, nothing allocated); device pages
    /// are faulted back to system memory first, as `do_swap_page` does for
    /// a device-private entry (the caller names only pages it saw
    /// unpopulated). ENOMEM where part of the span is unmapped (Linux has
    /// populated the mapped part before it; the simulator populates
    /// nothing); EINVAL for an unaligned start; a zero length does nothing. The syscall is charged as one
    /// page-table call (`pagemap_call_ns`).
    pub fn populate(&self, start: u64, size: u64) -> Result<()> {
        if start % PAGE != 0 {
            return Err(Errno::EINVAL);
        }
        if size == 0 {
            return Ok(()); // as madvise answers a zero length
        }
        let end = super::check_span(start, size)?;
        self.advance(self.topo.costs.pagemap_call_ns, TimeCategory::Calls);
        let mut a = start;
        {
            let g = self.state.lock();
            while a < end {
                let (_, vend, kind) = g.mem.cpu_vma(a);
                if kind == mem::CpuKind::Unmapped {
                    return Err(Errno::ENOMEM);
                }
                a = vend;
            }
        }
        self.count(&self.counters.populate_calls, 1);
        self.cpu_fault_span(start, end, super::cpu::CpuFault::ZeroPage)
    }

    /// How the simulated process reads its page table (default:
    /// PAGEMAP_SCAN, unprivileged, as on Linux 6.7+ without CAP_SYS_ADMIN).
    pub fn page_table(&self) -> PageTableAccess {
        *self.page_table.lock()
    }

    /// Sets how the simulated process reads its page table. `Oracle` is
    /// not a property of the process (the driver seam decides it).
    pub fn set_page_table(&self, access: PageTableAccess) -> Result<()> {
        if access.source == PageTableSource::Oracle {
            return Err(Errno::EINVAL);
        }
        *self.page_table.lock() = access;
        Ok(())
    }

    /// The simulated process's page table over [start, end), with exactly
    /// what `/proc/self/pagemap` shows (docs/observation.md §1): present pages
    /// (system memory, anonymous or file) are `System`; device pages and
    /// pages a migration holds (migration entries) are `NotInSystem`,
    /// naming their region only for a privileged reader; the rest is
    /// unpopulated. The cost of the walk goes on the clock (one syscall per
    /// call, or per 512 entries read), unless `oracle`, which also names
    /// every region (the benchmark's perfect-information reference).
    pub fn read_page_table(&self, start: u64, end: u64, out: &mut [ResidencyRun], oracle: bool) -> Result<(usize, u64)> {
        let access = self.page_table();
        if !oracle && !access.available() {
            return Err(Errno::EOPNOTSUPP);
        }
        if start % PAGE != 0 || end % PAGE != 0 || start >= end || end > mem::VA_END || out.is_empty() {
            return Err(Errno::EINVAL);
        }
        let names = oracle || access.privileged;
        let g = self.state.lock();
        let (mut n, mut walked) = (0, start);
        let mut full = false;
        let mut push = |addr: u64, run_end: u64, residency: Residency| {
            if full {
                return;
            }
            if push_run(out, &mut n, ResidencyRun { start: addr, end: run_end, residency }) {
                walked = run_end;
            } else {
                full = true;
            }
        };
        g.mem.each_run(start, end, |addr, run_end, loc, locked| {
            if loc == Loc::Unpopulated {
                // The zero page is a present PTE: PAGEMAP_SCAN tells it
                // (PAGE_IS_PFNZERO), a pread of pagemap shows it present.
                let zero = if oracle || access.source == PageTableSource::Scan { Residency::Unpopulated } else { Residency::System };
                return g.mem.zero_page_split(addr, run_end, |s, e, z| push(s, e, if z { zero } else { Residency::Unpopulated }));
            }
            let residency = match (loc, locked) {
                (Loc::System, false) => Residency::System,
                (Loc::Vram(p), _) if names => {
                    let pm = self.pagemaps[p as usize];
                    Residency::NotInSystem { vram: Some(VramRegion { device: self.device_id(pm.device), region: pm.tile }) }
                }
                _ => Residency::NotInSystem { vram: None },
            };
            push(addr, run_end, residency);
        });
        drop(g);
        if !oracle {
            let c = &self.topo.costs;
            let pages = (walked - start) / PAGE;
            // The kernel backend reads entries 512 at a time when it must pread
            // (privileged readers need the PFNs only pread gives).
            self.advance(if access.source == PageTableSource::Scan && !access.privileged {
                c.pagemap_call_ns + pages * c.pagemap_scan_page_ns
            } else {
                pages.div_ceil(512).max(1) * c.pagemap_call_ns + pages * c.pagemap_read_page_ns
            }, TimeCategory::Calls);
            self.count(&self.counters.page_table_reads, 1);
            self.count(&self.counters.page_table_pages, pages);
        }
        Ok((n, walked))
    }
}
