//! SACK-based loss recovery's bookkeeping (RFC 6675 section 5) and the pace
//! of sending during it, Proportional Rate Reduction (RFC 6937 section 3, the
//! PRR-SSRB variant Linux uses). The connection decides *what* to send
//! (`Scoreboard::next_hole`, new data); this decides *how much*.

use super::seq::Seq;

/// One episode of fast recovery.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// RFC 6675 RecoveryPoint: SND.MAX when loss was detected; recovery ends
    /// when SND.UNA reaches it.
    pub point: Seq,
    /// RFC 6937 RecoverFS: the flight size when recovery began.
    recover_fs: u32,
    /// prr_delivered: octets the receiver got during recovery (SND.UNA's advance
    /// plus newly SACKed octets).
    delivered: u32,
    /// prr_out: octets sent during recovery.
    out: u32,
}

impl Recovery {
    /// RFC 6937 section 3, at the start of recovery.
    pub fn new(point: Seq, recover_fs: u32) -> Recovery {
        Recovery { point, recover_fs: recover_fs.max(1), delivered: 0, out: 0 }
    }

    /// RFC 6937 section 3, on every ACK during recovery: DeliveredData octets
    /// arrived; returns `sndcnt`, the octets that may be sent now.
    /// `pipe` is RFC 6675's SetPipe after the ACK.
    pub fn on_ack(&mut self, delivered: u32, pipe: u32, ssthresh: u32, smss: u32) -> u32 {
        self.delivered = self.delivered.saturating_add(delivered);
        if pipe > ssthresh {
            // Proportional part: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let target = (self.delivered as u64 * ssthresh as u64).div_ceil(self.recover_fs as u64);
            (target as u32).saturating_sub(self.out)
        } else {
            // Slow start reduction bound (PRR-SSRB): catch up to ssthresh, at
            // most one SMSS beyond what this ACK delivered.
            let limit = self.delivered.saturating_sub(self.out).max(delivered) + smss;
            (ssthresh - pipe).min(limit)
        }
    }

    /// prr_out: octets sent so far in this recovery.
    pub fn sent(&self) -> u32 {
        self.out
    }

    /// `len` octets were sent during recovery (prr_out += len).
    pub fn on_sent(&mut self, len: u32) {
        self.out = self.out.saturating_add(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6937's example: 20 segments in flight, one lost, ssthresh 10:
    /// PRR sends about one segment for every two delivered, not a burst.
    #[test]
    fn prr_paces_at_half_while_pipe_above_ssthresh() {
        let smss = 100;
        let mut r = Recovery::new(Seq(2000), 2000);
        let mut pipe = 1900;
        let mut sent = Vec::new();
        for _ in 0..10 {
            pipe -= 100;
            // Whole segments: any positive count sends one (the ceiling in segments).
            let n = if r.on_ack(100, pipe, 1000, smss) > 0 { smss } else { 0 };
            r.on_sent(n);
            pipe += n;
            sent.push(n / smss);
        }
        assert_eq!(sent, [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
        // Pipe below ssthresh (more losses): slow start back up, at most one
        // SMSS beyond what is delivered.
        let mut r = Recovery::new(Seq(2000), 2000);
        assert_eq!(r.on_ack(100, 300, 1000, smss), 200);
    }
}
