//! packetdrill's own TCP scripts (gtests/net/tcp/ of the third-party copy beside
//! the clone), run against tapstack as a peer's test: they encode Linux's
//! defaults, so many fail for reasons that are not bugs. This prints, per
//! directory, how many pass, fail, or cannot apply (Linux-only socket options,
//! sysctls and other configuration commands, TCP Fast Open, zerocopy, epoll...),
//! and each failure's first error line; docs/packetdrill-upstream.md explains
//! every failure. The test fails if fewer scripts pass than the floor recorded
//! there (a regression), or if a script crashes packetdrill's interface.
//!
//! The scripts run from a copy whose `common/defaults.sh` is a stub; a script
//! with any other shell command is "cannot apply", so nothing touches the host.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The scripts expect Linux's window scale 8 in its SYN,ACK (from the 15 MiB
/// tcp_rmem maximum their defaults.sh sets); tapstack's scale follows its
/// receive buffer, so it gets one of 8 MiB. Everything else is tapstack's default.
const LINUX_LIKE: &[&str] = &["--so_flags=rcvbuf=8388608"];

/// Scripts that pass at least: raise it when tapstack passes more.
const PASS_FLOOR: usize = 9;

/// Words that mark a script as not applicable to tapstack, and why.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    ("FO ", "TCP Fast Open"),
    ("FO>", "TCP Fast Open"),
    ("TCP_FASTOPEN", "TCP Fast Open"),
    ("MSG_FASTOPEN", "TCP Fast Open"),
    ("ZEROCOPY", "zerocopy"),
    ("epoll", "epoll"),
    ("splice", "splice"),
    ("sendfile", "sendfile"),
    ("pipe(", "pipes"),
    ("TCP_INFO", "TCP_INFO"),
    ("tcpi_", "TCP_INFO"),
    ("TCP_CONGESTION", "congestion-control modules"),
    ("md5", "TCP MD5"),
    ("TCP_MD5SIG", "TCP MD5"),
    ("TCP_NOTSENT_LOWAT", "Linux-only socket option"),
    ("TIMESTAMPING", "Linux-only socket option"),
    ("TCP_INQ", "Linux-only socket option"),
    ("TCP_CORK", "Linux-only socket option"),
    ("MSG_MORE", "Linux-only send flag"),
    ("MSG_EOR", "Linux-only send flag"),
    ("MSG_ZEROCOPY", "zerocopy"),
    ("TCP_USER_TIMEOUT", "Linux-only socket option"),
    ("TCP_MAXSEG", "Linux-only socket option"),
    ("TCP_REPAIR", "Linux-only socket option"),
    ("TCP_SAVE", "Linux-only socket option"),
    ("TCP_DEFER_ACCEPT", "Linux-only socket option"),
    ("TCP_QUICKACK", "Linux-only socket option"),
    ("TCP_WINDOW_CLAMP", "Linux-only socket option"),
    ("TCP_LINGER2", "Linux-only socket option"),
    ("TCP_SYNCNT", "Linux-only socket option"),
    ("TCP_THIN", "Linux-only socket option"),
    ("SO_MAX_PACING_RATE", "Linux-only socket option"),
    ("SO_RCVLOWAT", "Linux-only socket option"),
    ("SO_PRIORITY", "Linux-only socket option"),
    ("SIOC", "Linux-only ioctl"),
    ("IPV6", "IPv6"),
    ("AF_INET6", "IPv6"),
    ("ecn", "ECN"),
    ("ECN", "ECN"),
    ("mtu_probe", "path MTU probing"),
    ("TCP_TX_DELAY", "Linux-only socket option"),
    ("IP_TOS", "IP_TOS (not supported)"),
];

/// Why `text` cannot apply to tapstack, if it cannot.
fn not_applicable(text: &str) -> Option<String> {
    for block in text.split('`').skip(1).step_by(2) {
        let other = block.lines().map(str::trim).filter(|l| !l.is_empty()).find(|l| !l.ends_with("common/defaults.sh"));
        if let Some(cmd) = other {
            let word = cmd.split_whitespace().next().unwrap_or(cmd);
            return Some(format!("Linux configuration command ({word})"));
        }
    }
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    NOT_APPLICABLE.iter().find(|(w, _)| code.contains(w)).map(|(_, why)| why.to_string())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for e in std::fs::read_dir(from).expect("a directory").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("a copy");
        }
    }
}

#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
    na: usize,
}

#[test]
fn upstream_tcp_scripts_report() {
    let upstream = std::env::var_os("PACKETDRILL_UPSTREAM")
        .map(PathBuf::from)
        .or_else(|| common::shared().map(|s| s.join("third_party/packetdrill/gtests/net/tcp")));
    let Some(upstream) = upstream.filter(|u| u.is_dir()) else {
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "CI=true: no upstream scripts beside the clone");
        eprintln!("skipping: no upstream scripts (shared/third_party/packetdrill beside the clone)");
        return;
    };
    let Some(pd) = common::packetdrill_or_skip() else { return };
    let lib = common::library();
    // As upstream's tree: net/tcp/... with net/common/ and net/tcp/common/ (scripts
    // reach either, by ../common, ../../common or ../../../common).
    let root = std::env::temp_dir().join(format!("tapstack-pd-upstream-{}", std::process::id()));
    let copy = root.join("tcp");
    copy_tree(&upstream, &copy);
    for stub in [root.join("common/defaults.sh"), copy.join("common/defaults.sh")] {
        std::fs::create_dir_all(stub.parent().expect("a directory")).expect("a directory");
        std::fs::write(&stub, "#!/bin/sh\nexit 0\n").expect("the stub");
        std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("executable");
    }
    let mut by_dir: BTreeMap<String, Tally> = BTreeMap::new();
    let mut lines = Vec::new();
    for s in common::scripts(&copy) {
        let rel = s.strip_prefix(&copy).expect("inside").display().to_string();
        let dir = rel.split('/').next().unwrap_or("").to_string();
        let t = by_dir.entry(dir).or_default();
        let text = std::fs::read_to_string(&s).unwrap_or_default();
        let why = if rel.starts_with("fastopen/") { Some("TCP Fast Open".to_string()) } else { not_applicable(&text) };
        if let Some(why) = why {
            t.na += 1;
            lines.push(format!("n/a  {rel}: {why}"));
            continue;
        }
        let o = common::run_script(&pd, &lib, &s, LINUX_LIKE, Duration::from_secs(30));
        if o.passed {
            t.pass += 1;
            lines.push(format!("pass {rel}"));
        } else {
            t.fail += 1;
            let first = o.output.lines().find(|l| l.contains("error") || l.contains("killed")).unwrap_or("");
            lines.push(format!("FAIL {rel}: {first}"));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    for l in &lines {
        println!("{l}");
    }
    println!("\n| directory | pass | fail | n/a |\n|---|---|---|---|");
    let mut total = Tally::default();
    for (d, t) in &by_dir {
        println!("| {d} | {} | {} | {} |", t.pass, t.fail, t.na);
        total.pass += t.pass;
        total.fail += t.fail;
        total.na += t.na;
    }
    println!("| all | {} | {} | {} |", total.pass, total.fail, total.na);
    assert!(total.pass >= PASS_FLOOR, "{} upstream scripts pass, fewer than the floor {PASS_FLOOR}", total.pass);
}
