//! SIGINT and SIGTERM, received synchronously: they are blocked in every thread
//! (threads inherit the mask, so call [`block`] before starting any) and a caller
//! waits for them with sigwait. No async-signal-safety concerns, no polling.

use std::mem::MaybeUninit;

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset uses it.
    unsafe {
        let mut s = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(s.as_mut_ptr());
        libc::sigaddset(s.as_mut_ptr(), libc::SIGINT);
        libc::sigaddset(s.as_mut_ptr(), libc::SIGTERM);
        s.assume_init()
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts later.
pub fn block() {
    let s = set();
    // SAFETY: valid set; changes only this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &s, std::ptr::null_mut()) };
}

/// Waits for SIGINT or SIGTERM (blocked beforehand with [`block`]); returns its number.
pub fn wait() -> i32 {
    let s = set();
    let mut sig = 0;
    // SAFETY: valid set and out pointer.
    unsafe { libc::sigwait(&s, &mut sig) };
    sig
}

/// Makes `cmd`'s child start with SIGINT and SIGTERM unblocked: a blocked mask
/// survives exec, and `ping` must still stop on Ctrl-C.
pub fn unblock_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (sigemptyset, sigaddset, pthread_sigmask)
    // run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let s = set();
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &s, std::ptr::null_mut());
            Ok(())
        });
    }
}
