//! The `file` source: lines or JSON lines from a path or a glob.
//!
//! Files are read in name order; the instance `i` of `p` reads every file
//! whose position in that order is `i` modulo `p`. The source tracks the
//! file and byte offset of the next line, which is what a checkpoint
//! records and a restore seeks back to.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use super::{parse_json_line, trim_newline, Cancel};
use crate::operators::{OpError, Poll, RecordError, Source};
use crate::spec::InputFormat;
use crate::value::{Str, Value};

pub struct FileSource {
    files: Vec<PathBuf>,
    /// Index in `files` of the file being read.
    current: usize,
    reader: Option<BufReader<File>>,
    /// Byte offset of the next line in the current file.
    offset: u64,
    /// Number (from 1) of the next line in the current file, for messages;
    /// unknown after a restore that did not record it.
    line_no: Option<u64>,
    format: InputFormat,
    follow: bool,
    cancel: Cancel,
    line: String,
    /// Where to start reading each file: 0, or the offset (and line number,
    /// when recorded) a restored checkpoint recorded.
    resume_at: Vec<(u64, Option<u64>)>,
    /// Files a restored checkpoint had already finished that this instance
    /// records as finished in its own checkpoints, so that they stay
    /// finished through any chain of restores: those it would read, and,
    /// for instance 0, those the pattern no longer matches.
    finished_before: Vec<String>,
    /// Every file the pattern matched, read by this instance or another.
    matched: std::collections::BTreeSet<String>,
    instance: u32,
}

impl FileSource {
    /// Resolves `pattern` (a path or a glob) to the files of one instance.
    pub fn open(
        pattern: &str,
        format: InputFormat,
        follow: bool,
        instance: u32,
        parallelism: u32,
        cancel: Cancel,
    ) -> Result<FileSource, OpError> {
        let mut all: Vec<PathBuf> = glob::glob(pattern)
            .map_err(|e| OpError::Fatal(format!("invalid glob pattern `{pattern}`: {}", e.msg)))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if all.is_empty() {
            return Err(OpError::Fatal(format!("no file matches `{pattern}`")));
        }
        all.sort();
        let matched = all.iter().map(|p| p.display().to_string()).collect();
        let files = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % parallelism == instance)
            .map(|(_, p)| p)
            .collect();
        Ok(FileSource {
            files,
            current: 0,
            reader: None,
            offset: 0,
            line_no: Some(1),
            format,
            follow,
            cancel,
            line: String::new(),
            resume_at: Vec::new(),
            finished_before: Vec::new(),
            matched,
            instance,
        })
    }

    fn open_current(&mut self) -> Result<(), OpError> {
        let path = &self.files[self.current];
        let fail = |what: &str, e: std::io::Error| {
            OpError::Fatal(format!("cannot {what} `{}`: {e}", path.display()))
        };
        let mut file = File::open(path).map_err(|e| fail("open", e))?;
        let (offset, line_no) = self
            .resume_at
            .get(self.current)
            .copied()
            .unwrap_or((0, Some(1)));
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| fail("seek in", e))?;
        }
        self.reader = Some(BufReader::with_capacity(256 * 1024, file));
        self.offset = offset;
        self.line_no = line_no;
        Ok(())
    }

    fn is_last_file(&self) -> bool {
        self.current + 1 >= self.files.len()
    }
}

impl Source for FileSource {
    /// The files read to the end, and the byte offset (and line number) in
    /// the one being read.
    fn position(&self) -> serde_json::Value {
        let name = |p: &PathBuf| p.display().to_string();
        let done: Vec<String> = self
            .finished_before
            .iter()
            .cloned()
            .chain(
                self.files[..self.current.min(self.files.len())]
                    .iter()
                    .map(name),
            )
            .collect();
        // Until the file is opened, where it will be opened: a barrier can
        // come before the first poll after a restore.
        let (offset, line) = if self.reader.is_some() {
            (self.offset, self.line_no)
        } else {
            self.resume_at
                .get(self.current)
                .copied()
                .unwrap_or((0, Some(1)))
        };
        serde_json::json!({
            "done": done,
            "reading": self.files.get(self.current).map(|p| serde_json::json!({"path": name(p), "offset": offset, "line": line})),
        })
    }

    /// Skips the files any old instance finished and seeks to the offset
    /// one was reading at, so files may move between instances on rescale;
    /// the finished files stay recorded in this run's checkpoints, so a
    /// restore from one of them skips them too.
    fn restore(&mut self, positions: &[serde_json::Value]) -> Result<(), OpError> {
        let mut done = std::collections::BTreeSet::new();
        let mut reading = std::collections::BTreeMap::new();
        for p in positions {
            for d in p["done"].as_array().into_iter().flatten() {
                done.insert(d.as_str().unwrap_or_default().to_owned());
            }
            if let (Some(path), Some(offset)) = (
                p["reading"]["path"].as_str(),
                p["reading"]["offset"].as_u64(),
            ) {
                let line_no = p["reading"]["line"].as_u64();
                reading.insert(path.to_owned(), (offset, line_no));
            }
        }
        let mine: std::collections::BTreeSet<String> =
            self.files.iter().map(|f| f.display().to_string()).collect();
        self.finished_before = done
            .iter()
            .filter(|d| mine.contains(*d) || (self.instance == 0 && !self.matched.contains(*d)))
            .cloned()
            .collect();
        self.files
            .retain(|f| !done.contains(&f.display().to_string()));
        self.resume_at = self
            .files
            .iter()
            .map(|f| {
                reading
                    .get(&f.display().to_string())
                    .copied()
                    .unwrap_or((0, Some(1)))
            })
            .collect();
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError> {
        // Records this call adds; `out` may hold earlier ones.
        let start = out.len();
        while out.len() < max {
            if self.current >= self.files.len() {
                return Ok(Poll::End);
            }
            if self.reader.is_none() {
                self.open_current()?;
            }
            let at_end_waits = self.follow && self.is_last_file();
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            self.line.clear();
            let n = reader.read_line(&mut self.line).map_err(|e| {
                OpError::Fatal(format!(
                    "cannot read `{}`: {e}",
                    self.files[self.current].display()
                ))
            })?;
            // A line without its newline at the end of a followed file may
            // still be growing: leave it for the next poll.
            let partial = n > 0 && !self.line.ends_with('\n');
            if n == 0 || (partial && at_end_waits) {
                if n > 0 {
                    reader.seek_relative(-(n as i64)).map_err(|e| {
                        OpError::Fatal(format!(
                            "cannot seek in `{}`: {e}",
                            self.files[self.current].display()
                        ))
                    })?;
                }
                if at_end_waits {
                    if out.len() > start {
                        return Ok(Poll::Ready);
                    }
                    if self.cancel.wait(Duration::from_millis(50)) {
                        return Ok(Poll::End);
                    }
                    return Ok(Poll::Idle);
                }
                self.current += 1;
                self.reader = None;
                continue;
            }
            self.offset += n as u64;
            let line_no = self.line_no;
            self.line_no = line_no.map(|l| l + 1);
            let text = trim_newline(&self.line);
            match self.format {
                InputFormat::Text => out.push(Value::Str(Str::from(text))),
                InputFormat::Json => {
                    if text.trim().is_empty() {
                        continue;
                    }
                    match parse_json_line(text) {
                        Ok(v) => out.push(v),
                        Err(e) => {
                            let file = self.files[self.current].display();
                            let at = match line_no {
                                Some(line) => format!("{file}:{line}"),
                                None => format!("{file}, byte {}", self.offset - n as u64),
                            };
                            return Err(RecordError(format!("{e} (at {at})")).into());
                        }
                    }
                }
            }
        }
        Ok(Poll::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::sources::Canceller;

    fn source(dir: &std::path::Path, instance: u32, parallelism: u32) -> FileSource {
        let pattern = format!("{}/*.txt", dir.display());
        let cancel = Canceller::new().token();
        FileSource::open(
            &pattern,
            InputFormat::Text,
            false,
            instance,
            parallelism,
            cancel,
        )
        .unwrap()
    }

    /// A checkpoint taken after a restore but before the first poll (a
    /// barrier can come first) recorded offset 0 of the file being read,
    /// so a restore from it read that file's first part twice.
    #[test]
    fn the_position_right_after_a_restore_is_the_restored_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x\ny\nz\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "u\nv\n").unwrap();
        let mut first = source(dir.path(), 0, 1);
        let mut out = Vec::new();
        first.poll(&mut out, 4).unwrap();
        assert_eq!(out.len(), 4, "a.txt and the first line of b.txt");
        let taken = first.position();
        assert_eq!(taken["reading"]["offset"], 2);

        let mut restored = source(dir.path(), 0, 1);
        restored.restore(std::slice::from_ref(&taken)).unwrap();
        assert_eq!(restored.position(), taken, "before any poll");
        // And again, restored from the restored one's position.
        let mut again = source(dir.path(), 0, 1);
        again.restore(&[restored.position()]).unwrap();
        let mut out = Vec::new();
        again.poll(&mut out, 10).unwrap();
        assert_eq!(out, [Value::Str(Str::from("v"))]);
    }
}
