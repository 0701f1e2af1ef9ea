//! The `dataflow` command line: argument parsing and exit codes.
//!
//! Exit codes, relied on by scripts and tests: 0 success, 1 a spec has
//! errors or the job failed, 2 a usage error (bad flags, unreadable file).

mod check;
mod checkpoints;
mod run;

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
    },
    /// List a job's checkpoints and check that each is whole.
    Checkpoints {
        /// A spec file, or the location of a job's folder in a store
        /// (e.g. file:///tmp/dataflow/checkpoints/word-count).
        target: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the JSON Schema of a spec (the file in schemas/ is this output).
    Schema,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Exit status for a usage error: a bad flag, an unreadable file.
pub const EXIT_USAGE: u8 = 2;

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
        Command::Check { specs, format } => check::run(&specs, format),
        Command::Run {
            spec,
            quiet,
            from,
            allow_non_restored_state,
        } => run::run(&spec, quiet, from.as_deref(), allow_non_restored_state),
        Command::Checkpoints { target, format } => checkpoints::run(&target, format),
        Command::Schema => {
            print!("{}", crate::spec::schema::generate());
            ExitCode::SUCCESS
        }
    }
}
