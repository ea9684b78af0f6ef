//! TCP flags named for people, the one formatter behind both the scenario
//! decoder's Wireshark-style packet list ("SYN, ACK") and the inspector's
//! timeline, which writes them in RFC 9293's notation ("SYN,ACK").

/// Which control bits a segment carries.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub fin: bool,
    pub syn: bool,
    pub rst: bool,
    pub psh: bool,
    pub ack: bool,
    pub urg: bool,
    pub ece: bool,
    pub cwr: bool,
}

impl TcpFlags {
    /// The flags of a TCP header as etherparse slices it.
    pub fn of(t: &etherparse::TcpSlice<'_>) -> TcpFlags {
        TcpFlags {
            fin: t.fin(),
            syn: t.syn(),
            rst: t.rst(),
            psh: t.psh(),
            ack: t.ack(),
            urg: t.urg(),
            ece: t.ece(),
            cwr: t.cwr(),
        }
    }

    /// The names of the bits set, in Wireshark's order (the header's bit order,
    /// FIN first), joined by `sep`: `SYN, ACK` with ", ", `FIN,PSH,ACK` with ",".
    pub fn names(&self, sep: &str) -> String {
        let names = [
            (self.fin, "FIN"),
            (self.syn, "SYN"),
            (self.rst, "RST"),
            (self.psh, "PSH"),
            (self.ack, "ACK"),
            (self.urg, "URG"),
            (self.ece, "ECE"),
            (self.cwr, "CWR"),
        ];
        names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>().join(sep)
    }
}

#[cfg(test)]
mod tests {
    use super::TcpFlags;

    #[test]
    fn separator_and_order() {
        let f = TcpFlags { syn: true, ack: true, ..TcpFlags::default() };
        assert_eq!(f.names(", "), "SYN, ACK");
        assert_eq!(f.names(","), "SYN,ACK");
        let f = TcpFlags { fin: true, psh: true, ack: true, ..TcpFlags::default() };
        assert_eq!(f.names(","), "FIN,PSH,ACK");
        assert_eq!(TcpFlags::default().names(","), "");
    }
}
