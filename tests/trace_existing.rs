//! `XESVM_TRACE` names a file that exists, through a symbolic link: the
//! library writes only files it creates (O_CREAT | O_EXCL | O_NOFOLLOW), so
//! the file keeps its content and nothing is traced. Its own test binary,
//! so that the environment is set before the library reads it.

use xesvm::sim::driver::SimDriver;
use xesvm::policy::{AllocFlags, Config, Context};
use xesvm::sim::Sim;

#[test]
fn an_existing_file_or_a_link_is_never_written() {
    let dir = std::env::temp_dir().join(format!("xesvm-trace-existing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("precious");
    std::fs::write(&victim, b"not a trace\n").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::env::set_var("XESVM_TRACE", &link);

    let sim = Sim::from_preset("dgpu").unwrap();
    let ctx = Context::new(Box::new(SimDriver::new(sim)), Config::default());
    let dev = ctx.open_index(0).unwrap();
    let vram = ctx.pagemap(dev, 0).unwrap();
    ctx.alloc_vram(dev, 0x10_0000_0000, 2 << 20, vram, AllocFlags::default()).unwrap();

    assert!(!xesvm::trace::on(), "an existing path is not traced into");
    assert_eq!(std::fs::read(&victim).unwrap(), b"not a trace\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    std::fs::remove_dir_all(&dir).unwrap();
}
