//! The `dataflow` command line: argument parsing and exit codes.
//!
//! Exit codes, relied on by scripts and tests (docs/cli.md lists them all):
//! 0 success, 1 a spec has errors or the job failed, 2 a usage error (bad
//! flags, unreadable file), 128 + the signal's number when a run is
//! cancelled by SIGINT or SIGTERM.

/// `eprintln!` without its panic: when standard error is gone
/// (`dataflow check spec.yaml 2>&1 | head -1`) there is nowhere left to
/// report anything to.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod against;
mod check;
mod checkpoints;
mod control;
mod graph;
mod run;
mod test;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "dataflow",
    version,
    about = "Run stream-processing pipelines written as YAML files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate specs and print a summary of each, or every problem found.
    Check {
        /// Spec files to check.
        #[arg(required = true)]
        specs: Vec<std::path::PathBuf>,
        /// Output format: `text` for people, `json` for editors and CI.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also report, node by node, whether the state in this checkpoint
        /// or savepoint (as for `run --from`) would restore into the spec.
        #[arg(long, value_name = "CHECKPOINT")]
        against: Option<String>,
    },
    /// Run a pipeline until its sources end, it fails, or it is cancelled (Ctrl-C).
    Run {
        /// The spec to run.
        spec: std::path::PathBuf,
        /// No status line, no summary: only the records and errors.
        #[arg(long, short)]
        quiet: bool,
        /// Restore from a checkpoint: `latest`, a name such as `chk-17`, or a
        /// full location (`file:///…/word-count/chk-17`, `s3://…/chk-17`).
        #[arg(long = "from", short = 's', value_name = "CHECKPOINT")]
        from: Option<String>,
        /// Start even if the checkpoint holds state of nodes the spec no
        /// longer has (that state is dropped), as Flink's flag does.
        #[arg(long)]
        allow_non_restored_state: bool,
        /// Leave this node's state out of the restore: it starts empty
        /// (a keyed node) or from the beginning (a source). Repeatable.
        #[arg(long, value_name = "NODE")]
        drop_state: Vec<String>,
        /// What a restore does with a file sink's output committed after
        /// the restored checkpoint (it would be written again): `move` it
        /// into a hidden folder in the sink's folder, or `refuse` to start.
        #[arg(long, value_enum, default_value_t = NewerOutputArg::Move, value_name = "WHAT")]
        newer_output: NewerOutputArg,
        /// The port of the job's control endpoint (its API, metrics and
        /// web view; used by `list`, `savepoint`, `stop`, `top` and `tap`);
        /// by default any free port, printed at start.
        #[arg(long, default_value_t = 0, value_name = "PORT")]
        control_port: u16,
        /// The address the control endpoint listens on; by default
        /// 127.0.0.1. Any other needs DATAFLOW_CONTROL_TOKEN set: every
        /// request must then carry it (`Authorization: Bearer <token>`).
        #[arg(long, value_name = "IP")]
        control_address: Option<std::net::IpAddr>,
        /// How log lines are written to standard error: `text` for people,
        /// `json` (one object a line) for a machine.
        #[arg(long, value_enum, default_value_t = run::LogFormat::Text)]
        log_format: run::LogFormat,
    },
    /// List the jobs running on this machine.
    List {
        /// Output format: `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A running job's nodes and checkpoints, refreshed: records per second,
    /// backpressure, idle time, watermarks, and the latest checkpoints.
    Top {
        /// The job's name, or the id of one of its runs (see `dataflow list`).
        job: String,
        /// Milliseconds between two refreshes.
        #[arg(long, default_value_t = 1000, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..))]
        refresh_interval: u64,
        /// Print one screen and end (also what happens when standard
        /// output is not a terminal).
        #[arg(long)]
        once: bool,
    },
    /// Print records a node of a running job puts out (a sink: takes in), as
    /// JSON lines, live. Sampled: a tap never slows the job, and loses
    /// records it cannot keep up with.
    Tap {
        /// The job's name, or the id of one of its runs (see `dataflow list`).
        job: String,
        /// The node to watch.
        node: String,
        /// Stop after this many records (default: until the job ends or Ctrl-C).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
    /// Take a savepoint of a running job and print its location.
    Savepoint {
        /// The job's name, or the id of one of its runs (see `dataflow list`).
        job: String,
        /// Where to write it: a folder path or a location (file:///…, s3://…);
        /// by default `<store>/<job>/savepoints/sp-<N>` in the job's checkpoint store.
        #[arg(long, value_name = "LOCATION")]
        to: Option<String>,
    },
    /// Take a savepoint of a running job, then stop it: nothing after the
    /// savepoint is read, everything before it is committed.
    Stop {
        /// The job's name, or the id of one of its runs (see `dataflow list`).
        job: String,
        /// Where to write the savepoint (as for `savepoint --to`).
        #[arg(long, value_name = "LOCATION")]
        savepoint_to: Option<String>,
        /// End event time before the savepoint, so every open window
        /// closes and its result is written, as at the end of the input.
        /// For a job that will not be resumed: a restore would make those
        /// windows again from the records that come later.
        #[arg(long)]
        drain: bool,
    },
    /// List a job's checkpoints and check that each is whole.
    Checkpoints {
        /// A spec file, a job's checkpoint folder
        /// (/tmp/dataflow/checkpoints/word-count), or its location in a store
        /// (file:///tmp/dataflow/checkpoints/word-count, s3://bucket/prefix/word-count?…).
        target: String,
        /// Output format: `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Delete every checkpoint but the newest intact ones (`--keep`),
        /// whichever run took them, with the files only they need;
        /// savepoints are never deleted. Refused while the job runs here.
        #[arg(long)]
        prune: bool,
        /// With --prune: how many of the newest intact checkpoints to keep.
        #[arg(long, default_value_t = 1, requires = "prune", value_parser = clap::value_parser!(u32).range(1..))]
        keep: u32,
        /// With --prune: say what would be deleted, and delete nothing.
        #[arg(long, requires = "prune")]
        dry_run: bool,
    },
    /// Run a spec's tests: records given to its sources, the records its
    /// sinks must be given (`<spec>.tests.yaml` beside it); in process,
    /// touching no file, socket or store.
    Test {
        /// The spec to test.
        spec: std::path::PathBuf,
        /// The tests file, if not `<spec stem>.tests.yaml` beside the spec.
        #[arg(long, value_name = "FILE")]
        tests: Option<std::path::PathBuf>,
    },
    /// Draw the plan of a spec as `check` sees it: nodes with their type
    /// and parallelism, chains (one thread each), and each edge's kind.
    Graph {
        /// The spec to draw.
        spec: std::path::PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = graph::GraphFormat::Dot)]
        format: graph::GraphFormat,
    },
    /// Print the JSON Schema of a spec (the file in schemas/ is this output).
    Schema,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NewerOutputArg {
    Move,
    Refuse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Exit status for a usage error: a bad flag, an unreadable file.
pub const EXIT_USAGE: u8 = 2;

/// Reports a command's failure, worded by whose it is, and returns the
/// exit status its class gives (docs/cli.md).
fn failed(e: &(impl std::fmt::Display + crate::error::Classify)) -> ExitCode {
    let class = e.class();
    report!("error: {e}{}", class.advice());
    ExitCode::from(class.exit_code())
}

/// Writes a command's report to standard output. A reader that has gone
/// (`dataflow check spec.yaml | head -1`) is not an error: the rest is not
/// wanted, and the command ends as it would have, as `run` does. Any
/// other failure to write ends the command with status 1.
fn print(text: &str) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            let class = crate::error::io_class(&e);
            report!(
                "error: cannot write to standard output: {e}{}",
                class.advice()
            );
            Err(ExitCode::from(class.exit_code()))
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with success, errors to stderr.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::Check {
            specs,
            format,
            against,
        } => check::run(&specs, format, against.as_deref()),
        Command::Run {
            spec,
            quiet,
            from,
            allow_non_restored_state,
            drop_state,
            newer_output,
            control_port,
            control_address,
            log_format,
        } => run::run(
            &spec,
            run::Flags {
                quiet,
                from,
                allow_non_restored: allow_non_restored_state,
                drop_state,
                newer_output: match newer_output {
                    NewerOutputArg::Move => crate::runtime::NewerOutput::MoveAside,
                    NewerOutputArg::Refuse => crate::runtime::NewerOutput::Refuse,
                },
                control_port,
                control_address,
                log_format,
            },
        ),
        Command::List { format } => control::list(format),
        Command::Top {
            job,
            refresh_interval,
            once,
        } => watch::top(
            &job,
            std::time::Duration::from_millis(refresh_interval),
            once,
        ),
        Command::Tap { job, node, limit } => watch::tap(&job, &node, limit),
        Command::Savepoint { job, to } => control::savepoint(&job, to),
        Command::Stop {
            job,
            savepoint_to,
            drain,
        } => control::stop(&job, savepoint_to, drain),
        Command::Checkpoints {
            target,
            format,
            prune,
            keep,
            dry_run,
        } => {
            let prune = prune.then_some(checkpoints::Prune {
                keep: keep as usize,
                dry_run,
            });
            checkpoints::run(&target, format, prune)
        }
        Command::Graph { spec, format } => graph::run(&spec, format),
        Command::Test { spec, tests } => test::run(&spec, tests),
        Command::Schema => match print(&crate::spec::schema::generate()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
    }
}
