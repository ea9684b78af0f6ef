//! Errors reported to the user. Each variant's doc names the Linux errno it
//! mirrors; the mapping to numbers lives in sockets-api (`errno.rs`), so that the
//! protocol core does not depend on libc.

use core::fmt;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TcpError {
    /// ECONNREFUSED: the peer answered our SYN with RST (or ICMP port unreachable).
    ConnectionRefused,
    /// ECONNRESET: the peer reset an established connection.
    ConnectionReset,
    /// EPIPE: sending after our side was shut down or the connection ended.
    BrokenPipe,
    /// ENOTCONN: the socket is not connected (a listener, or not yet accepted).
    NotConnected,
    /// EISCONN.
    AlreadyConnected,
    /// EALREADY: a connection attempt is in progress.
    AlreadyInProgress,
    /// ETIMEDOUT: retransmissions, SYN retries or keep-alive probes ran out.
    TimedOut,
    /// EADDRINUSE: the local address is taken (by a TIME-WAIT connection too,
    /// without reuse_addr).
    AddrInUse,
    /// ECONNABORTED: the connection was aborted locally.
    ConnectionAborted,
    /// EAGAIN/EWOULDBLOCK: nothing to read, no room to write, nothing to accept.
    WouldBlock,
    /// EINVAL/EBADF: the call makes no sense for this socket or handle.
    InvalidState,
    /// EHOSTUNREACH: ICMP (or ARP) said the peer cannot be reached.
    HostUnreachable,
    /// ENOBUFS: the connection table is full.
    NoBufferSpace,
    /// EINVAL: a bad argument.
    InvalidArgument,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TcpError::ConnectionRefused => "connection refused",
            TcpError::ConnectionReset => "connection reset by peer",
            TcpError::BrokenPipe => "broken pipe",
            TcpError::NotConnected => "not connected",
            TcpError::AlreadyConnected => "already connected",
            TcpError::AlreadyInProgress => "operation already in progress",
            TcpError::TimedOut => "connection timed out",
            TcpError::AddrInUse => "address in use",
            TcpError::ConnectionAborted => "connection aborted",
            TcpError::WouldBlock => "operation would block",
            TcpError::InvalidState => "invalid socket state",
            TcpError::HostUnreachable => "no route to host",
            TcpError::NoBufferSpace => "no buffer space available",
            TcpError::InvalidArgument => "invalid argument",
        };
        f.write_str(s)
    }
}

impl std::error::Error for TcpError {}
