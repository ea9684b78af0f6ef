//! Where the kernel's descriptor numbers end for this process, and where
//! tapstack's own begin (`/proc/sys/fs/nr_open`): read once, for the runtime's
//! table and waiter lists and for the reservation of kernel numbers
//! (`kernel_fds`).

use crate::fd_table::{Fd, NumberSpace, FIRST_FD};

/// Kernel descriptors left to the program (its files, pipes, poll's eventfds)
/// when sockets start being numbered beyond the kernel's.
pub const KERNEL_HEADROOM: Fd = 64;

/// This process's numbering, read once: the kernel's numbers below RLIMIT_NOFILE's
/// hard limit (at most nr_open) less [`KERNEL_HEADROOM`], tapstack's own from
/// nr_open up. Unsplit (the kernel's only) if /proc cannot be read.
pub(crate) fn space() -> NumberSpace {
    static SPACE: std::sync::OnceLock<NumberSpace> = std::sync::OnceLock::new();
    *SPACE.get_or_init(|| {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse::<Fd>().ok());
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit on a valid struct.
        let hard = (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0).then_some(r.rlim_max);
        let split = nr_open
            .zip(hard)
            .and_then(|(n, h)| NumberSpace::split((h.min(n as u64) as Fd - KERNEL_HEADROOM).max(FIRST_FD), n));
        split.unwrap_or_default()
    })
}
