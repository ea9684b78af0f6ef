//! Packet captures: [`PcapRecorder`] wraps any device and writes every frame that
//! passes through it to a classic pcap file (readable by Wireshark and tcpdump);
//! [`PcapSource`] reads a pcap or pcapng capture back, for replay.
//!
//! Timestamps: the stack's [`Instant`] is microseconds since an epoch its driver
//! chose, so the recorder is told the wall-clock time of `Instant::ZERO` and
//! stamps each frame with that plus `now`. In virtual-time tests the capture then
//! shows virtual time, which is what one wants when reading it.
//!
//! Frames from an offloading TAP ([`crate::offload`]) are recorded as they
//! crossed it, as Linux's tcpdump shows them: a GSO segment is one record of
//! up to 64 KiB (longer than the MTU, cut at [`SNAPLEN`] if its datagram
//! exceeds 65521 bytes). A checksum the kernel left partial is recorded
//! filled in (tcpdump would show it as incorrect), so the capture holds valid
//! frames; the frame the stack sees is not changed.

use super::Device;
use crate::offload::{Offloads, RxOffload};
use crate::time::Instant;
use pcap_file::pcap::{PcapHeader, PcapReader};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes of each frame kept in the capture; larger frames are cut and marked so.
pub const SNAPLEN: u32 = 65535;

/// A device that records every frame received from and sent to `inner`, in the
/// order they pass, with microsecond timestamps.
///
/// A failure to write the capture (disk full, say) must not take the network down
/// with it: the recorder stops recording, keeps passing frames, and reports the
/// error from [`Device::flush`] (and [`PcapRecorder::recording_error`]).
pub struct PcapRecorder<D, W: Write = BufWriter<File>> {
    inner: D,
    out: W,
    /// Wall-clock time of `Instant::ZERO`, as time since the Unix epoch.
    epoch: Duration,
    frames: u64,
    error: Option<(io::ErrorKind, String)>,
    /// A copy of a frame whose checksum is filled in for the record.
    scratch: Vec<u8>,
}

impl<D: Device> PcapRecorder<D, BufWriter<File>> {
    /// Records into a new file at `path`, taking `Instant::ZERO` to be now: right
    /// for a runtime whose clock starts at zero when it starts.
    pub fn create(inner: D, path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = create_output(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create capture {}: {e}", path.display())))?;
        PcapRecorder::new(inner, BufWriter::new(file), SystemTime::now())
    }
}

/// Creates (or truncates) an output file without following a symbolic link at
/// `path` itself (O_NOFOLLOW: opening one fails with ELOOP). tapstack runs as
/// root, so a capture path that another user could have pointed at
/// `/etc/shadow` must not be written through.
pub fn create_output(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                io::Error::new(e.kind(), "it is a symbolic link, which tapstack does not write through")
            }
            _ => e,
        })
}

impl<D: Device, W: Write> PcapRecorder<D, W> {
    /// Records into `out`, stamping a frame seen at `now` with `epoch + now`. Writes
    /// the pcap file header at once.
    pub fn new(inner: D, mut out: W, epoch: SystemTime) -> io::Result<Self> {
        // pcap-file's PcapWriter owns its writer and in 2.0.0 gives no access to it,
        // so it could not be flushed; we use pcap-file for the file header and
        // write the fixed 16-byte record headers ourselves (see `record`).
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        header.write_to(&mut out).map_err(into_io)?;
        let epoch = epoch.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Ok(PcapRecorder { inner, out, epoch, frames: 0, error: None, scratch: Vec::new() })
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Frames recorded so far.
    pub fn frames_recorded(&self) -> u64 {
        self.frames
    }

    /// Why recording stopped, if it did.
    pub fn recording_error(&self) -> Option<String> {
        self.error.as_ref().map(|(_, msg)| msg.clone())
    }

    /// Flushes and returns the device and the writer.
    pub fn into_parts(mut self) -> (D, W) {
        let _ = self.out.flush();
        (self.inner, self.out)
    }

    /// Appends one record: the classic pcap record header (seconds, microseconds,
    /// captured length, original length, in the file's native byte order) and the
    /// frame.
    fn record(&mut self, now: Instant, frame: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let ts = self.epoch.saturating_add(Duration::from_micros(now.as_micros()));
        // Classic pcap stores seconds in 32 bits; saturate rather than wrap (in 2106).
        let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_ne_bytes());
        header[4..8].copy_from_slice(&ts.subsec_micros().to_ne_bytes());
        header[8..12].copy_from_slice(&incl_len.to_ne_bytes());
        header[12..16].copy_from_slice(&orig_len.to_ne_bytes());
        let result = self.out.write_all(&header).and_then(|()| self.out.write_all(&frame[..incl_len as usize]));
        match result {
            Ok(()) => self.frames += 1,
            Err(e) => {
                self.error = Some((e.kind(), format!("pcap recording stopped after {} frames: {e}", self.frames)))
            }
        }
    }
}

impl<D: Device, W: Write> Device for PcapRecorder<D, W> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let got = self.inner.recv(now, buf)?;
        if let Some(n) = got {
            self.record(now, &buf[..n]);
        }
        Ok(got)
    }

    /// Records the frame, then sends it: the capture shows what the stack handed
    /// to the device, even if the device then dropped it.
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.record(now, frame);
        self.inner.send(now, frame)
    }

    /// Records the frame as it crossed the device, a checksum the link left
    /// partial filled in (see the module's documentation).
    fn recv_offloaded(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        let got = self.inner.recv_offloaded(now, buf)?;
        if let Some((n, rx)) = got {
            let mut scratch = std::mem::take(&mut self.scratch);
            match rx.csum_trusted && with_transport_checksum(&buf[..n], &mut scratch) {
                true => self.record(now, &scratch),
                false => self.record(now, &buf[..n]),
            }
            self.scratch = scratch;
        }
        Ok(got)
    }

    fn offloads(&self) -> Offloads {
        self.inner.offloads()
    }

    fn readable_fd(&self) -> Option<RawFd> {
        self.inner.readable_fd()
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some((e.kind(), format!("pcap recording stopped after {} frames: {e}", self.frames)));
            }
        }
        match &self.error {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }
}

fn into_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// Frames read back from a capture: a classic pcap (micro- or nanosecond, either
/// byte order) or a pcapng, told apart by their magic number.
///
/// Only Ethernet captures can be replayed into the stack. A classic pcap of
/// another link type is refused when opened; in a pcapng, where every interface
/// has its own link type, a frame from a non-Ethernet interface (and a frame the
/// capture cut short) is returned as an error that is not fatal: call
/// [`PcapSource::next_frame`] again to skip it. A malformed file is fatal: after
/// that error every call returns `Ok(None)`.
pub struct PcapSource<R: Read> {
    format: Format<io::Chain<io::Cursor<[u8; 4]>, R>>,
    /// The current frame, kept here so that each call does not allocate.
    frame: Vec<u8>,
    /// Frames returned or skipped so far, to say which one an error is about.
    index: u64,
    /// Timestamp of the previous frame, for pcapng Simple Packet Blocks (which have none).
    last_ts: Duration,
    done: bool,
}

enum Format<R: Read> {
    Pcap(PcapReader<R>),
    PcapNg(PcapNgReader<R>),
}

impl PcapSource<BufReader<File>> {
    /// Opens the capture at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let context = |e: io::Error| io::Error::new(e.kind(), format!("capture {}: {e}", path.display()));
        let file = File::open(path).map_err(context)?;
        PcapSource::new(BufReader::new(file)).map_err(context)
    }
}

impl<R: Read> PcapSource<R> {
    /// Reads the file header from `reader` and prepares to read frames.
    pub fn new(mut reader: R) -> io::Result<Self> {
        let mut magic = [0u8; 4];
        reader.read_exact(&mut magic).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(io::ErrorKind::InvalidData, "too short to be a pcap or pcapng capture")
            }
            _ => e,
        })?;
        // Put the magic back in front so the pcap-file readers see the whole file.
        let whole = io::Cursor::new(magic).chain(reader);
        let format = match u32::from_be_bytes(magic) {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => {
                let r = PcapReader::new(whole).map_err(into_io)?;
                let link = r.header().datalink;
                if link != DataLink::ETHERNET {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("capture has link type {link:?}; only Ethernet captures can be replayed"),
                    ));
                }
                Format::Pcap(r)
            }
            0x0A0D_0D0A => Format::PcapNg(PcapNgReader::new(whole).map_err(into_io)?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a pcap or pcapng capture (magic number {other:#010x})"),
                ))
            }
        };
        Ok(PcapSource { format, frame: Vec::new(), index: 0, last_ts: Duration::ZERO, done: false })
    }

    /// The program that wrote the capture, as a pcapng section header names it
    /// (`shb_userappl`); `None` for a classic pcap or a section that does not say.
    pub fn application(&self) -> Option<&str> {
        use pcap_file::pcapng::blocks::section_header::SectionHeaderOption;
        let Format::PcapNg(r) = &self.format else { return None };
        r.section().options.iter().find_map(|o| match o {
            SectionHeaderOption::UserApplication(a) => Some(a.as_ref()),
            _ => None,
        })
    }

    /// The next frame and its timestamp (time since the Unix epoch), or `Ok(None)`
    /// at the end of the capture.
    pub fn next_frame(&mut self) -> io::Result<Option<(Duration, &[u8])>> {
        if self.done {
            return Ok(None);
        }
        let result = match &mut self.format {
            Format::Pcap(r) => next_pcap(r, &mut self.frame),
            Format::PcapNg(r) => next_pcapng(r, &mut self.frame, self.last_ts),
        };
        match result {
            Next::Frame(ts) => {
                self.index += 1;
                self.last_ts = ts;
                Ok(Some((ts, &self.frame)))
            }
            Next::End => {
                self.done = true;
                Ok(None)
            }
            Next::Skip(why) => {
                self.index += 1;
                Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame {}: {why}", self.index)))
            }
            Next::Fatal(e) => {
                // The readers do not advance past a block they cannot parse, so
                // trying again would return the same error for ever.
                self.done = true;
                let e = into_io(e);
                Err(io::Error::new(e.kind(), format!("after frame {}: {e}", self.index)))
            }
        }
    }
}

enum Next {
    Frame(Duration),
    End,
    /// This frame cannot be replayed, but the next one may be.
    Skip(String),
    Fatal(PcapError),
}

fn next_pcap<R: Read>(r: &mut PcapReader<R>, frame: &mut Vec<u8>) -> Next {
    let resolution = r.header().ts_resolution;
    // The raw record, because pcap-file 2.0.0's checked packet rejects any frame
    // whose original length exceeds the snaplen, i.e. every truncated frame.
    let raw = match r.next_raw_packet() {
        None => return Next::End,
        Some(Err(e)) => return Next::Fatal(e),
        Some(Ok(raw)) => raw,
    };
    let nanos = match resolution {
        TsResolution::MicroSecond => u64::from(raw.ts_frac) * 1000,
        TsResolution::NanoSecond => u64::from(raw.ts_frac),
    };
    if nanos >= 1_000_000_000 {
        return Next::Skip(format!("bad timestamp fraction {}", raw.ts_frac));
    }
    if raw.incl_len < raw.orig_len {
        return Next::Skip(format!("cut short by the capture ({} of {} bytes)", raw.incl_len, raw.orig_len));
    }
    frame.clear();
    frame.extend_from_slice(&raw.data);
    Next::Frame(Duration::new(u64::from(raw.ts_sec), nanos as u32))
}

fn next_pcapng<R: Read>(r: &mut PcapNgReader<R>, frame: &mut Vec<u8>, last_ts: Duration) -> Next {
    loop {
        // Copy out what we need, so the block's borrow of the reader ends before
        // we look up its interface.
        let (interface, raw_ts, orig_len) = match r.next_block() {
            None => return Next::End,
            Some(Err(e)) => return Next::Fatal(e),
            Some(Ok(Block::EnhancedPacket(p))) => {
                frame.clear();
                frame.extend_from_slice(&p.data);
                // pcap-file 2.0.0 ignores if_tsresol and stores the raw 64-bit
                // count as nanoseconds; as_nanos gives that raw count back.
                (p.interface_id, Some(p.timestamp.as_nanos() as u64), p.original_len)
            }
            Some(Ok(Block::Packet(p))) => {
                frame.clear();
                frame.extend_from_slice(&p.data);
                (u32::from(p.interface_id), Some(p.timestamp), p.original_len)
            }
            Some(Ok(Block::SimplePacket(p))) => {
                frame.clear();
                frame.extend_from_slice(&p.data);
                (0, None, p.original_len)
            }
            Some(Ok(_)) => continue,
        };
        let Some(idb) = r.interfaces().get(interface as usize) else {
            return Next::Skip(format!("refers to interface {interface}, which the capture does not describe"));
        };
        if idb.linktype != DataLink::ETHERNET {
            return Next::Skip(format!(
                "captured on interface {interface} of link type {:?}; only Ethernet frames can be replayed",
                idb.linktype
            ));
        }
        if (frame.len() as u64) < u64::from(orig_len) {
            return Next::Skip(format!("cut short by the capture ({} of {} bytes)", frame.len(), orig_len));
        }
        let Some(raw_ts) = raw_ts else { return Next::Frame(last_ts) };
        let mut resolution = 6; // the pcapng default: microseconds
        let mut offset_secs = 0;
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfTsResol(v) => resolution = *v,
                InterfaceDescriptionOption::IfTsOffset(s) => offset_secs = *s,
                _ => {}
            }
        }
        return Next::Frame(pcapng_time(raw_ts, resolution).saturating_add(Duration::from_secs(offset_secs)));
    }
}

/// Converts a pcapng timestamp, counted in units of `if_tsresol`, to a Duration:
/// the high bit clear means units of 10^-v seconds, set means 2^-v seconds.
fn pcapng_time(raw: u64, tsresol: u8) -> Duration {
    let exp = u32::from(tsresol & 0x7f);
    let raw = u128::from(raw);
    let nanos: u128 = if tsresol & 0x80 == 0 {
        match exp {
            0..=9 => raw * 10u128.pow(9 - exp),
            // 10^exp for exp up to 38 fits u128; beyond that every count is zero time.
            10..=38 => raw / 10u128.pow(exp - 9),
            _ => 0,
        }
    } else {
        // exp <= 127: (raw * 10^9) < 2^94, so the shift is exact.
        (raw * 1_000_000_000) >> exp
    };
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// Copies an Ethernet/IPv4 frame carrying a whole TCP or UDP datagram into
/// `out` with its transport checksum computed (RFC 9293 section 3.1, RFC 768).
/// Returns false, leaving `out` as it was, for any other frame.
fn with_transport_checksum(frame: &[u8], out: &mut Vec<u8>) -> bool {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] || frame[ETH] >> 4 != 4 {
        return false;
    }
    let ihl = (frame[ETH] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]]) as usize;
    let fragment = u16::from_be_bytes([frame[ETH + 6], frame[ETH + 7]]) & 0x3fff != 0;
    let at = match frame[ETH + 9] {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    if fragment || ihl < 20 || total < ihl + at + 2 || ETH + total > frame.len() {
        return false;
    }
    let ip = &frame[ETH..ETH + total];
    let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    out.clear();
    out.extend_from_slice(frame);
    let l4 = &mut out[ETH + ihl..ETH + total];
    l4[at..at + 2].copy_from_slice(&[0, 0]);
    let mut sum = crate::checksum::transport(src, dst, etherparse::IpNumber(ip[9]), &[l4]);
    if sum == 0 && ip[9] == 17 {
        // RFC 768: a computed zero is sent as all ones.
        sum = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::wire::Wire;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::PcapNgWriter;
    use std::borrow::Cow;

    /// A base wall-clock time with a sub-second part, to catch unit mistakes.
    fn epoch() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000)
    }

    fn frame(i: u8, len: usize) -> Vec<u8> {
        (0..len).map(|j| i.wrapping_add(j as u8)).collect()
    }

    #[test]
    fn pcap_recorder_writes_frames_and_timestamps_in_order() {
        let (a, mut b) = Wire::pair();
        let mut rec = PcapRecorder::new(a, Vec::new(), epoch()).unwrap();
        let mut buf = [0u8; 1518];

        rec.send(Instant::from_micros(1), &frame(1, 60)).unwrap();
        b.send(Instant::ZERO, &frame(2, 1514)).unwrap();
        assert_eq!(rec.recv(Instant::from_micros(2_000_123), &mut buf).unwrap(), Some(1514));
        assert_eq!(rec.recv(Instant::from_micros(2_000_124), &mut buf).unwrap(), None);
        rec.send(Instant::from_secs(3_600), &frame(3, 42)).unwrap();
        rec.flush().unwrap();
        assert_eq!(rec.frames_recorded(), 3);
        // The sent frames went on to the inner device.
        assert_eq!(b.recv(Instant::ZERO, &mut buf).unwrap(), Some(60));

        let (_, bytes) = rec.into_parts();
        let mut reader = PcapReader::new(&bytes[..]).unwrap();
        let header = reader.header();
        assert_eq!(header.datalink, DataLink::ETHERNET);
        assert_eq!(header.snaplen, 65535);
        assert_eq!(header.ts_resolution, TsResolution::MicroSecond);
        let base = Duration::new(1_700_000_000, 250_000_000);
        let expect = [
            (base + Duration::from_micros(1), frame(1, 60)),
            (base + Duration::from_micros(2_000_123), frame(2, 1514)),
            (base + Duration::from_secs(3_600), frame(3, 42)),
        ];
        for (ts, data) in expect {
            let p = reader.next_packet().unwrap().unwrap();
            assert_eq!(p.timestamp, ts);
            assert_eq!(p.orig_len as usize, data.len());
            assert_eq!(&p.data[..], &data[..]);
        }
        assert!(reader.next_packet().is_none());
    }

    /// A writer that takes `room` bytes, then fails.
    struct FailingWriter {
        room: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pcap_recorder_keeps_passing_frames_when_recording_fails() {
        let (a, mut b) = Wire::pair();
        // The file header and one record fit, then the disk is full halfway through a record.
        let mut rec = PcapRecorder::new(a, FailingWriter { room: 24 + (16 + 60) + 30 }, epoch()).unwrap();
        for i in 0..3 {
            rec.send(Instant::ZERO, &frame(i, 60)).unwrap();
        }
        let mut buf = [0u8; 100];
        for _ in 0..3 {
            assert_eq!(b.recv(Instant::ZERO, &mut buf).unwrap(), Some(60));
        }
        assert_eq!(rec.frames_recorded(), 1);
        let err = rec.flush().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(err.to_string().contains("pcap recording stopped after 1 frames"), "{err}");
        assert!(rec.recording_error().is_some());
    }

    #[test]
    fn pcap_source_reads_classic_pcap() {
        let (a, _b) = Wire::pair();
        let mut rec = PcapRecorder::new(a, Vec::new(), epoch()).unwrap();
        rec.send(Instant::from_micros(10), &frame(7, 60)).unwrap();
        rec.send(Instant::from_micros(999_999), &frame(8, 1514)).unwrap();
        let (_, bytes) = rec.into_parts();

        let mut src = PcapSource::new(&bytes[..]).unwrap();
        let base = Duration::new(1_700_000_000, 250_000_000);
        let (ts, data) = src.next_frame().unwrap().unwrap();
        assert_eq!((ts, data), (base + Duration::from_micros(10), &frame(7, 60)[..]));
        let (ts, data) = src.next_frame().unwrap().unwrap();
        assert_eq!((ts, data), (base + Duration::from_micros(999_999), &frame(8, 1514)[..]));
        assert!(src.next_frame().unwrap().is_none());
        assert!(src.next_frame().unwrap().is_none());
    }

    /// Writes a pcapng with one Ethernet interface whose timestamps are in units of
    /// 10^-`tsresol` s, and one non-Ethernet interface.
    fn pcapng(tsresol: u8, packets: &[(u32, u64, Vec<u8>)]) -> Vec<u8> {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let mut eth = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
        eth.options.push(InterfaceDescriptionOption::IfTsResol(tsresol));
        w.write_pcapng_block(eth).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 65535)).unwrap();
        for (interface_id, raw_ts, data) in packets {
            let block = EnhancedPacketBlock {
                interface_id: *interface_id,
                // pcap-file writes as_nanos() as the raw count, whatever if_tsresol says.
                timestamp: Duration::from_nanos(*raw_ts),
                original_len: data.len() as u32,
                data: Cow::Borrowed(data),
                options: vec![],
            };
            w.write_pcapng_block(block).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn pcap_source_reads_pcapng_with_its_timestamp_resolution() {
        let base = Duration::new(1_700_000_000, 250_000_000);
        for tsresol in [6u8, 9] {
            let unit = if tsresol == 6 { 1_000 } else { 1 };
            let raw = |d: Duration| (d.as_nanos() / unit) as u64;
            let t1 = base + Duration::from_micros(5);
            let t2 = base + Duration::from_secs(2);
            let bytes = pcapng(
                tsresol,
                &[(0, raw(t1), frame(1, 60)), (1, raw(t1), vec![0x45; 20]), (0, raw(t2), frame(2, 1514))],
            );

            let mut src = PcapSource::new(&bytes[..]).unwrap();
            assert_eq!(src.next_frame().unwrap().unwrap(), (t1, &frame(1, 60)[..]));
            // The frame from the raw-IP interface is refused, but not fatally.
            let err = src.next_frame().unwrap_err();
            assert!(err.to_string().contains("only Ethernet frames can be replayed"), "{err}");
            assert_eq!(src.next_frame().unwrap().unwrap(), (t2, &frame(2, 1514)[..]));
            assert!(src.next_frame().unwrap().is_none());
        }
    }

    #[test]
    fn pcap_source_rejects_other_files_and_link_types() {
        let err = PcapSource::new(&b"hello world"[..]).err().unwrap();
        assert!(err.to_string().contains("not a pcap or pcapng capture"), "{err}");
        let err = PcapSource::new(&b"ab"[..]).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut raw_ip = Vec::new();
        PcapHeader { datalink: DataLink::RAW, ..PcapHeader::default() }.write_to(&mut raw_ip).unwrap();
        let err = PcapSource::new(&raw_ip[..]).err().unwrap();
        assert!(err.to_string().contains("only Ethernet captures"), "{err}");
    }

    #[test]
    fn pcap_source_stops_at_a_malformed_record() {
        let (a, _b) = Wire::pair();
        let mut rec = PcapRecorder::new(a, Vec::new(), epoch()).unwrap();
        rec.send(Instant::ZERO, &frame(1, 60)).unwrap();
        rec.send(Instant::ZERO, &frame(2, 60)).unwrap();
        let (_, mut bytes) = rec.into_parts();
        bytes.truncate(bytes.len() - 10);
        let mut src = PcapSource::new(&bytes[..]).unwrap();
        assert!(src.next_frame().unwrap().is_some());
        assert!(src.next_frame().is_err());
        assert!(src.next_frame().unwrap().is_none());
    }

    #[test]
    fn pcapng_time_handles_decimal_and_binary_resolutions() {
        assert_eq!(pcapng_time(1_500_000, 6), Duration::from_millis(1500));
        assert_eq!(pcapng_time(1_500_000_000, 9), Duration::from_millis(1500));
        assert_eq!(pcapng_time(15, 1), Duration::from_millis(1500));
        assert_eq!(pcapng_time(3 << 29, 0x80 | 30), Duration::from_millis(1500));
        assert_eq!(pcapng_time(u64::MAX, 0x7f), Duration::ZERO);
        assert_eq!(pcapng_time(u64::MAX, 0xff), Duration::ZERO);
        assert_eq!(pcapng_time(u64::MAX, 0), Duration::from_secs(u64::MAX));
    }

    #[test]
    fn a_partial_checksum_is_recorded_filled_in() {
        let (src, dst) = (std::net::Ipv4Addr::new(10, 0, 0, 1), std::net::Ipv4Addr::new(10, 0, 0, 2));
        // A TCP/IPv4 frame whose checksum field holds the kernel's partial sum (anything, here).
        let mut frame = vec![0u8; 14 + 20 + 20];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[14 + 9] = 6;
        frame[14 + 12..14 + 16].copy_from_slice(&src.octets());
        frame[14 + 16..14 + 20].copy_from_slice(&dst.octets());
        frame[14 + 20 + 12] = 0x50;
        frame[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&[0x12, 0x34]);
        frame.extend_from_slice(b"hello");
        let total = (frame.len() - 14) as u16;
        frame[14 + 2..14 + 4].copy_from_slice(&total.to_be_bytes());
        let mut out = Vec::new();
        assert!(with_transport_checksum(&frame, &mut out));
        assert_eq!(crate::checksum::transport(src, dst, etherparse::IpNumber::TCP, &[&out[34..]]), 0);
        assert_eq!(out[..50], frame[..50], "only the checksum changes");
        assert_eq!(out[54..], frame[54..]);
        // Another protocol (ICMP), or an ARP frame: not touched.
        frame[14 + 9] = 1;
        assert!(!with_transport_checksum(&frame, &mut out));
        frame[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!with_transport_checksum(&frame, &mut out));
    }

    #[test]
    fn an_output_file_is_not_written_through_a_symbolic_link() {
        let dir = std::env::temp_dir().join(format!("tapstack-pcap-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let (victim, link) = (dir.join("victim"), dir.join("out.pcap"));
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = create_output(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A plain path is created, and truncated when it exists.
        let plain = dir.join("plain.pcap");
        std::fs::write(&plain, b"old").unwrap();
        drop(create_output(&plain).unwrap());
        assert_eq!(std::fs::metadata(&plain).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
