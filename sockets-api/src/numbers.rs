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
//!
//! # Beyond the kernel's numbers
//! When the kernel refuses more descriptors (its RLIMIT_NOFILE, which root
//! may not be allowed to raise), the runtime numbers further sockets from a
//! range the kernel can never hand out ([`NumberSpace`]: from
//! `/proc/sys/fs/nr_open` up), so ownership is decided by range there. Such
//! numbers hold no kernel descriptor: they are never given back, only kept
//! spare (at most as many as were open at once, so the table's limit bounds
//! them). Their slots follow the kernel's directly, so the table and the
//! waiter lists stay as long as the sockets ever open, not nr_open long.

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

/// The slot index of each descriptor number and back: descriptor -
/// [`FIRST_FD`], or, split, the kernel's numbers (below `kernel_end`) so and
/// the numbers from `beyond` (which the kernel never hands out) in the slots
/// right after the kernel's.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberSpace {
    /// `(kernel_end, beyond)`, `FIRST_FD <= kernel_end <= beyond`.
    split: Option<(Fd, Fd)>,
}

impl NumberSpace {
    /// Kernel numbers below `kernel_end`, ours from `beyond` up (nr_open: the
    /// kernel cannot give a descriptor at or above it). None if out of order.
    pub fn split(kernel_end: Fd, beyond: Fd) -> Option<NumberSpace> {
        (FIRST_FD <= kernel_end && kernel_end <= beyond).then_some(NumberSpace { split: Some((kernel_end, beyond)) })
    }

    /// The slot index of `fd`, if it can be one.
    pub fn index(&self, fd: Fd) -> Option<usize> {
        match self.split {
            Some((end, beyond)) if fd >= beyond => index(end).map(|i| i + (fd - beyond) as usize),
            Some((end, _)) if fd >= end => None,
            _ => index(fd),
        }
    }

    /// The number of slot `index`.
    pub fn fd(&self, index: usize) -> Fd {
        match self.split {
            Some((end, beyond)) if index + FIRST_FD as usize >= end as usize => {
                beyond + (index + FIRST_FD as usize - end as usize) as Fd
            }
            _ => index as Fd + FIRST_FD,
        }
    }

    /// Whether `fd` is in the range the kernel never hands out.
    pub fn is_beyond(&self, fd: Fd) -> bool {
        self.split.is_some_and(|(_, beyond)| fd >= beyond)
    }

    /// The kernel's numbers' end, if split.
    pub fn kernel_end(&self) -> Option<Fd> {
        self.split.map(|(end, _)| end)
    }

    /// The first number beyond the kernel's, if split.
    pub fn beyond(&self) -> Option<Fd> {
        self.split.map(|(_, beyond)| beyond)
    }
}

/// The free numbers of a table, by slot index (see [`NumberSpace`]).
#[derive(Debug, Default)]
pub struct Numbers {
    /// Free slots below the table's length, lowest first: O(log n), never a scan.
    free: BinaryHeap<Reverse<usize>>,
    /// With numbers handed in: which slots' numbers are the table's (in use or
    /// spare, the spare ones in `free`); `None` when the table numbers itself.
    reserved: Option<Vec<bool>>,
    /// Numbers handed in beyond [`SPARE_NUMBERS`] spare, for the caller to close.
    released: Vec<Fd>,
    /// Which slot goes with which number.
    space: NumberSpace,
    /// Numbers taken from beyond the kernel's so far.
    beyond: usize,
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

    /// The numbering (set before any number is handed in).
    pub fn space(&self) -> NumberSpace {
        self.space
    }

    /// Numbers handed in are laid out by `space` from now on.
    pub fn set_space(&mut self, space: NumberSpace) {
        self.space = space;
    }

    /// Slot `index` is free again: its number becomes spare, or goes back to
    /// the caller when enough are spare already (never one beyond the kernel's).
    pub fn free(&mut self, index: usize) {
        let fd = self.space.fd(index);
        match self.reserved.as_mut() {
            Some(ours) if self.free.len() >= SPARE_NUMBERS && !self.space.is_beyond(fd) => {
                ours[index] = false;
                self.released.push(fd);
            }
            _ => self.free.push(Reverse(index)),
        }
    }

    /// Takes `fds` (each at least [`FIRST_FD`]) as spare numbers; returns the
    /// length the table's slots must have for them. Numbering itself: nothing.
    pub fn add(&mut self, fds: &[Fd]) -> usize {
        let Some(ours) = self.reserved.as_mut() else { return 0 };
        let space = self.space;
        for i in fds.iter().filter(|&&fd| !space.is_beyond(fd)).filter_map(|&fd| space.index(fd)) {
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

    /// Takes `n` more numbers from beyond the kernel's as spare; returns the
    /// length the table's slots must have for them. Errors: EMFILE (not split,
    /// or no number left below i32::MAX).
    pub fn add_beyond(&mut self, n: usize) -> Result<usize> {
        let (Some(ours), Some(end), Some(beyond)) =
            (self.reserved.as_mut(), self.space.kernel_end(), self.space.beyond())
        else {
            return Err(Errno::EMFILE);
        };
        if beyond as i64 + (self.beyond + n) as i64 > Fd::MAX as i64 {
            return Err(Errno::EMFILE);
        }
        let first = index(end).expect("split checks it") + self.beyond;
        if ours.len() < first + n {
            ours.resize(first + n, false);
        }
        for i in first..first + n {
            ours[i] = true;
            self.free.push(Reverse(i));
        }
        self.beyond += n;
        Ok(ours.len())
    }

    /// Whether `fd` is one of the table's numbers, open or spare (numbering
    /// itself, every number from [`FIRST_FD`] is; split, every number beyond
    /// the kernel's is).
    pub fn owns(&self, fd: Fd) -> bool {
        if self.reserved.is_some() && self.space.is_beyond(fd) {
            return true;
        }
        let ours = |i: usize| self.reserved.as_ref().is_none_or(|ours| ours.get(i).copied().unwrap_or(false));
        self.space.index(fd).is_some_and(ours)
    }

    /// Whether `fd` is a number the table holds a kernel descriptor for (one a
    /// program's own epoll or poll(2) can take).
    pub fn is_kernel(&self, fd: Fd) -> bool {
        self.reserved.is_some() && !self.space.is_beyond(fd) && self.owns(fd)
    }

    /// Whether the numbers are handed in (kernel descriptors reserved for
    /// them) rather than counted by the table itself.
    pub fn reserved_from_kernel(&self) -> bool {
        self.reserved.is_some()
    }

    /// Every kernel number handed in and not given back (for the caller to close).
    pub fn all(&self) -> impl Iterator<Item = Fd> + '_ {
        let ours = self.reserved.iter().flatten();
        let kernel = ours.enumerate().filter(|(_, &o)| o).map(|(i, _)| self.space.fd(i));
        kernel.filter(|&fd| !self.space.is_beyond(fd))
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

    #[test]
    fn numbers_beyond_the_kernels_follow_its_slots_and_are_never_given_back() {
        let space = NumberSpace::split(10, 1000).unwrap();
        assert_eq!((space.index(9), space.index(10), space.index(999)), (Some(6), None, None));
        assert_eq!((space.index(1000), space.fd(7), space.fd(8)), (Some(7), 1000, 1001));
        let mut n = Numbers::handed_in();
        n.set_space(space);
        assert_eq!(n.add(&[8, 9, 12, 1005]), 7, "a kernel number past the end is refused");
        assert_eq!(n.add_beyond(3), Ok(10));
        assert!(n.owns(1000) && n.owns(5000) && !n.owns(10) && n.is_kernel(9) && !n.is_kernel(1001));
        let mut taken = Vec::new();
        while let Ok(i) = n.lowest(10) {
            n.take_lowest();
            taken.push(space.fd(i));
        }
        assert_eq!(taken, [8, 9, 1000, 1001, 1002], "the kernel's first");
        assert_eq!(n.all().collect::<Vec<_>>(), [8, 9]);
        let len = n.add_beyond(SPARE_NUMBERS + 5).unwrap();
        while let Ok(i) = n.lowest(len) {
            n.take_lowest();
            taken.push(space.fd(i));
        }
        taken.iter().rev().for_each(|&fd| n.free(space.index(fd).unwrap()));
        assert_eq!(n.take_released(), [9, 8], "only kernel numbers go back to be closed");
        assert!(n.owns(1001) && n.lowest(len) == Ok(space.index(1000).unwrap()));
        assert_eq!(Numbers::handed_in().add_beyond(1), Err(Errno::EMFILE), "not split");
        assert_eq!(NumberSpace::split(2, 10), None);
    }
}
