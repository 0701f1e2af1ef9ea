//! The `file` sink: part files in a folder, committed in two phases when
//! the job takes checkpoints (Flink's two-phase-commit file sink).
//!
//! Files being written are hidden, their names beginning with a dot, so a
//! reader of the folder only ever sees finished, committed files:
//!
//! - Without checkpoints, instance `i` writes `.part-<i>-<n>.<ext>.inprogress`
//!   and renames it to `part-<i>-<n>.<ext>` when its input ends; `n` is the
//!   first number not used yet, so a new run never overwrites an old one.
//! - With checkpoints, at barrier N the file being written is closed as
//!   `.part-<i>-<N>.<ext>.pending` (pre-commit); when checkpoint N completes,
//!   the pending files up to N are renamed to `part-<i>-<N>.<ext>` (commit).
//!   A restore from checkpoint C makes the visible output exactly that of
//!   C's past ([`recover`]): checkpoint numbers grow across the runs of a
//!   job and C's metadata lists the numbers of its past (its history), so
//!   `N` tells whether a file belongs to it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::nodes::sinks::file::OutputFormat;
use crate::operators::{IoTarget, Sink, SinkError};
use crate::value::Value;

pub struct FileSink {
    dir: PathBuf,
    ext: &'static str,
    instance: u32,
    format: OutputFormat,
    /// Commit at checkpoints rather than at the end of input.
    transactional: bool,
    current: Option<Part>,
    /// Closed files waiting for their checkpoint to complete: (checkpoint, path).
    pending: Vec<(u64, PathBuf)>,
    /// In-progress files opened so far, for unique names.
    opened: u64,
    line: Vec<u8>,
}

/// The file being written.
struct Part {
    writer: BufWriter<File>,
    path: PathBuf,
}

fn io_error(action: &'static str, p: &Path, source: std::io::Error) -> SinkError {
    SinkError::Io {
        action,
        target: IoTarget::Path(p.to_owned()),
        source,
    }
}

fn extension(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Json => "json",
        OutputFormat::Text => "txt",
        OutputFormat::Csv => "csv",
    }
}

impl FileSink {
    pub fn open(
        dir: &Path,
        format: OutputFormat,
        instance: u32,
        transactional: bool,
    ) -> Result<FileSink, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create the folder", dir, e))?;
        Ok(FileSink {
            dir: dir.to_owned(),
            ext: extension(format),
            instance,
            format,
            transactional,
            current: None,
            pending: Vec::new(),
            opened: 0,
            line: Vec::new(),
        })
    }

    fn final_name(&self, n: u64) -> PathBuf {
        self.dir
            .join(format!("part-{}-{n}.{}", self.instance, self.ext))
    }

    fn part(&mut self) -> Result<&mut Part, SinkError> {
        if self.current.is_none() {
            let mut n = 0u64;
            let (path, file) = loop {
                let path = if self.transactional {
                    self.opened += 1;
                    self.dir.join(format!(
                        ".part-{}-{}-{}.{}.inprogress",
                        self.instance,
                        std::process::id(),
                        self.opened,
                        self.ext
                    ))
                } else {
                    while self.final_name(n).exists() {
                        n += 1;
                    }
                    self.dir.join(format!(
                        ".part-{}-{n}.{}.inprogress",
                        self.instance, self.ext
                    ))
                };
                // create_new: two runs writing the same folder never share a file.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(f) => break (path, f),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                    Err(e) => return Err(io_error("create", &path, e)),
                }
            };
            self.current = Some(Part {
                writer: BufWriter::with_capacity(256 * 1024, file),
                path,
            });
        }
        Ok(self.current.as_mut().expect("just opened"))
    }

    /// Flushes and syncs the current file, returning its path.
    fn close(&mut self) -> Result<Option<PathBuf>, SinkError> {
        let Some(mut part) = self.current.take() else {
            return Ok(None);
        };
        let err = |e| io_error("write", &part.path, e);
        part.writer.flush().map_err(err)?;
        part.writer
            .get_ref()
            .sync_all()
            .map_err(|e| io_error("sync", &part.path, e))?;
        Ok(Some(part.path))
    }
}

/// Appends one CSV field, quoted when it must be (RFC 4180).
fn csv_field(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    value.write_text(out);
    if out[start..].iter().any(|b| b",\"\n\r".contains(b)) {
        let text = out.split_off(start);
        out.push(b'"');
        for &b in &text {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        let mut line = std::mem::take(&mut self.line);
        let format = self.format;
        let part = self.part()?;
        for record in batch {
            line.clear();
            match format {
                OutputFormat::Json => record.write_json(&mut line),
                OutputFormat::Text => record.write_text(&mut line),
                OutputFormat::Csv => match record {
                    Value::Map(fields) => {
                        for (i, (_, v)) in fields.iter().enumerate() {
                            if i > 0 {
                                line.push(b',');
                            }
                            csv_field(v, &mut line);
                        }
                    }
                    other => csv_field(other, &mut line),
                },
            }
            line.push(b'\n');
            part.writer
                .write_all(&line)
                .map_err(|e| io_error("write", &part.path, e))?;
        }
        self.line = line;
        Ok(())
    }

    /// Pre-commit: what was written before barrier `id` becomes pending for it.
    fn on_barrier(&mut self, id: u64) -> Result<(), SinkError> {
        if !self.transactional {
            return Ok(());
        }
        if let Some(path) = self.close()? {
            let pending = self
                .dir
                .join(format!(".part-{}-{id}.{}.pending", self.instance, self.ext));
            std::fs::rename(&path, &pending).map_err(|e| io_error("pre-commit", &path, e))?;
            self.pending.push((id, pending));
        }
        Ok(())
    }

    /// Commit: checkpoint `id` is complete, so files pending up to it become visible.
    fn on_complete(&mut self, id: u64) -> Result<(), SinkError> {
        let (ready, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(n, _)| *n <= id);
        self.pending = later;
        for (n, path) in ready {
            let target = unused(self.final_name(n));
            std::fs::rename(&path, target).map_err(|e| io_error("commit", &path, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if self.transactional {
            // Everything was pre-committed at the final checkpoint's barrier;
            // what is still pending stays for a restore to commit.
            return Ok(());
        }
        if let Some(path) = self.close()? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let visible = name
                .trim_start_matches('.')
                .trim_end_matches(".inprogress")
                .to_owned();
            std::fs::rename(&path, self.dir.join(visible))
                .map_err(|e| io_error("finish", &path, e))?;
        }
        Ok(())
    }
}

/// `path`, or if a file is already there (committed output of a run whose
/// checkpoint numbers were reused, after its store was deleted),
/// `<stem>-<k>.<ext>` for the first free `k`: committed output is never replaced.
fn unused(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    (1u64..)
        .map(|k| path.with_file_name(format!("{stem}-{k}.{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

/// What a restore does with output committed after the checkpoint it
/// restores (a fallback to an older checkpoint, or `--from` an older one):
/// the restored job writes those records again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NewerOutput {
    /// Move the files into a hidden folder inside the sink's folder (never
    /// deleted), so the visible output is exactly-once from the restore.
    #[default]
    MoveAside,
    /// Refuse to start, naming the files.
    Refuse,
}

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Committed files outside the restored checkpoint's past, moved aside.
    pub moved: Option<Moved>,
    /// Files in the restored checkpoint's past brought back from earlier
    /// `.superseded-*` folders.
    pub brought_back: usize,
}

#[derive(Debug)]
pub struct Moved {
    pub count: usize,
    pub to: PathBuf,
}

/// The checkpoint that committed a part file: `part-<i>-<N>.<ext>` or, when
/// that name was taken, `part-<i>-<N>-<k>.<ext>` (see [`unused`]).
fn committed_by(name: &str) -> Option<u64> {
    // part-<i>-<N>.<ext>, or part-<i>-<N>-<k>.<ext> (see `unused`).
    let numbers = our_name(name.strip_prefix("part-")?, 2..=3)?;
    Some(numbers[1])
}

/// A file this sink writes while it is open: `.part-<i>-<n>.<ext>.inprogress`,
/// or `.part-<i>-<pid>-<k>.<ext>.inprogress` with checkpoints.
fn in_progress(name: &str) -> bool {
    name.strip_prefix(".part-")
        .and_then(|n| n.strip_suffix(".inprogress"))
        .and_then(|n| our_name(n, 2..=3))
        .is_some()
}

/// The numbers of `<n>-<n>[-<n>].<ext>`, if `rest` has exactly that shape
/// with `count` numbers and an extension of letters: a user's own files in
/// the folder (`.x.pending`, `.part-notes.inprogress`) are never taken
/// for the sink's.
fn our_name(rest: &str, count: std::ops::RangeInclusive<usize>) -> Option<Vec<u64>> {
    let (stem, ext) = rest.split_once('.')?;
    if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let numbers: Vec<u64> = stem
        .split('-')
        .map(|n| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    count.contains(&numbers.len()).then_some(numbers)
}

/// The checkpoint a pending file (`.part-<i>-<N>.<ext>.pending`) waits for,
/// and the name it has once committed.
fn pending(name: &str) -> Option<(u64, &str)> {
    let visible = name.strip_prefix('.')?.strip_suffix(".pending")?;
    Some((committed_by(visible)?, visible))
}

/// The restore point a sink's folder is settled for.
pub struct RestorePoint<'a> {
    /// The checkpoint restored; 0 for a fresh start.
    pub id: u64,
    /// Its history: the checkpoint numbers whose output is in its past.
    pub history: &'a [(u64, u64)],
    /// Whether a pending file of checkpoint N must be kept because some
    /// complete checkpoint's past holds it (its commit was cut short).
    pub restorable: &'a dyn Fn(u64) -> bool,
}

impl RestorePoint<'_> {
    fn in_past(&self, n: u64) -> bool {
        self.id > 0 && n <= self.id && crate::checkpoint::metadata::in_history(self.history, n)
    }
}

/// After a run: commits the pending files of `point`'s past, as a restore
/// from it would, and touches nothing else.
pub fn settle(dir: &Path, point: &RestorePoint) -> Result<(), SinkError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((_, visible)) = pending(&name).filter(|(n, _)| point.in_past(*n)) {
            std::fs::rename(entry.path(), unused(dir.join(visible)))
                .map_err(|e| io_error("commit", &entry.path(), e))?;
        }
    }
    Ok(())
}

/// Before a job starts from `point`, makes the folder's visible output
/// exactly the output of the restored checkpoint's past: pending files of
/// that past are committed, committed files outside it moved into
/// `.superseded-<run>/` (or the start refused, as `newer` says), and files
/// of that past found in earlier `.superseded-*` folders brought back.
/// Nothing committed is deleted; a pending file is deleted only when no
/// complete checkpoint's past holds it, and in-progress files always. A
/// fresh start (`point.id` 0) moves no committed file.
pub fn recover(
    dir: &Path,
    point: &RestorePoint,
    newer: NewerOutput,
    run: &str,
) -> Result<Recovery, SinkError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Recovery::default());
    };
    let mut names = Vec::new();
    let mut asides = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".superseded-") && entry.path().is_dir() {
            asides.push(entry.path());
        } else {
            names.push(name);
        }
    }
    names.sort();
    asides.sort();
    let superseded: Vec<&String> = names
        .iter()
        .filter(|n| point.id > 0 && committed_by(n).is_some_and(|c| !point.in_past(c)))
        .collect();
    if !superseded.is_empty() && newer == NewerOutput::Refuse {
        let shown: Vec<&str> = superseded.iter().take(5).map(|n| n.as_str()).collect();
        let more = match superseded.len() - shown.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(SinkError::NewerOutput {
            dir: dir.display().to_string(),
            checkpoint: point.id,
            files: format!("{}{more}", shown.join(", ")),
        });
    }
    let mut recovery = Recovery::default();
    let aside = dir.join(format!(".superseded-{run}"));
    let move_aside = |from: &Path, name: &str| -> Result<(), SinkError> {
        std::fs::create_dir_all(&aside).map_err(|e| io_error("create the folder", &aside, e))?;
        std::fs::rename(from, unused(aside.join(name))).map_err(|e| io_error("move aside", from, e))
    };
    // Another branch's files go first, then this one's come back: a run
    // killed at any step leaves one branch visible (part of it, as a kill
    // does; the next restore completes it), never two.
    for name in &superseded {
        move_aside(&dir.join(name), name)?;
    }
    // What earlier restores moved aside and this one's past holds.
    for folder in &asides {
        for entry in std::fs::read_dir(folder).map_err(|e| io_error("list", folder, e))? {
            let entry = entry.map_err(|e| io_error("list", folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let visible = match (committed_by(&name), pending(&name)) {
                (Some(n), _) if point.in_past(n) => name.clone(),
                (_, Some((n, visible))) if point.in_past(n) => visible.to_owned(),
                _ => continue,
            };
            std::fs::rename(entry.path(), unused(dir.join(visible)))
                .map_err(|e| io_error("bring back", &entry.path(), e))?;
            recovery.brought_back += 1;
        }
    }
    for name in &names {
        let path = dir.join(name);
        if in_progress(name) {
            std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
        } else if let Some((n, visible)) = pending(name) {
            if point.in_past(n) {
                std::fs::rename(&path, unused(dir.join(visible)))
                    .map_err(|e| io_error("commit", &path, e))?;
            } else if (point.restorable)(n) {
                move_aside(&path, name)?;
            } else {
                std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
            }
        }
    }
    if !superseded.is_empty() {
        recovery.moved = Some(Moved {
            count: superseded.len(),
            to: aside,
        });
    }
    Ok(recovery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_files_become_visible_only_when_their_checkpoint_completes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(dir.path(), OutputFormat::Text, 0, true).unwrap();
        let visible = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            v.sort();
            v
        };
        sink.write(&[Value::from("a")]).unwrap();
        sink.on_barrier(1).unwrap();
        sink.write(&[Value::from("b")]).unwrap();
        sink.on_barrier(2).unwrap();
        assert!(visible(dir.path()).is_empty());
        sink.on_complete(1).unwrap();
        assert_eq!(visible(dir.path()), ["part-0-1.txt"]);
        sink.write(&[Value::from("c")]).unwrap();
        // A crash now, and a restore from checkpoint 1: 2 is discarded, as is "c".
        recover(
            dir.path(),
            &point(1, &[(1, 9)]),
            NewerOutput::MoveAside,
            "r1",
        )
        .unwrap();
        let all: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(all, ["part-0-1.txt"]);
    }

    #[test]
    fn committed_output_of_an_earlier_run_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part-0-1.txt"), "earlier\n").unwrap();
        let mut sink = FileSink::open(dir.path(), OutputFormat::Text, 0, true).unwrap();
        sink.write(&[Value::from("later")]).unwrap();
        sink.on_barrier(1).unwrap();
        sink.on_complete(1).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("part-0-1.txt")).unwrap(),
            "earlier\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("part-0-1-1.txt")).unwrap(),
            "later\n"
        );
    }

    fn point<'a>(id: u64, history: &'a [(u64, u64)]) -> RestorePoint<'a> {
        RestorePoint {
            id,
            history,
            restorable: &|_| false,
        }
    }

    fn listing(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_restore_shows_exactly_its_past_and_deletes_nothing_committed() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "part-0-3.txt",
            "part-1-3.txt",
            "part-0-4.txt",
            "part-0-4-1.txt",
            "part-0-12.txt",
            ".part-0-5.txt.pending",
            "notes.txt",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), n).unwrap();
        }
        let before = listing(dir.path());
        // Run a took 1..=5; b restored chk-3 and took 12.
        let b = [(1, 3), (12, 12)];
        let err = recover(dir.path(), &point(3, &b[..1]), NewerOutput::Refuse, "r2").unwrap_err();
        assert!(
            err.to_string()
                .contains("(part-0-12.txt, part-0-4-1.txt, part-0-4.txt)"),
            "{err}"
        );
        assert_eq!(listing(dir.path()), before, "a refusal changes nothing");
        let restorable = |n: u64| n == 5;
        let at_3 = RestorePoint {
            id: 3,
            history: &b[..1],
            restorable: &restorable,
        };
        let recovery = recover(dir.path(), &at_3, NewerOutput::MoveAside, "r2").unwrap();
        let moved = recovery.moved.unwrap();
        assert_eq!(moved.count, 3);
        assert_eq!(moved.to, dir.path().join(".superseded-r2"));
        assert_eq!(
            listing(dir.path()),
            [
                ".superseded-r2",
                "notes.txt",
                "part-0-3.txt",
                "part-1-3.txt"
            ]
        );
        // chk-5 is still restorable: its pending file is kept, aside.
        assert_eq!(
            listing(&moved.to),
            [
                ".part-0-5.txt.pending",
                "part-0-12.txt",
                "part-0-4-1.txt",
                "part-0-4.txt"
            ]
        );
        // Restoring a's chk-5 after all: 4 comes back, 5 is committed, b's
        // 12 stays aside.
        let recovery =
            recover(dir.path(), &point(5, &[(1, 5)]), NewerOutput::Refuse, "r3").unwrap();
        assert_eq!(recovery.brought_back, 3);
        assert!(recovery.moved.is_none());
        assert_eq!(
            listing(dir.path()),
            [
                ".superseded-r2",
                "notes.txt",
                "part-0-3.txt",
                "part-0-4-1.txt",
                "part-0-4.txt",
                "part-0-5.txt",
                "part-1-3.txt"
            ]
        );
        assert_eq!(listing(&moved.to), ["part-0-12.txt"]);
        // And b's chk-12: 4 and 5 go aside again, 12 comes back.
        let recovery = recover(dir.path(), &point(12, &b), NewerOutput::MoveAside, "r4").unwrap();
        assert_eq!(recovery.brought_back, 1);
        assert_eq!(recovery.moved.unwrap().count, 3);
        assert_eq!(
            listing(dir.path()),
            [
                ".superseded-r2",
                ".superseded-r4",
                "notes.txt",
                "part-0-12.txt",
                "part-0-3.txt",
                "part-1-3.txt"
            ]
        );
        // A fresh start moves nothing: earlier runs' output stays.
        let fresh = recover(dir.path(), &point(0, &[]), NewerOutput::Refuse, "r5").unwrap();
        assert!(fresh.moved.is_none() && fresh.brought_back == 0);
        assert!(dir.path().join("part-0-12.txt").exists());
    }

    /// Found by the lifecycle test's long mode: a run killed while it
    /// settled its sink's folder for a restore had brought back the
    /// restored branch's files before it moved the other branch's away,
    /// leaving both visible (11,850 counts committed twice). Whatever step
    /// is the last to happen, the folder must show one branch only.
    #[test]
    fn a_recovery_cut_short_never_shows_two_branches() {
        let dir = tempfile::tempdir().unwrap();
        // Branch A committed chk-5; an earlier restore moved chk-3's file,
        // which the restore of chk-4 needs, aside.
        std::fs::write(dir.path().join("part-0-5.txt"), "a\n").unwrap();
        std::fs::create_dir(dir.path().join(".superseded-r1")).unwrap();
        std::fs::write(dir.path().join(".superseded-r1/part-0-3.txt"), "b\n").unwrap();
        // Moving chk-5's file aside fails: this run's aside folder cannot
        // be created, as if the run were killed at that moment.
        std::fs::write(dir.path().join(".superseded-r2"), "").unwrap();
        let history = [(1, 4)];
        assert!(recover(
            dir.path(),
            &point(4, &history),
            NewerOutput::MoveAside,
            "r2"
        )
        .is_err());
        let visible: Vec<String> = listing(dir.path())
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(visible, ["part-0-5.txt"], "only branch A is visible");
    }

    /// Issue 14, item 4: a restore settles the sink's own files only; a
    /// user's files in the folder, dotfiles included, stay as they are.
    #[test]
    fn a_recovery_touches_only_the_sinks_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let users = [
            ".x.pending",
            ".part-notes.inprogress",
            ".part-0-5.txt.pending.bak",
            ".part-a-9.txt.pending",
            ".part-0-9.inprogress",
            "part-final.txt",
            "notes.txt",
        ];
        for name in users {
            std::fs::write(dir.path().join(name), "mine\n").unwrap();
        }
        let ours = [
            ".part-0-1234-1.txt.inprogress",
            ".part-0-9.txt.pending",
            "part-1-7.txt",
        ];
        for name in ours {
            std::fs::write(dir.path().join(name), "a\n").unwrap();
        }
        let history = [(1, 4)];
        recover(
            dir.path(),
            &point(4, &history),
            NewerOutput::MoveAside,
            "r1",
        )
        .unwrap();
        for name in users {
            assert!(dir.path().join(name).exists(), "{name} was touched");
        }
        let left: Vec<String> = listing(dir.path())
            .into_iter()
            .filter(|n| !users.contains(&n.as_str()))
            .collect();
        assert_eq!(left, [".superseded-r1"], "the sink's own files are settled");
    }
}
