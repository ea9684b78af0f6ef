//! A lab: a network namespace of our own with a TAP device in it, the Linux host's
//! end of the TAP addressed inside the namespace, and tapstack running on the
//! other end. The demo and the integration tests use it; everything it creates is
//! removed when it is dropped.
//!
//! Built on [`crate::instance`] (starting a stack on a TAP) and [`crate::netns`].

use crate::instance::{mac_for, run_on_tap, ALL_SERVICES};
use crate::netns::Netns;
use sockets_api::services::ServiceSet;
use sockets_api::Runtime;
use stack::device::tap::TapDevice;
use stack::offload::Offloads;
use stack::{Config, Counters, Stack};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

/// The TAP's name inside the lab's namespace.
pub const TAP_NAME: &str = "tap0";

/// How to build a lab.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The Linux host's address on the TAP.
    pub host_addr: Ipv4Addr,
    /// tapstack's address.
    pub stack_addr: Ipv4Addr,
    pub prefix_len: u8,
    /// Record every frame to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Seed of the stack's random choices.
    pub seed: u64,
    /// The services tapstack runs, as `tapstack up --serve` takes them (empty: none).
    pub services: String,
    /// Open the TAP with the kernel's offloads (`tapstack up --offload`).
    pub offload: bool,
    /// Without offloads: with the kernel's NAPI in a thread of the TAP's own,
    /// as `tapstack up` opens it (off: `--no-napi`; `stack::device::napi`).
    pub napi: bool,
    /// Buffers that grow with a bulk transfer, as `tapstack up` runs
    /// (`TcpConfig::wmem_max`, `rmem_max`, `lazy_window_updates`); off, fixed 64 KiB buffers, as
    /// before (for a benchmark's comparison).
    pub buffer_autotune: bool,
    /// Answer every SYN with a cookie (`TcpConfig::syn_cookies_always`, Linux's
    /// tcp_syncookies = 2), to try cookie connections with the kernel.
    pub syn_cookies_always: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            host_addr: Ipv4Addr::new(10, 77, 0, 1),
            stack_addr: Ipv4Addr::new(10, 77, 0, 2),
            prefix_len: 24,
            pcap: None,
            seed: 1,
            services: ALL_SERVICES.to_string(),
            offload: false,
            napi: true,
            buffer_autotune: true,
            syn_cookies_always: false,
        }
    }
}

impl LabConfig {
    /// The stack's configuration for this lab.
    pub fn stack_config(&self) -> Config {
        let mut c = Config::new(mac_for(self.stack_addr), self.stack_addr, self.prefix_len);
        c.seed = self.seed;
        c.offload = if self.offload { Offloads::TAP } else { Offloads::default() };
        c.tcp.syn_cookies_always = self.syn_cookies_always;
        // As `tapstack up` runs (`StackOptions::config`).
        if self.buffer_autotune {
            c.tcp.wmem_max = stack::tcp::config::AUTOTUNE_WMEM_MAX;
            c.tcp.rmem_max = stack::tcp::config::AUTOTUNE_RMEM_MAX;
            c.tcp.lazy_window_updates = true;
        }
        c
    }
}

/// Opens the TAP [`TAP_NAME`] inside `ns`, gives the Linux host's end the
/// address `host/prefix_len` and sets it up.
pub fn open_tap(ns: &Netns, host: Ipv4Addr, prefix_len: u8) -> Result<TapDevice, String> {
    open_tap_with(ns, host, prefix_len, false, false).map(|(tap, _)| tap)
}

/// [`open_tap`], with the kernel's offloads if `offload` ([`TapDevice::open_offloaded`]),
/// else with its NAPI in a thread of the TAP's own if `napi` ([`TapDevice::open_napi`];
/// if the thread cannot be had, without NAPI, as `tapstack up` falls back).
/// Returns the TAP and whether it has the NAPI thread.
pub fn open_tap_with(
    ns: &Netns,
    host: Ipv4Addr,
    prefix_len: u8,
    offload: bool,
    napi: bool,
) -> Result<(TapDevice, bool), String> {
    let open = |napi: bool| {
        let f = move || match (offload, napi) {
            (true, _) => TapDevice::open_offloaded(TAP_NAME),
            (false, true) => TapDevice::open_napi(TAP_NAME),
            (false, false) => TapDevice::reopen(TAP_NAME),
        };
        ns.run_inside(f)?.map_err(|e| e.to_string())
    };
    let mut tap = open(napi && !offload)?;
    // Set in the namespace's own sysfs (`ip netns exec` mounts it), which this
    // process's /sys is not (`stack::device::napi::set_threaded` checks);
    // without the thread (a kernel before 5.12), NAPI is slower than none.
    let threaded = format!("echo 1 > /sys/class/net/{TAP_NAME}/threaded");
    let napi_thread = napi && !offload && ns.exec_checked(&["sh", "-c", &threaded]).is_ok();
    if napi && !offload && !napi_thread {
        drop(tap);
        tap = open(false)?;
    }
    // The kernel would send IPv6 router and multicast chatter on the TAP; tapstack
    // speaks IPv4 only, so keep captures to what it does.
    ns.exec_checked(&["sysctl", "-qw", &format!("net.ipv6.conf.{TAP_NAME}.disable_ipv6=1")])?;
    ns.exec_checked(&["ip", "addr", "add", &format!("{host}/{prefix_len}"), "dev", TAP_NAME])?;
    ns.exec_checked(&["ip", "link", "set", TAP_NAME, "up"])?;
    Ok((tap, napi_thread))
}

/// A running lab. Dropping it stops the stack, then deletes the namespace.
#[derive(Debug)]
pub struct Lab {
    // Field order is drop order: services, then the stack (and its TAP), then the namespace.
    services: Option<ServiceSet>,
    runtime: Option<Runtime>,
    pub config: LabConfig,
    /// Whether the TAP has the kernel's NAPI thread (`LabConfig::napi`, if the kernel allows).
    pub napi_thread: bool,
    ns: Netns,
}

impl Lab {
    /// Creates the namespace (its name starts with `prefix`), the TAP in it,
    /// addresses the host end, and starts tapstack on the other end.
    pub fn start(prefix: &str, config: LabConfig) -> Result<Lab, String> {
        let stack = Stack::new(config.stack_config())?;
        let ns = Netns::create(prefix)?;
        let (tap, napi_thread) = open_tap_with(&ns, config.host_addr, config.prefix_len, config.offload, config.napi)?;
        let runtime = run_on_tap(stack, tap, config.pcap.as_deref())?;
        let services = match config.services.as_str() {
            "" => None,
            list => Some(
                ServiceSet::start_list(&runtime.net(), list)
                    .map_err(|e| format!("cannot start the services {list}: {e}"))?,
            ),
        };
        Ok(Lab { services, runtime: Some(runtime), config, napi_thread, ns })
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime runs until stop")
    }

    /// Adds a persistent TAP `name` to the namespace with the host's end at
    /// `host_cidr` and up, for a second tapstack instance (`tapstack nc`, say) to attach to.
    pub fn add_tap(&self, name: &str, host_cidr: &str) -> Result<(), String> {
        self.ns.add_tap(name, host_cidr)
    }

    /// A command run on the Linux host side, inside the lab's namespace.
    pub fn host(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    /// Stops the stack (flushing the pcap) and returns its final counters; the
    /// namespace goes when the lab is dropped.
    pub fn stop(&mut self) -> Result<Counters, String> {
        if let Some(services) = self.services.take() {
            let _ = services.stop();
        }
        match self.runtime.take() {
            Some(rt) => {
                let counters = rt.counters();
                rt.stop().map_err(|e| format!("the stack stopped with an error: {e}"))?;
                Ok(counters)
            }
            None => Err("the lab was already stopped".into()),
        }
    }
}
