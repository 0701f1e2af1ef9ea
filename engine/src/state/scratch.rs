//! A run's working folder under `state.dir`, and the sweep of abandoned ones.
//!
//! `state.dir` may be shared: with other jobs, with the user's own folders,
//! with runs in other containers (other PID namespaces) on the same volume.
//! So a folder is only ever removed when it is provably this engine's and
//! provably abandoned: it holds a [`MARKER`] file naming the job, and no
//! process holds the lock on that marker. A run holds the lock for its whole
//! life and the kernel releases it however the process dies, across PID
//! namespaces, which a PID check cannot do.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file that makes a folder a run's working folder.
pub const MARKER: &str = "DATAFLOW_RUN";

/// The marker's first line, which names the job; a folder whose marker
/// says anything else is not this job's to remove.
fn marker_text(job: &str, run: &str) -> String {
    format!("dataflow working state of job {job}\nrun {run}\n")
}

/// Whether `text`, read from a marker, marks a working folder of `job`.
pub fn marks(text: &str, job: &str) -> bool {
    text.lines().next() == marker_text(job, "").lines().next()
}

/// A run's working folder: created fresh, locked while the run lives, and
/// removed when dropped.
pub struct Scratch {
    dir: PathBuf,
    /// The marker, held locked.
    _lock: File,
}

impl Scratch {
    /// Creates `<root>/<job>-<run>` with its marker, locked. A folder of
    /// that name that exists already is refused, never emptied.
    pub fn create(root: &Path, job: &str, run: &str) -> Result<Scratch, String> {
        let dir = root.join(format!("{job}-{run}"));
        let failed = |what: &str, path: &Path, e: std::io::Error| {
            format!("cannot {what} `{}`: {e}", path.display())
        };
        std::fs::create_dir_all(root).map_err(|e| failed("create", root, e))?;
        std::fs::create_dir(&dir).map_err(|e| failed("create", &dir, e))?;
        let marker = dir.join(MARKER);
        let mut lock = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .map_err(|e| failed("create", &marker, e))?;
        lock.write_all(marker_text(job, run).as_bytes())
            .map_err(|e| failed("write", &marker, e))?;
        lock.try_lock()
            .map_err(|e| failed("lock", &marker, std::io::Error::other(e.to_string())))?;
        Ok(Scratch { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Scratch space: checkpoints hold what must survive.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the working folders of `job`'s runs that ended without
/// removing their own (killed runs cannot); touches nothing else.
pub fn remove_abandoned(root: &Path, job: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let marker = entry.path().join(MARKER);
        let Ok(text) = std::fs::read_to_string(&marker) else {
            continue;
        };
        if !marks(&text, job) {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(&marker) else {
            continue;
        };
        // Held by a live run, here or in another container: not abandoned.
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_its_job_exactly() {
        let text = marker_text("report", "0123456789ab");
        assert!(marks(&text, "report"));
        assert!(!marks(&text, "repor"));
        assert!(!marks(&text, "report-2023"));
        assert!(!marks("", "report"));
        assert!(!marks("my notes\n", "report"));
    }

    #[test]
    fn only_abandoned_folders_of_the_job_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let live = Scratch::create(root.path(), "report", "aaaaaaaaaaaa").unwrap();
        // Another job's abandoned folder.
        let other_job = Scratch::create(root.path(), "other", "cccccccccccc").unwrap();
        let other_dir = other_job.path().to_owned();
        drop(other_job);
        std::fs::create_dir_all(&other_dir).unwrap();
        std::fs::write(other_dir.join(MARKER), marker_text("other", "c")).unwrap();
        // The user's look-alikes, with and without a marker of another text.
        for name in ["report-2023", "report-1999999", "report-aaaaaaaaaaab"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
            std::fs::write(root.path().join(name).join("data.csv"), "1,2\n").unwrap();
        }
        std::fs::write(root.path().join("report-2023").join(MARKER), "mine\n").unwrap();

        remove_abandoned(root.path(), "report");

        assert!(
            live.path().join(MARKER).exists(),
            "a live run's folder stays"
        );
        assert!(other_dir.exists(), "another job's folder stays");
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
        std::fs::write(dir.join(MARKER), marker_text("report", "dddddddddddd")).unwrap();
        std::fs::write(dir.join("db"), "x").unwrap();
        remove_abandoned(root.path(), "report");
        assert!(!dir.exists());
    }

    #[test]
    fn an_existing_folder_is_refused_not_emptied() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("report-eeeeeeeeeeee");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("data.csv"), "1\n").unwrap();
        assert!(Scratch::create(root.path(), "report", "eeeeeeeeeeee").is_err());
        assert!(dir.join("data.csv").exists());
    }
}
