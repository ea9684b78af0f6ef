//! Calls that mirror BSD sockets over the tapstack core, and std::net-like types
//! on top of them. The [`runtime`] drives the core in real time on its own thread.

pub mod runtime;

pub use runtime::{Runtime, Shared};
