//! Many ranges in one VM_BIND: one PREFETCH op per range, a user fence the
//! runtime can wait on (its own, or one the library lends), and the outcome
//! read when the runtime asks.
//!
//! What xe does with it, and so what a batch is (runtime-model.md §5): the
//! copies happen inside the VM_BIND ioctl (`prefetch_ranges`, called from
//! `op_lock_and_prep`), so `place_batch` returns once the data moved; the
//! fence covers the page-table update that follows. A user fence in xe only
//! signals, it is never waited on (`xe_sync.c`): the bind cannot be ordered
//! after earlier GPU work by it, and ordering after a kernel that writes
//! the data is the host's job (call after that work is done). Fence values
//! only grow; completion compares with `>=`, so a word several binds share
//! (NEO's paging fence) never hangs a wait.
//!
//! What a batch does not do, by design: retries and fallbacks. They need the
//! outcome of the bind, which a queued call does not have; `complete`
//! reports each range where it is (verified against the page table where it
//! can be read) and the runtime decides.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A placement batch in flight (or done): its device, its ranges and their
/// targets, and the fence its VM_BIND signals.
#[derive(Debug)]
pub struct Batch {
    /// The device whose VM binds it.
    pub device: DeviceHandle,
    /// Its ranges: start, size, target.
    pub ranges: Vec<(u64, u64, Pagemap)>,
    /// Per range, the generation of the target's device slot when the
    /// batch was queued (0 for system memory): a device closed since, its
    /// slot perhaps reopened for another, is not where the range went.
    gens: Vec<u16>,
    /// The user fence: the kernel writes `value` at `addr` when the binds
    /// complete.
    pub addr: u64,
    /// The value the kernel writes at `addr`.
    pub value: u64,
    /// The word, when the library lent it (given back at `complete`).
    own: Option<&'static AtomicU64>,
    /// Ioctls issued to queue it (madvise calls and the one VM_BIND).
    pub ioctls: u32,
    completed: bool,
    /// Its device was closed before the fence signalled: every report is
    /// EBADF (`complete_batch`).
    orphaned: bool,
    /// Its own device was lost before its fence signalled (that errno):
    /// every completion says so alike.
    lost: Option<Errno>,
}

impl Batch {
    /// Whether its fence has signalled: one load, no syscall.
    pub fn signalled(&self) -> bool {
        if self.completed {
            return true; // a lent word went back to the pool: not ours to read
        }
        // SAFETY: `addr` is a lent pool word (live for the process) or the
        // runtime's fence word, which it keeps alive while the batch is
        // in flight (its contract with the kernel as much as with us).
        unsafe { std::ptr::read_volatile(self.addr as *const u64) >= self.value }
    }
}

impl Drop for Batch {
    /// A lent word still in flight goes back to the pool once it signals.
    fn drop(&mut self) {
        if let Some(w) = self.own.take() {
            xe::abandon_fence_word(w, self.value);
        }
    }
}

impl Context {
    /// Queues the placement of `ranges` (start, size, target pagemap) for
    /// accesses by device `h` as one VM_BIND with one PREFETCH op per range,
    /// after step 2 of the flow (the preferred location on every device VM,
    /// applied now: a madvise is synchronous and moves nothing). `fence`:
    /// the runtime's own user fence (address of a u64 it keeps alive,
    /// value), or None to use one the library lends. Returns once the
    /// VM_BIND returned: the copies are done, the page-table update may
    /// still be in flight (the fence says when).
    /// Errors (nothing queued): EINVAL for a bad or empty list, overlapping
    /// ranges or a misaligned fence; the errno of a refused madvise or bind.
    pub fn place_batch(&self, h: DeviceHandle, ranges: &[(u64, u64, Pagemap)], fence: Option<(u64, u64)>) -> Result<Batch> {
        if ranges.is_empty() || fence.is_some_and(|(a, _)| a == 0 || a % 8 != 0) {
            return Err(Errno::EINVAL);
        }
        let mut spans: Vec<(u64, u64, Pagemap)> = Vec::with_capacity(ranges.len());
        for &(start, size, pm) in ranges {
            spans.push((start, check_span(start, size)?, pm));
        }
        let mut sorted: Vec<(u64, u64)> = spans.iter().map(|&(s, e, _)| (s, e)).collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[1].0 < w[0].1) {
            return Err(Errno::EINVAL);
        }
        // Lock order as everywhere: a span's range lock, then the slots.
        let dev = Context::device_in(&self.slots.read(), h)?.clone();
        dev.check_alive()?;
        // Every target checked before any range is advised: a batch refused
        // for a VRAM the device cannot reach changes nothing (the header's
        // "nothing queued"), where its earlier ranges had been advised.
        {
            let slots = self.slots.read();
            for &(_, _, cand) in &spans {
                Context::check_pagemap(&slots, cand)?;
                self.reaches_pref(&slots, &dev, cand, Some(dev.slot))?;
            }
        }
        // The generation of each target's slot when its range is advised and
        // queued (below, under the slot lock it is used under).
        let mut gens = Vec::with_capacity(spans.len());
        let mut placed = Placed::default();
        // Ops per VM: a tile's own VRAM through that tile's VM, as a single
        // placement prefetches it (`Context::prefetch`); the rest through
        // tile 0's.
        let mut ops: Vec<(u32, Vec<drm_xe_vm_bind_op>)> = Vec::new();
        for &(start, end, cand) in &spans {
            let _g = self.ranges.lock(start, end);
            let slots = self.slots.read();
            let region = match cand {
                Pagemap::System => {
                    gens.push(0);
                    0
                }
                Pagemap::Vram { device, tile } => {
                    let owner = Context::check_pagemap(&slots, cand)?.expect("VRAM pagemap");
                    gens.push(owner.gen);
                    if device == dev.slot {
                        owner.tiles[tile as usize].expect("checked").instance as u32
                    } else {
                        DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC
                    }
                }
            };
            let summary = self.summary(start, end);
            let mut applied = Vec::new();
            let r = self.apply_preferred(&slots, Some(dev.slot), None, start, end, cand, &summary, &mut placed, &mut applied);
            // In flight: where it is is unknown until `complete` looks.
            self.record(&slots, start, end, &applied, |r| r.residency = None);
            if let Err(Miss::Fallback(e) | Miss::Fatal(e)) = r {
                return Err(e);
            }
            let vm = match cand {
                Pagemap::Vram { device, tile } if device == dev.slot => dev.vm_of_tile(tile),
                _ => dev.vm_id,
            };
            let op = xe::prefetch_op(start, end - start, region);
            match ops.iter_mut().find(|(v, _)| *v == vm) {
                Some((_, list)) => list.push(op),
                None => ops.push((vm, vec![op])),
            }
        }
        let (own, addr, value) = match fence {
            Some((addr, value)) => (None, addr, value),
            None => {
                let w = xe::take_fence_word();
                (Some(w), w.as_ptr() as u64, xe::next_fence_value())
            }
        };
        // One VM_BIND per VM. All but the last are waited for here (the
        // copies already happened inside each ioctl; the wait covers their
        // page-table updates), so the batch's fence, on the last, covers all.
        let timeout = self.config.bind_timeout_ns.min(i64::MAX as u64) as i64;
        let (last_vm, last_ops) = ops.pop().expect("a batch has a range");
        for (vm, list) in &ops {
            self.stats.local().prefetch.fetch_add(1, Ordering::Relaxed);
            let w = xe::take_fence_word();
            let v = xe::next_fence_value();
            let r = self
                .restarting(&mut placed, || xe::vm_bind_queued(&*self.driver, dev.fd, *vm, list, w.as_ptr() as u64, v))
                .and_then(|()| self.restarting(&mut placed, || xe::wait_user_fence(&*self.driver, dev.fd, w.as_ptr() as u64, v, timeout)));
            match r {
                Ok(()) => xe::release_fence_word(w),
                Err(e) => {
                    xe::abandon_fence_word(w, v);
                    if let Some(w) = own {
                        xe::release_fence_word(w);
                    }
                    self.suffer(e, &dev, None);
                    return Err(e);
                }
            }
        }
        self.stats.local().prefetch.fetch_add(1, Ordering::Relaxed);
        let r = self.restarting(&mut placed, || xe::vm_bind_queued(&*self.driver, dev.fd, last_vm, &last_ops, addr, value));
        if let Err(e) = r {
            if let Some(w) = own {
                xe::release_fence_word(w); // nothing was queued: nothing will write it
            }
            self.suffer(e, &dev, None);
            return Err(e);
        }
        let ranges = spans.iter().map(|&(s, e, pm)| (s, e - s, pm)).collect();
        Ok(Batch { device: h, ranges, gens, addr, value, own, ioctls: placed.ioctls, completed: false, orphaned: false, lost: None })
    }

    /// A batch range whose outcome is out of sight (its device or its
    /// target's closed): the record trusts no place, the next call looks.
    pub(super) fn place_unknown(&self, slots: &[Slot], start: u64, end: u64) {
        self.record(slots, start, end, &[], |r| {
            r.residency = None;
            r.observed_at.store(0, Ordering::Relaxed);
        });
    }

    /// Waits (up to `timeout_ns`, WAIT_USER_FENCE; no wait when the fence
    /// has signalled) for a batch, then reports each range: where it is
    /// (what the page table shows where it can be read, else the target,
    /// believed), verified or not, and EBUSY in `cause` where the page
    /// table shows it elsewhere (a prefetch the kernel reported done but
    /// did not make, docs/kernel-model.md §7). The records take what is found.
    /// ETIME: not done yet, ask again. Once complete, asking again returns
    /// the same kind of report from a fresh look.
    pub fn complete_batch(&self, b: &mut Batch, timeout_ns: i64) -> Result<Vec<Placed>> {
        // The batch's own device closed before its fence signalled: its VM
        // went with it, and the bind's outcome with it. Every range
        // completes with EBADF (no wait, no look), the lent word left to
        // the pool for when it signals, if ever.
        let mut closed = b.orphaned;
        // The batch's own device lost before its fence signalled: the fence
        // never will, but the binds' migrations ran inside the ioctl
        // (`op_lock_and_prep`), so the ranges complete from what the page
        // table shows, each found elsewhere with that device's errno.
        let mut gone = b.lost;
        if !b.completed && !b.signalled() {
            let dev = match Context::device_in(&self.slots.read(), b.device) {
                Ok(d) => Some(d.clone()),
                Err(Errno::EBADF) => None,
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    gone = Some(e);
                    None
                }
                Err(e) => return Err(e),
            };
            match dev {
                Some(dev) => match self.restarting(&mut Placed::default(), || xe::wait_user_fence(&*self.driver, dev.fd, b.addr, b.value, timeout_ns)) {
                    Ok(()) => {}
                    Err(e) if e != Errno::ETIME && self.suffer(e, &dev, None) == super::errors::Answer::DeviceGone => gone = Some(e),
                    Err(e) => return Err(e),
                },
                None => closed = gone.is_none(),
            }
        }
        b.orphaned = closed;
        b.lost = gone;
        if !b.completed {
            b.completed = true;
            if let Some(w) = b.own.take() {
                if closed || gone.is_some() {
                    xe::abandon_fence_word(w, b.value);
                } else {
                    xe::release_fence_word(w);
                }
                b.addr = 0;
            }
        }
        if closed {
            for &(start, size, _) in &b.ranges {
                let _g = self.ranges.lock(start, start + size);
                self.place_unknown(&self.slots.read(), start, start + size);
            }
            return Ok(b.ranges.iter().map(|_| Placed { cause: Some(Errno::EBADF), ..Default::default() }).collect());
        }
        let mut out = Vec::with_capacity(b.ranges.len());
        for (&(start, size, cand), &gen) in b.ranges.iter().zip(&b.gens) {
            let end = start + size;
            // Lock order as everywhere: the span's range lock, then the slots.
            let _g = self.ranges.lock(start, end);
            let slots = self.slots.read();
            // The target's device was closed since the batch was queued:
            // its pagemap names nothing now (or another device that took
            // the slot), and what its VRAM held is out of the library's
            // sight. EBADF, no place, and a record that trusts nothing.
            let mut owner = None;
            if let Pagemap::Vram { device, .. } = cand {
                owner = slots.get(device as usize).and_then(|s| s.dev.as_ref());
                if owner.is_none_or(|d| d.gen != gen) {
                    self.place_unknown(&slots, start, end);
                    out.push(Placed { cause: Some(Errno::EBADF), ..Default::default() });
                    continue;
                }
            }
            // Where no device has VRAM, nothing to look at (`any_vram`).
            let seen = if self.any_vram() { self.observe_whole(start, end).map(|(s, _)| s) } else { None };
            let mut p = Placed { pagemap: Some(cand), ..Default::default() };
            let at = match &seen {
                // A hole: EFAULT and no place, as for a synchronous placement
                // (looked at first: unpopulated pages agree with system memory).
                Some(s) if self.unmapped(start, end, s) => {
                    p.cause = Some(Errno::EFAULT);
                    p.pagemap = None;
                    None
                }
                Some(s) if self.agrees(&slots, s, cand) => {
                    p.verified = true;
                    Some(cand)
                }
                Some(s) => {
                    // Elsewhere: the target's device lost (its errno; asked
                    // on its own fd, one ioctl, as this is no hot path), or
                    // a prefetch the kernel reported done but did not make.
                    let lost = owner.and_then(|d| self.device_lost(d, &mut p.ioctls)).or(gone);
                    p.cause = Some(lost.unwrap_or(Errno::EBUSY));
                    let actual = self.place_of(&slots, s, None, 0);
                    p.pagemap = actual;
                    actual
                }
                // Unseen, on a device lost before the fence said it was done.
                None if gone.is_some() => {
                    p.cause = gone;
                    p.pagemap = None;
                    None
                }
                None => Some(cand),
            };
            let before = (cand == Pagemap::System && p.verified).then(|| self.summary(start, end).residency).flatten();
            let now = self.driver.now_ns();
            self.record(&slots, start, end, &[], |r| {
                r.residency = at;
                // The runtime's own batch: an explicit request.
                *r.explicit.get_mut() = true;
                r.spend_faulted_marks();
                r.observed_at.store(if p.verified { now.max(1) } else { 0 }, Ordering::Relaxed);
                r.last_used.store(now, Ordering::Relaxed);
            });
            if let Some(from) = before.filter(|b| b.device().is_some()) {
                self.carried_back(&slots, start, end, Some(from));
            }
            out.push(p);
        }
        Ok(out)
    }
}
