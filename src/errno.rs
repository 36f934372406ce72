//! Errno values as every layer passes them: a positive kernel errno inside
//! `Errno`, turned into `-errno` only at the C boundary.

use core::fmt;

/// A positive errno, as the kernel returns it (or as the library chooses one).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:path, $msg:expr;)*) => {
        impl Errno {
            $(#[doc = concat!("`", stringify!($name), "`.")] pub const $name: Errno = Errno($val);)*

            /// The errno's symbolic name (`"EBUSY"`), or `None` when unknown.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $(v if v == $val => Some(stringify!($name)),)* _ => None }
            }

            /// A short message for the errno, NUL-terminated so the C ABI can hand it out.
            pub fn message_cstr(self) -> &'static core::ffi::CStr {
                match self.0 {
                    0 => c"success",
                    $(v if v == $val => $msg,)*
                    _ => c"unknown error",
                }
            }
        }
    };
}

errnos! {
    EPERM = libc::EPERM, c"operation not permitted (EPERM)";
    ENOENT = libc::ENOENT, c"no such file or entry: a missing device node, or an unknown object, VM or CPU mapping (ENOENT)";
    EINTR = libc::EINTR, c"interrupted by a signal (EINTR)";
    EIO = libc::EIO, c"I/O error: the device or driver reply was malformed (EIO)";
    ENXIO = libc::ENXIO, c"no such device memory: the tile has no VRAM (ENXIO)";
    EBADF = libc::EBADF, c"bad handle: a closed device, its pagemaps, or a bad fd (EBADF)";
    EAGAIN = libc::EAGAIN, c"try again (EAGAIN)";
    ENOMEM = libc::ENOMEM, c"out of memory: device or system memory exhausted (ENOMEM)";
    EACCES = libc::EACCES, c"access denied: GPU atomics not allowed or not possible on this range (EACCES)";
    EFAULT = libc::EFAULT, c"bad address (EFAULT)";
    EBUSY = libc::EBUSY, c"busy: migration raced or range still in use (EBUSY)";
    EALREADY = libc::EALREADY, c"already in progress or done (EALREADY)";
    EEXIST = libc::EEXIST, c"already exists (EEXIST)";
    ENODEV = libc::ENODEV, c"no such device, or the device is gone (ENODEV)";
    ENOTDIR = libc::ENOTDIR, c"not a directory: a path through something else (ENOTDIR)";
    EISDIR = libc::EISDIR, c"is a directory, not a device node or file (EISDIR)";
    EINVAL = libc::EINVAL, c"invalid argument (EINVAL)";
    ENFILE = libc::ENFILE, c"too many open files in the system (ENFILE)";
    EMFILE = libc::EMFILE, c"too many open files in this process (EMFILE)";
    ENOSPC = libc::ENOSPC, c"no space left: memory region full, the ranges changed between calls, or no free device slot (ENOSPC)";
    EROFS = libc::EROFS, c"read-only file system (EROFS)";
    ERANGE = libc::ERANGE, c"result out of range (ERANGE)";
    EDEADLK = libc::EDEADLK, c"would deadlock: a log handler setting a log handler (EDEADLK)";
    ENAMETOOLONG = libc::ENAMETOOLONG, c"file name too long (ENAMETOOLONG)";
    ENOTTY = libc::ENOTTY, c"inappropriate ioctl for device (ENOTTY)";
    ENOSYS = libc::ENOSYS, c"function not implemented (ENOSYS)";
    ENODATA = libc::ENODATA, c"no data: prefetch could not migrate (ENODATA)";
    ETIME = libc::ETIME, c"timer expired (ETIME)";
    ENOLINK = libc::ENOLINK, c"no link between the devices (ENOLINK)";
    ELOOP = libc::ELOOP, c"too many levels of symbolic links (ELOOP)";
    EPROTO = libc::EPROTO, c"protocol error (EPROTO)";
    EOVERFLOW = libc::EOVERFLOW, c"value too large: range overflows the address space (EOVERFLOW)";
    ENOBUFS = libc::ENOBUFS, c"no buffer space (ENOBUFS)";
    EOPNOTSUPP = libc::EOPNOTSUPP, c"operation not supported (EOPNOTSUPP)";
    ETIMEDOUT = libc::ETIMEDOUT, c"timed out (ETIMEDOUT)";
    ECANCELED = libc::ECANCELED, c"canceled: the device is wedged (ECANCELED)";
    ENOTRECOVERABLE = libc::ENOTRECOVERABLE, c"state not recoverable: an internal error was caught (ENOTRECOVERABLE)";
    ECHILD = libc::ECHILD, c"context of the parent process: after fork, create a new context in the child (ECHILD)";
}

impl Errno {
    /// The calling thread's `errno` after a failed libc call.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }

    /// The C ABI's status for this errno: its negation.
    pub fn to_status(self) -> i32 {
        -self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

/// An errno as log lines print it: its name ("ENOMEM"), else its number.
pub struct Short(Errno);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0 .0),
        }
    }
}

impl Errno {
    /// Its short form for log lines.
    pub fn short(self) -> Short {
        Short(self)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            // One the library does not name (passed through from a
            // syscall): the C library's text (strerror_r) and its number.
            None if self.0 != 0 => write!(f, "{}", std::io::Error::from_raw_os_error(self.0)),
            _ => f.write_str(self.message_cstr().to_str().unwrap_or("?")),
        }
    }
}

impl std::error::Error for Errno {}

/// A result whose error is an [`Errno`].
pub type Result<T, E = Errno> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages() {
        assert_eq!(Errno::EBUSY.name(), Some("EBUSY"));
        assert_eq!(format!("{:?}", Errno::ENOLINK), "ENOLINK");
        assert!(Errno::ENOLINK.to_string().contains("ENOLINK"));
        assert_eq!(Errno(9999).name(), None);
        assert_eq!(Errno(9999).message_cstr(), c"unknown error");
        assert_eq!(Errno::EINVAL.to_status(), -libc::EINVAL);
        // What opening a path passes through is named (svm_strerror).
        for e in [Errno::EISDIR, Errno::ENOTDIR, Errno::EMFILE, Errno::ENFILE, Errno::ENAMETOOLONG, Errno::ELOOP, Errno::EROFS] {
            assert!(e.name().is_some() && e.message_cstr() != c"unknown error", "{e:?}");
        }
        // One it does not name still says something in a message: the C
        // library's text and the number.
        let other = Errno(libc::EXDEV).to_string();
        assert!(other.contains(&libc::EXDEV.to_string()) && !other.contains("unknown error"), "{other}");
    }
}
