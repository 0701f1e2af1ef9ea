//! The checkpoint store: a small trait, and its OpenDAL implementation.
//!
//! Every read and write of checkpoint data goes through [`CheckpointStore`],
//! so the protocol above it never knows whether files land on a local
//! disk or in S3. Paths are relative to the store location's root.

use crate::error::{Class, Classify};
use crate::plan::store::{Scheme, StoreLocation};
use crate::workdir::{self, WorkDir};

/// Why the store failed; names the operation, the path and the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `class` is what the store's answer says of whose failure it is.
    #[error("cannot {op} `{path}` in {store}: {cause}")]
    Failed {
        op: &'static str,
        path: String,
        store: String,
        cause: String,
        class: Class,
    },
    #[error("`{path}` does not exist in {store}")]
    NotFound { path: String, store: String },
    #[error("cannot open the store {store}: {cause}")]
    Open {
        store: String,
        cause: String,
        class: Class,
    },
    /// A local store, opened only to read, whose folder is not there: a
    /// mistyped location more likely than an empty store.
    #[error("cannot open the store {store}: there is no folder `{folder}`")]
    NoFolder { store: String, folder: String },
}

/// Where checkpoints are kept.
pub trait CheckpointStore: Send + Sync {
    fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// The file at `path`, refused when it has more than `max` bytes: a
    /// store may hold anything, and nothing read back exhausts memory.
    fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, StoreError>;
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
    /// The same operator, for writes: a failed one is aborted, which
    /// removes its staged file, and the blocking API cannot abort.
    writer: opendal::Operator,
    location: String,
    /// A local store's folder, in which reads follow no symbolic link.
    local_root: Option<std::path::PathBuf>,
    /// A local store's writes stage their files here; removed with the store.
    _staging: Option<WorkDir>,
    /// The blocking operator drives async services on this runtime, which
    /// must outlive it.
    runtime: tokio::runtime::Runtime,
}

/// Who owns the folders in a local store's `.staging`.
const STAGING_OWNER: &str = "a checkpoint store's staged writes";

/// How long one store call may go without an answer before it fails, for
/// commands that serve no checkpoint (a run's own calls end by its
/// checkpoint timeout instead): a frozen server must not hang a command.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one store call serving a checkpoint may take: no longer than
/// the checkpoint's `timeout`, so the timeout fires whatever the store
/// does, and no shorter than a second, which a healthy store always meets.
pub fn deadline_within(timeout: std::time::Duration) -> std::time::Duration {
    timeout.max(std::time::Duration::from_secs(1))
}

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
            return Err(StoreError::NoFolder {
                store: location.to_string(),
                folder: location.root.clone(),
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
        let open_error = |cause: String, class| StoreError::Open {
            store: describe.clone(),
            cause,
            class,
        };
        let refused = |e: opendal::Error| open_error(e.to_string(), opendal_class(e.kind()));
        opendal::install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-io")
            .enable_all()
            .build()
            .map_err(|e| open_error(e.to_string(), Class::External))?;
        let mut staging = None;
        let op = match location.scheme {
            #[cfg(feature = "store-fs")]
            Scheme::File => {
                // Files are written beside the store and renamed into place,
                // so a run killed mid-write never leaves a torn `_metadata`
                // that looks like a finished checkpoint. Each open store
                // stages in a folder of its own, which a killed run leaves
                // behind for the next open to remove.
                let mut builder = opendal::services::Fs::default().root(&location.root);
                if writable {
                    let root = std::path::Path::new(&location.root).join(".staging");
                    workdir::remove_abandoned(&root, STAGING_OWNER);
                    let folder = WorkDir::create(&root, &staging_name(), STAGING_OWNER)
                        .map_err(|e| open_error(e.to_string(), e.class()))?;
                    builder = builder.atomic_write_dir(&folder.path().to_string_lossy());
                    staging = Some(folder);
                }
                opendal::Operator::new(builder).map_err(refused)?
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
                opendal::Operator::new(builder).map_err(refused)?
            }
            #[cfg(feature = "store-hdfs")]
            Scheme::Hdfs => {
                let builder = opendal::services::Hdfs::default()
                    .name_node(&format!("hdfs://{}", location.authority))
                    .root(&location.root);
                opendal::Operator::new(builder).map_err(refused)?
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(open_error(
                    format!("the `{}` service is not compiled in", other.name()),
                    Class::User,
                ))
            }
        };
        // Bounds calls that open a body and every read or write on it, as
        // well as the rest: nothing waits on a frozen server past it.
        let op = op.layer(
            opendal::layers::TimeoutLayer::default()
                .with_timeout(deadline)
                .with_io_timeout(deadline),
        );
        let writer = op.clone();
        let op = {
            let _guard = runtime.enter();
            opendal::blocking::Operator::new(op).map_err(refused)?
        };
        Ok(OpendalStore {
            op,
            writer,
            location: describe,
            local_root: (location.scheme == Scheme::File)
                .then(|| std::path::PathBuf::from(&location.root)),
            _staging: staging,
            runtime,
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
            class: opendal_class(e.kind()),
            cause: e.to_string(),
        }
    }
}

/// A staging folder's name, unique among the processes sharing the store
/// (which may be in other PID namespaces: the clock tells them apart).
#[cfg(feature = "store-fs")]
fn staging_name() -> String {
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{n}", std::process::id())
}

impl CheckpointStore for OpendalStore {
    fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let written = self.runtime.block_on(async {
            let mut w = self.writer.writer(path).await?;
            let result = match w.write(bytes).await {
                Ok(()) => w.close().await.map(|_| ()),
                Err(e) => Err(e),
            };
            if result.is_err() {
                // A disk that is full stays full no longer than the write.
                let _ = w.abort().await;
            }
            result
        });
        written.map_err(|e| self.failed("write", path, e))
    }

    fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        // What a store holds that no run writes: damage, or someone's doing.
        let refused = |cause: String| StoreError::Failed {
            class: Class::External,
            op: "read",
            path: path.to_owned(),
            store: self.location.clone(),
            cause,
        };
        if let Some(root) = &self.local_root {
            regular_file_within(root, path).map_err(|e| refused(e.to_string()))?;
        }
        let size = self
            .op
            .stat(path)
            .map_err(|e| self.failed("read", path, e))?
            .content_length();
        if size > max {
            return Err(refused(format!(
                "it has {size} bytes, more than the {max} it may have"
            )));
        }
        if size == 0 {
            return Ok(Vec::new());
        }
        let bytes = self
            .op
            .read_options(
                path,
                opendal::options::ReadOptions {
                    range: (0..size).into(),
                    ..Default::default()
                },
            )
            .map_err(|e| self.failed("read", path, e))?;
        Ok(bytes.to_vec())
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

/// Whose failure a store's error is, by its kind: a configuration, a
/// credential or a path the user gave, or the service and the way to it.
fn opendal_class(kind: opendal::ErrorKind) -> Class {
    use opendal::ErrorKind as K;
    match kind {
        K::ConfigInvalid
        | K::PermissionDenied
        | K::IsADirectory
        | K::NotADirectory
        | K::Unsupported => Class::User,
        _ => Class::External,
    }
}

/// Checks that `path` under `root` is a regular file reached through no
/// symbolic link. Anyone who can write to a store could otherwise point a
/// checkpoint's file at a file of this machine (a run reads it and its
/// messages describe it) or at a pipe, which blocks a reader forever.
fn regular_file_within(root: &std::path::Path, path: &str) -> Result<(), NotAFile> {
    let mut at = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(meta) => meta,
            // Missing: the read says so in its own words.
            Err(_) => return Ok(()),
        };
        if meta.file_type().is_symlink() {
            return Err(NotAFile::Link(parts[..=i].join("/")));
        }
        if i + 1 == parts.len() && !meta.is_file() {
            return Err(NotAFile::Special);
        }
    }
    Ok(())
}

/// What a local store's path leads to instead of a file of the store.
#[derive(Debug, thiserror::Error)]
enum NotAFile {
    #[error("`{0}` is a symbolic link, which a store never holds")]
    Link(String),
    #[error("it is not a regular file")]
    Special,
}

/// A store in memory, for tests of what sits above the trait; it can be
/// taken down to fail every call, as an unreachable server does.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryStore {
    files: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    pub down: std::sync::atomic::AtomicBool,
    /// Milliseconds each deletion takes, as on a slow or distant store.
    pub delete_ms: std::sync::atomic::AtomicU64,
    /// Deletions of paths that start with this fail, as a store that
    /// refuses or loses some requests.
    pub refuse_deletes: std::sync::Mutex<Option<String>>,
}

#[cfg(test)]
impl MemoryStore {
    fn refused(&self, op: &'static str, path: &str) -> Result<(), StoreError> {
        let refused = self.refuse_deletes.lock().unwrap();
        if refused.as_deref().is_some_and(|p| path.starts_with(p)) {
            return Err(StoreError::Failed {
                op,
                path: path.to_owned(),
                store: self.describe(),
                cause: "refused".into(),
                class: Class::External,
            });
        }
        Ok(())
    }

    fn up(&self, op: &'static str, path: &str) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Failed {
                op,
                path: path.to_owned(),
                store: self.describe(),
                cause: "the store is down".into(),
                class: Class::External,
            });
        }
        Ok(())
    }

    fn slow_delete(&self) {
        let ms = self.delete_ms.load(std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(ms));
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

    fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        self.up("read", path)?;
        let bytes = self
            .files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                path: path.to_owned(),
                store: self.describe(),
            })?;
        if bytes.len() as u64 > max {
            return Err(StoreError::Failed {
                op: "read",
                path: path.to_owned(),
                store: self.describe(),
                cause: format!("it has {} bytes, more than {max}", bytes.len()),
                class: Class::External,
            });
        }
        Ok(bytes)
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
        self.refused("delete", path)?;
        self.slow_delete();
        self.files.lock().unwrap().remove(path);
        Ok(())
    }

    fn delete_dir(&self, dir: &str) -> Result<(), StoreError> {
        self.up("delete", dir)?;
        self.refused("delete", dir)?;
        self.slow_delete();
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

    #[test]
    fn a_stores_error_is_the_users_when_it_is_about_what_they_configured() {
        use opendal::ErrorKind as K;
        for kind in [K::ConfigInvalid, K::PermissionDenied, K::Unsupported] {
            assert_eq!(opendal_class(kind), Class::User, "{kind}");
        }
        for kind in [K::Unexpected, K::RateLimited, K::ConditionNotMatch] {
            assert_eq!(opendal_class(kind), Class::External, "{kind}");
        }
    }

    #[test]
    fn a_file_store_stages_in_its_own_folder_and_sweeps_only_abandoned_ones() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join(".staging");
        let url = format!("file://{}", root.path().display());
        let location = StoreLocation::parse(&url).unwrap();
        // A killed run's staging folder, and a live one's.
        let killed = staging.join("1-killed");
        std::fs::create_dir_all(&killed).unwrap();
        std::fs::write(
            killed.join(crate::workdir::MARKER),
            format!("dataflow working folder of {STAGING_OWNER}\n"),
        )
        .unwrap();
        std::fs::write(killed.join("half-written"), b"part").unwrap();
        let live = OpendalStore::open(&location).unwrap();
        assert!(!killed.exists());
        let other = OpendalStore::open(&location).unwrap();
        other.write("job/chk-1/_metadata", b"{}".to_vec()).unwrap();
        assert!(root.path().join("job/chk-1/_metadata").exists());
        let folders = |d: &std::path::Path| std::fs::read_dir(d).unwrap().count();
        assert_eq!(folders(&staging), 2, "the live store's folder stays");
        drop(live);
        drop(other);
        assert_eq!(folders(&staging), 0);
    }

    /// Issue 14, item 11: the store followed symbolic links, and a size
    /// mismatch in the error told the size of the file they pointed at.
    #[test]
    fn a_local_store_reads_only_its_own_regular_files_and_within_bounds() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, vec![b's'; 12_345]).unwrap();
        let url = format!("file://{}", root.path().display());
        let store = OpendalStore::open_to_read(&StoreLocation::parse(&url).unwrap()).unwrap();
        let chk = root.path().join("job/chk-1");
        std::fs::create_dir_all(&chk).unwrap();
        std::fs::write(chk.join("ok"), b"12345").unwrap();
        std::os::unix::fs::symlink(&secret, chk.join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("job/chk-2")).unwrap();
        std::fs::copy(&secret, outside.path().join("_metadata")).unwrap();
        let fifo = chk.join("pipe");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());

        assert_eq!(store.read("job/chk-1/ok", 5).unwrap(), b"12345");
        assert_eq!(store.read("job/chk-1/ok", 100).unwrap(), b"12345");
        for (path, max, why) in [
            (
                "job/chk-1/linked",
                1 << 20,
                "`job/chk-1/linked` is a symbolic link",
            ),
            (
                "job/chk-2/_metadata",
                1 << 20,
                "`job/chk-2` is a symbolic link",
            ),
            ("job/chk-1/pipe", 1 << 20, "not a regular file"),
            ("job/chk-1/ok", 4, "it has 5 bytes, more than the 4"),
        ] {
            let e = store.read(path, max).unwrap_err().to_string();
            assert!(e.contains(why) && !e.contains("12345 "), "{path}: {e}");
        }
        assert!(matches!(
            store.read("job/chk-1/none", 10),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn a_failed_write_leaves_no_staged_file() {
        let root = tempfile::tempdir().unwrap();
        let url = format!("file://{}", root.path().display());
        let store = OpendalStore::open(&StoreLocation::parse(&url).unwrap()).unwrap();
        // The rename into place fails: a folder is where the file goes.
        std::fs::create_dir_all(root.path().join("job/chk-1/_metadata")).unwrap();
        assert!(store
            .write("job/chk-1/_metadata", vec![7; 1 << 20])
            .is_err());
        let staged: Vec<_> = walk(&root.path().join(".staging"))
            .into_iter()
            .filter(|p| !p.ends_with(crate::workdir::MARKER))
            .collect();
        assert_eq!(staged, Vec::<std::path::PathBuf>::new());
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                files.extend(walk(&entry.path()));
            } else {
                files.push(entry.path());
            }
        }
        files
    }
}
