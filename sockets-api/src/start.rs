//! Starting a stack in one line: `Runtime::on_tap("tap0", "10.0.0.2/24")`, with
//! everything else defaulted the way a program on the kernel's stack expects.
//!
//! The one choice that must not be a fixed default is the seed of the stack's
//! random choices (RFC 6528's ISN secret, ephemeral ports, IPv4 identifiers): a
//! fixed seed makes every run use the same port and nearly the same initial
//! sequence number, so a client that runs twice meets its own previous
//! connection in the peer's TIME-WAIT. The core is deterministic and takes its
//! seed from its [`Config`]; here, at the edge, it comes from the operating
//! system (getrandom(2)). A fixed seed is for replay and simulation, asked for by
//! name (`config.seed = N` with [`Runtime::start_on_tap`]).
//!
//! And its end: a program killed with SIGTERM (or Ctrl-C) must close its
//! connections as a C program's descriptors are closed by the kernel, which
//! [`Runtime::stop_on_signals`] arranges.

use crate::Runtime;
use stack::{Config, MacAddr};
use std::io;
use std::net::Ipv4Addr;

/// Parses an address with its prefix length ("10.0.0.2/24") for a host: refused
/// with a message saying why when it is not one (no prefix, a bad number, or,
/// on a subnet that has them, the subnet's network or broadcast address, which
/// no host can have: RFC 1122 section 3.2.1.3).
pub fn parse_host_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s.split_once('/').ok_or_else(|| format!("'{s}' needs a prefix length, like 10.0.0.2/24"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("'{ip}' is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("'{prefix}' is not a prefix length (0 to 32)"))?;
    if prefix <= 30 {
        let host_bits = u32::MAX >> prefix;
        let host = u32::from(ip) & host_bits;
        if host == 0 {
            return Err(format!("{ip} is the network address of {s}, not a host's; try {}", next(ip, 1)));
        }
        if host == host_bits {
            return Err(format!("{ip} is the broadcast address of {s}, not a host's; try {}", next(ip, -1)));
        }
    }
    Ok((ip, prefix))
}

fn next(ip: Ipv4Addr, by: i32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip).wrapping_add_signed(by))
}

/// The configuration for a host at `cidr`: a locally administered MAC made
/// from the address (so a restarted stack keeps its MAC, and neighbours' ARP
/// caches stay right), the defaults of [`Config::new`], and a seed from the
/// operating system.
pub fn host_config(cidr: &str) -> Result<Config, String> {
    let (addr, prefix) = parse_host_cidr(cidr)?;
    let mut config = Config::new(MacAddr::local_from_seed(u32::from(addr) as u64), addr, prefix);
    config.seed = os_seed().map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(config)
}

/// A seed from the operating system's randomness.
pub fn os_seed() -> io::Result<u64> {
    getrandom::u64().map_err(|e| io::Error::other(e.to_string()))
}

impl Runtime {
    /// Starts tapstack on the TAP `tap` (opened, or created) at `cidr`
    /// ("10.0.0.2/24"), configured by [`host_config`]: the one-line start.
    ///
    /// Errors: `InvalidInput` for an address that is not a host's; those of
    /// [`Runtime::start_on_tap`] (no permission to open a TAP, ...).
    pub fn on_tap(tap: &str, cidr: &str) -> io::Result<Runtime> {
        let config = host_config(cidr).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Runtime::start_on_tap(tap, config)
    }

    /// Makes SIGINT and SIGTERM stop this stack cleanly, then end the program
    /// as the signal would have (killed by it: status 130 or 143 in a shell).
    /// Without it the signal kills the process at once, and the peers of its
    /// connections are left ESTABLISHED: the kernel never hears of them.
    ///
    /// On the signal, the stack stops as [`Runtime::stop`] stops it: every
    /// connection closed as at a process's exit (a FIN, or a RST where unread
    /// data is left: [`crate::exit`]), within `TcpConfig::exit_linger` (2 s).
    /// Threads blocked in calls then never return (as a killed program's
    /// threads don't), and a second signal in the meantime ends the program at
    /// once. Call it once,
    /// after starting; it installs handlers (with `signal-hook`) that work
    /// whatever threads the program has, and a thread that waits for them.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let runtime = sockets_api::Runtime::on_tap("tap0", "10.0.0.2/24")?;
    /// runtime.stop_on_signals()?;
    /// # Ok(()) }
    /// ```
    ///
    /// Errors: those of installing the handlers (sigaction(2)) or starting the thread.
    pub fn stop_on_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let shared = self.shared().clone();
        std::thread::Builder::new().name("tapstack-signals".into()).spawn(move || {
            let mut received = signals.forever();
            let Some(sig) = received.next() else { return };
            std::thread::spawn(move || {
                shared.stop_before_exit(shared.stop_within());
                die_of(sig);
            });
            if received.next().is_some() {
                die_of(sig);
            }
        })?;
        Ok(())
    }
}

/// Ends the process as signal `sig`'s default action does (the exit status
/// says so), or with 128 + `sig` should that fail.
fn die_of(sig: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(sig);
    std::process::exit(128 + sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_address_is_taken_and_a_subnets_own_are_refused_with_a_hint() {
        assert_eq!(parse_host_cidr("10.0.0.2/24"), Ok((Ipv4Addr::new(10, 0, 0, 2), 24)));
        let net = parse_host_cidr("10.88.0.0/24").unwrap_err();
        assert!(net.contains("network address") && net.contains("try 10.88.0.1"), "{net}");
        let bcast = parse_host_cidr("10.88.0.255/24").unwrap_err();
        assert!(bcast.contains("broadcast address") && bcast.contains("try 10.88.0.254"), "{bcast}");
        // /31 (RFC 3021) and /32 have no network or broadcast address.
        assert!(parse_host_cidr("10.0.0.0/31").is_ok() && parse_host_cidr("10.0.0.7/32").is_ok());
        assert!(parse_host_cidr("10.0.0.2").unwrap_err().contains("prefix length"));
        assert!(parse_host_cidr("10.0.0.2/33").unwrap_err().contains("not a prefix length"));
    }

    #[test]
    fn two_configurations_get_different_seeds_from_the_os() {
        let (a, b) = (host_config("10.0.0.2/24").unwrap(), host_config("10.0.0.2/24").unwrap());
        assert_ne!(a.seed, b.seed, "two draws of 64 random bits were equal");
        assert_eq!(a.mac, b.mac, "the MAC follows the address");
    }
}
