//! Subscribers to TCP state transitions: after every round, and after every
//! call, the runtime drains the TCP core's transitions and hands them to the
//! subscribers of [`crate::Net::trace_transitions`] (bounded channels; a full
//! channel drops and counts). Without subscribers they are discarded.

use stack::tcp::Transition;
use stack::Stack;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

/// One subscriber to TCP state transitions: its channel and its count of drops.
#[derive(Debug)]
struct Tracer {
    tx: SyncSender<Transition>,
    lost: Arc<AtomicU64>,
}

/// TCP state transitions as they happen, for a program to print or check (what
/// `tapstack up --trace` shows): from [`crate::Net::trace_transitions`]. Each is
/// a [`Transition`] (connection, addresses, the two states, and the cause in RFC
/// 9293's notation); its `Display` is one line. The channel is bounded: when the
/// receiver falls behind, new transitions are dropped and counted ([`TransitionTrace::lost`]).
/// The iterator ends when the runtime stops.
#[derive(Debug)]
pub struct TransitionTrace {
    rx: Receiver<Transition>,
    lost: Arc<AtomicU64>,
}

impl TransitionTrace {
    /// The next transition, waiting up to `timeout`; `None` if none came (or the
    /// runtime has stopped).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<Transition> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next transition if one is waiting.
    pub fn try_recv(&self) -> Option<Transition> {
        self.rx.try_recv().ok()
    }

    /// Every transition, waiting for each; ends when the runtime stops.
    pub fn iter(&self) -> impl Iterator<Item = Transition> + '_ {
        self.rx.iter()
    }

    /// Transitions dropped because this receiver's channel was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// The subscribers, behind a lock of their own (taken with the core locked).
#[derive(Debug, Default)]
pub(crate) struct Tracers(Mutex<Vec<Tracer>>);

impl Tracers {
    /// A new subscriber with room for `capacity` transitions (at least 1); one
    /// that is not `kept` (the runtime has stopped) sees its iterator end at once.
    pub(crate) fn subscribe(&self, capacity: usize, kept: bool) -> TransitionTrace {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let lost = Arc::new(AtomicU64::new(0));
        if kept {
            self.lock().push(Tracer { tx, lost: lost.clone() });
        }
        TransitionTrace { rx, lost }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Tracer>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every subscriber (their iterators end).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Hands the TCP core's new transitions to the subscribers (or discards them
    /// when there are none). Called with the core locked.
    pub(crate) fn publish(&self, stack: &mut Stack) {
        let mut tracers = self.lock();
        stack.tcp().0.drain_transitions(|t| {
            tracers.retain(|s| match s.tx.try_send(*t) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.lost.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        });
    }
}
