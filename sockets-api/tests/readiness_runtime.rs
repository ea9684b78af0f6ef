//! The readiness interface in real time: two stacks on runtime threads joined
//! by an in-memory wire. The epoll-like interface (register once, wait for the
//! ready ones), async sockets under a plain-waker executor and under tokio
//! (AsyncRead/AsyncWrite with the `tokio` feature), and blocking calls woken
//! only by their own socket. Every wait is bounded.

use sockets_api::epoll::{EPOLLIN, EPOLLOUT};
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PROMPT: Duration = Duration::from_secs(10);

fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 31, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: 32, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    (Runtime::start(Stack::new(ca).unwrap(), wa).unwrap(), Runtime::start(Stack::new(cb).unwrap(), wb).unwrap())
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A waker that unparks the test thread and counts its wake-ups.
struct Unpark(std::thread::Thread, AtomicUsize);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.unpark();
    }
}

/// The smallest executor: polls `f` on this thread, parking between wake-ups,
/// for at most `limit`. Returns the output and how many wake-ups it took.
fn block_on<F: Future>(f: F, limit: Duration) -> (F::Output, usize) {
    let w = Arc::new(Unpark(std::thread::current(), AtomicUsize::new(0)));
    let waker = Waker::from(w.clone());
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let end = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, w.1.load(Ordering::SeqCst));
        }
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the future was never woken to completion");
        std::thread::park_timeout(left);
    }
}

#[test]
fn epoll_reports_only_ready_descriptors_and_is_level_triggered() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let l = b.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    b.bind(l, sa("0.0.0.0:7000")).unwrap();
    b.listen(l, 64).unwrap();
    let ep = b.epoll_create().unwrap();
    ep.add(l, EPOLLIN, 1_000).unwrap();
    assert_eq!(ep.add(l, EPOLLIN, 1), Err(Errno::EEXIST));
    let mut ev = Vec::new();
    assert_eq!(ep.wait(&mut ev, 16, 0).unwrap(), 0, "nothing ready yet");
    // Three clients; the listener becomes ready.
    let clients: Vec<TcpStream> =
        (0..3).map(|_| TcpStream::connect(&a, SocketAddrV4::new(B_IP, 7000)).unwrap()).collect();
    let mut conns = Vec::new();
    while conns.len() < 3 {
        ep.wait(&mut ev, 16, PROMPT.as_millis() as i32).unwrap();
        assert_eq!(ev[0].data, 1_000);
        while let Ok((fd, _)) = b.accept(l) {
            ep.add(fd, EPOLLIN, fd as u64).unwrap();
            conns.push(fd);
        }
    }
    // Only the connection that got data is reported.
    use std::io::Write;
    (&clients[1]).write_all(b"hello").unwrap();
    ep.wait(&mut ev, 16, PROMPT.as_millis() as i32).unwrap();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0], EpollEvent { events: EPOLLIN, data: conns[1] as u64 });
    // Level-triggered: still ready until read.
    assert_eq!(ep.wait(&mut ev, 16, 0).unwrap(), 1);
    let mut buf = [0; 16];
    assert_eq!(b.recv(conns[1], &mut buf, MSG_DONTWAIT).unwrap(), 5);
    assert_eq!(ep.wait(&mut ev, 16, 0).unwrap(), 0);
    // Writable interest; a closed descriptor leaves the instance.
    ep.modify(conns[0], EPOLLOUT, 7).unwrap();
    ep.wait(&mut ev, 16, PROMPT.as_millis() as i32).unwrap();
    assert_eq!(ev, vec![EpollEvent { events: EPOLLOUT, data: 7 }]);
    b.close(conns[0]).unwrap();
    assert_eq!(ep.delete(conns[0]), Err(Errno::ENOENT));
    ep.delete(conns[2]).unwrap();
}

#[test]
fn epoll_wait_blocks_until_a_change_and_times_out() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let u = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(u, sa("0.0.0.0:9000")).unwrap();
    let ep = b.epoll_create().unwrap();
    ep.add(u, EPOLLIN, 9).unwrap();
    let t = Instant::now();
    let mut ev = Vec::new();
    assert_eq!(ep.wait(&mut ev, 4, 50).unwrap(), 0);
    assert!(t.elapsed() >= Duration::from_millis(50));
    let sender = std::thread::spawn(move || {
        let s = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        a.sendto(s, b"x", 0, SocketAddrV4::new(B_IP, 9000)).unwrap();
    });
    assert_eq!(ep.wait(&mut ev, 4, PROMPT.as_millis() as i32).unwrap(), 1);
    assert_eq!(ev[0].data, 9);
    sender.join().unwrap();
}

#[test]
fn async_stream_and_listener_under_a_plain_waker_executor() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listener = AsyncTcpListener::bind(&b, sa("0.0.0.0:7100")).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let expect = data.clone();
    let server = std::thread::spawn(move || {
        block_on(
            async {
                let (s, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break got;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            },
            PROMPT,
        )
    });
    let (_, woken) = block_on(
        async {
            let s = AsyncTcpStream::connect(&a, sa("10.0.0.2:7100")).await.unwrap();
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
        },
        PROMPT,
    );
    let (got, _) = server.join().unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect);
    assert!(woken > 0, "the writer waited for room and was woken");
}

#[test]
fn async_udp_socket_receives_when_a_datagram_comes() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let rx = AsyncUdpSocket::bind(&b, sa("0.0.0.0:5300")).unwrap();
    let a2 = a.clone();
    let t = std::thread::spawn(move || {
        let tx = AsyncUdpSocket::bind(&a2, sa("0.0.0.0:0")).unwrap();
        assert!(rb_waits(&a2));
        block_on(tx.send_to(b"ping", sa("10.0.0.2:5300")), PROMPT).0.unwrap();
    });
    let ((n, from), woken) = {
        let mut buf = [0u8; 16];
        let (r, w) = block_on(rx.recv_from(&mut buf), PROMPT);
        assert_eq!(&buf[..4], b"ping");
        (r.unwrap(), w)
    };
    assert_eq!((n, *from.ip()), (4, A_IP));
    assert!(woken >= 1);
    t.join().unwrap();
}

/// Gives the receiver a moment to register (no assertion depends on the order).
fn rb_waits(_a: &Net) -> bool {
    std::thread::sleep(Duration::from_millis(20));
    true
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_echo_over_async_read_and_write() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let listener = AsyncTcpListener::bind(&b, sa("0.0.0.0:7200")).unwrap();
        let server = tokio::spawn(async move {
            let mut served = 0;
            while served < 20 {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).await.unwrap();
                    }
                    s.shutdown().await.unwrap();
                });
                served += 1;
            }
        });
        let mut clients = Vec::new();
        for i in 0..20u8 {
            let a = a.clone();
            clients.push(tokio::spawn(async move {
                let mut s = AsyncTcpStream::connect(&a, sa("10.0.0.2:7200")).await.unwrap();
                let msg = [i; 8];
                s.write_all(&msg).await.unwrap();
                let mut back = [0u8; 8];
                s.read_exact(&mut back).await.unwrap();
                assert_eq!(back, msg);
                AsyncWriteExt::shutdown(&mut s).await.unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).await.unwrap();
                assert!(rest.is_empty());
            }));
        }
        let all = async {
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap();
        };
        tokio::time::timeout(PROMPT, all).await.expect("20 echo clients under tokio in time");
    });
}

/// A waker that counts its wake-ups and nothing else.
struct Count(AtomicUsize);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn traffic_on_one_socket_wakes_only_that_socket_s_waiters() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listener = AsyncTcpListener::bind(&b, sa("0.0.0.0:7300")).unwrap();
    let (cx_, cy) = (
        TcpStream::connect(&a, SocketAddrV4::new(B_IP, 7300)).unwrap(),
        TcpStream::connect(&a, SocketAddrV4::new(B_IP, 7300)).unwrap(),
    );
    let (x, _) = block_on(listener.accept(), PROMPT).0.unwrap();
    let (y, _) = block_on(listener.accept(), PROMPT).0.unwrap();
    // A task waits to read x; nothing is there. Events on x's own connection
    // (the end of its handshake's timers) may still wake it: wait until a
    // registration stays quiet for 200 ms.
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut buf = [0u8; 64 * 1024];
    for attempt in 0.. {
        assert!(attempt < 20, "x never went quiet");
        count.0.store(0, Ordering::SeqCst);
        assert!(x.poll_read(&mut Context::from_waker(&waker), &mut buf).is_pending());
        std::thread::sleep(Duration::from_millis(200));
        if count.0.load(Ordering::SeqCst) == 0 {
            break;
        }
    }
    // Megabytes on y, read as they come: x's waiter is never woken.
    use std::io::Write;
    let writer = std::thread::spawn(move || {
        let chunk = vec![1u8; 65536];
        for _ in 0..32 {
            (&cy).write_all(&chunk).unwrap();
        }
        cy
    });
    let mut got = 0;
    while got < 32 * 65536 {
        got += block_on(y.read(&mut buf), PROMPT).0.unwrap();
    }
    let _cy = writer.join().unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "x's waiter was woken by y's traffic");
    // A byte on x wakes it.
    (&cx_).write_all(b"!").unwrap();
    let end = Instant::now() + PROMPT;
    while count.0.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < end, "x's waiter never woken by x's data");
        std::thread::sleep(Duration::from_millis(1));
    }
    match x.poll_read(&mut Context::from_waker(&waker), &mut buf) {
        Poll::Ready(Ok(1)) => assert_eq!(buf[0], b'!'),
        other => panic!("{other:?}"),
    }
}

/// A resident that takes every datagram from its epoll instance's socket,
/// noting the thread it ran on and how often it was stepped.
struct Taker {
    net: Net,
    ep: Epoll,
    fd: i32,
    events: Vec<EpollEvent>,
    got: Arc<std::sync::Mutex<Vec<(Vec<u8>, String)>>>,
    steps: Arc<AtomicUsize>,
}

impl sockets_api::resident::Resident for Taker {
    fn step(&mut self, _now: Instant, waker: &Waker) -> Option<Instant> {
        self.steps.fetch_add(1, Ordering::SeqCst);
        while self.ep.poll(&mut self.events, 4, waker).unwrap() > 0 {
            let mut buf = [0; 64];
            while let Ok((n, _)) = self.net.recvfrom(self.fd, &mut buf, MSG_DONTWAIT) {
                let name = std::thread::current().name().unwrap_or("").to_string();
                self.got.lock().unwrap().push((buf[..n].to_vec(), name));
            }
        }
        None
    }
}

#[test]
fn a_resident_is_stepped_on_the_runtime_thread_when_its_socket_is_ready_and_never_after_removal() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    // Blocking: the resident reads with MSG_DONTWAIT, the test thread blocks.
    let fd = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(fd, sa("0.0.0.0:9100")).unwrap();
    let ep = b.epoll_create().unwrap();
    ep.add(fd, EPOLLIN, 1).unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let steps = Arc::new(AtomicUsize::new(0));
    let taker = Taker { net: b.clone(), ep, fd, events: Vec::new(), got: got.clone(), steps: steps.clone() };
    let id = rb.shared().add_resident(Arc::new(std::sync::Mutex::new(taker))).expect("the runtime runs");
    let s = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let to = SocketAddrV4::new(B_IP, 9100);
    a.sendto(s, b"one", 0, to).unwrap();
    let end = Instant::now() + PROMPT;
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < end, "the resident never took the datagram");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(*got.lock().unwrap(), vec![(b"one".to_vec(), "tapstack".to_string())], "on the runtime's thread");
    // Off the runtime: the next datagram waits in the socket for whoever reads it.
    assert!(rb.shared().remove_resident(id));
    assert!(!rb.shared().remove_resident(id), "once");
    let stepped = steps.load(Ordering::SeqCst);
    a.sendto(s, b"two", 0, to).unwrap();
    b.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, Duration::from_secs(10)).unwrap();
    let mut buf = [0; 16];
    let n = b.recvfrom(fd, &mut buf, 0).unwrap().0;
    assert_eq!(&buf[..n], b"two");
    assert_eq!(steps.load(Ordering::SeqCst), stepped, "not stepped after its removal");
    assert_eq!(got.lock().unwrap().len(), 1);
}
