//! Handles on sockets: a slot of the table and its generation.

/// A handle on a connection or listener. Handles are generational: once a
/// socket is closed and its slot reused, the old handle is refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(super) index: u32,
    /// Incremented each time the slot is reused.
    pub(super) gen: u32,
}

impl ConnId {
    #[cfg(test)]
    pub(crate) fn new(index: u32, gen: u32) -> ConnId {
        ConnId { index, gen }
    }

    pub fn index(self) -> u32 {
        self.index
    }
}

impl core::fmt::Display for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "tcp#{}.{}", self.index, self.gen)
    }
}
