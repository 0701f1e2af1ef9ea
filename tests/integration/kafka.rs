//! The `kafka` source against a real Apache Kafka broker
//! ([`crate::kafka_broker`]): every record read once at any parallelism,
//! offsets restored exactly after kill -9, new partitions picked up, and
//! clear failures for a missing topic or an unreachable broker.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, text};
use crate::kafka_broker::Broker;
use crate::recovery::Prng;

/// A job that copies `topic` to part files in `out`, at `parallelism`.
fn copy_spec(
    dir: &Path,
    name: &str,
    servers: &str,
    topic: &str,
    parallelism: u32,
    extra: &str,
) -> std::path::PathBuf {
    let spec = format!(
        "name: {name}\n\
         parallelism: {parallelism}\n\
         {extra}\n\
         sources:\n  events:\n    type: kafka\n    bootstrap_servers: {servers}\n    topics: [{topic}]\n    bounded: true\n\
         sinks:\n  out:\n    type: file\n    inputs: [events]\n    format: text\n    path: {}\n",
        dir.join(format!("out-{name}")).display()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, spec).unwrap();
    path
}

/// The lines of the visible part files in `folder`, counted.
fn output(folder: &Path) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(folder) else {
        return lines;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            *lines.entry(line.to_owned()).or_default() += 1;
        }
    }
    lines
}

/// Starts an unbounded copy of topic `name` to part files, at parallelism
/// 2 with checkpoints every 200 ms; `extra` goes into the source's
/// settings. Gives the process and the output folder.
fn start_copy(
    dir: &Path,
    name: &str,
    servers: &str,
    extra: &str,
) -> (std::process::Child, std::path::PathBuf) {
    let out = dir.join("out");
    let spec = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &spec,
        format!(
            "name: {name}\nparallelism: 2\n\
             checkpoint:\n  interval: 200ms\n  store: file://{}\n\
             sources:\n  events:\n    type: kafka\n    bootstrap_servers: {servers}\n    topics: [{name}]\n{extra}\
             sinks:\n  out:\n    type: file\n    inputs: [events]\n    format: text\n    path: {}\n",
            dir.join("checkpoints").display(),
            out.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .arg("run")
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, out)
}

/// The output once it has `n` distinct lines, or after 90 s.
fn wait_for_output(out: &Path, n: usize) -> BTreeMap<String, usize> {
    let started = Instant::now();
    while output(out).len() < n && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(100));
    }
    output(out)
}

/// Whether a checkpoint completed anywhere under `dir`.
fn has_checkpoint(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        path.file_name().is_some_and(|n| n == "_metadata") || path.is_dir() && has_checkpoint(&path)
    })
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn once_each(values: &[String]) -> BTreeMap<String, usize> {
    values.iter().map(|v| (v.clone(), 1)).collect()
}

#[test]
fn a_topic_of_8_partitions_is_read_once_at_parallelism_1_2_and_4() {
    let broker = Broker::shared();
    broker.create_topic("read-8", 8);
    let sent = values("v", 8_000);
    broker.produce("read-8", 8, &sent);
    let dir = tempfile::tempdir().unwrap();
    for parallelism in [1, 2, 4] {
        let name = format!("read-{parallelism}");
        let spec = copy_spec(
            dir.path(),
            &name,
            &broker.servers,
            "read-8",
            parallelism,
            "",
        );
        let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
        let (_, stderr) = text(&out);
        assert!(out.status.success(), "parallelism {parallelism}: {stderr}");
        let read = output(&dir.path().join(format!("out-{name}")));
        assert_eq!(read, once_each(&sent), "parallelism {parallelism}");
    }
}

/// Kill -9 at moments spread over the run (each once the committed output
/// has passed a random share of the whole, however fast the machine), each
/// run restored with `--from latest` at a parallelism drawn anew: the
/// committed output holds every record of the topic once.
#[test]
fn offsets_are_restored_exactly_after_kill_9() {
    const KILLS: u64 = 6;
    let (_, seed) = crate::harness::campaign("KAFKA_KILLS", 0);
    let mut rng = Prng(seed);
    let broker = Broker::shared();
    broker.create_topic("kills-8", 8);
    let sent = values("k", 600_000);
    broker.produce("kills-8", 8, &sent);
    let total: u64 = sent.iter().map(|v| v.len() as u64 + 1).sum();
    let dir = tempfile::tempdir().unwrap();
    let (store, out) = (dir.path().join("checkpoints"), dir.path().join("out-kills"));
    let checkpoint = format!(
        "checkpoint:\n  interval: 100ms\n  store: file://{}\n",
        store.display()
    );
    let mut kills = 0;
    let mut from: Vec<&str> = Vec::new();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "seed {seed}: no end in 300 s"
        );
        let parallelism = [1, 2, 4][rng.range(0, 2) as usize];
        let spec = copy_spec(
            dir.path(),
            "kills",
            &broker.servers,
            "kills-8",
            parallelism,
            &checkpoint,
        );
        let mut child = Command::new(bin())
            .arg("run")
            .arg(&spec)
            .args(&from)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if kills < KILLS {
            let share = (kills + 1) as f64 / (KILLS + 2) as f64 + rng.range(0, 50) as f64 / 1000.0;
            let threshold = (total as f64 * share) as u64;
            while child.try_wait().unwrap().is_none() && committed_bytes(&out) < threshold {
                std::thread::sleep(Duration::from_millis(2));
            }
            if child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(rng.range(0, 100)));
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                if has_checkpoint(&store) {
                    from = vec!["--from", "latest"];
                }
                continue;
            }
        }
        let result = child.wait_with_output().unwrap();
        let (_, stderr) = text(&result);
        assert!(
            result.status.success(),
            "seed {seed}, after {kills} kills: {stderr}"
        );
        break;
    }
    let read = output(&out);
    let twice: Vec<_> = read.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let missing = sent.iter().filter(|v| !read.contains_key(*v)).count();
    assert!(
        twice.is_empty() && missing == 0 && read.len() == sent.len(),
        "seed {seed}, {kills} kills: {} distinct of {}, {missing} missing, twice: {twice:?}",
        read.len(),
        sent.len()
    );
    assert_eq!(kills, KILLS, "seed {seed}: the job ended before every kill");
}

/// The bytes of the visible part files in `folder`.
fn committed_bytes(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// An unbounded source lists the topic again every `discovery_interval`
/// and reads the partitions added since, from their start.
#[test]
fn new_partitions_are_picked_up() {
    let broker = Broker::shared();
    broker.create_topic("grows", 2);
    let before = values("a", 100);
    broker.produce("grows", 2, &before);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, out) = start_copy(
        dir.path(),
        "grows",
        &broker.servers,
        "    discovery_interval: 500ms\n",
    );
    let wait_for = |n| wait_for_output(&out, n);
    assert_eq!(wait_for(100), once_each(&before));
    broker.add_partitions("grows", 4);
    let after = values("b", 400);
    broker.produce("grows", 4, &after);
    let read = wait_for(500);
    // SIGINT: the job ends as cancelled.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let mut all = before.clone();
    all.extend(after);
    assert_eq!(
        read,
        once_each(&all),
        "partitions 2 and 3 were read from their start"
    );
}

#[test]
fn a_missing_topic_and_an_unreachable_broker_fail_clearly() {
    let broker = Broker::shared();
    let dir = tempfile::tempdir().unwrap();
    let spec = copy_spec(
        dir.path(),
        "missing",
        &broker.servers,
        "no-such-topic",
        1,
        "",
    );
    let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the Kafka topic `no-such-topic` does not exist on {}",
            broker.servers
        )),
        "{stderr}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let servers = format!("127.0.0.1:{port}");
    let spec = copy_spec(dir.path(), "refused", &servers, "t", 1, "");
    let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("on the Kafka brokers {servers}")),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The broker killed mid-run and started again: the source waits, the
/// job goes on, and every record is committed once.
#[test]
fn a_broker_restart_mid_run_loses_and_repeats_nothing() {
    let mut broker = Broker::start();
    broker.create_topic("restarts", 4);
    let first = values("a", 1_000);
    broker.produce("restarts", 4, &first);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, out) = start_copy(dir.path(), "restarts", &broker.servers, "");
    let wait_for = |n| wait_for_output(&out, n);
    assert_eq!(wait_for(1_000), once_each(&first));
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job ended while the broker was down"
    );
    broker.restart();
    let second = values("b", 1_000);
    broker.produce("restarts", 4, &second);
    let read = wait_for(2_000);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let mut all = first.clone();
    all.extend(second);
    assert_eq!(read, once_each(&all), "{stderr}");
}

/// The word count of specs/kafka_word_count.yaml between topics of the
/// shared broker, reading to the end (`bounded`).
fn word_count_spec(
    dir: &Path,
    servers: &str,
    input: &str,
    output: &str,
    parallelism: u32,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(crate::harness::root().join("specs/kafka_word_count.yaml"))
        .unwrap()
        .replace("127.0.0.1:9092", servers)
        .replace(
            "topics: [lines]",
            &format!("topics: [{input}]\n    bounded: true"),
        )
        .replace("topic: counts", &format!("topic: {output}"))
        .replace(
            "file:///tmp/dataflow/checkpoints",
            &format!("file://{}/checkpoints", dir.display()),
        )
        .replace(
            "name: kafka-word-count",
            &format!("name: kafka-word-count\nparallelism: {parallelism}"),
        );
    let path = dir.join("wc.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Kafka → word count → Kafka, at-least-once, killed with SIGKILL at
/// moments spread over the run and restored with `--from latest`: every
/// word's counts `1..=n` are all in the output topic (nothing lost),
/// none is above `n`; duplicates are what at-least-once allows, counted.
#[test]
fn the_kafka_word_count_loses_nothing_through_kill_9() {
    const KILLS: u64 = 5;
    let (_, seed) = crate::harness::campaign("KAFKA_WC", 0);
    let mut rng = Prng(seed);
    let broker = Broker::shared();
    broker.create_topic("wc-lines", 4);
    broker.create_topic("wc-counts", 4);
    let mut occurrences: BTreeMap<String, i64> = BTreeMap::new();
    let lines: Vec<String> = (0..40_000)
        .map(|_| {
            let words: Vec<String> = (0..4).map(|_| format!("w{}", rng.range(0, 49))).collect();
            for w in &words {
                *occurrences.entry(w.clone()).or_default() += 1;
            }
            words.join(",")
        })
        .collect();
    broker.produce("wc-lines", 4, &lines);
    let total: i64 = occurrences.values().sum();
    let dir = tempfile::tempdir().unwrap();
    let mut kills = 0;
    let mut from: Vec<&str> = Vec::new();
    loop {
        let parallelism = rng.range(1, 2) as u32;
        let spec = word_count_spec(
            dir.path(),
            &broker.servers,
            "wc-lines",
            "wc-counts",
            parallelism,
        );
        let mut child = Command::new(bin())
            .arg("run")
            .arg(&spec)
            .args(&from)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if kills < KILLS {
            let threshold = total * (kills as i64 + 1) / (KILLS as i64 + 2);
            let started = Instant::now();
            while child.try_wait().unwrap().is_none()
                && broker.written("wc-counts") < threshold
                && started.elapsed() < Duration::from_secs(120)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(rng.range(0, 200)));
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                if has_checkpoint(&dir.path().join("checkpoints")) {
                    from = vec!["--from", "latest"];
                }
                continue;
            }
        }
        let result = child.wait_with_output().unwrap();
        let (_, stderr) = text(&result);
        assert!(
            result.status.success(),
            "seed {seed}, after {kills} kills: {stderr}"
        );
        break;
    }
    let mut seen: BTreeMap<String, BTreeMap<i64, usize>> = BTreeMap::new();
    for (_, _, value) in broker.read_committed("wc-counts") {
        let record: serde_json::Value = serde_json::from_str(&value).unwrap();
        let word = record["word"].as_str().unwrap().to_owned();
        *seen
            .entry(word)
            .or_default()
            .entry(record["count"].as_i64().unwrap())
            .or_default() += 1;
    }
    let mut duplicates = 0;
    for (word, n) in &occurrences {
        let counts = seen.get(word).cloned().unwrap_or_default();
        let missing: Vec<i64> = (1..=*n)
            .filter(|c| !counts.contains_key(c))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "seed {seed}: {word} lost counts {missing:?} (of {n})"
        );
        assert_eq!(counts.keys().max(), Some(n), "seed {seed}: {word}");
        duplicates += counts.values().map(|c| c - 1).sum::<usize>();
    }
    assert_eq!(kills, KILLS, "seed {seed}: the job ended before every kill");
    eprintln!("seed {seed}: {total} counts, {duplicates} written twice or more over {kills} kills");
}

#[test]
fn a_sink_topic_that_does_not_exist_fails_clearly() {
    let broker = Broker::shared();
    broker.create_topic("sink-missing-in", 1);
    broker.produce("sink-missing-in", 1, &values("x", 10));
    let dir = tempfile::tempdir().unwrap();
    let spec = word_count_spec(
        dir.path(),
        &broker.servers,
        "sink-missing-in",
        "no-such-output",
        1,
    );
    let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the Kafka topic `no-such-output` does not exist on {}",
            broker.servers
        )),
        "{stderr}"
    );
}

/// A source and a sink on the SASL listener: with the right password the
/// job reads and writes; with a wrong one it fails, naming the brokers
/// and the refusal. Neither password appears in anything the runs print.
#[test]
fn sasl_credentials_work_fail_clearly_and_never_show() {
    use crate::kafka_broker::{SASL_PASSWORD, SASL_USER};
    let broker = Broker::shared();
    broker.create_topic("sasl-in", 2);
    broker.create_topic("sasl-out", 2);
    broker.produce("sasl-in", 2, &values("s", 100));
    let dir = tempfile::tempdir().unwrap();
    let spec = |password: &str| {
        let options = format!(
            "\n    librdkafka_options:\n      security.protocol: SASL_PLAINTEXT\n      sasl.mechanism: PLAIN\n      sasl.username: {SASL_USER}\n      sasl.password: {password}"
        );
        let text = format!(
            "name: sasl\n\
             sources:\n  events:\n    type: kafka\n    bootstrap_servers: {servers}\n    topics: [sasl-in]\n    bounded: true{options}\n\
             sinks:\n  out:\n    type: kafka\n    inputs: [events]\n    format: text\n    bootstrap_servers: {servers}\n    topic: sasl-out{options}\n",
            servers = broker.sasl_servers
        );
        let path = dir.path().join("sasl.yaml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let right = spec(SASL_PASSWORD);
    for args in [
        vec!["check"],
        vec!["check", "--format", "json"],
        vec!["run"],
        vec!["graph"],
    ] {
        let out = Command::new(bin())
            .args(&args)
            .arg(&right)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(
            !stdout.contains(SASL_PASSWORD) && !stderr.contains(SASL_PASSWORD),
            "{args:?} showed the password:\n{stdout}\n{stderr}"
        );
    }
    let written: Vec<String> = broker
        .read_committed("sasl-out")
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(once_each(&written), once_each(&values("s", 100)));

    let wrong = "not-the-Pa55word";
    let out = Command::new(bin())
        .arg("run")
        .arg(spec(wrong))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains(&broker.sasl_servers), "{stderr}");
    assert!(stderr.contains("Authentication failed"), "{stderr}");
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "{stderr}"
    );
}

/// When a checkpoint completes, its offsets are committed to the source's
/// consumer group, for lag monitoring: after a bounded run, the group's
/// offsets are the end of every partition.
#[test]
fn completed_checkpoints_commit_offsets_to_the_group() {
    let broker = Broker::shared();
    broker.create_topic("lag-4", 4);
    broker.produce("lag-4", 4, &values("l", 4_000));
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = format!(
        "checkpoint:\n  interval: 100ms\n  store: file://{}\n",
        dir.path().join("checkpoints").display()
    );
    let spec = copy_spec(dir.path(), "lag", &broker.servers, "lag-4", 2, &checkpoint);
    let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let committed = broker.committed("dataflow-lag-events", "lag-4");
    let ends = broker.ends("lag-4");
    assert_eq!(committed, ends, "{stderr}");
}

/// librdkafka repeats a property's value in some of its errors (an option
/// it does not know, as `sasl.jaas.config`, Java's): the secret is masked
/// in the job's message and logs.
#[test]
fn a_secret_in_an_option_librdkafka_refuses_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "jaas-Secret-4711";
    let spec = dir.path().join("jaas.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: jaas\n\
             sources:\n  events:\n    type: kafka\n    bootstrap_servers: 127.0.0.1:9\n    topics: [t]\n    bounded: true\n\
             \x20   librdkafka_options:\n      sasl.jaas.config: 'PlainLoginModule required password=\"{secret}\";'\n\
             sinks:\n  out: {{type: blackhole, inputs: [events]}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a mistake in the spec: {stderr}"
    );
    assert!(stderr.contains("sasl.jaas.config"), "{stderr}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stderr}"
    );
}
