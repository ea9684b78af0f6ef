//! The `tapstack` command's pieces, as a library so that the integration tests
//! use the same lab and namespace code as the demo.

pub mod demo;
pub mod instance;
pub mod lab;
pub mod nc;
pub mod netns;
pub mod signals;
pub mod up;
