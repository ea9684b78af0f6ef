//! Network namespaces that tapstack creates for itself: the demo, the tests and
//! `tapstack record` put their traffic only inside one of these, and delete it
//! afterwards, on failure too (the guard's Drop).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace made by us, deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with a unique name starting with `prefix`, and brings
    /// its loopback up.
    pub fn create(prefix: &str) -> Result<Netns, String> {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}-{}-{}", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
        run_checked(Command::new("ip").args(["netns", "add", &name]))
            .map_err(|e| format!("cannot create network namespace {name}: {e} (this needs root and iproute2)"))?;
        let ns = Netns { name };
        ns.exec_checked(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside the namespace (`ip netns exec NAME ...`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        crate::signals::unblock_in_child(&mut c);
        c
    }

    /// Runs a command in the namespace and fails with its stderr if it fails.
    pub fn exec_checked(&self, argv: &[&str]) -> Result<Output, String> {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        run_checked(&mut c).map_err(|e| format!("`{}` failed in {}: {e}", argv.join(" "), self.name))
    }

    /// Adds a persistent TAP `name` with the host's end at `host_cidr` and up, for
    /// a tapstack process (`tapstack up`, `tapstack nc`) to attach to. IPv6 is off
    /// on it: the kernel's router and multicast chatter is not tapstack's business.
    pub fn add_tap(&self, name: &str, host_cidr: &str) -> Result<(), String> {
        self.exec_checked(&["ip", "tuntap", "add", "dev", name, "mode", "tap"])?;
        self.exec_checked(&["sysctl", "-qw", &format!("net.ipv6.conf.{name}.disable_ipv6=1")])?;
        self.exec_checked(&["ip", "addr", "add", host_cidr, "dev", name])?;
        self.exec_checked(&["ip", "link", "set", name, "up"])?;
        Ok(())
    }

    /// Runs `f` on a short-lived thread that has entered the namespace, so that
    /// whatever `f` opens (a TAP device, say) is created there. The calling thread
    /// stays where it is; file descriptors opened by `f` stay valid everywhere.
    pub fn run_inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this thread only, with a valid namespace fd.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("cannot enter namespace {}: {}", self.name, io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| "a thread inside the namespace panicked".to_string())?
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also removes the interfaces inside it.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run_checked(c: &mut Command) -> Result<Output, String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Whether this process may create namespaces and TAP devices (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a test that needs root (network namespaces, TAP devices) can run.
/// With `CI=true` such a test must run, so this panics when it cannot; elsewhere
/// it prints why it is skipped.
pub fn tap_tests_enabled(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true but not running as root, so the TAP test cannot run");
    }
    eprintln!("skipping {test}: it needs root for a network namespace and a TAP device");
    false
}
