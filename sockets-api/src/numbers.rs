//! How the descriptor table numbers its sockets ([`Numbers`]), sans-IO: by
//! itself, counting from [`FIRST_FD`] (the simulations, packetdrill's host), or
//! with numbers handed in (the runtime's table: kernel descriptors reserved for
//! it, so that a socket's number is never also a pipe's or a file's and poll(2)
//! can take both; see `kernel_fds`). Either way the lowest free number goes
//! first, as Linux numbers file descriptors.
//!
//! # Bounds
//! With numbers handed in, up to [`SPARE_NUMBERS`] unused ones are kept for the
//! next sockets; the rest go back ([`Numbers::take_released`]) for the caller to
//! close. The table's own limit (RLIMIT_NOFILE's) bounds those in use.

use crate::errno::Errno;
use crate::errno::Result;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A socket descriptor: a small integer, as in C.
pub type Fd = i32;

/// The first descriptor handed out (0, 1 and 2 look like stdin, stdout, stderr).
pub const FIRST_FD: Fd = 3;

/// Reserved numbers a table keeps unused for the next sockets (no system call
/// for a socket or an accept while there are some); more are given back.
pub const SPARE_NUMBERS: usize = 64;

/// What a table with numbers handed in says when it has none left for a new
/// socket: the caller reserves more ([`crate::FdTable::add_numbers`]) and tries
/// again. Never reaches an application.
pub const NEED_NUMBER: Errno = Errno(-1);

/// The slot index of a descriptor number, if it can be one.
pub fn index(fd: Fd) -> Option<usize> {
    fd.checked_sub(FIRST_FD).and_then(|i| usize::try_from(i).ok())
}

/// The free numbers of a table, by slot index (descriptor - [`FIRST_FD`]).
#[derive(Debug, Default)]
pub struct Numbers {
    /// Free slots below the table's length, lowest first: O(log n), never a scan.
    free: BinaryHeap<Reverse<usize>>,
    /// With numbers handed in: which slots' numbers are the table's (in use or
    /// spare, the spare ones in `free`); `None` when the table numbers itself.
    reserved: Option<Vec<bool>>,
    /// Numbers handed in beyond [`SPARE_NUMBERS`] spare, for the caller to close.
    released: Vec<Fd>,
}

impl Numbers {
    /// Numbers handed in ([`Numbers::add`]) instead of counting from [`FIRST_FD`].
    pub fn handed_in() -> Numbers {
        Numbers { reserved: Some(Vec::new()), ..Numbers::default() }
    }

    /// The lowest free slot for a table of `len` slots: an index below `len`,
    /// or `len` itself when the table must grow by one (numbering itself).
    /// Errors: [`NEED_NUMBER`] (numbers handed in, none spare).
    pub fn lowest(&mut self, len: usize) -> Result<usize> {
        match self.free.peek() {
            Some(&Reverse(i)) if i < len => Ok(i),
            _ if self.reserved.is_some() => Err(NEED_NUMBER),
            _ => {
                self.free.push(Reverse(len));
                Ok(len)
            }
        }
    }

    /// The slot [`Numbers::lowest`] gave is taken.
    pub fn take_lowest(&mut self) {
        self.free.pop();
    }

    /// Slot `index` is free again: its number becomes spare, or goes back to
    /// the caller when enough are spare already.
    pub fn free(&mut self, index: usize) {
        match self.reserved.as_mut() {
            Some(ours) if self.free.len() >= SPARE_NUMBERS => {
                ours[index] = false;
                self.released.push(index as Fd + FIRST_FD);
            }
            _ => self.free.push(Reverse(index)),
        }
    }

    /// Takes `fds` (each at least [`FIRST_FD`]) as spare numbers; returns the
    /// length the table's slots must have for them. Numbering itself: nothing.
    pub fn add(&mut self, fds: &[Fd]) -> usize {
        let Some(ours) = self.reserved.as_mut() else { return 0 };
        for i in fds.iter().filter_map(|&fd| index(fd)) {
            if i >= ours.len() {
                ours.resize(i + 1, false);
            }
            if !ours[i] {
                ours[i] = true;
                self.free.push(Reverse(i));
            }
        }
        ours.len()
    }

    /// Whether `fd` is one of the table's numbers, open or spare (numbering
    /// itself, every number from [`FIRST_FD`] is).
    pub fn owns(&self, fd: Fd) -> bool {
        index(fd).is_some_and(|i| self.reserved.as_ref().is_none_or(|ours| ours.get(i).copied().unwrap_or(false)))
    }

    /// Whether the numbers are handed in (kernel descriptors reserved for
    /// them) rather than counted by the table itself.
    pub fn reserved_from_kernel(&self) -> bool {
        self.reserved.is_some()
    }

    /// Every number handed in and not given back.
    pub fn all(&self) -> impl Iterator<Item = Fd> + '_ {
        let ours = self.reserved.iter().flatten();
        ours.enumerate().filter(|(_, &o)| o).map(|(i, _)| i as Fd + FIRST_FD)
    }

    /// Whether numbers were given back since the last [`Numbers::take_released`].
    pub fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    /// The numbers given back, for the caller to close.
    pub fn take_released(&mut self) -> Vec<Fd> {
        std::mem::take(&mut self.released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_handed_in_go_lowest_first_and_spares_are_bounded() {
        let mut n = Numbers::handed_in();
        assert_eq!(n.lowest(0), Err(NEED_NUMBER));
        assert_eq!(n.add(&[9, 5, 7, 5, 1]), 7, "slots up to descriptor 9");
        assert!(n.owns(5) && n.owns(9) && !n.owns(6) && !n.owns(1) && !n.owns(-1));
        assert_eq!(n.lowest(7), Ok(2));
        n.take_lowest();
        assert_eq!(n.lowest(7), Ok(4));
        n.free(2);
        assert_eq!(n.lowest(7), Ok(2));
        let many: Vec<Fd> = (10..10 + SPARE_NUMBERS as Fd + 5).collect();
        let len = n.add(&many);
        let mut taken = Vec::new();
        while let Ok(i) = n.lowest(len) {
            n.take_lowest();
            taken.push(i);
        }
        assert_eq!(taken.len(), many.len() + 3);
        taken.iter().for_each(|&i| n.free(i));
        assert!(n.has_released());
        let back = n.take_released();
        assert_eq!(back.len(), taken.len() - SPARE_NUMBERS);
        assert!(back.iter().all(|&fd| !n.owns(fd)));
        assert!(!n.has_released());
        assert_eq!(n.all().count(), SPARE_NUMBERS);
    }

    #[test]
    fn a_table_numbering_itself_owns_every_number_from_the_first() {
        let mut n = Numbers::default();
        assert!(n.owns(FIRST_FD) && n.owns(1000) && !n.owns(2));
        assert_eq!(n.lowest(0), Ok(0));
        n.take_lowest();
        assert_eq!(n.lowest(1), Ok(1));
        assert_eq!(n.add(&[40]), 0);
        assert_eq!(n.all().count(), 0);
    }
}
