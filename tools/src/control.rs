//! The control socket of a running `tapstack up`, through which `tapstack ss`
//! and `tapstack stats` look at it from another process.
//!
//! A Unix stream socket, by default `/run/tapstack/TAP.sock` (named after the
//! TAP; `/run` is the host's even when the TAP lives in a network namespace, since
//! `ip netns exec` changes the network, not the filesystem). `tapstack up
//! --control PATH` puts it elsewhere. A socket file left by a stack that died is
//! replaced at start; one that still answers is refused (another stack runs
//! there). The file is removed when the server stops.
//!
//! The protocol is one line of text each way: the client connects and sends one
//! request line, the server writes its answer and closes.
//!
//! - `ss [-tulanioHsp46x] [-- FILTER]`: the socket table as `ss` prints it ([`crate::ss`]);
//! - `stats`: the counters as `netstat -s` prints them ([`stack::Counters::report`]),
//!   then, in the `tapstack` binary, the bytes it holds from its allocator
//!   ([`crate::reclaim::held`]);
//! - anything else: one line `error: ...`.
//!
//! The server renders, so that any client reads plain text
//! (`echo stats | socat - UNIX-CONNECT:/run/tapstack/tap0.sock` works too) and
//! the format lives in one place.

use crate::ss::{self, SsFlags};
use sockets_api::Net;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the control sockets live unless `--control` says otherwise.
pub const DIR: &str = "/run/tapstack";

/// After accept(2) fails for want of descriptors or memory: the first wait
/// before trying again, doubled up to [`ACCEPT_RETRY_MAX`] (as the services do).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
const ACCEPT_RETRY_MAX: Duration = Duration::from_secs(2);

/// The longest request line the server reads; anything longer is refused.
const MAX_REQUEST: u64 = 256;

/// How long either side waits for the other to send or take a message, so that a
/// stuck peer neither hangs `tapstack ss` nor blocks the server for long.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The network namespace this process is in, as the kernel numbers it (the
/// inode of `/proc/self/ns/net`; 0 if it cannot be read).
fn netns_id(ns: &Path) -> u64 {
    std::fs::metadata(ns).map(|m| m.ino()).unwrap_or(0)
}

/// Where the control sockets of the stacks in this process's network namespace
/// live: `/run/tapstack/net-INODE/`. Two stacks on TAPs of one name in two
/// namespaces are two stacks, so their sockets must not share a name; and, as
/// Linux's `ss` shows the sockets of its own namespace, `tapstack ss` finds the
/// stacks of its own.
pub fn namespace_dir() -> PathBuf {
    Path::new(DIR).join(format!("net-{}", netns_id(Path::new("/proc/self/ns/net"))))
}

/// The default control socket of the stack on `tap` in this network namespace.
pub fn default_path(tap: &str) -> PathBuf {
    namespace_dir().join(format!("{tap}.sock"))
}

/// The names (`ip netns` names where there is one) of the other namespaces in
/// which a stack on `tap` answers: a hint for a `tapstack ss` run in the wrong one.
fn elsewhere(tap: &str) -> Vec<String> {
    let here = namespace_dir();
    let named: Vec<(u64, String)> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| (netns_id(&e.path()), e.file_name().to_string_lossy().into())).collect()
        })
        .unwrap_or_default();
    let dirs =
        std::fs::read_dir(DIR).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or(Vec::new());
    dirs.into_iter()
        .filter(|d| *d != here && d.join(format!("{tap}.sock")).exists())
        .filter_map(|d| {
            let ino: u64 = d.file_name()?.to_str()?.strip_prefix("net-")?.parse().ok()?;
            Some(named.iter().find(|(i, _)| *i == ino).map_or(format!("net-{ino}"), |(_, n)| n.clone()))
        })
        .collect()
}

/// Which running stack a client asks: by TAP name or by socket path.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Target {
    /// The TAP of the `tapstack up` to ask, in this network namespace (its socket
    /// is /run/tapstack/net-INODE/TAP.sock).
    #[arg(long, conflicts_with = "control")]
    pub tap: Option<String>,
    /// The control socket of the `tapstack up` to ask (as given to its --control).
    #[arg(long)]
    pub control: Option<PathBuf>,
}

impl Target {
    /// The socket to connect to. With neither option, the only socket of this
    /// network namespace's stacks ([`namespace_dir`]).
    pub fn path(&self) -> Result<PathBuf, String> {
        match (&self.tap, &self.control) {
            (_, Some(p)) => Ok(p.clone()),
            (Some(tap), None) => {
                let path = default_path(tap);
                let other = elsewhere(tap);
                if !path.exists() && !other.is_empty() {
                    return Err(format!(
                        "no tapstack runs on {tap} in this network namespace; one does in {}: \
                         run `ip netns exec NAME tapstack ...` there",
                        other.join(", ")
                    ));
                }
                Ok(path)
            }
            (None, None) => {
                let dir = namespace_dir();
                let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                    .unwrap_or_default();
                found.retain(|p| p.extension().is_some_and(|x| x == "sock"));
                match found.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(format!(
                        "no running tapstack found in this network namespace ({}); give --tap or --control",
                        dir.display()
                    )),
                    many => {
                        let names: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
                        Err(format!("several tapstacks run ({}); choose one with --tap or --control", names.join(", ")))
                    }
                }
            }
        }
    }
}

/// The answer to one request line.
pub fn answer(net: &Net, request: &str) -> String {
    answer_with(net, request, None)
}

/// [`answer`], with `stats` saying `link_note` (how the TAP was opened: its
/// offloads) first in its Link section.
pub fn answer_with(net: &Net, request: &str, link_note: Option<&str>) -> String {
    let mut words = request.split_whitespace();
    match words.next() {
        Some("ss") => match SsFlags::from_args(words) {
            Ok(flags) => ss::render(&net.socket_table(), &flags),
            Err(e) => format!("error: {e}\n"),
        },
        Some("stats") if words.next().is_none() => {
            let mut out = net.counters().report();
            if let Some(note) = link_note {
                out = out.replacen("Link:\n", &format!("Link:\n    {note}\n"), 1);
            }
            if let Some(held) = crate::reclaim::held() {
                out.push_str(&format!("Memory:\n    {held} bytes held from the allocator\n"));
            }
            out
        }
        _ => {
            format!("error: unknown request '{}' (want 'ss [-tulanioHsp46x] [-- FILTER]' or 'stats')\n", request.trim())
        }
    }
}

/// Sends `request` to the control socket at `path` and returns the answer. An
/// answer starting with `error:` is returned as an error.
pub fn request(path: &Path, request: &str) -> Result<String, String> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach a tapstack at {}: {e} (is `tapstack up` running with this control socket?)",
            path.display()
        )
    })?;
    let io_err = |e: io::Error| format!("talking to the tapstack at {}: {e}", path.display());
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    s.write_all(format!("{request}\n").as_bytes()).map_err(io_err)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A server that closes without reading all we sent (an over-long
            // request) resets the connection after its answer: keep the answer.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !out.is_empty() => break,
            Err(e) => return Err(io_err(e)),
        }
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    match out.strip_prefix("error: ") {
        Some(e) => Err(e.trim_end().to_string()),
        None => Ok(out),
    }
}

/// `tapstack ss` and `tapstack stats`: asks the stack `target` names and prints
/// the answer (a closed standard output is not an error: `tapstack ss | head`).
pub fn print(target: &Target, req: &str) -> Result<(), String> {
    let answer = request(&target.path()?, req)?;
    let _ = io::stdout().write_all(answer.as_bytes());
    Ok(())
}

/// A running control socket server, stopped (and its socket file removed) on drop.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listens at `path` and answers requests about `net` on a thread of its own,
    /// one connection at a time. The default directories ([`DIR`] and the
    /// namespace's below it) are created root-only; any other directory must
    /// exist (as `--control PATH`'s: a typo makes an error, not a directory).
    pub fn start(path: &Path, net: Net) -> Result<ControlServer, String> {
        ControlServer::start_with_note(path, net, None)
    }

    /// [`ControlServer::start`], `stats` saying `link_note` in its Link
    /// section ([`answer_with`]).
    pub fn start_with_note(path: &Path, net: Net, link_note: Option<String>) -> Result<ControlServer, String> {
        if let Some(dir) = path.parent().filter(|d| d.starts_with(DIR)) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        remove_stale(path)?;
        let listener = UnixListener::bind(path).map_err(|e| format!("cannot listen at {}: {e}", path.display()))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("tapstack-control".into())
            .spawn(move || serve(&listener, &net, link_note.as_deref(), &stop))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
        Ok(ControlServer { path: path.to_path_buf(), stopping, thread: Some(thread) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        // A connection of our own wakes the blocked accept. If it cannot be made
        // (the file was removed under us), the thread is left to end with the process.
        let woke = UnixStream::connect(&self.path).is_ok();
        if let Some(t) = self.thread.take().filter(|_| woke) {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
        // A namespace's directory goes with its last stack (removing fails while
        // another socket is in it, which is what should happen then).
        if let Some(dir) = self.path.parent().filter(|d| d.starts_with(DIR) && *d != Path::new(DIR)) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Removes a socket file nobody answers on; refuses a live one and any other file.
fn remove_stale(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Err(format!("{} exists and is not a socket; not replacing it", path.display()));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(format!("another tapstack already answers at {}", path.display()));
    }
    std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))
}

fn serve(listener: &UnixListener, net: &Net, link_note: Option<&str>, stopping: &AtomicBool) {
    let mut retry = ACCEPT_RETRY;
    for conn in listener.incoming() {
        if stopping.load(Ordering::Acquire) {
            return;
        }
        match conn {
            Ok(conn) => {
                retry = ACCEPT_RETRY;
                // A client that misbehaves loses its answer, nothing more.
                let _ = handle(conn, net, link_note);
            }
            // Out of descriptors or memory: accept fails at once until some
            // are freed, so wait (backing off) rather than spin; keep serving.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                std::thread::sleep(retry);
                retry = (retry * 2).min(ACCEPT_RETRY_MAX);
            }
            Err(_) => {}
        }
    }
}

fn handle(conn: UnixStream, net: &Net, link_note: Option<&str>) -> io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&conn).take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = if line.ends_with('\n') {
        answer_with(net, &line, link_note)
    } else {
        format!("error: the request must be one line of at most {MAX_REQUEST} bytes\n")
    };
    (&conn).write_all(reply.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockets_api::sim::runtime_pair;
    use sockets_api::{AF_INET, SOCK_DGRAM};

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tapstack-control-{}-{name}.sock", std::process::id()))
    }

    #[test]
    fn answers_ss_and_stats_over_the_socket_and_removes_it_when_stopped() {
        let (ra, _rb) = runtime_pair((1, 2));
        let net = ra.net();
        let fd = net.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        net.bind(fd, "0.0.0.0:7".parse::<std::net::SocketAddr>().unwrap()).unwrap();
        let path = temp_path("serve");
        let server = ControlServer::start(&path, net.clone()).unwrap();
        let ss = request(&path, "ss -u -l").unwrap();
        assert_eq!(
            ss.lines().nth(1).map(|l| l.split_whitespace().collect::<Vec<_>>()),
            Some(vec!["UNCONN", "0", "0", "0.0.0.0:7", "0.0.0.0:*"])
        );
        let stats = request(&path, "stats").unwrap();
        assert!(stats.starts_with("Link:\n") && stats.contains("\nTcp:\n"), "{stats}");
        assert_eq!(request(&path, "ss -q"), Err("unknown flag -q".into()));
        assert!(request(&path, "reboot").unwrap_err().starts_with("unknown request 'reboot'"));
        // A second server at the same path is refused while the first answers.
        assert!(ControlServer::start(&path, net).unwrap_err().starts_with("another tapstack already answers"));
        drop(server);
        assert!(!path.exists());
        assert!(request(&path, "stats").unwrap_err().starts_with("cannot reach a tapstack"));
    }

    #[test]
    fn a_stale_socket_file_is_replaced_and_other_files_are_not() {
        let (ra, _rb) = runtime_pair((3, 4));
        let path = temp_path("stale");
        drop(UnixListener::bind(&path).unwrap()); // leaves the file, with nobody listening
        let server = ControlServer::start(&path, ra.net()).unwrap();
        assert!(request(&path, "stats").is_ok());
        drop(server);
        std::fs::write(&path, "not a socket").unwrap();
        let err = ControlServer::start(&path, ra.net()).unwrap_err();
        assert!(err.ends_with("exists and is not a socket; not replacing it"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_over_long_request_is_refused() {
        let (ra, _rb) = runtime_pair((5, 6));
        let path = temp_path("long");
        let _server = ControlServer::start(&path, ra.net()).unwrap();
        let err = request(&path, &"ss ".repeat(200)).unwrap_err();
        assert!(err.starts_with("the request must be one line"), "{err}");
    }

    #[test]
    fn a_control_path_in_a_missing_directory_is_an_error_not_a_new_directory() {
        let (ra, _rb) = runtime_pair((1, 2));
        let dir = std::env::temp_dir().join(format!("tapstack-control-{}-missing", std::process::id()));
        let err = ControlServer::start(&dir.join("x.sock"), ra.net()).unwrap_err();
        assert!(err.starts_with("cannot listen at"), "{err}");
        assert!(!dir.exists(), "the directory was created");
    }

    #[test]
    fn default_sockets_are_named_after_the_network_namespace() {
        let ino = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_eq!(default_path("tap0"), Path::new(DIR).join(format!("net-{ino}")).join("tap0.sock"));
    }
}
