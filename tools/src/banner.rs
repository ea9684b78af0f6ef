//! What `tapstack up` prints once it is up: how to reach it from the Linux side
//! of the TAP, built from what it actually serves (each service on its own port
//! and protocol) and from its subnet (the host-side address it suggests is on
//! the subnet, and neither the stack's own, the network's nor the broadcast
//! address; a /32 has room for no other host, and a /31 is a pair, RFC 3021).
//! Pure functions of the configuration, so tests read them without a TAP.

use stack::Config;
use std::net::Ipv4Addr;

/// A service as the banner names it: its name, "tcp" or "udp", and its port.
pub type Served<'a> = (&'a str, &'a str, u16);

/// Where the Linux side of the TAP can be, for the stack at `config` to reach
/// it: the gateway if one is given (the host end usually is), else the first
/// host address of the subnet that is not the stack's; `Err` with what to do
/// instead when the subnet holds no other host (a /32).
pub fn host_side(config: &Config) -> Result<Ipv4Addr, String> {
    if let Some(gw) = config.gateway {
        return Ok(gw);
    }
    let me = u32::from(config.addr);
    match config.prefix_len {
        32 => Err(format!(
            "{}/32 is a subnet of one address, the stack's own: no host on the TAP can reach it (it \
             answers only on-link, and a gateway would have to be on the subnet). Give the stack a \
             subnet it shares with the host, like --addr {}/24 (or a /31 pair, RFC 3021)",
            config.addr, config.addr
        )),
        // RFC 3021: both addresses of a /31 are hosts; the other one is the peer.
        31 => Ok(Ipv4Addr::from(me ^ 1)),
        _ => {
            let network = me & config.netmask();
            let first = network + 1;
            Ok(Ipv4Addr::from(if first == me { first + 1 } else { first }))
        }
    }
}

/// The command that tries one service from the host, with what it is.
fn try_it(addr: Ipv4Addr, (name, protocol, port): Served) -> String {
    let (command, what) = match (name, protocol) {
        ("echo", _) => (format!("nc {addr} {port}"), "TCP echo: lines come back"),
        ("discard", _) => (format!("nc {addr} {port}"), "TCP discard: lines vanish"),
        ("chargen", _) => (format!("nc {addr} {port} | head -3"), "TCP chargen"),
        ("http", _) if port == 80 => (format!("curl http://{addr}/"), "HTTP"),
        ("http", _) => (format!("curl http://{addr}:{port}/"), "HTTP"),
        ("udp-echo", _) | (_, "udp") => (format!("echo hello | nc -u -w1 {addr} {port}"), "UDP echo"),
        _ => (format!("nc {addr} {port}"), name),
    };
    format!("  {command:<40} ({what})")
}

/// The lines after the status: the host side's set-up and one command per
/// service served.
pub fn hints(config: &Config, tap: &str, served: &[Served]) -> Vec<String> {
    let host = match host_side(config) {
        Ok(host) => host,
        Err(why) => return vec![format!("Not reachable: {why}.")],
    };
    let mut lines = vec!["From the Linux side of the TAP (once it has an address on the subnet and is up):".into()];
    let pair = if config.prefix_len == 31 { "      (a /31 pair, RFC 3021)" } else { "" };
    lines.push(format!("  ip addr add {host}/{} dev {tap} && ip link set {tap} up{pair}", config.prefix_len));
    if config.gateway.is_some() {
        lines.push(format!("  (the host side is taken to be the gateway, {host})"));
    }
    lines.push(format!("  ping {}", config.addr));
    lines.extend(served.iter().map(|&s| try_it(config.addr, s)));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use stack::MacAddr;

    fn config(addr: [u8; 4], prefix: u8) -> Config {
        Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::from(addr), prefix)
    }

    #[test]
    fn the_host_side_is_on_the_subnet_and_a_host_address() {
        for (addr, prefix) in [
            ([10, 0, 0, 2], 24),
            ([10, 0, 0, 1], 24),
            ([10, 0, 0, 1], 30),
            ([10, 0, 0, 2], 30),
            ([10, 0, 0, 6], 30),
            ([10, 0, 0, 0], 31),
            ([10, 0, 0, 1], 31),
            ([172, 16, 200, 9], 12),
        ] {
            let c = config(addr, prefix);
            let host = host_side(&c).unwrap();
            assert!(c.is_on_link(host), "{host} on {}/{prefix}", c.addr);
            assert_ne!(host, c.addr);
            if prefix < 31 {
                let bits = u32::from(host) & !c.netmask();
                assert!(bits != 0 && bits != !c.netmask(), "{host} is a host of {}/{prefix}", c.addr);
            }
        }
        assert_eq!(host_side(&config([10, 0, 0, 1], 31)).unwrap(), Ipv4Addr::new(10, 0, 0, 0));
        let mut gw = config([10, 0, 0, 2], 24);
        gw.gateway = Some(Ipv4Addr::new(10, 0, 0, 254));
        assert_eq!(host_side(&gw).unwrap(), Ipv4Addr::new(10, 0, 0, 254));
    }

    #[test]
    fn a_slash_32_says_what_to_do_instead_of_an_address() {
        let c = config([10, 0, 0, 2], 32);
        let why = host_side(&c).unwrap_err();
        assert!(why.contains("--addr 10.0.0.2/24"), "{why}");
        let lines = hints(&c, "tap0", &[("echo", "tcp", 7)]);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains("ip addr add") && !lines[0].contains("ping"), "{lines:?}");
    }

    #[test]
    fn hints_follow_what_is_served() {
        // Issue 14: `--serve echo,udp-echo:5353` still suggested `nc -u ... 7` and curl.
        let c = config([10, 0, 0, 2], 24);
        let text = hints(&c, "tap0", &[("echo", "tcp", 7), ("udp-echo", "udp", 5353)]).join("\n");
        assert!(text.contains("ip addr add 10.0.0.1/24 dev tap0"), "{text}");
        assert!(text.contains("echo hello | nc -u -w1 10.0.0.2 5353 "), "{text}");
        assert!(text.contains("nc 10.0.0.2 7 ") && !text.contains("curl") && !text.contains("-u -w1 10.0.0.2 7"));
        let text = hints(&c, "tap0", &[("http", "tcp", 8080), ("chargen", "tcp", 19)]).join("\n");
        assert!(text.contains("curl http://10.0.0.2:8080/") && text.contains("nc 10.0.0.2 19 | head"), "{text}");
        assert!(!text.contains("nc -u"), "{text}");
    }
}
