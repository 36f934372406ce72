//! Attributes kept consistent on every device VM: the preferred location
//! each VM should have for a placement (step 2 of the flow), the madvise
//! calls that apply it, the thrash guard's hold of a range where it is,
//! and the runtime's own set_preferred / set_atomic.

use std::sync::atomic::Ordering;

use super::place::Attempt;
use super::*;

impl Context {
    /// The preferred location each device VM should have for `cand`: the
    /// pagemap by fd + instance where the kernel supports multi-device madvise
    /// and the device can reach it; DEFAULT_DEVICE on the owner where it does
    /// not (6.18); DEFAULT_SYSTEM everywhere for system memory. When `cand`
    /// is the accessing device's own VRAM (the kernel's default placement,
    /// docs/kernel-model.md §3.1), every other VM gets the kernel's default,
    /// DEFAULT_DEVICE, too: one value on every VM, and no madvise (with its
    /// PTE zap and TLB invalidation) each time the accessing device changes.
    pub(super) fn desired_pref(&self, slots: &[Slot], on: &Device, cand: Pagemap, accessing: Option<u16>) -> Option<PrefApplied> {
        match cand {
            Pagemap::System => Some(PrefApplied::DefaultSystem),
            Pagemap::Vram { device, .. } if accessing == Some(device) && on.slot != device => Some(PrefApplied::DefaultDevice),
            Pagemap::Vram { device, tile } => {
                let owner = Context::check_pagemap(slots, cand).ok()??;
                let instance = owner.tiles[tile as usize]?.instance;
                if on.slot == device {
                    // Own VRAM: DEFAULT_DEVICE says "the faulting tile", which is
                    // the target on single-tile devices and on 6.18; for the
                    // accessing device's default placement it keeps the range on
                    // the device either way (no madvise when only the tile differs).
                    if on.tiles.len() == 1 || !on.multi_device_ok() || accessing == Some(device) {
                        Some(PrefApplied::DefaultDevice)
                    } else {
                        Some(PrefApplied::Device { slot: device, instance })
                    }
                } else if on.multi_device_ok() && self.links.read().get(on.slot, device).usable() {
                    Some(PrefApplied::Device { slot: device, instance })
                } else {
                    None // cannot be expressed on this VM: leave it alone
                }
            }
        }
    }

    /// Why device `slot`'s VM cannot prefer `pm` (`desired_pref` has no
    /// value for it): no link to that VRAM (ENOLINK), or a kernel without
    /// multi-device madvise (EOPNOTSUPP, 6.18).
    fn unreachable_errno(&self, slot: u16, pm: Pagemap) -> Errno {
        match pm.device() {
            Some(t) if !self.links.read().get(slot, t).usable() => Errno::ENOLINK,
            _ => Errno::EOPNOTSUPP,
        }
    }

    /// Whether `on`'s VM can prefer `pm` (its own VRAM and system memory
    /// always), else the errno why not: checked before any range of a
    /// call is advised, so that a refusal changes nothing.
    pub(super) fn reaches_pref(&self, slots: &[Slot], on: &Device, pm: Pagemap, accessing: Option<u16>) -> Result<()> {
        match pm.device() {
            Some(t) if t != on.slot && self.desired_pref(slots, on, pm, accessing).is_none() => Err(Context::check_pagemap(slots, pm).err().unwrap_or_else(|| self.unreachable_errno(on.slot, pm))),
            _ => Ok(()),
        }
    }

    /// Step 2 for every open device; returns what was applied (for the record).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_preferred(
        &self,
        slots: &[Slot],
        accessing_slot: Option<u16>,
        only: Option<u16>,
        start: u64,
        end: u64,
        cand: Pagemap,
        summary: &Record,
        placed: &mut Placed,
        applied: &mut Vec<(u16, DevAttrs)>,
    ) -> std::result::Result<(), Miss> {
        // A preferred location the runtime set stays on every VM: the
        // default-placement rule of desired_pref applies only without one,
        // and a device advised otherwise on any piece of the span keeps its
        // VM as advised.
        let (otherwise, advised) = if accessing_slot.is_some() { self.advice_over(slots, start, end, cand) } else { (0, false) };
        let default_for = accessing_slot.filter(|_| !advised);
        let unflagged = self.resets_unflagged(slots);
        for d in slots.iter().filter_map(|s| s.dev.as_ref()) {
            if d.check_alive().is_err() || only.is_some_and(|o| o != d.slot) {
                continue;
            }
            // Only the accessing device's failures make the candidate fall back.
            let accessing = accessing_slot == Some(d.slot);
            // A placement leaves another device's VM alone where the runtime
            // advised that device otherwise: its advice is an explicit
            // request too (that device's faults go where it asked).
            if !accessing && otherwise & (1 << d.slot) != 0 {
                continue;
            }
            let Some(want) = self.desired_pref(slots, d, cand, default_for) else {
                // A target whose device was closed (or lost) meanwhile is
                // that call's error, never a fallback: its pagemap stopped
                // working (include/xesvm.h, svm_device_close).
                if let Err(e) = Context::check_pagemap(slots, cand) {
                    return Err(Miss::Fatal(e));
                }
                if accessing {
                    return Err(Miss::Fallback(self.unreachable_errno(d.slot, cand)));
                }
                continue;
            };
            let mut a = summary.attrs(d.slot);
            if a.pref == want && trusts_record(d, unflagged, want == PrefApplied::DefaultDevice) {
                continue; // recorded: the madvise would zap PTEs for nothing
            }
            match self.advise_differing(slots, d, start, end, want, placed) {
                Ok(()) => {
                    a.pref = want;
                    applied.push((d.slot, a));
                }
                Err(e @ Errno::ENOLINK) => {
                    placed.vms_refused |= 1 << d.slot;
                    self.suffer(e, d, Some(cand));
                    if !accessing {
                        crate::log!(crate::log::Level::Info, "preferred location {cand} on device {}'s VM: ENOLINK, ignored (that device keeps its own)", d.slot);
                    }
                    if accessing {
                        return Err(Miss::Fallback(Errno::ENOLINK));
                    }
                }
                Err(Errno::EINVAL) if matches!(want, PrefApplied::Device { .. }) && d.multi_device_unknown() => {
                    // region_instance is pad on 6.18: this kernel has no multi-device madvise.
                    d.set_multi_device(false);
                    if let Some(w) = self.desired_pref(slots, d, cand, default_for) {
                        // The value the VM can hold, cut as the first try's.
                        if self.advise_differing(slots, d, start, end, w, placed).is_ok() {
                            a.pref = w;
                            applied.push((d.slot, a));
                        }
                    } else if accessing {
                        return Err(Miss::Fallback(Errno::EOPNOTSUPP));
                    }
                }
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    let (gone, e) = self.attribute_loss(slots, d, want, e, &mut placed.ioctls);
                    self.stats.count_errno(e);
                    placed.vms_refused |= 1 << d.slot;
                    // The memory the madvise named belongs to a lost device
                    // (that device's errno, and this VM keeps working), or
                    // the accessing device is lost: returned, never a
                    // fallback, as a later call finds the loss at step 1
                    // (include/xesvm.h, svm_alloc_vram step 4).
                    if gone != d.slot || accessing || cand.device() == Some(d.slot) {
                        return Err(Miss::Fatal(e));
                    }
                }
                Err(e) => {
                    self.stats.count_errno(e);
                    return Err(Miss::Fatal(e));
                }
            }
        }
        Ok(())
    }

    /// The devices (bit = slot) the runtime advised otherwise than `cand`
    /// on some part of [start, end), and whether any open device has
    /// advice there.
    fn advice_over(&self, slots: &[Slot], start: u64, end: u64, cand: Pagemap) -> (u64, bool) {
        let track = self.track.read();
        if track.advice.is_empty() {
            return (0, false);
        }
        let (mut otherwise, mut advised) = (0u64, false);
        for d in slots.iter().filter_map(|s| s.dev.as_ref()) {
            for p in track.advice.pieces_for(start, end, d.slot) {
                advised = true;
                if p != cand {
                    otherwise |= 1 << d.slot;
                }
            }
        }
        (otherwise, advised)
    }

    /// Whose is an ENODEV / ECANCELED from a madvise on `on`'s VM? A
    /// preferred location naming another device's memory passes that
    /// device's fd, and the kernel fails the call when that device is gone.
    /// The named device is asked on its own fd (one ioctl); the device found
    /// gone is marked dead with its own errno, and returned with it.
    fn attribute_loss(&self, slots: &[Slot], on: &Device, want: PrefApplied, e: Errno, ioctls: &mut u32) -> (u16, Errno) {
        let named = match want {
            PrefApplied::Device { slot, .. } if slot != on.slot => slots.get(slot as usize).and_then(|s| s.dev.as_ref()),
            _ => None,
        };
        if let Some(own) = named.and_then(|n| self.device_lost(n, ioctls)) {
            return (named.map_or(on.slot, |n| n.slot), own);
        }
        on.mark_dead(e);
        (on.slot, e)
    }

    /// Sets `want` as [start, end)'s preferred location on `on`'s VMs,
    /// leaving uncut the VMAs that hold it already (`advise_span`; where all
    /// of them do, nothing is issued). A madvise issued marks the device in
    /// `placed.vms_applied`.
    fn advise_differing(&self, slots: &[Slot], on: &Device, start: u64, end: u64, want: PrefApplied, placed: &mut Placed) -> Result<()> {
        let Some((ms, me)) = self.advise_span(slots, on, start, end, want, placed) else { return Ok(()) };
        self.madvise_pref(slots, on, ms, me, want, placed)?;
        placed.vms_applied |= 1 << on.slot;
        Ok(())
    }

    pub(super) fn madvise_pref(&self, slots: &[Slot], on: &Device, start: u64, end: u64, p: PrefApplied, placed: &mut Placed) -> Result<()> {
        let fd_of = |slot: u16| slots.get(slot as usize).and_then(|s| s.dev.as_ref()).map_or(-1, |d| d.fd);
        let loc = p.to_uapi(fd_of);
        // Every VM of the device (one per tile where the runtime keeps them so).
        let r = on.vms().iter().try_for_each(|&vm| self.restarting(placed, || xe::madvise_preferred_loc(&*self.driver, on.fd, vm, start, end - start, loc)));
        self.stats.local().madvise.fetch_add(1, Ordering::Relaxed);
        if r.is_ok() && matches!(p, PrefApplied::Device { .. }) {
            on.set_multi_device(true);
        }
        r
    }

    /// Sets the preferred location of a range on every device VM (the
    /// kernel's attributes are per VM; conflicting values are undefined, so
    /// the library keeps them equal). Devices that cannot reach the pagemap
    /// keep theirs; the range query shows each VM's value.
    pub fn set_preferred(&self, start: u64, size: u64, pm: Pagemap) -> Result<()> {
        self.set_preferred_on(None, start, size, pm)
    }

    /// Sets the preferred location on the VMs of one device (`Some`), as
    /// Level Zero's per-device advice and Intel's compute runtime do, or of
    /// every device (`None`). Where the kernel may have reset the attributes
    /// since they were recorded (a mirror bound with MADVISE_AUTORESET, or a
    /// kernel that may reset without it), the madvise is issued every time,
    /// as the runtime itself would: a free the library does not see can
    /// have reset it (docs/kernel-model.md §8).
    pub fn set_preferred_on(&self, only: Option<DeviceHandle>, start: u64, size: u64, pm: Pagemap) -> Result<()> {
        let end = check_span(start, size)?;
        let only = self.scope(only)?;
        if self.preferred_unchanged(only, start, end, pm)? {
            return Ok(()); // recorded on every VM already: no lock, no ioctl
        }
        let _g = self.ranges.lock(start, end);
        let slots = self.slots.read();
        Context::check_pagemap(&slots, pm)?;
        // One device's advice for a VRAM it cannot reach is refused, as the
        // header says (-ENOLINK, or -EOPNOTSUPP where the kernel has no
        // multi-device madvise), not skipped as another device's VM is
        // when every device is advised.
        if let Some(d) = only.and_then(|s| slots.get(s as usize)?.dev.as_ref()) {
            self.reaches_pref(&slots, d, pm, None)?;
        }
        let summary = self.summary(start, end);
        let mut placed = Placed::default();
        let mut applied = Vec::new();
        // Step 2 of alloc_vram, with no accessing device.
        let mut result = self.apply_preferred(&slots, None, only, start, end, pm, &summary, &mut placed, &mut applied).map_err(|m| match m {
            Miss::Fallback(e) | Miss::Fatal(e) => e,
        });
        // The kernel refused the one device's VM (ENOLINK; a lost device is
        // `lost_during`'s): the advice did not take.
        let lost = lost_during(&slots, placed.vms_refused);
        if result.is_ok() && lost.is_ok() && only.is_some_and(|s| placed.vms_refused & (1 << s) != 0) {
            result = Err(Errno::ENOLINK);
        }
        let ok = result.is_ok();
        // Devices whose VMs the advice for every device did not reach keep
        // their own (the header: "devices without a link to it keep theirs").
        let unreached = slots
            .iter()
            .filter_map(|s| s.dev.as_ref())
            .filter(|d| self.desired_pref(&slots, d, pm, None).is_none() || placed.vms_refused & (1 << d.slot) != 0)
            .fold(0u64, |m, d| m | 1 << d.slot);
        self.record(&slots, start, end, &applied, |_| {});
        if ok {
            self.track.write().advice.update(start, end, |p| p.set(Some(pm), only, unreached));
        }
        result.and(lost)
    }

    /// The slot an attribute call is limited to (None: every device), with
    /// the handle checked.
    fn scope(&self, only: Option<DeviceHandle>) -> Result<Option<u16>> {
        let Some(h) = only else { return Ok(None) };
        let slots = self.slots.read();
        let d = Context::device_in(&slots, h)?;
        d.check_alive()?;
        Ok(Some(d.slot))
    }

    /// Whether the runtime's preferred location `pm` is already recorded
    /// for exactly this span, with every open device's VM (or `only`'s)
    /// holding what `apply_preferred` would give it, and the kernel known
    /// to keep it (runtimes repeat their advice on every launch). Read
    /// locks only, in the slow path's order.
    fn preferred_unchanged(&self, only: Option<u16>, start: u64, end: u64, pm: Pagemap) -> Result<bool> {
        let slots = self.slots.read();
        Context::check_pagemap(&slots, pm)?;
        let track = self.track.read();
        // The advice of the one piece that holds the span (one lookup), else
        // each device's over its pieces.
        let whole = track.advice.whole(start, end);
        let held = |slot: u16| whole.map_or_else(|| track.advice.for_device(start, end, slot), |p| p.for_device(slot));
        let Some(r) = track.exact(start, end).filter(|_| only.is_some() || whole.is_some_and(|p| p.every() == Some(pm))) else { return Ok(false) };
        let unflagged = self.resets_unflagged(&slots);
        let mut alive = slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.check_alive().is_ok() && only.is_none_or(|o| o == d.slot));
        // Each device's VM holds it, and so does the record for that device;
        // one that cannot hold it is skipped by advice for every device (it
        // keeps its own) and refused by one device's own (the slow path).
        Ok(alive.all(|d| match self.desired_pref(&slots, d, pm, None) {
            Some(want) => held(d.slot) == Some(pm) && r.attrs(d.slot).pref == want && trusts_record(d, unflagged, want == PrefApplied::DefaultDevice),
            None => only.is_none(),
        }))
    }

    /// Forgets a preferred location the runtime set: every device VM gets
    /// the kernel's default back (DEFAULT_DEVICE), and resolve decides
    /// alone again (Level Zero's CLEAR_PREFERRED_LOCATION).
    pub fn clear_preferred(&self, start: u64, size: u64) -> Result<()> {
        self.clear_preferred_on(None, start, size)
    }

    /// [`Context::clear_preferred`] on one device's VMs (`Some`) or every
    /// device's. The kernel's default needs no re-issue after a reset: a
    /// reset gives the same value.
    pub fn clear_preferred_on(&self, only: Option<DeviceHandle>, start: u64, size: u64) -> Result<()> {
        let end = check_span(start, size)?;
        let only = self.scope(only)?;
        let _g = self.ranges.lock(start, end);
        let slots = self.slots.read();
        let summary = self.summary(start, end);
        let mut placed = Placed::default();
        let mut applied = Vec::new();
        let mut result = Ok(());
        for d in slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.check_alive().is_ok() && only.is_none_or(|o| o == d.slot)) {
            let mut a = summary.attrs(d.slot);
            if a.pref == PrefApplied::DefaultDevice {
                continue; // recorded: nothing to undo
            }
            match self.madvise_pref(&slots, d, start, end, PrefApplied::DefaultDevice, &mut placed) {
                Ok(()) => {
                    a.pref = PrefApplied::DefaultDevice;
                    applied.push((d.slot, a));
                }
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    self.suffer(e, d, None);
                    placed.vms_refused |= 1 << d.slot;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let ok = result.is_ok();
        self.record(&slots, start, end, &applied, |_| {});
        if ok {
            self.track.write().advice.update(start, end, |p| p.set(None, only, 0));
        }
        result.and(lost_during(&slots, placed.vms_refused))
    }

    /// The runtime's read-mostly hint (Level Zero SET_READ_MOSTLY /
    /// CLEAR_READ_MOSTLY): no kernel attribute expresses it (the Xe kernel
    /// has no replication), so nothing is issued; `resolve` uses it. No
    /// ioctl.
    pub fn set_read_mostly(&self, start: u64, size: u64, on: bool) -> Result<()> {
        let end = check_span(start, size)?;
        let _g = self.ranges.lock(start, end);
        let slots = self.slots.read();
        self.record(&slots, start, end, &[], |r| r.read_mostly = on);
        Ok(())
    }

    /// Sets the atomic mode (DRM_XE_ATOMIC_*) of a range on every device VM.
    pub fn set_atomic(&self, start: u64, size: u64, mode: u32) -> Result<()> {
        self.set_atomic_on(None, start, size, mode)
    }

    /// Sets the atomic mode on one device's VMs (`Some`: Level Zero's
    /// atomic attributes are per device) or every device's, re-issued
    /// where the kernel may have reset it, as for the preferred location.
    pub fn set_atomic_on(&self, only: Option<DeviceHandle>, start: u64, size: u64, mode: u32) -> Result<()> {
        let end = check_span(start, size)?;
        if mode > DRM_XE_ATOMIC_CPU {
            return Err(Errno::EINVAL);
        }
        let only = self.scope(only)?;
        let _g = self.ranges.lock(start, end);
        let slots = self.slots.read();
        let summary = self.summary(start, end);
        let mut applied = Vec::new();
        let mut placed = Placed::default();
        let unflagged = self.resets_unflagged(&slots);
        for d in slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.check_alive().is_ok() && only.is_none_or(|o| o == d.slot)) {
            let mut a = summary.attrs(d.slot);
            if a.atomic == mode && trusts_record(d, unflagged, mode == DRM_XE_ATOMIC_UNDEFINED) {
                continue;
            }
            self.stats.local().madvise.fetch_add(1, Ordering::Relaxed);
            match d.vms().iter().try_for_each(|&vm| self.restarting(&mut placed, || xe::madvise_atomic(&*self.driver, d.fd, vm, start, size, mode))) {
                Ok(()) => {
                    a.atomic = mode;
                    applied.push((d.slot, a));
                }
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    self.suffer(e, d, None);
                    placed.vms_refused |= 1 << d.slot;
                }
                Err(e) => {
                    // What was applied before the failure stays recorded.
                    self.record(&slots, start, end, &applied, |_| {});
                    return Err(e);
                }
            }
        }
        self.record(&slots, start, end, &applied, |_| {});
        lost_during(&slots, placed.vms_refused)
    }

    /// The part of [start, end) a madvise of `want` on device `d`'s VMs
    /// must cover, where the records hold the span in more than one piece
    /// (a piece may hold `want` already): from the first to the last of
    /// the kernel's VMAs there (VM_QUERY_MEM_RANGE_ATTRS, on every VM of
    /// the device) whose preferred location differs (its fd, or a
    /// migration policy other than all pages; the query reports no region
    /// instance, and a madvise changing only that is a no-op in the
    /// kernel); None where none does. Where a query fails, the whole span.
    /// A madvise splits the mirror VMA at its ends, and a split inside a
    /// range in VRAM evicts that range (`xe_svm_unmap_address_range`,
    /// docs/kernel-model.md §8): a span whose head came along into VRAM
    /// with a neighbour's 2 MiB range, and keeps the default there, is not
    /// cut inside that range. The trimmed ends are the VMAs' own, so the
    /// madvise makes no cut the whole span's would not.
    fn advise_span(&self, slots: &[Slot], d: &Device, start: u64, end: u64, want: PrefApplied, placed: &mut Placed) -> Option<(u64, u64)> {
        if self.track.read().overlapping(start, end).nth(1).is_none() {
            return Some((start, end));
        }
        let fd_of = |slot: u16| slots.get(slot as usize).and_then(|s| s.dev.as_ref()).map_or(-1, |d| d.fd);
        let want_fd = want.to_uapi(fd_of).devmem_fd();
        let (mut first, mut last) = (end, start);
        for &vm in d.vms() {
            let Ok(vmas) = self.query_vmas(d, vm, start, end, &mut placed.ioctls) else { return Some((start, end)) };
            let differs = |v: &&drm_xe_mem_range_attr| v.preferred_mem_loc.devmem_fd != want_fd || v.preferred_mem_loc.migration_policy != DRM_XE_MIGRATE_ALL_PAGES as u32;
            for v in vmas.iter().filter(differs) {
                first = first.min(v.start.max(start));
                last = last.max(v.end.min(end));
            }
        }
        (first < last).then_some((first, last))
    }

    /// The thrash guard holds a range where it is: mapped remotely from the
    /// accessing device where the link allows, and pinned until `until`.
    pub(super) fn hold(&self, a: &Attempt, cur: Pagemap, until: u64, placed: &mut Placed) -> Result<()> {
        let Attempt { slots, dev, start, end, ref summary, .. } = *a;
        let remote = match cur {
            Pagemap::System => Some(PrefApplied::DefaultSystem),
            Pagemap::Vram { device, .. } if device == dev.slot => None,
            Pagemap::Vram { device, tile } if self.links.read().get(dev.slot, device).usable() => {
                let inst = Context::check_pagemap(slots, cur)?.and_then(|d| d.tiles[tile as usize]).map(|t| t.instance);
                inst.filter(|_| dev.multi_device_ok()).map(|instance| PrefApplied::Device { slot: device, instance })
            }
            _ => None,
        };
        let mut attrs = None;
        if let Some(p) = remote {
            if summary.attrs(dev.slot).pref != p {
                let mut a = summary.attrs(dev.slot);
                a.pref = p;
                if self.madvise_pref(slots, dev, start, end, p, placed).is_ok() {
                    attrs = Some(a);
                }
            }
        }
        // Held in system memory (after a CPU pull-back, which unbound it):
        // bound for this device by a queued prefetch, not left to fault.
        let bound = cur == Pagemap::System
            && dev.has_vram()
            && (attrs.is_some() || !summary.bound_for(dev.slot))
            && self.bind_in_system(dev, start, end - start, placed);
        self.record_look(slots, start, end, &summary.moves, |r| {
            r.residency = Some(cur);
            r.pinned_until = until;
            if let Some(a) = attrs {
                r.set_attrs(dev.slot, a);
                r.set_bound(dev.slot, false); // the madvise zapped its PTEs
            }
            if bound {
                r.set_bound(dev.slot, true);
            }
        });
        if attrs.is_some() {
            self.unbind_end_chunks(start, end, std::iter::once(dev.slot));
        }
        placed.pagemap = Some(cur);
        placed.pinned = true;
        Ok(())
    }
}

impl Context {
    /// Whether keeping a span in `target` on `dev`'s VM relies on advice the
    /// kernel may have reset since it was recorded (a free the library did
    /// not see, on a mirror with MADVISE_AUTORESET: docs/kernel-model.md
    /// §8): an explicit request then advises again, as the runtime itself
    /// would. Not where the default a reset gives back keeps it there too.
    pub(super) fn advice_may_be_reset(&self, slots: &[Slot], dev: &Device, target: Pagemap) -> bool {
        !super::chunks::faults_keep(dev, PrefApplied::DefaultDevice, target) && dev.resets_attrs_on_free(self.resets_unflagged(slots))
    }

    /// Whether the kernel resets attributes after munmap on mirrors bound
    /// without MADVISE_AUTORESET: as its release says, else unless some
    /// device's multi-device madvise answered (7.0+; one kernel serves
    /// every device).
    pub(super) fn resets_unflagged(&self, slots: &[Slot]) -> bool {
        self.resets_unflagged.unwrap_or_else(|| !slots.iter().filter_map(|s| s.dev.as_ref()).any(|d| d.multi_device_known()))
    }
}

/// Whether a value recorded for a device's VM can be trusted to be the
/// kernel's still, so that setting it again may be skipped: the kernel
/// never resets this VM's attributes on free, or the value is the default
/// a reset would give back (`default`).
fn trusts_record(d: &Device, unflagged: bool, default: bool) -> bool {
    default || !d.resets_attrs_on_free(unflagged)
}

/// A call that set attributes on every VM but found some device gone on
/// the way did not apply everywhere: it fails with the first such device's
/// errno (ENODEV / ECANCELED), every other VM holding the value (the range
/// query shows each VM's). Devices refused for want of a link are not lost.
fn lost_during(slots: &[Slot], refused: u64) -> Result<()> {
    slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| refused & (1 << d.slot) != 0).find_map(|d| d.check_alive().err()).map_or(Ok(()), Err)
}
