//! The `file` sink: part files in a folder.
//!
//! Instance `i` writes `.part-<i>-<n>.<ext>.inprogress`, hidden by its
//! leading dot, and renames it to `part-<i>-<n>.<ext>` when its input ends,
//! so a reader of the folder only sees finished files. `n` is the first
//! number not used yet, so a new run never overwrites an old one's output.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::operators::{Sink, SinkError};
use crate::spec::OutputFormat;
use crate::value::Value;

pub struct FileSink {
    writer: BufWriter<File>,
    in_progress: PathBuf,
    final_path: PathBuf,
    format: OutputFormat,
    line: String,
}

impl FileSink {
    pub fn open(dir: &Path, format: OutputFormat, instance: u32) -> Result<FileSink, SinkError> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            SinkError::Io(format!("cannot {what} `{}`: {e}", p.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder", dir, e))?;
        let ext = match format {
            OutputFormat::Json => "json",
            OutputFormat::Text => "txt",
            OutputFormat::Csv => "csv",
        };
        let (in_progress, final_path, file) = (0u64..)
            .find_map(|n| {
                let name = format!("part-{instance}-{n}.{ext}");
                let final_path = dir.join(&name);
                let in_progress = dir.join(format!(".{name}.inprogress"));
                if final_path.exists() {
                    return None;
                }
                // create_new: two runs writing the same folder never share a file.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&in_progress)
                {
                    Ok(f) => Some(Ok((in_progress, final_path, f))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                    Err(e) => Some(Err(io("create", &in_progress, e))),
                }
            })
            .unwrap_or_else(|| {
                Err(SinkError::Io(format!(
                    "no free part file name in `{}`",
                    dir.display()
                )))
            })?;
        Ok(FileSink {
            writer: BufWriter::with_capacity(256 * 1024, file),
            in_progress,
            final_path,
            format,
            line: String::new(),
        })
    }
}

/// Appends one CSV field, quoted when it must be (RFC 4180).
fn csv_field(value: &Value, out: &mut String) {
    let mut text = String::new();
    value.write_text(&mut text);
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        for record in batch {
            self.line.clear();
            match self.format {
                OutputFormat::Json => self.line.push_str(&record.to_json()),
                OutputFormat::Text => record.write_text(&mut self.line),
                OutputFormat::Csv => match record {
                    Value::Map(fields) => {
                        for (i, (_, v)) in fields.iter().enumerate() {
                            if i > 0 {
                                self.line.push(',');
                            }
                            csv_field(v, &mut self.line);
                        }
                    }
                    other => csv_field(other, &mut self.line),
                },
            }
            self.line.push('\n');
            self.writer.write_all(self.line.as_bytes()).map_err(|e| {
                SinkError::Io(format!(
                    "cannot write `{}`: {e}",
                    self.in_progress.display()
                ))
            })?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let err = |e: std::io::Error| {
            SinkError::Io(format!(
                "cannot finish `{}`: {e}",
                self.final_path.display()
            ))
        };
        self.writer.flush().map_err(err)?;
        self.writer.get_ref().sync_all().map_err(err)?;
        std::fs::rename(&self.in_progress, &self.final_path).map_err(err)
    }
}
