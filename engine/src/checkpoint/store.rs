//! The checkpoint store: a small trait, and its OpenDAL implementation.
//!
//! Every read and write of checkpoint data goes through [`CheckpointStore`],
//! so the protocol above it never knows whether files land on a local
//! disk or in S3. Paths are relative to the store location's root.

use crate::plan::store::{Scheme, StoreLocation};

/// Why the store failed; names the operation, the path and the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} `{path}` in {store}: {cause}")]
    Failed {
        op: &'static str,
        path: String,
        store: String,
        cause: String,
    },
    #[error("`{path}` does not exist in {store}")]
    NotFound { path: String, store: String },
    #[error("cannot open the store {store}: {cause}")]
    Open { store: String, cause: String },
}

/// Where checkpoints are kept.
pub trait CheckpointStore: Send + Sync {
    fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError>;
    /// The names of the entries directly in `dir` (folders end with `/`).
    fn list(&self, dir: &str) -> Result<Vec<String>, StoreError>;
    fn delete(&self, path: &str) -> Result<(), StoreError>;
    /// Deletes a folder and everything in it; a missing folder is not an error.
    fn delete_dir(&self, dir: &str) -> Result<(), StoreError>;
    /// The store's location, for messages.
    fn describe(&self) -> String;
}

/// A store reached through OpenDAL's blocking API.
pub struct OpendalStore {
    op: opendal::blocking::Operator,
    location: String,
    /// The blocking operator drives async services on this runtime, which
    /// must outlive it.
    _runtime: tokio::runtime::Runtime,
}

/// How long one store call may go without an answer before it fails, for
/// commands that serve no checkpoint (a run's own calls end by its
/// checkpoint timeout instead): a frozen server must not hang a command.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

impl OpendalStore {
    /// Opens the store to read and write checkpoints; a local folder is
    /// created if missing, and its staging folder swept.
    pub fn open(location: &StoreLocation) -> Result<OpendalStore, StoreError> {
        OpendalStore::open_as(location, true, DEADLINE)
    }

    /// [`OpendalStore::open`], with every call failing after `deadline`
    /// without an answer (a write's upload included, so it must be long
    /// enough for the largest file).
    pub fn open_with_deadline(
        location: &StoreLocation,
        deadline: std::time::Duration,
    ) -> Result<OpendalStore, StoreError> {
        OpendalStore::open_as(location, true, deadline)
    }

    /// Opens the store only to read it: nothing is created or swept, and a
    /// local folder that does not exist is an error (a mistyped location
    /// must not look like an empty store).
    pub fn open_to_read(location: &StoreLocation) -> Result<OpendalStore, StoreError> {
        if location.scheme == Scheme::File && !std::path::Path::new(&location.root).is_dir() {
            return Err(StoreError::Open {
                store: location.to_string(),
                cause: format!("there is no folder `{}`", location.root),
            });
        }
        OpendalStore::open_as(location, false, DEADLINE)
    }

    fn open_as(
        location: &StoreLocation,
        writable: bool,
        deadline: std::time::Duration,
    ) -> Result<OpendalStore, StoreError> {
        let describe = location.to_string();
        let open_error = |cause: String| StoreError::Open {
            store: describe.clone(),
            cause,
        };
        opendal::install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-io")
            .enable_all()
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let op = match location.scheme {
            #[cfg(feature = "store-fs")]
            Scheme::File => {
                // Files are written beside the store and renamed into place,
                // so a run killed mid-write never leaves a torn `_metadata`
                // that looks like a finished checkpoint.
                let mut builder = opendal::services::Fs::default().root(&location.root);
                if writable {
                    let staging = format!("{}/.staging", location.root.trim_end_matches('/'));
                    sweep_staging(std::path::Path::new(&staging));
                    builder = builder.atomic_write_dir(&staging);
                }
                opendal::Operator::new(builder).map_err(|e| open_error(e.to_string()))?
            }
            #[cfg(feature = "store-s3")]
            Scheme::S3 => {
                let mut builder = opendal::services::S3::default()
                    .bucket(&location.authority)
                    .root(&location.root)
                    .disable_ec2_metadata();
                let opts = &location.options;
                if let Some(v) = opts.get("endpoint") {
                    builder = builder.endpoint(v);
                }
                builder = builder.region(opts.get("region").map_or("us-east-1", String::as_str));
                if let (Some(id), Some(secret)) =
                    (opts.get("access_key_id"), opts.get("secret_access_key"))
                {
                    builder = builder
                        .access_key_id(id)
                        .secret_access_key(secret)
                        .disable_config_load();
                }
                opendal::Operator::new(builder).map_err(|e| open_error(e.to_string()))?
            }
            #[cfg(feature = "store-hdfs")]
            Scheme::Hdfs => {
                let builder = opendal::services::Hdfs::default()
                    .name_node(&format!("hdfs://{}", location.authority))
                    .root(&location.root);
                opendal::Operator::new(builder).map_err(|e| open_error(e.to_string()))?
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(open_error(format!(
                    "the `{}` service is not compiled in",
                    other.name()
                )))
            }
        };
        // Bounds calls that open a body and every read or write on it, as
        // well as the rest: nothing waits on a frozen server past it.
        let op = op.layer(
            opendal::layers::TimeoutLayer::default()
                .with_timeout(deadline)
                .with_io_timeout(deadline),
        );
        let op = {
            let _guard = runtime.enter();
            opendal::blocking::Operator::new(op).map_err(|e| open_error(e.to_string()))?
        };
        Ok(OpendalStore {
            op,
            location: describe,
            _runtime: runtime,
        })
    }

    fn failed(&self, op: &'static str, path: &str, e: opendal::Error) -> StoreError {
        if e.kind() == opendal::ErrorKind::NotFound {
            return StoreError::NotFound {
                path: path.to_owned(),
                store: self.location.clone(),
            };
        }
        StoreError::Failed {
            op,
            path: path.to_owned(),
            store: self.location.clone(),
            cause: e.to_string(),
        }
    }
}

/// A file in the staging folder this long untouched belongs to no write in
/// progress: a write is one file's bytes going to a local disk, and
/// touches its file as it goes.
#[cfg(feature = "store-fs")]
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes what runs killed mid-write left in the staging folder. Any
/// command that opens the store sweeps it; other jobs may share the store,
/// so only files no write can still be using go.
#[cfg(feature = "store-fs")]
fn sweep_staging(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_STAGING);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl CheckpointStore for OpendalStore {
    fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.op
            .write(path, bytes)
            .map(|_| ())
            .map_err(|e| self.failed("write", path, e))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        self.op
            .read(path)
            .map(|b| b.to_vec())
            .map_err(|e| self.failed("read", path, e))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let entries = match self.op.list(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.failed("list", dir, e)),
        };
        Ok(entries
            .into_iter()
            .map(|e| e.path().to_owned())
            .filter(|p| p.trim_end_matches('/') != dir.trim_end_matches('/'))
            .filter_map(|p| p.strip_prefix(dir).map(str::to_owned).or(Some(p)))
            .map(|p| {
                p.rsplit_once('/')
                    .filter(|(_, name)| !name.is_empty())
                    .map_or(p.clone(), |(_, name)| name.to_owned())
            })
            .collect())
    }

    fn delete(&self, path: &str) -> Result<(), StoreError> {
        match self.op.delete(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed("delete", path, e)),
        }
    }

    fn delete_dir(&self, dir: &str) -> Result<(), StoreError> {
        match self.op.delete_options(
            dir,
            opendal::options::DeleteOptions {
                recursive: true,
                ..Default::default()
            },
        ) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed("delete", dir, e)),
        }
    }

    fn describe(&self) -> String {
        self.location.clone()
    }
}

/// A store in memory, for tests of what sits above the trait; it can be
/// taken down to fail every call, as an unreachable server does.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryStore {
    files: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    pub down: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemoryStore {
    fn up(&self, op: &'static str, path: &str) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Failed {
                op,
                path: path.to_owned(),
                store: self.describe(),
                cause: "the store is down".into(),
            });
        }
        Ok(())
    }

    /// Every path in the store, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.files.lock().unwrap().keys().cloned().collect()
    }
}

#[cfg(test)]
impl CheckpointStore for MemoryStore {
    fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.up("write", path)?;
        self.files.lock().unwrap().insert(path.to_owned(), bytes);
        Ok(())
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        self.up("read", path)?;
        self.files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                path: path.to_owned(),
                store: self.describe(),
            })
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.up("list", dir)?;
        let files = self.files.lock().unwrap();
        let mut names: Vec<String> = files
            .keys()
            .filter_map(|p| p.strip_prefix(dir))
            .map(|rest| match rest.split_once('/') {
                Some((folder, _)) => format!("{folder}/"),
                None => rest.to_owned(),
            })
            .collect();
        names.dedup();
        Ok(names)
    }

    fn delete(&self, path: &str) -> Result<(), StoreError> {
        self.up("delete", path)?;
        self.files.lock().unwrap().remove(path);
        Ok(())
    }

    fn delete_dir(&self, dir: &str) -> Result<(), StoreError> {
        self.up("delete", dir)?;
        self.files
            .lock()
            .unwrap()
            .retain(|p, _| !p.starts_with(dir));
        Ok(())
    }

    fn describe(&self) -> String {
        "memory://test".into()
    }
}

#[cfg(all(test, feature = "store-fs"))]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn opening_a_file_store_removes_stale_staging_files_only() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join(".staging");
        std::fs::create_dir(&staging).unwrap();
        for name in ["killed-mid-write", "being-written"] {
            std::fs::write(staging.join(name), b"part").unwrap();
        }
        std::fs::File::options()
            .write(true)
            .open(staging.join("killed-mid-write"))
            .unwrap()
            .set_modified(SystemTime::now() - STALE_STAGING - Duration::from_secs(1))
            .unwrap();
        let url = format!("file://{}", root.path().display());
        let location = StoreLocation::parse(&url).unwrap();
        let store = OpendalStore::open(&location).unwrap();
        store.write("job/chk-1/_metadata", b"{}".to_vec()).unwrap();
        assert!(!staging.join("killed-mid-write").exists());
        assert!(staging.join("being-written").exists());
        assert!(root.path().join("job/chk-1/_metadata").exists());
    }
}
