//! Sequence-number arithmetic (RFC 9293 section 3.4): sequence numbers live in a
//! space of 2^32 and all comparisons are done modulo 2^32. `a < b` means that `b`
//! lies less than 2^31 ahead of `a`, which is how RFC 9293 section 3.4's "=<"
//! comparisons are read in every implementation.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgment) number.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct Seq(pub u32);

impl Seq {
    /// The later of two sequence numbers (modulo 2^32).
    pub fn max(self, other: Seq) -> Seq {
        if self < other {
            other
        } else {
            self
        }
    }

    /// The earlier of two sequence numbers (modulo 2^32).
    pub fn min(self, other: Seq) -> Seq {
        if self < other {
            self
        } else {
            other
        }
    }

    /// Whether `lo <= self < hi` (modulo 2^32), the form of RFC 9293's window tests.
    pub fn in_range(self, lo: Seq, hi: Seq) -> bool {
        lo <= self && self < hi
    }

    /// Whether `lo <= self <= hi`.
    pub fn in_range_inclusive(self, lo: Seq, hi: Seq) -> bool {
        lo <= self && self <= hi
    }

    /// How far `self` lies ahead of `earlier`, or 0 if it does not.
    pub fn since(self, earlier: Seq) -> u32 {
        let d = self.0.wrapping_sub(earlier.0) as i32;
        if d > 0 {
            d as u32
        } else {
            0
        }
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for Seq {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

/// The signed distance `self - other`; callers use it where `self >= other` is known.
impl Sub<Seq> for Seq {
    type Output = i32;
    fn sub(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
}

impl PartialOrd for Seq {
    /// Modular comparison: a partial order only in that it is not transitive over
    /// distances of 2^31 or more, which never occur inside one window.
    fn partial_cmp(&self, other: &Seq) -> Option<Ordering> {
        Some((self.0.wrapping_sub(other.0) as i32).cmp(&0))
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        let a = Seq(u32::MAX - 10);
        let b = a + 20; // wrapped past zero
        assert_eq!(b, Seq(9));
        assert!(a < b);
        assert!(b > a);
        assert!(a >= a);
        assert_eq!(b.partial_cmp(&a), Some(Ordering::Greater));
        assert_eq!(b - a, 20);
        assert_eq!(a - b, -20);
        assert_eq!(b.since(a), 20);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!(Seq(5).in_range(a, b));
        assert!(!b.in_range(a, b));
        assert!(b.in_range_inclusive(a, b));
        assert!(!(a - 1).in_range_inclusive(a, b));
    }

    #[test]
    fn half_space_boundary() {
        let a = Seq(0);
        assert!(a + 0x7fff_ffff > a);
        // Exactly 2^31 apart reads as "behind": the ambiguity RFC 9293 avoids by
        // keeping windows below 2^30.
        assert!(a + 0x8000_0000 < a);
        assert_eq!(Seq(1) - 1, Seq(0));
        assert_eq!(Seq(0) - 1, Seq(u32::MAX));
    }
}
