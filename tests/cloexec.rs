//! Every fd the library opens is close-on-exec, so a runtime that forks
//! and execs a helper does not leak a GPU render node, the process's page
//! table or a trace file into it: the render-node open, the pagemap open,
//! the trace file and the simulator's event fd are each checked with
//! fcntl(F_GETFD). Its own test binary (it sets XESVM_TRACE).

use std::os::fd::AsRawFd;
use std::path::Path;

/// The tests here run one at a time: one forks, and a child forked while
/// another thread of this process holds a lock of the library (the page
/// table's) would wait for it forever.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cloexec(fd: i32) -> bool {
    // SAFETY: F_GETFD on an fd this process holds.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "fd {fd} is not open");
    flags & libc::FD_CLOEXEC != 0
}

/// The fds this process holds that point at `target` (by /proc/self/fd).
fn fds_pointing_at(pred: impl Fn(&Path) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            pred(&link).then_some(fd)
        })
        .collect()
}

#[test]
fn every_fd_the_library_opens_is_close_on_exec() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A render node (here any character device: the open is the library's).
    let node = xesvm::driver::kernel::open_render_node(Path::new("/dev/null")).unwrap();
    assert!(cloexec(node.as_raw_fd()), "render node");

    // The process's page table.
    if xesvm::driver::pagemap::process_page_table().is_some() {
        let fds = fds_pointing_at(|p| p.ends_with("pagemap"));
        assert!(!fds.is_empty(), "the pagemap file is open");
        assert!(fds.iter().all(|&fd| cloexec(fd)), "pagemap");
    } else {
        eprintln!("skipped the pagemap check: /proc/self/pagemap cannot be read here");
    }

    // The trace file.
    let dir = std::env::temp_dir().join(format!("xesvm-cloexec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.json");
    std::env::set_var("XESVM_TRACE", &trace);
    assert!(xesvm::trace::on(), "tracing to {}", trace.display());
    let fds = fds_pointing_at(|p| p == trace);
    assert_eq!(fds.len(), 1, "the trace file is open once");
    assert!(cloexec(fds[0]), "trace file");

    // The simulator's device fds (event fds standing in for DRM files).
    let sim = xesvm::sim::Sim::from_preset("dgpu").unwrap();
    let fd = sim.open_device(0).unwrap();
    assert!(cloexec(fd), "simulated device fd");
    std::fs::remove_dir_all(&dir).ok();
}

/// A forked child closes the page-table fd it inherited from its parent
/// (which reads the parent's table) when it opens its own: no fd leaked per
/// fork.
#[test]
fn a_forked_child_closes_the_parents_page_table() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if xesvm::driver::pagemap::process_page_table().is_none() {
        eprintln!("skipped: this process cannot read its page table");
        return;
    }
    let parent = format!("/proc/{}/pagemap", std::process::id());
    // SAFETY: the child only reads /proc, opens its table and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let before = fds_pointing_at(|p| p == Path::new(&parent)).len();
        let ok = xesvm::driver::pagemap::process_page_table().is_some();
        let after = fds_pointing_at(|p| p == Path::new(&parent)).len();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok && before >= 1 && after == 0 { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child still holds the parent's pagemap fd");
}
