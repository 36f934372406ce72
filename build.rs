//! Generates include/xesvm.h with cbindgen, gives the shared library a soname
//! carrying the ABI major version, and writes an uninstalled `xesvm.pc` for
//! the build tree (`target/<profile>/pkgconfig`).
//!
//! The header is always generated into OUT_DIR; it is copied over the
//! committed include/xesvm.h only outside CI (`CI` unset), so that in CI a
//! stale committed header makes `tests/header.rs` fail instead of being
//! silently refreshed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The ABI major version, carried in the soname (`libxesvm.so.<major>`).
const ABI_MAJOR: &str = "0";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");

    let version = env::var("CARGO_PKG_VERSION").unwrap();
    #[cfg(feature = "header")]
    generate_header(&manifest, &out, &version);

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libxesvm.so.{ABI_MAJOR}");
    }

    // OUT_DIR is <target>/<profile>/build/xesvm-<hash>/out.
    if let Some(profile_dir) = out.ancestors().nth(3) {
        write_uninstalled_pc(profile_dir, &manifest, &version);
    }
}

/// include/xesvm.h from the crate (feature `header`).
#[cfg(feature = "header")]
fn generate_header(manifest: &Path, out: &Path, version: &str) {
    let mut config = cbindgen::Config::from_file(manifest.join("cbindgen.toml")).expect("cbindgen.toml");
    // Version macros from Cargo's version, so C code can test at compile time
    // what svm_version() reports at run time.
    let num = |k: &str| env::var(k).unwrap().parse::<u32>().unwrap();
    let (major, minor, patch) = (num("CARGO_PKG_VERSION_MAJOR"), num("CARGO_PKG_VERSION_MINOR"), num("CARGO_PKG_VERSION_PATCH"));
    config.after_includes = Some(format!(
        "\n/** The library version this header belongs to (svm_version() reports the\n * linked library's), and the ABI major version in the soname. */\n\
         #define XESVM_VERSION_MAJOR {major}\n#define XESVM_VERSION_MINOR {minor}\n#define XESVM_VERSION_PATCH {patch}\n\
         #define XESVM_VERSION_STRING \"{version}\"\n\
         /** MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */\n\
         #define XESVM_VERSION_NUMBER {}\n#define XESVM_ABI_VERSION {ABI_MAJOR}\n\n\
         /** The simulated Xe driver's API (svm_sim_*, SVM_DRIVER_SIM's helpers) is\n * declared unless XESVM_NO_SIM is defined: define it when linking a\n * library built without the simulator (cargo's `--no-default-features`),\n * which exports none of it. */\n\
         #if !defined(XESVM_NO_SIM) && !defined(XESVM_SIM)\n#define XESVM_SIM 1\n#endif\n",
        major * 10000 + minor * 100 + patch
    ));
    let generated = out.join("xesvm.h");
    cbindgen::Builder::new()
        .with_crate(manifest)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/xesvm.h")
        .write_to_file(&generated);
    if env::var_os("CI").is_none() {
        copy_if_changed(&generated, &manifest.join("include/xesvm.h"));
    }
}

#[cfg(feature = "header")]
fn copy_if_changed(from: &Path, to: &Path) {
    let new = fs::read(from).unwrap();
    if fs::read(to).ok().as_deref() != Some(&new[..]) {
        fs::write(to, new).unwrap();
    }
}

/// A `.pc` whose paths point into the build tree, plus the soname link the
/// loader looks for, so `cc x.c $(pkg-config --cflags --libs xesvm)` works
/// before any install.
fn write_uninstalled_pc(profile_dir: &Path, manifest: &Path, version: &str) {
    let pc_dir = profile_dir.join("pkgconfig");
    fs::create_dir_all(&pc_dir).unwrap();
    let template = fs::read_to_string(manifest.join("pkgconfig/xesvm.pc.in")).unwrap();
    let pc = template
        .replace("@PREFIX@", &manifest.display().to_string())
        .replace("@LIBDIR@", &profile_dir.display().to_string())
        .replace("@INCLUDEDIR@", &manifest.join("include").display().to_string())
        .replace("@VERSION@", version);
    copy_if_changed_str(&pc, &pc_dir.join("xesvm.pc"));
    println!("cargo:rerun-if-changed=pkgconfig/xesvm.pc.in");
    let link = profile_dir.join(format!("libxesvm.so.{ABI_MAJOR}"));
    if fs::symlink_metadata(&link).is_err() {
        let _ = std::os::unix::fs::symlink("libxesvm.so", &link);
    }
}

fn copy_if_changed_str(s: &str, to: &Path) {
    if fs::read_to_string(to).ok().as_deref() != Some(s) {
        fs::write(to, s).unwrap();
    }
}
