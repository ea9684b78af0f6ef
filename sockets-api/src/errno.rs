//! Errors as C sees them: Linux's errno numbers and names, and strerror's text, so
//! that a misuse reads the way it would in C ("Bad file descriptor", EBADF, 9);
//! and the errno each of the core's protocol errors maps to ([`tcp_errno`],
//! [`udp_errno`]).

use core::fmt;
use std::io;

/// A Linux errno value. The constants carry Linux's numbers (x86-64 and the other
/// generic-ABI architectures); [`Errno::name`] gives the symbol and `Display` the
/// message `strerror(3)` prints.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// The result of a socket call.
pub type Result<T> = core::result::Result<T, Errno>;

macro_rules! errnos {
    ($( $name:ident = $num:literal, $msg:literal; )*) => {
        impl Errno {
            $( #[doc = $msg] pub const $name: Errno = Errno($num); )*

            /// Every errno this crate knows, in numeric order.
            pub const ALL: &'static [Errno] = &[ $( Errno::$name, )* ];

            /// The symbolic name, like "EBADF" (or "E?" plus the number for one this
            /// crate does not know).
            pub fn name(self) -> &'static str {
                match self.0 { $( $num => stringify!($name), )* _ => "E?" }
            }

            /// The message strerror(3) gives (glibc's wording).
            pub fn message(self) -> &'static str {
                match self.0 { $( $num => $msg, )* _ => "Unknown error" }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    EBADF = 9, "Bad file descriptor";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "Too many open files in system";
    EMFILE = 24, "Too many open files";
    EPIPE = 32, "Broken pipe";
    EDOM = 33, "Numerical argument out of domain";
    ENOSYS = 38, "Function not implemented";
    ENONET = 64, "Machine is not on the network";
    EPROTO = 71, "Protocol error";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EDESTADDRREQ = 89, "Destination address required";
    EMSGSIZE = 90, "Message too long";
    EPROTOTYPE = 91, "Protocol wrong type for socket";
    ENOPROTOOPT = 92, "Protocol not available";
    EPROTONOSUPPORT = 93, "Protocol not supported";
    ESOCKTNOSUPPORT = 94, "Socket type not supported";
    EOPNOTSUPP = 95, "Operation not supported";
    EPFNOSUPPORT = 96, "Protocol family not supported";
    EAFNOSUPPORT = 97, "Address family not supported by protocol";
    EADDRINUSE = 98, "Address already in use";
    EADDRNOTAVAIL = 99, "Cannot assign requested address";
    ENETDOWN = 100, "Network is down";
    ENETUNREACH = 101, "Network is unreachable";
    ENETRESET = 102, "Network dropped connection on reset";
    ECONNABORTED = 103, "Software caused connection abort";
    ECONNRESET = 104, "Connection reset by peer";
    ENOBUFS = 105, "No buffer space available";
    EISCONN = 106, "Transport endpoint is already connected";
    ENOTCONN = 107, "Transport endpoint is not connected";
    ESHUTDOWN = 108, "Cannot send after transport endpoint shutdown";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
    EHOSTDOWN = 112, "Host is down";
    EHOSTUNREACH = 113, "No route to host";
    EALREADY = 114, "Operation already in progress";
    EINPROGRESS = 115, "Operation now in progress";
}

impl Errno {
    /// Another name of EAGAIN, as on Linux.
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;
    /// Another name of EOPNOTSUPP, as on Linux.
    pub const ENOTSUP: Errno = Errno::EOPNOTSUPP;

    /// The number, as C's `errno` would hold it.
    pub fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.0, self.message())
    }
}

impl std::error::Error for Errno {}

/// As an OS error with the same number: its kind (`WouldBlock`, `ConnectionRefused`,
/// ...) and message are those the host's libc gives, as for a real socket.
impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.0)
    }
}

/// The Linux errno a TCP error mirrors (each variant's doc in the core names it).
pub fn tcp_errno(e: stack::tcp::TcpError) -> Errno {
    use stack::tcp::TcpError as E;
    match e {
        E::ConnectionRefused => Errno::ECONNREFUSED,
        E::ConnectionReset => Errno::ECONNRESET,
        E::BrokenPipe => Errno::EPIPE,
        E::NotConnected => Errno::ENOTCONN,
        E::AlreadyConnected => Errno::EISCONN,
        E::AlreadyInProgress => Errno::EALREADY,
        E::TimedOut => Errno::ETIMEDOUT,
        E::AddrInUse => Errno::EADDRINUSE,
        E::ConnectionAborted => Errno::ECONNABORTED,
        E::WouldBlock => Errno::EAGAIN,
        E::InvalidState => Errno::EBADF,
        E::HostUnreachable => Errno::EHOSTUNREACH,
        E::NoBufferSpace => Errno::ENOBUFS,
        E::InvalidArgument => Errno::EINVAL,
    }
}

/// The errno for a UDP error. An implicit bind that finds no port is EAGAIN, as
/// Linux's autobind; bind(2) itself says EADDRINUSE, which its caller maps.
pub fn udp_errno(e: stack::udp::UdpError) -> Errno {
    use stack::udp::UdpError as E;
    match e {
        E::BadHandle => Errno::EBADF,
        E::TooManySockets => Errno::ENFILE,
        E::AlreadyBound | E::InvalidArgument => Errno::EINVAL,
        E::AddrInUse => Errno::EADDRINUSE,
        E::AddrNotAvailable => Errno::EADDRNOTAVAIL,
        E::NoEphemeralPort | E::WouldBlock => Errno::EAGAIN,
        E::MessageTooLong => Errno::EMSGSIZE,
        E::BroadcastDenied | E::Prohibited => Errno::EACCES,
        E::DestAddrRequired => Errno::EDESTADDRREQ,
        E::NetUnreachable => Errno::ENETUNREACH,
        E::HostUnreachable => Errno::EHOSTUNREACH,
        E::ConnectionRefused => Errno::ECONNREFUSED,
        E::ProtocolUnreachable => Errno::ENOPROTOOPT,
        E::HostDown => Errno::EHOSTDOWN,
        E::HostIsolated => Errno::ENONET,
        E::ParameterProblem => Errno::EPROTO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn numbers_names_and_messages_match_the_host_libc() {
        let host = [
            (libc::EPERM, "EPERM"),
            (libc::EBADF, "EBADF"),
            (libc::EAGAIN, "EAGAIN"),
            (libc::EINVAL, "EINVAL"),
            (libc::EMFILE, "EMFILE"),
            (libc::EPIPE, "EPIPE"),
            (libc::ENOTCONN, "ENOTCONN"),
            (libc::EDESTADDRREQ, "EDESTADDRREQ"),
            (libc::EMSGSIZE, "EMSGSIZE"),
            (libc::EACCES, "EACCES"),
            (libc::ECONNREFUSED, "ECONNREFUSED"),
            (libc::EADDRINUSE, "EADDRINUSE"),
            (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
            (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
            (libc::EPROTONOSUPPORT, "EPROTONOSUPPORT"),
            (libc::ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"),
            (libc::EOPNOTSUPP, "EOPNOTSUPP"),
            (libc::ENOPROTOOPT, "ENOPROTOOPT"),
            (libc::EHOSTUNREACH, "EHOSTUNREACH"),
            (libc::ENETUNREACH, "ENETUNREACH"),
            (libc::EINPROGRESS, "EINPROGRESS"),
            (libc::ENONET, "ENONET"),
        ];
        for (n, name) in host {
            assert_eq!(Errno(n).name(), name);
        }
        assert_eq!(Errno::EWOULDBLOCK, Errno(libc::EWOULDBLOCK));
        for e in Errno::ALL {
            // SAFETY: strerror returns a pointer to a NUL-terminated string that stays
            // valid until the next call on this thread; we copy it at once.
            let host = unsafe { CStr::from_ptr(libc::strerror(e.0)) }.to_string_lossy().into_owned();
            assert_eq!(e.message(), host, "{}", e.name());
        }
        assert_eq!(format!("{:?}", Errno::EBADF), "EBADF (9): Bad file descriptor");
        assert_eq!(Errno(9999).name(), "E?");
    }

    #[test]
    fn converts_to_io_error_with_the_right_kind() {
        let e: io::Error = Errno::EAGAIN.into();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(e.raw_os_error(), Some(11));
        let e: io::Error = Errno::ECONNREFUSED.into();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(e.to_string(), "Connection refused (os error 111)");
    }
}
