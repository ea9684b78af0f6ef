//! What both examples need before their first socket call: a stack on a TAP.
//! (Not part of the C versions, where the kernel's stack is simply there.)

use sockets_api::Runtime;
use stack::{Config, MacAddr};
use std::net::Ipv4Addr;

/// Parses "10.0.0.2/24".
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    Some((a.parse().ok()?, p.parse().ok().filter(|p| *p <= 32)?))
}

/// Starts tapstack at `cidr` on the TAP `tap`, with a MAC made from the address.
pub fn start(tap: &str, cidr: &str) -> Runtime {
    let Some((addr, prefix)) = parse_cidr(cidr) else {
        eprintln!("'{cidr}' is not an address with a prefix length, like 10.0.0.2/24");
        std::process::exit(2);
    };
    let mac = MacAddr::local_from_seed(u32::from(addr) as u64);
    let mut config = Config::new(mac, addr, prefix);
    config.seed = std::process::id() as u64 ^ u32::from(addr) as u64;
    match Runtime::start_on_tap(tap, config) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tapstack on {tap}: {e}");
            std::process::exit(1);
        }
    }
}
