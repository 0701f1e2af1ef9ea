//! The `dataflow` command: everything lives in the library; this only
//! turns its outcome into an exit status.

fn main() -> std::process::ExitCode {
    dataflow::cli::main()
}
