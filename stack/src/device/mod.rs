//! Devices: where frames come from and go to. These sit around the sans-IO core
//! and are the only part of this crate that does I/O; the core never calls them.
//!
//! The [`Device`] trait is always here: it is only an interface, and drivers are
//! written against it. The implementations below need the `devices` feature (on
//! by default), since they bring in pcap-file and libc, which a user of
//! the bare protocol core does not need:
//!
//! - `tap`: a Linux TAP interface, plain or with the kernel's offloads.
//! - `napi`: the kernel's NAPI for a plain TAP, in a thread of its own.
//! - `vnet`: the virtio-net header an offloading TAP puts before each frame.
//! - `pcap`: a recorder that wraps any device and writes every frame to a pcap file.
//! - `wire`: an in-memory wire connecting two stacks, for tests.
//! - `fault`: a fault injector that wraps any device (drop, duplicate, reorder,
//!   delay, corrupt), seeded so a failing run replays exactly.

#[cfg(feature = "devices")]
pub mod fault;
#[cfg(feature = "devices")]
pub mod napi;
#[cfg(feature = "devices")]
pub mod pcap;
#[cfg(feature = "devices")]
pub mod tap;
#[cfg(feature = "devices")]
pub mod vnet;
#[cfg(feature = "devices")]
pub mod wire;

use crate::offload::{Offloads, RxOffload, TxOffload};
use crate::time::Instant;
use std::io;
use std::os::fd::RawFd;

/// A source and sink of Ethernet frames. All calls are nonblocking.
pub trait Device {
    /// Reads one frame into `buf` if one is ready, returning its length.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Sends one frame.
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()>;

    /// Shows the device a frame the stack delivered to itself round its
    /// loopback (to its own address or 127/8; see `crate::loopback`). It goes
    /// on no link: a device does nothing with it (the default), a recorder
    /// writes it down so that the capture shows the loopback's traffic too.
    fn loopback(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        let _ = (now, frame);
        Ok(())
    }

    /// A file descriptor that becomes readable when [`Device::recv`] may have a
    /// frame, for drivers that sleep in poll(2). `None` for purely in-memory devices.
    fn readable_fd(&self) -> Option<RawFd> {
        None
    }

    /// The earliest instant at which a frame held back inside the device (a delayed
    /// frame in the fault injector, say) becomes available to [`Device::recv`].
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Writes out anything buffered (a pcap file, say).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// What the device offloads ([`crate::offload`]); the stack's
    /// `Config::offload` should say the same. Default: nothing.
    fn offloads(&self) -> Offloads {
        Offloads::default()
    }

    /// Reads one frame with what the link says about it. A device that
    /// offloads must implement this: its frames may be GSO segments longer than
    /// the MTU or carry partial checksums, which only the [`RxOffload`] explains.
    /// Default: [`Device::recv`], a plain frame.
    fn recv_offloaded(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        Ok(self.recv(now, buf)?.map(|n| (n, RxOffload::NONE)))
    }

    /// Sends one frame that asks the link for `tx` (a GSO segment to cut, a
    /// checksum to fill in; the stack asks only with `Config::offload.tso`). A
    /// device that offloads must implement this. Default: a plain frame is
    /// sent with [`Device::send`]; any other is refused (InvalidInput), as the
    /// frame would leave unfinished.
    fn send_offloaded(&mut self, now: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        match tx == TxOffload::NONE {
            true => self.send(now, frame),
            false => Err(io::Error::new(io::ErrorKind::InvalidInput, "the device does not offload")),
        }
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(now, buf)
    }
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        (**self).send(now, frame)
    }
    fn loopback(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        (**self).loopback(now, frame)
    }
    fn readable_fd(&self) -> Option<RawFd> {
        (**self).readable_fd()
    }
    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn offloads(&self) -> Offloads {
        (**self).offloads()
    }
    fn recv_offloaded(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        (**self).recv_offloaded(now, buf)
    }
    fn send_offloaded(&mut self, now: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        (**self).send_offloaded(now, frame, tx)
    }
}
