//! copy_from_user / copy_to_user for the simulated driver: reading and
//! writing the caller's memory the way the kernel does, so that a bad user
//! pointer inside a struct gives EFAULT instead of a crash.
//!
//! Uses process_vm_readv/writev on our own pid, which the kernel checks page
//! by page. Where those syscalls are refused (seccomp, old kernels), the
//! bytes go through a pipe instead, whose read(2) and write(2) the kernel
//! checks the same way, and it says so once on stderr; only where no pipe
//! can be made either is the access direct, guarded by a NULL / low-address
//! / range check.

use core::mem::{size_of, MaybeUninit};
use std::sync::atomic::{AtomicU8, Ordering};

use std::os::fd::{AsRawFd, FromRawFd};

use crate::errno::{Errno, Result};

const UNKNOWN: u8 = 0;
const SYSCALL: u8 = 1;
const DIRECT: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Addresses below this are never valid user memory (mmap_min_addr).
const MIN_ADDR: u64 = 0x1_0000;

fn direct_ok(addr: u64, len: usize) -> bool {
    addr >= MIN_ADDR && addr.checked_add(len as u64).is_some_and(|e| e <= crate::sim::mem::VA_END)
}

thread_local! {
    /// Set while the library's own driver is in an ioctl (`trusted`).
    static TRUSTED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Runs `f` (an ioctl issued through the Rust `SimDriver`) with the ioctl's
/// argument struct itself read and written directly: it comes from a Rust
/// reference (`driver::ioctl`), so checking its copies page by page with
/// process_vm_readv/writev would find nothing and cost two syscalls per
/// ioctl, under the driver's lock. The user pointers inside it (arrays,
/// syncs, fence words, query buffers) are checked all the same, as the
/// kernel checks them: a safe Rust caller can put any address there.
/// `svm_sim_ioctl` (callers from C, the fuzzers) checks every copy.
pub fn trusted<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            TRUSTED.with(|t| t.set(self.0));
        }
    }
    let _reset = Reset(TRUSTED.with(|t| t.replace(true)));
    f()
}

fn transfer(addr: u64, buf: *mut u8, len: usize, write: bool, trusted: bool) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    if addr < MIN_ADDR {
        return Err(Errno::EFAULT);
    }
    if MODE.load(Ordering::Relaxed) != DIRECT && !trusted {
        let local = libc::iovec { iov_base: buf as *mut _, iov_len: len };
        let remote = libc::iovec { iov_base: addr as *mut _, iov_len: len };
        // SAFETY: the local iovec is our own buffer of `len` bytes; the remote
        // one is checked by the kernel, which fails with EFAULT instead of faulting.
        let n = unsafe {
            if write {
                libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0)
            } else {
                libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0)
            }
        };
        if n == len as isize {
            MODE.store(SYSCALL, Ordering::Relaxed);
            return Ok(());
        }
        match Errno::last() {
            Errno::ENOSYS | Errno::EPERM if MODE.load(Ordering::Relaxed) == UNKNOWN => {
                eprintln!("xesvm sim: process_vm_readv is refused here; user pointers are checked through a pipe");
                MODE.store(DIRECT, Ordering::Relaxed);
            }
            _ => return Err(Errno::EFAULT),
        }
    }
    if !direct_ok(addr, len) {
        return Err(Errno::EFAULT);
    }
    if !trusted {
        if let Some(r) = through_pipe(addr, buf, len, write) {
            return r;
        }
    }
    // SAFETY: trusted (the argument of a Rust caller's ioctl, a reference),
    // or no pipe could be made: the caller vouched for the pointer's validity
    // as a C API contract; the range check above removes NULL and kernel
    // addresses.
    unsafe {
        if write {
            core::ptr::copy_nonoverlapping(buf, addr as *mut u8, len);
        } else {
            core::ptr::copy_nonoverlapping(addr as *const u8, buf, len);
        }
    }
    Ok(())
}

/// A checked copy where process_vm_readv/writev are refused (seccomp): the
/// bytes go through a pipe, whose write(2) reads the source and read(2)
/// writes the destination with the kernel's own user-copy checks, so a
/// user address that cannot be read (or written) is EFAULT, not a crash.
/// None where no pipe can be made (out of descriptors).
fn through_pipe(addr: u64, buf: *mut u8, len: usize, write: bool) -> Option<Result<()>> {
    let mut fds = [0; 2];
    // Non-blocking: a pipe smaller than a chunk (a user past its pipe
    // pages, 8 KiB) takes part of a write, where a blocking write would
    // wait for ever for the reader, which is this thread.
    // SAFETY: pipe2 writes two descriptors into `fds`, which we own and close below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return None;
    }
    // SAFETY: both were just made by pipe2 and are owned here only.
    let (rd, wr) = unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
    let (from, to) = if write { (buf as u64, addr) } else { (addr, buf as u64) };
    let mut done = 0;
    while done < len {
        // A pipe holds 64 KiB by default: never more in flight.
        let n = (len - done).min(64 << 10);
        // SAFETY: the kernel checks the user side of each copy (EFAULT);
        // our own side is `buf`, valid for `len` bytes.
        let w = unsafe { libc::write(wr.as_raw_fd(), (from + done as u64) as *const libc::c_void, n) };
        if w <= 0 {
            return Some(Err(Errno::EFAULT));
        }
        // SAFETY: as above, for the destination.
        let r = unsafe { libc::read(rd.as_raw_fd(), (to + done as u64) as *mut libc::c_void, w as usize) };
        if r != w {
            return Some(Err(Errno::EFAULT));
        }
        done += w as usize;
    }
    Some(Ok(()))
}

/// Reads a `T` from user memory.
pub fn read<T: Copy>(addr: u64) -> Result<T> {
    let mut v = MaybeUninit::<T>::uninit();
    transfer(addr, v.as_mut_ptr() as *mut u8, size_of::<T>(), false, false)?;
    // SAFETY: fully written by a successful transfer; T is plain data.
    Ok(unsafe { v.assume_init() })
}

/// Reads `n` consecutive `T`s.
pub fn read_array<T: Copy>(addr: u64, n: usize) -> Result<Vec<T>> {
    let bytes = n.checked_mul(size_of::<T>()).ok_or(Errno::EFAULT)?;
    let mut v: Vec<T> = Vec::with_capacity(n);
    transfer(addr, v.as_mut_ptr() as *mut u8, bytes, false, false)?;
    // SAFETY: `bytes` bytes were written; T is plain data.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// Writes a `T` to user memory.
pub fn write<T: Copy>(addr: u64, v: &T) -> Result<()> {
    transfer(addr, v as *const T as *mut u8, size_of::<T>(), true, false)
}

/// Writes raw bytes to user memory.
pub fn write_bytes(addr: u64, bytes: &[u8]) -> Result<()> {
    transfer(addr, bytes.as_ptr() as *mut u8, bytes.len(), true, false)
}

/// Reads `len` bytes of an ioctl's argument struct into `buf` (`trusted`).
pub fn read_arg(addr: u64, buf: &mut [u8]) -> Result<()> {
    transfer(addr, buf.as_mut_ptr(), buf.len(), false, TRUSTED.with(|t| t.get()))
}

/// Writes an ioctl's argument struct back (`trusted`).
pub fn write_arg(addr: u64, bytes: &[u8]) -> Result<()> {
    transfer(addr, bytes.as_ptr() as *mut u8, bytes.len(), true, TRUSTED.with(|t| t.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_faults() {
        let mut x: u64 = 41;
        let a = &mut x as *mut u64 as u64;
        assert_eq!(read::<u64>(a), Ok(41));
        write(a, &42u64).unwrap();
        assert_eq!(x, 42);
        assert_eq!(read::<u64>(0), Err(Errno::EFAULT));
        assert_eq!(read::<u64>(8), Err(Errno::EFAULT));
        assert_eq!(write(0x10, &1u32), Err(Errno::EFAULT));
        let v = [1u32, 2, 3];
        assert_eq!(read_array::<u32>(v.as_ptr() as u64, 3).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn unmapped_user_memory_is_efault() {
        // SAFETY: map one page, unmap it, and probe the now-unmapped address.
        let p = unsafe {
            libc::mmap(core::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: unmaps the page mapped just above, which nothing else uses.
        unsafe { libc::munmap(p, 4096) };
        if MODE.load(Ordering::Relaxed) != DIRECT {
            assert_eq!(read::<u64>(p as u64), Err(Errno::EFAULT));
        }
        // Where process_vm_readv is refused, the pipe checks it.
        let mut x = 0u64;
        assert_eq!(through_pipe(p as u64, &mut x as *mut u64 as *mut u8, 8, false), Some(Err(Errno::EFAULT)));
        assert_eq!(through_pipe(p as u64, &mut x as *mut u64 as *mut u8, 8, true), Some(Err(Errno::EFAULT)));
        let mut y = 7u64;
        assert_eq!(through_pipe(&mut y as *mut u64 as u64, &mut x as *mut u64 as *mut u8, 8, false), Some(Ok(())));
        assert_eq!(x, 7);
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut out = vec![0u8; big.len()];
        assert_eq!(through_pipe(big.as_ptr() as u64, out.as_mut_ptr(), big.len(), false), Some(Ok(())));
        assert_eq!(out, big);
    }
}
