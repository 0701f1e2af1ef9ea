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

/// A randomized campaign's trials and seed: `DATAFLOW_<NAME>_TRIALS`
/// (else `trials`) and `DATAFLOW_<NAME>_SEED` (else the clock). The seed
/// is printed, so that a failure can be replayed.
pub fn campaign(name: &str, trials: u64) -> (u64, u64) {
    let var = |what: &str| {
        std::env::var(format!("DATAFLOW_{name}_{what}"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
    };
    let trials = var("TRIALS").unwrap_or(trials);
    let seed = var("SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("{trials} trials, seed {seed} (DATAFLOW_{name}_SEED={seed} replays them)");
    (trials, seed)
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

/// `dataflow run spec` fed on its standard input, with `args` after the
/// spec and the run files in `runs`: the process, its input, and the
/// lines it prints as they come.
pub fn run_fed(
    spec: &Path,
    args: &[&str],
    runs: &Path,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    crossbeam_channel::Receiver<String>,
) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin())
        .arg("run")
        .arg(spec)
        .args(args)
        .env("DATAFLOW_RUN_DIR", runs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1024);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let stdin = child.stdin.take().unwrap();
    (child, stdin, rx)
}
