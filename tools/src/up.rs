//! `tapstack up`: runs the stack on a TAP until SIGINT or SIGTERM.

use crate::signals;
use sockets_api::Runtime;
use stack::device::pcap::PcapRecorder;
use stack::device::tap::TapDevice;
use stack::device::Device;
use stack::{Config, MacAddr, Stack};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What `tapstack up` was asked to do.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub tap: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub mac: Option<MacAddr>,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u16,
    pub pcap: Option<PathBuf>,
    pub seed: Option<u64>,
}

pub fn run(opts: UpOptions) -> Result<(), String> {
    let mac = opts.mac.unwrap_or_else(|| crate::lab::mac_for(opts.addr));
    let mut config = Config::new(mac, opts.addr, opts.prefix_len);
    config.gateway = opts.gateway;
    config.mtu = opts.mtu;
    config.seed = opts.seed.unwrap_or_else(rand_seed);
    let stack = Stack::new(config.clone())?;
    signals::block();
    let tap = TapDevice::open(&opts.tap).map_err(|e| e.to_string())?;
    let device: Box<dyn Device + Send> = match &opts.pcap {
        Some(p) => Box::new(PcapRecorder::create(tap, p).map_err(|e| format!("cannot write {}: {e}", p.display()))?),
        None => Box::new(tap),
    };
    let runtime = Runtime::start(stack, device).map_err(|e| format!("cannot start the stack: {e}"))?;
    println!("tapstack is up on {}: {}/{} at {}", opts.tap, opts.addr, opts.prefix_len, mac);
    if let Some(gw) = opts.gateway {
        println!("  default gateway {gw}");
    }
    if let Some(p) = &opts.pcap {
        println!("  recording every frame to {}", p.display());
    }
    let host = host_example(opts.addr, opts.prefix_len);
    println!("From the Linux side of the TAP (once it has an address on the subnet and is up):");
    println!("  ip addr add {host}/{} dev {} && ip link set {} up", opts.prefix_len, opts.tap, opts.tap);
    println!("  ping {}", opts.addr);
    println!("Ctrl-C stops it.");
    let sig = signals::wait();
    let counters = runtime.counters();
    runtime.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
    println!("\nstopped by signal {sig}; counters:\n{}", counters.report());
    Ok(())
}

/// An address on the subnet other than ours, to suggest for the host side.
fn host_example(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let a = u32::from(addr);
    let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - prefix_len as u32) };
    let first = (a & mask) | 1;
    Ipv4Addr::from(if first == a { first + 1 } else { first })
}

/// A seed from the operating system, for a run that is not meant to replay.
pub fn rand_seed() -> u64 {
    rand::random()
}
