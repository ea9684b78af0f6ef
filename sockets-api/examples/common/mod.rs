//! What both examples need before their first socket call: a stack on a TAP.
//! (Not part of the C versions, where the kernel's stack is simply there.)

use sockets_api::Runtime;

/// Starts tapstack at `cidr` ("10.0.0.2/24") on the TAP `tap`, or exits with
/// the reason ([`Runtime::on_tap`]: a MAC made from the address, a seed from the OS),
/// stopping cleanly on SIGINT and SIGTERM ([`Runtime::stop_on_signals`]).
pub fn start(tap: &str, cidr: &str) -> Runtime {
    match Runtime::on_tap(tap, cidr) {
        // Killed by SIGTERM or Ctrl-C, the program still closes its connections
        // (FIN or RST), as the kernel closes a C program's sockets.
        Ok(rt) => match rt.stop_on_signals() {
            Ok(()) => rt,
            Err(e) => {
                eprintln!("cannot handle SIGINT and SIGTERM: {e}");
                std::process::exit(1);
            }
        },
        Err(e) => {
            eprintln!("cannot start tapstack on {tap} at {cidr}: {e}");
            std::process::exit(1);
        }
    }
}
