//! The pcap recorder's and reader's tests.

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

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapstack-pcap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every record of the classic pcap at `path`: (timestamp, captured length, original length, first byte).
fn records(path: &Path) -> Vec<(Duration, usize, u32, u8)> {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = PcapReader::new(&bytes[..]).unwrap();
    let mut out = Vec::new();
    // The raw records: pcap-file's checked ones refuse frames cut by the snap length.
    while let Some(p) = reader.next_raw_packet() {
        let p = p.unwrap();
        let ts = Duration::new(u64::from(p.ts_sec), p.ts_frac * 1000);
        out.push((ts, p.data.len(), p.orig_len, p.data[0]));
    }
    out
}

#[test]
fn a_file_recorder_stamps_each_frame_when_it_crosses_the_device() {
    // Issue 14: an echo request and its reply, handled in one round with one
    // `now`, got the same timestamp; Wireshark showed a round trip of 0.
    let dir = temp("clock");
    let path = dir.join("x.pcap");
    let (a, mut b) = Wire::pair();
    let mut rec = PcapRecorder::create(a, &path).unwrap();
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    b.send(Instant::ZERO, &frame(1, 60)).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(rec.recv(Instant::ZERO, &mut buf).unwrap(), Some(60));
    std::thread::sleep(std::time::Duration::from_millis(3)); // the stack at work
    rec.send(Instant::ZERO, &frame(2, 60)).unwrap();
    rec.flush().unwrap();
    let r = records(&path);
    assert_eq!(r.len(), 2);
    assert!(r[0].0 >= before - Duration::from_micros(1), "wall-clock time, not the driver's epoch");
    assert!(r[1].0 >= r[0].0 + Duration::from_millis(3), "{:?} then {:?}", r[0].0, r[1].0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_recorder_cuts_frames_to_the_snap_length_and_rotates_through_a_bounded_set_of_files() {
    let dir = temp("rotate");
    let path = dir.join("x.pcap");
    // Three records of 16 + 100 bytes fill a file; three files at most.
    let limits = PcapLimits { snaplen: 100, file_size: Some(24 + 3 * 116), files: Some(3) };
    let (a, _b) = Wire::pair();
    let mut rec = PcapRecorder::create_limited(a, &path, limits).unwrap();
    for i in 1..=10 {
        rec.send(Instant::ZERO, &frame(i, 200)).unwrap();
    }
    rec.flush().unwrap();
    assert_eq!(rec.frames_recorded(), 10);
    let first = |p: &Path| records(p).iter().map(|r| r.3).collect::<Vec<u8>>();
    // x.pcap, x.pcap1, x.pcap2, then x.pcap again (overwritten): frame 10 alone.
    assert_eq!(first(&path), [10]);
    assert_eq!(first(&rotated_name(&path, 1)), [4, 5, 6]);
    assert_eq!(first(&dir.join("x.pcap2")), [7, 8, 9]);
    assert!(!dir.join("x.pcap3").exists());
    for (_, incl, orig, _) in records(&rotated_name(&path, 2)) {
        assert_eq!((incl, orig), (100, 200));
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(PcapReader::new(&bytes[..]).unwrap().header().snaplen, 100);
    assert!(std::fs::metadata(rotated_name(&path, 1)).unwrap().len() <= 24 + 3 * 116);
    let _ = std::fs::remove_dir_all(&dir);
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
        let bytes =
            pcapng(tsresol, &[(0, raw(t1), frame(1, 60)), (1, raw(t1), vec![0x45; 20]), (0, raw(t2), frame(2, 1514))]);

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
