//! What the integration tests that run processes share.

use std::process::Child;

/// A child process, killed and reaped when dropped, so that a failing test
/// leaves no process behind (before its namespace goes).
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
