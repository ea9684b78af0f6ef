//! TCP timestamps (RFC 7323 sections 3-5): the TSval clock, TS.Recent, the
//! round-trip samples they give (section 4, with RFC 6298) and PAWS (section 5).
//! Also [`SynOptions`], what the two SYNs negotiated, as one small value: the
//! connection keeps it, and a SYN-cookie encoder can pack it.

use super::segment::Options;
use super::seq::Seq;
use crate::time::{Duration, Instant};

/// RFC 7323 section 5.5: TS.Recent is invalid after 24 days of idleness.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// What the handshake negotiated (RFC 9293 section 3.7.1, RFC 7323 sections 2
/// and 3, RFC 2018 section 2): each option is on only if both SYNs carried it.
/// `negotiate` makes it from the peer's SYN options; `Conn::apply_syn_options`
/// puts it into effect on a connection (with the peer's TSval), so a SYN
/// cookie can carry it across the handshake instead of a SYN-RECEIVED TCB:
/// 16 bits of MSS, 4 of window scale and a bit each for SACK and timestamps.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    /// The peer's MSS option (536 when absent, RFC 9293 section 3.7.1).
    pub mss: u16,
    /// The peer's window scale shift, if it sent the option (we always offer ours).
    pub wscale: Option<u8>,
    /// Both offered SACK-permitted.
    pub sack: bool,
    /// Both sent timestamps; the peer's TSval to echo.
    pub timestamps: bool,
}

impl SynOptions {
    /// The options agreed from the peer's SYN (or SYN,ACK), given what we offer
    /// (`sack`, `timestamps` from `TcpConfig`). Like Linux: SACK and timestamps
    /// each on only when both ends asked.
    pub fn negotiate(peer: &Options, sack: bool, timestamps: bool) -> SynOptions {
        SynOptions {
            mss: peer.mss.unwrap_or(super::conn::DEFAULT_MSS),
            wscale: peer.wscale,
            sack: sack && peer.sack_permitted,
            timestamps: timestamps && peer.timestamp.is_some(),
        }
    }
}

/// One connection's timestamp state, once negotiated.
#[derive(Copy, Clone, Debug)]
pub struct Timestamps {
    /// Added to our millisecond clock: a per-connection offset (RFC 7323 section
    /// 7.1 recommends one, so TSval does not reveal uptime).
    offset: u32,
    /// TS.Recent: the TSval to echo (section 4.3).
    recent: u32,
    /// When TS.Recent was last set (section 5.5).
    recent_at: Instant,
    /// Last.ACK.sent: the acknowledgment number of our last ACK (section 4.3).
    last_ack_sent: Seq,
}

impl Timestamps {
    pub fn new(offset: u32, now: Instant) -> Timestamps {
        Timestamps { offset, recent: 0, recent_at: now, last_ack_sent: Seq(0) }
    }

    /// A connection's clock, offset per connection (RFC 7323 section 7.1) by
    /// its (keyed, RFC 6528) initial sequence number: so that a SYN cookie's
    /// SYN,ACK, sent before there is a connection, reads the clock the
    /// connection made from the cookie will read.
    pub fn for_iss(iss: Seq, now: Instant) -> Timestamps {
        Timestamps::new(iss.0.rotate_left(13) ^ 0x2545_f491, now)
    }

    /// TSval for a segment sent at `now`: a 1 ms clock, as Linux's.
    pub fn tsval(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.offset)
    }

    /// The option to put on a segment sent now: (TSval, TSecr = TS.Recent).
    pub fn option(&self, now: Instant) -> (u32, u32) {
        (self.tsval(now), self.recent)
    }

    /// Records the acknowledgment number of an ACK we send (Last.ACK.sent).
    pub fn on_ack_sent(&mut self, ack: Seq) {
        self.last_ack_sent = ack;
    }

    /// The peer's SYN: its TSval is the first TS.Recent.
    pub fn on_syn(&mut self, tsval: u32, now: Instant) {
        self.recent = tsval;
        self.recent_at = now;
    }

    /// RFC 7323 section 5.3, R1 (PAWS): a segment whose TSval is older than
    /// TS.Recent is a duplicate from an earlier wrap of the sequence space; RSTs
    /// are exempt (they carry no timestamp we can trust, section 5.3 note), as is
    /// any segment once TS.Recent has aged past 24 days (section 5.5).
    pub fn paws_rejects(&self, tsval: u32, rst: bool, now: Instant) -> bool {
        !rst && now - self.recent_at < PAWS_IDLE && (tsval.wrapping_sub(self.recent) as i32) < 0
    }

    /// RFC 7323 section 4.3: TS.Recent <- SEG.TSval if SEG.TSval >= TS.Recent
    /// and SEG.SEQ =< Last.ACK.sent (the segment covers the left edge of the
    /// window we last acknowledged, so delayed ACKs echo the earliest TSval).
    pub fn on_segment(&mut self, tsval: u32, seq: Seq, now: Instant) {
        if (tsval.wrapping_sub(self.recent) as i32) >= 0 && seq <= self.last_ack_sent {
            self.recent = tsval;
            self.recent_at = now;
        }
    }

    /// RFC 7323 section 4.1: the round trip from an ACK's TSecr (our TSval echoed),
    /// at a 1 ms grain; 0 is read as 1 ms. `None` for a TSecr from the future or
    /// of zero (not set by the peer).
    pub fn rtt(&self, tsecr: u32, now: Instant) -> Option<Duration> {
        if tsecr == 0 {
            return None;
        }
        let ms = self.tsval(now).wrapping_sub(tsecr);
        (ms as i32 >= 0).then(|| Duration::from_millis(ms.max(1) as u64))
    }

    /// Whether `tsecr` echoes a TSval older than `tsval` (Eifel, RFC 3522 section 2).
    pub fn echoes_before(tsecr: u32, tsval: u32) -> bool {
        (tsecr.wrapping_sub(tsval) as i32) < 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paws_and_ts_recent() {
        let t0 = Instant::from_secs(10);
        let mut t = Timestamps::new(1000, t0);
        t.on_syn(500, t0);
        t.on_ack_sent(Seq(100));
        assert!(t.paws_rejects(499, false, t0), "older than TS.Recent");
        assert!(!t.paws_rejects(499, true, t0), "RST exempt");
        assert!(!t.paws_rejects(500, false, t0));
        assert!(!t.paws_rejects(499, false, t0 + PAWS_IDLE), "TS.Recent aged out");
        // Only a segment at or before Last.ACK.sent updates TS.Recent.
        t.on_segment(600, Seq(150), t0);
        assert!(!t.paws_rejects(550, false, t0));
        t.on_segment(600, Seq(100), t0);
        assert!(t.paws_rejects(550, false, t0));
        assert_eq!(t.option(t0 + Duration::from_millis(3)), (10_003 + 1000, 600));
        // Wraparound: 0xffff_fff0 is before 5.
        t.on_segment(0xffff_fff0, Seq(100), t0);
        t.on_segment(5, Seq(100), t0);
        assert!(t.paws_rejects(0xffff_fff0, false, t0));
    }

    #[test]
    fn rtt_from_tsecr() {
        let t = Timestamps::new(7, Instant::ZERO);
        let sent = t.tsval(Instant::from_millis(100));
        assert_eq!(t.rtt(sent, Instant::from_millis(150)), Some(Duration::from_millis(50)));
        assert_eq!(t.rtt(sent, Instant::from_micros(100_300)), Some(Duration::from_millis(1)));
        assert_eq!(t.rtt(sent + 10, Instant::from_millis(100)), None, "from the future");
        assert!(Timestamps::echoes_before(5, 6) && !Timestamps::echoes_before(6, 6));
    }
}
