//! Socket options as values: what setsockopt(2) takes and getsockopt(2) gives
//! ([`OptVal`], [`Linger`]), what a socket holds ([`Options`], in Linux's units),
//! and the rules of each option's value (its kind, its range, its errno). This
//! module only keeps values: handing them to UDP or TCP is the datagram and
//! stream modules' job, and the options that are read from the socket's state
//! (SO_TYPE, SO_ERROR, SO_ACCEPTCONN, ...) are answered by the descriptor table.
//!
//! Buffer sizes follow Linux: SO_RCVBUF and SO_SNDBUF double the value asked for
//! (the kernel's allowance for bookkeeping), capped at [`RMEM_MAX`] / [`WMEM_MAX`]
//! before doubling and raised to [`SOCK_MIN_RCVBUF`] / [`SOCK_MIN_SNDBUF`].

use crate::consts::*;
use crate::errno::{Errno, Result};
use std::time::Duration;

/// Default SO_RCVBUF and SO_SNDBUF (Linux's `net.core.rmem_default` / `wmem_default`).
pub const DEFAULT_BUF: usize = 212_992;
/// Largest SO_RCVBUF request honoured, before doubling (`net.core.rmem_max`).
pub const RMEM_MAX: usize = 212_992;
/// Largest SO_SNDBUF request honoured, before doubling (`net.core.wmem_max`).
pub const WMEM_MAX: usize = 212_992;
/// Smallest SO_RCVBUF (Linux's SOCK_MIN_RCVBUF).
pub const SOCK_MIN_RCVBUF: usize = 2304;
/// Smallest SO_SNDBUF (Linux's SOCK_MIN_SNDBUF).
pub const SOCK_MIN_SNDBUF: usize = 4608;

/// Linux's upper bounds of the keep-alive options.
pub(crate) const MAX_TCP_KEEPIDLE: i32 = 32767;
pub(crate) const MAX_TCP_KEEPINTVL: i32 = 32767;
pub(crate) const MAX_TCP_KEEPCNT: i32 = 127;

/// `struct linger` for SO_LINGER.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Linger {
    /// Nonzero: linger on close.
    pub l_onoff: i32,
    /// How long, in seconds.
    pub l_linger: i32,
}

/// An option value, as setsockopt(2) takes it and getsockopt(2) gives it: an `int`,
/// a `struct timeval` (SO_RCVTIMEO, SO_SNDTIMEO; zero means "no timeout") or a
/// `struct linger`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OptVal {
    Int(i32),
    Time(Duration),
    Linger(Linger),
}

impl OptVal {
    pub fn as_int(self) -> Option<i32> {
        match self {
            OptVal::Int(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_time(self) -> Option<Duration> {
        match self {
            OptVal::Time(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_linger(self) -> Option<Linger> {
        match self {
            OptVal::Linger(v) => Some(v),
            _ => None,
        }
    }
}

impl From<i32> for OptVal {
    fn from(v: i32) -> OptVal {
        OptVal::Int(v)
    }
}
impl From<bool> for OptVal {
    fn from(v: bool) -> OptVal {
        OptVal::Int(v as i32)
    }
}
impl From<Duration> for OptVal {
    fn from(v: Duration) -> OptVal {
        OptVal::Time(v)
    }
}
impl From<Linger> for OptVal {
    fn from(v: Linger) -> OptVal {
        OptVal::Linger(v)
    }
}

/// A socket's options, in Linux's units (buffer sizes already doubled).
#[derive(Clone, Debug)]
pub struct Options {
    pub reuse_addr: bool,
    pub broadcast: bool,
    pub keepalive: bool,
    pub nodelay: bool,
    pub rcvbuf: usize,
    pub sndbuf: usize,
    /// SO_RCVTIMEO; `None` blocks without limit.
    pub rcvtimeo: Option<Duration>,
    /// SO_SNDTIMEO; `None` blocks without limit.
    pub sndtimeo: Option<Duration>,
    pub linger: Linger,
    /// IP_TTL; `None`: the stack's default.
    pub ttl: Option<u8>,
    /// TCP_KEEPIDLE, seconds.
    pub keep_idle: u32,
    /// TCP_KEEPINTVL, seconds.
    pub keep_intvl: u32,
    /// TCP_KEEPCNT.
    pub keep_cnt: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            reuse_addr: false,
            broadcast: false,
            keepalive: false,
            nodelay: false,
            rcvbuf: DEFAULT_BUF,
            sndbuf: DEFAULT_BUF,
            rcvtimeo: None,
            sndtimeo: None,
            linger: Linger::default(),
            ttl: None,
            keep_idle: 7200,
            keep_intvl: 75,
            keep_cnt: 9,
        }
    }
}

/// An option value in 1..=max (Linux's bounds of the keep-alive options), else EINVAL.
fn in_range(v: i32, max: i32) -> Result<u32> {
    if (1..=max).contains(&v) {
        Ok(v as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

/// Stores one option that setsockopt(2) may set (`stream`: the socket is a
/// stream socket, the only kind that takes IPPROTO_TCP options).
///
/// Errors: ENOPROTOOPT for an unknown level or option, or a read-only one;
/// EINVAL for a value of the wrong kind or out of range; EDOM for a timeout
/// that does not fit a `struct timeval`.
pub(crate) fn set(opts: &mut Options, stream: bool, level: i32, name: i32, val: OptVal) -> Result<()> {
    let int = || val.as_int().ok_or(Errno::EINVAL);
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR) => opts.reuse_addr = int()? != 0,
        (SOL_SOCKET, SO_BROADCAST) => opts.broadcast = int()? != 0,
        (SOL_SOCKET, SO_KEEPALIVE) => opts.keepalive = int()? != 0,
        (SOL_SOCKET, SO_RCVBUF) => {
            // Linux: min_t(u32, val, rmem_max), doubled, at least SOCK_MIN_RCVBUF.
            let v = (int()? as u32 as usize).min(RMEM_MAX);
            opts.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
        }
        (SOL_SOCKET, SO_SNDBUF) => {
            let v = (int()? as u32 as usize).min(WMEM_MAX);
            opts.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
        }
        (SOL_SOCKET, SO_RCVTIMEO) | (SOL_SOCKET, SO_SNDTIMEO) => {
            let t = val.as_time().ok_or(Errno::EINVAL)?;
            if t.as_secs() > i64::MAX as u64 {
                return Err(Errno::EDOM);
            }
            let t = (!t.is_zero()).then_some(t);
            if name == SO_RCVTIMEO {
                opts.rcvtimeo = t;
            } else {
                opts.sndtimeo = t;
            }
        }
        (SOL_SOCKET, SO_LINGER) => opts.linger = val.as_linger().ok_or(Errno::EINVAL)?,
        (IPPROTO_IP, IP_TTL) => {
            opts.ttl = match int()? {
                -1 => None,
                t @ 1..=255 => Some(t as u8),
                _ => return Err(Errno::EINVAL),
            }
        }
        (IPPROTO_TCP, TCP_NODELAY) if stream => opts.nodelay = int()? != 0,
        (IPPROTO_TCP, TCP_KEEPIDLE) if stream => opts.keep_idle = in_range(int()?, MAX_TCP_KEEPIDLE)?,
        (IPPROTO_TCP, TCP_KEEPINTVL) if stream => opts.keep_intvl = in_range(int()?, MAX_TCP_KEEPINTVL)?,
        (IPPROTO_TCP, TCP_KEEPCNT) if stream => opts.keep_cnt = in_range(int()?, MAX_TCP_KEEPCNT)?,
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

/// Reads back one option that [`set`] stores; IP_TTL unset reads `default_ttl`
/// (the stack's). Errors: ENOPROTOOPT for any other level or option.
pub(crate) fn get(opts: &Options, stream: bool, default_ttl: u8, level: i32, name: i32) -> Result<OptVal> {
    let int = |v: i32| Ok(OptVal::Int(v));
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR) => int(opts.reuse_addr as i32),
        (SOL_SOCKET, SO_BROADCAST) => int(opts.broadcast as i32),
        (SOL_SOCKET, SO_KEEPALIVE) => int(opts.keepalive as i32),
        (SOL_SOCKET, SO_RCVBUF) => int(opts.rcvbuf as i32),
        (SOL_SOCKET, SO_SNDBUF) => int(opts.sndbuf as i32),
        (SOL_SOCKET, SO_RCVTIMEO) => Ok(OptVal::Time(opts.rcvtimeo.unwrap_or_default())),
        (SOL_SOCKET, SO_SNDTIMEO) => Ok(OptVal::Time(opts.sndtimeo.unwrap_or_default())),
        (SOL_SOCKET, SO_LINGER) => Ok(OptVal::Linger(opts.linger)),
        (IPPROTO_IP, IP_TTL) => int(opts.ttl.unwrap_or(default_ttl) as i32),
        (IPPROTO_TCP, TCP_NODELAY) if stream => int(opts.nodelay as i32),
        (IPPROTO_TCP, TCP_KEEPIDLE) if stream => int(opts.keep_idle as i32),
        (IPPROTO_TCP, TCP_KEEPINTVL) if stream => int(opts.keep_intvl as i32),
        (IPPROTO_TCP, TCP_KEEPCNT) if stream => int(opts.keep_cnt as i32),
        _ => Err(Errno::ENOPROTOOPT),
    }
}
