//! One run of a job at a time.
//!
//! Two runs of one job over the same store would interleave checkpoint
//! numbers, overwrite each other's shared files and commit each other's
//! output. So a run holds the job's lease for its whole life:
//!
//! - In a local store (`file://`), an exclusive lock on `<job>/.lock`. The
//!   kernel releases it when the process dies however it dies, and it
//!   holds across processes and containers that share the folder.
//! - In every store, `<job>/_lease`, naming the run that holds it. In a
//!   remote store it is the lock itself: renewed every third of its
//!   [`TTL`]; a lease not renewed within it, or held by a process of this
//!   machine that no longer exists, may be taken over. Object stores give
//!   no compare-and-swap here, so two runs starting within the same moment
//!   could both take it: the lease is read back after a pause to narrow
//!   that window, not to close it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::CheckpointError;
use super::layout;
use super::store::{CheckpointStore, StoreError};

/// How long a lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(15);
/// The largest lease file read back; a real one is a few hundred bytes.
const MAX_BYTES: u64 = 64 << 10;

/// Who holds a job's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run: String,
    /// The machine: its host name and boot id.
    pub host: String,
    pub pid: u32,
    /// Milliseconds since the Unix epoch.
    pub since_ms: u64,
    pub renewed_ms: u64,
    pub ttl_ms: u64,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "run {} (pid {} on {}, since {} UTC)",
            self.run,
            self.pid,
            self.host.split(' ').next().unwrap_or(&self.host),
            super::inspect::utc(self.since_ms)
        )
    }
}

/// Whether a new run may take a lease `existing` holds, at `now_ms`, on
/// machine `host`. Pure: `alive` says whether a process of this machine exists.
pub fn may_take(
    existing: Option<&Holder>,
    now_ms: u64,
    host: &str,
    alive: impl Fn(u32) -> bool,
) -> Result<(), Held> {
    let Some(holder) = existing else {
        return Ok(());
    };
    let expired = now_ms.saturating_sub(holder.renewed_ms) > holder.ttl_ms;
    let dead_here = holder.host == host && !alive(holder.pid);
    if expired || dead_here {
        return Ok(());
    }
    let left = (holder.renewed_ms + holder.ttl_ms).saturating_sub(now_ms);
    Err(Held {
        holder: holder.describe(),
        wait_s: left.div_ceil(1000),
    })
}

/// A lease another live run holds.
#[derive(Debug, thiserror::Error)]
#[error("{holder} holds it; stop that run first (`dataflow stop`), or, if it is gone, wait {wait_s} s for its lease to expire")]
pub struct Held {
    pub holder: String,
    pub wait_s: u64,
}

/// A held lease; released when dropped.
pub struct Lease {
    /// The local lock, held open, and its path.
    lock: Option<(std::fs::File, std::path::PathBuf)>,
    store: Arc<dyn CheckpointStore>,
    path: String,
    run: String,
    /// Stops the renewal thread when dropped.
    _renewing: Option<crossbeam_channel::Sender<()>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This machine: its host name and boot id (pids are only comparable
/// within one boot of one machine).
pub fn host() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{} {}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

fn read_holder(store: &dyn CheckpointStore, path: &str) -> Result<Option<Holder>, StoreError> {
    match store.read(path, MAX_BYTES) {
        // A lease that cannot be read (torn, or from elsewhere) holds nothing.
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes the lease of `job` for `run`, or says who holds it. `local_root`:
/// the store's folder when it is on this machine's file system.
pub fn acquire(
    store: Arc<dyn CheckpointStore>,
    local_root: Option<&std::path::Path>,
    job: &str,
    run: &str,
) -> Result<Lease, CheckpointError> {
    let path = layout::lease(job);
    let refused = |holder: String| CheckpointError::Busy {
        job: job.to_owned(),
        holder,
    };
    let lock = match local_root {
        Some(root) => {
            let lock_path = root.join(layout::lock(job));
            if let Some(dir) = lock_path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Lock {
                    action: "create",
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            match lock_file(&lock_path)? {
                Some(file) => Some((file, lock_path)),
                None => {
                    // The holder writes its lease just after it takes the
                    // lock: a run started in the same instant waits a moment
                    // for it, and never names a dead run's stale lease.
                    let here = host();
                    let deadline = std::time::Instant::now() + Duration::from_secs(2);
                    let holder = loop {
                        let found = read_holder(&*store, &path)
                            .ok()
                            .flatten()
                            .filter(|h| h.host != here || crate::control::registry::alive(h.pid));
                        if found.is_some() || std::time::Instant::now() >= deadline {
                            break found;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    };
                    return Err(refused(match holder {
                        Some(h) => format!(
                            "{} holds its lock; stop that run first (`dataflow stop`)",
                            h.describe()
                        ),
                        None => format!("a process holds `{}`", lock_path.display()),
                    }));
                }
            }
        }
        None => None,
    };
    let here = host();
    if lock.is_none() {
        let existing = read_holder(&*store, &path)?;
        may_take(
            existing.as_ref(),
            now_ms(),
            &here,
            crate::control::registry::alive,
        )
        .map_err(|held| refused(held.to_string()))?;
    }
    let now = now_ms();
    let holder = Holder {
        run: run.to_owned(),
        host: here,
        pid: std::process::id(),
        since_ms: now,
        renewed_ms: now,
        ttl_ms: TTL.as_millis() as u64,
    };
    store
        .write(
            &path,
            serde_json::to_vec_pretty(&holder).unwrap_or_default(),
        )
        .map_err(CheckpointError::LeaseWrite)?;
    let renewing = if lock.is_none() {
        // Another run that read no lease at the same moment wrote its own:
        // after a pause, the last writer holds it.
        std::thread::sleep(Duration::from_millis(300));
        match read_holder(&*store, &path) {
            Ok(Some(h)) if h.run != run => {
                return Err(refused(format!(
                    "{} took it at the same moment",
                    h.describe()
                )))
            }
            _ => {}
        }
        Some(renew(Arc::clone(&store), path.clone(), holder))
    } else {
        None
    };
    Ok(Lease {
        lock,
        store,
        path,
        run: run.to_owned(),
        _renewing: renewing,
    })
}

/// Locks the file at `path`, created if need be; `None` when another
/// process holds it. The file is removed when the lease ends, so a lock
/// taken on a file that was removed meanwhile is retried on the new one.
fn lock_file(path: &std::path::Path) -> Result<Option<std::fs::File>, CheckpointError> {
    use std::os::unix::fs::MetadataExt;
    let failed = |source: std::io::Error| CheckpointError::Lock {
        action: "lock",
        path: path.display().to_string(),
        source,
    };
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        let held = file.metadata().map_err(failed)?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(Some(file)),
            _ => continue,
        }
    }
}

/// Renews the lease every third of its TTL until the sender is dropped.
fn renew(
    store: Arc<dyn CheckpointStore>,
    path: String,
    mut holder: Holder,
) -> crossbeam_channel::Sender<()> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let _ = std::thread::Builder::new()
        .name("lease".into())
        .spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(TTL / 3)
            {
                match read_holder(&*store, &path) {
                    Ok(Some(h)) if h.run != holder.run => {
                        tracing::error!(
                            "the job's lease was taken over by {}: this run no longer holds it",
                            h.describe()
                        );
                        return;
                    }
                    _ => {}
                }
                holder.renewed_ms = now_ms();
                if let Err(e) = store.write(
                    &path,
                    serde_json::to_vec_pretty(&holder).unwrap_or_default(),
                ) {
                    tracing::warn!("cannot renew the job's lease: {e}");
                }
            }
        });
    stop
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Only our own: a run that took an expired lease over keeps its.
        if let Ok(Some(h)) = read_holder(&*self.store, &self.path) {
            if h.run == self.run {
                let _ = self.store.delete(&self.path);
            }
        }
        // Removed while still held (see `lock_file`), then released.
        if let Some((file, path)) = self.lock.take() {
            let _ = std::fs::remove_file(path);
            drop(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Classify;

    fn holder(host: &str, pid: u32, renewed_ms: u64) -> Holder {
        Holder {
            run: "r1".into(),
            host: host.into(),
            pid,
            since_ms: 0,
            renewed_ms,
            ttl_ms: 15_000,
        }
    }

    #[test]
    fn a_lease_is_taken_when_free_expired_or_held_by_a_dead_process_here() {
        let alive = |pid: u32| pid == 7;
        assert!(may_take(None, 100, "h", alive).is_ok());
        let live_here = holder("h", 7, 10_000);
        let err = may_take(Some(&live_here), 20_000, "h", alive)
            .unwrap_err()
            .to_string();
        assert!(err.contains("run r1 (pid 7 on h"), "{err}");
        assert!(err.contains("wait 5 s"), "{err}");
        assert!(
            may_take(Some(&holder("h", 8, 10_000)), 20_000, "h", alive).is_ok(),
            "dead here"
        );
        // Elsewhere, a pid says nothing: only expiry frees it.
        let elsewhere = holder("other", 8, 10_000);
        assert!(may_take(Some(&elsewhere), 25_000, "h", alive).is_err());
        assert!(may_take(Some(&elsewhere), 25_001, "h", alive).is_ok());
    }

    #[test]
    fn a_second_lease_over_a_local_store_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn CheckpointStore> = Arc::new(super::super::store::MemoryStore::default());
        let first = acquire(Arc::clone(&store), Some(dir.path()), "wc", "run-a").unwrap();
        let err = acquire(Arc::clone(&store), Some(dir.path()), "wc", "run-b")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("another run of job `wc` is running: run run-a"),
            "{err}"
        );
        // Another job is another lock.
        drop(acquire(Arc::clone(&store), Some(dir.path()), "other", "run-c").unwrap());
        drop(first);
        assert!(store.read("wc/_lease", MAX_BYTES).is_err(), "released");
        assert!(!dir.path().join("wc/.lock").exists(), "no file left");
        acquire(store, Some(dir.path()), "wc", "run-b").unwrap();
    }

    #[test]
    fn a_remote_lease_is_refused_while_fresh() {
        let store: Arc<dyn CheckpointStore> = Arc::new(super::super::store::MemoryStore::default());
        let first = acquire(Arc::clone(&store), None, "wc", "run-a").unwrap();
        let err = acquire(Arc::clone(&store), None, "wc", "run-b")
            .err()
            .unwrap();
        assert_eq!(
            err.class(),
            crate::error::Class::User,
            "another run is the user's"
        );
        let err = err.to_string();
        assert!(
            err.contains("run run-a") && err.contains("holds it"),
            "{err}"
        );
        drop(first);
        acquire(store, None, "wc", "run-b").unwrap();
    }
}
