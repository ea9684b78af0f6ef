//! The `tapstack` command.

use clap::{Parser, Subcommand};
use stack::MacAddr;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use tapstack_tools::{demo, up};

#[derive(Parser)]
#[command(name = "tapstack", version, about = "A userspace TCP/IP stack on a Linux TAP device")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the stack on a TAP device until Ctrl-C or SIGTERM.
    Up {
        /// The TAP device (opened if it exists, created otherwise).
        #[arg(long)]
        tap: String,
        /// Our address and subnet, like 10.0.0.2/24.
        #[arg(long, value_parser = parse_cidr)]
        addr: (Ipv4Addr, u8),
        /// Our MAC address (default: 02:74:61:70 and the address's last two bytes).
        #[arg(long)]
        mac: Option<MacAddr>,
        /// Default gateway for destinations off the subnet.
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// Largest IP datagram on the link.
        #[arg(long, default_value_t = 1500)]
        mtu: u16,
        /// Write every frame in and out to this pcap file.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Seed of the stack's random choices (default: random).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Show the stack at work on a fresh machine: namespace, TAP, pings, a pcap.
    Demo {
        /// Where to write the capture.
        #[arg(long, default_value = "demo.pcap")]
        pcap: PathBuf,
    },
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s.split_once('/').ok_or_else(|| format!("'{s}' needs a prefix length, like 10.0.0.2/24"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("'{ip}' is not an IPv4 address"))?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("'{prefix}' is not a prefix length (0 to 32)"))?;
    Ok((ip, prefix))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Up { tap, addr, mac, gateway, mtu, pcap, seed } => {
            up::run(up::UpOptions { tap, addr: addr.0, prefix_len: addr.1, mac, gateway, mtu, pcap, seed })
        }
        Cmd::Demo { pcap } => demo::run(demo::DemoOptions { pcap }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapstack: {e}");
            ExitCode::FAILURE
        }
    }
}
