//! Captures of a scenario: a device wrapper that keeps every frame passing
//! between the stack's side and the wire, written at the end as pcapng; and the
//! reader that splits any capture (ours, tcpdump's, Wireshark's, pcap or
//! pcapng) into the frames tapstack sent and the frames its peer sent.
//!
//! Our recordings name their writer in the pcapng section header
//! ([`RECORDER`]): their timestamps are the stack's own clock (see
//! `driver.rs`), so a replay can match them exactly. Another program's
//! timestamps are its own reading of the wire, a little off the stack's.

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};
use stack::device::pcap::{PcapSource, SNAPLEN};
use stack::device::Device;
use stack::time::Instant;
use stack::MacAddr;
use std::borrow::Cow;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::time::Duration;

/// The pcapng `shb_userappl` of `tapstack record`'s captures.
pub const RECORDER: &str = "tapstack record";

/// One frame of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The stack's clock: microseconds since the Unix epoch.
    pub at: Instant,
    /// Sent by tapstack (its MAC is the source), else by the peer.
    pub from_stack: bool,
    pub data: Vec<u8>,
}

/// A device that keeps every frame passing through it, in order.
pub struct Recorder<D> {
    inner: D,
    stack_mac: MacAddr,
    pub frames: Vec<Frame>,
}

impl<D: Device> Recorder<D> {
    pub fn new(inner: D, stack_mac: MacAddr) -> Recorder<D> {
        Recorder { inner, stack_mac, frames: Vec::new() }
    }

    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
}

impl<D: Device> Device for Recorder<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let n = self.inner.recv(now, buf)?;
        if let Some(n) = n {
            self.frames.push(Frame { at: now, from_stack: false, data: buf[..n].to_vec() });
        }
        Ok(n)
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        let from_stack = frame.get(6..12) == Some(&self.stack_mac.0[..]);
        self.frames.push(Frame { at: now, from_stack, data: frame.to_vec() });
        self.inner.send(now, frame)
    }

    fn readable_fd(&self) -> Option<RawFd> {
        self.inner.readable_fd()
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `frames` as a pcapng file naming [`RECORDER`] as its writer and
/// `comment` (the scenario) in its section header. Each packet's flags say its
/// direction as seen from tapstack (pcapng `epb_flags`: 2 outbound, 1 inbound).
pub fn write_pcapng(path: &Path, frames: &[Frame], comment: &str) -> io::Result<()> {
    let file = stack::device::pcap::create_output(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
    let section = SectionHeaderBlock {
        endianness: Endianness::native(),
        major_version: 1,
        minor_version: 0,
        section_length: -1,
        options: vec![
            SectionHeaderOption::UserApplication(Cow::Borrowed(RECORDER)),
            SectionHeaderOption::Comment(Cow::Owned(comment.to_string())),
        ],
    };
    let mut w = PcapNgWriter::with_section_header(BufWriter::new(file), section).map_err(into_io)?;
    // pcap-file 2.0.0 writes every timestamp as a count of nanoseconds whatever
    // the interface says, so the interface must say nanoseconds (if_tsresol 9).
    let interface = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: SNAPLEN,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    };
    w.write_pcapng_block(interface).map_err(into_io)?;
    for f in frames {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_micros(f.at.as_micros()),
            original_len: f.data.len() as u32,
            data: Cow::Borrowed(&f.data),
            options: vec![EnhancedPacketOption::Flags(if f.from_stack { 2 } else { 1 })],
        };
        w.write_pcapng_block(block).map_err(into_io)?;
    }
    w.get_mut().flush()
}

fn into_io(e: pcap_file::PcapError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A capture read back.
#[derive(Clone, Debug)]
pub struct Capture {
    pub frames: Vec<Frame>,
    /// Written by `tapstack record`: the timestamps are the stack's clock.
    pub own_clock: bool,
    /// Frames that could not be used (another link type, cut short).
    pub skipped: Vec<String>,
}

impl Capture {
    /// Reads a pcap or pcapng capture, telling the stack's frames by their
    /// source MAC.
    pub fn read(path: &Path, stack_mac: MacAddr) -> Result<Capture, String> {
        let src = PcapSource::open(path).map_err(|e| e.to_string())?;
        Capture::from_source(src, stack_mac).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a capture from bytes or any reader (as [`Capture::read`]; the fuzzer uses it).
    pub fn from_reader(reader: impl Read, stack_mac: MacAddr) -> Result<Capture, String> {
        Capture::from_source(PcapSource::new(reader).map_err(|e| e.to_string())?, stack_mac)
    }

    fn from_source<R: Read>(mut src: PcapSource<R>, stack_mac: MacAddr) -> Result<Capture, String> {
        let own_clock = src.application() == Some(RECORDER);
        let mut frames = Vec::new();
        let mut skipped = Vec::new();
        loop {
            match src.next_frame() {
                Ok(Some((ts, data))) => {
                    let from_stack = data.get(6..12) == Some(&stack_mac.0[..]);
                    let at = Instant::from_micros(ts.as_micros() as u64);
                    frames.push(Frame { at, from_stack, data: data.to_vec() });
                }
                Ok(None) => break,
                // A frame that cannot be replayed (another link type, cut short):
                // skipped, and said.
                Err(e) if e.kind() == io::ErrorKind::InvalidData && !e.to_string().starts_with("after") => {
                    skipped.push(e.to_string())
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(Capture { frames, own_clock, skipped })
    }
}
