//! A topology description given to a context (`topology_file` in the
//! config, `XESVM_TOPOLOGY` for kernel contexts): links sysfs does not show,
//! by PCI address, each fact with its source; ENOLINK from the kernel still
//! wins. Its own test binary: it sets XESVM_TOPOLOGY.

use std::ffi::CString;

use xesvm::ffi::context::*;
use xesvm::policy::{AllocFlags, Config, Context};
use xesvm::sim::driver::SimDriver;
use xesvm::sim::Sim;
use xesvm::topology::description::parse;
use xesvm::topology::{LinkKind, LinkSource, LinkState};

const MIB: u64 = 1 << 20;

#[test]
fn a_described_link_is_believed_until_the_kernel_says_enolink() {
    // Two devices with no link: sysfs shows none.
    let sim = Sim::from_preset("2dgpu-nolink").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim.clone())), Config::default());
    let (a, b) = (ctx.open_index(0).unwrap(), ctx.open_index(1).unwrap());
    assert_eq!(ctx.link_with_source(a, b).unwrap().1, LinkSource::Platform, "what sysfs says");
    let (ia, ib) = (sim.device_id(0), sim.device_id(1));
    ctx.set_link_description(parse(&format!("link {ia} {ib} kind=fabric bandwidth_gbps=40\n")).unwrap());
    let (state, source) = ctx.link_with_source(a, b).unwrap();
    assert_eq!(source, LinkSource::Description);
    assert!(matches!(state, LinkState::Present(l) if l.kind == LinkKind::Fabric && l.bandwidth == 40e9), "{state:?}");
    // The kernel has no interconnect there: ENOLINK corrects the description.
    let peer = ctx.pagemap(b, 0).unwrap();
    let p = ctx.alloc_vram(a, 0x10_0000_0000, 2 * MIB, peer, AllocFlags::default()).unwrap();
    assert!(p.fell_back, "{p:?}");
    assert_eq!(ctx.link_with_source(a, b).unwrap(), (LinkState::Absent, LinkSource::Learned));
}

#[test]
fn the_config_file_and_xesvm_topology_are_read_and_errors_name_the_line() {
    let dir = std::env::temp_dir().join(format!("xesvm-topo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.links");
    std::fs::write(&bad, "# links\nlink 0000:03:00.0 0000:04:00.0 kind=copper\n").unwrap();
    let good = dir.join("good.links");
    std::fs::write(&good, "link 0000:03:00.0 0000:04:00.0 kind=p2p\n").unwrap();
    let create = |cfg: Option<&svm_context_config>| {
        let mut ctx: *mut svm_context = std::ptr::null_mut();
        // SAFETY: a valid config (or NULL) and out-pointer.
        let rc = unsafe { svm_context_create(cfg.map_or(std::ptr::null(), |c| c as *const _), &mut ctx) };
        // SAFETY: a context from svm_context_create, or NULL.
        unsafe { svm_context_destroy(ctx) };
        rc
    };
    let last = || {
        // SAFETY: svm_last_error returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(xesvm::ffi::svm_last_error()) }.to_string_lossy().into_owned()
    };
    let path = CString::new(bad.to_str().unwrap()).unwrap();
    // SAFETY: the config is plain data whose all-zero value is valid (NULL pointers).
    let zero: svm_context_config = unsafe { std::mem::zeroed() };
    let cfg = svm_context_config { struct_size: size_of::<svm_context_config>() as u32, driver: SVM_DRIVER_KERNEL, topology_file: path.as_ptr(), ..zero };
    assert_eq!(create(Some(&cfg)), -libc::EINVAL);
    assert!(last().contains("line 2") && last().contains("copper"), "{}", last());
    let path = CString::new(good.to_str().unwrap()).unwrap();
    let cfg = svm_context_config { topology_file: path.as_ptr(), ..cfg };
    assert_eq!(create(Some(&cfg)), 0);
    // A kernel context without a file in its config reads XESVM_TOPOLOGY.
    std::env::set_var("XESVM_TOPOLOGY", &bad);
    assert_eq!(create(None), -libc::EINVAL, "XESVM_TOPOLOGY is read");
    assert!(last().contains("bad.links"), "{}", last());
    std::env::set_var("XESVM_TOPOLOGY", dir.join("missing"));
    assert_eq!(create(None), -libc::EINVAL, "a file that cannot be read is refused");
    std::env::remove_var("XESVM_TOPOLOGY");
    assert_eq!(create(None), 0);
    std::fs::remove_dir_all(&dir).ok();
}
