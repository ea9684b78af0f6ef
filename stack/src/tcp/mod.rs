//! TCP (RFC 9293), sans-IO.
//!
//! Reading order, next to RFC 9293:
//! - [`seq`]: sequence-number arithmetic (section 3.4);
//! - [`segment`]: the header, options and checksum (sections 3.1, 3.2);
//! - [`isn`]: initial sequence numbers (section 3.4.1, RFC 6528);
//! - [`state`]: the eleven states (section 3.3.2);
//! - [`conn`]: one connection, its TCB (section 3.3.1) and state machine
//!   (section 3.10), by concern as in BSD: `conn::input` (SEGMENT ARRIVES,
//!   3.10.7.3 and 3.10.7.4, one function per check, in the RFC's order),
//!   `conn::output` (every segment we send, built in one place, and what to
//!   send when), `conn::timers` (3.10.8: retransmission, persist, keep-alive,
//!   delayed ACK, TIME-WAIT), `conn::user` (the user calls of 3.10.2-3.10.5),
//!   `conn::icmp` (3.9.2.2). They use [`send`] (Nagle, sender SWS), [`recv`]
//!   (reassembly, receiver SWS), [`rtt`] (RFC 6298) and [`congestion`]
//!   (RFC 5681, RFC 6582);
//! - `table`: the [`Tcp`] layer's table of connections and listeners (handles,
//!   the 4-tuple map, accept queues, the timer schedule); `time_waits`: the
//!   compact records that closed connections in TIME-WAIT become
//!   ([`conn::TimeWait`], as Linux's tcp_timewait_sock), in a FIFO by expiry;
//! - `demux`: segments in: demultiplexing, LISTEN (section 3.10.7.2), resets
//!   for segments nobody owns (3.10.7.1), ICMP errors, timers due;
//! - `calls`: the user calls on the table (section 3.10: OPEN, SEND, RECEIVE,
//!   CLOSE, ABORT, STATUS as the sockets API shapes them), answered with
//!   [`Readiness`] and [`TcpInfo`];
//! - [`lower`]: what TCP needs from the layers below ([`TcpNet`]);
//! - [`trace`]: state transitions as events, each with its [`cause`].
//!
//! A listener's backlog bounds its SYN queue (connections in SYN-RECEIVED) and,
//! apart, its accept queue, as Linux's. A SYN finding the accept queue full is
//! dropped ([`DropReason::TcpBacklogFull`](crate::counters::DropReason::TcpBacklogFull));
//! one finding the SYN queue (or the connection table) full is answered with a
//! SYN cookie (RFC 4987 section 3.6, [`syncookie`]), or dropped when cookies are
//! off. Our SYN,ACK is retransmitted 5 times (Linux's tcp_synack_retries).

//! Choices (each default is a field of [`TcpConfig`] or [`SocketOptions`]):
//! - MSL 30 s, so TIME-WAIT lasts 60 s as on Linux; an orphaned FIN-WAIT-2 ends
//!   after 60 s (Linux's tcp_fin_timeout).
//! - RTO: 1 s initially, 200 ms minimum (Linux; RFC 6298 says 1 s), 120 s maximum.
//!   R2: 7 SYN retransmissions (gives up after 247 s, MUST-23's 3 minutes), 15
//!   data retransmissions (Linux's tcp_retries2; well over MUST-20's 100 s).
//! - Delayed ACK 40 ms, and an ACK at once for every second segment, for
//!   out-of-order data, for data filling a gap and for a FIN.
//! - Buffers 64 KiB each way; the window scale on our SYN follows the receive buffer.
//! - Nagle on, keep-alive off (2 h idle, 75 s interval, 9 probes when on).
//! - A new SYN may reopen a TIME-WAIT connection if its sequence number is
//!   beyond the old connection's (RFC 1122 section 4.2.2.13); older SYNs get a
//!   challenge ACK (RFC 5961 section 4).
//! - An exact RST in TIME-WAIT closes it (RFC 9293, as Linux without
//!   tcp_rfc1337); an in-window RST that is not exact is dropped silently, not
//!   challenged (RFC 1337, RFC 5961 section 3).
//! - Challenge ACKs: one per 500 ms per connection, under a stack-wide budget
//!   drawn at random each second (RFC 5961 section 7, Linux since 4.7; `challenge`).
//!
//! - SACK (RFC 2018, with D-SACK, RFC 2883) and timestamps (RFC 7323) are
//!   offered on every SYN and used when the peer agrees, as Linux does
//!   ([`TcpConfig::sack`], [`TcpConfig::timestamps`]); with SACK, losses are
//!   repaired from the [`sack`] scoreboard (RFC 6675) at the pace of
//!   [`recovery`] (PRR, RFC 6937).
//!
//! Not implemented: urgent data (delivered inline, as with SO_OOBINLINE), ECN, data on a SYN (not acknowledged, so the peer sends it again),
//! RFC 9293's SEND in LISTEN (the sockets API has no such call), the user timeout.

/// Builds the context for an event from the table's fields, leaving the slab
/// free to be borrowed for the connection.
macro_rules! ctx {
    ($self:ident, $now:expr, $net:expr) => {
        $crate::tcp::conn::Ctx {
            now: $now,
            net: $net,
            cfg: &$self.cfg,
            challenge: &mut $self.challenge,
            trace: &mut $self.trace,
            batch: $self.batch_open,
        }
    };
}

mod calls;
pub mod cause;
pub mod challenge;
pub mod config;
pub mod congestion;
pub mod conn;
pub mod cubic;
mod demux;
pub mod error;
pub mod hystart;
mod id;
pub mod isn;
pub mod lower;
pub mod rack;
pub mod recovery;
pub mod recv;
pub mod rtt;
pub mod sack;
pub mod segment;
pub mod send;
pub mod seq;
pub mod state;
mod status;
pub mod syncookie;
mod table;
mod time_waits;
pub mod timestamps;
pub mod trace;

#[cfg(test)]
mod tests;

pub use cause::Cause;
pub use config::{SocketOptions, TcpConfig};
pub use conn::Shutdown;
pub use error::TcpError;
pub use id::ConnId;
pub use lower::TcpNet;
pub use seq::Seq;
pub use state::State;
pub use status::{LossInfo, Readiness, TcpInfo, TimerInfo};
pub use table::{Tcp, EPHEMERAL_PORTS};
pub use timestamps::SynOptions;
pub use trace::Transition;
