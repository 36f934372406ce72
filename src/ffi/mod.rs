//! The C ABI: handles, status codes, argument checks and the panic guard.
//!
//! Conventions (docs/design.md, "The C ABI"): every call returns `int`, 0 or a
//! negative errno; results come back through out-parameters; nothing unwinds
//! into C. A failed call also leaves a message for this thread, readable with
//! `svm_last_error()`. This module converts and checks; the work is done by
//! Rust APIs that are tested on their own.
//!
//! Safety contract of every exported function (stated once here, and in the
//! header's conventions): each pointer argument is NULL (refused with
//! -EINVAL where NULL is not allowed) or valid for what the documentation
//! says; handles come from their create call and are not used after their
//! destroy call.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

pub mod adopt;
pub mod context;
pub mod links;
pub mod batch;
pub mod launch;
pub mod placement;
pub mod range;
#[cfg(feature = "sim")]
pub mod sim;
pub mod types;

use core::ffi::{c_char, c_int};
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::Errno;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// An error as the C boundary reports it: an errno and what went wrong.
#[derive(Debug)]
pub(crate) struct Failure {
    pub errno: Errno,
    pub message: String,
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Self {
        Failure { errno, message: errno.to_string() }
    }
}

pub(crate) type FfiResult = Result<(), Failure>;

/// A failure with a message that names the bad argument.
pub(crate) fn invalid(message: impl Into<String>) -> Failure {
    Failure { errno: Errno::EINVAL, message: message.into() }
}

fn set_last_error(function: &str, message: &str, errno: Errno) {
    let text = format!("{function}: {message}").replace('\0', " ");
    // Bad input logs at debug with svm_last_error's text; other failures
    // were logged where they happened.
    if errno == Errno::EINVAL {
        crate::log!(crate::log::Level::Debug, "{text}");
    }
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::new(text).unwrap_or_default());
}

thread_local! {
    /// Whether this thread is inside an exported function's body (`guard`).
    static IN_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The panic inside one, "message (file:line)", until `guard`
    /// reports it.
    static PANIC_AT: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// A panic inside an exported function is the library's to report (its
/// log line, at the level the process or context chose, and
/// svm_last_error), not the Rust runtime's on stderr: a hook installed once
/// keeps those quiet and hands every other panic of the process to the
/// hook that was there before. A second panic before `guard` caught the
/// first (a drop that panics while unwinding: the process aborts) goes to
/// that hook too, after the first's text, so that nothing is lost.
fn quiet_panics_in_calls() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // set_hook panics on a panicking thread: install on a later call.
    if HOOK.is_completed() || std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(|c| c.get()) {
                let payload = info.payload();
                let what = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
                let at = info.location().map(|l| format!(" ({}:{})", l.file(), l.line())).unwrap_or_default();
                let text = format!("{}{at}", what.unwrap_or("unknown panic"));
                match PANIC_AT.try_with(|p| p.replace(Some(text))) {
                    Ok(None) => return, // `guard` reports it
                    Ok(Some(first)) => eprintln!("xesvm: internal error, and another while unwinding from it: {first}"),
                    Err(_) => {} // this thread's locals are gone: the hook before says it
                }
            }
            before(info);
        }));
    });
}

/// Runs the body of an exported function: converts its result to a status,
/// records the message of a failure, and turns a panic into
/// `-ENOTRECOVERABLE` instead of unwinding into C.
pub(crate) fn guard(function: &'static str, body: impl FnOnce() -> FfiResult) -> c_int {
    quiet_panics_in_calls();
    let outer = IN_CALL.with(|c| c.replace(true));
    let caught = catch_unwind(AssertUnwindSafe(body));
    IN_CALL.with(|c| c.set(outer));
    let status = match caught {
        Ok(Ok(())) => 0,
        Ok(Err(f)) => {
            set_last_error(function, &f.message, f.errno);
            f.errno.to_status()
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // The hook's text has the place; without it, the payload's.
            let what = PANIC_AT.try_with(|p| p.take()).ok().flatten().unwrap_or(what);
            crate::log!(crate::log::Level::Error, "{function}: internal error caught at the C boundary: {what}");
            set_last_error(function, &format!("internal error caught at the C boundary: {what}"), Errno::ENOTRECOVERABLE);
            Errno::ENOTRECOVERABLE.to_status()
        }
    };
    // A context's log handler applies for the call only, its error line
    // included (see `context`): back to the process-wide one.
    crate::log::leave();
    status
}

/// `Some(&mut *p)` for a non-NULL out-pointer, else an EINVAL naming it.
///
/// # Safety
/// A non-NULL `p` must point to writable memory for a `T`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: caller's contract for non-NULL pointers.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("{name} is NULL")))
}

/// A borrowed UTF-8 string argument, or EINVAL naming it.
///
/// # Safety
/// A non-NULL `p` must point to a NUL-terminated string.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(invalid(format!("{name} is NULL")));
    }
    // SAFETY: caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| invalid(format!("{name} is not UTF-8")))
}

/// `svm_set_log_level` / log handler level: nothing.
pub const SVM_LOG_OFF: c_int = 0;
/// Errors the library could not handle (a panic caught at the boundary).
pub const SVM_LOG_ERROR: c_int = 1;
/// The default level.
pub const SVM_LOG_WARN: c_int = 2;
/// Each retry, fallback, pin, eviction, dead device and ignored ENOLINK.
pub const SVM_LOG_INFO: c_int = 3;
/// Also bad input, with the text svm_last_error() gives.
pub const SVM_LOG_DEBUG: c_int = 4;
/// Everything, each ioctl included.
pub const SVM_LOG_TRACE: c_int = 5;

/// Receives one log line: its `SVM_LOG_*` level, the NUL-terminated text
/// (valid during the call only; "xesvm: info: ..."), and the `user` pointer
/// given to svm_set_log_handler. May be called from any thread that calls
/// the library, at any time. It may call back into the library (a line
/// logged during a call is handed over once the call holds no lock), but
/// not set a log handler: that waits for the lines being written, its own
/// among them, and is refused with -EDEADLK.
pub type svm_log_handler = Option<unsafe extern "C" fn(level: c_int, line: *const c_char, user: *mut core::ffi::c_void)>;

/// Routes the library's log lines to `handler` (NULL: back to stderr, the
/// default). The level still decides what is logged (XESVM_LOG, or
/// svm_set_log_level). Thread-safe; lines being written finish first, and
/// once it returns the previous handler is not called again (its `user`
/// may be freed). A line logged during a call goes to the handler in force
/// when the call returns. -EDEADLK from inside a handler.
#[no_mangle]
pub extern "C" fn svm_set_log_handler(handler: svm_log_handler, user: *mut core::ffi::c_void) -> c_int {
    guard("svm_set_log_handler", || {
        refuse_in_handler()?;
        crate::log::set_handler(handler, user);
        Ok(())
    })
}

/// -EDEADLK from a log handler the library called: the setter waits for
/// the lines being written, its own among them.
pub(super) fn refuse_in_handler() -> FfiResult {
    if crate::log::in_handler() {
        return Err(Failure { errno: Errno::EDEADLK, message: "called from a log handler, which it would wait for".into() });
    }
    Ok(())
}

/// Sets the log level (`SVM_LOG_*`), overriding XESVM_LOG. -EINVAL for an
/// unknown level. Thread-safe.
#[no_mangle]
pub extern "C" fn svm_set_log_level(level: c_int) -> c_int {
    guard("svm_set_log_level", || {
        let l = u8::try_from(level).ok().and_then(crate::log::Level::from_u8).ok_or_else(|| invalid(format!("log level {level} is not an SVM_LOG_* value")))?;
        crate::log::set_level(l);
        Ok(())
    })
}

/// The library version, e.g. `"0.1.0"`. The string is static; never free it.
#[no_mangle]
pub extern "C" fn svm_version() -> *const c_char {
    static V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr() as *const c_char
}

/// A static, human-readable message for a status or errno (`-EBUSY` and
/// `EBUSY` give the same text; 0 gives "success"; unknown codes give
/// "unknown error"). Never NULL, never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn svm_strerror(status: c_int) -> *const c_char {
    Errno(status.checked_abs().unwrap_or(i32::MAX)).message_cstr().as_ptr()
}

/// The message of the last call on this thread that failed: which function,
/// and what was wrong ("svm_alloc_vram: size is zero"). Empty when no call
/// has failed yet on this thread. Valid until the next failing call on this
/// thread; never free it.
#[no_mangle]
pub extern "C" fn svm_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: svm_last_error returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(svm_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn guard_reports_errno_message_and_catches_panics() {
        assert_eq!(guard("f", || Ok(())), 0);
        assert_eq!(guard("svm_x", || Err(invalid("size is zero"))), -libc::EINVAL);
        assert_eq!(last(), "svm_x: size is zero");
        let st = guard("svm_y", || panic!("boom"));
        assert_eq!(st, -libc::ENOTRECOVERABLE);
        assert!(last().contains("svm_y") && last().contains("boom"));
        assert!(last().contains("src/ffi/mod.rs:"), "where it happened: {}", last());
    }

    /// A panic the boundary cannot catch (a drop panicking while unwinding
    /// from the first: the process aborts) is not kept quiet: both say
    /// what and where on stderr. Run in a child process, which aborts.
    #[test]
    fn a_panic_that_aborts_inside_a_call_is_still_told() {
        if std::env::var_os("XESVM_ABORTING_CHILD").is_some() {
            struct PanicsOnDrop;
            impl Drop for PanicsOnDrop {
                fn drop(&mut self) {
                    panic!("second-in-drop");
                }
            }
            guard("svm_z", || {
                let _d = PanicsOnDrop;
                panic!("first-boom")
            });
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ffi::tests::a_panic_that_aborts_inside_a_call_is_still_told", "--nocapture", "--test-threads=1"])
            .env("XESVM_ABORTING_CHILD", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the child aborts");
        assert!(err.contains("first-boom") && err.contains("second-in-drop"), "both panics told: {err}");
    }

    #[test]
    fn strerror_accepts_both_signs_and_unknown_codes() {
        // SAFETY: static NUL-terminated strings.
        let s = |c| unsafe { CStr::from_ptr(svm_strerror(c)) }.to_str().unwrap();
        assert_eq!(s(-libc::EBUSY), s(libc::EBUSY));
        assert!(s(-libc::ENOLINK).contains("ENOLINK"));
        assert_eq!(s(0), "success");
        assert_eq!(s(-123456), "unknown error");
        assert_eq!(s(i32::MIN), "unknown error");
    }

    #[test]
    fn version_matches_crate() {
        // SAFETY: static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(svm_version()) }.to_str().unwrap();
        assert_eq!(v, crate::VERSION);
    }

    #[test]
    fn out_rejects_null() {
        // SAFETY: NULL is the case `out` checks.
        let e = unsafe { out::<u32>(core::ptr::null_mut(), "result") }.unwrap_err();
        assert_eq!((e.errno, e.message.as_str()), (Errno::EINVAL, "result is NULL"));
    }
}
