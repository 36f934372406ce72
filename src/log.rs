//! The library's log: one line per event (a retry, a fallback, a pin, an
//! eviction, a dead device, an ignored ENOLINK at `info`; bad input at
//! `debug`, with the text `svm_last_error` gives), to stderr or to a handler
//! the runtime sets (`svm_set_log_handler`).
//!
//! `XESVM_LOG=off|error|warn|info|debug|trace` sets the level (default
//! `warn`), read once. When an event's level is off, its cost is one relaxed
//! load: the [`log!`] macro checks [`enabled`] before it formats anything.
//! With `XESVM_TRACE` set, `info` events are captured whatever the level:
//! they become instants of the trace (`crate::trace`).

use std::ffi::{c_char, c_void, CString};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::RwLock;

/// Severity, most severe first. Values are the C `SVM_LOG_*` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Nothing.
    Off = 0,
    /// Errors the library could not handle.
    Error = 1,
    /// The default.
    Warn = 2,
    /// Retries, fallbacks, pins, evictions, dead devices.
    Info = 3,
    /// Also bad input.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl Level {
    /// The level of `SVM_LOG_*` value `v`.
    pub fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            0 => Level::Off,
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            5 => Level::Trace,
            _ => return None,
        })
    }

    /// A level by name (`off`, `error`, `warn`, `info`, `debug`, `trace`).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Level::Off,
            "error" | "1" => Level::Error,
            "warn" | "warning" | "2" => Level::Warn,
            "info" | "3" => Level::Info,
            "debug" | "4" => Level::Debug,
            "trace" | "5" => Level::Trace,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

const UNSET: u8 = u8::MAX;
/// The most verbose level anything wants: the log's, or `info` for a trace.
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);
/// The log's own level (what is printed or handed to the handler).
static LOG_LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// A runtime's log sink: `(level, line, user)`; the line is NUL-terminated
/// and valid only during the call.
pub type Handler = unsafe extern "C" fn(level: i32, line: *const c_char, user: *mut c_void);

#[derive(Clone, Copy)]
struct Sink {
    handler: Handler,
    user: usize,
}

/// The process-wide handler, per process (`fork::PerProcess`): a parent
/// thread inside a handler at fork holds the parent's lock for ever in the
/// child, which starts with the parent's handler where it can read it.
static SINK: crate::driver::fork::PerProcess<RwLock<Option<Sink>>> = crate::driver::fork::PerProcess::new();

/// This process's handler lock.
fn sink() -> &'static RwLock<Option<Sink>> {
    SINK.get(|parent| RwLock::new(parent.and_then(|p| p.try_read_recursive().and_then(|g| *g))))
}

/// A handler of one context's own (svm_context_set_log_handler): lines
/// logged during a call on that context go to it, not to the process-wide
/// one, so two runtimes in one process (Level Zero and OpenCL, each with its
/// context) each keep their own log.
#[derive(Default)]
pub struct ContextSink(RwLock<Option<Sink>>);

impl ContextSink {
    /// Sets this context's handler (None: the process-wide one).
    pub fn set(&self, handler: Option<Handler>, user: *mut c_void) {
        *self.0.write() = handler.map(|handler| Sink { handler, user: user as usize });
    }
}

thread_local! {
    /// The context whose call this thread is in (set at the C boundary).
    static SCOPE: std::cell::Cell<*const ContextSink> = const { std::cell::Cell::new(std::ptr::null()) };
    /// Lines for a runtime's handler logged inside a C call, with the scope
    /// they were logged in: handed over when the call returns ([`leave`]),
    /// with no lock of the library held, so a handler that calls back into
    /// the library (a range query, say) or blocks cannot deadlock it or
    /// stall other threads' placements.
    static PENDING: std::cell::RefCell<Vec<(*const ContextSink, i32, CString)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Handlers this thread is inside ([`deliver`]).
    static DELIVERING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Hands a line to the handler in force now for `scope` (its context's,
/// else the process-wide one), holding that handler's lock while it runs:
/// svm_set_log_handler waits for it ("lines being written finish first"),
/// and no handler is called with its user pointer once another replaced
/// it. The read is recursive, so a handler whose own call into the library
/// logs does not wait behind a writer queued meanwhile. False where no
/// handler is set any more (the caller writes the line to stderr).
fn deliver(scope: *const ContextSink, level: i32, line: &std::ffi::CStr) -> bool {
    DELIVERING.with(|d| d.set(d.get() + 1));
    let delivered = deliver_held(scope, level, line);
    DELIVERING.with(|d| d.set(d.get() - 1));
    delivered
}

/// Whether this thread is inside a log handler the library called: a
/// setter there would wait for its own handler to return (refused).
pub fn in_handler() -> bool {
    DELIVERING.with(|d| d.get() > 0)
}

fn deliver_held(scope: *const ContextSink, level: i32, line: &std::ffi::CStr) -> bool {
    // SAFETY: `scope` was set by `enter` from a context that lives for the
    // whole call, and lines are delivered before the call returns.
    if let Some(c) = unsafe { scope.as_ref() } {
        let g = c.0.read_recursive();
        if let Some(s) = *g {
            // SAFETY: the runtime's handler, as registered and still in
            // force (its lock held), given a NUL-terminated line.
            unsafe { (s.handler)(level, line.as_ptr(), s.user as *mut c_void) };
            return true;
        }
    }
    let g = sink().read_recursive();
    match *g {
        Some(s) => {
            // SAFETY: as above.
            unsafe { (s.handler)(level, line.as_ptr(), s.user as *mut c_void) };
            true
        }
        None => false,
    }
}

/// Lines this thread logs until [`leave`] go to `sink` where it has a
/// handler. The sink must outlive the call (a context outlives its calls).
#[inline]
pub fn enter(sink: &ContextSink) {
    SCOPE.with(|s| s.set(sink));
}

/// Back to the process-wide handler, and the lines the call logged handed
/// to their handlers now that it holds no lock.
#[inline]
pub fn leave() {
    SCOPE.with(|s| s.set(std::ptr::null()));
    if PENDING.with(|p| p.borrow().is_empty()) {
        return;
    }
    let lines = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for (scope, level, line) in lines {
        if !deliver(scope, level, &line) {
            let _ = writeln!(std::io::stderr().lock(), "{}", line.to_string_lossy());
        }
    }
}

/// What LEVEL must be for a log level `l`.
fn capture(l: u8) -> u8 {
    if tracing() {
        l.max(Level::Info as u8)
    } else {
        l
    }
}

/// Whether the library writes a trace file (XESVM_TRACE, `crate::trace`),
/// saying once, at warn, why not where the file could not be created.
#[inline]
pub fn tracing() -> bool {
    let on = crate::trace::on();
    if !on {
        if let Some(m) = crate::trace::take_refusal() {
            if enabled(Level::Warn) {
                emit(Level::Warn, format_args!("{m}"));
            }
        }
    }
    on
}

#[cold]
fn level_from_env() -> u8 {
    let l = crate::env::var("XESVM_LOG").and_then(|v| Level::parse(&v)).unwrap_or(Level::Warn) as u8;
    LOG_LEVEL.store(l, Ordering::Relaxed);
    // A level set meanwhile (svm_set_log_level) wins over the environment.
    match LEVEL.compare_exchange(UNSET, capture(l), Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => capture(l),
        Err(current) => current,
    }
}

/// Whether events of `level` are logged: one relaxed load once initialised.
#[inline]
pub fn enabled(level: Level) -> bool {
    let l = LEVEL.load(Ordering::Relaxed);
    let l = if l == UNSET { level_from_env() } else { l };
    level as u8 <= l
}

/// Sets the level (overrides XESVM_LOG).
pub fn set_level(level: Level) {
    LOG_LEVEL.store(level as u8, Ordering::Relaxed);
    LEVEL.store(capture(level as u8), Ordering::Relaxed);
}

/// The level in force.
pub fn level() -> Level {
    if LEVEL.load(Ordering::Relaxed) == UNSET {
        level_from_env();
    }
    Level::from_u8(LOG_LEVEL.load(Ordering::Relaxed)).unwrap_or(Level::Warn)
}

/// Routes lines to `handler` (None: back to stderr).
pub fn set_handler(handler: Option<Handler>, user: *mut c_void) {
    *sink().write() = handler.map(|handler| Sink { handler, user: user as usize });
}

/// Writes one line (call through [`log!`], which checks the level first).
#[cold]
pub fn emit(level: Level, args: std::fmt::Arguments<'_>) {
    let line = format!("xesvm: {}: {args}", level.name());
    if level <= Level::Info && crate::trace::on() {
        crate::trace::instant(crate::trace::event_name(&line), &line);
    }
    if level as u8 > LOG_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let scope = SCOPE.with(|s| s.get());
    // SAFETY: set by `enter` from a context that lives for the whole call.
    // Recursive reads: this thread may be inside a handler (a line its own
    // call into the library logs), whose lock a setter may be queued on.
    let scoped = unsafe { scope.as_ref() }.is_some_and(|c| c.0.read_recursive().is_some());
    if scoped || sink().read_recursive().is_some() {
        let c = CString::new(line.replace('\0', " ")).unwrap_or_default();
        if !scope.is_null() {
            // Inside a C call, possibly under its locks: at `leave`, to the
            // handler in force then.
            PENDING.with(|p| p.borrow_mut().push((scope, level as i32, c)));
            return;
        }
        if deliver(scope, level as i32, &c) {
            return;
        }
    }
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `log!(Level::Info, "format", args...)`: formats only when enabled.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::emit($level, format_args!($($arg)*));
        }
    };
}

/// A span as log lines write it: `[0x1000000000+8 MiB]`.
pub struct Span(pub u64, pub u64);

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, n) = (self.0, self.1);
        if n % (1 << 20) == 0 {
            write!(f, "[{s:#x}+{} MiB]", n >> 20)
        } else if n % 1024 == 0 {
            write!(f, "[{s:#x}+{} KiB]", n >> 10)
        } else {
            write!(f, "[{s:#x}+{n}]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("INFO"), Some(Level::Info));
        assert_eq!(Level::parse("nope"), None);
        assert!(Level::Error < Level::Info);
        assert_eq!(Span(0x1000, 8 << 20).to_string(), "[0x1000+8 MiB]");
        assert_eq!(Span(0x1000, 12288).to_string(), "[0x1000+12 KiB]");
    }
}
