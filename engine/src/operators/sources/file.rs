//! The `file` source: lines or JSON lines from a path or a glob.
//!
//! Files are read in name order; the instance `i` of `p` reads every file
//! whose position in that order is `i` modulo `p`. The source tracks the
//! file and byte offset of the next line, which is what a checkpoint
//! records and a restore seeks back to.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use super::lines::{LineReader, Next};
use super::{parse_json_line, trim_newline, PositionError};
use crate::nodes::sources::file::File as FileSpec;
use crate::nodes::sources::InputFormat;
use crate::nodes::Instance;
use crate::operators::{IoTarget, OpError, Poll, RecordError, Source};
use crate::runtime::cancel::Cancel;
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
    lines: LineReader,
    max_record_bytes: u32,
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
    /// Resolves the spec's `path` (a path or a glob) to the files of one
    /// instance.
    pub fn open(spec: &FileSpec, at: Instance, cancel: Cancel) -> Result<FileSource, OpError> {
        let pattern = spec.path.as_str();
        let Instance {
            index: instance,
            parallelism,
        } = at;
        let mut all: Vec<PathBuf> = glob::glob(pattern)
            .map_err(|e| OpError::Pattern {
                pattern: pattern.to_owned(),
                why: e.msg,
            })?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if all.is_empty() {
            return Err(OpError::NoInput {
                pattern: pattern.to_owned(),
            });
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
            format: spec.format,
            follow: spec.follow,
            cancel,
            lines: LineReader::new(spec.max_record_bytes),
            max_record_bytes: spec.max_record_bytes,
            resume_at: Vec::new(),
            finished_before: Vec::new(),
            matched,
            instance,
        })
    }

    fn open_current(&mut self) -> Result<(), OpError> {
        let path = &self.files[self.current];
        let fail = |action: &'static str, source: std::io::Error| OpError::Io {
            action,
            target: IoTarget::Path(path.clone()),
            source,
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
        self.lines.forget();
        self.offset = offset;
        self.line_no = line_no;
        Ok(())
    }

    fn is_last_file(&self) -> bool {
        self.current + 1 >= self.files.len()
    }
}

/// A file position read back: the files finished, and the part-read ones
/// (the one being read, and those to resume later) with their offset and
/// line. Anything of another shape is damage, never "from the start".
#[allow(clippy::type_complexity)]
fn parse_position(
    p: &serde_json::Value,
) -> Result<(Vec<String>, Vec<(String, u64, Option<u64>)>), &'static str> {
    let done = p["done"]
        .as_array()
        .ok_or("no list of finished files")?
        .iter()
        .map(|d| {
            d.as_str()
                .map(str::to_owned)
                .ok_or("a finished file is not a path")
        })
        .collect::<Result<Vec<String>, _>>()?;
    let part_read = |r: &serde_json::Value| -> Result<(String, u64, Option<u64>), &'static str> {
        let path = r["path"].as_str().ok_or("a part-read file has no path")?;
        let offset = r["offset"]
            .as_u64()
            .ok_or("the offset is not a number of bytes")?;
        let line = match &r["line"] {
            serde_json::Value::Null => None,
            l => Some(
                l.as_u64()
                    .filter(|l| *l >= 1)
                    .ok_or("the line is not a line number")?,
            ),
        };
        Ok((path.to_owned(), offset, line))
    };
    let mut reading = Vec::new();
    if !p["reading"].is_null() {
        reading.push(part_read(&p["reading"])?);
    }
    match &p["resume"] {
        serde_json::Value::Null => {}
        serde_json::Value::Array(later) => {
            for r in later {
                reading.push(part_read(r)?);
            }
        }
        _ => return Err("the files to resume are not a list"),
    }
    Ok((done, reading))
}

/// An offset a restore seeks to must be in the file and at the start of a
/// line: a damaged or hand-edited one would skip or repeat records.
fn check_offset(path: &str, offset: u64) -> Result<(), PositionError> {
    if offset == 0 {
        return Ok(());
    }
    let Ok(mut file) = File::open(path) else {
        // Gone since: the pattern no longer matches it, so it is not read.
        return Ok(());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if offset > len {
        return Err(PositionError::PastEnd {
            path: path.to_owned(),
            offset,
            len,
        });
    }
    if offset == len {
        // The end, after a last line without its newline.
        return Ok(());
    }
    let mut before = [0u8; 1];
    let at_line_start = file
        .seek(SeekFrom::Start(offset - 1))
        .and_then(|_| std::io::Read::read_exact(&mut file, &mut before))
        .is_ok_and(|()| before[0] == b'\n');
    if !at_line_start {
        return Err(PositionError::MidLine {
            path: path.to_owned(),
            offset,
        });
    }
    Ok(())
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
        let at = |p: &PathBuf, offset: u64, line: Option<u64>| serde_json::json!({"path": name(p), "offset": offset, "line": line});
        let mut position = serde_json::json!({
            "done": done,
            "reading": self.files.get(self.current).map(|p| at(p, offset, line)),
        });
        // Files a restore left part-read that come later in this run's
        // order (a new file can sort before them): where to resume them.
        let resume: Vec<serde_json::Value> = self
            .files
            .iter()
            .zip(&self.resume_at)
            .skip(self.current + 1)
            .filter(|(_, (offset, _))| *offset > 0)
            .map(|(p, (offset, line))| at(p, *offset, *line))
            .collect();
        if !resume.is_empty() {
            position["resume"] = resume.into();
        }
        position
    }

    /// Skips the files any old instance finished and seeks to the offset
    /// one was reading at, so files may move between instances on rescale;
    /// the finished files stay recorded in this run's checkpoints, so a
    /// restore from one of them skips them too.
    fn restore(&mut self, positions: &[serde_json::Value]) -> Result<(), OpError> {
        let mut done = std::collections::BTreeSet::new();
        let mut reading = std::collections::BTreeMap::new();
        for p in positions {
            let (finished, at) = parse_position(p).map_err(|why| PositionError::Shape {
                why,
                position: p.to_string(),
            })?;
            done.extend(finished);
            for (path, offset, line) in at {
                check_offset(&path, offset)?;
                reading.insert(path, (offset, line));
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
            let next = match self.lines.next(reader) {
                Ok(Next::Empty) if !at_end_waits => self.lines.finish(),
                Ok(next) => next,
                Err(e) => {
                    return Err(OpError::Io {
                        action: "read",
                        target: IoTarget::Path(self.files[self.current].clone()),
                        source: e,
                    })
                }
            };
            // Where the line read starts, for messages.
            let at = || {
                let file = self.files[self.current].display();
                match self.line_no {
                    Some(line) => format!("{file}:{line}"),
                    None => format!("{file}, byte {}", self.offset),
                }
            };
            let len = match next {
                // At the end of a followed file, a line without its newline
                // may still be growing: it stays held for the next poll.
                Next::Empty if at_end_waits => {
                    if out.len() > start {
                        return Ok(Poll::Ready);
                    }
                    if self.cancel.wait(Duration::from_millis(50)) {
                        return Ok(Poll::End);
                    }
                    return Ok(Poll::Idle);
                }
                Next::Empty => {
                    self.current += 1;
                    self.reader = None;
                    continue;
                }
                // A bad record for `on_error`; the next poll reads past it.
                Next::TooLong => {
                    return Err(RecordError(format!(
                        "a line is longer than `max_record_bytes` ({} bytes) (at {})",
                        self.max_record_bytes,
                        at()
                    ))
                    .into())
                }
                Next::Skipped { len } => {
                    self.offset += len;
                    self.line_no = self.line_no.map(|l| l + 1);
                    continue;
                }
                Next::Line { len } => len,
            };
            // Not UTF-8: a bad record for `on_error`, and the next line goes on.
            let parsed = match std::str::from_utf8(self.lines.line()) {
                Ok(text) => {
                    let text = trim_newline(text);
                    match self.format {
                        InputFormat::Text => Ok(Some(Value::Str(Str::from(text)))),
                        InputFormat::Json if text.trim().is_empty() => Ok(None),
                        InputFormat::Json => parse_json_line(text)
                            .map(Some)
                            .map_err(|e| format!("{} (at {})", e.0, at())),
                    }
                }
                Err(e) => Err(format!("not UTF-8 text ({e}) (at {})", at())),
            };
            self.offset += len;
            self.line_no = self.line_no.map(|l| l + 1);
            match parsed {
                Ok(Some(v)) => out.push(v),
                Ok(None) => {}
                Err(e) => return Err(RecordError(e).into()),
            }
        }
        Ok(Poll::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cancel::Canceller;

    fn open(pattern: &str, follow: bool, max: u32, at: (u32, u32), cancel: Cancel) -> FileSource {
        let spec = FileSpec {
            path: pattern.to_owned(),
            format: InputFormat::Text,
            follow,
            max_record_bytes: max,
        };
        let at = Instance {
            index: at.0,
            parallelism: at.1,
        };
        FileSource::open(&spec, at, cancel).unwrap()
    }

    fn source(dir: &std::path::Path, instance: u32, parallelism: u32) -> FileSource {
        let pattern = format!("{}/*.txt", dir.display());
        let cancel = Canceller::new().token();
        open(&pattern, false, 1 << 20, (instance, parallelism), cancel)
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

    #[test]
    fn a_position_of_another_shape_or_off_a_line_start_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "x\nyy\nz\n").unwrap();
        let a = a.display().to_string();
        let at = |offset: u64| serde_json::json!({"done": [], "reading": {"path": a, "offset": offset, "line": 2}});
        assert!(source(dir.path(), 0, 1).restore(&[at(2)]).is_ok());
        for (position, why) in [
            (at(3), "not at the start of a line"),
            (at(99), "past its end"),
            (
                serde_json::json!({"dnoe": [], "reading": null}),
                "no list of finished files",
            ),
            (
                serde_json::json!({"done": [], "reading": {"path": a, "offset": -1}}),
                "not a number of bytes",
            ),
        ] {
            let Err(OpError::Position(e)) = source(dir.path(), 0, 1).restore(&[position]) else {
                panic!("{why}: accepted")
            };
            let e = e.to_string();
            assert!(e.contains(why) && e.contains("damaged"), "{e}");
        }
    }

    /// A file part-read at a checkpoint, behind a new file that sorts
    /// before it, must stay part-read in every later checkpoint: a restore
    /// from one taken while the new file was read read it from the start.
    #[test]
    fn a_part_read_file_keeps_its_offset_while_a_new_file_is_read_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "b1\nb2\nb3\n").unwrap();
        let mut first = source(dir.path(), 0, 1);
        let mut out = Vec::new();
        first.poll(&mut out, 2).unwrap();
        let taken = first.position();
        std::fs::write(dir.path().join("a.txt"), "a1\na2\n").unwrap();
        let mut second = source(dir.path(), 0, 1);
        second.restore(&[taken]).unwrap();
        let mut out = Vec::new();
        second.poll(&mut out, 1).unwrap();
        assert_eq!(out, [Value::Str(Str::from("a1"))]);
        let mut third = source(dir.path(), 0, 1);
        third.restore(&[second.position()]).unwrap();
        let mut out = Vec::new();
        third.poll(&mut out, 10).unwrap();
        let lines: Vec<String> = out.iter().map(|v| v.to_json()).collect();
        assert_eq!(
            lines,
            ["\"a2\"", "\"b3\""],
            "every line once over the chain"
        );
    }

    /// A line that is not UTF-8 is a bad record: the next poll goes on
    /// with the line after it (so `on_error: skip` gets past it).
    #[test]
    fn a_line_that_is_not_utf8_is_a_bad_record_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"ok\n\xff\xfe bad\nnext\n").unwrap();
        let mut s = source(dir.path(), 0, 1);
        let mut out = Vec::new();
        let Err(OpError::Record(e)) = s.poll(&mut out, 10) else {
            panic!("expected a bad record")
        };
        assert!(
            e.0.contains("not UTF-8") && e.0.contains("a.txt:2"),
            "{}",
            e.0
        );
        assert_eq!(out, [Value::Str(Str::from("ok"))]);
        let mut out = Vec::new();
        s.poll(&mut out, 10).unwrap();
        assert_eq!(out, [Value::Str(Str::from("next"))]);
    }

    /// A line over `max_record_bytes` is a bad record, never held whole;
    /// the offsets around it stay exact, so a restore from a position
    /// taken while it was being read reads it again and goes on after it.
    #[test]
    fn a_line_over_the_limit_is_a_bad_record_with_exact_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(5_000);
        std::fs::write(dir.path().join("a.txt"), format!("ok\n{long}\nnext\nlast")).unwrap();
        let pattern = format!("{}/*.txt", dir.path().display());
        let open = || {
            let cancel = Canceller::new().token();
            open(&pattern, false, 100, (0, 1), cancel)
        };
        let mut s = open();
        let mut out = Vec::new();
        let Err(OpError::Record(e)) = s.poll(&mut out, 10) else {
            panic!("expected a bad record")
        };
        assert!(
            e.0.contains("max_record_bytes")
                && e.0.contains("(100 bytes)")
                && e.0.contains("a.txt:2"),
            "{}",
            e.0
        );
        assert_eq!(out, [Value::Str(Str::from("ok"))]);
        assert!(
            s.lines.line().len() <= 103,
            "kept {} bytes",
            s.lines.line().len()
        );
        let during = s.position();
        assert_eq!(during["reading"]["offset"], 3, "the long line's start");
        let mut out = Vec::new();
        s.poll(&mut out, 10).unwrap();
        assert_eq!(
            out,
            [Value::Str(Str::from("next")), Value::Str(Str::from("last"))]
        );

        let mut restored = open();
        restored.restore(&[during]).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            restored.poll(&mut out, 10),
            Err(OpError::Record(_))
        ));
        assert!(out.is_empty());
        let mut out = Vec::new();
        restored.poll(&mut out, 1).unwrap();
        assert_eq!(out, [Value::Str(Str::from("next"))]);
        assert_eq!(restored.position()["reading"]["offset"], 5_009);
        assert_eq!(restored.position()["reading"]["line"], 4);
    }

    /// At the end of a followed file, a line without its newline waits for
    /// the rest, and a checkpoint meanwhile records the offset of its start.
    #[test]
    fn a_followed_file_holds_a_growing_line_until_its_newline() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "a\npar").unwrap();
        let pattern = format!("{}/*.txt", dir.path().display());
        // Kept alive: a dropped canceller cancels.
        let canceller = Canceller::new();
        let mut s = open(&pattern, true, 100, (0, 1), canceller.token());
        let mut out = Vec::new();
        assert!(matches!(s.poll(&mut out, 10), Ok(Poll::Ready)));
        assert_eq!(out, [Value::Str(Str::from("a"))]);
        let mut out = Vec::new();
        assert!(matches!(s.poll(&mut out, 10), Ok(Poll::Idle)));
        assert!(out.is_empty());
        assert_eq!(s.position()["reading"]["offset"], 2);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"tial\nb\n").unwrap();
        let mut out = Vec::new();
        s.poll(&mut out, 10).unwrap();
        assert_eq!(
            out,
            [Value::Str(Str::from("partial")), Value::Str(Str::from("b"))]
        );
        assert_eq!(s.position()["reading"]["offset"], 12);
    }
}
