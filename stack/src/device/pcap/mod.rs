//! Packet captures: [`PcapRecorder`] wraps any device and writes every frame that
//! passes through it (and every frame of the stack's loopback, see
//! [`Device::loopback`]) to a classic pcap file (readable by Wireshark and tcpdump);
//! [`PcapSource`] reads a pcap or pcapng capture back, for replay.
//!
//! Timestamps: a recorder writing to a file ([`PcapRecorder::create`]) stamps
//! each frame with the wall-clock time at which it crossed the device, read as
//! it passes, so an echo request and its reply differ by the time the stack took.
//! One given a writer and an epoch ([`PcapRecorder::new`]) stamps a frame seen at
//! `now` with that epoch plus `now`: in virtual-time tests the capture then
//! shows virtual time, which is what one wants when reading it.
//!
//! Size: frames are cut to a snap length, and a file recorder may start a new
//! file once one reaches a size, keeping a bounded number of them as tcpdump's
//! `-C` and `-W` do ([`PcapLimits`]).
//!
//! Frames from an offloading TAP ([`crate::offload`]) are recorded as they
//! crossed it, as Linux's tcpdump shows them: a GSO segment is one record of
//! up to 64 KiB (longer than the MTU, cut at [`SNAPLEN`] if its datagram
//! exceeds 65521 bytes). A checksum the kernel left partial is recorded
//! filled in (tcpdump would show it as incorrect), so the capture holds valid
//! frames; the frame the stack sees is not changed. Outbound the same: a GSO
//! segment the stack writes ([`crate::offload::TxOffload`]) is one record as
//! written, its partial checksum filled in, not the segments the kernel cuts
//! it into (tcpdump on the TAP shows it so too).

use super::Device;
use crate::offload::{Offloads, RxOffload, TxOffload};
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

/// Bytes of each frame kept by default; larger frames are cut and marked so.
pub const SNAPLEN: u32 = 65535;

/// How much a file recorder keeps: tcpdump's `-s`, `-C` and `-W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapLimits {
    /// Bytes of each frame kept (at least 14, the Ethernet header).
    pub snaplen: u32,
    /// A file is at most this many bytes, then the next starts (each a whole capture):
    /// `FILE`, `FILE1`, `FILE2`... as tcpdump names them. `None`: one file, unbounded.
    pub file_size: Option<u64>,
    /// Most files kept: after `FILE{n-1}`, `FILE` is overwritten (tcpdump's `-W`). `None`: all.
    pub files: Option<u32>,
}

impl Default for PcapLimits {
    /// One file, unbounded, frames whole up to [`SNAPLEN`].
    fn default() -> Self {
        PcapLimits { snaplen: SNAPLEN, file_size: None, files: None }
    }
}

/// Where the next file of a rotating recorder comes from, given its number (0 first).
pub type NextOutput<W> = Box<dyn FnMut(u32) -> io::Result<W> + Send>;

/// A device that records every frame received from and sent to `inner`, in the
/// order they pass, with microsecond timestamps.
///
/// A failure to write the capture (disk full, say) must not take the network down
/// with it: the recorder stops recording, keeps passing frames, and reports the
/// error from [`Device::flush`] (and [`PcapRecorder::recording_error`]).
pub struct PcapRecorder<D, W: Write = BufWriter<File>> {
    inner: D,
    out: W,
    /// Wall-clock time of `Instant::ZERO` since the Unix epoch; `None`: read as each frame passes.
    epoch: Option<Duration>,
    frames: u64,
    error: Option<(io::ErrorKind, String)>,
    limits: PcapLimits,
    /// Bytes in the current file, and its number.
    written: u64,
    file: u32,
    next: Option<NextOutput<W>>,
    /// A copy of a frame whose checksum is filled in for the record.
    scratch: Vec<u8>,
}

impl<D: Device> PcapRecorder<D, BufWriter<File>> {
    /// Records into a new file at `path`, each frame stamped with the wall-clock
    /// time it crossed the device, whole up to [`SNAPLEN`], in one file.
    pub fn create(inner: D, path: impl AsRef<Path>) -> io::Result<Self> {
        PcapRecorder::create_limited(inner, path, PcapLimits::default())
    }

    /// As [`PcapRecorder::create`], within `limits`: the later files are
    /// `path` with 1, 2... appended, created as the first is (no symbolic link
    /// followed, see [`create_output`]).
    pub fn create_limited(inner: D, path: impl AsRef<Path>, limits: PcapLimits) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open = move |n: u32| {
            let p = rotated_name(&path, n);
            let file = create_output(&p)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot create capture {}: {e}", p.display())))?;
            Ok(BufWriter::new(file))
        };
        PcapRecorder::with_limits(inner, limits, None, Box::new(open))
    }
}

/// The name of file `n` of a rotating capture at `path`: `path` itself for 0,
/// else `path` with `n` appended (tcpdump's `-C` naming).
pub fn rotated_name(path: &Path, n: u32) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    if n > 0 {
        name.push(n.to_string());
    }
    name.into()
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
    pub fn new(inner: D, out: W, epoch: SystemTime) -> io::Result<Self> {
        let epoch = epoch.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let mut rec = PcapRecorder::bare(inner, out, PcapLimits::default(), Some(epoch));
        rec.write_file_header()?;
        Ok(rec)
    }

    /// Records into the outputs `next` makes (file 0 at once, the next when one
    /// is full), within `limits`; stamped as [`PcapRecorder::new`] does with
    /// `epoch`, or with the wall clock as each frame passes if `None`.
    pub fn with_limits(
        inner: D,
        limits: PcapLimits,
        epoch: Option<SystemTime>,
        mut next: NextOutput<W>,
    ) -> io::Result<Self> {
        let epoch = epoch.map(|e| e.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO));
        let limits = PcapLimits { snaplen: limits.snaplen.max(14), ..limits };
        let mut rec = PcapRecorder::bare(inner, next(0)?, limits, epoch);
        rec.next = Some(next);
        rec.write_file_header()?;
        Ok(rec)
    }

    fn bare(inner: D, out: W, limits: PcapLimits, epoch: Option<Duration>) -> Self {
        PcapRecorder {
            inner,
            out,
            epoch,
            frames: 0,
            error: None,
            limits,
            written: 0,
            file: 0,
            next: None,
            scratch: Vec::new(),
        }
    }

    fn write_file_header(&mut self) -> io::Result<()> {
        // pcap-file's PcapWriter owns its writer and in 2.0.0 gives no access to it,
        // so it could not be flushed; we use pcap-file for the file header and
        // write the fixed 16-byte record headers ourselves (see `record`).
        let header = PcapHeader {
            snaplen: self.limits.snaplen,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        header.write_to(&mut self.out).map_err(into_io)?;
        self.written = 24;
        Ok(())
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

    /// Starts the next file if the current one would grow past the size limit
    /// with `record` more bytes (a file holds at least one record).
    fn rotate_for(&mut self, record: u64) -> io::Result<()> {
        let (Some(size), Some(next)) = (self.limits.file_size, self.next.as_mut()) else { return Ok(()) };
        if self.written <= 24 || self.written + record <= size {
            return Ok(());
        }
        self.out.flush()?;
        let n = match self.limits.files {
            Some(files) if self.file + 1 >= files => 0,
            _ => self.file.saturating_add(1),
        };
        self.out = next(n)?;
        self.file = n;
        self.write_file_header()
    }

    /// Appends one record: the classic pcap record header (seconds, microseconds,
    /// captured length, original length, in the file's native byte order) and the
    /// frame, cut to the snap length.
    fn record(&mut self, now: Instant, frame: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let ts = match self.epoch {
            Some(epoch) => epoch.saturating_add(Duration::from_micros(now.as_micros())),
            None => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO),
        };
        // Classic pcap stores seconds in 32 bits; saturate rather than wrap (in 2106).
        let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(self.limits.snaplen);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_ne_bytes());
        header[4..8].copy_from_slice(&ts.subsec_micros().to_ne_bytes());
        header[8..12].copy_from_slice(&incl_len.to_ne_bytes());
        header[12..16].copy_from_slice(&orig_len.to_ne_bytes());
        let result = self
            .rotate_for(16 + u64::from(incl_len))
            .and_then(|()| self.out.write_all(&header))
            .and_then(|()| self.out.write_all(&frame[..incl_len as usize]));
        match result {
            Ok(()) => {
                self.frames += 1;
                self.written += 16 + u64::from(incl_len);
            }
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

    /// Records a frame of the stack's loopback (it shows as an Ethernet frame
    /// from the stack's MAC to itself), and shows it to the inner device.
    fn loopback(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.record(now, frame);
        self.inner.loopback(now, frame)
    }

    /// Records the frame as it is written, a checksum left partial for the
    /// link filled in (see the module's documentation), then sends it.
    fn send_offloaded(&mut self, now: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        match tx.csum_partial() && with_transport_checksum(frame, &mut scratch) {
            true => self.record(now, &scratch),
            false => self.record(now, frame),
        }
        self.scratch = scratch;
        self.inner.send_offloaded(now, frame, tx)
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
mod tests;
