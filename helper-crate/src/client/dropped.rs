//! Clients that a notebook can keep in a variable and drop in any later cell.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A client that is destroyed by the code that created it.
///
/// In a notebook, the evcxr kernel builds every cell as its own library, and
/// each carries its own copy of librdkafka with its own global state. A client
/// made in one cell and dropped in another would be destroyed by the second
/// copy, which has never counted it, and librdkafka aborts the kernel
/// (`rd_kafka_global_cnt > 0`). So the client is kept out of Rust's automatic
/// drop ([`ManuallyDrop`]), and dropping the wrapper calls the function pointer
/// taken where the client was made: the creating cell's copy. Elsewhere (a
/// program, a test) there is one copy, and this changes nothing.
pub struct DroppedByCreator<T> {
    client: ManuallyDrop<T>,
    destroy: fn(&mut ManuallyDrop<T>),
    abandoned: AtomicBool,
}

impl<T> DroppedByCreator<T> {
    /// Wraps `client`; the destroy function is the one compiled with this call.
    pub fn new(client: T) -> Self {
        Self::with_destroy(client, destroy_here::<T>)
    }

    /// Wraps `client` with its own way to be destroyed (taken here, like
    /// `new`'s: the creating cell's copy), for a client whose end is more than
    /// a drop.
    pub fn with_destroy(client: T, destroy: fn(&mut ManuallyDrop<T>)) -> Self {
        DroppedByCreator {
            client: ManuallyDrop::new(client),
            destroy,
            abandoned: AtomicBool::new(false),
        }
    }

    /// Leaves the client as it is when dropped, instead of closing it: for a
    /// consumer whose broker is gone, closing waits for a LeaveGroup answer that
    /// cannot come (measured: a `consume` that had reported the lost broker
    /// then hung in its close for as long as it was left). Its memory and
    /// threads are left to the process's exit.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }
}

impl<T: Send + 'static> DroppedByCreator<T> {
    /// Destroys the client now, on a thread of its own, and waits at most
    /// `limit` for that; returns `false` if it was still running then. The
    /// thread is then left to finish, or to end with the process: in a
    /// notebook kernel, that client and its threads stay until the kernel
    /// restarts.
    ///
    /// # Safety
    ///
    /// The wrapper is empty afterwards: the caller must not use it again
    /// (call this from a `Drop` of the value that holds it, and nowhere else).
    pub(crate) unsafe fn destroy_within(&mut self, limit: Duration) -> bool {
        if self.abandoned.swap(true, Ordering::SeqCst) {
            return true;
        }
        // SAFETY: `abandoned` is set, so this wrapper's own drop leaves the
        // client alone, and the caller does not use it again: the closure
        // below is its only owner.
        let client: ManuallyDrop<T> = unsafe { std::ptr::read(&self.client) };
        let destroy = self.destroy;
        let (done, finished) = std::sync::mpsc::channel();
        let close = move || {
            let mut client = client;
            destroy(&mut client);
            let _ = done.send(());
        };
        let spawned = std::thread::Builder::new()
            .name("kafka-lab-close".to_string())
            .spawn(close);
        if spawned.is_err() {
            // No thread to be had: the client was dropped with the closure,
            // undestroyed (ManuallyDrop); nothing is left to wait for.
            return true;
        }
        // A destroy that panicked ends the wait too (the sender is gone).
        !matches!(
            finished.recv_timeout(limit),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        )
    }
}

/// Drops the client.
pub(crate) fn destroy_here<T>(client: &mut ManuallyDrop<T>) {
    // SAFETY: called once, from `Drop`, after which the client is never used.
    unsafe { ManuallyDrop::drop(client) }
}

impl<T> Drop for DroppedByCreator<T> {
    fn drop(&mut self) {
        if !self.abandoned.load(Ordering::SeqCst) {
            (self.destroy)(&mut self.client);
        }
    }
}

impl<T> Deref for DroppedByCreator<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_wrapped_client_is_destroyed_once_when_its_wrapper_drops() {
        static DESTROYED: AtomicUsize = AtomicUsize::new(0);
        struct Client;
        impl Drop for Client {
            fn drop(&mut self) {
                DESTROYED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wrapped = DroppedByCreator::new(Client);
        assert_eq!(DESTROYED.load(Ordering::SeqCst), 0);
        drop(wrapped);
        assert_eq!(DESTROYED.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_destroy_that_hangs_is_waited_for_only_up_to_the_limit() {
        static DESTROYED: AtomicUsize = AtomicUsize::new(0);
        /// A client whose destruction takes `.0`.
        struct Client(Duration);
        impl Drop for Client {
            fn drop(&mut self) {
                std::thread::sleep(self.0);
                DESTROYED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut quick = DroppedByCreator::new(Client(Duration::ZERO));
        // SAFETY: neither wrapper is used after its destroy_within.
        assert!(unsafe { quick.destroy_within(Duration::from_secs(5)) });
        assert_eq!(DESTROYED.load(Ordering::SeqCst), 1);
        drop(quick);
        assert_eq!(DESTROYED.load(Ordering::SeqCst), 1, "destroyed once");

        let mut slow = DroppedByCreator::new(Client(Duration::from_millis(1500)));
        let started = std::time::Instant::now();
        assert!(!unsafe { slow.destroy_within(Duration::from_millis(100)) });
        assert!(started.elapsed() < Duration::from_millis(1000));
        drop(slow);
        // The destroy goes on by itself, once.
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(DESTROYED.load(Ordering::SeqCst), 2);
    }
}
