//! Send-buffer autotuning: a bulk sender's buffer grows with what the network
//! lets it keep in flight, as Linux's `tcp_sndbuf_expand` grows sk_sndbuf
//! (its tcp_wmem). With a fixed 64 KiB buffer and TSO, at most one 64 KiB
//! segment is in flight and each waits a round trip through the peer: the
//! buffer, not the windows, sets the pace.
//!
//! The buffer is kept at twice what may be in flight, min(cwnd, the largest
//! window the peer offered): one flight unacknowledged, one ready to follow.
//! It only grows (as Linux's, outside memory pressure), up to
//! `TcpConfig::wmem_max`, and only while SO_SNDBUF is the stack's default: a
//! size the user chose stays (Linux's SOCK_SNDBUF_LOCK). Growing costs
//! nothing until the application writes more: the storage follows the data.

use super::Conn;
use crate::tcp::TcpConfig;

impl Conn {
    /// After an ACK: the send buffer's size for the windows as they are now.
    pub(super) fn expand_sndbuf(&mut self, cfg: &TcpConfig) {
        if cfg.wmem_max == 0 || self.opts.send_buffer != cfg.default_options.send_buffer {
            return;
        }
        let flight = self.cc.cwnd().min(self.max_snd_wnd) as usize;
        let want = flight.saturating_mul(2).min(cfg.wmem_max);
        if want > self.send.capacity() {
            self.send.set_capacity(want);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tcp::config::AUTOTUNE_WMEM_MAX;
    use crate::tcp::tests::{pattern, secs, Wire};
    use crate::tcp::TcpConfig;

    /// 1 MB from A to B, A writing all it may, B reading all it gets: the
    /// most A's send queue held, and whether the bytes arrived intact.
    fn bulk(cfg: TcpConfig, sndbuf: Option<usize>) -> usize {
        let mut w = Wire::with_config(41, cfg);
        let (a, _l, b) = w.connect();
        if let Some(bytes) = sndbuf {
            w.a.tcp.set_send_buffer(w.now, &mut w.a.net, a, bytes).unwrap();
        }
        let data = pattern(1_000_000, 9);
        let (mut sent, mut got, mut most) = (0, Vec::new(), 0);
        assert!(w.run_until(secs(60), |w| {
            sent += w.a.send(w.now, a, &data[sent..]).unwrap_or(0);
            most = most.max(w.a.tcp.info(a).unwrap().send_queue);
            got.extend(w.b.recv_all(w.now, b).unwrap());
            got.len() == data.len()
        }));
        assert!(got == data, "the bytes arrived intact");
        most
    }

    #[test]
    fn the_send_buffer_grows_with_the_windows_unless_its_size_was_chosen() {
        let tuned = TcpConfig { wmem_max: AUTOTUNE_WMEM_MAX, ..TcpConfig::default() };
        let default = TcpConfig::default().default_options.send_buffer;
        // B's window (its 64 KiB buffer) bounds the flight: the buffer grows to twice that.
        let most = bulk(tuned.clone(), None);
        assert!(most > default && most <= 2 * 2 * default, "grown to {most}");
        // Off (the core's default), or SO_SNDBUF set: the size stays.
        assert!(bulk(TcpConfig::default(), None) <= default);
        assert!(bulk(tuned, Some(50_000)) <= 50_000);
    }
}
