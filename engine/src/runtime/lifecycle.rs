//! A run's life: its identity and its restarts.
//!
//! A run is one `dataflow run`: one id, printed at its start and written in
//! each of its checkpoints, and one or more attempts. After a failure an
//! attempt is followed by another (up to the spec's restart strategy) that
//! resumes from this run's newest completed checkpoint or, where none has
//! completed, from where the run itself started: never from a checkpoint
//! of another run.

use std::sync::Arc;

use crate::checkpoint::choice::{restart_from, Restart};
use crate::checkpoint::inspect::existing_checkpoints;
use crate::checkpoint::lease;
use crate::checkpoint::restore::restore_point;
use crate::checkpoint::store::OpendalStore;
use crate::checkpoint::SavepointRequest;
use crate::control::registry::{self, RunFile};
use crate::control::server::{self, Endpoint};
use crate::control::RunInfo;
use crate::plan::Plan;
use crate::runtime::live::Live;
use std::time::Duration;

use super::{attempt, CheckpointingError, Outcome, RunError, RunOptions, SetupError};
use crate::error::Classify;

/// How a run that did not end normally failed.
#[derive(Debug)]
pub struct Failed {
    pub error: RunError,
    /// Automatic restarts before the last failure.
    pub restarts: u32,
}

/// A new run id: 12 hex digits from the clock and the process id, unique
/// among the runs of one machine and readable in a log.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{nanos}-{}", std::process::id());
    format!("{:012x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) >> 16)
}

/// Runs the plan to its end, restarting after failures as the spec's
/// restart strategy allows. `summary` receives each attempt's summary line.
#[allow(
    clippy::result_large_err,
    reason = "called once per run, never on the path of records"
)]
pub fn run(
    plan: &Plan,
    mut options: RunOptions,
    allow_non_restored: bool,
    summary: &mut dyn FnMut(&str),
) -> Result<Outcome, Failed> {
    let signals = options
        .signals
        .get_or_insert_with(super::signals::listen)
        .clone();
    // Held to the end of the run: one run of a job at a time.
    let _lease = lease(plan, &options.run_id).map_err(|error| Failed { error, restarts: 0 })?;
    let (attempts, delay) = plan.restarts();
    let started_from = options.restore.clone();
    match &started_from {
        Some(from) => tracing::info!("run {} restores {}", options.run_id, from.location),
        None => {
            tracing::info!("run {} starts from the beginning", options.run_id);
            if let Some(note) = earlier_runs(plan) {
                tracing::info!("{note}");
            }
        }
    }
    let (requests, received) = crossbeam_channel::bounded(8);
    options.requests = Some(received);

    // What the endpoint shows, kept up to date by every attempt.
    let live = Arc::clone(
        options
            .live
            .get_or_insert_with(|| Arc::new(Live::new(plan, ""))),
    );
    // Held to the end of the run: the endpoint and the run file go with it.
    let _control = control(plan, &options, requests, live);
    let mut restarts = 0;
    // The newest checkpoint this run has completed, over all its attempts.
    let mut own_latest = None;
    loop {
        let (error, line, last_checkpoint) = match attempt(plan, &options) {
            Ok((outcome, line)) => {
                summary(&line);
                return Ok(outcome);
            }
            Err(failure) => failure,
        };
        own_latest = last_checkpoint.or(own_latest);
        if !line.is_empty() {
            summary(&line);
        }
        let mut error = error;
        // Until an attempt can start: a restore point that cannot be read
        // now (the store is down) is a failed attempt too.
        loop {
            if !error.restartable() || restarts >= attempts {
                return Err(Failed { error, restarts });
            }
            restarts += 1;
            tracing::warn!(
                "restart {restarts} of {attempts} in {}: {error}{}",
                crate::plan::settings::human(delay),
                error.class().advice()
            );
            // A signal during the delay ends the run as it would end an attempt.
            if let Ok(sig) = signals.recv_timeout(delay) {
                summary(&format!(
                    "{} cancelled during restart {restarts}'s delay",
                    plan.job().name
                ));
                return Ok(Outcome::Cancelled(sig));
            }
            match restart_from(own_latest, started_from.clone()) {
                // This run's own checkpoint has the state it chose to drop
                // dropped already: nothing more is left out.
                Restart::Own(id) => match restore_point(
                    plan,
                    &format!("chk-{id}"),
                    allow_non_restored,
                    &Default::default(),
                ) {
                    Ok(restore) => {
                        options.restore = Some(Arc::new(restore));
                        break;
                    }
                    Err(source) => error = CheckpointingError::Restore { id, source }.into(),
                },
                Restart::Start(from) => {
                    match &from {
                        Some(from) => tracing::info!(
                            "no checkpoint of this run completed yet: restarting from {}, where it started",
                            from.location
                        ),
                        None => tracing::info!(
                            "no checkpoint of this run completed yet: starting over from the beginning"
                        ),
                    }
                    options.restore = from;
                    break;
                }
            }
        }
    }
}

/// Takes the job's lease in its checkpoint store ([`lease`]), or says
/// which run holds it. A job without checkpoints shares nothing to corrupt.
fn lease(plan: &Plan, run: &str) -> Result<Option<lease::Lease>, RunError> {
    let Some(cp) = plan.checkpoint() else {
        return Ok(None);
    };
    // A renewal must fail before the lease it renews could expire.
    let store = OpendalStore::open_with_deadline(&cp.store, lease::TTL / 3)
        .map_err(CheckpointingError::LeaseStore)?;
    let local = (cp.store.scheme == crate::plan::store::Scheme::File)
        .then(|| std::path::Path::new(&cp.store.root));
    lease::acquire(Arc::new(store), local, &plan.job().name, run)
        .map(Some)
        .map_err(|e| SetupError::Lease(e).into())
}

/// Starts the run's control endpoint and writes its run file. Without
/// them the job still runs; `dataflow list`, `savepoint` and `stop` just
/// cannot reach it, which the warning says.
fn control(
    plan: &Plan,
    options: &RunOptions,
    requests: crossbeam_channel::Sender<SavepointRequest>,
    live: Arc<Live>,
) -> Option<(Endpoint, RunFile)> {
    // A savepoint answer waits for its checkpoint, then its copy.
    let wait = plan
        .checkpoint()
        .as_ref()
        .map_or(Duration::from_secs(60), |cp| cp.timeout * 2)
        + Duration::from_secs(60);
    let started_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let access = server::Access {
        address: options
            .control_address
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        port: options.control_port,
        token: options.control_token.clone(),
    };
    let info = |port| RunInfo {
        job: plan.job().name.clone(),
        run: options.run_id.clone(),
        pid: std::process::id(),
        port,
        address: access.address,
        spec: options.spec_path.clone(),
        started_at_ms,
    };
    let started = server::start(&access, info, requests, wait, live)
        .map_err(|e| {
            let at = std::net::SocketAddr::from((access.address, access.port));
            format!("cannot serve on {at}: {e}")
        })
        .and_then(|(endpoint, info)| {
            let file = RunFile::write(&info).map_err(|e| {
                format!(
                    "cannot write its run file in {}: {e}",
                    registry::dir().display()
                )
            })?;
            let host = if access.address.is_unspecified() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                access.address
            };
            tracing::info!(
                "control endpoint: http://{}/ (API under /v1/, Prometheus metrics at /metrics)",
                std::net::SocketAddr::from((host, endpoint.port))
            );
            Ok((endpoint, file))
        });
    started
        .map_err(|e| {
            tracing::warn!("no control endpoint ({e}): `dataflow list`, `savepoint` and `stop` cannot reach this run")
        })
        .ok()
}

/// For a run started without `--from`: what earlier runs left in the
/// store, which this run keeps (retention deletes only a run's own).
fn earlier_runs(plan: &Plan) -> Option<String> {
    let cp = plan.checkpoint()?;
    let store = OpendalStore::open_to_read(&cp.store).ok()?;
    let existing = existing_checkpoints(&store, &plan.job().name).ok()?;
    let newest = existing.last()?.checkpoint_id;
    let n = existing.len();
    Some(format!(
        "the store holds {n} checkpoint{} of earlier runs (the newest: chk-{newest}); they stay, and `--from chk-{newest}` restores one",
        if n == 1 { "" } else { "s" }
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_are_twelve_hex_digits_and_differ() {
        let a = super::new_run_id();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let b = super::new_run_id();
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
