//! How the descriptor table numbers its sockets ([`Numbers`]), sans-IO: by
//! itself, counting from [`FIRST_FD`] (the simulations, packetdrill's host), or
//! with numbers handed in (the runtime's table: kernel descriptors reserved for
//! it, so that a socket's number is never also a pipe's or a file's and poll(2)
//! can take both; see `kernel_fds`). Either way the lowest free number goes
//! first, as Linux numbers file descriptors.
//!
//! # Bounds
//! With numbers handed in, up to [`SPARE_NUMBERS`] unused ones are kept for the
//! next sockets, the lowest ones; the rest go back ([`Numbers::take_released`])
//! for the caller to close. The table's own limit (RLIMIT_NOFILE's) bounds those
//! in use.
//!
//! # Beyond the kernel's numbers
//! When the kernel refuses more descriptors (its RLIMIT_NOFILE, which root
//! may not be allowed to raise, or ENFILE, the system's file table full),
//! the runtime numbers further sockets from a range the kernel can never hand
//! out ([`NumberSpace`]: from `/proc/sys/fs/nr_open` up), so ownership is
//! decided by range there. Such numbers hold no kernel descriptor: they are
//! never given back, only kept spare (up to [`SPARE_NUMBERS`] above the highest
//! in use, lowest first as the kernel's).
//!
//! # Storage (issue 13: memory returns after an attack)
//! A table's entries live in [`Slots`]: the kernel's numbers' slots and those
//! beyond them in two vectors, each as long as its highest number in use, so
//! neither is nr_open long nor the kernel's limit long (an ENFILE with few
//! descriptors open costs a few slots, not RLIMIT_NOFILE's). Since the lowest
//! free number goes first, the highest in use follows the count in use; a slot
//! freed at a vector's tail takes the empty ones below it along, and the
//! vectors give their storage back by the rule of `shrink` (O(1) amortised per
//! close). The free numbers are kept ordered ([`BTreeSet`]), the spare ones
//! above those in use trimmed the same way.

use crate::errno::Errno;
use crate::errno::Result;
use crate::shrink::Shrink;
use std::collections::BTreeSet;

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

/// The bit of a slot index that says it is beyond the kernel's numbers: such
/// slots sort after every kernel slot, as their numbers do.
const BEYOND: usize = 1 << (usize::BITS - 1);

/// The slot index of each descriptor number and back: descriptor -
/// [`FIRST_FD`], or, split, the kernel's numbers (below `kernel_end`) so and
/// the numbers from `beyond` (which the kernel never hands out) in slots of
/// their own, counted from 0 (with the [`BEYOND`] bit; see [`Slots`]).
/// Slot order is number order.
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
            Some((_, beyond)) if fd >= beyond => Some(BEYOND | (fd - beyond) as usize),
            Some((end, _)) if fd >= end => None,
            _ => index(fd),
        }
    }

    /// The number of slot `index`.
    pub fn fd(&self, index: usize) -> Fd {
        match self.split {
            Some((_, beyond)) if index & BEYOND != 0 => beyond + (index & !BEYOND) as Fd,
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

/// Entries by slot index ([`NumberSpace::index`]): the kernel's numbers' slots
/// and those beyond in a vector each, grown to an index when it is first
/// used and cut back from the tail as its entries empty ([`Slots::trim`]).
#[derive(Debug)]
pub struct Slots<T> {
    kernel: Vec<T>,
    beyond: Vec<T>,
}

impl<T> Default for Slots<T> {
    fn default() -> Slots<T> {
        Slots { kernel: Vec::new(), beyond: Vec::new() }
    }
}

impl<T: Default> Slots<T> {
    fn half(&mut self, index: usize) -> (&mut Vec<T>, usize) {
        match index & BEYOND {
            0 => (&mut self.kernel, index),
            _ => (&mut self.beyond, index & !BEYOND),
        }
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        match index & BEYOND {
            0 => self.kernel.get(index),
            _ => self.beyond.get(index & !BEYOND),
        }
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (v, i) = self.half(index);
        v.get_mut(i)
    }

    /// The entry at `index`, its vector grown to it (with defaults) if need be.
    pub fn entry(&mut self, index: usize) -> &mut T {
        let (v, i) = self.half(index);
        if i >= v.len() {
            v.resize_with(i + 1, T::default);
        }
        &mut v[i]
    }

    /// Every entry with its index, in number order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        let beyond = self.beyond.iter().enumerate().map(|(i, t)| (i | BEYOND, t));
        self.kernel.iter().enumerate().chain(beyond)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.kernel.iter_mut().chain(self.beyond.iter_mut())
    }

    /// The entry at `index` may have emptied: if it is at its vector's tail,
    /// it goes with the `empty` ones below it, and the vector gives its
    /// storage back by the rule of `shrink`. O(1) amortised (each entry is
    /// cut once for each time it was grown).
    pub fn trim(&mut self, index: usize, empty: impl Fn(&T) -> bool) {
        let (v, i) = self.half(index);
        if i + 1 != v.len() {
            return;
        }
        while v.last().is_some_and(&empty) {
            v.pop();
        }
        v.shrink_if_sparse();
    }

    /// Entries the two vectors have room for.
    pub fn capacity(&self) -> usize {
        self.kernel.capacity() + self.beyond.capacity()
    }
}

/// The free numbers of a table, by slot index (see [`NumberSpace`]).
#[derive(Debug, Default)]
pub struct Numbers {
    /// Free kernel (or, numbering itself, any) slots: spare ones handed in,
    /// or freed below `top`. Lowest first: O(log n), never a scan.
    free: BTreeSet<usize>,
    /// Free slots beyond the kernel's numbers, below `beyond_top`.
    free_beyond: BTreeSet<usize>,
    /// With numbers handed in: which kernel slots' numbers are the table's
    /// (in use or spare, the spare ones in `free`), cut after the highest;
    /// `None` when the table numbers itself.
    reserved: Option<Vec<bool>>,
    /// Numbering itself: the slots below are in use or in `free`.
    top: usize,
    /// Slots beyond the kernel's below this are in use or in `free_beyond`.
    beyond_top: usize,
    /// Numbers handed in beyond [`SPARE_NUMBERS`] spare, for the caller to close.
    released: Vec<Fd>,
    /// Which slot goes with which number.
    space: NumberSpace,
}

impl Numbers {
    /// Numbers handed in ([`Numbers::add`]) instead of counting from [`FIRST_FD`].
    pub fn handed_in() -> Numbers {
        Numbers { reserved: Some(Vec::new()), ..Numbers::default() }
    }

    /// The lowest free slot. Numbering itself, the one after the highest in
    /// use when none below is free. Errors: [`NEED_NUMBER`] (numbers handed
    /// in, none spare).
    pub fn lowest(&self) -> Result<usize> {
        match self.free.first().or(self.free_beyond.first()) {
            Some(&i) => Ok(i),
            None if self.reserved.is_some() => Err(NEED_NUMBER),
            None => Ok(self.top),
        }
    }

    /// The slot [`Numbers::lowest`] gave is taken.
    pub fn take_lowest(&mut self) {
        if self.free.pop_first().or_else(|| self.free_beyond.pop_first()).is_none() && self.reserved.is_none() {
            self.top += 1;
        }
    }

    /// The numbering (set before any number is handed in).
    pub fn space(&self) -> NumberSpace {
        self.space
    }

    /// Numbers handed in are laid out by `space` from now on.
    pub fn set_space(&mut self, space: NumberSpace) {
        self.space = space;
    }

    /// Slot `index` is free again. Numbering itself, the free ones above the
    /// highest in use are forgotten. Handed in, its number becomes spare, and
    /// beyond [`SPARE_NUMBERS`] spare the highest goes back to the caller (a
    /// kernel number) or is forgotten (one beyond the kernel's, when above
    /// every one in use): the lowest stay, so the tail empties.
    pub fn free(&mut self, index: usize) {
        if index & BEYOND != 0 {
            self.free_beyond.insert(index);
            while self.free_beyond.len() > SPARE_NUMBERS
                && self.free_beyond.last() == Some(&(BEYOND | (self.beyond_top - 1)))
            {
                self.free_beyond.pop_last();
                self.beyond_top -= 1;
            }
            return;
        }
        self.free.insert(index);
        let Some(ours) = self.reserved.as_mut() else {
            while self.free.last().is_some_and(|&i| i + 1 == self.top) {
                self.free.pop_last();
                self.top -= 1;
            }
            return;
        };
        if self.free.len() > SPARE_NUMBERS {
            let high = self.free.pop_last().expect("more than SPARE_NUMBERS");
            ours[high] = false;
            self.released.push(self.space.fd(high));
            while ours.last() == Some(&false) {
                ours.pop();
            }
            ours.shrink_if_sparse();
        }
    }

    /// Takes `fds` (each at least [`FIRST_FD`]) as spare numbers. Numbering
    /// itself: nothing.
    pub fn add(&mut self, fds: &[Fd]) {
        let Some(ours) = self.reserved.as_mut() else { return };
        let space = self.space;
        for i in fds.iter().filter(|&&fd| !space.is_beyond(fd)).filter_map(|&fd| space.index(fd)) {
            if i >= ours.len() {
                ours.resize(i + 1, false);
            }
            if !ours[i] {
                ours[i] = true;
                self.free.insert(i);
            }
        }
    }

    /// Takes `n` more numbers from beyond the kernel's as spare. Errors:
    /// EMFILE (not split, or no number left below i32::MAX).
    pub fn add_beyond(&mut self, n: usize) -> Result<()> {
        let (Some(_), Some(beyond)) = (self.reserved.as_ref(), self.space.beyond()) else {
            return Err(Errno::EMFILE);
        };
        if beyond as i64 + (self.beyond_top + n) as i64 > Fd::MAX as i64 {
            return Err(Errno::EMFILE);
        }
        self.free_beyond.extend((self.beyond_top..self.beyond_top + n).map(|i| i | BEYOND));
        self.beyond_top += n;
        Ok(())
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
        ours.enumerate().filter(|(_, &o)| o).map(|(i, _)| self.space.fd(i))
    }

    /// Whether numbers were given back since the last [`Numbers::take_released`].
    pub fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    /// The numbers given back, for the caller to close.
    pub fn take_released(&mut self) -> Vec<Fd> {
        std::mem::take(&mut self.released)
    }

    /// Entries the table's bookkeeping of free and reserved numbers holds
    /// (for tests: it shrinks as the numbers in use do).
    pub fn footprint(&self) -> usize {
        self.free.len() + self.free_beyond.len() + self.reserved.as_ref().map_or(0, Vec::capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shrink::SHRINK_FLOOR;

    /// Takes every free slot, lowest first, as a table would.
    fn take_all(n: &mut Numbers, space: NumberSpace) -> Vec<Fd> {
        let mut taken = Vec::new();
        while let Ok(i) = n.lowest() {
            n.take_lowest();
            taken.push(space.fd(i));
        }
        taken
    }

    #[test]
    fn numbers_handed_in_go_lowest_first_and_spares_are_bounded() {
        let mut n = Numbers::handed_in();
        assert_eq!(n.lowest(), Err(NEED_NUMBER));
        n.add(&[9, 5, 7, 5, 1]);
        assert!(n.owns(5) && n.owns(9) && !n.owns(6) && !n.owns(1) && !n.owns(-1));
        assert_eq!(n.lowest(), Ok(2));
        n.take_lowest();
        assert_eq!(n.lowest(), Ok(4));
        n.free(2);
        assert_eq!(n.lowest(), Ok(2));
        let many: Vec<Fd> = (10..10 + SPARE_NUMBERS as Fd + 5).collect();
        n.add(&many);
        let taken = take_all(&mut n, NumberSpace::default());
        assert_eq!(taken.len(), many.len() + 3);
        taken.iter().for_each(|&fd| n.free(index(fd).unwrap()));
        assert!(n.has_released());
        let back = n.take_released();
        assert_eq!(back.len(), taken.len() - SPARE_NUMBERS);
        assert!(back.iter().all(|&fd| !n.owns(fd)));
        assert!(!n.has_released());
        assert_eq!(n.all().count(), SPARE_NUMBERS);
        let low: Vec<Fd> = taken.iter().copied().filter(|fd| !back.contains(fd)).collect();
        assert!(back.iter().all(|&b| low.iter().all(|&l| l < b)), "the lowest are kept spare: {low:?} {back:?}");
    }

    #[test]
    fn a_table_numbering_itself_owns_every_number_from_the_first() {
        let mut n = Numbers::default();
        assert!(n.owns(FIRST_FD) && n.owns(1000) && !n.owns(2));
        assert_eq!(n.lowest(), Ok(0));
        n.take_lowest();
        assert_eq!(n.lowest(), Ok(1));
        n.add(&[40]);
        assert_eq!(n.all().count(), 0);
    }

    #[test]
    fn freed_numbers_above_the_highest_in_use_are_forgotten() {
        let mut n = Numbers::default();
        let taken = take_first(&mut n, 3000);
        // Freed out of order: the lowest free goes first, and once every
        // number above one in use is free, none of them is kept.
        taken.iter().rev().skip(1).step_by(2).for_each(|&i| n.free(i));
        assert_eq!(n.lowest(), Ok(0));
        assert_eq!(n.footprint(), 1500);
        taken.iter().rev().step_by(2).for_each(|&i| n.free(i));
        assert_eq!((n.lowest(), n.footprint()), (Ok(0), 0), "all free: nothing kept");
    }

    fn take_first(n: &mut Numbers, count: usize) -> Vec<usize> {
        (0..count)
            .map(|_| {
                let i = n.lowest().unwrap();
                n.take_lowest();
                i
            })
            .collect()
    }

    #[test]
    fn numbers_beyond_the_kernels_have_slots_of_their_own_and_are_never_given_back() {
        let space = NumberSpace::split(10, 1000).unwrap();
        assert_eq!((space.index(9), space.index(10), space.index(999)), (Some(6), None, None));
        assert_eq!((space.index(1000), space.fd(BEYOND), space.fd(BEYOND | 1)), (Some(BEYOND), 1000, 1001));
        assert!(space.index(9).unwrap() < space.index(1000).unwrap(), "slot order is number order");
        let mut n = Numbers::handed_in();
        n.set_space(space);
        n.add(&[8, 9, 12, 1005]);
        assert_eq!(n.all().collect::<Vec<_>>(), [8, 9], "a kernel number past the end is refused");
        n.add_beyond(3).unwrap();
        assert!(n.owns(1000) && n.owns(5000) && !n.owns(10) && n.is_kernel(9) && !n.is_kernel(1001));
        let mut taken = take_all(&mut n, space);
        assert_eq!(taken, [8, 9, 1000, 1001, 1002], "the kernel's first");
        n.add_beyond(SPARE_NUMBERS + 5).unwrap();
        taken.extend(take_all(&mut n, space));
        taken.iter().rev().for_each(|&fd| n.free(space.index(fd).unwrap()));
        assert_eq!(n.take_released(), [] as [Fd; 0], "kernel numbers stay spare up to SPARE_NUMBERS");
        assert!(n.owns(1001) && n.lowest() == Ok(space.index(8).unwrap()));
        assert_eq!(n.footprint(), 2 + SPARE_NUMBERS + n.reserved.as_ref().unwrap().capacity(), "spares beyond bounded");
        assert_eq!(Numbers::handed_in().add_beyond(1), Err(Errno::EMFILE), "not split");
        assert_eq!(NumberSpace::split(2, 10), None);
    }

    #[test]
    fn numbers_beyond_a_high_kernel_end_cost_what_is_in_use() {
        // ENFILE (the system's file table full) with few descriptors open:
        // the numbers beyond do not follow a kernel end of a million slots.
        let space = NumberSpace::split(1 << 20, 1 << 21).unwrap();
        let mut n = Numbers::handed_in();
        n.set_space(space);
        n.add(&[3, 4]);
        n.add_beyond(8).unwrap();
        let mut slots: Slots<Option<Fd>> = Slots::default();
        let taken: Vec<usize> = take_first(&mut n, 10);
        for &i in &taken {
            *slots.entry(i) = Some(space.fd(i));
        }
        assert_eq!(taken.iter().map(|&i| space.fd(i)).collect::<Vec<_>>()[..3], [3, 4, 1 << 21]);
        assert!(slots.capacity() < 64, "{} slots for 10 sockets", slots.capacity());
        assert_eq!(slots.iter().filter_map(|(_, s)| *s).collect::<Vec<_>>()[2..4], [1 << 21, (1 << 21) + 1]);
    }

    #[test]
    fn slots_give_their_storage_back_when_their_tail_empties() {
        let mut slots: Slots<Option<u64>> = Slots::default();
        let (kernel, beyond) = (0..5000, (0..5000).map(|i| i | BEYOND));
        for i in kernel.clone().chain(beyond.clone()) {
            *slots.entry(i) = Some(i as u64);
        }
        assert!(slots.capacity() >= 10_000);
        // Freed in any order: the storage goes once the tail is empty.
        for i in kernel.clone().step_by(2).chain(kernel.clone().rev().step_by(2)).chain(beyond.clone().rev()) {
            *slots.get_mut(i).unwrap() = None;
            slots.trim(i, Option::is_none);
        }
        assert!(slots.capacity() <= 2 * SHRINK_FLOOR, "given back: room for {}", slots.capacity());
        *slots.entry(3) = Some(1);
        assert_eq!((slots.get(3), slots.get(BEYOND)), (Some(&Some(1)), None));
    }
}
