//! tapstack's protocol core: Ethernet II, ARP, IPv4 (with ICMP and fragment
//! reassembly), UDP and TCP, as a sans-IO state machine ([`Stack`]), plus the
//! devices that sit around it ([`device`]).
//!
//! Reading order for a student: [`iface`] (how a frame travels up and down),
//! then [`arp`], [`ipv4`], [`icmp`], [`udp`], [`tcp`].

pub mod arp;
pub mod buffer;
pub mod config;
pub mod counters;
pub mod device;
pub mod driver;
pub mod ethernet;
pub mod icmp;
pub mod iface;
pub mod ipv4;
pub mod ratelimit;
pub mod socket_table;
pub mod tcp;
pub mod time;
pub mod udp;

pub use config::Config;
pub use counters::{Counters, DropReason};
pub use ethernet::MacAddr;
pub use iface::{Net, RxOutcome, SendOptions, Stack};
pub use socket_table::SocketEntry;
pub use time::{Duration, Instant};
