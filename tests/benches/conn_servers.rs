//! The servers of the connections benchmark, each a process of its own (this
//! benchmark's binary run again with a mode word, inside the server's
//! namespace), so that each one's memory is its own to measure:
//!
//! - `tapstack-up ARGS...`: what `tapstack up ARGS... --serve echo` runs
//!   (`StackOptions` parsed from the same arguments, then `up::start`, the
//!   start `up::run` makes, with the echo service under the default limits and
//!   descriptor share), without the banner and control socket;
//! - `epoll-echo ADDR:PORT`: an echo server on the Linux kernel's TCP, one
//!   thread over epoll (level-triggered, nonblocking, listen backlog 4096).
//!
//! Both answer questions on standard input, one line each: `count` (open
//! connections), and for tapstack `mem` (RSS, the TCP table's heap and its
//! buffers' part); they exit when standard input closes.

use clap::{Args, FromArgMatches};
use sockets_api::services::ServiceLimits;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tapstack_tools::instance::StackOptions;
use tapstack_tools::netns::Netns;

/// A field of /proc/self/status, in KiB.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Answers the parent's questions until standard input closes, then exits.
fn answer(mut f: impl FnMut(&str) -> String) -> ! {
    println!("ready");
    for line in std::io::stdin().lines() {
        let Ok(q) = line else { break };
        println!("{}", f(q.trim()));
    }
    std::process::exit(0)
}

/// The `tapstack-up` mode (see the module's documentation).
pub fn tapstack_up(args: &[String]) -> ! {
    let cmd = StackOptions::augment_args(clap::Command::new("tapstack-up").no_binary_name(true));
    let opts = StackOptions::from_arg_matches(&cmd.get_matches_from(args)).unwrap_or_else(|e| e.exit());
    // `tapstack up`'s own start, with `up`'s defaults for the services' limits.
    let limits = (ServiceLimits::default(), true);
    let (runtime, _config, _services, _offloads) = tapstack_tools::up::start(&opts, "echo", false, limits)
        .unwrap_or_else(|e| {
            eprintln!("tapstack-up: {e}");
            std::process::exit(2)
        });
    let shared = runtime.shared().clone();
    answer(|q| match q {
        "count" => shared.with_stack(|s, _| s.tcp().0.connection_count()).to_string(),
        "mem" => {
            let (heap, buffers, conns) = shared.with_stack(|s, _| {
                let tcp = s.tcp().0;
                (tcp.heap_bytes(), tcp.buffer_bytes(), tcp.connection_count())
            });
            format!("{} {heap} {buffers} {conns}", status_kib("VmRSS:"))
        }
        _ => "?".into(),
    })
}

/// The `epoll-echo` mode (see the module's documentation).
pub fn epoll_echo(addr: &str) -> ! {
    let addr: SocketAddrV4 = addr.parse().expect("ADDR:PORT");
    let open = Arc::new(AtomicUsize::new(0));
    let listener = listen(addr);
    let counter = open.clone();
    std::thread::spawn(move || EchoLoop::new(listener, counter).run());
    answer(|q| match q {
        "count" => open.load(Ordering::Relaxed).to_string(),
        "mem" => format!("{} 0 0 {}", status_kib("VmRSS:"), open.load(Ordering::Relaxed)),
        _ => "?".into(),
    })
}

/// A nonblocking listening socket on `addr`, backlog 4096 (Linux's somaxconn).
fn listen(addr: SocketAddrV4) -> RawFd {
    let l = std::net::TcpListener::bind(addr).expect("bind the echo server");
    l.set_nonblocking(true).expect("nonblocking");
    let fd = std::os::fd::IntoRawFd::into_raw_fd(l);
    // SAFETY: listen(2) again on our listening socket only changes its backlog.
    unsafe { libc::listen(fd, 4096) };
    fd
}

/// The epoll echo server's loop: accept all, echo what arrives, keep what a
/// full send buffer did not take until it drains.
struct EchoLoop {
    ep: RawFd,
    listener: RawFd,
    open: Arc<AtomicUsize>,
    pending: HashMap<RawFd, Vec<u8>>,
}

impl EchoLoop {
    fn new(listener: RawFd, open: Arc<AtomicUsize>) -> EchoLoop {
        // SAFETY: plain system call.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        let l = EchoLoop { ep, listener, open, pending: HashMap::new() };
        l.ctl(libc::EPOLL_CTL_ADD, listener, libc::EPOLLIN as u32);
        l
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32) {
        let mut ev = libc::epoll_event { events, u64: fd as u64 };
        // SAFETY: valid descriptors and event.
        unsafe { libc::epoll_ctl(self.ep, op, fd, &mut ev) };
    }

    fn run(mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: a valid epoll descriptor and a buffer of events.len() entries.
            let k = unsafe { libc::epoll_wait(self.ep, events.as_mut_ptr(), events.len() as i32, -1) };
            for i in 0..k.max(0) as usize {
                let (fd, flags) = (events[i].u64 as RawFd, events[i].events);
                match fd == self.listener {
                    true => self.accept_all(),
                    false if flags & libc::EPOLLOUT as u32 != 0 => self.flush(fd),
                    false => self.echo(fd, &mut buf),
                }
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: accept4 on our listener, the peer's address not wanted.
            let fd = unsafe { libc::accept4(self.listener, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
            if fd < 0 {
                return;
            }
            self.open.fetch_add(1, Ordering::Relaxed);
            self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32);
        }
    }

    fn echo(&mut self, fd: RawFd, buf: &mut [u8]) {
        // SAFETY: reads into a valid buffer from our own socket.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
            return;
        }
        if r <= 0 {
            return self.close(fd);
        }
        self.pending.insert(fd, buf[..r as usize].to_vec());
        self.flush(fd);
    }

    /// Writes what `fd` has pending; waits for room (EPOLLOUT) if some is left.
    fn flush(&mut self, fd: RawFd) {
        let Some(data) = self.pending.get_mut(&fd) else { return };
        // SAFETY: writes from a valid buffer to our own socket.
        let w = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if w < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock {
            return self.close(fd);
        }
        data.drain(..w.max(0) as usize);
        match data.is_empty() {
            true => {
                self.pending.remove(&fd);
                self.ctl(libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32);
            }
            false => self.ctl(libc::EPOLL_CTL_MOD, fd, libc::EPOLLOUT as u32),
        }
    }

    fn close(&mut self, fd: RawFd) {
        self.pending.remove(&fd);
        // SAFETY: our own descriptor, closed once (epoll forgets it with it).
        unsafe { libc::close(fd) };
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server process started by the benchmark: killed and reaped when dropped.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    pub name: &'static str,
}

impl Server {
    /// This binary again in `ns` with `mode` and `args`; waits (bounded) for its "ready".
    pub fn spawn(ns: &Netns, name: &'static str, mode: &str, args: &[&str]) -> Server {
        let exe = std::env::current_exe().expect("this benchmark's path");
        let mut child = ns
            .command(exe.to_str().expect("a UTF-8 path"))
            .arg(mode)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a server");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || out.lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
        let s = Server { child, stdin, lines, name };
        let ready = s.lines.recv_timeout(Duration::from_secs(20));
        assert_eq!(ready.as_deref(), Ok("ready"), "{name} did not start");
        s
    }

    /// One question, one line of answer (within 30 s).
    pub fn ask(&mut self, q: &str) -> String {
        writeln!(self.stdin, "{q}").expect("the server's stdin");
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(e) => panic!("{} did not answer `{q}`: {e}", self.name),
        }
    }

    /// The next line it prints, waiting up to `within`.
    pub fn line(&mut self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    pub fn count(&mut self) -> usize {
        self.ask("count").parse().expect("a count")
    }

    /// Waits (bounded by `within`) until the server has `want` connections; whether it got there.
    pub fn wait_count(&mut self, want: usize, within: Duration) -> bool {
        let end = Instant::now() + within;
        while self.count() != want {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
