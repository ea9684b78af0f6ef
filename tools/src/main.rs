//! The `tapstack` command.

use clap::{Parser, Subcommand};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use tapstack_tools::inspect::command as states;
use tapstack_tools::instance::StackOptions;
use tapstack_tools::{demo, nc, up};

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
        /// Services to run, comma-separated, each NAME or NAME:PORT: echo (TCP 7),
        /// discard (9), chargen (19), http (80), udp-echo (UDP 7).
        #[arg(long, default_value = up::ALL_SERVICES)]
        serve: String,
        /// Print every TCP state transition as it happens.
        #[arg(long)]
        trace: bool,
    },
    /// Show the stack at work on a fresh machine: namespace, TAP, pings, a pcap.
    Demo {
        /// Where to write the capture.
        #[arg(long, default_value = "demo.pcap")]
        pcap: PathBuf,
    },
    /// netcat on a tapstack instance of its own: `nc HOST PORT`, `nc -l PORT`, `-u` for UDP.
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
        /// HOST PORT, or PORT with -l.
        #[arg(num_args = 1..=2, required = true)]
        target: Vec<String>,
    },
    /// The TCP state diagram (RFC 9293 Figure 5) with the transitions a capture's or
    /// a trace's connections took, or their timeline.
    States {
        /// A pcap or pcapng capture of any TCP traffic.
        #[arg(long, conflicts_with = "trace", required_unless_present = "trace")]
        pcap: Option<PathBuf>,
        /// A trace written by `tapstack up --trace`.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Draw the diagram into FILE.svg or FILE.png (needs Graphviz's dot).
        #[arg(long, required_unless_present = "timeline")]
        out: Option<PathBuf>,
        /// Print each connection's segments with both sides' states.
        #[arg(long)]
        timeline: bool,
    },
}

fn nc_target(listen: bool, target: &[String]) -> Result<(Option<Ipv4Addr>, u16), String> {
    let port = |s: &str| s.parse::<u16>().map_err(|_| format!("'{s}' is not a port number"));
    match (listen, target) {
        (true, [p]) => Ok((None, port(p)?)),
        (false, [h, p]) => Ok((Some(h.parse().map_err(|_| format!("'{h}' is not an IPv4 address"))?), port(p)?)),
        (true, _) => Err("with -l, give just the PORT to listen on".into()),
        (false, _) => Err("give HOST PORT".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Up { stack, serve, trace } => up::run(stack, &serve, trace),
        Cmd::Demo { pcap } => demo::run(demo::DemoOptions { pcap }),
        Cmd::Nc { stack, udp, listen, quit_after_eof, target } => nc_target(listen, &target)
            .and_then(|(host, port)| nc::run(stack, nc::NcArgs { udp, listen, host, port, quit_after_eof })),
        Cmd::States { pcap, trace, out, timeline } => states::run(states::StatesOptions { pcap, trace, out, timeline }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapstack: {e}");
            ExitCode::FAILURE
        }
    }
}
