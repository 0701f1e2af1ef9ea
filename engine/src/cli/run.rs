//! `dataflow run`: validate a spec, then run it until it ends, fails or is cancelled.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use super::check::read_spec;
use super::EXIT_USAGE;
use std::sync::Arc;

use crate::checkpoint::restore::{check_mapping, resolve, Restore};
use crate::plan::Plan;
use crate::runtime::{self, Outcome, RunError, RunOptions};
use crate::{diag, plan};

pub fn run(path: &Path, quiet: bool, from: Option<&str>, allow_non_restored: bool) -> ExitCode {
    let loaded = match read_spec(path) {
        Ok(loaded) => loaded,
        Err(message) => {
            report!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (plan, diagnostics) = plan::compile(&loaded);
    diag::emit(&loaded.file, &diagnostics);
    let Some(plan) = plan else {
        report!(
            "{}: not run, the spec has errors (see `dataflow check`)",
            loaded.file.name
        );
        return ExitCode::from(1);
    };
    init_logging(quiet);
    let restore = match from
        .map(|f| restore_point(&plan, f, allow_non_restored))
        .transpose()
    {
        Ok(r) => r,
        Err(message) => {
            report!("error: cannot restore: {message}");
            return ExitCode::from(1);
        }
    };
    let mut options = RunOptions {
        status_line: !quiet && std::io::stderr().is_terminal(),
        spec_hash: format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(loaded.file.text.as_bytes())
        ),
        restore: restore.map(Arc::new),
    };
    let (attempts, delay) = plan.restarts();
    let mut restarts = 0;
    // Where this run started, and the newest checkpoint it has completed
    // since: a restart resumes from the latter, or else from the former,
    // never from a checkpoint of another run.
    let started_from = options.restore.clone();
    let mut own_latest = None;
    loop {
        let (error, summary, last_checkpoint) = match runtime::run(&plan, &options) {
            Ok((outcome, summary)) => {
                if !quiet {
                    report!("{summary}");
                }
                return match outcome {
                    Outcome::Finished => ExitCode::SUCCESS,
                    Outcome::Cancelled(sig) => ExitCode::from((128 + sig) as u8),
                };
            }
            Err(failure) => failure,
        };
        own_latest = last_checkpoint.or(own_latest);
        if !quiet && !summary.is_empty() {
            report!("{summary}");
        }
        let restartable = matches!(error, RunError::Instance { .. } | RunError::Checkpoint(_));
        if !restartable || restarts >= attempts {
            let after = if restarts > 0 {
                format!(
                    " (after {restarts} restart{})",
                    if restarts == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            report!("error: {error}{after}");
            return ExitCode::from(1);
        }
        restarts += 1;
        tracing::warn!(
            "restart {restarts} of {attempts} in {}: {error}",
            crate::spec::Duration(delay)
        );
        std::thread::sleep(delay);
        options.restore = match own_latest {
            Some(id) => match restore_point(&plan, &format!("chk-{id}"), allow_non_restored) {
                Ok(restore) => Some(Arc::new(restore)),
                Err(message) => {
                    report!("error: cannot restart: {message}");
                    return ExitCode::from(1);
                }
            },
            None => {
                match &started_from {
                    Some(from) => tracing::info!(
                        "no checkpoint of this run completed yet: restarting from chk-{}, where it started",
                        from.metadata.checkpoint_id
                    ),
                    None => tracing::info!(
                        "no checkpoint of this run completed yet: starting over from the beginning"
                    ),
                }
                started_from.clone()
            }
        };
    }
}

/// The verified checkpoint `from` names, checked against the plan.
fn restore_point(plan: &Plan, from: &str, allow_non_restored: bool) -> Result<Restore, String> {
    let cp = plan.checkpoint.as_ref().ok_or_else(|| {
        "the spec has no `checkpoint:` section, so there is no store to restore from".to_owned()
    })?;
    let (restore, notes) = resolve(&cp.store, &plan.job.name, from)?;
    for note in notes {
        tracing::warn!("{note}");
    }
    for note in check_mapping(plan, &restore.metadata, allow_non_restored)? {
        tracing::warn!("{note}");
    }
    tracing::info!("restoring from {}", restore.location);
    Ok(restore)
}

fn init_logging(quiet: bool) {
    let level = if quiet {
        tracing::Level::ERROR
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(crate::console::LogWriter)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(crate::console::colour(&std::io::stderr()))
        .without_time()
        .log_internal_errors(false)
        .try_init();
}
