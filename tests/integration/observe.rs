//! Seeing a job: `dataflow graph`, and (issue 17) a running job's API,
//! metrics and web view.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{bin, dataflow, root, text};

#[test]
fn graph_draws_the_seed_job_in_each_format() {
    let out = dataflow(&["graph", "specs/word_count.yaml"]);
    let (dot, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dot.starts_with("digraph \"word-count\" {"), "{dot}");
    for line in [
        "\"lines\" [label=\"lines\\nfile ×1\"];",
        "\"counts\" [label=\"counts\\nsum ×1\"];",
        "\"words\" -> \"pairs\" [label=\"hash (chained)\"];",
    ] {
        assert!(dot.contains(line), "{line} missing from\n{dot}");
    }

    let out = dataflow(&["graph", "specs/word_count.yaml", "--format", "mermaid"]);
    let (mermaid, _) = text(&out);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert_eq!(mermaid.matches("-->").count(), 4, "{mermaid}");

    let out = dataflow(&["graph", "specs/word_count.yaml", "--format", "svg"]);
    let (svg, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    for name in ["lines", "words", "pairs", "counts", "out"] {
        assert!(svg.contains(&format!(">{name}<")), "{name} not drawn");
    }
}

#[test]
fn graph_of_a_broken_spec_says_why_and_draws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "name: bad\nsources:\n  a: {type: generate}\nsinks:\n  out: {type: print, inputs: [nope]}\n",
    )
    .unwrap();
    let out = dataflow(&["graph", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(
        stderr.contains("not drawn, the spec has errors"),
        "{stderr}"
    );
    let out = dataflow(&["graph", "no/such.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A job of the seed's shape on generated lines, slowed to a rate so it
/// runs for a while, checkpointing often.
fn watched_spec(dir: &Path, name: &str) -> PathBuf {
    let spec = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &spec,
        format!(
            r#"name: {name}
parallelism: 2
checkpoint: {{interval: 300ms, store: "file://{store}"}}
sources:
  lines: {{type: generate, mode: lines, rate: 20000, count: 10000000, vocabulary: 1000}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: blackhole, inputs: [counts]}}
"#,
            store = dir.join("checkpoints").display()
        ),
    )
    .unwrap();
    spec
}

/// A `dataflow run` in the background, with its run files in a folder of
/// its own; killed when dropped.
pub struct Running {
    pub child: Child,
    pub runs: PathBuf,
    pub port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `dataflow run <spec> <args>` and waits until its run file
    /// names its endpoint.
    pub fn start(dir: &Path, spec: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let runs = dir.join("runs");
        let mut command = Command::new(bin());
        command
            .arg("run")
            .arg(spec)
            .args(args)
            .env("DATAFLOW_RUN_DIR", &runs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let mut running = Running {
            child,
            runs,
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while running.port == 0 {
            assert!(Instant::now() < deadline, "no run file in 30 s");
            assert!(
                running.child.try_wait().unwrap().is_none(),
                "the run ended early"
            );
            let out = Command::new(bin())
                .args(["list", "--format", "json"])
                .env("DATAFLOW_RUN_DIR", &running.runs)
                .output()
                .unwrap();
            let listed: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if let Some(port) = listed[0]["port"].as_u64() {
                running.port = port as u16;
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        running
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, None, "")
    }

    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }
}

/// One HTTP/1.1 request over a real TCP connection; the status and body.
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    try_http(port, method, path, token, body).expect("the endpoint accepts")
}

/// As [`http`], or `None` when nothing listens on the port.
fn try_http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let kind = if method == "POST" {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, rest) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // hyper sends small bodies whole, larger ones chunked.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut body = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            body.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        body
    } else {
        rest.to_owned()
    };
    Some((status, body))
}

/// The OpenAPI document's schema of a response, as a JSON Schema that
/// resolves the document's `$ref`s.
fn response_schema(openapi: &Value, path: &str) -> Value {
    let schema =
        &openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "docs/openapi.yaml has no JSON answer for GET {path}"
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": schema["$ref"],
        "components": openapi["components"],
    })
}

#[test]
fn a_running_job_serves_what_docs_openapi_yaml_says() {
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "watched");
    let run = Running::start(dir.path(), &spec, &[], &[]);
    let openapi: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("docs/openapi.yaml")).unwrap())
            .unwrap();
    // Live numbers: records moving and checkpoints completing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (metrics, checkpoints) = loop {
        let metrics = run.json("/v1/metrics");
        let checkpoints = run.json("/v1/checkpoints");
        let rate = metrics["nodes"][2]["instances"][0]["records_in_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        if rate > 0.0 && checkpoints["completed"].as_u64().unwrap_or(0) >= 2 {
            break (metrics, checkpoints);
        }
        assert!(
            Instant::now() < deadline,
            "no live numbers in 60 s: {metrics} {checkpoints}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Every JSON answer is what the document says it is.
    let mut checked = 0;
    for (path, methods) in openapi["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            if method != "get" {
                continue;
            }
            let (status, body) = run.get(&path.replace("{node}", "words"));
            assert_eq!(status, 200, "GET {path}: {body}");
            if methods["get"]["responses"]["200"]["content"]["application/json"].is_null() {
                continue;
            }
            let answer: Value = serde_json::from_str(&body).unwrap();
            let validator = jsonschema::validator_for(&response_schema(&openapi, path)).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&answer)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "GET {path} is not as documented: {errors:?}\n{answer}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "six JSON pages checked");
    // A path the document does not have is not served, and the answer
    // lists the ones that are.
    let (status, body) = run.get("/v1/nope");
    assert_eq!(status, 404);
    for (path, _) in openapi["paths"].as_object().unwrap() {
        assert!(
            body.contains(path.as_str()),
            "{path} missing from the 404 answer: {body}"
        );
    }

    // What the numbers say.
    let nodes: Vec<&str> = metrics["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["lines", "words", "counts", "out"]);
    for node in metrics["nodes"].as_array().unwrap() {
        let instances = node["instances"].as_array().unwrap();
        assert_eq!(instances.len(), 2, "{node}");
        for i in instances {
            let shares = ["backpressure", "idle", "busy"].map(|k| i[k].as_f64().unwrap());
            assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{i}");
            assert!(
                i.get("watermark_ms").is_none(),
                "no event time, no watermark: {i}"
            );
        }
    }
    // The source is rate-limited to 20,000 lines a second over two
    // instances: mostly idle, and its rate near its share.
    let source = &metrics["nodes"][0]["instances"][0];
    assert!(source["idle"].as_f64().unwrap() > 0.3, "{source}");
    let rate = source["records_out_per_second"].as_f64().unwrap();
    assert!((3_000.0..=12_000.0).contains(&rate), "{source}");
    let completed = &checkpoints["ended"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "completed")
        .cloned()
        .unwrap();
    assert_eq!(completed["participants"], 8, "{completed}");
    assert_eq!(completed["instances"].as_array().unwrap().len(), 8);
    assert!(
        completed["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["instance"].as_str().unwrap().starts_with("counts#"))
            .all(|i| i["bytes"].as_u64().unwrap() > 0),
        "the counts write state: {completed}"
    );
    let plan = run.json("/v1/plan");
    assert_eq!(
        plan["chains"],
        json!([["lines", "words"], ["counts", "out"]])
    );
    let spec_page = run.json("/v1/spec");
    assert_eq!(
        spec_page["text"].as_str().unwrap(),
        std::fs::read_to_string(&spec).unwrap()
    );
}

/// A program from Debian's packages, installed with apt-get when this
/// machine lacks it (the tests run as root on a fresh machine, as CI does).
pub fn debian_program(program: &str, package: &str) -> PathBuf {
    let find = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
    };
    if let Some(path) = find() {
        return path;
    }
    eprintln!("installing Debian's `{package}` for `{program}`");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).output();
        assert!(
            install(),
            "`{program}` is missing and `apt-get install {package}` failed: install it, then run the tests again"
        );
    }
    find().unwrap_or_else(|| panic!("`{package}` is installed but `{program}` is not on PATH"))
}

/// A free port on loopback, for a program that needs one given.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the run has completed `n` checkpoints and its records move.
fn await_live(run: &Running, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let checkpoints = run.json("/v1/checkpoints");
        let metrics = run.json("/v1/metrics");
        let moving = metrics["nodes"][2]["instances"][0]["records_in_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0;
        if moving && checkpoints["completed"].as_u64().unwrap_or(0) >= n {
            return;
        }
        assert!(Instant::now() < deadline, "not live in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn prometheus_scrapes_the_metrics() {
    let promtool = debian_program("promtool", "prometheus");
    let prometheus = debian_program("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "scraped");
    let run = Running::start(dir.path(), &spec, &[], &[]);
    await_live(&run, 1);

    // Prometheus's own parser and linter.
    let (status, exposition) = run.get("/metrics");
    assert_eq!(status, 200);
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    let (out, err) = text(&lint);
    assert!(
        lint.status.success() && out.is_empty() && err.is_empty(),
        "promtool: {out}{err}\n{exposition}"
    );

    // A real Prometheus server scrapes the job every second.
    let web = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: dataflow\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            run.port
        ),
    )
    .unwrap();
    let mut server = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // PromQL's instant queries, through Prometheus's HTTP API.
    let query = |q: &str| -> Vec<Value> {
        let encoded: String = q
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let Some((200, body)) = try_http(
            web,
            "GET",
            &format!("/api/v1/query?query={encoded}"),
            None,
            "",
        ) else {
            return Vec::new();
        };
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let value = |r: &Value| {
        r["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (words, up, durations) = loop {
        let words = query("dataflow_records_in_total{node=\"words\"}");
        let up = query("up{job=\"dataflow\"}");
        let durations = query("dataflow_checkpoint_duration_seconds_count");
        if words.len() == 2
            && words.iter().all(|r| value(r) > 0.0)
            && !durations.is_empty()
            && durations.iter().all(|r| value(r) >= 1.0)
        {
            break (words, up, durations);
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has no figures of the job after 60 s: {words:?} {up:?} {durations:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(up.len(), 1);
    assert_eq!(value(&up[0]), 1.0, "the scrape succeeds: {up:?}");
    for series in &words {
        let labels = &series["metric"];
        assert_eq!(labels["job_name"], "scraped");
        assert_eq!(
            labels["job"], "dataflow",
            "Prometheus's own label is left alone"
        );
        assert!(
            labels.get("exported_job").is_none() && labels.get("exported_instance").is_none(),
            "{labels}"
        );
    }
    assert!(value(&durations[0]) >= 1.0);
}

#[test]
fn the_web_view_shows_the_running_job_in_a_real_browser() {
    let chromium = debian_program("chromium", "chromium");
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "viewed");
    let run = Running::start(dir.path(), &spec, &[], &[]);
    await_live(&run, 2);
    let url = format!("http://127.0.0.1:{}/#node=counts", run.port);
    let browse = |what: &[&str]| {
        let out = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--virtual-time-budget=3000",
            ])
            .args(what)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium: {}", text(&out).1);
        out
    };
    let dom = String::from_utf8(browse(&["--dump-dom"]).stdout).unwrap();
    let metrics = run.json("/v1/metrics");
    let checkpoints = run.json("/v1/checkpoints");

    assert!(
        dom.contains("id=\"status\" class=\"live\">live<"),
        "the page never got live numbers:\n{dom}"
    );
    assert!(dom.contains("<h1 id=\"job\">viewed</h1>"), "{dom}");
    // Each node is drawn with the records it handled, which the API,
    // asked after the page, shows as many or more of.
    let attribute = |node: &str, name: &str| -> u64 {
        let at = dom
            .find(&format!("data-node=\"{node}\""))
            .unwrap_or_else(|| panic!("{node} not drawn"));
        let rest = &dom[at..dom[at..].find('>').map_or(dom.len(), |e| at + e)];
        let start = rest
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("{node} has no {name}: {rest}"))
            + name.len()
            + 2;
        rest[start..start + rest[start..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    for (k, node) in ["lines", "words", "counts", "out"].into_iter().enumerate() {
        let api: u64 = metrics["nodes"][k]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["records_out"].as_u64().unwrap())
            .sum();
        let shown = attribute(node, "data-records-out");
        assert!(shown > 0 && shown <= api, "{node}: page {shown}, API {api}");
    }
    // The node asked for shows its two instances.
    for instance in ["counts#0", "counts#1"] {
        assert!(
            dom.contains(&format!("data-instance=\"{instance}\"")),
            "{instance} not in the detail:\n{dom}"
        );
    }
    // Every checkpoint row is one the API knows, with its status then or later.
    let known: Vec<u64> = checkpoints["ended"]
        .as_array()
        .unwrap()
        .iter()
        .chain(checkpoints["in_progress"].as_array().unwrap())
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    let rows: Vec<u64> = dom
        .match_indices("data-checkpoint=\"")
        .map(|(at, m)| {
            let rest = &dom[at + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(rows.len() >= 2, "checkpoint rows: {rows:?}");
    for id in &rows {
        assert!(
            known.contains(id),
            "row {id} not in the API's history {known:?}"
        );
    }
    assert!(dom.contains("data-status=\"completed\""));

    // A screenshot, as docs/observability.md shows it.
    let shot = std::env::var_os("DATAFLOW_SCREENSHOT_TO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-view.png"));
    browse(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn a_token_guards_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "guarded");
    // Reachable from elsewhere without a token: refused before it starts.
    let out = Command::new(bin())
        .args([
            "run",
            spec.to_str().unwrap(),
            "--control-address",
            "0.0.0.0",
        ])
        .env_remove("DATAFLOW_CONTROL_TOKEN")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("set DATAFLOW_CONTROL_TOKEN"), "{stderr}");

    let token = "s3cr3t-t0ken";
    let run = Running::start(
        dir.path(),
        &spec,
        &["--control-address", "0.0.0.0"],
        &[("DATAFLOW_CONTROL_TOKEN", token)],
    );
    for path in ["/v1/job", "/metrics", "/v1/tap/words"] {
        assert_eq!(http(run.port, "GET", path, None, "").0, 401, "GET {path}");
        assert_eq!(http(run.port, "GET", path, Some("wrong-t0ken!"), "").0, 401);
        assert_eq!(http(run.port, "GET", path, Some(token), "").0, 200);
    }
    // The page holds no figures: it is served, and asks the API with the
    // token given after `#`.
    assert_eq!(http(run.port, "GET", "/", None, "").0, 200);
    let (status, body) = http(run.port, "POST", "/v1/savepoint", None, "");
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(token));
    // The commands send the token from the same variable.
    let savepoint = |with: Option<&str>| {
        let mut command = Command::new(bin());
        command
            .args(["savepoint", "guarded"])
            .env("DATAFLOW_RUN_DIR", &run.runs)
            .env_remove("DATAFLOW_CONTROL_TOKEN");
        if let Some(t) = with {
            command.env("DATAFLOW_CONTROL_TOKEN", t);
        }
        command.output().unwrap()
    };
    let refused = savepoint(None);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused).1);
    assert!(
        text(&refused).1.contains("needs the run's token"),
        "{}",
        text(&refused).1
    );
    let taken = savepoint(Some(token));
    assert!(taken.status.success(), "{}", text(&taken).1);
    drop(run);

    // On loopback a token guards what changes the job, not what reads it.
    let run = Running::start(dir.path(), &spec, &[], &[("DATAFLOW_CONTROL_TOKEN", token)]);
    assert_eq!(run.get("/v1/metrics").0, 200);
    assert_eq!(http(run.port, "POST", "/v1/stop", None, "").0, 401);
    assert_eq!(http(run.port, "POST", "/v1/stop", Some(token), "").0, 200);
    let mut run = run;
    let status = run.child.wait().unwrap();
    assert!(status.success(), "stopped cleanly: {status:?}");
}

/// `dataflow <args>` against the runs in `run`'s folder.
fn command(run: &Running, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("DATAFLOW_RUN_DIR", &run.runs)
        .output()
        .unwrap()
}

#[test]
fn tap_prints_a_nodes_records_live_and_never_holds_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "tapped");
    let run = Running::start(dir.path(), &spec, &[], &[]);
    await_live(&run, 1);

    let out = command(&run, &["tap", "tapped", "words", "--limit", "25"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let words: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(words.len(), 25, "{stdout}");
    assert!(words.iter().all(Value::is_string), "{stdout}");
    // A keyed node's output: what the counts put out.
    let out = command(&run, &["tap", "tapped", "counts", "--limit", "3"]);
    let counts: Vec<Value> = text(&out)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(counts.len(), 3);
    let out = command(&run, &["tap", "tapped", "nope", "--limit", "1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the job has no node `nope`; its nodes: counts, lines, out, words"),
        "{stderr}"
    );

    // A tap opened and never read again: its queue fills, and the job
    // goes on as before.
    let (status, _) = run.get("/v1/tap/words?max=1&wait_ms=0");
    assert_eq!(status, 200);
    let counted = |m: &Value| -> u64 {
        m["nodes"][2]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["records_in"].as_u64().unwrap())
            .sum()
    };
    let before = counted(&run.json("/v1/metrics"));
    std::thread::sleep(Duration::from_secs(3));
    let after = counted(&run.json("/v1/metrics"));
    assert!(
        after > before + 10_000,
        "the counts took in {} records in 3 s while a tap went unread",
        after - before
    );
}

#[test]
fn top_shows_nodes_and_checkpoints_in_80_columns() {
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "topped");
    let run = Running::start(dir.path(), &spec, &[], &[]);
    await_live(&run, 2);
    let out = command(&run, &["top", "topped", "--once"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for line in stdout.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
    }
    assert!(stdout.starts_with("topped · run "), "{stdout}");
    for node in ["lines ", "words ", "counts ", "out "] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(node))
            .unwrap_or_else(|| panic!("no row for {node}:\n{stdout}"));
        assert!(
            row.split_whitespace().nth(2) == Some("2"),
            "parallelism 2: {row}"
        );
    }
    assert!(stdout.contains("CHECKPOINTS  "), "{stdout}");
    assert!(stdout.contains(" completed "), "{stdout}");
    let out = command(&run, &["top", "nope", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("no job or run named `nope`"));
}

#[test]
fn log_format_json_writes_every_line_as_json() {
    let out = dataflow(&[
        "run",
        "specs/generate_word_count.yaml",
        "--log-format",
        "json",
    ]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{stderr}");
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    let summary = lines
        .iter()
        .find(|l| l["fields"]["summary"] == true)
        .expect("the summary is a line too");
    assert!(summary["fields"]["message"]
        .as_str()
        .unwrap()
        .starts_with("generate-word-count finished in "));

    // A failure's message too, with whose failure it is.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("refused.yaml");
    let port = free_port();
    std::fs::write(
        &spec,
        format!("name: refused\nsources:\n  s: {{type: socket, address: \"127.0.0.1:{port}\"}}\nsinks:\n  out: {{type: print, inputs: [s]}}\n"),
    )
    .unwrap();
    let out = dataflow(&["run", spec.to_str().unwrap(), "--log-format", "json"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert_eq!(last["fields"]["class"], "external", "{stderr}");

    // A spec with errors, and a restore that cannot be: JSON too.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "name: broken\nsources:\n  s: {type: stdin}\nsinks:\n  out: {type: print, inputs: [nope]}\n",
    )
    .unwrap();
    let out = dataflow(&["run", broken.to_str().unwrap(), "--log-format", "json"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let error = lines
        .iter()
        .find(|l| l["fields"]["code"] == "unknown-input")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(
        (
            error["fields"]["line"].as_u64(),
            error["fields"]["column"].as_u64()
        ),
        (Some(5), Some(31)),
        "{error}"
    );
    let out = dataflow(&[
        "run",
        "specs/word_count_files.yaml",
        "--from",
        "chk-999999",
        "--log-format",
        "json",
    ]);
    let (_, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    for line in stderr.lines() {
        let line: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    assert!(stderr.contains("cannot restore"), "{stderr}");
    assert!(
        last["fields"]["message"]
            .as_str()
            .unwrap()
            .contains(&port.to_string()),
        "{stderr}"
    );
}

#[test]
fn test_reports_each_difference_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("wc.tests.yaml");
    std::fs::write(
        &tests,
        "tests:\n  - name: right\n    inputs:\n      lines: [\"a,b\"]\n    outputs:\n      out:\n        - {word: a, count: 1}\n        - {word: b, count: 1}\n  - name: wrong\n    inputs:\n      lines: [\"a,a\"]\n    outputs:\n      out:\n        - {word: a, count: 1}\n        - {word: a, count: 3}\n",
    )
    .unwrap();
    let run = |tests: &Path| {
        dataflow(&[
            "test",
            "specs/word_count.yaml",
            "--tests",
            tests.to_str().unwrap(),
        ])
    };
    let out = run(&tests);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("test right ... passed"), "{stderr}");
    assert!(stderr.contains("test wrong ... failed"), "{stderr}");
    assert!(
        stderr.contains("sink `out` was never given this record"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wc.tests.yaml:15:11"),
        "the missing record's place: {stderr}"
    );
    assert!(
        stderr.contains("given: {\"count\":2,\"word\":\"a\"}"),
        "{stderr}"
    );
    assert!(stderr.ends_with("1 failed, 1 passed\n"), "{stderr}");

    // A name the spec lacks, and a file that is not there.
    std::fs::write(
        &tests,
        "tests:\n  - name: typo\n    inputs:\n      lnes: [\"a\"]\n",
    )
    .unwrap();
    let out = run(&tests);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the spec has no source `lnes`"), "{stderr}");
    assert!(stderr.contains("wc.tests.yaml:4:7"), "{stderr}");
    assert!(stderr.contains("did you mean `lines`?"), "{stderr}");
    let out = run(&dir.path().join("none.yaml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out)
        .1
        .contains("cannot read the tests of specs/word_count.yaml"));
    // A job that fails on a record fails its test, saying why.
    std::fs::write(
        &tests,
        "tests:\n  - name: bad sum\n    inputs:\n      lines: [\"a\"]\n    outputs:\n      out: []\n",
    )
    .unwrap();
    let spec = dir.path().join("fails.yaml");
    std::fs::write(
        &spec,
        "name: fails\nsources:\n  lines: {type: stdin}\ntransforms:\n  n: {type: map, inputs: [lines], expr: 'int(this)'}\nsinks:\n  out: {type: print, inputs: [n]}\n",
    )
    .unwrap();
    let out = dataflow(&[
        "test",
        spec.to_str().unwrap(),
        "--tests",
        tests.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("test `bad sum`: the job failed: "),
        "{stderr}"
    );
}

/// A page of another site cannot use the endpoint: a request naming
/// another host (DNS rebinding) is refused, and a change of the job must be
/// JSON, which a page cannot send without asking first.
#[test]
fn requests_from_other_sites_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = watched_spec(dir.path(), "fenced");
    let run = Running::start(dir.path(), &spec, &[], &[]);
    let raw = |request: String| -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", run.port)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split(' ').nth(1).unwrap().parse().unwrap()
    };
    let get = |host: &str| {
        raw(format!(
            "GET /v1/spec HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))
    };
    assert_eq!(get("evil.example:80"), 403);
    assert_eq!(get(&format!("rebound.example:{}", run.port)), 403);
    for host in [
        format!("127.0.0.1:{}", run.port),
        format!("localhost:{}", run.port),
        "127.0.0.1".to_owned(),
    ] {
        assert_eq!(get(&host), 200, "{host}");
    }
    let stop = |kind: &str| {
        raw(format!(
            "POST /v1/stop HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: {kind}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            run.port
        ))
    };
    assert_eq!(stop("text/plain"), 415);
    assert_eq!(stop("application/x-www-form-urlencoded"), 415);
    assert_eq!(run.get("/v1/job").0, 200, "the job still runs");
}
