//! Receive-buffer autotuning, as Linux's dynamic right-sizing
//! (`tcp_rcv_space_adjust`): once per round trip, when the application read
//! more than the last round's measure, the buffer (and so the window offered)
//! grows to twice what it read, plus some room, up to `TcpConfig::rmem_max`.
//! A fixed 64 KiB window lets the peer send one 64 KiB GSO segment per round
//! trip, however fast the reader; a window the reader keeps up with lets it
//! keep several in flight.
//!
//! The window scale is announced on the SYN, so a connection that may grow
//! announces the scale of `rmem_max` from the start (RFC 7323 section 2.3;
//! Linux announces tcp_rmem[2]'s). Only a socket whose SO_RCVBUF is the
//! default grows: a size the user chose stays (Linux's SOCK_RCVBUF_LOCK).

use super::{wscale_for, Conn};
use crate::tcp::seq::Seq;
use crate::tcp::{SocketOptions, TcpConfig};
use crate::time::Instant;

/// Segments' worth of room beyond twice a round's reading (Linux adds 16 MSS).
const ROOM_SEGMENTS: usize = 16;
/// The first round's measure, in segments (Linux's TCP_INIT_CWND).
const FIRST_SPACE_SEGMENTS: u32 = 10;

/// One round trip's measure of the reading.
#[derive(Copy, Clone, Debug)]
pub(super) struct RcvSpace {
    /// The most one round trip's reading has been (0: not measuring yet).
    space: u32,
    /// Where the reading stood when the round began.
    seq: Seq,
    at: Instant,
}

impl RcvSpace {
    pub(super) const NONE: RcvSpace = RcvSpace { space: 0, seq: Seq(0), at: Instant::ZERO };
}

/// Whether a connection with `opts` grows its receive buffer.
fn grows(opts: &SocketOptions, cfg: &TcpConfig) -> bool {
    cfg.rmem_max > 0 && opts.recv_buffer == cfg.default_options.recv_buffer
}

/// The window scale to announce: for the largest the buffer may become (a
/// SYN,ACK from a SYN cookie announces the same: `demux.rs`).
pub(crate) fn rcv_wscale(opts: &SocketOptions, cfg: &TcpConfig) -> u8 {
    match grows(opts, cfg) {
        true => wscale_for(opts.recv_buffer.max(cfg.rmem_max)),
        false => wscale_for(opts.recv_buffer),
    }
}

impl Conn {
    /// After the user read: at most once per round trip, grows the buffer to
    /// what the reading needs.
    pub(super) fn adjust_rcvbuf(&mut self, now: Instant, cfg: &TcpConfig) {
        let Some(rtt) = self.rtt.srtt() else { return };
        if !grows(&self.opts, cfg) {
            return;
        }
        let read_to = self.rcv_nxt - self.recv.readable() as u32;
        let m = &mut self.rcv_space;
        if m.space == 0 {
            let first = (FIRST_SPACE_SEGMENTS * self.rcv_mss).min(self.recv.capacity() as u32);
            *m = RcvSpace { space: first.max(1), seq: read_to, at: now };
            return;
        }
        if now - m.at < rtt {
            return;
        }
        let copied = read_to.since(m.seq);
        if copied > m.space {
            m.space = copied;
            let room = ROOM_SEGMENTS * self.rcv_mss as usize;
            let most = cfg.rmem_max.min((u16::MAX as usize) << self.rcv_wscale);
            let want = (2 * copied as usize + room).min(most);
            if want > self.recv.capacity() {
                self.recv.grow_capacity(want);
            }
        }
        m.seq = read_to;
        m.at = now;
    }
}

#[cfg(test)]
mod tests {
    use crate::tcp::config::AUTOTUNE_RMEM_MAX;
    use crate::tcp::tests::{pattern, secs, Wire};
    use crate::tcp::TcpConfig;

    /// 2 MB from A to B over a wire with a round trip, B reading all it gets:
    /// B's window scale and the largest window it offered. `in_place`: B
    /// reads with `recv_with` instead of `recv`.
    fn bulk(cfg: TcpConfig, rcvbuf: Option<usize>, in_place: bool) -> (u8, u32) {
        let mut w = Wire::with_config(43, cfg);
        w.delay = std::time::Duration::from_millis(1);
        let (a, _l, b) = w.connect();
        if let Some(bytes) = rcvbuf {
            w.b.tcp.set_recv_buffer(w.now, &mut w.b.net, b, bytes).unwrap();
        }
        let data = pattern(2_000_000, 5);
        let (mut sent, mut got, mut most) = (0, Vec::new(), 0);
        assert!(w.run_until(secs(60), |w| {
            sent += w.a.send(w.now, a, &data[sent..]).unwrap_or(0);
            if in_place {
                let (now, tcp, net) = (w.now, &mut w.b.tcp, &mut w.b.net);
                while tcp.recv_with(now, net, b, |d| (got.extend_from_slice(d), d.len()).1).is_ok_and(|n| n > 0) {}
            } else {
                got.extend(w.b.recv_all(w.now, b).unwrap());
            }
            most = most.max(w.b.tcp.info(b).unwrap().rcv_wnd);
            got.len() == data.len()
        }));
        assert!(got == data, "the bytes arrived intact");
        (w.b.tcp.info(b).unwrap().rcv_wscale, most)
    }

    #[test]
    fn the_receive_buffer_grows_with_the_reading_unless_its_size_was_chosen() {
        let big = 4 * 1024 * 1024;
        let tuned = TcpConfig { rmem_max: AUTOTUNE_RMEM_MAX, wmem_max: big, ..TcpConfig::default() };
        let default = TcpConfig::default().default_options.recv_buffer as u32;
        // Read with a copy or in place (review finding: recv_with did not grow it).
        for in_place in [false, true] {
            let (scale, most) = bulk(tuned.clone(), None, in_place);
            // The scale of 6 MiB (RFC 7323 section 2.3), and a window beyond the default buffer.
            assert_eq!(scale, 7);
            assert!(most > 2 * default, "grew to {most} (in place: {in_place})");
        }
        // Off (the core's default), or SO_RCVBUF chosen: the size stays.
        let off = TcpConfig { wmem_max: big, ..TcpConfig::default() };
        let (scale, most) = bulk(off, None, false);
        assert!(scale == 1 && most <= default, "scale {scale}, window {most}");
        let (_, most) = bulk(tuned, Some(100_000), false);
        assert!(most <= 100_000, "window {most}");
    }

    #[test]
    fn a_syn_cookie_announces_the_scale_the_connection_uses() {
        // The SYN,ACK of a cookie is sent before there is a connection: it must
        // announce the scale the connection made from it will shift by.
        let cfg = TcpConfig { rmem_max: AUTOTUNE_RMEM_MAX, syn_cookies_always: true, ..TcpConfig::default() };
        let mut w = Wire::with_config(47, cfg);
        let (a, _l, b) = w.connect();
        let (ia, ib) = (w.a.tcp.info(a).unwrap(), w.b.tcp.info(b).unwrap());
        assert_eq!((ib.rcv_wscale, ia.snd_wscale), (7, 7));
        let data = pattern(300_000, 1);
        let (mut sent, mut got) = (0, Vec::new());
        assert!(w.run_until(secs(30), |w| {
            sent += w.a.send(w.now, a, &data[sent..]).unwrap_or(0);
            got.extend(w.b.recv_all(w.now, b).unwrap());
            got.len() == data.len()
        }));
        assert!(got == data);
    }
}
