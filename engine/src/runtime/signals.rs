//! Ctrl-C and SIGTERM, delivered as messages to the supervisor.
//!
//! The first signal asks for a clean stop: the supervisor cancels the job,
//! which normally takes milliseconds. Nothing may make the user wait for
//! more than [`GRACE`]: a store that does not answer can hold a thread in
//! a call until that call's deadline, so past it the process ends as a
//! SIGKILL would end it, which loses nothing (the next restore commits what
//! the last checkpoint covers). A second signal ends it at once.

use std::time::Duration;

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long a clean stop may take after the first signal.
pub const GRACE: Duration = Duration::from_millis(1500);

/// A channel that receives the first SIGINT or SIGTERM of the process, and
/// the watchdog described above. Call it once per process. If the handlers
/// cannot be installed, the default behaviour (exit) stays.
pub fn listen() -> Receiver<i32> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    if let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) {
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut first = true;
                for sig in signals.forever() {
                    if !first {
                        // The user does not want to wait for a clean stop.
                        std::process::exit(128 + sig);
                    }
                    first = false;
                    let _ = tx.try_send(sig);
                    let _ = std::thread::Builder::new()
                        .name("stopping".into())
                        .spawn(move || {
                            std::thread::sleep(GRACE);
                            tracing::warn!(
                                "the job did not stop within {} ms (a store that does not answer?): ending now; the next restore commits what the last checkpoint covers",
                                GRACE.as_millis()
                            );
                            std::process::exit(128 + sig);
                        });
                }
            });
    }
    rx
}
