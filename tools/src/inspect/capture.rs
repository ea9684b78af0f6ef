//! Frames out of a pcap or pcapng file, of any link type, cut short or not: the
//! inspector's own reader. The core's `PcapSource` is a replay device and takes
//! whole Ethernet frames only; a passive observer must read what tcpdump and
//! Wireshark write (Linux cooked captures from `-i any`, loopback, raw IP,
//! pcapngs mixing interfaces, frames cut by a snap length) and say what it could
//! not read, frame by frame.

use crate::link;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::TsResolution;
use std::io::{self, Read};
use std::time::Duration;

/// One captured frame.
#[derive(Debug)]
pub struct Frame<'a> {
    /// 1-based, counting every packet record as Wireshark numbers them.
    pub number: u64,
    /// Time since the Unix epoch.
    pub ts: Duration,
    /// LINKTYPE_ number of the interface it was captured on.
    pub link: u32,
    pub data: &'a [u8],
    /// Length on the wire (more than `data.len()` when the capture cut it short).
    pub orig_len: u32,
}

/// What the next record held.
pub enum Next<'a> {
    Frame(Frame<'a>),
    /// A packet record that cannot be read as a frame: its number and why.
    Skip(u64, String),
    End,
}

enum Format<R: Read> {
    Pcap(PcapReader<R>),
    PcapNg(PcapNgReader<R>),
}

/// A capture being read.
pub struct Capture<R: Read> {
    format: Format<io::Chain<io::Cursor<[u8; 4]>, R>>,
    frame: Vec<u8>,
    number: u64,
    last_ts: Duration,
    done: bool,
}

impl<R: Read> Capture<R> {
    /// Reads the file header. A classic pcap of a link type the inspector cannot
    /// read is refused here, naming the type.
    pub fn new(mut reader: R) -> Result<Self, String> {
        let mut magic = [0u8; 4];
        reader.read_exact(&mut magic).map_err(|_| "too short to be a pcap or pcapng capture".to_string())?;
        let whole = io::Cursor::new(magic).chain(reader);
        let format = match u32::from_be_bytes(magic) {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => {
                let r = PcapReader::new(whole).map_err(|e| e.to_string())?;
                let link = u32::from(r.header().datalink);
                if !link::is_supported(link) {
                    return Err(format!(
                        "the capture's {} is not a link type the inspector reads",
                        link::describe(link)
                    ));
                }
                Format::Pcap(r)
            }
            0x0A0D_0D0A => Format::PcapNg(PcapNgReader::new(whole).map_err(|e| e.to_string())?),
            other => return Err(format!("not a pcap or pcapng capture (magic number {other:#010x})")),
        };
        Ok(Capture { format, frame: Vec::new(), number: 0, last_ts: Duration::ZERO, done: false })
    }

    /// The next record. After a fatal error in the file it reports the error as
    /// a skip once, then the end.
    pub fn next_record(&mut self) -> Next<'_> {
        if self.done {
            return Next::End;
        }
        let got = match &mut self.format {
            Format::Pcap(r) => next_pcap(r, &mut self.frame),
            Format::PcapNg(r) => next_pcapng(r, &mut self.frame, self.last_ts),
        };
        match got {
            Read1::Frame { ts, link, orig_len } => {
                self.number += 1;
                self.last_ts = ts;
                Next::Frame(Frame { number: self.number, ts, link, data: &self.frame, orig_len })
            }
            Read1::Skip(why) => {
                self.number += 1;
                Next::Skip(self.number, why)
            }
            Read1::Fatal(why) => {
                self.done = true;
                Next::Skip(self.number + 1, format!("the file is unreadable from here on: {why}"))
            }
            Read1::End => {
                self.done = true;
                Next::End
            }
        }
    }
}

enum Read1 {
    Frame { ts: Duration, link: u32, orig_len: u32 },
    Skip(String),
    Fatal(String),
    End,
}

fn next_pcap<R: Read>(r: &mut PcapReader<R>, frame: &mut Vec<u8>) -> Read1 {
    let resolution = r.header().ts_resolution;
    let link = u32::from(r.header().datalink);
    // The raw record: pcap-file's checked one refuses frames cut by the snap length.
    let raw = match r.next_raw_packet() {
        None => return Read1::End,
        Some(Err(e)) => return Read1::Fatal(e.to_string()),
        Some(Ok(raw)) => raw,
    };
    let nanos = match resolution {
        TsResolution::MicroSecond => u64::from(raw.ts_frac) * 1000,
        TsResolution::NanoSecond => u64::from(raw.ts_frac),
    };
    frame.clear();
    frame.extend_from_slice(&raw.data);
    let ts = Duration::from_secs(u64::from(raw.ts_sec)) + Duration::from_nanos(nanos);
    Read1::Frame { ts, link, orig_len: raw.orig_len.max(raw.incl_len) }
}

fn next_pcapng<R: Read>(r: &mut PcapNgReader<R>, frame: &mut Vec<u8>, last_ts: Duration) -> Read1 {
    loop {
        let (interface, raw_ts, orig_len) = match r.next_block() {
            None => return Read1::End,
            Some(Err(e)) => return Read1::Fatal(e.to_string()),
            Some(Ok(Block::EnhancedPacket(p))) => {
                frame.clear();
                frame.extend_from_slice(&p.data);
                // pcap-file 2.0.0 stores the raw 64-bit count as nanoseconds.
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
            return Read1::Skip(format!("refers to interface {interface}, which the capture does not describe"));
        };
        let link = u32::from(idb.linktype);
        if !link::is_supported(link) {
            return Read1::Skip(format!(
                "captured on interface {interface}, whose {} the inspector does not read",
                link::describe(link)
            ));
        }
        let orig_len = orig_len.max(frame.len() as u32);
        let Some(raw_ts) = raw_ts else { return Read1::Frame { ts: last_ts, link, orig_len } };
        let (mut resolution, mut offset) = (6u8, 0u64);
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfTsResol(v) => resolution = *v,
                InterfaceDescriptionOption::IfTsOffset(s) => offset = *s,
                _ => {}
            }
        }
        let ts = pcapng_time(raw_ts, resolution).saturating_add(Duration::from_secs(offset));
        return Read1::Frame { ts, link, orig_len };
    }
}

/// A pcapng timestamp in units of `if_tsresol` (high bit clear: 10^-v seconds;
/// set: 2^-v seconds).
fn pcapng_time(raw: u64, tsresol: u8) -> Duration {
    let exp = u32::from(tsresol & 0x7f);
    let raw = u128::from(raw);
    let nanos: u128 = if tsresol & 0x80 == 0 {
        match exp {
            0..=9 => raw * 10u128.pow(9 - exp),
            10..=38 => raw / 10u128.pow(exp - 9),
            _ => 0,
        }
    } else {
        (raw * 1_000_000_000) >> exp.min(127)
    };
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(pcapng_time(1_500_000, 6), Duration::from_millis(1500));
        assert_eq!(pcapng_time(1_500_000_000, 9), Duration::from_millis(1500));
        assert_eq!(pcapng_time(3, 0x81), Duration::from_millis(1500));
    }

    #[test]
    fn a_pcap_of_an_unknown_link_type_is_refused_by_name() {
        let mut file = Vec::new();
        for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 147] {
            file.extend_from_slice(&w.to_le_bytes());
        }
        let e = Capture::new(&file[..]).err().expect("refused");
        assert!(e.contains("link type 147"), "{e}");
    }
}
