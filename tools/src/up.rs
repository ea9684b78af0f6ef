//! `tapstack up`: runs the stack on a TAP, with its services, until SIGINT or SIGTERM.
//! The top of the layering: built on [`crate::instance`], [`crate::control`] and [`crate::signals`]; only main.rs calls it.

use crate::control::{self, ControlServer};
use crate::instance::StackOptions;
use crate::signals;
use sockets_api::services::{ServiceLimits, ServiceSet};
use sockets_api::Net;
use stack::Config;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Instant;

/// Runs until SIGINT or SIGTERM; `control` overrides where the control socket
/// listens (default [`control::default_path`] of the TAP).
/// `services` are the TCP services' limits and whether each gets its share of
/// the descriptor limit instead of their `max_connections` ([`ServiceSet::start_list_with`]).
pub fn run(
    opts: StackOptions,
    serve: &str,
    trace: bool,
    control: Option<PathBuf>,
    services: (ServiceLimits, bool),
) -> Result<(), String> {
    signals::block();
    let (runtime, config) = opts.start()?;
    let net = runtime.net();
    if trace {
        // Printed as they happen, from the runtime's bounded trace channel.
        let transitions = net.trace_transitions(4096);
        let start = Instant::now();
        std::thread::spawn(move || {
            for t in transitions.iter() {
                crate::say!("[{:>10.6}] {t}", start.elapsed().as_secs_f64());
            }
        });
    }
    let services = ServiceSet::start_list_with(&net, serve, services.0, services.1)
        .map_err(|e| format!("cannot start the services '{serve}': {e}"))?;
    let control = start_control(&opts.tap, control, &net)?;
    crate::say!("tapstack is up on {}: {}/{} at {}", opts.tap, config.addr, config.prefix_len, config.mac);
    if let Some(gw) = config.gateway {
        crate::say!("  default gateway {gw}");
    }
    if let Some(p) = &opts.pcap {
        crate::say!("  recording every frame to {}", p.display());
    }
    let served: Vec<String> = services
        .services()
        .iter()
        .map(|s| format!("{} ({} {})", s.name(), s.protocol(), s.local_addr().port()))
        .collect();
    crate::say!("  serving: {}", served.join(", "));
    let host = host_example(&config);
    crate::say!("From the Linux side of the TAP (once it has an address on the subnet and is up):");
    crate::say!("  ip addr add {host}/{} dev {} && ip link set {} up", config.prefix_len, opts.tap, opts.tap);
    crate::say!("  ping {}", config.addr);
    crate::say!("  echo hello | nc -u -w1 {} 7      (UDP echo)", config.addr);
    crate::say!("  nc {} 7                         (TCP echo)", config.addr);
    crate::say!("  curl http://{}/", config.addr);
    if let Some(c) = &control {
        let target = if c.path() == control::default_path(&opts.tap) {
            format!("--tap {}", opts.tap)
        } else {
            format!("--control {}", c.path().display())
        };
        crate::say!("Its sockets and counters: tapstack ss -tai {target}; tapstack stats {target}");
    }
    crate::say!("Ctrl-C stops it.");
    let sig = signals::wait();
    drop(control);
    let _ = services.stop();
    let counters = runtime.counters();
    runtime.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
    crate::say!("\nstopped by signal {sig}; counters:\n{}", counters.report());
    Ok(())
}

/// The control socket: at `path` if given (failing to listen there is an error),
/// else at the TAP's default path, where a failure (no /run to write to, say)
/// only costs `tapstack ss` and is reported as a warning.
fn start_control(tap: &str, path: Option<PathBuf>, net: &Net) -> Result<Option<ControlServer>, String> {
    match path {
        Some(p) => ControlServer::start(&p, net.clone()).map(Some),
        None => match ControlServer::start(&control::default_path(tap), net.clone()) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                eprintln!("tapstack: warning: no control socket, so `tapstack ss` cannot reach this stack: {e}");
                Ok(None)
            }
        },
    }
}

/// An address on the subnet other than ours, to suggest for the host side.
fn host_example(config: &Config) -> Ipv4Addr {
    let first = Ipv4Addr::from((u32::from(config.addr) & config.netmask()) | 1);
    if first == config.addr {
        Ipv4Addr::from(u32::from(first) + 1)
    } else {
        first
    }
}
