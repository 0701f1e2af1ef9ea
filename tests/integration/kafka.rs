//! The `kafka` source against a real Apache Kafka broker
//! ([`crate::kafka_broker`]): every record read once at any parallelism,
//! offsets restored exactly after kill -9, new partitions picked up, and
//! clear failures for a missing topic or an unreachable broker.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataflow::checkpoint::metadata::Metadata;
use dataflow::nodes::SinkRestore;
use dataflow::operators::sinks::kafka::transactional::TransactionalKafkaSink;
use dataflow::operators::Sink;

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
/// settings, `args` after the spec's path (`--from latest`). Gives the
/// process and the output folder.
fn start_copy(
    dir: &Path,
    name: &str,
    servers: &str,
    extra: &str,
    args: &[&str],
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
        .args(args)
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
/// committed output holds every record of the topic once, and none of
/// those written after the first checkpoint (a bounded source ends where
/// its first run found the end, as Flink's keeps its stopping offsets).
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
                    if from.is_empty() {
                        // Past the end the first run found: a restored
                        // run ends where that one would have.
                        broker.produce("kills-8", 8, &values("late", 800));
                    }
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
    let late = read.keys().filter(|v| v.starts_with("late")).count();
    assert!(
        twice.is_empty() && missing == 0 && late == 0 && read.len() == sent.len(),
        "seed {seed}, {kills} kills: {} distinct of {}, {missing} missing, {late} written after the first run's end, twice: {twice:?}",
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

/// A restore whose offsets the topic no longer holds (deleted by the
/// topic's retention; here by a deletion of records, which retention
/// does) reads on from the oldest record kept, and says that records were
/// lost before the job could read them.
#[test]
fn a_restore_past_deleted_records_says_so() {
    let broker = Broker::shared();
    let name = "truncated";
    broker.create_topic(name, 1);
    let first = values("a", 5);
    broker.produce(name, 1, &first);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, out) = start_copy(dir.path(), name, &broker.servers, "", &[]);
    // The part files show records once a checkpoint holding them completed.
    assert_eq!(wait_for_output(&out, 5), once_each(&first));
    child.kill().unwrap();
    child.wait().unwrap();
    let second = values("b", 5);
    broker.produce(name, 1, &second);
    broker.delete_before(name, 0, 8);
    let (child, out) = start_copy(dir.path(), name, &broker.servers, "", &["--from", "latest"]);
    let read = wait_for_output(&out, 7);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let stderr = text(&child.wait_with_output().unwrap()).1;
    let kept: Vec<String> = first.iter().chain(&second[3..]).cloned().collect();
    assert_eq!(read, once_each(&kept), "{stderr}");
    assert!(
        stderr.contains("offset reset")
            && stderr.contains("truncated [0]")
            && stderr.contains("no longer in the topic"),
        "{stderr}"
    );
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
        &[],
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
    fails_for_a_missing_topic(&spec, "no-such-topic", &broker.servers);

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
    let (mut child, out) = start_copy(dir.path(), "restarts", &broker.servers, "", &[]);
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

/// What a killed word count wrote: each word's occurrences in the input,
/// and how many times each of its counts is in the output topic, as a
/// `read_committed` reader sees it.
struct Killed {
    seed: u64,
    occurrences: BTreeMap<String, i64>,
    seen: BTreeMap<String, BTreeMap<i64, usize>>,
}

/// Kafka → word count → Kafka with the sink's `delivery`, killed with
/// SIGKILL `kills` times at moments spread over the run (parallelism
/// redrawn each time) and restored with `--from latest`, then run to its
/// end. `name` keeps the tests' topics and transactional ids apart.
fn killed_word_count(name: &str, delivery: &str, kills: u64) -> Killed {
    let (_, seed) = crate::harness::campaign(&format!("KAFKA_{}", name.to_uppercase()), 0);
    let mut rng = Prng(seed);
    let broker = Broker::shared();
    let (lines_topic, counts_topic) = (format!("{name}-lines"), format!("{name}-counts"));
    broker.create_topic(&lines_topic, 4);
    broker.create_topic(&counts_topic, 4);
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
    broker.produce(&lines_topic, 4, &lines);
    let total: i64 = occurrences.values().sum();
    let dir = tempfile::tempdir().unwrap();
    let mut killed = 0;
    let mut from: Vec<&str> = Vec::new();
    let mut logs = String::new();
    let progress = broker.watch(&counts_topic);
    loop {
        let parallelism = rng.range(1, 3) as u32;
        let spec = word_count_spec(
            dir.path(),
            &broker.servers,
            &lines_topic,
            &counts_topic,
            parallelism,
        );
        let written = std::fs::read_to_string(&spec)
            .unwrap()
            .replace(
                "name: kafka-word-count",
                &format!("name: kafka-word-count-{name}"),
            )
            .replace("delivery: exactly_once", &format!("delivery: {delivery}"));
        std::fs::write(&spec, written).unwrap();
        let mut child = Command::new(bin())
            .arg("run")
            .arg(&spec)
            .args(&from)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if killed < kills {
            let threshold = total * (killed as i64 + 1) / (kills as i64 + 2);
            let started = Instant::now();
            while child.try_wait().unwrap().is_none()
                && progress.written() < threshold
                && started.elapsed() < Duration::from_secs(120)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if child.try_wait().unwrap().is_none() {
                // A little jitter only: the last twentieth of the input
                // takes a release build some tens of milliseconds.
                std::thread::sleep(Duration::from_millis(rng.range(0, 20)));
                child.kill().unwrap();
                let output = child.wait_with_output().unwrap();
                logs.push_str(&text(&output).1);
                killed += 1;
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
            "seed {seed}, after {killed} kills: {stderr}"
        );
        logs.push_str(&stderr);
        break;
    }
    assert_eq!(
        killed, kills,
        "seed {seed}: the job ended before every kill"
    );
    eprintln!(
        "seed {seed}: {kills} kills; {} restores wrote again transactions a killed run had not committed",
        logs.matches("written again").count()
    );
    let mut seen: BTreeMap<String, BTreeMap<i64, usize>> = BTreeMap::new();
    for (_, _, value) in broker.read_committed(&counts_topic) {
        let record: serde_json::Value = serde_json::from_str(&value).unwrap();
        let word = record["word"].as_str().unwrap().to_owned();
        *seen
            .entry(word)
            .or_default()
            .entry(record["count"].as_i64().unwrap())
            .or_default() += 1;
    }
    Killed {
        seed,
        occurrences,
        seen,
    }
}

/// At least once through kill -9: every word's counts `1..=n` are all in
/// the output topic (nothing lost), none is above `n`; duplicates are what
/// at-least-once allows, counted.
#[test]
fn the_kafka_word_count_loses_nothing_through_kill_9() {
    let run = killed_word_count("alo", "at_least_once", 5);
    let seed = run.seed;
    let mut duplicates = 0;
    for (word, n) in &run.occurrences {
        let counts = run.seen.get(word).cloned().unwrap_or_default();
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
    let total: i64 = run.occurrences.values().sum();
    eprintln!("seed {seed}: {total} counts, {duplicates} written twice or more over 5 kills");
}

/// Exactly once through 20 kill -9s: a `read_committed` reader of the
/// output topic sees every word's counts `1..=n` once each, no gap, no
/// duplicate, whatever moment each kill came at (mid-transaction,
/// between a checkpoint's completion and its commit, during a restore's
/// writing again).
#[test]
fn the_kafka_word_count_is_exactly_once_through_20_kill_9s() {
    let run = killed_word_count("eo", "exactly_once", 20);
    let seed = run.seed;
    for (word, n) in &run.occurrences {
        let counts = run.seen.get(word).cloned().unwrap_or_default();
        let missing: Vec<i64> = (1..=*n)
            .filter(|c| !counts.contains_key(c))
            .take(5)
            .collect();
        let twice: Vec<(i64, usize)> = counts
            .iter()
            .filter(|(_, k)| **k > 1)
            .map(|(c, k)| (*c, *k))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && twice.is_empty(),
            "seed {seed}: {word} (of {n}) lost counts {missing:?}, has counts more than once {twice:?}"
        );
        assert_eq!(counts.keys().max(), Some(n), "seed {seed}: {word}");
    }
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
    fails_for_a_missing_topic(&spec, "no-such-output", &broker.servers);
}

/// A record larger than the brokers take fails the job as the user's
/// mistake (exit 1, not 69: sending it again cannot help), naming the
/// topic and the settings to change, in either delivery.
#[test]
fn a_record_too_large_for_the_brokers_fails_clearly() {
    let broker = Broker::shared();
    broker.create_topic("too-large", 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, format!("small\n{}\n", "x".repeat(2 << 20))).unwrap();
    for delivery in ["at_least_once", "exactly_once"] {
        let spec = dir.path().join(format!("{delivery}.yaml"));
        std::fs::write(
            &spec,
            format!(
                "name: too-large-{delivery}\n\
                 checkpoint:\n  interval: 200ms\n  store: file://{}/checkpoints\n\
                 sources:\n  lines:\n    type: file\n    path: {}\n    max_record_bytes: 4194304\n\
                 sinks:\n  out:\n    type: kafka\n    inputs: [lines]\n    bootstrap_servers: {}\n\
                 \x20   topic: too-large\n    delivery: {delivery}\n",
                dir.path().display(),
                input.display(),
                broker.servers
            ),
        )
        .unwrap();
        let out = Command::new(bin()).arg("run").arg(&spec).output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{delivery}: {stderr}");
        assert!(
            stderr.contains("a message for the Kafka topic `too-large`")
                && stderr.contains("is larger than allowed")
                && stderr.contains("message.max.bytes"),
            "{delivery}: {stderr}"
        );
    }
}

/// `dataflow run spec` exits 1 naming the missing `topic` and the brokers.
fn fails_for_a_missing_topic(spec: &Path, topic: &str, servers: &str) {
    let out = Command::new(bin()).arg("run").arg(spec).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the Kafka topic `{topic}` does not exist on {servers}"
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

/// An exactly-once sink of topic `topic` with transactional ids
/// `crash-<topic>-…`, as a spec gives it.
fn exactly_once_sink(servers: &str, topic: &str) -> dataflow::nodes::sinks::kafka::Kafka {
    serde_yaml::from_str(&format!(
        "{{bootstrap_servers: '{servers}', topic: {topic}, key: word, delivery: exactly_once, transactional_id_prefix: crash-{topic}}}"
    ))
    .unwrap()
}

/// A start of the sink `out` at parallelism 1 from `from`.
fn sink_restore(from: Option<&Metadata>) -> SinkRestore<'_> {
    SinkRestore {
        node: "out",
        parallelism: 1,
        from,
    }
}

/// A checkpoint `id` of the sink alone, with `pending` as what its one
/// instance recorded and `past` as its history.
fn checkpoint_with(id: u64, past: &[(u64, u64)], pending: Option<serde_json::Value>) -> Metadata {
    checkpoint_of(id, past, vec![pending])
}

/// A checkpoint `id` of the sink alone, with `pending[i]` as what its
/// instance `i` recorded and `past` as its history.
fn checkpoint_of(
    id: u64,
    past: &[(u64, u64)],
    pending: Vec<Option<serde_json::Value>>,
) -> Metadata {
    let parallelism = pending.len();
    let instances: serde_json::Map<String, serde_json::Value> = pending
        .into_iter()
        .enumerate()
        .map(|(i, pending)| {
            (
                format!("out#{i}"),
                serde_json::json!({"node": "out", "instance": i, "parallelism": parallelism, "sink_pending": pending}),
            )
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "format_version": 4,
        "job": "crash",
        "spec_hash": "0",
        "checkpoint_id": id,
        "run": "0123456789ab",
        "history": past,
        "triggered_at_ms": 0,
        "completed_at_ms": 0,
        "mode": "exactly_once",
        "incremental": false,
        "max_parallelism": 128,
        "instances": instances,
        "alignment_ms": 0.0,
        "sync_ms": 0.0
    }))
    .unwrap()
}

fn words(from: usize, to: usize) -> Vec<dataflow::value::Value> {
    (from..to)
        .map(|i| {
            serde_json::from_value(serde_json::json!({"word": format!("w{}", i % 7), "n": i}))
                .unwrap()
        })
        .collect()
}

/// The `n` of every record a `read_committed` reader sees, sorted.
fn committed_ns(broker: &Broker, topic: &str) -> Vec<i64> {
    let mut ns: Vec<i64> = broker
        .read_committed(topic)
        .iter()
        .map(|(_, _, v)| {
            serde_json::from_str::<serde_json::Value>(v).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ns.sort_unstable();
    ns
}

/// The moment kill -9 rarely hits: checkpoint 7 completed, so its
/// records must be visible, but the process died before the sink
/// committed their transaction. The restore writes them again, once:
/// a second restore from the same checkpoint writes nothing, and a
/// restore from an earlier checkpoint is refused, as the topic holds
/// output after it.
#[test]
fn a_restore_writes_again_once_what_a_crash_left_uncommitted() {
    let broker = Broker::shared();
    let topic = "eo-crash";
    broker.create_topic(topic, 3);
    let spec = exactly_once_sink(&broker.servers, topic);
    let mut sink = TransactionalKafkaSink::open(&spec, spec.prefix(), 0).unwrap();
    sink.write(&words(0, 100)).unwrap();
    sink.on_barrier(7).unwrap();
    let pending = sink.pending();
    assert!(
        pending.is_some(),
        "the pre-committed transaction is recorded"
    );
    // Records of the next checkpoint, in the other producer's transaction.
    sink.write(&words(100, 150)).unwrap();
    // Killed: the producers neither commit nor abort.
    std::mem::forget(sink);

    let chk7 = checkpoint_with(7, &[(1, 7)], pending);
    let restore = sink_restore(Some(&chk7));
    let done = dataflow::kafka::recovery::recover(&spec, &restore).unwrap();
    assert!(
        done.as_deref()
            .is_some_and(|d| d.contains("100 messages of 1 transaction")),
        "{done:?}"
    );
    assert_eq!(committed_ns(broker, topic), (0..100).collect::<Vec<_>>());

    // Killed again before the restored run completed a checkpoint.
    let again = dataflow::kafka::recovery::recover(&spec, &restore).unwrap();
    assert_eq!(again, None);
    assert_eq!(committed_ns(broker, topic), (0..100).collect::<Vec<_>>());

    let chk6 = checkpoint_with(6, &[(1, 6)], None);
    let older = sink_restore(Some(&chk6));
    let refused = dataflow::kafka::recovery::recover(&spec, &older).unwrap_err();
    assert!(
        refused.to_string().contains("not in chk-6's past"),
        "{refused}"
    );
}

/// A transaction's records need not be consecutive in a partition: other
/// instances' records and the marker of the instance's own earlier
/// transaction land between them. The checkpoint records the runs its
/// records landed at, and a restore writes again exactly those.
#[test]
fn a_restore_writes_again_exactly_the_runs_a_transaction_landed_at() {
    let broker = Broker::shared();
    let topic = "eo-interleaved";
    broker.create_topic(topic, 2);
    let spec = exactly_once_sink(&broker.servers, topic);
    let mut a = TransactionalKafkaSink::open(&spec, spec.prefix(), 0).unwrap();
    let mut b = TransactionalKafkaSink::open(&spec, spec.prefix(), 1).unwrap();
    a.write(&words(0, 20)).unwrap();
    a.on_barrier(7).unwrap();
    // Checkpoint 7 waits: `a`'s second transaction stays open past 8.
    a.write(&words(20, 40)).unwrap();
    a.on_barrier(8).unwrap();
    // Its first commits, its marker landing after those 20 records.
    a.on_complete(7).unwrap();
    b.write(&words(100, 130)).unwrap();
    b.on_barrier(8).unwrap();
    a.write(&words(40, 60)).unwrap();
    a.on_barrier(9).unwrap();
    b.on_barrier(9).unwrap();
    let pending = vec![a.pending(), b.pending()];
    let recorded: dataflow::kafka::transactions::Recorded =
        serde_json::from_value(pending[0].clone().unwrap()).unwrap();
    let open = recorded.pending.iter().find(|p| p.covers == 9).unwrap();
    for partition in 0..2 {
        let runs = open.partitions.iter().filter(|r| r.0 == partition).count();
        assert!(
            runs >= 2,
            "partition {partition}: {runs} runs in {:?}",
            open.partitions
        );
    }
    // Killed after checkpoint 9 completed, before either sink committed.
    std::mem::forget(a);
    std::mem::forget(b);

    let chk9 = checkpoint_of(9, &[(1, 9)], pending);
    let restore = SinkRestore {
        node: "out",
        parallelism: 2,
        from: Some(&chk9),
    };
    let done = dataflow::kafka::recovery::recover(&spec, &restore).unwrap();
    assert!(
        done.as_deref()
            .is_some_and(|d| d.contains("70 messages of 2 transactions")),
        "{done:?}"
    );
    let expected: Vec<i64> = (0..60).chain(100..130).collect();
    assert_eq!(committed_ns(broker, topic), expected);
}

/// A checkpoint taken when the sink named each record's transaction in a
/// header records, per partition, the first record and how many: a
/// restore from it finds them by the header among other records.
#[test]
fn a_restore_from_a_checkpoint_of_tagged_transactions_finds_them_by_tag() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = Broker::shared();
    let topic = "eo-tagged";
    broker.create_topic(topic, 1);
    let spec = exactly_once_sink(&broker.servers, topic);
    let producer = format!("{}-0-0", spec.prefix());
    // Untagged records, as another instance's.
    let others = |ns: std::ops::Range<i64>| -> Vec<String> {
        ns.map(|n| serde_json::json!({"word": "x", "n": n}).to_string())
            .collect()
    };
    broker.produce(topic, 1, &others(1000..1005));
    let tagged: BaseProducer = broker
        .client(&[("transactional.id", producer.as_str())])
        .create()
        .unwrap();
    tagged.init_transactions(Duration::from_secs(30)).unwrap();
    tagged.begin_transaction().unwrap();
    let send = |from: i64, to: i64| {
        for n in from..to {
            let value = serde_json::json!({"word": "w", "n": n}).to_string();
            let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: "dataflow-txn",
                value: Some("run.1"),
            });
            tagged
                .send(
                    BaseRecord::<str, str>::to(topic)
                        .payload(&value)
                        .headers(headers),
                )
                .unwrap();
        }
        tagged.flush(Duration::from_secs(30)).unwrap();
    };
    send(0, 6);
    broker.produce(topic, 1, &others(1005..1008));
    send(6, 10);
    // Killed before the commit.
    std::mem::forget(tagged);

    let pending = serde_json::json!({"pending": [{"producer": producer, "topic": topic,
        "tag": "run.1", "covers": 7, "partitions": [[0, 5, 10]]}]});
    let chk7 = checkpoint_with(7, &[(1, 7)], Some(pending));
    let done = dataflow::kafka::recovery::recover(&spec, &sink_restore(Some(&chk7))).unwrap();
    assert!(
        done.as_deref()
            .is_some_and(|d| d.contains("10 messages of 1 transaction")),
        "{done:?}"
    );
    let expected: Vec<i64> = (0..10).chain(1000..1008).collect();
    assert_eq!(committed_ns(broker, topic), expected);
}

/// Transactions committed when their checkpoint completed are not
/// written again by a restore from it.
#[test]
fn a_restore_writes_nothing_again_after_a_commit() {
    let broker = Broker::shared();
    let topic = "eo-committed";
    broker.create_topic(topic, 2);
    let spec = exactly_once_sink(&broker.servers, topic);
    let mut sink = TransactionalKafkaSink::open(&spec, spec.prefix(), 0).unwrap();
    sink.write(&words(0, 40)).unwrap();
    sink.on_barrier(3).unwrap();
    let pending = sink.pending();
    sink.on_complete(3).unwrap();
    sink.write(&words(40, 60)).unwrap();
    std::mem::forget(sink);

    let chk3 = checkpoint_with(3, &[(1, 3)], pending);
    let restore = sink_restore(Some(&chk3));
    assert_eq!(
        dataflow::kafka::recovery::recover(&spec, &restore).unwrap(),
        None
    );
    assert_eq!(committed_ns(broker, topic), (0..40).collect::<Vec<_>>());
}

/// Checks that a `read_committed` reader of `topic` sees each word's
/// counts `1..=n` once each, `n` its occurrences; `Err` says how not.
fn exactly_once_counts(
    broker: &Broker,
    topic: &str,
    occurrences: &BTreeMap<String, i64>,
) -> Result<(), String> {
    let mut seen: BTreeMap<String, BTreeMap<i64, usize>> = BTreeMap::new();
    for (_, _, value) in broker.read_committed(topic) {
        let record: serde_json::Value = serde_json::from_str(&value).unwrap();
        *seen
            .entry(record["word"].as_str().unwrap().to_owned())
            .or_default()
            .entry(record["count"].as_i64().unwrap())
            .or_default() += 1;
    }
    for (word, n) in occurrences {
        let counts = seen.remove(word).unwrap_or_default();
        let twice = counts.values().filter(|k| **k > 1).count();
        let expected: Vec<i64> = (1..=*n).collect();
        if twice > 0 || counts.keys().copied().collect::<Vec<_>>() != expected {
            return Err(format!(
                "{word}: {} counts of {n}, highest {:?}, {twice} more than once",
                counts.len(),
                counts.keys().max()
            ));
        }
    }
    Ok(())
}

/// The broker killed for 3 s under an exactly-once word count and started
/// again: the job goes on (or restarts by its strategy), and every count
/// is committed once.
#[test]
fn an_exactly_once_word_count_goes_on_through_a_broker_restart() {
    let mut broker = Broker::start();
    broker.create_topic("lines", 4);
    broker.create_topic("counts", 4);
    let mut rng = Prng(7);
    let mut occurrences: BTreeMap<String, i64> = BTreeMap::new();
    let mut lines = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let words: Vec<String> = (0..4).map(|_| format!("w{}", rng.range(0, 29))).collect();
                for w in &words {
                    *occurrences.entry(w.clone()).or_default() += 1;
                }
                words.join(",")
            })
            .collect()
    };
    let input = lines(40_000);
    broker.produce("lines", 4, &input);
    let total: i64 = occurrences.values().sum();
    let dir = tempfile::tempdir().unwrap();
    let spec = word_count_spec(dir.path(), &broker.servers, "lines", "counts", 2);
    let text_of_spec = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("    bounded: true\n", "");
    std::fs::write(&spec, text_of_spec).unwrap();
    let mut child = Command::new(bin())
        .arg("run")
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let progress = broker.watch("counts");
    while progress.written() < total / 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "no output");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(progress);
    // Mid-run: some counts written, far from all.
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    let started = Instant::now();
    let mut last = Err(String::new());
    while started.elapsed() < Duration::from_secs(120) {
        last = exactly_once_counts(&broker, "counts", &occurrences);
        if last.is_ok() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert_eq!(last, Ok(()), "{stderr}");
}

/// specs/kafka_page_views.yaml against the broker: each partition has its
/// own watermark. Partition 0 holds minute 0 and minute 5, partition 1
/// minute 0 and minute 6. Read per partition, minute 0 closes with both
/// views whatever order the partitions are read in. With one watermark
/// per instance, a read of partition 0 first would close minute 0 with
/// one view and drop partition 1's view as late (this test then fails;
/// the stamper's unit tests pin the rule down in every order).
///
/// The minutes are the last ten: messages stamped long ago are deleted
/// by the broker's time retention (7 days) at its next check, and the
/// job then had nothing to read (so this test failed whenever it ran
/// after the shared broker's first check).
#[test]
fn each_partition_has_its_own_watermark() {
    let broker = Broker::shared();
    broker.create_topic("pv-views", 2);
    broker.create_topic("pv-counts", 2);
    let dir = tempfile::tempdir().unwrap();
    let written =
        std::fs::read_to_string(crate::harness::root().join("specs/kafka_page_views.yaml"))
            .unwrap()
            .replace("127.0.0.1:9092", &broker.servers)
            .replace("topics: [views]", "topics: [pv-views]")
            .replace("topic: page-views", "topic: pv-counts")
            .replace("idle_timeout: 10s", "idle_timeout: 1h")
            .replace(
                "file:///tmp/dataflow/checkpoints",
                &format!("file://{}/checkpoints", dir.path().display()),
            );
    let spec = dir.path().join("pv.yaml");
    std::fs::write(&spec, written).unwrap();
    // Minute 0 is ten minutes ago, on a minute's boundary.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let zero = (now / 60_000 - 10) * 60_000;
    let minute = |m: i64, s: i64| zero + (m * 60 + s) * 1000;
    let iso = |millis: i64| {
        chrono::DateTime::from_timestamp_millis(millis)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    broker.produce_at("pv-views", 0, minute(0, 10), r#"{"page": "a"}"#);
    broker.produce_at("pv-views", 0, minute(5, 0), r#"{"page": "a"}"#);
    broker.produce_at("pv-views", 1, minute(0, 20), r#"{"page": "a"}"#);
    broker.produce_at("pv-views", 1, minute(6, 0), r#"{"page": "a"}"#);
    let child = Command::new(bin())
        .arg("run")
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    while out.is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(300));
        out = broker.read_committed("pv-counts");
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let stderr = text(&child.wait_with_output().unwrap()).1;
    let windows: Vec<serde_json::Value> = out
        .iter()
        .map(|(_, _, v)| serde_json::from_str(v).unwrap())
        .collect();
    assert_eq!(
        windows,
        vec![serde_json::json!({
            "page": "a",
            "window_start": iso(minute(0, 0)),
            "window_end": iso(minute(1, 0)),
            "views": 2
        })],
        "{stderr}"
    );
}

/// A fresh run over a topic an earlier run wrote (its checkpoints deleted,
/// so the new run's numbers start again at 1): the earlier run's markers
/// must not pass for the new run's. Run A commits chk-1 on producer 0 and
/// chk-2 on producer 1; run B, fresh, does the same but is killed once
/// chk-2 completed, before producer 1 committed it. The restore from B's
/// chk-2 writes B's chk-2 again: producer 1's marker 2 was A's, which the
/// fresh start reset (without that, B's chk-2 was taken as committed).
#[test]
fn a_fresh_start_forgets_the_markers_of_an_earlier_run() {
    let broker = Broker::shared();
    let topic = "eo-fresh";
    broker.create_topic(topic, 2);
    let spec = exactly_once_sink(&broker.servers, topic);
    let fresh = sink_restore(None);
    let run = |records: [(usize, usize); 2], commit_second: bool| {
        dataflow::kafka::recovery::recover(&spec, &fresh).unwrap();
        let mut sink = TransactionalKafkaSink::open(&spec, spec.prefix(), 0).unwrap();
        // Producer 0 takes chk-1's records, producer 1 chk-2's: chk-1's
        // notice comes after the barrier of chk-2.
        sink.write(&words(records[0].0, records[0].1)).unwrap();
        sink.on_barrier(1).unwrap();
        sink.write(&words(records[1].0, records[1].1)).unwrap();
        sink.on_barrier(2).unwrap();
        let pending = sink.pending();
        sink.on_complete(1).unwrap();
        if commit_second {
            sink.on_complete(2).unwrap();
        }
        std::mem::forget(sink);
        pending
    };
    run([(0, 10), (10, 20)], true);
    let pending = run([(100, 105), (105, 110)], false);
    let chk2 = checkpoint_with(2, &[(1, 2)], pending);
    let restore = sink_restore(Some(&chk2));
    let done = dataflow::kafka::recovery::recover(&spec, &restore).unwrap();
    assert!(
        done.as_deref().is_some_and(|d| d.contains("5 messages")),
        "{done:?}"
    );
    let expected: Vec<i64> = (0..20).chain(100..110).collect();
    assert_eq!(committed_ns(broker, topic), expected);
}

/// Messages that are not JSON follow the source's `on_error`: `fail`
/// fails the job naming the topic, partition and offset; `skip` drops
/// them and reads on.
#[test]
fn unreadable_json_follows_on_error() {
    let broker = Broker::shared();
    broker.create_topic("bad-json", 1);
    let values: Vec<String> = [r#"{"n": 1}"#, "not json", r#"{"n": 2}"#, "{\"n\": "]
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    broker.produce("bad-json", 1, &values);
    let dir = tempfile::tempdir().unwrap();
    let run = |on_error: &str| {
        let path = copy_spec(dir.path(), on_error, &broker.servers, "bad-json", 1, "");
        let written = std::fs::read_to_string(&path).unwrap().replace(
            "    bounded: true\n",
            &format!("    bounded: true\n    format: json\n    on_error: {on_error}\n"),
        );
        std::fs::write(&path, written).unwrap();
        let out = Command::new(bin()).arg("run").arg(&path).output().unwrap();
        (
            out.status.code(),
            text(&out).1,
            dir.path().join(format!("out-{on_error}")),
        )
    };
    let (code, stderr, _) = run("fail");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("`bad-json` partition 0 offset 1 is not JSON"),
        "{stderr}"
    );
    let (code, stderr, out) = run("skip");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        output(&out),
        once_each(&[r#"{"n":1}"#.to_owned(), r#"{"n":2}"#.to_owned()]),
        "{stderr}"
    );
}
