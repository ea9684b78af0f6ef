//! Running programs in a TAP test: the example binaries `cargo test --workspace`
//! builds, children that are killed and reaped however the test ends, and
//! waiting for a child's output within a bound.

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::Duration;

/// A child killed and reaped when dropped.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example binary `name` (`target/*/examples/`, beside the test binaries),
/// which `cargo test --workspace` builds. `None`, with the reason printed, when
/// it is not built; under CI=true that is a failure.
pub fn example(name: &str) -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let path = deps.parent()?.join("examples").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing: cargo test --workspace builds it",
        path.display()
    );
    eprintln!("skipping: {} is not built (run cargo test --workspace)", path.display());
    None
}

/// Waits for a child's output, killing it after `within`.
pub fn output_within(child: Child, within: Duration) -> Output {
    let id = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(within);
        // SAFETY: kill(2) on our own child, which may be gone by now (then ESRCH).
        unsafe { libc::kill(id as i32, libc::SIGKILL) };
    });
    let out = child.wait_with_output().expect("wait");
    drop(watchdog);
    out
}
