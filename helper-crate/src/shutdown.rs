//! Graceful shutdown on Ctrl-C (SIGINT) and SIGTERM.
//!
//! A Kafka client that is killed mid-batch leaves work half done: a producer's
//! queued messages are lost, a consumer's last batch is read again by whoever
//! takes over its partitions. A client that is *asked* to stop should finish the
//! current batch, flush, commit and leave its group. The signal handler only
//! sets a flag ([`install`]); the loops check it between batches ([`requested`]).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs handlers for SIGINT and SIGTERM that ask for a stop. A second
/// signal still works as usual, because the handler is reset after the first.
pub fn install() {
    extern "C" fn on_signal(signal: libc::c_int) {
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
