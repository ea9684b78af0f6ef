//! A stack's last act: what the kernel does for a process's sockets when the
//! process exits, done by tapstack when its runtime is stopped or dropped (a
//! program that returns from main, or is stopped by a signal with
//! [`crate::Runtime::stop_on_signals`]).
//!
//! Every descriptor is closed as close(2) closes it (RFC 9293 section 3.10.4):
//! a connection sends its FIN after the data already queued; one with unread
//! data left, or with SO_LINGER on and a zero timeout, is reset instead (RFC
//! 1122 section 4.2.2.13, RFC 9293 SHLD-3), as Linux does; a listener resets the
//! connections it had not handed to accept(2). Then the stack keeps running
//! until every connection's FIN is acknowledged (FIN-WAIT-2 or TIME-WAIT), or
//! until `TcpConfig::exit_linger` (stack/src/tcp/config.rs) has passed, when
//! whatever is still unacknowledged is aborted (RFC 9293 section 3.10.5) and
//! the stack stops. The kernel outlives the process and can retransmit for
//! minutes; tapstack ends with its program, so its end is bounded, and a peer
//! is told by a RST rather than left waiting on a connection nobody serves.
//!
//! Sans-IO, like the descriptor table: the runtime drives it in real time, the
//! simulator in virtual time.

use crate::fd_table::{Fd, FdTable};
use stack::{Instant, Stack};

/// A stack on its way out: its descriptors closed, waiting for the peers'
/// acknowledgments until its deadline.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    deadline: Instant,
}

impl Exit {
    /// Closes every descriptor of `sockets` at `now`, as at a process's exit;
    /// the FINs and RSTs wait in the stack's transmit queue.
    pub fn begin(sockets: &mut FdTable, stack: &mut Stack, now: Instant) -> Exit {
        let fds: Vec<Fd> = sockets.open_fds().collect();
        for fd in fds {
            // Only EBADF can fail, and every fd here is open.
            let _ = sockets.close(stack, now, fd);
        }
        Exit { deadline: now + stack.tcp().0.config().exit_linger }
    }

    /// Whether the stack may stop: every connection's end is acknowledged, or
    /// the deadline has come, and then what is left is aborted first. Either
    /// way the caller sends what the stack queued one last time.
    pub fn done(&self, stack: &mut Stack, now: Instant) -> bool {
        let (tcp, net) = stack.tcp();
        if tcp.unfinished() == 0 {
            return true;
        }
        if now < self.deadline {
            return false;
        }
        tcp.abort_unfinished(now, net);
        true
    }

    /// When the wait for acknowledgments ends at the latest.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}
