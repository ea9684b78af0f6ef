//! Gives memory the allocator keeps back to the system once the program has
//! freed it (issue 13: memory returns to its idle level after an attack).
//! The stack and the services free what a flood made them hold (connections,
//! buffers, TIME-WAIT records), but glibc's malloc returns to the system only
//! the top of each heap: pages freed in the middle stay in the process, so
//! RSS stayed at its peak (2,000 idle connections, then closed: 24 MB of
//! RSS after, 5.4 MB idle; 11 MB with this, the rest being pages that freed
//! memory shares with memory still in use).
//!
//! The `tapstack` binary counts the bytes it holds ([`Counting`], its global
//! allocator: one relaxed atomic add per allocation and free, and the stack
//! allocates nothing per frame in a steady state), and its high point. Once a
//! second a thread of `tapstack up` looks at the count and, when it is more
//! than [`SLACK`] below its high point since the last trim, calls malloc_trim(0), which hands the free
//! pages of every arena back (madvise). A steady load never trims.
//! (glibc's own mallinfo2 counts its main arena only, not the threads'.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread looks.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How far the bytes held must fall below their high point before the free
/// pages are handed back.
pub const SLACK: usize = 1 << 20;

/// Bytes held through [`Counting`] (0 where it is not the global allocator),
/// and the most held since the reclaimer last looked.
static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Bytes the program holds from the allocator now, where [`Counting`] is the
/// global allocator (the `tapstack` binary); `None` elsewhere. `tapstack stats`
/// prints it, so that an attack's aftermath tells memory still held (tables at
/// their peak capacity) from pages the allocator keeps.
pub fn held() -> Option<usize> {
    Some(IN_USE.load(Ordering::Relaxed)).filter(|&n| n > 0)
}

fn grew(by: usize) {
    let now = IN_USE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// The system allocator, counting the bytes held (`#[global_allocator]` of
/// the `tapstack` binary).
pub struct Counting;

// SAFETY: every call is System's; the count has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// The thread; stopped (and joined) when dropped.
pub struct Reclaimer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reclaimer {
    pub fn start() -> Reclaimer {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tapstack-reclaim".into())
            .spawn(move || {
                let mut high = 0;
                while stopped.recv_timeout(INTERVAL) == Err(RecvTimeoutError::Timeout) {
                    let held = IN_USE.load(Ordering::Relaxed);
                    // The high point since the last trim, passing peaks included.
                    high = PEAK.swap(held, Ordering::Relaxed).max(high).max(held);
                    if high - held > SLACK {
                        trim();
                        high = held;
                    }
                }
            })
            .ok();
        Reclaimer { stop: Some(stop), thread }
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

/// Other allocators return memory their own way.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
