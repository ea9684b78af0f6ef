//! Running packetdrill scripts against libtapstack.so: where packetdrill and the
//! library are, and one script's run, bounded in time.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace")
}

/// The `shared/` directory beside the clone (or beside its parent, for a worktree).
pub fn shared() -> Option<PathBuf> {
    let ws = workspace();
    [ws.join("../shared"), ws.join("../../shared")].into_iter().find(|p| p.join("tools/build-packetdrill").exists())
}

/// The packetdrill binary: $PACKETDRILL, or target/packetdrill/packetdrill, built
/// there with ../shared/tools/build-packetdrill (as .ci/run does) when missing.
/// `None` with the reason when there is none; under CI=true that is a failure.
pub fn packetdrill() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PACKETDRILL") {
        return Ok(PathBuf::from(p));
    }
    let ws = workspace();
    let bin = ws.join("target/packetdrill/packetdrill");
    let build = shared().map(|s| s.join("tools/build-packetdrill"));
    // Test binaries run side by side (and tests within one on threads): one
    // builds while the others wait on this lock, so none runs a binary still
    // being written (ETXTBSY, "Text file busy", seen in a fresh checkout).
    std::fs::create_dir_all(ws.join("target")).map_err(|e| format!("target/: {e}"))?;
    let lock = std::fs::File::create(ws.join("target/packetdrill.lock")).map_err(|e| format!("lock: {e}"))?;
    lock.lock().map_err(|e| format!("lock: {e}"))?;
    if let (false, Some(build)) = (bin.exists(), build) {
        let ok = Command::new(&build).arg(ws.join("target/packetdrill")).status().is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("{} failed (it needs bison and flex)", build.display()));
        }
    }
    match bin.exists() {
        true => Ok(bin),
        false => {
            Err(format!("no packetdrill at {} (set PACKETDRILL, or build it with build-packetdrill)", bin.display()))
        }
    }
}

/// packetdrill, or a skip (a failure under CI=true).
pub fn packetdrill_or_skip() -> Option<PathBuf> {
    match packetdrill() {
        Ok(p) => Some(p),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true: {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// libtapstack.so as cargo built it for this test.
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("deps/");
    for dir in [deps, deps.parent().expect("the profile's directory")] {
        let so = dir.join("libtapstack.so");
        if so.exists() {
            return so;
        }
    }
    panic!("libtapstack.so is not beside {}", exe.display());
}

/// One script's outcome.
#[derive(Debug)]
pub struct Outcome {
    pub passed: bool,
    pub output: String,
    pub elapsed: Duration,
}

/// Runs `script` through packetdrill against the library, from the script's own
/// directory (its `../common/defaults.sh` is then the suite's stub), killing it
/// after `limit`.
pub fn run_script(packetdrill: &Path, lib: &Path, script: &Path, extra: &[&str], limit: Duration) -> Outcome {
    let start = Instant::now();
    let out =
        std::env::temp_dir().join(format!("tapstack-pd-{}-{:?}.log", std::process::id(), std::thread::current().id()));
    let log = std::fs::File::create(&out).expect("a log file");
    let mut child = Command::new(packetdrill)
        .current_dir(script.parent().expect("a directory"))
        .arg(format!("--so_filename={}", lib.display()))
        .arg("--local_ip=192.168.0.2")
        .args(extra)
        .arg(script.file_name().expect("a file"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("a log"))
        .stderr(log)
        .spawn()
        .expect("packetdrill runs");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut output = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    if status.is_none() {
        output.push_str(&format!("\n(killed after {limit:?})"));
    }
    Outcome { passed: status.is_some_and(|s| s.success()), output, elapsed: start.elapsed() }
}

/// Every `.pkt` under `dir`, sorted.
pub fn scripts(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("a directory").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pkt") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}
