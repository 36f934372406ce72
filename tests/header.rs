//! The committed include/xesvm.h must be what cbindgen generates from the
//! sources now (build.rs writes the fresh one into OUT_DIR).
#![cfg(feature = "header")]

#[test]
fn committed_header_is_current() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/xesvm.h"));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/xesvm.h"))
        .expect("include/xesvm.h is missing: build outside CI once and commit it");
    assert!(
        fresh == committed,
        "include/xesvm.h is stale: run `cargo build` outside CI (CI unset) and commit the header"
    );
}
