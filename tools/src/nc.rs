//! `tapstack nc`: netcat on its own tapstack instance, to talk to the kernel's nc.
//! Its flags mean what OpenBSD nc's do (`-l -u -q -v -z -w -p`), and `-v` says
//! what OpenBSD nc says, so a lab sheet written for one works with the other.

use crate::instance::StackOptions;
use crate::signals;
use sockets_api::nc::{NcOptions, TcpNc, UdpNc};
use sockets_api::Runtime;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// What `tapstack nc` was asked to do, as nc's flags say it.
#[derive(Clone, Debug, Default)]
pub struct NcArgs {
    pub udp: bool,
    pub listen: bool,
    /// The peer; with `listen`, the local address to listen on (if any).
    pub host: Option<Ipv4Addr>,
    pub port: u16,
    pub quit_after_eof: Option<u64>,
    /// `-v`: report on standard error.
    pub verbose: bool,
    /// `-z`: connect, then close at once.
    pub zero_io: bool,
    /// `-w secs`.
    pub timeout: Option<u64>,
    /// `-p port`: the local port of a client.
    pub source_port: Option<u16>,
}

impl NcArgs {
    /// The socket-level options: who to reach, where to be.
    fn options(&self) -> Result<NcOptions, String> {
        let (remote, local) = if self.listen {
            (None, Some(SocketAddrV4::new(self.host.unwrap_or(Ipv4Addr::UNSPECIFIED), self.port)))
        } else {
            let host = self.host.ok_or("nc needs HOST PORT (or -l PORT)")?;
            let local = self.source_port.map(|p| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p));
            (Some(SocketAddrV4::new(host, self.port)), local)
        };
        Ok(NcOptions {
            listen: self.listen,
            remote,
            local,
            broadcast: false,
            quit_after_eof: self.quit_after_eof.map(Duration::from_secs),
            timeout: self.timeout.map(Duration::from_secs),
        })
    }
}

pub fn run(stack: StackOptions, args: NcArgs) -> Result<(), String> {
    if args.zero_io && (args.udp || args.listen) {
        return Err("-z checks a TCP port: it goes without -u and -l".into());
    }
    let opts = args.options()?;
    // Before the stack's threads start, which inherit the mask (see signals).
    signals::block();
    let (runtime, _config) = stack.start()?;
    stop_on_signals(&runtime);
    let net = runtime.net();
    let proto = if args.udp { "udp" } else { "tcp" };
    let result = if args.udp {
        UdpNc::open(&net, opts).and_then(|nc| {
            say_open(&args, nc.local_addr().ok(), proto);
            nc.run(std::io::stdin(), std::io::stdout())
        })
    } else {
        match TcpNc::open(&net, opts) {
            Ok(nc) => {
                say_open(&args, nc.local_addr().ok(), proto);
                if args.zero_io {
                    nc.close();
                    Ok(Default::default())
                } else {
                    nc.run(std::io::stdin(), std::io::stdout())
                }
            }
            Err(e) => Err(e),
        }
    };
    runtime.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
    result.map(|_| ()).map_err(|e| match (args.verbose, args.host) {
        // OpenBSD nc -v: "nc: connect to HOST port PORT (tcp) failed: Connection refused".
        (true, Some(h)) if !args.listen => format!("nc: connect to {h} port {} ({proto}) failed: {e}", args.port),
        _ => format!("nc: {e}"),
    })
}

/// SIGINT and SIGTERM (blocked in every thread, waited for on one: see
/// [`signals`]) stop the stack as the end of a program stops it, its connection
/// closed as the kernel closes a killed C nc's (a FIN, or a RST with unread
/// data: `sockets_api::exit`) within the stack's `exit_linger`; then nc exits
/// with 128 + the signal, the status a shell gives a killed program; its own
/// threads, blocked in calls, never return. A second signal meanwhile exits at once.
fn stop_on_signals(runtime: &Runtime) {
    let shared = runtime.shared().clone();
    std::thread::spawn(move || {
        let sig = signals::wait();
        std::thread::spawn(move || {
            shared.stop_before_exit(shared.stop_within());
            std::process::exit(128 + sig);
        });
        signals::wait();
        std::process::exit(128 + sig);
    });
}

/// What `-v` says once the socket is open, in OpenBSD nc's words.
fn say_open(args: &NcArgs, local: Option<SocketAddrV4>, proto: &str) {
    if !args.verbose {
        return;
    }
    match (args.listen, local, args.host) {
        (true, Some(l), _) => eprintln!("Listening on {} {}", l.ip(), l.port()),
        (false, _, Some(h)) if proto == "tcp" => {
            eprintln!("Connection to {h} {} port [{proto}/*] succeeded!", args.port)
        }
        _ => {}
    }
}
