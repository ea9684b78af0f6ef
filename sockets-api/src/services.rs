//! Small services written with the socket calls, as an ordinary application would
//! write them: `tapstack up` runs [`udp_echo`] on port 7 (RFC 862).

use crate::consts::*;
use crate::errno::{Errno, Result};
use crate::table::Fd;
use crate::Net;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running UDP echo service. [`UdpEcho::stop`] (or dropping it) stops the thread
/// and closes its socket.
#[derive(Debug)]
pub struct UdpEcho {
    net: Net,
    fd: Fd,
    local: SocketAddrV4,
    stopping: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<()>>>,
}

/// Starts a UDP echo server (RFC 862) on `addr` (port 7 is echo's) in a thread
/// of its own: every datagram goes back to its sender unchanged.
///
/// Errors: those of socket(2) and bind(2) (EADDRINUSE, EADDRNOTAVAIL, ...).
pub fn udp_echo(net: &Net, addr: impl Into<SocketAddr>) -> Result<UdpEcho> {
    let fd = net.socket(AF_INET, SOCK_DGRAM, 0)?;
    if let Err(e) = net.bind(fd, addr) {
        let _ = net.close(fd);
        return Err(e);
    }
    let local = net.getsockname(fd)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let (n, s, c) = (net.clone(), stopping.clone(), echoed.clone());
    let thread = std::thread::Builder::new()
        .name(format!("udp-echo-{}", local.port()))
        .spawn(move || echo_loop(&n, fd, &s, &c))
        .map_err(|_| Errno::EAGAIN)?;
    Ok(UdpEcho { net: net.clone(), fd, local, stopping, echoed, thread: Some(thread) })
}

/// The server loop, as in C: recvfrom, sendto, forever. The descriptor is closed
/// by [`UdpEcho::stop`], after this returns, so that it cannot be reused meanwhile.
fn echo_loop(net: &Net, fd: Fd, stopping: &AtomicBool, echoed: &AtomicU64) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let r = net.recvfrom(fd, &mut buf, 0);
        if stopping.load(Ordering::Acquire) {
            break Ok(());
        }
        match r {
            Ok((n, peer)) => {
                // A reply that cannot go out (no route, say) is not the server's
                // problem; like inetd's echo it serves the next datagram.
                if net.sendto(fd, &buf[..n], 0, peer).is_ok() {
                    echoed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(Errno::ENETDOWN) => break Ok(()),
            Err(e) => break Err(e),
        }
    }
}

impl UdpEcho {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Datagrams echoed so far.
    pub fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Stops the service: wakes its thread (shutdown(2) on its socket), waits for it
    /// and returns the error that had stopped it early, if any.
    pub fn stop(mut self) -> Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<()> {
        self.stopping.store(true, Ordering::Release);
        // On an unconnected socket this says ENOTCONN but still wakes the reader.
        let _ = self.net.shutdown(self.fd, SHUT_RD);
        let result = match self.thread.take() {
            Some(t) => t.join().unwrap_or(Err(Errno::EIO)),
            None => return Ok(()),
        };
        let _ = self.net.close(self.fd);
        result
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
