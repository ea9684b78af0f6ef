//! `tapstack ss`: a stack's sockets ([`stack::Stack::socket_table`]) printed the
//! way Linux's `ss` prints the kernel's, so that the two read alike side by side.
//!
//! As `ss`: with neither `-t` nor `-u` both protocols are shown, and a Netid
//! column whenever both are; by default only connections that are neither
//! listening, closed, in TIME-WAIT nor in SYN-RECV (ss's `SS_CONN`), with `-l`
//! only listening ones (TCP LISTEN, and UNCONN: unconnected UDP sockets and closed
//! TCP ones), with `-a` all. Addresses are right-aligned up to the colon and ports
//! left-aligned after it; a missing peer reads `0.0.0.0:*`.
//!
//! `-i` adds a line of TCP internals in `ss -ti`'s words. Where ss counts packets
//! (cwnd, ssthresh, unacked) these are the stack's byte counts in segments of the
//! send MSS, rounded up; ssthresh appears once it is set (after a loss), as in ss.
//! `retrans:A/B` is the segments retransmitted and still in flight (at least the
//! consecutive timeouts) and the retransmissions in all; `ts`, `sack`, the
//! congestion control (`cubic`, `reno`), `lost`, `sacked`, `dsack_dups` and
//! `reordering` are ss's names for the options agreed and the SACK scoreboard.
//! Beyond ss: `hystart:ss` / `hystart:css` while HyStart++ runs (RFC 9406),
//! `spurious_rtos:N` and `undo:N` for timeouts and fast recoveries undone.
//!
//! `-o` adds `timer:(NAME,TIME,COUNT)` for each running timer, with ss's names:
//! `on` (retransmission; COUNT is the consecutive timeouts), `persist`
//! (zero-window probe), `keepalive`, `timewait` (TIME-WAIT's 2*MSL and the
//! orphaned FIN-WAIT-2 timeout, which Linux keeps as a timewait socket too) and,
//! beyond ss, `delack`. Linux shows one timer; the stack keeps them apart, so
//! this shows each.

use crate::ss_filter::Filter;
use stack::socket_table::{Protocol, SocketEntry, SocketState};
use stack::tcp::State;
use std::fmt::Write;
use std::net::SocketAddrV4;
use std::time::Duration;

/// What to show, as `ss`'s flags of the same letters (and long names), plus
/// ss's filter. Flags that cannot apply to a userspace stack's IPv4 sockets
/// are taken with ss's meaning and change nothing (`-4`, `-n`) or select nothing
/// (`-6`, `-x`); `-p` is taken and the client says why it shows no processes.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct SsFlags {
    /// TCP sockets.
    #[arg(short = 't', long = "tcp")]
    pub tcp: bool,
    /// UDP sockets.
    #[arg(short = 'u', long = "udp")]
    pub udp: bool,
    /// Only listening sockets (TCP LISTEN, unconnected UDP).
    #[arg(short = 'l', long = "listening")]
    pub listening: bool,
    /// All sockets, listening and not.
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Numeric addresses and ports (always so: the stack resolves no names).
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// TCP internals on a second line, as `ss -i`.
    #[arg(short = 'i', long = "info")]
    pub info: bool,
    /// Running timers, as `ss -o`.
    #[arg(short = 'o', long = "options")]
    pub timers: bool,
    /// No header line.
    #[arg(short = 'H', long = "no-header")]
    pub no_header: bool,
    /// A summary of the sockets by protocol and state instead of the list.
    #[arg(short = 's', long = "summary")]
    pub summary: bool,
    /// The process of each socket (all are the tapstack process: nothing to add).
    #[arg(short = 'p', long = "processes")]
    pub processes: bool,
    /// IPv4 sockets (all of tapstack's are).
    #[arg(short = '4', long = "ipv4")]
    pub ipv4: bool,
    /// IPv6 sockets (tapstack has none).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Unix sockets (tapstack has none).
    #[arg(short = 'x', long = "unix")]
    pub unix: bool,
    /// ss's filter: `state NAME`, `exclude NAME`, `sport = :7`, `dst 10.0.0.1`, ...
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// The flags' letters, in the order the request line lists them.
const LETTERS: [char; 13] = ['t', 'u', 'l', 'a', 'n', 'i', 'o', 'H', 's', 'p', '4', '6', 'x'];

impl SsFlags {
    fn flag(&mut self, c: char) -> Option<&mut bool> {
        Some(match c {
            't' => &mut self.tcp,
            'u' => &mut self.udp,
            'l' => &mut self.listening,
            'a' => &mut self.all,
            'n' => &mut self.numeric,
            'i' => &mut self.info,
            'o' => &mut self.timers,
            'H' => &mut self.no_header,
            's' => &mut self.summary,
            'p' => &mut self.processes,
            '4' => &mut self.ipv4,
            '6' => &mut self.ipv6,
            'x' => &mut self.unix,
            _ => return None,
        })
    }

    /// The arguments of the control request: `-t -a -i`, one per set flag, then
    /// `--` and the filter's words if there is a filter.
    pub fn to_args(&self) -> String {
        let mut me = self.clone();
        let mut args: Vec<String> =
            LETTERS.iter().filter(|c| me.flag(**c).is_some_and(|f| *f)).map(|c| format!("-{c}")).collect();
        if !self.filter.is_empty() {
            args.push("--".into());
            args.extend(self.filter.iter().flat_map(|w| w.split_whitespace().map(String::from)));
        }
        args.join(" ")
    }

    /// Parses the request's arguments, single (`-t -a`) or grouped (`-ta`), and
    /// after `--` the filter (checked here, so a bad one is refused with its reason).
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<SsFlags, String> {
        let mut flags = SsFlags::default();
        let mut args = args.into_iter();
        for arg in args.by_ref() {
            if arg == "--" {
                break;
            }
            let letters =
                arg.strip_prefix('-').filter(|l| !l.is_empty()).ok_or_else(|| format!("'{arg}' is not a flag"))?;
            for c in letters.chars() {
                *flags.flag(c).ok_or_else(|| format!("unknown flag -{c}"))? = true;
            }
        }
        flags.filter = args.map(String::from).collect();
        flags.parsed_filter()?;
        Ok(flags)
    }

    /// The filter, parsed.
    pub fn parsed_filter(&self) -> Result<Filter, String> {
        Filter::parse(self.filter.iter().map(String::as_str))
    }

    /// Notes for flags that are taken but cannot show anything here (the client
    /// prints them on standard error, as ss prints its own warnings).
    pub fn notes(&self) -> Vec<&'static str> {
        let mut notes = Vec::new();
        if self.processes {
            notes.push(
                "-p: every socket here belongs to the tapstack process that runs the stack; no users:(...) shown",
            );
        }
        if self.ipv6 {
            notes.push("-6: tapstack has no IPv6 sockets");
        }
        if self.unix {
            notes.push("-x: tapstack has no Unix sockets");
        }
        notes
    }

    fn shows_protocol(&self, p: Protocol) -> bool {
        // As ss: naming any family or protocol (-6, -x too) narrows to those named.
        let named = self.tcp || self.udp || self.ipv6 || self.unix;
        if self.ipv6 && !self.ipv4 {
            return false;
        }
        match p {
            Protocol::Tcp => self.tcp || !named,
            Protocol::Udp => self.udp || !named,
        }
    }

    fn shows_state(&self, s: SocketState, filter: &Filter) -> bool {
        if filter.has_states() {
            return true; // the filter's states replace -l/-a's choice
        }
        let listening = matches!(
            s,
            SocketState::Tcp(State::Listen) | SocketState::Tcp(State::Closed) | SocketState::UdpUnconnected
        );
        if self.all {
            true
        } else if self.listening {
            listening
        } else {
            !listening && !matches!(s, SocketState::Tcp(State::TimeWait) | SocketState::Tcp(State::SynReceived))
        }
    }
}

/// The state as `ss` names it.
pub fn state_name(s: SocketState) -> &'static str {
    match s {
        SocketState::Tcp(t) => match t {
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECV",
            State::Established => "ESTAB",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
            State::Closed => "UNCONN",
        },
        SocketState::UdpUnconnected => "UNCONN",
        SocketState::UdpConnected => "ESTAB",
    }
}

/// A duration as ss's `print_ms_timer` writes it: `200ms`; `1.500ms` for 1.5 s
/// (ss's own way, kept so that the two read alike); `59sec`; `1min30sec`.
pub fn ms_timer(d: Duration) -> String {
    let ms = d.as_millis();
    let (minutes, mut secs, mut msecs) = (ms / 60_000, (ms / 1000) % 60, ms % 1000);
    let mut out = String::new();
    if minutes > 0 {
        msecs = 0;
        let _ = write!(out, "{minutes}min");
        if minutes > 9 {
            secs = 0;
        }
    }
    if secs > 0 {
        if secs > 9 {
            msecs = 0;
        }
        let _ = write!(out, "{secs}{}", if msecs > 0 { "." } else { "sec" });
    }
    if msecs > 0 {
        let _ = write!(out, "{msecs:03}ms");
    }
    if out.is_empty() {
        // ss prints nothing for a timer due now; a zero reads better.
        out.push_str("0ms");
    }
    out
}

/// Milliseconds as ss's `%g` prints them: up to three decimals, no trailing zeros.
fn ms(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64() * 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn segments(bytes: u32, mss: u32) -> u32 {
    bytes.div_ceil(mss.max(1))
}

/// The `-i` line's items for a connection.
fn info_items(e: &SocketEntry) -> Option<String> {
    let i = e.tcp.as_ref()?;
    // As ss: the options agreed (ts, sack), the congestion control, wscale...
    let mut items = Vec::new();
    if i.loss.timestamps {
        items.push("ts".to_string());
    }
    if i.loss.sack {
        items.push("sack".to_string());
    }
    let cc = if i.loss.congestion.is_empty() { "reno" } else { i.loss.congestion };
    items.extend([cc.to_string(), format!("wscale:{},{}", i.snd_wscale, i.rcv_wscale), format!("rto:{}", ms(i.rto))]);
    if let Some(srtt) = i.srtt {
        items.push(format!("rtt:{}/{}", ms(srtt), ms(i.rttvar)));
    }
    items.push(format!("mss:{}", i.snd_mss));
    items.push(format!("cwnd:{}", segments(i.cwnd, i.snd_mss)));
    // The initial ssthresh is "infinite" (u32::MAX / 2); ss hides it until set.
    if i.ssthresh < u32::MAX / 2 {
        items.push(format!("ssthresh:{}", segments(i.ssthresh, i.snd_mss)));
    }
    items.extend([
        format!("bytes_sent:{}", i.bytes_sent),
        format!("bytes_acked:{}", i.bytes_acked),
        format!("bytes_received:{}", i.bytes_received),
        format!("segs_out:{}", i.segs_out),
        format!("segs_in:{}", i.segs_in),
    ]);
    if i.unacked > 0 {
        items.push(format!("unacked:{}", segments(i.unacked, i.snd_mss)));
    }
    if i.retransmissions > 0 || i.retries > 0 {
        // ss: retransmitted segments in flight now / all retransmissions.
        let now = segments(i.loss.retrans_out, i.snd_mss).max(i.retries);
        items.push(format!("retrans:{}/{}", now, i.retransmissions));
    }
    if i.loss.lost > 0 {
        items.push(format!("lost:{}", segments(i.loss.lost, i.snd_mss)));
    }
    if i.loss.sacked > 0 {
        items.push(format!("sacked:{}", segments(i.loss.sacked, i.snd_mss)));
    }
    if i.loss.dsacks > 0 {
        items.push(format!("dsack_dups:{}", i.loss.dsacks));
    }
    // Beyond ss: HyStart++ while it runs (RFC 9406: `ss`, then `css`), and the
    // congestion events undone (nstat's TcpExtTCPSpuriousRTOs, and the
    // TCPDSACKUndo / TCPPartialUndo kind for fast recoveries).
    if matches!(i.loss.hystart, "ss" | "css") {
        items.push(format!("hystart:{}", i.loss.hystart));
    }
    if i.loss.spurious_rtos > 0 {
        items.push(format!("spurious_rtos:{}", i.loss.spurious_rtos));
    }
    if i.loss.undos > 0 {
        items.push(format!("undo:{}", i.loss.undos));
    }
    if i.loss.reordering > 0 {
        items.push(format!("reordering:{}", i.loss.reordering));
    }
    if i.out_of_order > 0 {
        items.push(format!("ooo_bytes:{}", i.out_of_order));
    }
    items.push(format!("snd_wnd:{}", i.snd_wnd));
    items.push(format!("rcv_wnd:{}", i.rcv_wnd));
    if i.in_recovery {
        items.push("recovery".into());
    }
    if i.path_suspect {
        items.push("path_suspect".into());
    }
    Some(items.join(" "))
}

/// The `-o` timers of an entry, `timer:(on,200ms,0)` and so on.
fn timer_items(e: &SocketEntry) -> String {
    let t = &e.timers;
    let retries = e.tcp.as_ref().map_or(0, |i| i.retries);
    [("on", t.retransmit, retries), ("persist", t.persist, 0), ("keepalive", t.keepalive, 0)]
        .into_iter()
        .chain([("timewait", t.close, 0), ("delack", t.delayed_ack, 0)])
        .filter_map(|(name, left, n)| left.map(|d| format!("timer:({name},{},{n})", ms_timer(d))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn split(addr: Option<SocketAddrV4>) -> (String, String) {
    match addr {
        Some(a) if a.port() != 0 => (a.ip().to_string(), a.port().to_string()),
        Some(a) => (a.ip().to_string(), "*".into()),
        None => ("0.0.0.0".into(), "*".into()),
    }
}

/// The table as `ss` with `flags` prints it (header included, one line per socket,
/// a second with `-i`), ending in a newline.
pub fn render(entries: &[SocketEntry], flags: &SsFlags) -> String {
    let filter = match flags.parsed_filter() {
        Ok(f) => f,
        Err(e) => return format!("error: {e}\n"),
    };
    let shown: Vec<&SocketEntry> = entries
        .iter()
        .filter(|e| flags.shows_protocol(e.protocol()) && flags.shows_state(e.state, &filter) && filter.matches(e))
        .collect();
    if flags.summary {
        return summary(entries);
    }
    table(&shown, flags)
}

/// `ss -s`: counts by protocol, and TCP's by state group, as ss prints them.
fn summary(entries: &[SocketEntry]) -> String {
    let count = |f: &dyn Fn(&SocketEntry) -> bool| entries.iter().filter(|e| f(e)).count();
    let tcp = count(&|e| e.protocol() == Protocol::Tcp);
    let udp = count(&|e| e.protocol() == Protocol::Udp);
    let tcp_in = |s: State| count(&|e| e.state == SocketState::Tcp(s));
    let closed = tcp_in(State::Closed);
    let mut out = String::new();
    let _ = writeln!(out, "Total: {}", entries.len());
    let _ = writeln!(
        out,
        "TCP:   {tcp} (estab {}, closed {closed}, orphaned 0, timewait {})",
        tcp_in(State::Established),
        tcp_in(State::TimeWait)
    );
    let _ = writeln!(out, "\nTransport Total     IP        IPv6");
    let tcp_live = tcp - tcp_in(State::TimeWait);
    for (name, n) in [("RAW", 0), ("UDP", udp), ("TCP", tcp_live), ("INET", udp + tcp_live), ("FRAG", 0)] {
        let _ = writeln!(out, "{name:<9} {n:<9} {n:<9} 0");
    }
    out
}

/// The list, as `ss` lays it out.
fn table(shown: &[&SocketEntry], flags: &SsFlags) -> String {
    let netid = flags.tcp == flags.udp;
    let header: Vec<String> = ["Netid", "State", "Recv-Q", "Send-Q", "Local Address", "Port", "Peer Address", "Port"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = vec![header];
    let mut extras = vec![(String::new(), None)];
    for e in shown {
        let (laddr, lport) = split(Some(e.local));
        let (paddr, pport) = split(e.remote);
        let proto = match e.protocol() {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        rows.push(vec![
            proto.into(),
            state_name(e.state).into(),
            e.recv_q.to_string(),
            e.send_q.to_string(),
            laddr,
            lport,
            paddr,
            pport,
        ]);
        let timers = if flags.timers { timer_items(e) } else { String::new() };
        extras.push((timers, if flags.info { info_items(e) } else { None }));
    }
    let first = if netid { 0 } else { 1 };
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    let w: Vec<usize> = (0..8).map(width).collect();
    let mut out = String::new();
    let skip = usize::from(flags.no_header);
    for (row, (timers, info)) in rows.iter().zip(&extras).skip(skip) {
        let mut line = String::new();
        for c in first..4 {
            let _ = write!(line, "{:<w$} ", row[c], w = w[c]);
        }
        let _ = write!(
            line,
            "{:>w4$}:{:<w5$} {:>w6$}:{:<w7$}",
            row[4],
            row[5],
            row[6],
            row[7],
            w4 = w[4],
            w5 = w[5],
            w6 = w[6],
            w7 = w[7]
        );
        if !timers.is_empty() {
            let _ = write!(line, " {timers}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if let Some(info) = info {
            let _ = writeln!(out, "\t {info}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stack::socket_table::TimersLeft;
    use stack::tcp::{LossInfo, TcpInfo, TimerInfo};

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    fn info(state: State) -> TcpInfo {
        TcpInfo {
            state,
            local: sa("10.0.0.2:80"),
            remote: sa("10.0.0.1:40000"),
            cwnd: 14600,
            ssthresh: u32::MAX / 2,
            srtt: Some(Duration::from_micros(1250)),
            rttvar: Duration::from_micros(500),
            rto: Duration::from_millis(201),
            snd_mss: 1460,
            snd_wnd: 64240,
            rcv_wnd: 65535,
            snd_wscale: 7,
            rcv_wscale: 0,
            unacked: 1461,
            send_queue: 2000,
            recv_queue: 3,
            out_of_order: 0,
            bytes_sent: 3000,
            bytes_acked: 1539,
            bytes_received: 77,
            retransmissions: 0,
            segs_in: 5,
            segs_out: 6,
            retries: 0,
            path_suspect: false,
            in_recovery: false,
            timers: TimerInfo::default(),
            loss: LossInfo { congestion: "cubic", sack: true, timestamps: true, reordering: 3, ..Default::default() },
        }
    }

    fn conn(state: State, timers: TimersLeft) -> SocketEntry {
        let i = info(state);
        SocketEntry {
            state: SocketState::Tcp(state),
            local: i.local,
            remote: Some(i.remote),
            recv_q: i.recv_queue,
            send_q: i.send_queue,
            tcp: Some(i),
            timers,
        }
    }

    fn table() -> Vec<SocketEntry> {
        vec![
            SocketEntry {
                state: SocketState::Tcp(State::Listen),
                local: sa("0.0.0.0:80"),
                remote: None,
                recv_q: 0,
                send_q: 16,
                tcp: None,
                timers: TimersLeft::default(),
            },
            conn(State::Established, TimersLeft { retransmit: Some(Duration::from_millis(200)), ..Default::default() }),
            conn(State::TimeWait, TimersLeft { close: Some(Duration::from_millis(59_500)), ..Default::default() }),
            SocketEntry {
                state: SocketState::UdpUnconnected,
                local: sa("0.0.0.0:7"),
                remote: None,
                recv_q: 0,
                send_q: 0,
                tcp: None,
                timers: TimersLeft::default(),
            },
            SocketEntry {
                state: SocketState::UdpConnected,
                local: sa("10.0.0.2:5000"),
                remote: Some(sa("10.0.0.1:53")),
                recv_q: 300,
                send_q: 0,
                tcp: None,
                timers: TimersLeft::default(),
            },
        ]
    }

    fn flags(args: &str) -> SsFlags {
        SsFlags::from_args(args.split_whitespace()).unwrap()
    }

    #[test]
    fn by_default_only_connections_as_ss_conn_with_a_netid_column() {
        let out = render(&table(), &flags(""));
        assert_eq!(
            out,
            "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n\
             tcp   ESTAB 3      2000        10.0.0.2:80       10.0.0.1:40000\n\
             udp   ESTAB 300    0           10.0.0.2:5000     10.0.0.1:53\n"
        );
    }

    #[test]
    fn listening_and_all_choose_states_and_one_protocol_drops_the_netid() {
        let out = render(&table(), &flags("-tl"));
        assert_eq!(
            out,
            "State  Recv-Q Send-Q Local Address:Port Peer Address:Port\n\
             LISTEN 0      16           0.0.0.0:80        0.0.0.0:*\n"
        );
        assert_eq!(
            render(&table(), &flags("-u -a")),
            "State  Recv-Q Send-Q Local Address:Port Peer Address:Port\n\
             UNCONN 0      0            0.0.0.0:7         0.0.0.0:*\n\
             ESTAB  300    0           10.0.0.2:5000     10.0.0.1:53\n"
        );
        let tcp_all = render(&table(), &flags("-ta"));
        for state in ["LISTEN", "ESTAB", "TIME-WAIT"] {
            assert!(tcp_all.contains(state), "{tcp_all}");
        }
    }

    #[test]
    fn info_and_timers_as_ss_ti_o() {
        let out = render(&table(), &flags("-t -a -i -o"));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[2].ends_with("10.0.0.1:40000 timer:(on,200ms,0)"), "{out}");
        assert_eq!(
            lines[3],
            "\t ts sack cubic wscale:7,0 rto:201 rtt:1.25/0.5 mss:1460 cwnd:10 bytes_sent:3000 bytes_acked:1539 \
             bytes_received:77 segs_out:6 segs_in:5 unacked:2 reordering:3 snd_wnd:64240 rcv_wnd:65535"
        );
        assert!(lines[4].starts_with("TIME-WAIT") && lines[4].ends_with("timer:(timewait,59sec,0)"), "{out}");
        assert!(!out.contains("cubic wscale:0"), "a listener has no internals line: {out}");
        // HyStart++'s phase and the undone congestion events, when there are any.
        let mut t = table();
        let loss = &mut t[1].tcp.as_mut().unwrap().loss;
        (loss.hystart, loss.undos) = ("css", 1);
        let out = render(&t, &flags("-t -i"));
        assert!(out.contains(" unacked:2 hystart:css undo:1 reordering:3 "), "{out}");
    }

    #[test]
    fn ss_timer_format() {
        let f = |ms| ms_timer(Duration::from_millis(ms));
        assert_eq!(f(200), "200ms");
        assert_eq!(f(1500), "1.500ms");
        assert_eq!(f(59_999), "59sec");
        assert_eq!(f(90_000), "1min30sec");
        assert_eq!(f(7_200_000), "120min");
        assert_eq!(f(0), "0ms");
    }

    #[test]
    fn request_arguments_round_trip_and_bad_ones_are_refused() {
        let f = flags("-tai -o");
        assert_eq!(f.to_args(), "-t -a -i -o");
        assert_eq!(SsFlags::from_args(f.to_args().split(' ')), Ok(f));
        assert_eq!(SsFlags::from_args(["-q"]), Err("unknown flag -q".into()));
        assert_eq!(SsFlags::from_args(["t"]), Err("'t' is not a flag".into()));
        assert_eq!(SsFlags::from_args(["-"]), Err("'-' is not a flag".into()));
    }
    #[test]
    fn the_flags_students_type_first_are_taken() {
        let f = flags("-tlnp");
        assert!(f.tcp && f.listening && f.numeric && f.processes);
        assert_eq!(f.notes().len(), 1, "-p is taken with a note");
        let out = render(&table(), &f);
        assert!(out.contains("LISTEN") && out.contains("0.0.0.0:80"), "{out}");
        assert!(!render(&table(), &flags("-tl -H")).contains("State"), "-H drops the header");
        assert!(render(&table(), &flags("-4 -tl")).contains("LISTEN"), "-4: all of them are IPv4");
        for only_others in ["-x", "-6", "-x -6"] {
            assert_eq!(render(&table(), &flags(&format!("{only_others} -H"))), "", "{only_others}");
        }
    }

    #[test]
    fn ss_s_summarises_by_protocol_and_state() {
        let out = render(&table(), &flags("-s"));
        assert!(out.starts_with("Total: 5\nTCP:   3 (estab 1, closed 0, orphaned 0, timewait 1)\n"), "{out}");
        assert!(out.contains("\nUDP       2 "), "{out}");
        assert!(out.contains("\nTCP       2 "), "TIME-WAIT is not in the transport table, as ss: {out}");
    }

    #[test]
    fn a_filter_travels_in_the_request_and_selects_as_ss_does() {
        let f = flags("-t -- state time-wait");
        assert_eq!(f.to_args(), "-t -- state time-wait");
        assert_eq!(SsFlags::from_args(f.to_args().split(' ')), Ok(f.clone()));
        let out = render(&table(), &f);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("TIME-WAIT"), "{out}");
        let out = render(&table(), &flags("-a -- ( sport = :80 )"));
        assert!(out.lines().skip(1).all(|l| l.contains(":80 ")), "{out}");
        assert_eq!(out.lines().count(), 4, "listener, connection and TIME-WAIT on :80: {out}");
        let out = render(&table(), &flags("-u -a -- dport = :53"));
        assert_eq!(out.lines().count(), 2, "{out}");
        assert_eq!(SsFlags::from_args(["--", "state", "bogus"]), Err("unknown state 'bogus'".into()));
    }
}
