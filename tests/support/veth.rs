//! The Linux baseline's network: two namespaces of our own joined by a veth
//! pair, the kernel's TCP on both ends with no TAP in between. Deleting the
//! namespaces (when the pair is dropped) removes the link.

use tapstack_tools::netns::Netns;

/// A client namespace and a server namespace over a veth pair (`v0` in the
/// client's, `v1` in the server's), each end addressed and up.
pub struct VethPair {
    pub client: Netns,
    pub server: Netns,
}

impl VethPair {
    /// Creates both namespaces (names starting with `prefix`) and the link;
    /// `client_cidr` and `server_cidr` are the ends' addresses (`10.79.0.1/24`).
    pub fn create(prefix: &str, client_cidr: &str, server_cidr: &str) -> Result<VethPair, String> {
        let client = Netns::create(&format!("{prefix}-c"))?;
        let server = Netns::create(&format!("{prefix}-s"))?;
        client.exec_checked(&[
            "ip",
            "link",
            "add",
            "v0",
            "type",
            "veth",
            "peer",
            "name",
            "v1",
            "netns",
            server.name(),
        ])?;
        client.exec_checked(&["ip", "addr", "add", client_cidr, "dev", "v0"])?;
        client.exec_checked(&["ip", "link", "set", "v0", "up"])?;
        server.exec_checked(&["ip", "addr", "add", server_cidr, "dev", "v1"])?;
        server.exec_checked(&["ip", "link", "set", "v1", "up"])?;
        Ok(VethPair { client, server })
    }
}
