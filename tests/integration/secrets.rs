//! Issue 14, item 7: no secret ever shows. A job whose store location
//! carries an S3 secret key runs against the real S3-protocol server, and
//! every output of every command a user types about it is searched for
//! the secret: the run's log, summaries, `check` in both formats, `checkpoints`,
//! `list`, every page of the control endpoint (its API, its Prometheus
//! metrics), errors about bad locations. The run's control token is
//! searched for too.

use std::process::{Command, Output};

use crate::harness::{bin, text};
use crate::s3::{S3Server, SECRET_KEY};

/// The control token the job runs with: no output may show it either.
const TOKEN: &str = "tok-5f1e0c2b9a";

#[test]
fn no_output_of_a_job_shows_its_store_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start();
    let store = server.store_url("ck");
    assert!(store.contains(SECRET_KEY));
    let spec = dir.path().join("secret.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"name: secret
checkpoint: {{interval: 100ms, store: "{store}"}}
sources:
  lines: {{type: generate, mode: lines, count: 6000, rate: 2000}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: blackhole, inputs: [counts]}}
"#
        ),
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let runs = dir.path().join("runs");
    let dataflow = |args: &[&str]| -> Output {
        Command::new(bin())
            .args(args)
            .env("DATAFLOW_RUN_DIR", &runs)
            .output()
            .unwrap()
    };
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut record = |what: &str, out: &Output| {
        let (stdout, stderr) = text(out);
        outputs.push((what.to_owned(), format!("{stdout}\n{stderr}")));
    };
    let child = Command::new(bin())
        .args(["run", spec])
        .env("DATAFLOW_RUN_DIR", &runs)
        .env("DATAFLOW_CONTROL_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs: what `list` and the control endpoint show, and the run file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let listed = loop {
        let out = dataflow(&["list", "--format", "json"]);
        if text(&out).0.contains("\"secret\"") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    record("list", &listed);
    let info: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let port = info[0]["port"]
        .as_u64()
        .expect("the run is listed with its port");
    for path in [
        "/v1/job",
        "/v1/plan",
        "/v1/spec",
        "/v1/metrics",
        "/v1/checkpoints",
        "/metrics",
    ] {
        let page = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{port}{path}")])
            .output()
            .expect("curl runs");
        assert!(!page.stdout.is_empty(), "GET {path} gave nothing");
        record(&format!("GET {path}"), &page);
    }
    for entry in std::fs::read_dir(&runs).unwrap().flatten() {
        let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
        record(
            "run file",
            &Output {
                status: listed.status,
                stdout: body.into_bytes(),
                stderr: Vec::new(),
            },
        );
    }
    let run = child.wait_with_output().unwrap();
    assert!(run.status.success(), "{}", text(&run).1);
    record("run", &run);
    for args in [
        vec!["check", spec],
        vec!["check", spec, "--format", "json"],
        vec!["checkpoints", spec],
        vec!["checkpoints", spec, "--format", "json"],
        vec!["check", spec, "--against", "latest"],
        vec!["run", spec, "--from", "latest"],
    ] {
        let out = dataflow(&args);
        record(&args.join(" "), &out);
    }
    // Locations typed with the secret, wrong in several ways.
    let bad = format!("s3://[bad/ck?secret_access_key={SECRET_KEY}");
    let unknown = store.replace("region=", "colour=red&region=");
    for args in [
        vec!["run", spec, "--from", &bad],
        vec!["checkpoints", &bad],
        vec!["checkpoints", &unknown],
    ] {
        let out = dataflow(&args);
        assert!(!out.status.success(), "{args:?}");
        record(&args.join(" "), &out);
    }
    assert!(outputs.len() >= 18, "{} outputs", outputs.len());
    for (what, output) in &outputs {
        assert!(
            !output.contains(SECRET_KEY),
            "`{what}` shows the secret key:\n{output}"
        );
        assert!(
            !output.contains(TOKEN),
            "`{what}` shows the control token:\n{output}"
        );
    }
    let spec_page = &outputs.iter().find(|(w, _)| w == "GET /v1/spec").unwrap().1;
    assert!(spec_page.contains("secret_access_key=***"), "{spec_page}");
    // The location itself is still shown, with the secret masked.
    let json = &outputs
        .iter()
        .find(|(w, _)| w.ends_with("--format json") && w.starts_with("check "))
        .unwrap()
        .1;
    assert!(json.contains("secret_access_key=***"), "{json}");
}
