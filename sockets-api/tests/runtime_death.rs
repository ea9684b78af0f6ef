//! The runtime thread's death must not leave callers hanging (issue 13, item 1):
//! a device that panics when armed stands for any bug that kills the thread; a
//! caller blocked in accept must then return ENETDOWN at once, and later calls too.

use sockets_api::*;
use stack::device::Device;
use stack::{Config, Instant as StackInstant, MacAddr, Stack};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Swallows frames; panics on the first send once armed.
struct Fragile(Arc<AtomicBool>);

impl Device for Fragile {
    fn recv(&mut self, _now: StackInstant, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn send(&mut self, _now: StackInstant, _frame: &[u8]) -> io::Result<()> {
        if self.0.load(Ordering::Acquire) {
            panic!("injected: the runtime thread dies");
        }
        Ok(())
    }
}

#[test]
fn a_dead_runtime_thread_wakes_blocked_callers_with_enetdown() {
    let armed = Arc::new(AtomicBool::new(false));
    let config = Config { seed: 7, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), 24) };
    let rt = Runtime::start(Stack::new(config).unwrap(), Fragile(armed.clone())).unwrap();
    let net = rt.net();
    let l = net.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    // A safety net well above what a prompt wake-up takes.
    net.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, Duration::from_secs(20)).unwrap();
    net.bind(l, "10.0.0.1:7".parse::<SocketAddr>().unwrap()).unwrap();
    net.listen(l, 4).unwrap();
    let blocked = {
        let net = net.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            (net.accept(l).map(|_| ()), t.elapsed())
        })
    };
    assert!(rt.shared().wait_for_waiters(1, Duration::from_secs(10)), "accept did not block");
    armed.store(true, Ordering::Release);
    // A nonblocking connect queues an ARP request: the runtime sends it and dies.
    let c = net.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    let _ = net.connect(c, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9));
    let (r, waited) = blocked.join().unwrap();
    assert_eq!(r, Err(Errno::ENETDOWN), "after {waited:?}");
    assert!(waited < Duration::from_secs(10), "woken at once, not by the timeout: {waited:?}");
    assert!(rt.shared().is_stopped());
    assert_eq!(net.socket(AF_INET, SOCK_STREAM, 0), Err(Errno::ENETDOWN));
    assert!(rt.stop().is_err(), "the panic is reported");
}
