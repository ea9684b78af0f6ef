//! A kernel pipe for tests that poll stack sockets beside kernel descriptors.

// Each test that includes this file uses part of it.
#![allow(dead_code)]

/// A kernel pipe, closed when dropped.
pub struct Pipe(pub i32, pub i32);

impl Pipe {
    pub fn new() -> Pipe {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two descriptors, which this value owns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Pipe(fds[0], fds[1])
    }

    pub fn put(&self, b: &[u8]) {
        // SAFETY: writes from a valid buffer to our own pipe.
        assert_eq!(unsafe { libc::write(self.1, b.as_ptr().cast(), b.len()) }, b.len() as isize);
    }

    pub fn take(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a valid buffer from our own pipe.
        assert!(unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) } > 0);
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(self.0);
            libc::close(self.1);
        }
    }
}
