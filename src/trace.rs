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

fn sink() -> Option<&'static Sink> {
    SINK.get_or_init(|| {
        let path = std::env::var_os("XESVM_TRACE")?;
        let f = File::create(&path).ok()?;
        let mut w = BufWriter::new(f);
        w.write_all(b"[\n").ok()?;
        let pid = std::process::id();
        let _ = writeln!(w, r#"{{"ph":"M","name":"process_name","pid":{pid},"tid":0,"args":{{"name":"xesvm (wall clock)"}}}}"#);
        let _ = w.flush();
        Some(Sink { out: Mutex::new((w, true)), t0: crate::driver::monotonic_ns(), pid })
    })
    .as_ref()
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
