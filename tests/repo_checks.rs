//! Checks of the repository itself, in one test binary: every document
//! the code cites exists (`docs_cited`), and every C export is built the
//! one way (`abi_exports`).

/// Every document the code cites is in the repository: each
/// `docs/NAME.md §N` names a file under docs/ with a heading numbered N, and
/// each `docs/design.md, "Title"` a heading of that title. A citation that
/// points nowhere fails here, not in a reader's hands.
mod docs_cited {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    sources(&p, out);
                }
            } else if p.extension().is_some_and(|x| ["rs", "c", "h", "md", "sh", "toml"].contains(&x.to_str().unwrap_or(""))) {
                out.push(p);
            }
        }
    }

    /// The section numbers and titles of a markdown file's headings.
    fn headings(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut numbers, mut titles) = (BTreeSet::new(), BTreeSet::new());
        for line in text.lines() {
            let Some(h) = line.strip_prefix('#') else { continue };
            let h = h.trim_start_matches('#').trim();
            let first = h.split_whitespace().next().unwrap_or("");
            let num = first.trim_end_matches('.');
            if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit() || c == '.') {
                numbers.insert(num.to_string());
                titles.insert(h[first.len()..].trim().to_string());
            } else {
                titles.insert(h.to_string());
            }
        }
        (numbers, titles)
    }

    #[test]
    fn every_cited_document_and_section_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for d in ["src", "tools/src", "tests", "capi-tests", "include", "fuzz", "examples", "scripts", "docs"] {
            sources(&root.join(d), &mut files);
        }
        files.push(root.join("README.md"));
        files.retain(|f| !f.ends_with("tests/repo_checks.rs"));
        let mut cited = 0;
        let mut missing = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("docs/") {
                rest = &rest[i + 5..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
                if !rest[name.len()..].starts_with(".md") || name.is_empty() {
                    continue;
                }
                let after = &rest[name.len() + 3..];
                let doc = root.join("docs").join(format!("{name}.md"));
                let Ok(body) = std::fs::read_to_string(&doc) else {
                    missing.push(format!("{}: docs/{name}.md does not exist", f.display()));
                    continue;
                };
                cited += 1;
                let (numbers, titles) = headings(&body);
                let after = after.trim_start_matches('`');
                if let Some(s) = after.strip_prefix(" §") {
                    let n: String = s.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
                    let n = n.trim_end_matches('.');
                    if !n.is_empty() && !numbers.contains(n) {
                        missing.push(format!("{}: docs/{name}.md has no §{n}", f.display()));
                    }
                } else if let Some(s) = after.strip_prefix(", \"").or_else(|| after.strip_prefix(", \u{201c}")) {
                    let t: String = s.chars().take_while(|&c| c != '"' && c != '\u{201d}').collect();
                    // A title wrapped over comment lines: join them.
                    let t = t.split('\n').map(|l| l.trim().trim_start_matches(['/', '!', '*', '#']).trim()).collect::<Vec<_>>().join(" ");
                    if name == "design" && !titles.contains(t.as_str()) {
                        missing.push(format!("{}: docs/{name}.md has no section \"{t}\"", f.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "citations pointing nowhere:\n{}", missing.join("\n"));
        assert!(cited > 100, "only {cited} citations found: is the scan broken?");
    }
}

/// Every function the C ABI exports is built the same way: `#[no_mangle]`,
/// `extern "C"`, returning through `ffi::guard` under its own name (the
/// panic guard and the thread's error slot), or one of the few that cannot
/// fail and hand out a static string. cbindgen reads the functions as
/// written (it does not expand macros on a stable toolchain), so the shape
/// is kept by this check rather than by an export macro.
mod abi_exports {
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
}
