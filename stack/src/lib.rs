//! tapstack's protocol core: Ethernet II, ARP, IPv4 (with ICMP and fragment
//! reassembly), UDP and TCP, as a sans-IO state machine ([`Stack`]), plus the
//! interface of the devices that sit around it ([`device`]; the devices themselves
//! with the default `devices` feature).
//!
//! # Layering
//!
//! Each module imports only modules below it; no two import each other:
//!
//! - Leaves: [`time`], [`buffer`], [`checksum`] (the one RFC 1071 Internet
//!   checksum), [`ethernet`], [`counters`], [`ratelimit`].
//! - Link and network: [`arp`]; [`ipv4`] (validation, routing over an
//!   [`ipv4::Ipv4Config`], fragmentation, reassembly); [`icmp`] (message formats);
//!   [`loopback`] (the queue of datagrams to ourselves).
//! - Transports: [`udp`] and [`tcp`]. Each defines the trait through which it sees
//!   the network below ([`udp::UdpNet`], [`tcp::TcpNet`]) and names nothing above.
//! - [`config`]: the whole configuration, gathering each layer's own part.
//! - [`ip_layer`]: [`IpLayer`], everything below the transports as one owner of
//!   state (configuration, ARP, IPv4 sending and receiving, ICMP sending,
//!   reassembly, the transmit queue and the loopback, counters, the random
//!   number generator).
//! - The composition: [`stack`] ([`Stack`]: receive, dispatch, poll, transmit)
//!   and the private `bindings` module (the transports' traits implemented for
//!   [`IpLayer`]); [`socket_table`] (the `ss` view over both transports).
//! - [`device`]: where frames come from and go to, outside the core.
//!
//! Reading order for a student: [`stack`] (how a frame travels up and down), then
//! [`ip_layer`], [`arp`], [`ipv4`], [`icmp`], [`udp`], [`tcp`].

pub mod arp;
mod bindings;
pub mod buffer;
pub mod checksum;
pub mod config;
pub mod counters;
pub mod device;
pub mod driver;
pub mod ethernet;
pub mod icmp;
pub mod ip_layer;
pub mod ipv4;
pub mod loopback;
pub mod offload;
pub mod ratelimit;
pub mod socket_table;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod udp;

pub use config::Config;
pub use counters::{Counters, DropReason};
pub use ethernet::MacAddr;
pub use ip_layer::{IpLayer, RxOutcome, SendOptions};
pub use socket_table::SocketEntry;
pub use stack::Stack;
pub use time::{Duration, Instant};
