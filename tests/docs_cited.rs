//! Every document the code cites is in the repository: each
//! `docs/NAME.md §N` names a file under docs/ with a heading numbered N, and
//! each `docs/design.md, "Title"` a heading of that title. A citation that
//! points nowhere fails here, not in a reader's hands.

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
    files.retain(|f| !f.ends_with("tests/docs_cited.rs"));
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
