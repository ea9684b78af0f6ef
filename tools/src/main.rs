//! The `tapstack` command.

use clap::{Parser, Subcommand};
use sockets_api::services::{ServiceLimits, MAX_CONNECTIONS};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use tapstack_tools::inspect::command as states;
use tapstack_tools::instance::{StackOptions, ALL_SERVICES};
use tapstack_tools::{demo, nc, reclaim, scenario, up};

/// Counts the bytes held, so that `up` can hand freed memory back (see [`reclaim`]).
#[global_allocator]
static ALLOCATOR: reclaim::Counting = reclaim::Counting;

/// Exit status of a check: 0 when it held, 1 when it did not, 2 when it could not run.
fn exit(r: Result<bool, String>) -> ExitCode {
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tapstack: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Parser)]
#[command(name = "tapstack", version, about = "A userspace TCP/IP stack on a Linux TAP device")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the stack on a TAP device with its services until Ctrl-C or SIGTERM.
    Up {
        #[command(flatten)]
        stack: StackOptions,
        /// Services to run, comma-separated, each NAME or NAME:PORT (PORT 1 to 65535;
        /// NAME alone is its well-known port): echo (TCP 7), discard (9), chargen
        /// (19), http (80), udp-echo (UDP 7). They listen before the stack answers
        /// anything, ping included.
        #[arg(long, default_value = ALL_SERVICES, value_parser = up::parse_serve)]
        serve: String,
        /// Print every TCP state transition as it happens.
        #[arg(long)]
        trace: bool,
        /// Where `tapstack ss` and `tapstack stats` reach it (default /run/tapstack/TAP.sock).
        #[arg(long)]
        control: Option<PathBuf>,
        /// The listen(2) backlog of the TCP services (Linux's default somaxconn is 4096).
        #[arg(long, default_value_t = 4096)]
        backlog: i32,
        /// Most connections each TCP service serves at once; default: its share
        /// of --max-fds (divided among the TCP services, one share left over),
        /// so that a client holding one service's connections cannot stop the others.
        #[arg(long)]
        service_max_connections: Option<usize>,
        /// Seconds after which a TCP service closes a connection on which
        /// nothing happened (a vanished or idle client); 0: never.
        #[arg(long, default_value_t = 300)]
        idle_timeout: u64,
    },
    /// The sockets of a running `tapstack up`, as Linux's `ss` prints them.
    Ss {
        #[command(flatten)]
        flags: tapstack_tools::ss::SsFlags,
        #[command(flatten)]
        target: tapstack_tools::control::Target,
    },
    /// The counters of a running `tapstack up`, as `netstat -s` prints them.
    Stats {
        #[command(flatten)]
        target: tapstack_tools::control::Target,
    },
    /// Show the stack at work on a fresh machine: namespace, TAP, pings, a pcap.
    Demo {
        /// Where to write the capture.
        #[arg(long, default_value = "demo.pcap")]
        pcap: PathBuf,
    },
    /// netcat on a tapstack instance of its own: `nc HOST PORT`, `nc -l [ADDR] PORT`, `-u` for UDP.
    Nc {
        #[command(flatten)]
        stack: StackOptions,
        /// UDP instead of TCP.
        #[arg(short = 'u')]
        udp: bool,
        /// Listen: accept one connection (TCP) or wait for the first datagram (UDP).
        #[arg(short = 'l')]
        listen: bool,
        /// After standard input ends, wait this many seconds, then quit.
        #[arg(short = 'q')]
        quit_after_eof: Option<u64>,
        /// Say on standard error what happens (connected, listening, refused).
        #[arg(short = 'v')]
        verbose: bool,
        /// Zero-I/O: only check that the TCP port accepts a connection, then close.
        #[arg(short = 'z')]
        zero_io: bool,
        /// A connection not made within this many seconds fails; a session idle
        /// this long ends (TCP).
        #[arg(short = 'w')]
        timeout: Option<u64>,
        /// The local port: the source port of a client, or (as traditional nc's
        /// `-l -p PORT`) the port to listen on.
        #[arg(short = 'p')]
        source_port: Option<u16>,
        /// HOST PORT; with -l: [ADDR] PORT, or nothing with -p.
        #[arg(num_args = 0..=2)]
        target: Vec<String>,
    },
    /// Record a scenario's capture afresh: against the Linux kernel over a TAP in
    /// a namespace of its own (or a second tapstack in virtual time), writing
    /// NAME.pcapng and NAME.trace beside the scenario (a symbolic link at either is refused), then replay it once.
    Record {
        /// The scenario file (captures/NAME.toml).
        scenario: PathBuf,
        /// Write the capture and trace here instead (the scenario file is copied along).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Also capture the TAP with tcpdump into this file.
        #[arg(long)]
        tcpdump: Option<PathBuf>,
    },
    /// Replay a capture against a fresh stack on the virtual clock and compare
    /// every frame tapstack sends with the recorded one; exit 1 at the first divergence.
    Replay {
        /// A pcap or pcapng capture.
        capture: PathBuf,
        /// The scenario (default: the capture's path with .toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Allow each frame this many microseconds off its recorded time, either way
        /// (default: 0 for tapstack's recordings; for other programs' captures
        /// 20000 early and 1000 late, see `tools/src/scenario/replay.rs`).
        #[arg(long)]
        time_tolerance_us: Option<u64>,
        /// Print tapstack's state transitions during the replay.
        #[arg(long)]
        trace: bool,
    },
    /// The TCP state diagram (RFC 9293 Figure 5) with the transitions a capture's or
    /// a trace's connections took, their timeline, or pictures of one connection.
    States {
        /// A pcap or pcapng capture of any TCP traffic (Ethernet, Linux cooked, loopback, raw IP).
        #[arg(long, conflicts_with = "trace", required_unless_present = "trace")]
        pcap: Option<PathBuf>,
        /// A trace written by `tapstack up --trace`.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Draw the diagram into FILE.svg or FILE.png (needs Graphviz's dot). Without
        /// --out, --timeline, --tsg or --ladder, the timeline and the transitions
        /// taken (counted as the diagram counts them) are printed instead.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print each connection's segments with both sides' states.
        #[arg(long)]
        timeline: bool,
        /// Only connection N (as the timeline numbers them), for --timeline, --tsg, --ladder.
        #[arg(long, value_name = "N")]
        conn: Option<usize>,
        /// Draw the connection's time-sequence graph (Stevens/tcptrace) into FILE.svg or FILE.png.
        #[arg(long, value_name = "FILE")]
        tsg: Option<PathBuf>,
        /// Draw the connection's ladder diagram into FILE.svg or FILE.png.
        #[arg(long, value_name = "FILE")]
        ladder: Option<PathBuf>,
    },
}

/// What nc's positional arguments say: the host (the remote one, or with -l the
/// local address) and the port.
fn nc_target(listen: bool, source_port: Option<u16>, target: &[String]) -> Result<(Option<Ipv4Addr>, u16), String> {
    let port = |s: &str| s.parse::<u16>().map_err(|_| format!("'{s}' is not a port number"));
    let host = |h: &str| h.parse().map_err(|_| format!("'{h}' is not an IPv4 address"));
    match (listen, target) {
        (true, []) => source_port.map(|p| (None, p)).ok_or_else(|| "with -l, give the PORT to listen on".into()),
        (true, [p]) => Ok((None, port(p)?)),
        (true, [h, p]) => Ok((Some(host(h)?), port(p)?)),
        (false, [h, p]) => Ok((Some(host(h)?), port(p)?)),
        (true, _) => Err("with -l, give [ADDR] PORT".into()),
        (false, _) => Err("give HOST PORT".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Record { scenario, out_dir, tcpdump } => {
            let opts = scenario::record::RecordOptions { tcpdump };
            return exit(scenario::run_record(&scenario, out_dir.as_deref(), &opts));
        }
        Cmd::Replay { capture, scenario, time_tolerance_us, trace } => {
            let tolerance = time_tolerance_us
                .map(|us| scenario::replay::Tolerance::symmetric(std::time::Duration::from_micros(us)));
            return exit(scenario::run_replay(&capture, scenario.as_deref(), tolerance, trace));
        }
        Cmd::Up { stack, serve, trace, control, backlog, service_max_connections, idle_timeout } => {
            let limits = ServiceLimits {
                max_connections: service_max_connections.unwrap_or(MAX_CONNECTIONS),
                idle_timeout: (idle_timeout > 0).then(|| std::time::Duration::from_secs(idle_timeout)),
                backlog,
            };
            up::run(stack, &serve, trace, control, (limits, service_max_connections.is_none()))
        }
        Cmd::Ss { flags, target } => {
            for note in flags.notes() {
                eprintln!("note: {note}");
            }
            flags
                .parsed_filter()
                .and_then(|_| tapstack_tools::control::print(&target, &format!("ss {}", flags.to_args())))
        }
        Cmd::Stats { target } => tapstack_tools::control::print(&target, "stats"),
        Cmd::Demo { pcap } => demo::run(demo::DemoOptions { pcap }),
        Cmd::Nc { stack, udp, listen, quit_after_eof, verbose, zero_io, timeout, source_port, target } => {
            nc_target(listen, source_port, &target).and_then(|(host, port)| {
                let args =
                    nc::NcArgs { udp, listen, host, port, quit_after_eof, verbose, zero_io, timeout, source_port };
                nc::run(stack, args)
            })
        }
        Cmd::States { pcap, trace, out, timeline, conn, tsg, ladder } => {
            states::run(states::StatesOptions { pcap, trace, out, timeline, conn, tsg, ladder })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapstack: {e}");
            ExitCode::FAILURE
        }
    }
}
