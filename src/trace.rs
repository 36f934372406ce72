//! `XESVM_TRACE=path`: the library writes its own events as Chrome
//! trace-event JSON (Perfetto, chrome://tracing) on the wall clock, in a
//! real process: a span per placement call that issued ioctls and per
//! eviction, and an instant per event the log reports at `info` (retries,
//! fallbacks, pins, evictions, dead devices, ignored ENOLINK), whatever the
//! log level. The file is a JSON array written as events happen; its
//! closing bracket is optional in the format, so a process that dies
//! leaves a readable trace.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::OnceLock;

use parking_lot::Mutex;

struct Sink {
    out: Mutex<(BufWriter<File>, bool)>,
    t0: u64,
    pid: u32,
}

static SINK: OnceLock<Option<Sink>> = OnceLock::new();
/// Why XESVM_TRACE is not traced into, until the log takes it.
static REFUSAL: Mutex<Option<String>> = Mutex::new(None);

/// Why the trace file named by XESVM_TRACE could not be created, once.
pub fn take_refusal() -> Option<String> {
    REFUSAL.lock().take()
}

fn sink() -> Option<&'static Sink> {
    if let Some(s) = SINK.get() {
        return s.as_ref();
    }
    // Why it is not tracing is kept for the log to report (the log sits
    // above the trace: it feeds it, and says when it cannot).
    let mut refused = None;
    let s = SINK.get_or_init(|| {
        let path = crate::env::var_os("XESVM_TRACE")?;
        let f = match create_new(&path) {
            Ok(f) => f,
            Err(e) => {
                refused = Some(format!("XESVM_TRACE={}: not tracing: {e}", path.to_string_lossy()));
                return None;
            }
        };
        let mut w = BufWriter::new(f);
        w.write_all(b"[\n").ok()?;
        let pid = std::process::id();
        let _ = writeln!(w, r#"{{"ph":"M","name":"process_name","pid":{pid},"tid":0,"args":{{"name":"xesvm (wall clock)"}}}}"#);
        let _ = w.flush();
        Some(Sink { out: Mutex::new((w, true)), t0: crate::driver::monotonic_ns(), pid })
    });
    if let Some(m) = refused {
        *REFUSAL.lock() = Some(m);
    }
    s.as_ref()
}

/// Creates the trace file: `%p` in the path becomes the process id; only a
/// new file is written (O_EXCL: never truncating or appending to a file the
/// library did not create, and never through a symbolic link), mode 0600,
/// close-on-exec.
fn create_new(path: &std::ffi::OsStr) -> std::io::Result<File> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let pid = std::process::id().to_string();
    let mut p = Vec::with_capacity(path.len() + 8);
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && b.get(i + 1) == Some(&b'p') {
            p.extend_from_slice(pid.as_bytes());
            i += 2;
        } else {
            p.push(b[i]);
            i += 1;
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(std::ffi::OsStr::from_bytes(&p))
}

/// Whether the library writes a trace (read once from the environment).
pub fn on() -> bool {
    sink().is_some()
}

/// Nanoseconds on the trace's clock (monotonic).
pub fn now() -> u64 {
    crate::driver::monotonic_ns()
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A small id per thread (its track in the trace).
fn tid() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    thread_local! {
        static TID: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TID.with(|t| *t)
}

fn write(s: &Sink, event: String) {
    let mut g = s.out.lock();
    let _ = g.0.write_all(b",");
    let _ = g.0.write_all(event.as_bytes());
    let _ = g.0.write_all(b"\n");
    let _ = g.0.flush();
}

/// A span `[start_ns, end_ns)` named `name`, with a `detail` string.
pub fn span(name: &str, start_ns: u64, end_ns: u64, detail: &str) {
    if let Some(s) = sink() {
        let ts = start_ns.saturating_sub(s.t0) as f64 / 1000.0;
        let dur = end_ns.saturating_sub(start_ns) as f64 / 1000.0;
        let e = format!(
            r#"{{"ph":"X","name":{},"pid":{},"tid":{},"ts":{ts:.3},"dur":{dur:.3},"args":{{"detail":{}}}}}"#,
            json_str(name),
            s.pid,
            tid(),
            json_str(detail)
        );
        write(s, e);
    }
}

/// What kind of event a log line reports (the instant's name).
pub fn event_name(line: &str) -> &'static str {
    const KINDS: [(&str, &str); 8] = [
        ("fell back", "fallback"),
        ("pinned", "pin"),
        ("retrying", "retry"),
        ("restarting", "retry"),
        ("counted as EBUSY", "unverified prefetch"),
        ("evict", "eviction"),
        ("is gone", "dead device"),
        ("ENOLINK", "enolink"),
    ];
    KINDS.iter().find(|(k, _)| line.contains(k)).map_or("event", |(_, n)| n)
}

/// An instant event carrying one log line.
pub fn instant(name: &str, line: &str) {
    if let Some(s) = sink() {
        let ts = now().saturating_sub(s.t0) as f64 / 1000.0;
        let e = format!(
            r#"{{"ph":"i","s":"t","name":{},"pid":{},"tid":{},"ts":{ts:.3},"args":{{"line":{}}}}}"#,
            json_str(name),
            s.pid,
            tid(),
            json_str(line)
        );
        write(s, e);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped_for_json() {
        assert_eq!(super::json_str("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }
}
