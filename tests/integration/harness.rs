//! Running the built `dataflow` binary and looking at what it did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `dataflow` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dataflow"))
}

/// The repository's root, where `specs/` lives; commands run from there.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `dataflow` with `args` from the repository root.
pub fn dataflow(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("the dataflow binary runs")
}

/// stdout and stderr of a finished command, as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Records a `print` sink wrote, as JSON, without the prefixes it writes
/// before them (`3> `, `name> `, `name:3> `).
pub fn printed(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| match l.find("> ") {
            Some(at) if !l.starts_with('{') => &l[at + 2..],
            _ => l,
        })
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}
