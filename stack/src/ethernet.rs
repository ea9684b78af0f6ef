//! Ethernet II: which frames are ours, and writing the header of the frames we send.
//! Parsing and writing use etherparse.

use crate::buffer::ETH_HEADER_LEN;
use core::fmt;
use core::str::FromStr;
use etherparse::{EtherType, Ethernet2Header};

/// A 48-bit MAC address.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn is_broadcast(&self) -> bool {
        *self == MacAddr::BROADCAST
    }

    /// Group bit set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A locally administered unicast address made from `seed` (02:xx:...).
    pub fn local_from_seed(seed: u64) -> MacAddr {
        let b = seed.to_be_bytes();
        MacAddr([0x02, b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<MacAddr, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(|c| c == ':' || c == '-');
        for byte in out.iter_mut() {
            let p = parts
                .next()
                .ok_or_else(|| format!("'{s}' is not a MAC address (want six hex bytes like 02:00:00:00:00:01)"))?;
            if p.len() != 2 {
                return Err(format!("'{s}' is not a MAC address (want six hex bytes like 02:00:00:00:00:01)"));
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| format!("'{s}' is not a MAC address: '{p}' is not hex"))?;
        }
        if parts.next().is_some() {
            return Err(format!("'{s}' is not a MAC address (more than six bytes)"));
        }
        Ok(MacAddr(out))
    }
}

/// Writes the Ethernet II header into the first 14 bytes of `frame`.
pub fn write_header(frame: &mut [u8], src: MacAddr, dst: MacAddr, ether_type: EtherType) {
    let h = Ethernet2Header { source: src.0, destination: dst.0, ether_type };
    frame[..ETH_HEADER_LEN].copy_from_slice(&h.to_bytes());
}
