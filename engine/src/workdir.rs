//! Working folders in places shared with others, and the sweep of the
//! abandoned ones.
//!
//! A run works in folders it creates inside places it does not own: its
//! state under `state.dir`, its half-written checkpoint files under the
//! store's staging folder. Those places may be shared with other jobs,
//! with the user's own folders, with runs in other containers (other PID
//! namespaces) on the same volume. So a folder is only ever removed when
//! it is provably this engine's and provably abandoned: it holds a
//! [`MARKER`] file naming its owner, and no process holds the lock on that
//! marker. A run holds the lock for its whole life and the kernel releases
//! it however the process dies, across PID namespaces, which a PID check
//! cannot do.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file that makes a folder a working folder.
pub const MARKER: &str = "DATAFLOW_RUN";

/// The marker's first line, which names the owner (`job report`); a folder
/// whose marker says anything else is not the owner's to remove.
fn heading(owner: &str) -> String {
    format!("dataflow working folder of {owner}")
}

/// Whether `text`, read from a marker, marks a working folder of `owner`.
pub fn marks(text: &str, owner: &str) -> bool {
    text.lines().next() == Some(heading(owner).as_str())
}

/// A working folder: created fresh, locked while its process lives, and
/// removed when dropped.
pub struct WorkDir {
    dir: PathBuf,
    /// The marker, held locked.
    _lock: File,
}

impl WorkDir {
    /// Creates `<root>/<name>` for `owner`, with its marker, locked. A
    /// folder of that name that exists already is refused, never emptied.
    pub fn create(root: &Path, name: &str, owner: &str) -> Result<WorkDir, WorkDirError> {
        let dir = root.join(name);
        let failed = |action: &'static str, path: &Path, source: std::io::Error| WorkDirError {
            action,
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| failed("create", root, e))?;
        std::fs::create_dir(&dir).map_err(|e| failed("create", &dir, e))?;
        let marker = dir.join(MARKER);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .map_err(|e| failed("create", &marker, e))
            .and_then(|mut lock| {
                let text = format!("{}\npid {}\n", heading(owner), std::process::id());
                lock.write_all(text.as_bytes())
                    .map_err(|e| failed("write", &marker, e))?;
                lock.try_lock()
                    .map_err(|e| failed("lock", &marker, e.into()))?;
                Ok(lock)
            });
        match created {
            Ok(lock) => Ok(WorkDir { dir, _lock: lock }),
            Err(e) => {
                // The folder is this call's own: nothing of anyone else's is in it.
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// A working folder that cannot be made: the disk's or the file system's failure.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`: {source}", path.display())]
pub struct WorkDirError {
    pub action: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl crate::error::Classify for WorkDirError {
    fn class(&self) -> crate::error::Class {
        crate::error::io_class(&self.source)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the working folders of `owner` in `root` whose process ended
/// without removing them (killed processes cannot); touches nothing else.
pub fn remove_abandoned(root: &Path, owner: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let marker = entry.path().join(MARKER);
        let Ok(text) = std::fs::read_to_string(&marker) else {
            continue;
        };
        if !marks(&text, owner) {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(&marker) else {
            continue;
        };
        // Held by a live process, here or in another container: not abandoned.
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_its_owner_exactly() {
        let text = format!("{}\npid 7\n", heading("job report"));
        assert!(marks(&text, "job report"));
        assert!(!marks(&text, "job repor"));
        assert!(!marks(&text, "job report-2023"));
        assert!(!marks("", "job report"));
        assert!(!marks("my notes\n", "job report"));
    }

    #[test]
    fn only_abandoned_folders_of_the_owner_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let live = WorkDir::create(root.path(), "report-aaaaaaaaaaaa", "job report").unwrap();
        // Another owner's abandoned folder.
        let other = root.path().join("other-cccccccccccc");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(MARKER), heading("job other")).unwrap();
        // The user's look-alikes, one with a marker of another text.
        for name in ["report-2023", "report-1999999", "report-aaaaaaaaaaab"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
            std::fs::write(root.path().join(name).join("data.csv"), "1,2\n").unwrap();
        }
        std::fs::write(root.path().join("report-2023").join(MARKER), "mine\n").unwrap();

        remove_abandoned(root.path(), "job report");

        assert!(live.path().join(MARKER).exists(), "a live folder stays");
        assert!(other.exists(), "another owner's folder stays");
        for name in ["report-2023", "report-1999999", "report-aaaaaaaaaaab"] {
            assert!(
                root.path().join(name).join("data.csv").exists(),
                "{name} stays"
            );
        }
    }

    #[test]
    fn a_folder_whose_lock_is_free_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("report-dddddddddddd");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(MARKER), format!("{}\n", heading("job report"))).unwrap();
        std::fs::write(dir.join("db"), "x").unwrap();
        remove_abandoned(root.path(), "job report");
        assert!(!dir.exists());
    }

    #[test]
    fn an_existing_folder_is_refused_not_emptied() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("report-eeeeeeeeeeee");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("data.csv"), "1\n").unwrap();
        assert!(WorkDir::create(root.path(), "report-eeeeeeeeeeee", "job report").is_err());
        assert!(dir.join("data.csv").exists());
    }
}
