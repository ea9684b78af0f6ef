//! The `tapstack` command's pieces, as a library so that the integration tests
//! use the same lab and namespace code as the demo.

/// `println!` that ignores a closed standard output (`tapstack up | head`): the
/// command keeps running and shuts down cleanly instead of panicking.
#[macro_export]
macro_rules! say {
    () => {{ use std::io::Write; let _ = writeln!(std::io::stdout()); }};
    ($($arg:tt)*) => {{ use std::io::Write; let _ = writeln!(std::io::stdout(), $($arg)*); }};
}

pub mod banner;
pub mod control;
pub mod demo;
pub mod gate;
pub mod inspect;
pub mod instance;
pub mod lab;
pub mod link;
pub mod nc;
pub mod netns;
pub mod reclaim;
pub mod scenario;
pub mod signals;
pub mod ss;
pub mod ss_filter;
pub mod tcp_flags;
pub mod up;
