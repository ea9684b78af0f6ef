//! One tapstack instance on a TAP: the options every command that runs a stack
//! shares (`up`, `nc`), starting a stack on a TAP, and the defaults an instance
//! has wherever it runs (its MAC, its services).
//!
//! The bottom of the commands' layering (with [`crate::gate`], which it puts in
//! front of the TAP): `lab` (namespaces and TAPs) and `up` (the command) build
//! on it, and it names neither.

use crate::gate::Gate;
use sockets_api::{Net, Runtime};
use stack::device::pcap::{PcapLimits, PcapRecorder, SNAPLEN};
use stack::device::tap::TapDevice;
use stack::device::Device;
use stack::offload::Offloads;
use stack::{Config, MacAddr, Stack};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Every service a tapstack instance knows, the default of `tapstack up --serve`
/// and of a lab.
pub const ALL_SERVICES: &str = "echo,discard,chargen,http,udp-echo";

/// A locally administered MAC derived from an address: 02:74:61:70 ("tap") and its last two bytes.
pub fn mac_for(addr: Ipv4Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x02, 0x74, 0x61, 0x70, o[2], o[3]])
}

/// Where and how a stack runs.
#[derive(Clone, Debug, clap::Args)]
pub struct StackOptions {
    /// The TAP device (opened if it exists, created otherwise).
    #[arg(long)]
    pub tap: String,
    /// Our address and subnet, like 10.0.0.2/24.
    #[arg(long, value_parser = parse_cidr)]
    pub addr: (Ipv4Addr, u8),
    /// Our MAC address (default: 02:74:61:70 and the address's last two bytes).
    #[arg(long)]
    pub mac: Option<MacAddr>,
    /// Default gateway for destinations off the subnet.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// Largest IP datagram on the link.
    #[arg(long, default_value_t = 1500)]
    pub mtu: u16,
    /// Write every frame in and out to this pcap file (created or truncated; a
    /// symbolic link there is refused, not written through).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Bytes of each frame the pcap keeps (tcpdump's -s); longer frames are cut
    /// and marked so.
    #[arg(long, value_name = "BYTES", default_value_t = SNAPLEN, value_parser = clap::value_parser!(u32).range(14..))]
    pub pcap_snaplen: u32,
    /// Once the pcap file reaches this many million bytes, start another: FILE1,
    /// FILE2... (tcpdump's -C); 0: one file, however large.
    #[arg(long, value_name = "MB", default_value_t = 100)]
    pub pcap_size: u64,
    /// Keep at most this many pcap files, then overwrite FILE, FILE1... in turn
    /// (tcpdump's -W): by default at most 10 x 100 MB; 0: keep every file.
    #[arg(long, value_name = "COUNT", default_value_t = 10)]
    pub pcap_files: u32,
    /// Time to live of the datagrams we send.
    #[arg(long, default_value_t = 64)]
    pub ttl: u8,
    /// Seed of the stack's random choices (ISNs, ports, IP identification); default: random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Most TCP connections at once (the connection table's size; each costs
    /// memory only while it exists).
    #[arg(long, default_value_t = 262_144)]
    pub max_connections: usize,
    /// Most socket descriptors open at once (RLIMIT_NOFILE for the stack's sockets).
    /// Each is numbered with a kernel descriptor reserved for it while the
    /// process's own RLIMIT_NOFILE allows, and beyond that from fs.nr_open up;
    /// both serve alike, since `up`'s services wait on them through the stack.
    #[arg(long, default_value_t = 262_144)]
    pub max_fds: usize,
    /// TCP's maximum segment lifetime in milliseconds: TIME-WAIT lasts twice
    /// this (default 30000, so 60 s, as Linux's fixed TCP_TIMEWAIT_LEN;
    /// FreeBSD's net.inet.tcp.msl is the same knob). A short one lets a test
    /// watch TIME-WAITs come and go.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub msl_ms: u64,
    /// Open the TAP without the kernel's offloads: every frame crosses it on
    /// its own, at most the MTU, its checksums computed by us. By default the
    /// offloads are tried (virtio-net header, checksum offload, TSO both ways:
    /// TCP segments of up to 64 KiB) and, if the kernel refuses them, tapstack
    /// runs without and says so.
    #[arg(long, conflicts_with = "offload")]
    pub no_offload: bool,
    /// Insist on the kernel's offloads: fail if it refuses them rather than
    /// run without (the default tries them and falls back).
    #[arg(long)]
    pub offload: bool,
    /// Without offloads, open the TAP without IFF_NAPI. By default a TAP
    /// without offloads is opened with it, and the kernel processes the
    /// frames we write in a NAPI thread of the TAP's own (its `threaded`
    /// attribute), on another core rather than inside our writes; if that
    /// thread cannot be had, tapstack runs without NAPI and says so. (With
    /// offloads the TAP is opened without NAPI, which was slower there.)
    #[arg(long, conflicts_with = "offload")]
    pub no_napi: bool,
}

/// Parses `10.0.0.2/24`: a host's address, so a subnet's network or broadcast
/// address is refused with a hint ([`sockets_api::parse_host_cidr`]).
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    sockets_api::parse_host_cidr(s)
}

impl StackOptions {
    /// The stack's configuration.
    pub fn config(&self) -> Config {
        let mac = self.mac.unwrap_or_else(|| mac_for(self.addr.0));
        let mut config = Config::new(mac, self.addr.0, self.addr.1);
        config.gateway = self.gateway;
        config.mtu = self.mtu;
        config.ttl = self.ttl;
        config.seed = self.seed.unwrap_or_else(rand::random);
        config.tcp.max_connections = self.max_connections;
        config.tcp.msl = stack::Duration::from_millis(self.msl_ms);
        config.offload = Offloads::default();
        // Buffers grow with a bulk transfer's needs, as Linux's tcp_wmem and tcp_rmem.
        config.tcp.wmem_max = stack::tcp::config::AUTOTUNE_WMEM_MAX;
        config.tcp.rmem_max = stack::tcp::config::AUTOTUNE_RMEM_MAX;
        config.tcp.lazy_window_updates = true;
        config
    }

    /// Whether to try the kernel's offloads (`--no-offload`, `--offload`).
    pub fn offload_wish(&self) -> OffloadWish {
        match (self.no_offload, self.offload) {
            (true, _) => OffloadWish::Off,
            (false, true) => OffloadWish::Require,
            (false, false) => OffloadWish::Prefer,
        }
    }

    /// Opens the TAP (recording to the pcap if asked) and starts the stack on it
    /// (see [`StackOptions::start_serving`]; nothing to open before it answers).
    pub fn start(&self) -> Result<(Runtime, Config), String> {
        self.start_serving(|_| Ok(())).map(|(runtime, config, ())| (runtime, config))
    }

    /// Opens the TAP (recording to the pcap if asked) and starts the stack on it
    /// behind a closed [`Gate`]: it probes for its address (RFC 5227 section
    /// 2.1.1), then `open` runs (the services start listening), and only then
    /// does the stack answer anything (ARP, ping, SYNs) and announce itself. So
    /// a client that waits for a ping reply finds the services there.
    pub fn start_serving<T>(
        &self,
        open: impl FnOnce(&Net) -> Result<T, String>,
    ) -> Result<(Runtime, Config, T), String> {
        self.start_serving_with(open).map(|(runtime, config, t, _)| (runtime, config, t))
    }

    /// [`StackOptions::start_serving`], also saying how the TAP was opened
    /// (with offloads or not, and why).
    pub fn start_serving_with<T>(
        &self,
        open: impl FnOnce(&Net) -> Result<T, String>,
    ) -> Result<(Runtime, Config, T, OffloadState), String> {
        let (tap, offloads) = open_tap(&self.tap, self.offload_wish(), !self.no_napi)?;
        if let OffloadState::Refused(..) = &offloads {
            eprintln!("tapstack: {}", offloads.describe());
        }
        let mut config = self.config();
        config.offload = tap.offloads();
        let stack = Stack::new(config.clone())?;
        let (gate, key) = Gate::closed(self.recorded(tap)?, config.addr);
        let runtime = Runtime::start(stack, gate).map_err(|e| format!("cannot start the stack: {e}"))?;
        let opened = runtime.net().set_fd_limit(self.max_fds).map_err(|e| format!("--max-fds {}: {e}", self.max_fds));
        let opened = opened.and_then(|()| match probe_for_conflict(&runtime) {
            Some(mac) => Err(format!(
                "address {} is already in use on the link by {mac} (it answered our ARP probe)",
                config.addr
            )),
            None => open(&runtime.net()),
        });
        match opened {
            Ok(t) => {
                key.open();
                // The announcement the closed gate held back (RFC 5227 section 2.3).
                runtime.shared().with_stack(|s, now| s.start(now));
                Ok((runtime, config, t, offloads))
            }
            Err(e) => {
                let _ = runtime.stop();
                Err(e)
            }
        }
    }
}

impl StackOptions {
    /// What the pcap keeps (`--pcap-snaplen`, `--pcap-size`, `--pcap-files`).
    pub fn pcap_limits(&self) -> PcapLimits {
        PcapLimits {
            snaplen: self.pcap_snaplen,
            file_size: (self.pcap_size > 0).then(|| self.pcap_size.saturating_mul(1_000_000)),
            files: (self.pcap_files > 0).then_some(self.pcap_files),
        }
    }

    /// `tap`, recording every frame to `--pcap` if given, within [`StackOptions::pcap_limits`].
    fn recorded(&self, tap: TapDevice) -> Result<Box<dyn Device + Send>, String> {
        Ok(match &self.pcap {
            Some(p) => Box::new(
                PcapRecorder::create_limited(tap, p, self.pcap_limits())
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))?,
            ),
            None => Box::new(tap),
        })
    }
}

/// Whether to open a TAP with the kernel's offloads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OffloadWish {
    /// Plain frames (`--no-offload`).
    Off,
    /// Offloads if the kernel grants them, plain frames otherwise (the default).
    Prefer,
    /// Offloads or an error (`--offload`).
    Require,
}

/// How a TAP was opened, for the user to be told once (stderr, `tapstack stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffloadState {
    /// With the virtio-net header and `TUNSETOFFLOAD` (checksums, TSO both ways).
    On,
    /// Plain frames, as asked (`--no-offload`), and how the kernel takes them.
    Off(Napi),
    /// Plain frames because the kernel refused the offloads: why; and how
    /// the kernel takes them.
    Refused(String, Napi),
}

/// How the kernel takes the frames written to a TAP without offloads
/// (`stack::device::napi`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Napi {
    /// In a NAPI thread of the TAP's own.
    Threaded,
    /// Inside our writes, as asked (`--no-napi`).
    Off,
    /// Inside our writes, because the NAPI thread could not be had: why.
    Unavailable(String),
}

impl Napi {
    fn describe(&self) -> String {
        match self {
            Napi::Threaded => "; the kernel takes them in a NAPI thread of the TAP's own (IFF_NAPI, threaded)".into(),
            Napi::Off => "; the kernel takes them inside our writes (--no-napi)".into(),
            Napi::Unavailable(why) => format!("; the kernel takes them inside our writes (no NAPI thread: {why})"),
        }
    }
}

impl OffloadState {
    /// One line for a user.
    pub fn describe(&self) -> String {
        match self {
            OffloadState::On => "offloads on: virtio-net header, checksum offload and TSO both ways \
                                 (TCP segments of up to 64 KiB)"
                .into(),
            OffloadState::Off(napi) => {
                format!("offloads off (--no-offload): one frame of at most the MTU per write{}", napi.describe())
            }
            OffloadState::Refused(why, napi) => {
                format!("offloads off: the kernel refused them ({why}); running with plain frames{}", napi.describe())
            }
        }
    }
}

/// Set (to anything) in a test, this makes [`open_tap`] take the kernel's
/// refusal of the offloads as given, so the fallback can be tried on a kernel
/// that grants them.
pub const REFUSE_OFFLOAD_ENV: &str = "TAPSTACK_TEST_REFUSE_OFFLOAD";

/// Set (to anything) in a test, this makes [`open_plain`] take the NAPI thread
/// as refused, so the fallback can be tried on a kernel that grants it.
pub const REFUSE_NAPI_ENV: &str = "TAPSTACK_TEST_REFUSE_NAPI";

/// Opens the TAP `name` as `wish` says: with [`OffloadWish::Prefer`], a TAP
/// whose kernel refuses `IFF_VNET_HDR` or `TUNSETOFFLOAD` is opened again
/// without them (the refusal is in the [`OffloadState`]); an error opening it
/// plainly is the error.
/// Plain frames are taken by the kernel in a NAPI thread if `napi` ([`open_plain`]).
pub fn open_tap(name: &str, wish: OffloadWish, napi: bool) -> Result<(TapDevice, OffloadState), String> {
    if wish == OffloadWish::Off {
        return open_plain(name, napi).map(|(t, n)| (t, OffloadState::Off(n)));
    }
    let offloaded = match std::env::var_os(REFUSE_OFFLOAD_ENV) {
        Some(_) => Err(format!("{REFUSE_OFFLOAD_ENV} is set")),
        None => TapDevice::open_offloaded(name).map_err(|e| e.to_string()),
    };
    match (offloaded, wish) {
        (Ok(tap), _) => Ok((tap, OffloadState::On)),
        (Err(e), OffloadWish::Require) => Err(format!("{e} (--offload: no fallback to plain frames)")),
        (Err(why), _) => open_plain(name, napi).map(|(t, n)| (t, OffloadState::Refused(why, n))),
    }
}

/// Opens the TAP `name` for plain frames: if `napi`, with `IFF_NAPI` and the
/// TAP's NAPI thread (`stack::device::napi`), and if that cannot be had,
/// again without (NAPI without its thread is slower than none).
pub fn open_plain(name: &str, napi: bool) -> Result<(TapDevice, Napi), String> {
    if !napi {
        return TapDevice::open(name).map(|t| (t, Napi::Off)).map_err(|e| e.to_string());
    }
    let threaded = TapDevice::open_napi(name).and_then(|t| match std::env::var_os(REFUSE_NAPI_ENV) {
        Some(_) => Err(std::io::Error::other(format!("{REFUSE_NAPI_ENV} is set"))),
        None => stack::device::napi::set_threaded(t.name()).map(|()| t),
    });
    match threaded {
        Ok(tap) => Ok((tap, Napi::Threaded)),
        Err(why) => TapDevice::reopen(name).map(|t| (t, Napi::Unavailable(why.to_string()))).map_err(|e| e.to_string()),
    }
}

/// Starts `stack` on `tap`, recording every frame to `pcap` if given.
pub fn run_on_tap(stack: Stack, tap: TapDevice, pcap: Option<&Path>) -> Result<Runtime, String> {
    let device: Box<dyn Device + Send> = match pcap {
        Some(p) => Box::new(PcapRecorder::create(tap, p).map_err(|e| format!("cannot write {}: {e}", p.display()))?),
        None => Box::new(tap),
    };
    Runtime::start(stack, device).map_err(|e| format!("cannot start the stack: {e}"))
}

/// How long to wait for a host to defend our address. RFC 5227 waits seconds over
/// three probes; a TAP's other end answers within microseconds, so a short wait
/// catches the common mistake (the host end given our address) without a slow start.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Sends an ARP probe for our address (RFC 5227 section 2.1.1) and waits briefly
/// for another host to claim it. A link that is not up yet cannot answer: then
/// this finds nothing, and a later claim is still counted (ArpAddressConflict).
fn probe_for_conflict(runtime: &Runtime) -> Option<MacAddr> {
    let shared = runtime.shared();
    shared.with_stack(|s, _| s.probe_address());
    shared.wait_for(Some(PROBE_WAIT), |s, _| s.address_conflict())
}
