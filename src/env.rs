//! The library's environment knobs (`XESVM_LOG`, `XESVM_PAGEMAP`,
//! `XESVM_TRACE`), read with `secure_getenv` semantics: a library linked
//! into every process of a GPU runtime ignores them under secure execution
//! (`AT_SECURE`: setuid, setgid or file capabilities), as glibc's own knobs
//! and Mesa's do, so an unprivileged parent cannot steer what a privileged
//! child logs, reads or writes.

use std::ffi::OsString;

/// Whether the process runs under secure execution (`getauxval(AT_SECURE)`).
pub fn secure_execution() -> bool {
    // SAFETY: getauxval reads the process's auxiliary vector; no pointers.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// The variable's value, or None when unset or under secure execution.
pub fn var_os(name: &str) -> Option<OsString> {
    if secure_execution() {
        return None;
    }
    std::env::var_os(name)
}

/// [`var_os`] as UTF-8 (None when not UTF-8).
pub fn var(name: &str) -> Option<String> {
    var_os(name).and_then(|v| v.into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test process is not setuid: knobs are read. (The AT_SECURE side is
    /// tested from C, under a file capability, where the machine allows it.)
    #[test]
    fn knobs_are_read_outside_secure_execution() {
        assert!(!secure_execution());
        assert_eq!(var("PATH").is_some(), std::env::var("PATH").is_ok());
    }
}
