//! Every function the C ABI exports is built the same way: `#[no_mangle]`,
//! `extern "C"`, returning through `ffi::guard` under its own name (the
//! panic guard and the thread's error slot), or one of the few that cannot
//! fail and hand out a static string. cbindgen reads the functions as
//! written (it does not expand macros on a stable toolchain), so the shape
//! is kept by this check rather than by an export macro.

use std::path::Path;

/// Exports that only hand out static strings: nothing to guard.
const UNGUARDED: [&str; 3] = ["svm_version", "svm_strerror", "svm_last_error"];

#[test]
fn every_export_is_guarded_under_its_own_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut exports = 0;
    let mut wrong = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(at) = line.find("extern \"C\" fn ") else { continue };
            if !line.trim_start().starts_with("pub ") {
                continue;
            }
            let name: String = line[at + "extern \"C\" fn ".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            exports += 1;
            let attrs = lines[..i].iter().rev().take_while(|l| l.trim_start().starts_with("#[") || l.trim_start().starts_with("///"));
            if !attrs.clone().any(|l| l.contains("#[no_mangle]")) {
                wrong.push(format!("{}: {name} has no #[no_mangle]", path.display()));
            }
            let signature: String = lines[i..].iter().take_while(|l| !l.trim_end().ends_with('{')).chain(lines[i..].iter().find(|l| l.trim_end().ends_with('{'))).copied().collect();
            if !signature.contains("-> c_int") && !UNGUARDED.contains(&name.as_str()) {
                wrong.push(format!("{}: {name} does not return a status (c_int)", path.display()));
            }
            if UNGUARDED.contains(&name.as_str()) {
                continue;
            }
            // The body's first guard names this function.
            let body: String = lines[i..].iter().take(12).copied().collect::<Vec<_>>().join("\n");
            let want = format!("guard(\"{name}\"");
            if !body.contains(&want) {
                wrong.push(format!("{}: {name} does not run its body in {want}, ...)", path.display()));
            }
        }
    }
    assert!(exports >= 50, "only {exports} exports found: is the scan broken?");
    assert!(wrong.is_empty(), "exports built otherwise:\n{}", wrong.join("\n"));
}
