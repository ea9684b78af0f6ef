//! libtapstack: tapstack's socket calls with C signatures, for C programs, and
//! packetdrill's shared-object interface over the same calls.
//!
//! - `tapstack_start("tap0", "10.0.0.2/24", NULL)` starts a stack on a TAP, then
//!   `tapstack_socket`, `tapstack_bind`, ... behave as libc's calls do (-1 and
//!   `errno` on failure); `include/tapstack.h` declares them.
//! - `packetdrill_interface_init` (in `csrc/shim.c`) gives packetdrill a stack in
//!   virtual time ([`virtual_host::VirtualHost`]), driven by packetdrill's own
//!   thread: deterministic, no TAP, no waiting.
//!
//! Files: `calls.rs` (the calls as a trait, over [`sockets_api::Net`] and over
//! the virtual host), `abi.rs` (C types in and out, errno), `tap.rs` (the
//! `tapstack_*` functions), `virtual_host.rs`, `packetdrill.rs` (the
//! `tapstack_pd_*` functions the shim hands packetdrill).

pub mod abi;
pub mod calls;
pub mod packetdrill;
pub mod tap;
pub mod virtual_host;

pub use calls::Calls;
pub use virtual_host::VirtualHost;
