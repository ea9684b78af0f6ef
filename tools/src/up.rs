//! `tapstack up`: runs the stack on a TAP, with its services, until SIGINT or SIGTERM.
//! The top of the layering: built on [`crate::instance`], [`crate::control`] and [`crate::signals`]; only main.rs calls
//! [`run`] (the connections benchmark calls [`start`]).

use crate::banner::{self, Served};
use crate::control::{self, ControlServer};
use crate::instance::{OffloadState, StackOptions};
use crate::reclaim::Reclaimer;
use crate::signals;
use sockets_api::services::{ServiceLimits, ServiceSet};
use sockets_api::{Net, Runtime};
use stack::Config;
use std::path::PathBuf;
use std::time::Instant;

/// Runs until SIGINT or SIGTERM; `control` overrides where the control socket
/// listens (default [`control::default_path`] of the TAP).
/// `limits` are the TCP services' limits and whether each gets its share of
/// the descriptor limit instead of their `max_connections` ([`ServiceSet::start_list_with`]).
pub fn run(
    opts: StackOptions,
    serve: &str,
    trace: bool,
    control: Option<PathBuf>,
    limits: (ServiceLimits, bool),
) -> Result<(), String> {
    signals::block();
    let (runtime, config, services, offloads) = start(&opts, serve, trace, limits)?;
    let net = runtime.net();
    let control = start_control(&opts.tap, control, &net, &offloads)?;
    let reclaimer = Reclaimer::start();
    crate::say!("tapstack is up on {}: {}/{} at {}", opts.tap, config.addr, config.prefix_len, config.mac);
    if let Some(gw) = config.gateway {
        crate::say!("  default gateway {gw}");
    }
    // A refusal was said on stderr as the TAP opened.
    if !matches!(offloads, OffloadState::Refused(..)) {
        crate::say!("  {}", offloads.describe());
    }
    if let Some(p) = &opts.pcap {
        crate::say!("  recording every frame to {}", p.display());
    }
    let served: Vec<Served> =
        services.services().iter().map(|s| (s.name(), s.protocol(), s.local_addr().port())).collect();
    let listed: Vec<String> = served.iter().map(|(name, proto, port)| format!("{name} ({proto} {port})")).collect();
    crate::say!("  serving: {}", listed.join(", "));
    for line in banner::hints(&config, &opts.tap, &served) {
        crate::say!("{line}");
    }
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
    drop(reclaimer);
    drop(control);
    let _ = services.stop();
    let counters = runtime.counters();
    runtime.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
    crate::say!("\nstopped by signal {sig}; counters:\n{}", counters.report());
    Ok(())
}

/// What [`run`] starts before it waits: the stack on the TAP, with the
/// services `serve` names listening before it answers anything (issue 13 item
/// 13), and every TCP state transition printed if `trace`. Also how the
/// connections benchmark (`tests/benches/conn_servers.rs`) starts the server
/// it measures, so that it is `tapstack up`'s own code.
pub fn start(
    opts: &StackOptions,
    serve: &str,
    trace: bool,
    limits: (ServiceLimits, bool),
) -> Result<(Runtime, Config, ServiceSet, OffloadState), String> {
    // The services listen before the stack answers anything (issue 13 item 13).
    opts.start_serving_with(|net| {
        if trace {
            print_transitions(net);
        }
        ServiceSet::start_list_with(net, serve, limits.0, limits.1)
            .map_err(|e| format!("cannot start the services '{serve}': {e}"))
    })
}

/// `--serve`'s value, checked before anything starts (see [`ServiceSet::parse_list`]).
pub fn parse_serve(list: &str) -> Result<String, String> {
    ServiceSet::parse_list(list).map(|_| list.to_string()).map_err(|e| e.to_string())
}

/// Prints every TCP state transition as it happens, from the runtime's bounded trace channel.
fn print_transitions(net: &Net) {
    let transitions = net.trace_transitions(4096);
    let start = Instant::now();
    std::thread::spawn(move || {
        for t in transitions.iter() {
            crate::say!("[{:>10.6}] {t}", start.elapsed().as_secs_f64());
        }
    });
}

/// The control socket: at `path` if given (failing to listen there is an error),
/// else at the TAP's default path, where a failure (no /run to write to, say)
/// only costs `tapstack ss` and is reported as a warning.
/// `tapstack stats` says how the TAP was opened (`offloads`), in its Link section.
fn start_control(
    tap: &str,
    path: Option<PathBuf>,
    net: &Net,
    offloads: &OffloadState,
) -> Result<Option<ControlServer>, String> {
    let note = Some(offloads.describe());
    match path {
        Some(p) => ControlServer::start_with_note(&p, net.clone(), note).map(Some),
        None => match ControlServer::start_with_note(&control::default_path(tap), net.clone(), note) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                eprintln!("tapstack: warning: no control socket, so `tapstack ss` cannot reach this stack: {e}");
                Ok(None)
            }
        },
    }
}
