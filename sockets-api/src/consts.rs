//! The constants of the BSD socket calls, with Linux's values, so that code reads
//! as it would in C (`socket(AF_INET, SOCK_DGRAM, 0)`).

// Address families (socket(2) `domain`).
pub const AF_UNSPEC: i32 = 0;
pub const AF_UNIX: i32 = 1;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_PACKET: i32 = 17;
/// Families are below this (Linux's AF_MAX); others are EAFNOSUPPORT too.
pub const AF_MAX: i32 = 46;
pub const PF_INET: i32 = AF_INET;

// Socket types (socket(2) `type`), and the flags that may be or-ed into it.
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_RDM: i32 = 4;
pub const SOCK_SEQPACKET: i32 = 5;
pub const SOCK_DCCP: i32 = 6;
pub const SOCK_PACKET: i32 = 10;
/// Types are below this (Linux's SOCK_MAX); others are EINVAL.
pub const SOCK_MAX: i32 = 11;
pub const SOCK_NONBLOCK: i32 = 0o4000;
pub const SOCK_CLOEXEC: i32 = 0o2000000;

// Protocols (socket(2) `protocol`) and option levels.
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
/// Protocols are below this (Linux's IPPROTO_MAX); others are EINVAL.
pub const IPPROTO_MAX: i32 = 263;
pub const SOL_SOCKET: i32 = 1;
pub const SOL_IP: i32 = IPPROTO_IP;
pub const SOL_TCP: i32 = IPPROTO_TCP;
pub const SOL_UDP: i32 = IPPROTO_UDP;

// Socket options, level SOL_SOCKET.
pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_LINGER: i32 = 13;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_RCVTIMEO: i32 = 20;
pub const SO_SNDTIMEO: i32 = 21;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;

// Level IPPROTO_IP.
pub const IP_TTL: i32 = 2;

// Level IPPROTO_TCP.
pub const TCP_NODELAY: i32 = 1;
pub const TCP_KEEPIDLE: i32 = 4;
pub const TCP_KEEPINTVL: i32 = 5;
pub const TCP_KEEPCNT: i32 = 6;

// send(2)/recv(2) flags.
pub const MSG_OOB: i32 = 0x1;
pub const MSG_PEEK: i32 = 0x2;
pub const MSG_DONTROUTE: i32 = 0x4;
pub const MSG_TRUNC: i32 = 0x20;
pub const MSG_DONTWAIT: i32 = 0x40;
pub const MSG_WAITALL: i32 = 0x100;
pub const MSG_NOSIGNAL: i32 = 0x4000;

// shutdown(2) `how`.
pub const SHUT_RD: i32 = 0;
pub const SHUT_WR: i32 = 1;
pub const SHUT_RDWR: i32 = 2;

// poll(2) events.
pub const POLLIN: i16 = 0x1;
pub const POLLPRI: i16 = 0x2;
pub const POLLOUT: i16 = 0x4;
pub const POLLERR: i16 = 0x8;
pub const POLLHUP: i16 = 0x10;
pub const POLLNVAL: i16 = 0x20;
pub const POLLRDNORM: i16 = 0x40;
pub const POLLWRNORM: i16 = 0x100;
pub const POLLRDHUP: i16 = 0x2000;

// fcntl(2).
pub const F_GETFD: i32 = 1;
pub const F_SETFD: i32 = 2;
pub const F_GETFL: i32 = 3;
pub const F_SETFL: i32 = 4;
pub const FD_CLOEXEC: i32 = 1;
pub const O_RDWR: i32 = 0o2;
pub const O_NONBLOCK: i32 = 0o4000;

/// select(2) handles descriptors below this.
pub const FD_SETSIZE: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_host_libc() {
        let pairs: &[(i64, i64)] = &[
            (AF_INET as i64, libc::AF_INET as i64),
            (AF_INET6 as i64, libc::AF_INET6 as i64),
            (AF_UNIX as i64, libc::AF_UNIX as i64),
            (AF_PACKET as i64, libc::AF_PACKET as i64),
            (SOCK_STREAM as i64, libc::SOCK_STREAM as i64),
            (SOCK_DGRAM as i64, libc::SOCK_DGRAM as i64),
            (SOCK_RAW as i64, libc::SOCK_RAW as i64),
            (SOCK_SEQPACKET as i64, libc::SOCK_SEQPACKET as i64),
            (SOCK_NONBLOCK as i64, libc::SOCK_NONBLOCK as i64),
            (SOCK_CLOEXEC as i64, libc::SOCK_CLOEXEC as i64),
            (IPPROTO_TCP as i64, libc::IPPROTO_TCP as i64),
            (IPPROTO_UDP as i64, libc::IPPROTO_UDP as i64),
            (SOL_SOCKET as i64, libc::SOL_SOCKET as i64),
            (SO_REUSEADDR as i64, libc::SO_REUSEADDR as i64),
            (SO_TYPE as i64, libc::SO_TYPE as i64),
            (SO_ERROR as i64, libc::SO_ERROR as i64),
            (SO_BROADCAST as i64, libc::SO_BROADCAST as i64),
            (SO_SNDBUF as i64, libc::SO_SNDBUF as i64),
            (SO_RCVBUF as i64, libc::SO_RCVBUF as i64),
            (SO_KEEPALIVE as i64, libc::SO_KEEPALIVE as i64),
            (SO_LINGER as i64, libc::SO_LINGER as i64),
            (SO_RCVTIMEO as i64, libc::SO_RCVTIMEO as i64),
            (SO_SNDTIMEO as i64, libc::SO_SNDTIMEO as i64),
            (SO_ACCEPTCONN as i64, libc::SO_ACCEPTCONN as i64),
            (SO_PROTOCOL as i64, libc::SO_PROTOCOL as i64),
            (SO_DOMAIN as i64, libc::SO_DOMAIN as i64),
            (IP_TTL as i64, libc::IP_TTL as i64),
            (TCP_NODELAY as i64, libc::TCP_NODELAY as i64),
            (TCP_KEEPIDLE as i64, libc::TCP_KEEPIDLE as i64),
            (TCP_KEEPINTVL as i64, libc::TCP_KEEPINTVL as i64),
            (TCP_KEEPCNT as i64, libc::TCP_KEEPCNT as i64),
            (MSG_OOB as i64, libc::MSG_OOB as i64),
            (MSG_PEEK as i64, libc::MSG_PEEK as i64),
            (MSG_TRUNC as i64, libc::MSG_TRUNC as i64),
            (MSG_DONTWAIT as i64, libc::MSG_DONTWAIT as i64),
            (MSG_WAITALL as i64, libc::MSG_WAITALL as i64),
            (MSG_NOSIGNAL as i64, libc::MSG_NOSIGNAL as i64),
            (SHUT_RD as i64, libc::SHUT_RD as i64),
            (SHUT_WR as i64, libc::SHUT_WR as i64),
            (SHUT_RDWR as i64, libc::SHUT_RDWR as i64),
            (POLLIN as i64, libc::POLLIN as i64),
            (POLLOUT as i64, libc::POLLOUT as i64),
            (POLLERR as i64, libc::POLLERR as i64),
            (POLLHUP as i64, libc::POLLHUP as i64),
            (POLLNVAL as i64, libc::POLLNVAL as i64),
            (POLLRDHUP as i64, libc::POLLRDHUP as i64),
            (F_GETFL as i64, libc::F_GETFL as i64),
            (F_SETFL as i64, libc::F_SETFL as i64),
            (O_NONBLOCK as i64, libc::O_NONBLOCK as i64),
            (FD_SETSIZE as i64, libc::FD_SETSIZE as i64),
        ];
        for (i, (ours, host)) in pairs.iter().enumerate() {
            assert_eq!(ours, host, "entry {i}");
        }
    }
}
