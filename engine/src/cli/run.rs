//! `dataflow run`: validate a spec, then run it until it ends, fails or is cancelled.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use super::check::planned;
use super::EXIT_USAGE;
use std::sync::Arc;

use crate::checkpoint::restore::restore_point;
use crate::error::{Class, Classify};
use crate::runtime::lifecycle::Failed;
use crate::runtime::{self, NewerOutput, Outcome, RunOptions};

/// The flags of `dataflow run`.
pub struct Flags {
    pub quiet: bool,
    pub from: Option<String>,
    pub allow_non_restored: bool,
    /// Nodes whose state in the checkpoint restored is left out.
    pub drop_state: Vec<String>,
    pub newer_output: NewerOutput,
    pub control_port: u16,
    pub control_address: Option<std::net::IpAddr>,
    pub log_format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: `INFO checkpoint 3 complete …`.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`),
    /// the summary and the final error included, for a machine to read.
    Json,
}

pub fn run(path: &Path, flags: Flags) -> ExitCode {
    let Flags {
        quiet,
        from,
        allow_non_restored,
        drop_state,
        newer_output,
        control_port,
        control_address,
        log_format,
    } = flags;
    let json = log_format == LogFormat::Json;
    init_logging(quiet, log_format);
    // A failure's message: a line for people, or a log event with its class.
    let failed = |message: &str, class: Class| {
        if json {
            tracing::error!(class = class.name(), "{message}");
        } else {
            report!("error: {message}");
        }
    };
    let control_token = std::env::var(crate::control::TOKEN_VARIABLE)
        .ok()
        .filter(|t| !t.is_empty());
    if control_address.is_some_and(|a| !a.is_loopback()) && control_token.is_none() {
        failed(
            &format!(
                "--control-address {} is reachable from other machines: set {} to a token that requests must carry",
                control_address.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                crate::control::TOKEN_VARIABLE
            ),
            Class::User,
        );
        return ExitCode::from(EXIT_USAGE);
    }
    if from.is_none() && !drop_state.is_empty() {
        failed(
            "--drop-state leaves a node's state out of a restore: it needs --from",
            Class::User,
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let drop: std::collections::BTreeSet<String> = drop_state.into_iter().collect();
    let (loaded, plan) = match planned(path, "run", json) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    // From here on a signal asks for a clean stop (and never waits long).
    let signals = runtime::signals::listen();
    let restore = match from
        .as_deref()
        .map(|f| restore_point(&plan, f, allow_non_restored, &drop))
        .transpose()
    {
        Ok(r) => r,
        Err(e) => {
            let class = e.class();
            failed(&format!("cannot restore: {e}{}", class.advice()), class);
            return ExitCode::from(class.exit_code());
        }
    };
    let options = RunOptions {
        status_line: !quiet && log_format == LogFormat::Text && std::io::stderr().is_terminal(),
        spec_hash: format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(loaded.file.text.as_bytes())
        ),
        restore: restore.map(Arc::new),
        run_id: runtime::lifecycle::new_run_id(),
        newer_output,
        spec_path: path.display().to_string(),
        control_port,
        control_address,
        control_token,
        requests: None,
        signals: Some(signals),
        live: Some(Arc::new(runtime::live::Live::new(&plan, &loaded.file.text))),
    };
    let mut summary = |line: &str| {
        if json {
            tracing::info!(summary = true, "{line}");
        } else if !quiet {
            report!("{line}");
        }
    };
    match runtime::lifecycle::run(&plan, options, allow_non_restored, &mut summary) {
        Ok(Outcome::Finished | Outcome::Stopped) => ExitCode::SUCCESS,
        Ok(Outcome::Cancelled(sig)) => ExitCode::from((128 + sig) as u8),
        Err(Failed { error, restarts }) => {
            let after = match restarts {
                0 => String::new(),
                1 => " (after 1 restart)".to_owned(),
                n => format!(" (after {n} restarts)"),
            };
            let class = error.class();
            failed(&format!("{error}{after}{}", class.advice()), class);
            ExitCode::from(class.exit_code())
        }
    }
}

fn init_logging(quiet: bool, format: LogFormat) {
    let level = if quiet {
        tracing::Level::ERROR
    } else {
        tracing::Level::INFO
    };
    if format == LogFormat::Json {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(crate::console::LogWriter)
            .with_max_level(level)
            .with_target(false)
            .log_internal_errors(false)
            .try_init();
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(crate::console::LogWriter)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(crate::console::colour(&std::io::stderr()))
        .without_time()
        .log_internal_errors(false)
        .try_init();
}
