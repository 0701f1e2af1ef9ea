//! `dataflow test`: a spec's pipeline run in process on records a tests
//! file gives its sources, each sink's output compared with what the file
//! expects of it (as `vector test` does for a Vector config). Differences
//! are diagnostics at the line and column of the tests file.
//!
//! The tests file sits beside the spec (`word_count.yaml`'s is
//! `word_count.tests.yaml`):
//!
//! ```yaml
//! tests:
//!   - name: counts each word
//!     inputs:
//!       lines: ["to,be", "or,not,to,be"]
//!     outputs:
//!       out:
//!         - {word: to, count: 1}
//! ```
//!
//! With event time, `watermarks: {<source>: [{after: 2, at: <time>}]}`
//! moves a source's watermark to a time after so many of its records.
//!
//! Every source is swapped for the records given (none if the test gives
//! none), every sink for one that keeps what it is given; checkpoints are
//! off and state is in memory, so a test touches no file, socket or store.

pub mod compare;
mod io;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::diag::{Diagnostic, SourceFile};
use crate::plan::{Plan, Planned};
use crate::spec::spans::{Seg, Spans};
use crate::value::Value;

/// The tests of one spec, read with where each part was written.
pub struct TestFile {
    pub file: SourceFile,
    spans: Spans,
    pub tests: Vec<Test>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tests {
    tests: Vec<Test>,
}

/// One test: records for sources, records expected at sinks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    pub name: String,
    /// Records each source puts out, as it would (a line's text for a
    /// `lines` source, an object for `json`).
    #[serde(default)]
    pub inputs: IndexMap<String, Vec<serde_json::Value>>,
    /// Records each sink must be given, in any order; a sink not listed is
    /// not checked.
    #[serde(default)]
    pub outputs: IndexMap<String, Vec<serde_json::Value>>,
    /// Watermark steps of sources with event time: after so many of its
    /// records, the source's watermark is moved to a time, as Flink's test
    /// harnesses' `processWatermark` does.
    #[serde(default)]
    pub watermarks: IndexMap<String, Vec<WatermarkStep>>,
}

/// After `after` records of its source, the watermark is at `at`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkStep {
    pub after: usize,
    /// RFC 3339 text, or milliseconds since the epoch.
    pub at: serde_json::Value,
}

/// A step's time in epoch milliseconds.
fn step_time(at: &serde_json::Value) -> Option<i64> {
    match at {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

/// The tests file of `spec`: `<stem>.tests.yaml` beside it.
pub fn beside(spec: &Path) -> PathBuf {
    let stem = spec
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    spec.with_file_name(format!("{stem}.tests.yaml"))
}

/// Reads a tests file; a file that is not one is a diagnostic.
pub fn load(file: SourceFile) -> Result<TestFile, Diagnostic> {
    let tests: Tests = serde_yaml::from_str(&file.text).map_err(|e| {
        let span = e
            .location()
            .map(|l| crate::spec::syntax::char_at(&file.text, l.index()));
        Diagnostic::error("invalid-tests", format!("not a tests file: {e}"))
            .at(span, "here")
            .help("a tests file is `tests:` and a list of `{name, inputs, outputs}`")
    })?;
    Ok(TestFile {
        spans: Spans::build(&file.text),
        file,
        tests: tests.tests,
    })
}

/// How one test went.
pub struct Outcome {
    pub name: String,
    /// Empty when it passed.
    pub problems: Vec<Diagnostic>,
}

impl TestFile {
    fn span(&self, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        self.spans.value(path)
    }

    fn key_span(&self, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        self.spans.key(path)
    }

    /// The names tests use that the plan lacks: sources to give records
    /// to, sinks to expect records from.
    pub fn check(&self, plan: &Plan) -> Vec<Diagnostic> {
        let nodes: Vec<(&str, bool, bool)> = plan
            .graph()
            .node_weights()
            .map(|n| (n.name.as_str(), n.planned.is_source(), n.planned.is_sink()))
            .collect();
        let mut problems = Vec::new();
        for (t, test) in self.tests.iter().enumerate() {
            for name in test.watermarks.keys() {
                let timed = plan
                    .graph()
                    .node_weights()
                    .any(|n| n.name == *name && n.planned.is_source() && n.event_time.is_some());
                if !timed {
                    let path = [
                        Seg::Key("tests".into()),
                        Seg::Index(t),
                        Seg::Key("watermarks".into()),
                        Seg::Key(name.clone()),
                    ];
                    problems.push(
                        Diagnostic::error(
                            "unknown-node",
                            format!(
                                "test `{}`: the spec has no source `{name}` with `event_time`",
                                test.name
                            ),
                        )
                        .at(self.key_span(&path), "no watermark to move")
                        .help("watermark steps are for sources that declare `event_time`"),
                    );
                }
            }
            for (section, names, is) in [
                ("inputs", test.inputs.keys().collect::<Vec<_>>(), 1),
                ("outputs", test.outputs.keys().collect(), 2),
            ] {
                let kind = if is == 1 { "source" } else { "sink" };
                let candidates: Vec<&str> = nodes
                    .iter()
                    .filter(|n| if is == 1 { n.1 } else { n.2 })
                    .map(|n| n.0)
                    .collect();
                for name in names {
                    if candidates.contains(&name.as_str()) {
                        continue;
                    }
                    let path = [
                        Seg::Key("tests".into()),
                        Seg::Index(t),
                        Seg::Key(section.into()),
                        Seg::Key(name.clone()),
                    ];
                    problems.push(
                        Diagnostic::error(
                            "unknown-node",
                            format!("test `{}`: the spec has no {kind} `{name}`", test.name),
                        )
                        .at(self.key_span(&path), format!("not a {kind}"))
                        .suggest(name, candidates.iter().copied()),
                    );
                }
            }
        }
        problems
    }

    /// Runs test `t` on the plan `compile` makes afresh.
    pub fn run(&self, t: usize, compile: impl FnOnce() -> Plan) -> Outcome {
        let test = &self.tests[t];
        let mut problems = Vec::new();
        let mut kept: IndexMap<String, Arc<Mutex<Vec<Value>>>> = IndexMap::new();
        let mut given = IndexMap::new();
        for (source, records) in &test.inputs {
            let mut values = Vec::with_capacity(records.len());
            for (k, record) in records.iter().enumerate() {
                match serde_json::from_value::<Value>(record.clone()) {
                    Ok(v) => values.push(v),
                    Err(e) => problems.push(
                        Diagnostic::error("invalid-record", format!("test `{}`: {e}", test.name))
                            .at(
                                self.span(&self.at(t, "inputs", source, Some(k))),
                                "not a record",
                            ),
                    ),
                }
            }
            given.insert(source.clone(), Arc::new(values));
        }
        let mut steps: IndexMap<String, Arc<Vec<(usize, i64)>>> = IndexMap::new();
        for (source, list) in &test.watermarks {
            let mut times = Vec::with_capacity(list.len());
            for (k, step) in list.iter().enumerate() {
                match step_time(&step.at) {
                    Some(at) => times.push((step.after, at)),
                    None => {
                        let mut path = self.at(t, "watermarks", source, Some(k));
                        path.push(Seg::Key("at".into()));
                        problems.push(
                            Diagnostic::error(
                                "invalid-record",
                                format!("test `{}`: not a time", test.name),
                            )
                            .at(self.span(&path), "RFC 3339 text or epoch milliseconds"),
                        );
                    }
                }
            }
            times.sort_by_key(|&(after, _)| after);
            steps.insert(source.clone(), Arc::new(times));
        }
        if !problems.is_empty() {
            return Outcome {
                name: test.name.clone(),
                problems,
            };
        }
        let plan = compile().for_test(|node| match &node.planned {
            Planned::Source(_) => Some(Planned::Source(Box::new(io::Given {
                records: given.get(&node.name).cloned().unwrap_or_default(),
                steps: steps.get(&node.name).cloned().unwrap_or_default(),
            }))),
            Planned::Sink(_) => {
                let sink = io::Kept::default();
                kept.insert(node.name.clone(), Arc::clone(&sink.0));
                Some(Planned::Sink(Box::new(sink)))
            }
            Planned::Transform(_) => None,
        });
        if let Err(e) = crate::runtime::run_in_process(&plan) {
            problems.push(
                Diagnostic::error(
                    "test-failed",
                    format!("test `{}`: the job failed: {e}", test.name),
                )
                .at(
                    self.key_span(&[Seg::Key("tests".into()), Seg::Index(t)]),
                    "this test",
                ),
            );
        }
        for (sink, expected) in &test.outputs {
            let written: Vec<serde_json::Value> = kept
                .get(sink)
                .map(|k| k.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .unwrap_or_default()
                .iter()
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .collect();
            let difference = compare::compare(expected, &written);
            for k in &difference.missing {
                problems.push(
                    Diagnostic::error(
                        "test-failed",
                        format!(
                            "test `{}`: sink `{sink}` was never given this record",
                            test.name
                        ),
                    )
                    .at(
                        self.span(&self.at(t, "outputs", sink, Some(*k))),
                        "expected, not written",
                    ),
                );
            }
            if !difference.unexpected.is_empty() {
                let n = difference.unexpected.len();
                let mut d = Diagnostic::error(
                    "test-failed",
                    format!(
                        "test `{}`: sink `{sink}` was given {n} record{} the test does not expect",
                        test.name,
                        if n == 1 { "" } else { "s" }
                    ),
                )
                .at(
                    self.key_span(&self.at(t, "outputs", sink, None)),
                    "not all listed here",
                );
                for record in difference.unexpected.iter().take(10) {
                    d = d.help(format!("given: {record}"));
                }
                if n > 10 {
                    d = d.help(format!("and {} more", n - 10));
                }
                problems.push(d);
            }
        }
        Outcome {
            name: test.name.clone(),
            problems,
        }
    }

    /// The path of `tests[t].<section>.<node>[k]`.
    fn at(&self, t: usize, section: &str, node: &str, k: Option<usize>) -> Vec<Seg> {
        let mut path = vec![
            Seg::Key("tests".into()),
            Seg::Index(t),
            Seg::Key(section.into()),
            Seg::Key(node.into()),
        ];
        path.extend(k.map(Seg::Index));
        path
    }
}
