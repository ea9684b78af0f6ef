//! RFC 9293 conformance: TCP options (sections 3.1, 3.2), the MSS option and the
//! effective send MSS (section 3.7.1), and the checksum on a live connection.
//! Each test names the requirement IDs it shows; tests/conformance/rfc9293.tsv
//! cites them.

use super::conformance_support::*;
use super::*;

/// A listener on IP_A:80 gets `syn` (which must be a SYN from IP_B); the
/// handshake is completed; returns the accepted connection.
fn accept_with(h: &mut Host, syn: Packet) -> ConnId {
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let peer_seq = syn.seg().seq;
    let peer_port = syn.seg().src_port;
    h.deliver(T0, &syn).unwrap();
    let sa = h.one();
    assert_eq!(sa.flags(), "S.");
    assert_eq!(sa.ack, Some(peer_seq + 1));
    let ack = seg(peer_port, 80, peer_seq + 1, sa.seq + 1, "A", 65535);
    h.deliver(T0 + ms(1), &packet(IP_B, IP_A, &ack, b"")).unwrap();
    h.tcp.accept(l).unwrap().expect("handshake completed").0
}

#[test]
fn mandatory_options_end_nop_and_mss_are_understood() {
    // MUST-4: EOL, NOP and MSS. NOP, NOP, MSS 1000, EOL: the MSS is honoured.
    let mut h = Host::new(IP_A, 900);
    let syn = seg(4000, 80, 100, 0, "S", 65535);
    let id = accept_with(&mut h, with_options(&syn, &[1, 1, 2, 4, 0x03, 0xe8, 0], b""));
    assert_eq!(h.tcp.info(id).unwrap().snd_mss, 1000);
    // What follows an EOL is not an option: an MSS after it is not read.
    let mut h = Host::new(IP_A, 901);
    let id = accept_with(&mut h, with_options(&syn, &[0, 2, 4, 0x03, 0xe8], b""));
    assert_eq!(h.tcp.info(id).unwrap().snd_mss, 536, "no MSS option seen: the default");
}

#[test]
fn unknown_options_on_a_syn_are_ignored() {
    // MUST-6: an option we do not implement (kind 250, length 6) is skipped
    // without error and the options after it are still read.
    let mut h = Host::new(IP_A, 902);
    let syn = seg(4000, 80, 100, 0, "S", 65535);
    let id = accept_with(&mut h, with_options(&syn, &[250, 6, 9, 9, 9, 9, 2, 4, 0x04, 0x00], b""));
    assert_eq!(h.tcp.info(id).unwrap().snd_mss, 1024);
    assert!(h.drops.is_empty(), "{:?}", h.drops);
}

#[test]
fn options_are_accepted_on_any_segment() {
    // MUST-5: options on data and on pure ACKs of an established connection
    // (timestamps, SACK-permitted out of place, an unknown kind) do not stop
    // the segment from being processed.
    let mut h = Host::new(IP_A, 903);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 4, 2, 99, 4, 7, 7];
    let data = seg(peer.port, 80, peer.seq, peer.ack, "PA", 65535);
    h.deliver(t, &with_options(&data, &opts, b"with options")).unwrap();
    peer.seq += 12;
    assert_eq!(h.recv_all(t, id).unwrap(), b"with options");
    // Our data is acknowledged by an ACK that carries options too.
    h.send(t, id, b"reply").unwrap();
    assert_eq!(h.one().data, b"reply");
    let ack = seg(peer.port, 80, peer.seq, peer.ack + 5, "A", 65535);
    h.deliver(t + ms(5), &with_options(&ack, &opts, b"")).unwrap();
    assert_eq!(h.tcp.info(id).unwrap().unacked, 0);
    assert!(h.drops.is_empty(), "{:?}", h.drops);
}

#[test]
fn options_need_not_be_word_aligned() {
    // MUST-64: MSS at octet 1 and window scale at octet 6, after NOPs.
    let mut h = Host::new(IP_A, 904);
    let syn = seg(4000, 80, 100, 0, "S", 65535);
    let id = accept_with(&mut h, with_options(&syn, &[1, 2, 4, 0x03, 0xe8, 1, 3, 3, 2], b""));
    let info = h.tcp.info(id).unwrap();
    assert_eq!((info.snd_mss, info.snd_wscale), (1000, 2));
}

#[test]
fn our_options_have_lengths_and_fill_the_header_exactly() {
    // MUST-68: every option we send other than NOP has a length octet.
    // MUST-69: the data offset ends exactly where our options end, so there is
    // never anything after them (no EOL, no padding) to be non-zero.
    let mut h = Host::new(IP_A, 905);
    h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 80)).unwrap();
    let syn = h.net.out.pop().unwrap().bytes;
    assert_eq!(syn[12] >> 4, 10, "20 octets of header and 20 of options");
    // MSS (length 4), SACK-permitted (length 2), timestamps (length 10), NOP,
    // window scale (length 3): Linux's layout.
    assert_eq!(syn[20..26], [2, 4, 0x05, 0xb4, 4, 2]);
    assert_eq!(syn[26..28], [8, 10]);
    assert_eq!(syn[32..40], [0, 0, 0, 0, 1, 3, 3, 1], "TSecr 0 on a SYN, then NOP, window scale");
    assert_eq!(syn.len(), 40);
    // A SYN,ACK to a SYN without window scale: the MSS option alone.
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 1000), b"")).unwrap();
    let synack = h.net.out.pop().unwrap().bytes;
    assert_eq!(synack[12] >> 4, 6);
    assert_eq!(synack[20..24], [2, 4, 0x05, 0xb4]);
    assert_eq!(synack.len(), 24);
    // Window scale alone would be NOP + 3 octets: still a whole word.
    let mut out = Vec::new();
    let s = SegmentOut { syn: true, wscale: Some(5), ..seg(1, 2, 3, 0, "S", 9) };
    segment::write(&mut out, IP_A, IP_B, &s, [b"", b""]);
    assert_eq!((out[12] >> 4, &out[20..]), (6, &[1u8, 3, 3, 5][..]));
}

#[test]
fn mss_option_is_sent_on_every_syn_even_when_it_is_the_default() {
    // SHLD-5: sent when our MSS differs from 536; MAY-3: sent even when it is 536.
    for (mtu, mss) in [(1500, 1460), (576, 536)] {
        let mut h = Host::new(IP_A, 906);
        h.net.mtu = mtu;
        h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
        assert_eq!(h.one().mss, Some(mss), "SYN, MTU {mtu}");
        h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 1000), b"")).unwrap();
        assert_eq!(h.one().mss, Some(mss), "SYN,ACK, MTU {mtu}");
    }
}

#[test]
fn announced_mss_follows_the_link_mtu_within_what_ip_reassembles() {
    // SHLD-6: the MSS we announce comes from the interface's (one, fixed) MTU.
    // MUST-67: it never exceeds MMS_R - 20, MMS_R being the largest transport
    // message IP reassembles.
    let mms_r = crate::ipv4::reassembly::ReassemblyConfig::default().max_datagram_len;
    for mtu in [576u16, 1000, 1280, 1500, 9000] {
        let mut h = Host::new(IP_A, 907);
        h.net.mtu = mtu;
        h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
        let mss = h.one().mss.unwrap();
        assert_eq!(mss, mtu - 40, "MTU {mtu}");
        assert!(mss as usize <= mms_r - 20);
    }
}

#[test]
fn effective_send_mss_is_the_smaller_of_the_peers_mss_and_ours() {
    // MUST-16: Eff.snd.MSS = min(SendMSS + 20, MMS_S) - 20 (no TCP or IP
    // options on our data segments).
    for (peer_mss, expect) in [(Some(8960), 1460), (Some(700), 700), (None, 536)] {
        let mut h = Host::new(IP_A, 908);
        let (id, _peer) = active_established(&mut h, peer_mss, 65535);
        assert_eq!(h.tcp.info(id).unwrap().snd_mss, expect, "peer MSS {peer_mss:?}");
        h.tcp.set_nodelay(T0, &mut h.net, id, true).unwrap();
        h.send(T0 + ms(20), id, &[1; 3000]).unwrap();
        let sizes: Vec<u32> = h.out().iter().map(|s| s.data.len() as u32).collect();
        assert_eq!(sizes[0], expect);
        assert!(sizes.iter().all(|&n| n <= expect), "{sizes:?}");
    }
}

#[test]
fn mss_option_only_on_syn_segments() {
    // MUST-65: every segment of a connection's life (SYN, SYN,ACK and its
    // retransmission, ACKs, data, window updates, FIN, RST) carries the MSS
    // option exactly when it carries SYN.
    let mut h = Host::new(IP_A, 909);
    let mut all = Vec::new();
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4001, 80, 1, 0, "S", 1000), b"")).unwrap();
    all.extend(h.out());
    h.poll(T0 + secs(1));
    all.extend(h.out());
    h.send(T0 + secs(1), id, &[3; 2000]).unwrap();
    all.extend(h.out());
    peer.ack += 2000;
    peer.send(&mut h, T0 + secs(1), "PA", &[4; 3000]).unwrap();
    h.poll(T0 + secs(2));
    h.recv_all(T0 + secs(2), id).unwrap();
    h.tcp.close(T0 + secs(2), &mut h.net, id).unwrap();
    h.tcp.close(T0 + secs(2), &mut h.net, l).unwrap();
    all.extend(h.out());
    assert!(all.iter().any(|s| s.syn) && all.iter().any(|s| !s.data.is_empty()));
    assert!(all.iter().any(|s| s.fin || s.rst));
    for s in &all {
        assert_eq!(s.mss.is_some(), s.syn, "{s:?}");
    }
}

#[test]
fn segment_with_a_bad_checksum_is_dropped_on_a_connection() {
    // MUST-3: corrupted data on an established connection is neither delivered
    // nor acknowledged.
    let mut h = Host::new(IP_A, 910);
    let (_l, id, peer) = passive_established(&mut h);
    let mut p = packet(IP_B, IP_A, &seg(peer.port, 80, peer.seq, peer.ack, "PA", 65535), b"corrupted?");
    let n = p.bytes.len();
    p.bytes[n - 1] ^= 0x40;
    assert_eq!(h.deliver(T0 + secs(1), &p), Err(DropReason::TcpBadChecksum));
    h.nothing();
    assert_eq!(h.tcp.info(id).unwrap().recv_queue, 0);
    assert_eq!(h.tcp.info(id).unwrap().segs_in, 1, "only the handshake's ACK reached the connection");
}
