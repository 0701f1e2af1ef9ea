//! `dataflow check`: load and validate specs, print a summary or every problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::{against, print, Format, EXIT_USAGE};
use crate::diag::{self, Diagnostic, SourceFile};
use crate::error::Classify;
use crate::plan;
use crate::spec::{self, Loaded};

/// Reads and loads a spec file. Text that is not UTF-8 is read, and is an
/// error in the loaded spec's diagnostics.
pub fn read_spec(path: &Path) -> Result<Loaded, SpecFileError> {
    if path.is_dir() {
        return Err(SpecFileError::Folder(path.to_owned()));
    }
    let failed = |source: std::io::Error| SpecFileError::Read {
        path: path.to_owned(),
        source,
    };
    // Read no further than the limit: the file may be endless (a FIFO, /dev/zero).
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(failed)?,
            spec::limits::MAX_BYTES as u64 + 1,
        ),
        &mut bytes,
    )
    .map_err(failed)?;
    if bytes.len() > spec::limits::MAX_BYTES {
        return Err(SpecFileError::TooLarge(path.to_owned()));
    }
    Ok(spec::load_bytes(path.display().to_string(), bytes))
}

/// Reads and plans the spec of a command that needs a valid one (`run`,
/// `graph`, `test`), showing its diagnostics. Without a plan, says the
/// command was `not <done>` and gives the status to exit with: 2 for a
/// file that cannot be read, 1 for a spec with errors.
///
/// With `as_log`, all of it goes out as log events (`run --log-format json`).
pub fn planned(path: &Path, done: &str, as_log: bool) -> Result<(Loaded, plan::Plan), ExitCode> {
    let loaded = read_spec(path).map_err(|message| {
        if as_log {
            tracing::error!(class = "user", "{message}");
        } else {
            report!("error: {message}");
        }
        ExitCode::from(EXIT_USAGE)
    })?;
    let (plan, diagnostics) = plan::compile(&loaded);
    if as_log {
        diag::log(&loaded.file, &diagnostics);
    } else {
        diag::emit(&loaded.file, &diagnostics);
    }
    match plan {
        Some(plan) => Ok((loaded, plan)),
        None => {
            let message = format!(
                "{}: not {done}, the spec has errors (see `dataflow check`)",
                loaded.file.name
            );
            if as_log {
                tracing::error!(class = "user", "{message}");
            } else {
                report!("{message}");
            }
            Err(ExitCode::from(1))
        }
    }
}

/// A spec file that cannot be read at all: a usage error (status 2).
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    #[error("`{}` is a folder, not a spec file", .0.display())]
    Folder(PathBuf),
    #[error("cannot read `{}`: {}", path.display(), io_reason(source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is larger than {} KiB, the most a spec may be", .0.display(), spec::limits::MAX_BYTES / 1024)]
    TooLarge(PathBuf),
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

pub fn run(paths: &[PathBuf], format: Format, against: Option<&str>) -> ExitCode {
    if against.is_some() && paths.len() != 1 {
        report!("error: --against checks one spec against a checkpoint; give exactly one spec");
        return ExitCode::from(EXIT_USAGE);
    }
    let mut any_errors = false;
    let mut unreadable = false;
    // Why the checkpoint `--against` names could not be read, if it could not.
    let mut failure = None;
    let mut reports = Vec::new();
    for path in paths {
        let loaded = match read_spec(path) {
            Ok(loaded) => loaded,
            Err(message) => {
                unreadable = true;
                match format {
                    Format::Text => report!("error: {message}"),
                    Format::Json => reports.push(json!({"file": path.display().to_string(), "valid": false, "error": message.to_string()})),
                }
                continue;
            }
        };
        let (plan, diagnostics) = plan::compile(&loaded);
        let file = &loaded.file;
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        any_errors |= errors > 0;
        let compared = match (against, plan.as_ref()) {
            (Some(from), Some(plan)) if errors == 0 => Some(against::compare(&loaded, plan, from)),
            _ => None,
        };
        match &compared {
            Some(Ok(c)) => any_errors |= !c.refusals.is_empty(),
            Some(Err(e)) => failure = Some(e.class()),
            None => {}
        }
        match format {
            Format::Text => {
                if let Err(code) = report_text(file, &diagnostics, plan.as_ref(), errors) {
                    return code;
                }
                match &compared {
                    Some(Ok(c)) => {
                        if let Err(code) = print(&c.text()) {
                            return code;
                        }
                    }
                    Some(Err(e)) => {
                        report!(
                            "error: cannot check against `{}`: {e}{}",
                            against.unwrap_or_default(),
                            e.class().advice()
                        );
                    }
                    None => {}
                }
            }
            Format::Json => {
                let against_json = match &compared {
                    Some(Ok(c)) => c.json(),
                    Some(Err(e)) => json!({"error": e.to_string()}),
                    None => serde_json::Value::Null,
                };
                let mut report = json!({
                    "file": file.name,
                    "valid": errors == 0,
                    "diagnostics": diagnostics.iter().map(|d| d.to_json(file)).collect::<Vec<_>>(),
                    "plan": plan.as_ref().map(plan::Plan::summary_json),
                });
                if against.is_some() {
                    report["against"] = against_json;
                }
                reports.push(report)
            }
        }
    }
    if format == Format::Json {
        let json = serde_json::to_string_pretty(&json!({"files": reports})).unwrap_or_default();
        if let Err(code) = print(&format!("{json}\n")) {
            return code;
        }
    }
    if unreadable {
        ExitCode::from(EXIT_USAGE)
    } else if let Some(class) = failure {
        ExitCode::from(class.exit_code())
    } else if any_errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report_text(
    file: &SourceFile,
    diagnostics: &[Diagnostic],
    plan: Option<&plan::Plan>,
    errors: usize,
) -> Result<(), ExitCode> {
    diag::emit(file, diagnostics);
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match plan {
        Some(plan) if errors == 0 => {
            let note = if warnings > 0 {
                format!(" ({})", plural(warnings, "warning"))
            } else {
                String::new()
            };
            print(&format!(
                "{}: valid{note}\n{}",
                file.name,
                plan.summary_text()
            ))
        }
        _ => {
            report!(
                "{}: {}, {}",
                file.name,
                plural(errors, "error"),
                plural(warnings, "warning")
            );
            Ok(())
        }
    }
}
