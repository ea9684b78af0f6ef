//! Shared helpers for the integration tests: frames built with etherparse (so
//! the tests do not share code, or mistakes, with the stack), and the rule for
//! tests that need root and a TAP, running programs in a TAP test, and the
//! veth pair the Linux baselines run over.

pub mod frames;
pub mod programs;
pub mod veth;

/// Whether a test that needs root can run (panics under CI=true if it cannot).
pub use tapstack_tools::netns::tap_tests_enabled;
