//! xesvm: shared-virtual-memory placement for Intel Xe GPUs.
//!
//! Layers, each a module, data flowing downward only (docs/design.md):
//! [`ffi`] (C ABI) → `policy` → `track` → `topology` → [`driver`] (seam) →
//! [`uapi`] (pure data). [`sim`] is the simulated Xe kernel driver that sits
//! behind the same seam as the real one.
//!
//! Only `ffi` is exported to C (`include/xesvm.h`); the other modules carry
//! `cbindgen:ignore` so their Rust constants stay out of the C header.

/// cbindgen:ignore
pub mod driver;
/// cbindgen:ignore
pub mod env;
/// cbindgen:ignore
pub mod errno;
pub mod ffi;
/// cbindgen:ignore
pub mod log;
/// cbindgen:ignore
pub mod policy;
/// cbindgen:ignore
#[cfg(feature = "sim")]
pub mod sim;
/// cbindgen:ignore
pub mod topology;
/// cbindgen:ignore
pub mod trace;
/// cbindgen:ignore
pub mod track;
/// cbindgen:ignore
pub mod uapi;

pub use errno::{Errno, Result};

/// The library version (`CARGO_PKG_VERSION`), as `svm_version()` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
