//! The scenario file: a small TOML document beside each capture that says who
//! tapstack was in the conversation (address, MAC, seed, settings), who the
//! peer was, and what the application on tapstack did. `tapstack record` reads
//! it to make the capture; `tapstack replay` reads it to run the same stack and
//! application against the capture. See `captures/README.md` for the format
//! with an example of every field.
//!
//! A scenario is code: a kernel peer's `run` is a command that `tapstack record`
//! runs as root in the scenario's namespace. Record only scenarios you trust, as
//! you would run only scripts you trust. What the file says is bounded all the
//! same, so that a mistake (or a hostile file given to `replay`) gets an error
//! rather than an allocation that aborts or a loop that never ends: a name is a
//! plain file name ([`check_name`]), and what a step sends is at most
//! [`MAX_SEND_TOTAL`] bytes.

use serde::Deserialize;
use stack::device::fault::FaultConfig;
use stack::{Config, MacAddr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// How long the conversation is recorded and replayed, in milliseconds of
    /// the stack's clock from its start.
    pub duration_ms: u64,
    /// The tapstack side, whose frames are compared.
    pub stack: StackSide,
    /// The other side, whose frames the replay feeds in.
    pub peer: Peer,
    /// What the application on tapstack does.
    #[serde(default)]
    pub app: AppSpec,
    /// Faults injected between tapstack and the wire, as `FaultConfig::parse`
    /// reads them (`drop=0.05,seed=3`). Only drop, dup and corrupt: a delayed
    /// frame's release time would be the real clock's in a recording.
    #[serde(default)]
    pub faults: Option<String>,
    /// What the scenario is there to show, as parts of tapstack's transitions
    /// ("FIN-WAIT-1 -> CLOSING", "rcv FIN / snd ACK"): a recording (or replay)
    /// whose trace lacks one says so. The kernel's timing decides some paths
    /// (which side's FIN comes first), so a re-recording is checked for them.
    #[serde(default)]
    pub expect: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSide {
    pub addr: Ipv4Addr,
    pub mac: String,
    #[serde(default = "default_prefix")]
    pub prefix_len: u8,
    /// Seed of every random choice: ISN secret, ephemeral ports, IP identification.
    pub seed: u64,
    #[serde(default)]
    pub mtu: Option<u16>,
    #[serde(default)]
    pub tcp: TcpSettings,
}

/// TCP settings that differ from the defaults (all optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSettings {
    /// Maximum segment lifetime: TIME-WAIT lasts twice this.
    pub msl_ms: Option<u64>,
    /// The first retransmission timeout (RFC 6298 says 1 s).
    pub initial_rto_ms: Option<u64>,
    /// SO_RCVBUF of every socket.
    pub recv_buffer: Option<usize>,
    /// SO_SNDBUF of every socket.
    pub send_buffer: Option<usize>,
    /// TCP_NODELAY on every socket.
    pub nodelay: Option<bool>,
    /// Offer and use SACK (RFC 2018); default on, as `TcpConfig::sack`.
    pub sack: Option<bool>,
    /// Offer and use timestamps (RFC 7323); default on, as `TcpConfig::timestamps`.
    pub timestamps: Option<bool>,
    /// HyStart++ in slow start (RFC 9406); default on, as `TcpConfig::hystart`.
    pub hystart: Option<bool>,
}

fn default_prefix() -> u8 {
    24
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub kind: PeerKind,
    pub addr: Ipv4Addr,
    /// For a kernel peer: the shell command `tapstack record` runs in the
    /// namespace (it talks to the stack); the recording lasts `duration_ms`
    /// whether or not the command has ended.
    #[serde(default)]
    pub run: Option<String>,
    /// When the command starts, in milliseconds after the stack.
    #[serde(default)]
    pub start_ms: u64,
    /// For a tapstack peer: its MAC, seed and application.
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub app: Option<AppSpec>,
    /// For a tapstack peer: one-way delay of the in-memory wire, in microseconds.
    #[serde(default)]
    pub wire_delay_us: Option<u64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    /// The Linux kernel, on the far side of a TAP in a namespace.
    Kernel,
    /// A second tapstack instance on an in-memory wire, in virtual time: for
    /// what the kernel cannot be made to do on cue (a simultaneous close).
    Tapstack,
}

/// The application: services that answer whoever calls, and/or a script of calls.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Services as `tapstack up --serve` names them: echo, discard, http, udp-echo.
    #[serde(default)]
    pub services: Vec<String>,
    /// Calls on one TCP socket, in order.
    #[serde(default)]
    pub script: Vec<Step>,
}

/// One call of a script. Exactly one of the call fields is set. A step starts
/// when the one before it has finished and, with `at_ms`, not before that many
/// milliseconds after the stack started.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at_ms: Option<u64>,
    /// connect to "ADDR:PORT"; finishes when ESTABLISHED (or fails the script).
    pub connect: Option<SocketAddrV4>,
    /// with `connect`: from this local port (else an ephemeral one).
    pub local_port: Option<u16>,
    /// listen on this port and accept one connection; finishes when accepted.
    pub listen: Option<u16>,
    /// write these bytes (all of them, as room appears).
    pub send: Option<String>,
    /// write this many bytes of a counting pattern.
    pub send_bytes: Option<usize>,
    /// repeat the `send` as this many separate calls at the same instant.
    pub repeat: Option<usize>,
    /// read this many bytes.
    pub recv: Option<usize>,
    /// read until the peer's FIN.
    pub recv_eof: Option<bool>,
    /// shut down the sending side (FIN).
    pub shutdown: Option<bool>,
    /// close the socket.
    pub close: Option<bool>,
    /// abort the connection (RST).
    pub abort: Option<bool>,
}

/// A step's call, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Connect(SocketAddrV4, Option<u16>),
    Listen(u16),
    Send(Vec<u8>, usize),
    Recv(usize),
    RecvEof,
    Shutdown,
    Close,
    Abort,
}

impl core::fmt::Display for Call {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Call::Connect(a, None) => write!(f, "connect {a}"),
            Call::Connect(a, Some(p)) => write!(f, "connect {a} from port {p}"),
            Call::Listen(p) => write!(f, "listen on port {p} and accept"),
            Call::Send(d, 1) => write!(f, "send {} bytes", d.len()),
            Call::Send(d, n) => write!(f, "send {} bytes, {n} times", d.len()),
            Call::Recv(n) => write!(f, "recv {n} bytes"),
            Call::RecvEof => write!(f, "recv until end of stream"),
            Call::Shutdown => write!(f, "shutdown (write)"),
            Call::Close => write!(f, "close"),
            Call::Abort => write!(f, "abort"),
        }
    }
}

/// The most one step may send (`send` or `send_bytes`, times `repeat`): more
/// than any capture here needs, little enough to allocate.
pub const MAX_SEND_TOTAL: usize = 64 << 20;

/// A scenario's name names its output files (`NAME.pcapng`, `NAME.trace`), so it
/// must be a plain file name: letters, digits, `-`, `_` and `.`, not starting
/// with a dot, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || name.starts_with('.') || !name.chars().all(plain) {
        return Err(format!(
            "the name '{}' must be a plain file name (letters, digits, - _ ., not starting with '.', at most 64)",
            name.escape_debug()
        ));
    }
    Ok(())
}

impl Step {
    /// What this step sends in all, checked against [`MAX_SEND_TOTAL`] before
    /// anything is allocated; an empty send repeated would make no progress.
    fn check_send(&self) -> Result<(), String> {
        let each = match (&self.send, self.send_bytes) {
            (Some(s), _) => s.len(),
            (None, Some(n)) => n,
            (None, None) => return Ok(()),
        };
        let repeat = self.repeat.unwrap_or(1);
        if each == 0 && repeat > 1 {
            return Err("an empty `send` repeated sends nothing".into());
        }
        match each.checked_mul(repeat) {
            Some(total) if total <= MAX_SEND_TOTAL => Ok(()),
            _ => Err(format!("a step sends at most {MAX_SEND_TOTAL} bytes in all (send or send_bytes times repeat)")),
        }
    }

    pub fn call(&self) -> Result<Call, String> {
        self.check_send()?;
        let mut calls = Vec::new();
        if let Some(a) = self.connect {
            calls.push(Call::Connect(a, self.local_port));
        } else if self.local_port.is_some() {
            return Err("`local_port` goes with `connect`".into());
        }
        if let Some(p) = self.listen {
            calls.push(Call::Listen(p));
        }
        if let Some(s) = &self.send {
            calls.push(Call::Send(s.clone().into_bytes(), self.repeat.unwrap_or(1)));
        }
        if let Some(n) = self.send_bytes {
            calls.push(Call::Send(pattern(n), self.repeat.unwrap_or(1)));
        }
        if let Some(n) = self.recv {
            calls.push(Call::Recv(n));
        }
        if self.recv_eof == Some(true) {
            calls.push(Call::RecvEof);
        }
        if self.shutdown == Some(true) {
            calls.push(Call::Shutdown);
        }
        if self.close == Some(true) {
            calls.push(Call::Close);
        }
        if self.abort == Some(true) {
            calls.push(Call::Abort);
        }
        if self.repeat.is_some() && !matches!(calls.first(), Some(Call::Send(..))) {
            return Err("`repeat` goes with `send` or `send_bytes`".into());
        }
        match calls.len() {
            1 => Ok(calls.pop().expect("one call")),
            0 => {
                Err("a step needs a call: connect, listen, send, send_bytes, recv, recv_eof, shutdown, close or abort"
                    .into())
            }
            _ => Err("a step makes exactly one call".into()),
        }
    }
}

/// `n` bytes of a counting pattern ("0123456789" repeated), easy to recognise in a capture.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'0' + (i % 10) as u8).collect()
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        check_name(&self.name)?;
        self.stack_config()?;
        self.fault_config()?;
        for step in &self.app.script {
            step.call()?;
        }
        for name in &self.app.services {
            if !SERVICES.contains(&name.as_str()) {
                return Err(format!("unknown service '{name}' (known: {})", SERVICES.join(", ")));
            }
        }
        match self.peer.kind {
            PeerKind::Kernel if self.peer.run.is_none() => {
                return Err("a kernel peer needs `run`, the command it runs".into())
            }
            PeerKind::Tapstack => {
                self.peer_config()?;
                for step in self.peer.app.iter().flat_map(|a| &a.script) {
                    step.call()?;
                }
            }
            PeerKind::Kernel => {}
        }
        Ok(())
    }

    /// The stack's configuration.
    pub fn stack_config(&self) -> Result<Config, String> {
        side_config(
            &self.stack.mac,
            self.stack.addr,
            self.stack.prefix_len,
            self.stack.seed,
            self.stack.mtu,
            &self.stack.tcp,
        )
    }

    /// A tapstack peer's configuration (same prefix and TCP settings as the stack).
    pub fn peer_config(&self) -> Result<Config, String> {
        let mac = self.peer.mac.as_deref().ok_or("a tapstack peer needs `mac`")?;
        let seed = self.peer.seed.ok_or("a tapstack peer needs `seed`")?;
        side_config(mac, self.peer.addr, self.stack.prefix_len, seed, self.stack.mtu, &self.stack.tcp)
    }

    pub fn fault_config(&self) -> Result<Option<FaultConfig>, String> {
        let Some(text) = &self.faults else { return Ok(None) };
        let f = FaultConfig::parse(text).map_err(|e| format!("faults: {e}"))?;
        if f.delay > 0.0 || f.reorder > 0.0 {
            return Err("faults: delay and reorder cannot be recorded reproducibly; use drop, dup, corrupt".into());
        }
        Ok(Some(f))
    }

    /// The `expect` entries that no transition shows (each transition written
    /// as `FROM -> TO (cause)`).
    pub fn unmet_expectations<'a>(&'a self, transitions: &[String]) -> Vec<&'a str> {
        self.expect.iter().filter(|e| !transitions.iter().any(|t| t.contains(e.as_str()))).map(String::as_str).collect()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
}

/// The services a scenario's application can run.
pub const SERVICES: [&str; 4] = ["echo", "discard", "http", "udp-echo"];

fn side_config(
    mac: &str,
    addr: Ipv4Addr,
    prefix_len: u8,
    seed: u64,
    mtu: Option<u16>,
    tcp: &TcpSettings,
) -> Result<Config, String> {
    let mac: MacAddr = mac.parse().map_err(|e| format!("mac '{mac}': {e}"))?;
    let mut c = Config::new(mac, addr, prefix_len);
    c.seed = seed;
    if let Some(m) = mtu {
        c.mtu = m;
    }
    if let Some(ms) = tcp.msl_ms {
        c.tcp.msl = Duration::from_millis(ms);
    }
    if let Some(ms) = tcp.initial_rto_ms {
        c.tcp.initial_rto = Duration::from_millis(ms);
    }
    if let Some(on) = tcp.sack {
        c.tcp.sack = on;
    }
    if let Some(on) = tcp.timestamps {
        c.tcp.timestamps = on;
    }
    if let Some(on) = tcp.hystart {
        c.tcp.hystart = on;
    }
    let o = &mut c.tcp.default_options;
    if let Some(n) = tcp.recv_buffer {
        o.recv_buffer = n;
    }
    if let Some(n) = tcp.send_buffer {
        o.send_buffer = n;
    }
    if let Some(on) = tcp.nodelay {
        o.nodelay = on;
    }
    c.validate().map_err(|e| format!("stack settings: {e}"))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "t"
        description = "d"
        duration_ms = 1000
        [stack]
        addr = "10.77.0.2"
        mac = "02:74:61:70:00:02"
        seed = 1
        [peer]
        kind = "kernel"
        addr = "10.77.0.1"
        run = "true"
    "#;

    #[test]
    fn expectations_name_what_the_trace_lacks() {
        let s = MINIMAL
            .replace("duration_ms = 1000", "duration_ms = 1000\nexpect = [\"FIN-WAIT-1 -> CLOSING\", \"rcv RST\"]");
        let s = Scenario::parse(&s).unwrap();
        let trace = [
            "ESTABLISHED -> FIN-WAIT-1 (CLOSE / snd FIN)".to_string(),
            "FIN-WAIT-1 -> CLOSING (rcv FIN / snd ACK)".into(),
        ];
        assert_eq!(s.unmet_expectations(&trace), ["rcv RST"]);
    }

    #[test]
    fn a_minimal_scenario_parses() {
        let s = Scenario::parse(MINIMAL).unwrap();
        assert_eq!(s.stack.prefix_len, 24);
        assert!(s.app.script.is_empty());
        assert_eq!(s.stack_config().unwrap().seed, 1);
    }

    #[test]
    fn mistakes_are_named() {
        let bad = MINIMAL.replace("seed = 1", "seed = 1\ncolour = 3");
        assert!(Scenario::parse(&bad).unwrap_err().contains("colour"));
        let bad = format!("{MINIMAL}\n[app]\nservices = [\"gopher\"]\n");
        assert!(Scenario::parse(&bad).unwrap_err().contains("gopher"));
        let bad = format!("{MINIMAL}\n[[app.script]]\nsend = \"a\"\nclose = true\n");
        assert!(Scenario::parse(&bad).unwrap_err().contains("exactly one"));
        let bad = MINIMAL.replace("[stack]", "faults = \"delay=0.5\"\n[stack]");
        assert!(Scenario::parse(&bad).unwrap_err().contains("reproducibly"));
        let bad = MINIMAL.replace("run = \"true\"", "");
        assert!(Scenario::parse(&bad).unwrap_err().contains("run"));
    }

    #[test]
    fn steps_name_their_calls() {
        let s = format!("{MINIMAL}\n[[app.script]]\nconnect = \"10.77.0.1:80\"\n[[app.script]]\nsend = \"ab\"\nrepeat = 3\n[[app.script]]\nat_ms = 50\nrecv_eof = true\n");
        let s = Scenario::parse(&s).unwrap();
        let calls: Vec<Call> = s.app.script.iter().map(|st| st.call().unwrap()).collect();
        assert_eq!(
            calls,
            [Call::Connect("10.77.0.1:80".parse().unwrap(), None), Call::Send(b"ab".to_vec(), 3), Call::RecvEof]
        );
        assert_eq!(s.app.script[2].at_ms, Some(50));
    }

    #[test]
    fn what_a_file_says_is_bounded_before_anything_is_allocated() {
        let step = |extra: &str| Scenario::parse(&format!("{MINIMAL}\n[[app.script]]\n{extra}\n"));
        let err = step("send_bytes = 1000000000000000").unwrap_err();
        assert!(err.contains("at most"), "{err}");
        let err = step("send = \"ab\"\nrepeat = 1000000000000000000").unwrap_err();
        assert!(err.contains("at most"), "{err}");
        assert!(step("send = \"\"\nrepeat = 1000000000000000000").unwrap_err().contains("empty"));
        assert!(step("send_bytes = 1000").is_ok());
        for bad in ["../x", "a/b", ".hidden", "", "x\\u0000"] {
            let text = MINIMAL.replacen("name = \"t\"", &format!("name = \"{bad}\""), 1);
            assert!(Scenario::parse(&text).unwrap_err().contains("plain file name"), "{bad}");
        }
    }
}
