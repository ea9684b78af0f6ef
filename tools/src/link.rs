//! Link layers of captured frames: where the IP packet starts in a frame of each
//! link type a capture may declare (the LINKTYPE_ numbers of pcap and pcapng,
//! <https://www.tcpdump.org/linktypes.html>). Shared by whatever reads captures
//! of other programs: the inspector uses it for every frame; the replay command
//! (scenario/) could use [`describe`] to name a link type it cannot replay.

/// What a frame carries, once its link header is stripped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Network {
    Ipv4,
    Ipv6,
    /// ARP, LLDP, ...: anything but IP.
    Other,
}

/// The link types read.
pub const ETHERNET: u32 = 1;
/// BSD loopback: a 4-byte address family in the capturing host's byte order.
pub const NULL: u32 = 0;
/// OpenBSD loopback: the address family in network byte order.
pub const LOOP: u32 = 108;
/// Raw IP, version in the first nibble (101; 12 and 14 on some systems).
pub const RAW: u32 = 101;
pub const IPV4: u32 = 228;
pub const IPV6: u32 = 229;
/// Linux cooked capture v1 (`tcpdump -i any -y LINUX_SLL`): 16-byte header.
pub const LINUX_SLL: u32 = 113;
/// Linux cooked capture v2 (`tcpdump -i any`): 20-byte header.
pub const LINUX_SLL2: u32 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// The link type's name, as tcpdump writes it.
pub fn describe(link: u32) -> String {
    let name = match link {
        ETHERNET => "EN10MB (Ethernet)",
        NULL => "NULL (BSD loopback)",
        LOOP => "LOOP (OpenBSD loopback)",
        RAW | 12 | 14 => "RAW (raw IP)",
        IPV4 => "IPV4 (raw IPv4)",
        IPV6 => "IPV6 (raw IPv6)",
        LINUX_SLL => "LINUX_SLL (Linux cooked v1)",
        LINUX_SLL2 => "LINUX_SLL2 (Linux cooked v2)",
        other => return format!("link type {other}"),
    };
    name.to_string()
}

/// Whether [`network`] can read frames of this link type.
pub fn is_supported(link: u32) -> bool {
    matches!(link, ETHERNET | NULL | LOOP | RAW | 12 | 14 | IPV4 | IPV6 | LINUX_SLL | LINUX_SLL2)
}

/// What the frame carries and the offset at which it starts; `Err` says why the
/// link header cannot be read (an unknown link type, a frame cut inside it).
pub fn network(link: u32, frame: &[u8]) -> Result<(Network, usize), String> {
    let short = || format!("cut short inside its {} header ({} bytes)", describe(link), frame.len());
    match link {
        ETHERNET => {
            let mut at = 12;
            loop {
                let t = be16(frame, at).ok_or_else(short)?;
                if VLAN_TAGS.contains(&t) {
                    at += 4;
                    continue;
                }
                return Ok((by_ethertype(t), at + 2));
            }
        }
        NULL | LOOP => {
            let raw: [u8; 4] = frame.get(..4).ok_or_else(short)?.try_into().expect("4 bytes");
            // NULL is in the capturing host's byte order, which the file does not
            // say; the families are small numbers, so whichever order reads small is it.
            let family = if link == LOOP || u32::from_le_bytes(raw) > 0xffff {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            };
            // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
            let net = match family {
                2 => Network::Ipv4,
                24 | 28 | 30 => Network::Ipv6,
                _ => Network::Other,
            };
            Ok((net, 4))
        }
        RAW | 12 | 14 | IPV4 | IPV6 => {
            let net = match frame.first().ok_or_else(short)? >> 4 {
                4 => Network::Ipv4,
                6 => Network::Ipv6,
                _ => Network::Other,
            };
            Ok((net, 0))
        }
        LINUX_SLL => Ok((by_ethertype(be16(frame, 14).ok_or_else(short)?), 16)),
        LINUX_SLL2 => Ok((by_ethertype(be16(frame, 0).ok_or_else(short)?), 20)),
        other => Err(format!("{} is not a link type the inspector reads", describe(other))),
    }
}

fn by_ethertype(t: u16) -> Network {
    match t {
        ETHERTYPE_IPV4 => Network::Ipv4,
        ETHERTYPE_IPV6 => Network::Ipv6,
        _ => Network::Other,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_link_type_finds_the_ip_packet() {
        let mut eth = vec![0u8; 12];
        eth.extend([0x08, 0x00, 0x45]);
        assert_eq!(network(ETHERNET, &eth), Ok((Network::Ipv4, 14)));
        let mut vlan = vec![0u8; 12];
        vlan.extend([0x81, 0x00, 0, 5, 0x86, 0xdd, 0x60]);
        assert_eq!(network(ETHERNET, &vlan), Ok((Network::Ipv6, 18)));
        assert_eq!(network(NULL, &[2, 0, 0, 0, 0x45]), Ok((Network::Ipv4, 4)));
        assert_eq!(network(NULL, &[0, 0, 0, 2, 0x45]), Ok((Network::Ipv4, 4)), "a big-endian host's NULL");
        assert_eq!(network(LOOP, &[0, 0, 0, 24, 0x60]), Ok((Network::Ipv6, 4)));
        assert_eq!(network(RAW, &[0x45, 0]), Ok((Network::Ipv4, 0)));
        assert_eq!(network(IPV6, &[0x60, 0]), Ok((Network::Ipv6, 0)));
        let mut sll = vec![0u8; 14];
        sll.extend([0x08, 0x00]);
        assert_eq!(network(LINUX_SLL, &sll), Ok((Network::Ipv4, 16)));
        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend([0u8; 18]);
        assert_eq!(network(LINUX_SLL2, &sll2), Ok((Network::Ipv6, 20)));
        let mut arp = vec![0u8; 12];
        arp.extend([0x08, 0x06]);
        assert_eq!(network(ETHERNET, &arp), Ok((Network::Other, 14)));
    }

    #[test]
    fn unknown_types_and_short_frames_say_why() {
        assert!(network(147, &[0; 40]).unwrap_err().contains("link type 147"));
        assert!(network(ETHERNET, &[0; 10]).unwrap_err().contains("cut short"));
        assert!(network(LINUX_SLL2, &[]).unwrap_err().contains("Linux cooked v2"));
        assert!(is_supported(LINUX_SLL2) && !is_supported(147));
    }
}
