//! Generates include/xesvm.h with cbindgen, gives the shared library a soname
//! carrying the ABI major version, and writes an uninstalled `.pc` for the
//! build tree (`target/<profile>/pkgconfig`).
//!
//! One crate, two artefacts (README, "Install"): built without the `sim`
//! feature it is the library a runtime ships, `libxesvm.so.1`, pkg-config
//! `xesvm`; built with it (the default: tests, benchmarks) it is the
//! simulator-enabled variant, soname `libxesvm-sim.so.1`, pkg-config
//! `xesvm-sim`, so the two never stand in for each other. Cargo names the
//! file `libxesvm.so` either way: the build tree gets `libxesvm-sim.so` and
//! `libxesvm-sim.so.1` links to it; scripts/install.sh installs it under the
//! variant's name, linked again with the version script `xesvm.map` (see
//! `main`).
//!
//! The header is always generated into OUT_DIR; it is copied over the
//! committed include/xesvm.h only outside CI (`CI` unset), so that in CI a
//! stale committed header makes `tests/header.rs` fail instead of being
//! silently refreshed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The ABI major version, carried in the soname (`libxesvm.so.<major>`).
const ABI_MAJOR: &str = "1";
/// The library a runtime links: no simulator (`--no-default-features`).
const LEAN_NAME: &str = "xesvm";
/// The variant with the simulated driver (feature `sim`).
const SIM_NAME: &str = "xesvm-sim";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");

    let version = env::var("CARGO_PKG_VERSION").unwrap();
    #[cfg(feature = "header")]
    generate_header(&manifest, &out, &version);

    // The artefact's name: the library a runtime links, or the variant with
    // the simulator (tests, benchmarks).
    let name = if env::var_os("CARGO_FEATURE_SIM").is_some() { SIM_NAME } else { LEAN_NAME };
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        // No symbol versions here: rustc hands the linker its own version
        // script (every export in the base version) ahead of any the build
        // script adds, and the linker keeps the first assignment, so
        // `-Wl,--version-script=xesvm.map` would define the node XESVM_1 and
        // leave every symbol unversioned. scripts/install.sh links the
        // installed library again from the static archive with xesvm.map.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,lib{name}.so.{ABI_MAJOR}");
    }

    // OUT_DIR is <target>/<profile>/build/xesvm-<hash>/out.
    if let Some(profile_dir) = out.ancestors().nth(3) {
        write_uninstalled_pc(profile_dir, &manifest, &version, name);
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

/// A `.pc` whose paths point into the build tree (`pkgconfig/<name>.pc.in`),
/// plus the links the linker and the loader look for (`lib<name>.so`,
/// `lib<name>.so.<major>`, to cargo's `libxesvm.so`), so
/// `cc x.c $(pkg-config --cflags --libs <name>)` works before any install.
/// The other variant's links go: a profile directory holds one library.
/// A simulator build's directory also has `xesvm.pc` naming it (the build
/// tree as 0.1.0 had it); a lean build's has only `xesvm.pc`.
fn write_uninstalled_pc(profile_dir: &Path, manifest: &Path, version: &str, name: &str) {
    let pc_dir = profile_dir.join("pkgconfig");
    fs::create_dir_all(&pc_dir).unwrap();
    let template = fs::read_to_string(manifest.join(format!("pkgconfig/{name}.pc.in"))).unwrap();
    let pc = template
        .replace("@PREFIX@", &manifest.display().to_string())
        .replace("@LIBDIR@", &profile_dir.display().to_string())
        .replace("@INCLUDEDIR@", &manifest.join("include").display().to_string())
        .replace("@VERSION@", version);
    copy_if_changed_str(&pc, &pc_dir.join(format!("{name}.pc")));
    println!("cargo:rerun-if-changed=pkgconfig/{name}.pc.in");
    if name == SIM_NAME {
        // The build tree of a default build also answers to `xesvm`, naming
        // this same (simulator) library: programs written against 0.1.0's
        // build tree keep building. An install's xesvm.pc is the lean one.
        let alias = format!("# Build tree alias: the simulator-enabled library, as xesvm-sim.pc.\n{pc}");
        copy_if_changed_str(&alias, &pc_dir.join(format!("{LEAN_NAME}.pc")));
    } else {
        let _ = fs::remove_file(pc_dir.join(format!("{SIM_NAME}.pc")));
    }
    let stale = if name == SIM_NAME {
        vec![format!("lib{LEAN_NAME}.so.{ABI_MAJOR}")]
    } else {
        vec![format!("lib{SIM_NAME}.so.{ABI_MAJOR}"), format!("lib{SIM_NAME}.so")]
    };
    for link in stale {
        let _ = fs::remove_file(profile_dir.join(link));
    }
    let mut links = vec![format!("lib{name}.so.{ABI_MAJOR}")];
    if name != LEAN_NAME {
        links.push(format!("lib{name}.so"));
    }
    for link in links {
        let link = profile_dir.join(link);
        if fs::symlink_metadata(&link).is_err() {
            let _ = std::os::unix::fs::symlink("libxesvm.so", &link);
        }
    }
}

fn copy_if_changed_str(s: &str, to: &Path) {
    if fs::read_to_string(to).ok().as_deref() != Some(s) {
        fs::write(to, s).unwrap();
    }
}
