//! `XESVM_TRACE=path`: the library writes its own events as Chrome
//! trace-event JSON on the wall clock. Its own test binary, so that the
//! environment is set before the library reads it.

use xesvm::sim::driver::SimDriver;
use xesvm::errno::Errno;
use xesvm::policy::{AllocFlags, Config, Context};
use xesvm::sim::{Injection, Point, Sim};
use xesvm::uapi::DRM_IOCTL_XE_VM_BIND;

#[test]
fn the_library_traces_placements_retries_and_fallbacks() {
    let path = std::env::temp_dir().join(format!("xesvm-trace-env-{}.json", std::process::id()));
    std::env::set_var("XESVM_TRACE", &path);
    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let dev = ctx.open_index(0).unwrap();
    let vram = ctx.pagemap(dev, 0).unwrap();
    ctx.alloc_vram(dev, 0x10_0000_0000, 2 << 20, vram, AllocFlags::default()).unwrap();
    sim.inject(Injection { request: DRM_IOCTL_XE_VM_BIND, ..Injection::count(Point::Ioctl, Errno::ENOMEM, 100) });
    let p = ctx.alloc_vram(dev, 0x10_0020_0000, 2 << 20, vram, AllocFlags::default()).unwrap();
    assert!(p.fell_back);
    sim.clear_injections();
    ctx.evict(0x10_0000_0000, 4 << 20).unwrap();

    // Created new, readable by the process's user only.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // The file is an open JSON array (its closing bracket is optional).
    let text = std::fs::read_to_string(&path).unwrap() + "]";
    std::fs::remove_file(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = v.as_array().unwrap();
    let has = |name: &str, ph: &str| events.iter().any(|e| e["name"] == name && e["ph"] == ph);
    assert!(has("alloc_vram", "X") && has("evict", "X"), "{text}");
    assert!(has("retry", "i") && has("fallback", "i"), "{text}");
    let fallback = events.iter().find(|e| e["name"] == "fallback").unwrap();
    assert!(fallback["args"]["line"].as_str().unwrap().contains("fell back to system"));
    for e in events.iter().filter(|e| e["ph"] != "M") {
        assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["tid"].as_u64().unwrap() > 0, "{e}");
    }
}
