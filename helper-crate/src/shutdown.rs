//! Graceful shutdown on Ctrl-C (SIGINT) and SIGTERM.
//!
//! A Kafka client that is killed mid-batch leaves work half done: a producer's
//! queued messages are lost, a consumer's last batch is read again by whoever
//! takes over its partitions. A client that is *asked* to stop should finish the
//! current batch, flush, commit and leave its group. The signal handler only
//! sets a flag ([`install`]); the loops check it between batches ([`requested`]).
//! A consumer asked to stop has done its job (it reads until told otherwise),
//! so `consume` exits 0; a producer stopped before its count has not, so
//! `produce` exits 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM),
//! as a shell reports a killed program.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Installs handlers for SIGINT and SIGTERM that ask for a stop. A second
/// signal still works as usual, because the handler is reset after the first.
pub fn install() {
    extern "C" fn on_signal(signal: libc::c_int) {
        SIGNAL.store(signal, Ordering::SeqCst);
        REQUESTED.store(true, Ordering::SeqCst);
        // Restore the default action: a second Ctrl-C stops at once.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The signal that asked for the stop (`libc::SIGINT` or `libc::SIGTERM`), if one did.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The signal's name, for messages: "Ctrl-C (SIGINT)", "SIGTERM".
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "Ctrl-C (SIGINT)".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        other => format!("signal {other}"),
    }
}
