//! Cancelling a job: one signal that every instance and every waiting
//! source sees at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// The job's cancellation signal, cheap to check and possible to wait on.
///
/// The flag is read on every batch. For waits, the job holds the sending
/// side of a channel on which nothing is ever sent; dropping it on
/// cancellation disconnects every receiver, which wakes every waiter at once.
#[derive(Clone)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    wake: Receiver<()>,
}

/// The job's side of a [`Cancel`]: cancels every token made from it.
pub struct Canceller {
    flag: Arc<AtomicBool>,
    wake: Mutex<Option<Sender<()>>>,
    token: Cancel,
}

impl Canceller {
    pub fn new() -> Canceller {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let flag = Arc::new(AtomicBool::new(false));
        Canceller {
            token: Cancel {
                flag: Arc::clone(&flag),
                wake: rx,
            },
            flag,
            wake: Mutex::new(Some(tx)),
        }
    }

    pub fn token(&self) -> Cancel {
        self.token.clone()
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
        if let Ok(mut wake) = self.wake.lock() {
            wake.take();
        }
    }
}

impl Default for Canceller {
    fn default() -> Self {
        Canceller::new()
    }
}

impl Cancel {
    /// Waits up to `timeout`; returns true if the job was cancelled.
    pub fn wait(&self, timeout: Duration) -> bool {
        matches!(
            self.wake.recv_timeout(timeout),
            Err(RecvTimeoutError::Disconnected)
        ) || self.is_cancelled()
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}
