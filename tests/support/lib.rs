//! Shared helpers for the integration tests: frames built with etherparse (so
//! the tests do not share code, or mistakes, with the stack), and the rule for
//! tests that need root and a TAP.

pub mod frames;

/// Whether a test that needs root (network namespaces, TAP devices) can run.
/// With `CI=true` such a test must run, so this panics when it cannot; elsewhere
/// it prints why it is skipped.
pub fn tap_tests_enabled(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true but not running as root, so the TAP test cannot run");
    }
    eprintln!("skipping {test}: it needs root for a network namespace and a TAP device");
    false
}
