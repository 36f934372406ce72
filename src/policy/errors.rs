//! What an errno from the driver means for the engine, in one table
//! (docs/design.md, "The placement flow", step 4), and its lasting
//! consequences (counted, a device marked dead, a link marked absent)
//! applied in one place. Callers keep only their control flow: which
//! retry, which fallback.

use super::*;

/// The engine's answer to an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// EINTR / EAGAIN: restarted by the driver layer (`driver::ioctl`,
    /// bounded); one that comes back here ran out of restarts.
    Interrupted,
    /// EBUSY: evict to system memory and retry once (the kernel thread's rule).
    EvictAndRetry,
    /// ENOMEM / ENOSPC: evict this context's least recently used ranges there
    /// and retry once.
    MakeRoomAndRetry,
    /// ENOLINK: the link is absent; fall back.
    NoLink,
    /// ENODEV / ECANCELED: the device is gone (unplugged, wedged).
    DeviceGone,
    /// Anything else: the caller's argument or state; returned.
    Fail,
}

/// The table.
pub(super) const fn answer(e: Errno) -> Answer {
    match e {
        Errno::EINTR | Errno::EAGAIN => Answer::Interrupted,
        Errno::EBUSY => Answer::EvictAndRetry,
        Errno::ENOMEM | Errno::ENOSPC => Answer::MakeRoomAndRetry,
        Errno::ENOLINK => Answer::NoLink,
        Errno::ENODEV | Errno::ECANCELED => Answer::DeviceGone,
        _ => Answer::Fail,
    }
}

impl Context {
    /// Applies what `e`, returned by an ioctl on `dev` (about pagemap `toward`,
    /// where it names one), says for good: counts it, marks `dev` dead on
    /// ENODEV / ECANCELED, and the link from `dev` to `toward`'s device absent
    /// on ENOLINK. Returns the answer for the caller's control flow.
    pub(super) fn suffer(&self, e: Errno, dev: &Device, toward: Option<Pagemap>) -> Answer {
        self.stats.count_errno(e);
        let a = answer(e);
        match a {
            Answer::DeviceGone => dev.mark_dead(e),
            Answer::NoLink => {
                if let Some(peer) = toward.and_then(|p| p.device()) {
                    self.links.write().set(dev.slot, peer, LinkState::Absent, LinkSource::Learned);
                }
            }
            _ => {}
        }
        a
    }

    /// Whether device `d` is gone, asked on its own fd where nothing said so
    /// yet (one size-only DEVICE_QUERY: a failure path's question, where a
    /// move into its VRAM through another device's VM failed or did not
    /// happen, and that VM's ioctls say nothing of it): its errno, and `d`
    /// marked dead, or None. The query counts in `ioctls` (the call's
    /// result) where it is issued.
    pub(super) fn device_lost(&self, d: &Device, ioctls: &mut u32) -> Option<Errno> {
        let answer = d.check_alive().and_then(|()| {
            *ioctls += 1;
            self.stats.local().ioctls.fetch_add(1, Ordering::Relaxed);
            crate::driver::query::probe(&*self.driver, d.fd)
        });
        let e = answer.err().filter(|e| matches!(e, &Errno::ENODEV | &Errno::ECANCELED))?;
        self.suffer(e, d, None);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_errno_the_engine_handles_has_one_answer() {
        assert_eq!(answer(Errno::EINTR), Answer::Interrupted);
        assert_eq!(answer(Errno::EAGAIN), Answer::Interrupted);
        assert_eq!(answer(Errno::EBUSY), Answer::EvictAndRetry);
        assert_eq!(answer(Errno::ENOMEM), Answer::MakeRoomAndRetry);
        assert_eq!(answer(Errno::ENOSPC), Answer::MakeRoomAndRetry);
        assert_eq!(answer(Errno::ENOLINK), Answer::NoLink);
        assert_eq!(answer(Errno::ENODEV), Answer::DeviceGone);
        assert_eq!(answer(Errno::ECANCELED), Answer::DeviceGone);
        for e in [Errno::EINVAL, Errno::EFAULT, Errno::ENOENT, Errno::EPERM, Errno::EACCES] {
            assert_eq!(answer(e), Answer::Fail, "{e:?}");
        }
    }
}
