//! `tapstack nc`: netcat on its own tapstack instance, to talk to the kernel's nc.

use crate::instance::StackOptions;
use sockets_api::nc::{NcOptions, TcpNc, UdpNc};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// What `tapstack nc` was asked to do, as nc's flags say it.
#[derive(Clone, Debug)]
pub struct NcArgs {
    pub udp: bool,
    pub listen: bool,
    pub host: Option<Ipv4Addr>,
    pub port: u16,
    pub quit_after_eof: Option<u64>,
}

pub fn run(stack: StackOptions, args: NcArgs) -> Result<(), String> {
    let (remote, local) = if args.listen {
        (None, Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, args.port)))
    } else {
        let host = args.host.ok_or("nc needs HOST PORT (or -l PORT)")?;
        (Some(SocketAddrV4::new(host, args.port)), None)
    };
    let (runtime, _config) = stack.start()?;
    let net = runtime.net();
    let opts = NcOptions {
        listen: args.listen,
        remote,
        local,
        broadcast: false,
        quit_after_eof: args.quit_after_eof.map(Duration::from_secs),
    };
    let result = if args.udp {
        UdpNc::open(&net, opts).and_then(|nc| nc.run(std::io::stdin(), std::io::stdout()))
    } else {
        TcpNc::open(&net, opts).and_then(|nc| nc.run(std::io::stdin(), std::io::stdout()))
    };
    runtime.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
    result.map(|_| ()).map_err(|e| format!("nc: {e}"))
}
