//! `ss`'s filter (`ss state established '( sport = :7 or dport = :80 )'`): state
//! selections and an expression over ports and addresses, with the words and
//! meanings of ss(8)'s FILTER section, so that what students type for the
//! kernel's sockets works for tapstack's.
//!
//! - `state NAME` / `exclude NAME` (repeatable): the eleven TCP states by ss's
//!   names, and ss's groups `all`, `connected`, `synchronized`, `bucket`, `big`.
//!   UDP sockets count as `established` when connected and `closed` otherwise,
//!   as ss shows them (ESTAB, UNCONN).
//! - An expression: `sport`/`dport OP :PORT`, `src`/`dst ADDR[:PORT]`, with OP one
//!   of `= == eq != ne neq > gt < lt >= ge <= le`; joined by `and`/`&&` (or
//!   nothing), `or`/`||`, negated by `not`/`!`, grouped with parentheses.

use stack::socket_table::{SocketEntry, SocketState};
use stack::tcp::State;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The parsed filter; the default matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The states selected by `state`/`exclude` (bit i: [`STATES`]`[i]`); `None`
    /// when the filter names no state, so that -l/-a decide.
    pub states: Option<u16>,
    pub expr: Option<Expr>,
}

/// ss's state names, in TCP's order, then UDP's unconnected one mapped to closed.
const STATES: [(&str, State); 11] = [
    ("established", State::Established),
    ("syn-sent", State::SynSent),
    ("syn-recv", State::SynReceived),
    ("fin-wait-1", State::FinWait1),
    ("fin-wait-2", State::FinWait2),
    ("time-wait", State::TimeWait),
    ("closed", State::Closed),
    ("close-wait", State::CloseWait),
    ("last-ack", State::LastAck),
    ("listening", State::Listen),
    ("closing", State::Closing),
];

fn bit(s: State) -> u16 {
    1 << STATES.iter().position(|(_, t)| *t == s).expect("every state has an ss name")
}

/// The states a `state` word selects (ss(8): the groups are unions of states).
fn state_set(word: &str) -> Result<u16, String> {
    let all = (1u16 << STATES.len()) - 1;
    let bucket = bit(State::SynReceived) | bit(State::TimeWait);
    let connected = all & !(bit(State::Listen) | bit(State::Closed));
    Ok(match word {
        "all" => all,
        "connected" => connected,
        "synchronized" => connected & !bit(State::SynSent),
        "bucket" => bucket,
        "big" => all & !bucket,
        // ss also takes "listen" and the kernel's upper-case names.
        "listen" => bit(State::Listen),
        w => STATES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(w))
            .map(|(_, s)| bit(*s))
            .ok_or_else(|| format!("unknown state '{w}'"))?,
    })
}

/// A socket's state as ss's filter sees it.
fn state_of(e: &SocketEntry) -> State {
    match e.state {
        SocketState::Tcp(s) => s,
        SocketState::UdpUnconnected => State::Closed,
        _ => State::Established,
    }
}

/// A comparison of a port.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// An expression over one socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `sport`/`dport OP :PORT` (`local` for sport).
    Port {
        local: bool,
        op: Op,
        port: u16,
    },
    /// `src`/`dst ADDR[:PORT]`.
    Addr {
        local: bool,
        addr: Ipv4Addr,
        port: Option<u16>,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Filter {
    /// Parses the filter words (as the shell split them; parentheses may stick to
    /// their neighbours, and a quoted expression may be one word).
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Filter, String> {
        let mut tokens = tokenize(words);
        let mut filter = Filter::default();
        while let Some(w) = tokens.first().map(String::as_str) {
            if w != "state" && w != "exclude" {
                break;
            }
            let name = tokens.get(1).ok_or_else(|| format!("'{w}' needs a state name"))?;
            let set = state_set(name)?;
            let current = filter.states.unwrap_or(if w == "exclude" { (1 << STATES.len()) - 1 } else { 0 });
            filter.states = Some(if w == "state" { current | set } else { current & !set });
            tokens.drain(..2);
        }
        if !tokens.is_empty() {
            let mut p = Parser { tokens: &tokens, at: 0 };
            let e = p.or()?;
            if let Some(t) = tokens.get(p.at) {
                return Err(format!("unexpected '{t}' in the filter"));
            }
            filter.expr = Some(e);
        }
        Ok(filter)
    }

    /// Whether the filter names states (which then replace -l/-a's choice).
    pub fn has_states(&self) -> bool {
        self.states.is_some()
    }

    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &SocketEntry) -> bool {
        self.states.is_none_or(|set| set & bit(state_of(e)) != 0) && self.expr.as_ref().is_none_or(|x| x.matches(e))
    }
}

impl Expr {
    fn matches(&self, e: &SocketEntry) -> bool {
        let side = |local: bool| if local { Some(e.local) } else { e.remote };
        match self {
            Expr::Port { local, op, port } => {
                let p = side(*local).map_or(0, |a| a.port());
                match op {
                    Op::Eq => p == *port,
                    Op::Ne => p != *port,
                    Op::Gt => p > *port,
                    Op::Lt => p < *port,
                    Op::Ge => p >= *port,
                    Op::Le => p <= *port,
                }
            }
            Expr::Addr { local, addr, port } => side(*local).is_some_and(|a: SocketAddrV4| {
                (addr.is_unspecified() || a.ip() == addr) && port.is_none_or(|p| a.port() == p)
            }),
            Expr::Not(x) => !x.matches(e),
            Expr::And(a, b) => a.matches(e) && b.matches(e),
            Expr::Or(a, b) => a.matches(e) || b.matches(e),
        }
    }
}

/// Splits words further at parentheses and at whitespace inside quoted words.
fn tokenize<'a>(words: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for w in words {
        for piece in w.replace('(', " ( ").replace(')', " ) ").split_whitespace() {
            out.push(piece.to_string());
        }
    }
    out
}

/// A recursive-descent parser: or := and ('or' and)*; and := unary (['and'] unary)*;
/// unary := 'not' unary | '(' or ')' | predicate.
struct Parser<'t> {
    tokens: &'t [String],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Result<&str, String> {
        let t = self.tokens.get(self.at).ok_or("the filter ends too early")?;
        self.at += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&&") => self.at += 1,
                Some(")" | "or" | "||") | None => return Ok(e),
                Some(_) => {}
            }
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.next()? {
            "not" | "!" => Ok(Expr::Not(Box::new(self.unary()?))),
            "(" => {
                let e = self.or()?;
                match self.next()? {
                    ")" => Ok(e),
                    t => Err(format!("expected ')' but found '{t}'")),
                }
            }
            w @ ("sport" | "dport") => {
                let local = w == "sport";
                let op = op(self.next()?)?;
                let port = port(self.next()?)?;
                Ok(Expr::Port { local, op, port })
            }
            w @ ("src" | "dst") => {
                let local = w == "src";
                let mut t = self.next()?.to_string();
                if matches!(t.as_str(), "=" | "==" | "eq") {
                    t = self.next()?.to_string();
                }
                let (addr, port) = addr_port(&t)?;
                Ok(Expr::Addr { local, addr, port })
            }
            t => Err(format!("unknown filter word '{t}' (want state, sport, dport, src, dst, and, or, not)")),
        }
    }
}

fn op(t: &str) -> Result<Op, String> {
    Ok(match t {
        "=" | "==" | "eq" => Op::Eq,
        "!=" | "ne" | "neq" => Op::Ne,
        ">" | "gt" => Op::Gt,
        "<" | "lt" => Op::Lt,
        ">=" | "ge" | "geq" => Op::Ge,
        "<=" | "le" | "leq" => Op::Le,
        _ => return Err(format!("'{t}' is not a comparison")),
    })
}

/// `:7` or `7` (ss writes the colon; a bare number is taken too).
fn port(t: &str) -> Result<u16, String> {
    t.trim_start_matches(':').parse().map_err(|_| format!("'{t}' is not a port (like :7)"))
}

/// `10.0.0.1`, `10.0.0.1:80` or `*:80`... as ss takes them, IPv4 only.
fn addr_port(t: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    let (a, p) = match t.split_once(':') {
        Some((a, p)) => (a, Some(port(p)?)),
        None => (t, None),
    };
    let addr = if a == "*" || a.is_empty() {
        Ipv4Addr::UNSPECIFIED
    } else {
        a.parse().map_err(|_| format!("'{a}' is not an IPv4 address"))?
    };
    Ok((addr, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_their_groups_as_ss_names_them() {
        let f = Filter::parse(["state", "established", "state", "time-wait"]).unwrap();
        assert_eq!(f.states, Some(bit(State::Established) | bit(State::TimeWait)));
        let connected = Filter::parse(["state", "connected"]).unwrap().states.unwrap();
        assert_eq!(connected & (bit(State::Listen) | bit(State::Closed)), 0);
        assert_ne!(connected & bit(State::SynSent), 0);
        let sync = Filter::parse(["state", "synchronized"]).unwrap().states.unwrap();
        assert_eq!(sync, connected & !bit(State::SynSent));
        let big = Filter::parse(["exclude", "time-wait"]).unwrap().states.unwrap();
        assert_eq!(big & bit(State::TimeWait), 0);
        assert_ne!(big & bit(State::Listen), 0);
    }

    #[test]
    fn expressions_parse_with_ss_words_and_precedence() {
        let port = |local, port| Expr::Port { local, op: Op::Eq, port };
        let f = Filter::parse(["( sport = :7 or dport == :80 )"]).unwrap();
        assert_eq!(f.expr, Some(Expr::Or(Box::new(port(true, 7)), Box::new(port(false, 80)))));
        // "and" binds tighter than "or", and may be left out.
        let f = Filter::parse("sport = :7 dport = :1 or not sport eq :9".split(' ')).unwrap();
        let and = Expr::And(Box::new(port(true, 7)), Box::new(port(false, 1)));
        assert_eq!(f.expr, Some(Expr::Or(Box::new(and), Box::new(Expr::Not(Box::new(port(true, 9)))))));
        let f = Filter::parse(["dst", "10.0.0.1:53", "&&", "sport", "ge", ":1024"]).unwrap();
        let dst = Expr::Addr { local: false, addr: Ipv4Addr::new(10, 0, 0, 1), port: Some(53) };
        let ge = Expr::Port { local: true, op: Op::Ge, port: 1024 };
        assert_eq!(f.expr, Some(Expr::And(Box::new(dst), Box::new(ge))));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(Filter::parse(["sport", "=", "seven"]), Err("'seven' is not a port (like :7)".into()));
        assert_eq!(Filter::parse(["(", "sport", "=", ":7"]), Err("the filter ends too early".into()));
        assert_eq!(Filter::parse(["sport", "~", ":7"]), Err("'~' is not a comparison".into()));
        assert!(Filter::parse(["proto", "tcp"]).unwrap_err().starts_with("unknown filter word 'proto'"));
        assert_eq!(Filter::parse(["state"]), Err("'state' needs a state name".into()));
    }
}
