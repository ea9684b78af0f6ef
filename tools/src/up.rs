//! `tapstack up`: runs the stack on a TAP, with its services, until SIGINT or SIGTERM.
//! The top of the layering: built on [`crate::instance`], [`crate::control`] and [`crate::signals`]; only main.rs calls it.

use crate::banner::{self, Served};
use crate::control::{self, ControlServer};
use crate::instance::{OffloadState, StackOptions};
use crate::reclaim::Reclaimer;
use crate::signals;
use sockets_api::services::{ServiceLimits, ServiceSet};
use sockets_api::Net;
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
    // The services listen before the stack answers anything (issue 13 item 13).
    let (runtime, config, services, offloads) = opts.start_serving_with(|net| {
        if trace {
            print_transitions(net);
        }
        ServiceSet::start_list_with(net, serve, limits.0, limits.1)
            .map_err(|e| format!("cannot start the services '{serve}': {e}"))
    })?;
    let net = runtime.net();
    if let Some(w) = nofile_warning(opts.max_fds, nofile_hard_limit()) {
        eprintln!("tapstack: warning: {w}");
    }
    let control = start_control(&opts.tap, control, &net, &offloads)?;
    let reclaimer = Reclaimer::start();
    crate::say!("tapstack is up on {}: {}/{} at {}", opts.tap, config.addr, config.prefix_len, config.mac);
    if let Some(gw) = config.gateway {
        crate::say!("  default gateway {gw}");
    }
    // A refusal was said on stderr as the TAP opened.
    if !matches!(offloads, OffloadState::Refused(_)) {
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

/// The process's RLIMIT_NOFILE hard limit (`None`: unlimited or unknown).
fn nofile_hard_limit() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit with a valid struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    (ok && r.rlim_max != libc::RLIM_INFINITY).then_some(r.rlim_max)
}

/// What to say when the process's descriptor limit (`hard`, RLIMIT_NOFILE's
/// hard limit) is below `--max-fds`: tapstack sockets hold a kernel descriptor
/// (`sockets_api`'s kernel_fds) up to that limit, and the ones past it are
/// numbered beyond the kernel's (from fs.nr_open up) without one: they serve
/// as well, but an outside event loop cannot wait on them (`AsRawFd`). The
/// soft limit is raised to the hard one when needed; the hard one is the
/// administrator's to raise.
fn nofile_warning(max_fds: usize, hard: Option<u64>) -> Option<String> {
    let hard = hard?;
    (hard < max_fds as u64).then(|| {
        format!(
            "RLIMIT_NOFILE's hard limit is {hard}, below --max-fds {max_fds}: sockets past it are \
             numbered beyond the kernel's descriptors (from fs.nr_open up) and have no kernel descriptor \
             for an outside event loop; raise it (ulimit -Hn, prlimit, systemd's LimitNOFILE=) to avoid that"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::nofile_warning;

    #[test]
    fn a_descriptor_limit_below_max_fds_is_reported() {
        let w = nofile_warning(262_144, Some(20_000)).expect("a warning");
        assert!(w.contains("20000") && w.contains("262144"), "{w}");
        assert_eq!(nofile_warning(262_144, Some(1 << 20)), None);
        assert_eq!(nofile_warning(262_144, None), None);
    }
}
