//! socket(2)'s arguments: the kinds of socket there are, and the checks of
//! domain, type and protocol in the order Linux makes them.

use crate::consts::*;
use crate::errno::{Errno, Result};

/// The kind of socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SockType {
    Dgram,
    Stream,
}

impl SockType {
    pub(crate) fn raw(self) -> i32 {
        match self {
            SockType::Dgram => SOCK_DGRAM,
            SockType::Stream => SOCK_STREAM,
        }
    }
}

/// socket(2)'s argument checks, in Linux's order: the socket's kind and protocol
/// number, and whether it starts nonblocking.
pub(crate) fn check_socket_args(domain: i32, ty: i32, protocol: i32) -> Result<(SockType, i32, bool)> {
    let flags = ty & !0xf;
    let base = ty & 0xf;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    if !(0..SOCK_MAX).contains(&base) {
        return Err(Errno::EINVAL);
    }
    if domain != AF_INET {
        return Err(Errno::EAFNOSUPPORT);
    }
    if !(0..IPPROTO_MAX).contains(&protocol) {
        return Err(Errno::EINVAL);
    }
    let (sock_type, proto_num) = match base {
        SOCK_DGRAM => (SockType::Dgram, IPPROTO_UDP),
        SOCK_STREAM => (SockType::Stream, IPPROTO_TCP),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    if protocol != 0 && protocol != proto_num {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok((sock_type, proto_num, flags & SOCK_NONBLOCK != 0))
}
