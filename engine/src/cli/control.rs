//! `dataflow list`, `savepoint` and `stop`: the running jobs of this
//! machine, reached through their run files and control endpoints.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper::Method;

use super::{print, Format};
use crate::checkpoint::inspect::utc;
use crate::control::client::{answer, call, CallError};
use crate::control::registry::FindError;
use crate::control::{registry, RunInfo, SavepointAnswer, SavepointBody};
use crate::error::{Class, Classify};

/// Why `savepoint` or `stop` did not get a savepoint.
#[derive(Debug, thiserror::Error)]
enum SavepointError {
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("job `{job}` (run {run}) ended before the savepoint was taken")]
    Ended { job: String, run: String },
    #[error("job `{job}` (run {run}): {source}")]
    Refused {
        job: String,
        run: String,
        source: CallError,
    },
    #[error("cannot find the current folder: {0}")]
    Cwd(std::io::Error),
    #[error("cannot encode the request: {0}")]
    Encode(serde_json::Error),
}

impl Classify for SavepointError {
    fn class(&self) -> Class {
        match self {
            SavepointError::Find(_) | SavepointError::Ended { .. } => Class::User,
            SavepointError::Call(e) | SavepointError::Refused { source: e, .. } => e.class(),
            SavepointError::Cwd(_) => Class::External,
            SavepointError::Encode(_) => Class::Bug,
        }
    }
}

/// How long `stop` waits for the job's process to end after its savepoint.
const STOP_WAIT: Duration = Duration::from_secs(120);
/// How long a savepoint may take: its checkpoint's timeout is the job's
/// business; this only keeps a dead endpoint from hanging the command.
const SAVEPOINT_WAIT: Duration = Duration::from_secs(3600);

pub fn list(format: Format) -> ExitCode {
    // A run whose endpoint does not answer is dying or stuck: it is shown,
    // marked, since it still holds its job.
    let runs: Vec<(RunInfo, bool)> = registry::running()
        .into_iter()
        .map(|run| {
            let answers = call(&run, Method::GET, "/v1/job", None, Duration::from_secs(2))
                .is_ok_and(|(status, _)| status == 200);
            (run, answers)
        })
        .collect();
    let text = match format {
        Format::Json => {
            let entries: Vec<serde_json::Value> = runs
                .iter()
                .map(|(run, answers)| {
                    let mut v = serde_json::to_value(run).unwrap_or_default();
                    v["answers"] = (*answers).into();
                    v
                })
                .collect();
            serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n"
        }
        Format::Text if runs.is_empty() => "no jobs are running on this machine\n".to_owned(),
        Format::Text => {
            let mut text = format!(
                "{:<20} {:<12} {:>8} {:>6}  {:<19}  SPEC\n",
                "JOB", "RUN", "PID", "PORT", "STARTED (UTC)"
            );
            for (run, answers) in &runs {
                text.push_str(&format!(
                    "{:<20} {:<12} {:>8} {:>6}  {:<19}  {}{}\n",
                    run.job,
                    run.run,
                    run.pid,
                    run.port,
                    utc(run.started_at_ms),
                    run.spec,
                    if *answers { "" } else { "  (not answering)" }
                ));
            }
            text
        }
    };
    match print(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Asks the run `name` designates for a savepoint (and to stop, with
/// `stop`: `Some(drain)`).
fn take_savepoint(
    name: &str,
    to: Option<String>,
    stop: Option<bool>,
) -> Result<(RunInfo, SavepointAnswer), SavepointError> {
    let run = registry::find(name)?;
    let (path, body) = if let Some(drain) = stop {
        (
            "/v1/stop",
            SavepointBody {
                savepoint_to: to,
                drain,
                ..Default::default()
            },
        )
    } else {
        (
            "/v1/savepoint",
            SavepointBody {
                to,
                ..Default::default()
            },
        )
    };
    let body = serde_json::to_string(&body).map_err(SavepointError::Encode)?;
    let (status, bytes) =
        call(&run, Method::POST, path, Some(body), SAVEPOINT_WAIT).map_err(|e| {
            // A job that reached its end as we called closes its endpoint.
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if !registry::running().iter().any(|r| r.run == run.run) {
                    return SavepointError::Ended {
                        job: run.job.clone(),
                        run: run.run.clone(),
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            e.into()
        })?;
    let taken =
        answer::<SavepointAnswer>(status, &bytes).map_err(|source| SavepointError::Refused {
            job: run.job.clone(),
            run: run.run.clone(),
            source,
        })?;
    Ok((run, taken))
}

/// A location given on the command line, made absolute: the job runs in
/// another folder than this command.
fn absolute(to: Option<String>) -> Result<Option<String>, SavepointError> {
    match to {
        Some(to) if !to.contains("://") && !to.starts_with('/') => {
            let cwd = std::env::current_dir().map_err(SavepointError::Cwd)?;
            Ok(Some(cwd.join(to).display().to_string()))
        }
        other => Ok(other),
    }
}

pub fn savepoint(name: &str, to: Option<String>) -> ExitCode {
    let result = absolute(to).and_then(|to| take_savepoint(name, to, None));
    match result {
        Ok((run, taken)) => {
            report!(
                "savepoint of job `{}` (run {}) taken as checkpoint {}; restore it with: dataflow run {} --from {}",
                run.job,
                run.run,
                taken.checkpoint_id,
                run.spec,
                taken.location
            );
            match print(&format!("{}\n", taken.location)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(code) => code,
            }
        }
        Err(e) => super::failed(&e),
    }
}

pub fn stop(name: &str, to: Option<String>, drain: bool) -> ExitCode {
    let (run, taken) = match absolute(to).and_then(|to| take_savepoint(name, to, Some(drain))) {
        Ok(done) => done,
        Err(e) => return super::failed(&e),
    };
    if let Err(code) = print(&format!("{}\n", taken.location)) {
        return code;
    }
    // The job commits the savepoint's output and ends; its run file goes
    // with it.
    let deadline = Instant::now() + STOP_WAIT;
    while registry::running().iter().any(|r| r.run == run.run) {
        if Instant::now() > deadline {
            report!(
                "error: job `{}` (run {}) took its savepoint ({}) but has not ended after {}{}",
                run.job,
                run.run,
                taken.location,
                crate::spec::Duration(STOP_WAIT),
                Class::External.advice()
            );
            return ExitCode::from(Class::External.exit_code());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    report!(
        "job `{}` (run {}) stopped with savepoint {}; restore it with: dataflow run {} --from {}",
        run.job,
        run.run,
        taken.checkpoint_id,
        run.spec,
        taken.location
    );
    ExitCode::SUCCESS
}
