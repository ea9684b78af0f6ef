//! `tapstack up`: runs the stack on a TAP, with its services, until SIGINT or SIGTERM.

use crate::instance::StackOptions;
use crate::signals;
use sockets_api::services;
use std::net::{Ipv4Addr, SocketAddrV4};

pub fn run(opts: StackOptions) -> Result<(), String> {
    signals::block();
    let (runtime, config) = opts.start()?;
    let net = runtime.net();
    let echo = services::udp_echo(&net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
        .map_err(|e| format!("cannot start the UDP echo service: {e}"))?;
    crate::say!("tapstack is up on {}: {}/{} at {}", opts.tap, config.addr, config.prefix_len, config.mac);
    if let Some(gw) = config.gateway {
        crate::say!("  default gateway {gw}");
    }
    if let Some(p) = &opts.pcap {
        crate::say!("  recording every frame to {}", p.display());
    }
    crate::say!("  serving: UDP echo on port 7");
    let host = host_example(config.addr, config.prefix_len);
    crate::say!("From the Linux side of the TAP (once it has an address on the subnet and is up):");
    crate::say!("  ip addr add {host}/{} dev {} && ip link set {} up", config.prefix_len, opts.tap, opts.tap);
    crate::say!("  ping {}", config.addr);
    crate::say!("  echo hello | nc -u -w1 {} 7", config.addr);
    crate::say!("Ctrl-C stops it.");
    let sig = signals::wait();
    let _ = echo.stop();
    let counters = runtime.counters();
    runtime.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
    crate::say!("\nstopped by signal {sig}; counters:\n{}", counters.report());
    Ok(())
}

/// An address on the subnet other than ours, to suggest for the host side.
fn host_example(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let a = u32::from(addr);
    let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - prefix_len as u32) };
    let first = (a & mask) | 1;
    Ipv4Addr::from(if first == a { first + 1 } else { first })
}
