//! Run files: one small JSON file per running job, in a folder every run
//! on this machine shares, so `dataflow list` can find them all.
//!
//! The folder is `$DATAFLOW_RUN_DIR`, else `$XDG_RUNTIME_DIR/dataflow/runs`,
//! else `<temp dir>/dataflow/runs`. A run writes `<job>-<run>.json` when
//! its endpoint is up and removes it when it ends. It holds a lock on the
//! file for its whole life, which the kernel releases however it dies: a
//! run killed with SIGKILL leaves its file behind, unlocked, and readers
//! ignore it. (Its process id is no proof: ids are reused, and a stale
//! file naming a live process sent `dataflow stop` to a dead endpoint.)

use std::path::{Path, PathBuf};

use super::RunInfo;

/// The folder of run files.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DATAFLOW_RUN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("dataflow").join("runs");
    }
    std::env::temp_dir().join("dataflow").join("runs")
}

/// A run file, locked while held and removed when dropped.
pub struct RunFile {
    path: PathBuf,
    _lock: std::fs::File,
}

impl RunFile {
    /// Writes `info`'s run file (whole or not at all: a temporary file renamed).
    pub fn write(info: &RunInfo) -> std::io::Result<RunFile> {
        RunFile::write_in(&dir(), info)
    }

    fn write_in(dir: &Path, info: &RunInfo) -> std::io::Result<RunFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}-{}.json", info.job, info.run));
        let temporary = dir.join(format!(".{}-{}.json.tmp", info.job, info.run));
        let bytes = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
        let mut file = std::fs::File::create(&temporary)?;
        file.try_lock().map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut file, &bytes)?;
        // The lock goes with the file into place.
        std::fs::rename(&temporary, &path)?;
        Ok(RunFile { path, _lock: file })
    }
}

impl Drop for RunFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The runs whose files are in `dir` and held by a live run, oldest first.
pub fn running_in(dir: &Path) -> Vec<RunInfo> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<RunInfo> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter(|e| ours(&e.path()) && held(&e.path()))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<RunInfo>(&bytes).ok())
        .collect();
    runs.sort_by(|a, b| (a.started_at_ms, &a.run).cmp(&(b.started_at_ms, &b.run)));
    runs
}

/// Whether the run file at `path` belongs to this user. In a shared
/// folder (`/tmp/dataflow/runs`) another user could plant a file naming a
/// job of ours and an address of theirs, to which `stop` or `tap` would
/// send the control token; such files are not runs of ours.
fn ours(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is this process's user.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid());
    let owner = std::fs::symlink_metadata(path).map(|m| m.uid());
    match (me, owner) {
        (Ok(me), Ok(owner)) => me == owner,
        // Without /proc, the file's owner cannot be compared.
        (Err(_), Ok(_)) => true,
        _ => false,
    }
}

/// Whether a live run holds the run file at `path` locked.
fn held(path: &Path) -> bool {
    std::fs::File::open(path)
        .is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

/// The running jobs on this machine.
pub fn running() -> Vec<RunInfo> {
    running_in(&dir())
}

/// Whether process `pid` exists. Where `/proc` cannot tell, it is taken to
/// exist: the endpoint's answer decides.
pub fn alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new("/proc").join(pid.to_string()).exists()
}

/// The run that `name` (a job name or a run id) designates.
pub fn find(name: &str) -> Result<RunInfo, FindError> {
    let runs = running();
    let matching: Vec<&RunInfo> = runs
        .iter()
        .filter(|r| r.job == name || r.run == name)
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(FindError::NotRunning {
            name: name.to_owned(),
        }),
        many => Err(FindError::Ambiguous {
            name: name.to_owned(),
            runs: many.iter().map(|r| r.run.clone()).collect(),
        }),
    }
}

/// Why a name designates no single running job: the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no job or run named `{name}` is running on this machine (`dataflow list` shows those that are)")]
    NotRunning { name: String },
    #[error("{} runs of job `{name}` are running ({}); name one by its run id", .runs.len(), .runs.join(", "))]
    Ambiguous { name: String, runs: Vec<String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_live_runs_and_ignores_dead_and_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let info = |run: &str, pid: u32, at: u64| RunInfo {
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            job: "wc".into(),
            run: run.into(),
            pid,
            port: 1,
            spec: "wc.yaml".into(),
            started_at_ms: at,
        };
        let _b = RunFile::write_in(dir.path(), &info("b", std::process::id(), 2)).unwrap();
        let _a = RunFile::write_in(dir.path(), &info("a", std::process::id(), 1)).unwrap();
        // A killed run's file: it names a process that exists (ids are
        // reused), but no one holds it.
        let stale = info("stale", std::process::id(), 0);
        std::fs::write(
            dir.path().join("wc-stale.json"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        let runs: Vec<String> = running_in(dir.path()).into_iter().map(|r| r.run).collect();
        assert_eq!(runs, ["a", "b"]);
        // Held, but another user's: planted, not a run of ours.
        let planted =
            RunFile::write_in(dir.path(), &info("planted", std::process::id(), 3)).unwrap();
        std::os::unix::fs::chown(&planted.path, Some(54_321), None)
            .expect("the tests run as root, who can give a file away");
        let runs: Vec<String> = running_in(dir.path()).into_iter().map(|r| r.run).collect();
        assert_eq!(runs, ["a", "b"]);
    }
}
