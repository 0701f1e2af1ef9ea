//! `dataflow run`: real files, a real TCP server, real signals.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, dataflow, printed, root, text};

/// A deterministic pseudo-random generator, independent of the engine's.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Writes `lines` lines of comma-separated words and returns the true count of each word.
fn word_file(path: &std::path::Path, lines: usize, seed: u64) -> HashMap<String, u64> {
    let mut rng = Lcg(seed);
    let mut counts = HashMap::new();
    let mut out = String::new();
    for _ in 0..lines {
        let n = 1 + rng.next() % 8;
        let words: Vec<String> = (0..n).map(|_| format!("w{}", rng.next() % 300)).collect();
        for w in &words {
            *counts.entry(w.clone()).or_insert(0) += 1;
        }
        out.push_str(&words.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
    counts
}

fn word_count_spec(
    input: &std::path::Path,
    parallelism: u32,
    backend: &str,
    state_dir: &std::path::Path,
) -> String {
    format!(
        r#"name: wc-test
parallelism: {parallelism}
state: {{backend: {backend}, dir: "{}"}}
sources:
  lines: {{type: file, path: "{}", parallelism: 1}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  pairs: {{type: map, inputs: [words], expr: '{{"word": this, "count": 1}}'}}
  counts: {{type: sum, inputs: [pairs], key: word, field: count}}
sinks:
  out: {{type: print, inputs: [counts]}}
"#,
        state_dir.display(),
        input.display()
    )
}

#[test]
fn word_count_matches_a_reference_at_every_parallelism_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("words.txt");
    let reference = word_file(&input, 5000, 7);
    let runs = [("memory", true), ("sled", true), ("memory", false)];
    for (backend, chaining) in runs {
        for parallelism in [1, 2, 4] {
            let spec = dir.path().join(format!("wc-{backend}-{parallelism}.yaml"));
            // Unchained, every operator instance runs on its own thread.
            let yaml = word_count_spec(&input, parallelism, backend, &dir.path().join("state"))
                .replace(
                    "\nparallelism:",
                    &format!("\nchaining: {chaining}\nparallelism:"),
                );
            std::fs::write(&spec, yaml).unwrap();
            let out = dataflow(&["run", spec.to_str().unwrap()]);
            let (stdout, stderr) = text(&out);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{backend} p{parallelism} chaining {chaining}: {stderr}"
            );
            // Keyed order: each word's rolling sums are exactly 1, 2, ..., n.
            let mut seen: HashMap<String, u64> = HashMap::new();
            for r in printed(&stdout) {
                let word = r["word"].as_str().unwrap().to_owned();
                let count = r["count"].as_u64().unwrap();
                let last = seen.entry(word.clone()).or_insert(0);
                assert_eq!(
                    count,
                    *last + 1,
                    "{backend} p{parallelism}: `{word}` jumped from {last} to {count}"
                );
                *last = count;
            }
            assert_eq!(
                seen, reference,
                "{backend} p{parallelism}: final counts differ"
            );
            assert!(stderr.contains("wc-test finished"), "no summary: {stderr}");
        }
    }
}

#[test]
fn socket_source_reads_from_a_real_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"a,b\nb,c\nc\n").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("socket.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"name: socket-test
sources:
  lines: {{type: socket, address: "{addr}"}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: print, inputs: [counts]}}
"#
        ),
    )
    .unwrap();
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    server.join().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let finals: HashMap<String, u64> = printed(&stdout)
        .into_iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        finals,
        HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 2)])
    );
}

#[test]
fn a_refused_connection_fails_clearly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("refused.yaml");
    std::fs::write(
        &spec,
        format!("name: refused\nsources:\n  lines: {{type: socket, address: \"127.0.0.1:{port}\"}}\nsinks:\n  out: {{type: print, inputs: [lines]}}\n"),
    )
    .unwrap();
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    // A refused connection is an outside failure: status 69, and said so.
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("(a failure outside dataflow: it may pass if tried again)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("lines#0 (node `lines`) failed: cannot connect to 127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

#[test]
fn a_slow_reader_holds_memory_bounded_and_sigterm_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("endless.yaml");
    std::fs::write(
        &spec,
        "name: endless\nsources:\n  gen: {type: generate, seed: 1}\ntransforms:\n  big: {type: map, inputs: [gen], expr: '{\"seq\": this.seq, \"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}'}\nsinks:\n  out: {type: print, inputs: [big]}\n",
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", spec.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    // The sink can only go as fast as this reader: 64 KiB every 20 ms.
    let mut buf = vec![0u8; 64 * 1024];
    let mut peak = 0;
    let mut read = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        read += stdout.read(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(rss_kib(pid).unwrap_or(0));
    }
    signal(pid, "TERM");
    // Keep draining so the sink is not stuck on a full pipe while it stops.
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    let status = child.wait().unwrap();
    drain.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("backpressure: read {read} bytes in 3 s; peak RSS {peak} KiB");
    assert!(read > 0);
    // An unbounded queue would hold the generator's output: millions of records per second.
    assert!(
        peak < 100 * 1024,
        "peak RSS {peak} KiB: the channels are not bounding memory"
    );
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("endless cancelled"), "{stderr}");
}

#[test]
fn sigint_cancels_with_130() {
    let mut child = Command::new(bin())
        .args(["run", "specs/generate_word_count.yaml"])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Before its handler is installed, SIGINT would kill the process as
    // any program: wait until the kernel says it is caught.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !catches_sigint(child.id()) {
        if let Some(status) = child.try_wait().unwrap() {
            // It finished before the signal could be sent.
            assert_eq!(status.code(), Some(0), "{status:?}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no SIGINT handler");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(130) | Some(0)), "{status:?}");
}

/// Whether process `pid` has a handler for SIGINT (bit 2 of `SigCgt`).
fn catches_sigint(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << 1) != 0)
}

fn json_spec(dir: &std::path::Path, on_error: &str) -> std::path::PathBuf {
    let input = dir.join("in.jsonl");
    std::fs::write(&input, "{\"n\": 1}\nnot json\n{\"n\": 2}\n{\"m\": 3}\n").unwrap();
    let spec = dir.join(format!("json-{on_error}.yaml"));
    std::fs::write(
        &spec,
        format!(
            r#"name: bad-records
sources:
  in: {{type: file, path: "{}", format: json, on_error: {on_error}}}
transforms:
  double: {{type: map, inputs: [in], expr: "this.n * 2", on_error: {on_error}}}
sinks:
  out: {{type: print, inputs: [double]}}
"#,
            input.display()
        ),
    )
    .unwrap();
    spec
}

#[test]
fn bad_records_fail_the_job_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = dataflow(&["run", json_spec(dir.path(), "fail").to_str().unwrap()]);
    let (_, stderr) = text(&out);
    // A bad record is the user's to fix: status 1, and no talk of retrying.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("tried again"), "{stderr}");
    assert!(
        stderr.contains("error: in#0 (node `in`) failed: a line is not JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(at ") && stderr.contains("in.jsonl:2)"),
        "the file and line number of the bad line: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn bad_records_are_dropped_and_counted_with_skip_and_log() {
    for mode in ["skip", "log"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dataflow(&["run", json_spec(dir.path(), mode).to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{mode}: {stderr}");
        assert_eq!(stdout, "2\n4\n", "{mode}");
        assert!(stderr.contains("in 3 out (1 dropped)"), "{mode}: {stderr}");
        assert!(
            stderr.contains("double 3 in/2 out (1 dropped)"),
            "{mode}: {stderr}"
        );
        let logged = stderr.contains("dropped a record");
        assert_eq!(logged, mode == "log", "{mode}: {stderr}");
    }
}

#[test]
fn an_unwritable_sink_folder_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file-not-folder");
    std::fs::write(&blocker, "x").unwrap();
    let spec = dir.path().join("unwritable.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: unwritable\nsources:\n  gen: {{type: generate, count: 10}}\nsinks:\n  out: {{type: file, inputs: [gen], path: \"{}/sub\"}}\n",
            blocker.display()
        ),
    )
    .unwrap();
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot start the job: out#0 (node `out`): cannot create the folder"),
        "{stderr}"
    );
}

#[test]
fn file_sink_shows_only_finished_part_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("parts.yaml");
    let out_dir = dir.path().join("out");
    std::fs::write(
        &spec,
        format!(
            "name: parts\nparallelism: 2\nsources:\n  gen: {{type: generate, count: 1000}}\nsinks:\n  out: {{type: file, inputs: [gen], path: \"{}\", format: csv}}\n",
            out_dir.display()
        ),
    )
    .unwrap();
    for run in 0..2 {
        let out = dataflow(&["run", spec.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
        let mut names: Vec<String> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let expected: Vec<String> = (0..=run)
            .flat_map(|n| [format!("part-0-{n}.csv"), format!("part-1-{n}.csv")])
            .collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(names, expected);
    }
    let lines: usize = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| {
            BufReader::new(std::fs::File::open(e.unwrap().path()).unwrap())
                .lines()
                .count()
        })
        .sum();
    assert_eq!(lines, 2000);
}

/// Waits for `child`, sampling its peak resident memory (`VmHWM`, which
/// only grows) as it runs; returns its output and that peak in MiB.
fn output_and_peak_mib(child: std::process::Child) -> (std::process::Output, u64) {
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = std::sync::Arc::clone(&peak);
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                else {
                    break; // a zombie: its memory is gone
                };
                peak.fetch_max(kib / 1024, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    sampler.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::Relaxed))
}

/// One 160 MiB line among short ones, split into words: without a bound
/// on a record's size it was held whole and split into 84 million words
/// (gigabytes). Now it is a bad record for `on_error`, read past in
/// bounded memory, and the lines around it are counted.
#[test]
fn a_line_over_max_record_bytes_is_a_bad_record_read_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        f.write_all(b"a,b\n").unwrap();
        let chunk = "w,".repeat(1 << 19);
        for _ in 0..160 {
            f.write_all(chunk.as_bytes()).unwrap();
        }
        f.write_all(b"\nb,c\n").unwrap();
    }
    for on_error in ["log", "fail"] {
        let spec = dir.path().join(format!("{on_error}.yaml"));
        std::fs::write(
            &spec,
            format!(
                r#"name: long-lines
sources:
  in: {{type: file, path: "{}", on_error: {on_error}}}
transforms:
  words: {{type: flat_map, inputs: [in], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: print, inputs: [counts]}}
"#,
                input.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin())
            .args(["run", spec.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, peak_mib) = output_and_peak_mib(child);
        let (stdout, stderr) = text(&out);
        assert!(
            stderr.contains("a line is longer than `max_record_bytes` (1048576 bytes)")
                && stderr.contains("in.txt:2"),
            "{on_error}: {stderr}"
        );
        assert!(peak_mib < 100, "{on_error}: peak {peak_mib} MiB");
        if on_error == "fail" {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            continue;
        }
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("in 2 out (1 dropped)"), "{stderr}");
        let mut last = HashMap::new();
        for record in printed(&stdout) {
            last.insert(record["key"].to_string(), record["count"].as_i64().unwrap());
        }
        let want: HashMap<String, i64> = [("\"a\"", 1), ("\"b\"", 2), ("\"c\"", 1)]
            .map(|(k, n)| (k.to_owned(), n))
            .into();
        assert_eq!(last, want, "{stdout}");
    }
}

/// A socket line over `max_record_bytes`, sent in pieces with pauses in
/// between: it is dropped by `on_error: skip`, and the lines around it
/// arrive.
#[test]
fn a_socket_line_over_max_record_bytes_is_dropped_and_reading_goes_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"a\n").unwrap();
        for _ in 0..3 {
            conn.write_all(&vec![b'x'; 1 << 20]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        conn.write_all(b"\nb\n").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("socket.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: long-socket-lines\nsources:\n  in: {{type: socket, address: \"{address}\", on_error: skip, max_record_bytes: 1000}}\nsinks:\n  out: {{type: print, inputs: [in]}}\n"
        ),
    )
    .unwrap();
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    server.join().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "\"a\"\n\"b\"\n", "{stderr}");
    assert!(stderr.contains("in 2 out (1 dropped)"), "{stderr}");
}

#[test]
fn a_stdin_line_over_max_record_bytes_fails_the_job_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("stdin.yaml");
    std::fs::write(
        &spec,
        "name: long-stdin-lines\nsources:\n  in: {type: stdin, max_record_bytes: 10}\nsinks:\n  out: {type: print, inputs: [in]}\n",
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", spec.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"short\nthis one is too long\nnever\n")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "\"short\"\n");
    assert!(
        stderr.contains("line 2 of standard input is longer than `max_record_bytes` (10 bytes)"),
        "{stderr}"
    );
}

/// Issue 14, item 6, for standard input: a line that is not UTF-8 is a bad
/// record for `on_error`, and reading goes on at the next line.
#[test]
fn a_stdin_line_that_is_not_utf8_is_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let run = |on_error: &str| {
        let spec = dir.path().join(format!("{on_error}.yaml"));
        std::fs::write(
            &spec,
            format!("name: stdin-bytes\nsources:\n  in: {{type: stdin, on_error: {on_error}}}\nsinks:\n  out: {{type: print, inputs: [in]}}\n"),
        )
        .unwrap();
        let mut child = Command::new(bin())
            .args(["run", spec.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"before\nbad \xff\xfe byte\nafter\n")
            .unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = run("skip");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "\"before\"\n\"after\"\n", "{stderr}");
    assert!(stderr.contains("in 2 out (1 dropped)"), "{stderr}");

    let out = run("fail");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "\"before\"\n", "{stderr}");
    assert!(stderr.contains("line 2 of standard input"), "{stderr}");
}
