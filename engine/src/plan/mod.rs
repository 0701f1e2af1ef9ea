//! The validated plan: a spec whose names are resolved, expressions
//! compiled and graph checked, as a petgraph DAG of operators.
//!
//! [`compile`] is the only way to build a [`Plan`]; it collects every
//! problem in one pass (Vector's way) so `dataflow check` shows them all.
//! Everything after `check` (the executor, the summary) reads the plan and
//! never the YAML again.

mod chain;
pub mod drawing;
mod node;
mod pushdown;
pub mod settings;
pub mod store;
mod summary;

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef, Reversed};
use petgraph::Direction;

use crate::diag::Diagnostic;
use crate::expr::{CompileError, Expr, Var};
use crate::nodes::{PlannedSink, PlannedSource, PlannedTransform};
use crate::spec::spans::{self, Seg};
use crate::spec::{CheckpointSpec, EventTimeSpec, Loaded, RestartStrategy};
use crate::time::stamper::EventTime;
pub use node::NodeCx;
pub use settings::{CheckpointSettings, JobSettings, OnError, StateSettings};
pub use store::{StoreLocation, StoreLocationError};

/// The most key groups a job may have (Flink's limit as well).
pub const MAX_KEY_GROUPS: u32 = 32_768;
/// The largest `batch_size`: every channel reserves batches whole.
pub const MAX_BATCH_SIZE: u32 = 65_536;
/// A validated pipeline.
#[derive(Debug)]
pub struct Plan {
    job: JobSettings,
    checkpoint: Option<CheckpointSettings>,
    state: StateSettings,
    graph: DiGraph<PlanNode, EdgeKind>,
    /// Every node, sources first, each after all of its inputs.
    order: Vec<NodeIndex>,
    /// The edges that carry a node's late records (`inputs: [w.late]`),
    /// not its output.
    late_edges: Vec<EdgeIndex>,
}

impl Plan {
    pub fn job(&self) -> &JobSettings {
        &self.job
    }

    /// Checkpointing, when it is on.
    pub fn checkpoint(&self) -> Option<&CheckpointSettings> {
        self.checkpoint.as_ref()
    }

    pub fn state(&self) -> &StateSettings {
        &self.state
    }

    pub fn graph(&self) -> &DiGraph<PlanNode, EdgeKind> {
        &self.graph
    }

    /// Every node, sources first, each after all of its inputs.
    /// Whether edge `e` carries its source node's late records.
    pub fn is_late_edge(&self, e: EdgeIndex) -> bool {
        self.late_edges.contains(&e)
    }

    pub fn order(&self) -> &[NodeIndex] {
        &self.order
    }

    /// Every secret value among the job's settings, the store's keys and
    /// the nodes' (a Kafka password): masked wherever the spec is shown.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets: Vec<&str> = match &self.checkpoint {
            Some(cp) => store::secrets(&cp.store),
            None => Vec::new(),
        };
        for node in self.graph.node_weights() {
            match &node.planned {
                Planned::Source(source) => secrets.extend(source.secrets()),
                Planned::Sink(sink) => secrets.extend(sink.secrets()),
                Planned::Transform(_) => {}
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// Restarts allowed after a failure, and the wait before each.
    /// For `dataflow test`: the plan with each node `replace` gives a new
    /// form (the sources and sinks, swapped for records given and
    /// collected), taking no checkpoints and keeping its state in memory.
    pub fn for_test(mut self, mut replace: impl FnMut(&PlanNode) -> Option<Planned>) -> Plan {
        self.checkpoint = None;
        self.state.backend = settings::StateBackendKind::Memory;
        for node in self.graph.node_weights_mut() {
            if let Some(planned) = replace(node) {
                node.planned = planned;
            }
        }
        self
    }

    pub fn restarts(&self) -> (u32, std::time::Duration) {
        (self.job.restarts, self.job.restart_delay)
    }
}

/// One node of the plan.
#[derive(Debug)]
pub struct PlanNode {
    pub name: String,
    pub parallelism: u32,
    pub on_error: OnError,
    /// The `type` the user wrote, as the registry names it.
    pub type_name: &'static str,
    pub planned: Planned,
    /// Set on a projection moved in front of a keyed node's shuffle
    /// ([`pushdown`]): records reach it partitioned by that node's key.
    pub shuffle: Option<Shuffle>,
    /// What the node keeps in keyed state, for nodes that keep some: the
    /// one test of "stateful", and what a checkpoint records so that a
    /// restore can tell the state still fits.
    pub state: Option<StateShape>,
    /// Sources with `event_time`: how their records are stamped.
    pub event_time: Option<EventTime>,
    /// Whether the node's output records carry event times: a source
    /// with `event_time`, or a node all of whose inputs do.
    pub timed: bool,
    /// The nodes it reads, in the order its `inputs` lists them: a join
    /// tells its sides apart by their place.
    pub inputs: Vec<NodeIndex>,
}

/// The shape of a node's keyed state: the aggregate kept, and the key (as
/// written) that splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateShape {
    pub kind: &'static str,
    pub key: String,
}

/// The key a node's input is partitioned by, read through a projection.
#[derive(Debug)]
pub struct Shuffle {
    /// The keyed node's key, as an expression over this node's input.
    pub key: Expr,
    /// The keyed node whose key it is.
    pub keyed: String,
}

impl PlanNode {
    /// The key records reach this node partitioned by: its own, or the
    /// one of the keyed node it was moved in front of.
    pub fn partition_key(&self) -> Option<&Expr> {
        self.shuffle.as_ref().map(|s| &s.key).or(self.planned.key())
    }

    /// The key the records from input `from` reach this node partitioned
    /// by: a join keys each of its sides by its own.
    pub fn input_key(&self, from: NodeIndex) -> Option<&Expr> {
        let side = self.inputs.iter().position(|&i| i == from);
        match (&self.planned, side) {
            (Planned::Transform(t), Some(side)) if self.shuffle.is_none() => {
                t.input_key(side).or(self.partition_key())
            }
            _ => self.partition_key(),
        }
    }
}

/// What a node does, checked and with its expressions compiled: a node
/// type's own planned form (see [`crate::nodes`]).
#[derive(Debug)]
pub enum Planned {
    Source(Box<dyn PlannedSource>),
    Transform(Box<dyn PlannedTransform>),
    Sink(Box<dyn PlannedSink>),
}

impl Planned {
    /// The key that partitions this node's input, for keyed nodes.
    pub fn key(&self) -> Option<&Expr> {
        match self {
            Planned::Transform(t) => t.key(),
            _ => None,
        }
    }

    /// The expression of a projection, which a keyed node's shuffle may
    /// move in front of ([`pushdown`]).
    pub fn projection(&self) -> Option<&Expr> {
        match self {
            Planned::Transform(t) => t.projection(),
            _ => None,
        }
    }

    pub fn is_source(&self) -> bool {
        matches!(self, Planned::Source(_))
    }

    pub fn is_sink(&self) -> bool {
        matches!(self, Planned::Sink(_))
    }

    /// Whether the node sends its late records on (`late: output`).
    pub fn late_output(&self) -> bool {
        matches!(self, Planned::Transform(t) if t.late_output())
    }
}

/// How records travel along an edge between the instances of two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// Instance i to instance i (same parallelism, no repartitioning).
    Forward,
    /// Round robin over the downstream instances.
    Rebalance,
    /// By key group of the downstream node's key.
    Hash,
}

impl EdgeKind {
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Forward => "forward",
            EdgeKind::Rebalance => "rebalance",
            EdgeKind::Hash => "hash",
        }
    }
}

/// What follows a node's name in an input that reads its late records.
pub const LATE_PORT: &str = ".late";

/// Marks the nodes whose records carry event times: those all of whose
/// inputs do, sources with `event_time` being marked already.
fn timed_nodes(graph: &mut DiGraph<PlanNode, EdgeKind>, order: &[NodeIndex]) {
    for &n in order {
        if graph[n].planned.is_source() {
            continue;
        }
        let mut inputs = graph.neighbors_directed(n, Direction::Incoming).peekable();
        let timed = inputs.peek().is_some() && inputs.all(|i| graph[i].timed);
        graph[n].timed = timed;
    }
}

struct Compiler<'a> {
    loaded: &'a Loaded,
    diagnostics: Vec<Diagnostic>,
    /// The edges that read a node's late output.
    late_edges: Vec<EdgeIndex>,
    /// Nodes that are declared but left out of the graph: those the
    /// loader could not read, transforms whose expressions do not
    /// compile, and the second definitions of a name. Their problem is
    /// reported once; nodes reading from them are not blamed for it.
    unbuilt: HashSet<String>,
    /// Where the loader reported errors: looked up once per planner
    /// error, so it must not be a scan (a spec can have both by the tens
    /// of thousands).
    loader_errors: HashSet<(usize, usize)>,
}

/// The plan of a spec's text, which must be valid: for the tests of the
/// layers below the planner, which read no spec themselves.
#[cfg(test)]
pub fn from_text(text: &str) -> Plan {
    let loaded = crate::spec::load(crate::diag::SourceFile {
        name: "spec.yaml".into(),
        text: text.into(),
    });
    let (plan, diagnostics) = compile(&loaded);
    plan.unwrap_or_else(|| panic!("the spec does not compile: {diagnostics:?}"))
}

/// The checkpoint settings of a spec whose `checkpoint:` is `yaml`.
#[cfg(test)]
pub fn checkpoint_settings(yaml: &str) -> CheckpointSettings {
    let text = format!(
        "name: wc\ncheckpoint: {yaml}\nsources:\n  g: {{type: generate}}\nsinks:\n  out: {{type: blackhole, inputs: [g]}}\n"
    );
    from_text(&text).checkpoint.expect("checkpointing is on")
}

/// Validates a loaded spec. Returns the plan when there is no error, and
/// every diagnostic (the loader's first, then the planner's) either way.
pub fn compile(loaded: &Loaded) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut c = Compiler {
        loaded,
        diagnostics: Vec::new(),
        late_edges: Vec::new(),
        unbuilt: loaded.broken.clone(),
        loader_errors: loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .filter_map(|d| d.span.as_ref().map(|s| (s.start, s.end)))
            .collect(),
    };
    // A text that is not a YAML mapping has nothing more to check.
    let plan = if loaded.readable { c.plan() } else { None };
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(c.diagnostics);
    // Errors first, each group in the order of the spec's text.
    diagnostics.sort_by_key(|d| (!d.is_error(), d.span.as_ref().map_or(0, |s| s.start)));
    let plan = plan.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    (plan, diagnostics)
}

impl Compiler<'_> {
    fn span(&self, path: &[&str]) -> Option<Range<usize>> {
        self.loaded.spans.value(&spans::path(path))
    }

    fn key_span(&self, path: &[&str]) -> Option<Range<usize>> {
        self.loaded.spans.key(&spans::path(path))
    }

    /// Reports `d`, unless the loader reported an error at the same place:
    /// a value it could not read has a stand-in (see `spec::load`), and one
    /// error per place is enough.
    fn error(&mut self, d: Diagnostic) {
        let reported = d
            .span
            .as_ref()
            .is_some_and(|s| self.loader_errors.contains(&(s.start, s.end)));
        if !reported {
            self.diagnostics.push(d);
        }
    }

    fn plan(&mut self) -> Option<Plan> {
        let spec = &self.loaded.spec;
        self.job_settings();
        let checkpoint = spec.checkpoint.as_ref().and_then(|c| self.checkpoint(c));

        let mut graph: DiGraph<PlanNode, EdgeKind> = DiGraph::new();
        let mut index: HashMap<&str, NodeIndex> = HashMap::new();
        let default_parallelism = spec.job.parallelism;
        for (name, node) in &spec.sources {
            self.node_name("sources", name);
            let parallelism =
                self.parallelism("sources", name, node.parallelism, default_parallelism);
            let planned = node.kind.node().plan(&mut NodeCx::new(
                self,
                "sources",
                name,
                node.parallelism,
                parallelism,
            ));
            let event_time = node
                .event_time
                .as_ref()
                .and_then(|spec| self.event_time(name, spec));
            index.insert(
                name,
                graph.add_node(PlanNode {
                    name: name.clone(),
                    parallelism,
                    on_error: node.on_error,
                    type_name: node.kind.type_name(),
                    planned: Planned::Source(planned),
                    shuffle: None,
                    state: None,
                    timed: event_time.is_some(),
                    event_time,
                    inputs: Vec::new(),
                }),
            );
        }
        // A name defined in two sections is reported by the loader; the
        // first definition is the node, the second is left out.
        let mut shadowed: HashSet<(&str, &str)> = HashSet::new();
        for (name, node) in &spec.transforms {
            self.node_name("transforms", name);
            let parallelism =
                self.parallelism("transforms", name, node.parallelism, default_parallelism);
            let planned = node.kind.node().plan(&mut NodeCx::new(
                self,
                "transforms",
                name,
                node.parallelism,
                parallelism,
            ));
            if index.contains_key(name.as_str()) {
                shadowed.insert(("transforms", name));
                continue;
            }
            match planned {
                Some(planned) => {
                    let state = planned.state().map(|(kind, key)| StateShape {
                        kind,
                        key: key.to_owned(),
                    });
                    index.insert(
                        name,
                        graph.add_node(PlanNode {
                            name: name.clone(),
                            parallelism,
                            on_error: node.on_error,
                            type_name: node.kind.type_name(),
                            planned: Planned::Transform(planned),
                            shuffle: None,
                            state,
                            event_time: None,
                            timed: false,
                            inputs: Vec::new(),
                        }),
                    );
                }
                None => {
                    self.unbuilt.insert(name.clone());
                }
            }
        }
        for (name, node) in &spec.sinks {
            self.node_name("sinks", name);
            let parallelism =
                self.parallelism("sinks", name, node.parallelism, default_parallelism);
            let planned = node.kind.node().plan(&mut NodeCx::new(
                self,
                "sinks",
                name,
                node.parallelism,
                parallelism,
            ));
            if index.contains_key(name.as_str()) {
                shadowed.insert(("sinks", name));
                continue;
            }
            index.insert(
                name,
                graph.add_node(PlanNode {
                    name: name.clone(),
                    parallelism,
                    on_error: node.on_error,
                    type_name: node.kind.type_name(),
                    planned: Planned::Sink(planned),
                    shuffle: None,
                    state: None,
                    event_time: None,
                    timed: false,
                    inputs: Vec::new(),
                }),
            );
        }

        self.edges(&mut graph, &index, &shadowed);
        // A section that is not a mapping has its own diagnostic already.
        if spec.sources.is_empty()
            && !self.loaded.has_error_at(&spans::path(&["sources"]))
            && !self
                .loaded
                .broken
                .iter()
                .any(|n| !index.contains_key(n.as_str()))
        {
            self.error(
                Diagnostic::error("no-sources", "the spec has no sources")
                    .at(self.key_span(&["sources"]), "no source is declared")
                    .help("add a `sources:` section, e.g. a `file` or `generate` source"),
            );
        }
        if spec.sinks.is_empty()
            && !self.loaded.has_error_at(&spans::path(&["sinks"]))
            && self.loaded.broken.is_empty()
        {
            self.error(
                Diagnostic::error("no-sinks", "the spec has no sinks")
                    .at(self.key_span(&["sinks"]), "no sink is declared")
                    .help("add a `sinks:` section, e.g. `out: {type: print, inputs: [...]}`"),
            );
        }
        let order = self.acyclic_order(&graph)?;
        pushdown::shuffle_before_projections(&mut graph, &order);
        timed_nodes(&mut graph, &order);
        self.untimed_inputs(&graph);
        self.unread_late_outputs(&graph);
        // With errors, nodes that failed to compile are missing from the
        // graph and the warning would blame their inputs wrongly.
        if !self.loaded.has_errors() && !self.diagnostics.iter().any(Diagnostic::is_error) {
            self.unused_outputs(&graph);
        }
        let j = &spec.job;
        // The spec's `restart`, or by default 3 restarts 1 s apart with
        // checkpoints and none without.
        let (restarts, restart_delay) = match (&j.restart, &checkpoint) {
            (Some(r), _) if r.strategy == RestartStrategy::None => (0, r.delay.0),
            (Some(r), _) => (r.attempts, r.delay.0),
            (None, Some(_)) => (3, std::time::Duration::from_secs(1)),
            (None, None) => (0, std::time::Duration::ZERO),
        };
        let state = &spec.state;
        Some(Plan {
            job: JobSettings {
                name: j.name.clone(),
                parallelism: j.parallelism,
                max_parallelism: j.max_parallelism,
                batch_size: j.batch_size,
                buffer_timeout: j.buffer_timeout.0,
                chaining: j.chaining,
                restarts,
                restart_delay,
            },
            checkpoint,
            state: StateSettings {
                backend: state.backend,
                dir: state.dir.clone().unwrap_or_else(|| {
                    std::env::temp_dir()
                        .join("dataflow")
                        .join("state")
                        .to_string_lossy()
                        .into_owned()
                }),
                cache_entries: state.cache_entries,
            },
            graph,
            order,
            late_edges: std::mem::take(&mut self.late_edges),
        })
    }

    fn job_settings(&mut self) {
        let job = &self.loaded.spec.job;
        let name_ok = !job.name.is_empty()
            && job
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !job.name.starts_with('.');
        let name = spans::path(&["name"]);
        if !name_ok && self.loaded.spans.contains(&name) && !self.loaded.has_error_at(&name) {
            self.error(
                Diagnostic::error("invalid-name", format!("invalid job name `{}`", job.name))
                    .at(self.span(&["name"]), "use letters, digits, `-`, `_` and `.`")
                    .help("the name is a folder in the checkpoint store, so it must be a plain file name"),
            );
        }
        if job.max_parallelism == 0 || job.max_parallelism > MAX_KEY_GROUPS {
            self.error(
                Diagnostic::error(
                    "invalid-max-parallelism",
                    format!(
                        "`max_parallelism` must be between 1 and {MAX_KEY_GROUPS}, not {}",
                        job.max_parallelism
                    ),
                )
                .at(self.span(&["max_parallelism"]), "out of range"),
            );
        }
        if job.batch_size == 0 || job.batch_size > MAX_BATCH_SIZE {
            self.error(
                Diagnostic::error(
                    "invalid-value",
                    format!(
                        "`batch_size` must be between 1 and {MAX_BATCH_SIZE}, not {}",
                        job.batch_size
                    ),
                )
                .at(self.span(&["batch_size"]), "out of range")
                .help(
                    "a batch is reserved whole on every channel: larger batches only cost memory",
                ),
            );
        }
        if job.buffer_timeout.0.is_zero() {
            self.error(
                Diagnostic::error("invalid-duration", "`buffer_timeout` must be at least 1ms")
                    .at(self.span(&["buffer_timeout"]), "too short")
                    .help("a small value such as 1ms gives low latency; 0 would keep every instance busy polling"),
            );
        }
        if self.loaded.spec.state.cache_entries == 0 {
            self.error(
                Diagnostic::error("invalid-value", "`cache_entries` must be at least 1")
                    .at(self.span(&["state", "cache_entries"]), "too small"),
            );
        }
    }

    /// A node's parallelism, or the job's; reports values out of range.
    fn parallelism(&mut self, section: &str, name: &str, own: Option<u32>, default: u32) -> u32 {
        let max = self
            .loaded
            .spec
            .job
            .max_parallelism
            .clamp(1, MAX_KEY_GROUPS);
        let (value, path): (u32, Vec<&str>) = match own {
            Some(p) => (p, vec![section, name, "parallelism"]),
            None => (default, vec!["parallelism"]),
        };
        if value == 0 || value > max {
            let already_reported = own.is_none()
                && self
                    .diagnostics
                    .iter()
                    .any(|d| d.code == "invalid-parallelism" && d.span == self.span(&path));
            if !already_reported {
                let whose = if own.is_some() {
                    format!("node `{name}`")
                } else {
                    "the job".to_owned()
                };
                self.error(
                    Diagnostic::error(
                        "invalid-parallelism",
                        format!("the parallelism of {whose} must be between 1 and max_parallelism ({max}), not {value}"),
                    )
                    .at(self.span(&path), "out of range"),
                );
            }
        }
        value.clamp(1, max)
    }

    fn node_name(&mut self, section: &str, name: &str) {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.error(
                Diagnostic::error("invalid-node-name", format!("invalid node name `{name}`"))
                    .at(
                        self.key_span(&[section, name]),
                        "use letters, digits, `-`, `_` and `.`",
                    )
                    .help("instances are named `<node>#<index>` in logs and checkpoints"),
            );
        }
    }

    fn checkpoint(&mut self, c: &CheckpointSpec) -> Option<CheckpointSettings> {
        for (field, value) in [
            ("max_concurrent", c.max_concurrent),
            ("retain", c.retain),
            ("max_chain", c.max_chain),
        ] {
            if value == 0 {
                self.error(
                    Diagnostic::error(
                        "invalid-value",
                        format!("`checkpoint.{field}` must be at least 1"),
                    )
                    .at(self.span(&["checkpoint", field]), "must be at least 1"),
                );
            }
        }
        for (field, value) in [("interval", c.interval), ("timeout", c.timeout)] {
            if value.0.is_zero() {
                self.error(
                    Diagnostic::error(
                        "invalid-duration",
                        format!("`checkpoint.{field}` must be longer than 0ms"),
                    )
                    .at(self.span(&["checkpoint", field]), "too short"),
                );
            }
        }
        match StoreLocation::parse(&c.store) {
            Ok(store) => Some(CheckpointSettings {
                interval: c.interval.0,
                mode: c.mode,
                min_pause: c.min_pause.0,
                timeout: c.timeout.0,
                max_concurrent: c.max_concurrent,
                tolerable_failures: c.tolerable_failures,
                incremental: c.incremental,
                max_chain: c.max_chain,
                retain: c.retain,
                on_cancel: c.on_cancel,
                store,
                store_uri: c.store.clone(),
            }),
            Err(e) => {
                let code = match e {
                    StoreLocationError::NotCompiledIn { .. } => "unknown-store-scheme",
                    _ => "invalid-store",
                };
                let at = if self
                    .loaded
                    .spans
                    .contains(&spans::path(&["checkpoint", "store"]))
                {
                    self.span(&["checkpoint", "store"])
                } else {
                    self.key_span(&["checkpoint"])
                };
                self.error(
                    Diagnostic::error(code, e.to_string())
                        .at(at, "bad store location")
                        .help(format!(
                            "supported schemes: {} (e.g. file:///tmp/dataflow/checkpoints)",
                            store::compiled_schemes().join(", ")
                        )),
                );
                None
            }
        }
    }

    fn key(&mut self, name: &str, key: &str) -> Option<Expr> {
        let what = format!("the `key` of transform `{name}`");
        self.report_expr(
            &["transforms", name, "key"],
            &what,
            key,
            Expr::compile_key(key),
        )
    }

    fn expr(&mut self, name: &str, field: &str, source: &str, vars: &[Var]) -> Option<Expr> {
        let what = format!("the `{field}` of transform `{name}`");
        let compiled = Expr::compile(source, vars);
        self.report_expr(&["transforms", name, field], &what, source, compiled)
    }

    /// A source's `event_time`, compiled; `None` (reported) when its
    /// timestamp does not compile.
    fn event_time(&mut self, name: &str, spec: &EventTimeSpec) -> Option<EventTime> {
        let what = format!("the `event_time.timestamp` of source `{name}`");
        let at = ["sources", name, "event_time", "timestamp"];
        let timestamp = self.report_expr(
            &at,
            &what,
            &spec.timestamp,
            Expr::compile_key(&spec.timestamp),
        )?;
        let ms = |d: &crate::spec::Duration| i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX);
        Some(EventTime {
            timestamp,
            written: spec.timestamp.trim().to_owned(),
            max_out_of_orderness_ms: ms(&spec.max_out_of_orderness),
            idle_timeout: spec.idle_timeout.map(|d| d.0),
            max_future_ms: spec.max_future.as_ref().map(ms),
        })
    }

    /// Reports `result`'s error at the expression written at `at`.
    fn report_expr(
        &mut self,
        at: &[&str],
        what: &str,
        source: &str,
        result: Result<Expr, CompileError>,
    ) -> Option<Expr> {
        let err = match result {
            Ok(e) => return Some(e),
            Err(e) => e,
        };
        let value = self.span(at);
        let span = value
            .clone()
            .map(|v| self.position_in(v, source, err.line, err.column));
        let mut d = Diagnostic::error(
            "invalid-expression",
            format!("{what} does not compile: {}", err.message),
        )
        .at(span, "here");
        if let Some(help) = err.help {
            d = d.help(help);
        }
        self.error(d);
        None
    }

    /// The byte range of (line, column) of an expression inside the YAML
    /// value that holds it. An expression written over several lines of a
    /// block scalar (`|`) is found line by line; if it is not written
    /// verbatim (escapes, a folded scalar), the whole value is the place.
    fn position_in(
        &self,
        value: Range<usize>,
        source: &str,
        line: usize,
        column: usize,
    ) -> Range<usize> {
        let text = &self.loaded.file.text;
        let in_line = source
            .split('\n')
            .nth(line.saturating_sub(1))
            .unwrap_or(source);
        let line_start = match text[value.clone()].find(source) {
            Some(found) => {
                let start = value.start + found;
                start
                    + source
                        .split('\n')
                        .take(line.saturating_sub(1))
                        .map(|l| l.len() + 1)
                        .sum::<usize>()
            }
            None => {
                // The value's `line`-th line, which must hold the expression's.
                let first = text[..value.start].rfind('\n').map_or(0, |i| i + 1);
                let Some(file_line) = text[first..]
                    .split_inclusive('\n')
                    .scan(first, |at, l| {
                        let start = *at;
                        *at += l.len();
                        Some((start, l))
                    })
                    .nth(line.saturating_sub(1))
                else {
                    return value;
                };
                match file_line.1.find(in_line) {
                    Some(i) if !in_line.trim().is_empty() => file_line.0 + i,
                    _ => return value,
                }
            }
        };
        let col_bytes: usize = in_line
            .chars()
            .take(column.saturating_sub(1))
            .map(char::len_utf8)
            .sum();
        let at = (line_start + col_bytes.min(in_line.len())).min(text.len());
        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
        at..end.max(at)
    }

    fn edges(
        &mut self,
        graph: &mut DiGraph<PlanNode, EdgeKind>,
        index: &HashMap<&str, NodeIndex>,
        shadowed: &HashSet<(&str, &str)>,
    ) {
        let spec = &self.loaded.spec;
        let steps = spec
            .transforms
            .iter()
            .map(|(n, node)| ("transforms", n, &node.inputs))
            .chain(
                spec.sinks
                    .iter()
                    .map(|(n, node)| ("sinks", n, &node.inputs)),
            );
        let names: Vec<&str> = spec
            .sources
            .keys()
            .chain(spec.transforms.keys())
            .chain(spec.sinks.keys())
            .chain(self.loaded.broken.iter())
            .map(String::as_str)
            .collect();
        // With a section that is not a mapping, an input may name one of
        // the nodes it was meant to hold.
        let section_not_a_mapping = ["sources", "transforms", "sinks"]
            .iter()
            .any(|s| self.loaded.has_error_at(&spans::path(&[s])));
        for (section, name, inputs) in steps {
            if shadowed.contains(&(section, name.as_str())) {
                continue;
            }
            let Some(&to) = index.get(name.as_str()) else {
                continue;
            };
            let mut listed: HashSet<&str> = HashSet::with_capacity(inputs.len());
            for (i, input) in inputs.iter().enumerate() {
                let mut path = spans::path(&[section, name, "inputs"]);
                path.push(Seg::Index(i));
                let at = self.loaded.spans.value(&path);
                if !listed.insert(input.as_str()) {
                    self.error(
                        Diagnostic::error(
                            "duplicate-input",
                            format!("`{name}` lists the input `{input}` twice"),
                        )
                        .at(at, "listed already")
                        .help(format!(
                            "remove the second `{input}`: each input is read once"
                        )),
                    );
                    continue;
                }
                let late_of = input
                    .strip_suffix(LATE_PORT)
                    .filter(|_| !index.contains_key(input.as_str()))
                    .and_then(|node| index.get(node).copied());
                if let Some(from) = late_of {
                    if !graph[from].planned.late_output() {
                        let node = &graph[from].name;
                        let d = Diagnostic::error(
                            "no-late-output",
                            format!("`{name}` reads the late records of `{node}`, which has no late output"),
                        )
                        .at(at, "no late output")
                        .help(format!(
                            "set `late: output` on window `{node}` to send its late records on"
                        ));
                        self.error(d);
                        continue;
                    }
                    let kind = if graph[to].planned.key().is_some() {
                        EdgeKind::Hash
                    } else {
                        EdgeKind::Rebalance
                    };
                    let e = graph.add_edge(from, to, kind);
                    graph[to].inputs.push(from);
                    self.late_edges.push(e);
                    continue;
                }
                let Some(&from) = index.get(input.as_str()) else {
                    if !self.unbuilt.contains(input) && !section_not_a_mapping {
                        self.error(
                            Diagnostic::error(
                                "unknown-input",
                                format!("`{name}` reads from `{input}`, but no node has that name"),
                            )
                            .at(at, "no such node")
                            .suggest(input, names.iter().copied()),
                        );
                    }
                    continue;
                };
                if graph[from].planned.is_sink() {
                    let upstream = spec
                        .sinks
                        .get(input)
                        .map(|s| &s.inputs[..])
                        .unwrap_or_default();
                    let mut d = Diagnostic::error(
                        "input-is-sink",
                        format!("`{name}` reads from `{input}`, which is a sink and has no output"),
                    )
                    .at(at, "a sink");
                    if !upstream.is_empty() {
                        d =
                            d.help(format!(
                            "to get the records `{input}` receives, read from what it reads: {}",
                            upstream.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    self.error(d);
                    continue;
                }
                let kind = if graph[to].planned.key().is_some() {
                    EdgeKind::Hash
                } else if graph[from].parallelism == graph[to].parallelism {
                    EdgeKind::Forward
                } else {
                    EdgeKind::Rebalance
                };
                graph.add_edge(from, to, kind);
                graph[to].inputs.push(from);
            }
        }
    }

    /// A topological order of the graph; reports every cycle by name.
    fn acyclic_order(&mut self, graph: &DiGraph<PlanNode, EdgeKind>) -> Option<Vec<NodeIndex>> {
        if let Ok(order) = toposort(graph, None) {
            return Some(order);
        }
        for mut scc in tarjan_scc(graph) {
            let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            scc.sort();
            let cycle = cycle_through(graph, &scc);
            let names: Vec<&str> = cycle.iter().map(|&n| graph[n].name.as_str()).collect();
            let first = names[0];
            let last = names[names.len() - 1];
            // Only transforms can be in a cycle: sources read nothing and
            // sinks are read by nothing. Point at the input that closes it.
            let inputs = self
                .loaded
                .spec
                .transforms
                .get(first)
                .map(|n| &n.inputs[..])
                .unwrap_or_default();
            let mut path = spans::path(&["transforms", first, "inputs"]);
            if let Some(i) = inputs.iter().position(|i| i == last) {
                path.push(Seg::Index(i));
            }
            self.error(
                Diagnostic::error(
                    "cycle",
                    format!("the pipeline has a cycle: {} → {first}", names.join(" → ")),
                )
                .at(
                    self.loaded.spans.value(&path),
                    format!("`{first}` reads from `{last}`"),
                )
                .help("a pipeline is a DAG: records may not flow back into a node they came from"),
            );
        }
        None
    }

    /// Warns about nodes whose output never reaches a sink.
    /// Reports each late output that no node reads: its records would be
    /// lost without a word (Beam YAML refuses the same).
    fn unread_late_outputs(&mut self, graph: &DiGraph<PlanNode, EdgeKind>) {
        for n in graph.node_indices() {
            if !graph[n].planned.late_output() {
                continue;
            }
            let read = graph.edges(n).any(|e| self.late_edges.contains(&e.id()));
            if read {
                continue;
            }
            let name = &graph[n].name;
            let d = Diagnostic::error(
                "unread-late-output",
                format!("window `{name}` sends its late records on, but no node reads them"),
            )
            .at(self.span(&["transforms", name, "late"]), "nothing reads this")
            .help(format!(
                "read them with `inputs: [{name}{LATE_PORT}]` in a sink or transform, or set `late: drop`"
            ));
            self.error(d);
        }
    }

    /// Reports each node that goes by event time (a window) over records
    /// without it, naming a source that gives none.
    fn untimed_inputs(&mut self, graph: &DiGraph<PlanNode, EdgeKind>) {
        let reversed = Reversed(graph);
        for n in graph.node_indices() {
            let node = &graph[n];
            let Planned::Transform(t) = &node.planned else {
                continue;
            };
            if !t.event_time() || node.timed {
                continue;
            }
            let mut dfs = Dfs::new(&reversed, n);
            let mut untimed = None;
            while let Some(m) = dfs.next(&reversed) {
                if graph[m].planned.is_source() && graph[m].event_time.is_none() {
                    untimed = Some(graph[m].name.clone());
                    break;
                }
            }
            // None when an input is left out of the graph for errors of its own.
            let Some(source) = untimed else {
                continue;
            };
            let d = Diagnostic::error(
                "no-event-time",
                format!(
                    "{} `{}` goes by event time, but its input has none: source `{source}` declares no `event_time`",
                    node.type_name, node.name
                ),
            )
            .at(self.span(&["transforms", &node.name, "inputs"]), "no event time here")
            .help(format!(
                "give source `{source}` an `event_time`, e.g. `event_time: {{timestamp: ts, max_out_of_orderness: 5s}}`"
            ));
            self.error(d);
        }
    }

    fn unused_outputs(&mut self, graph: &DiGraph<PlanNode, EdgeKind>) {
        let mut reaches_sink = vec![false; graph.node_count()];
        let reversed = Reversed(graph);
        for sink in graph.node_indices().filter(|&n| graph[n].planned.is_sink()) {
            let mut dfs = Dfs::new(&reversed, sink);
            while let Some(n) = dfs.next(&reversed) {
                reaches_sink[n.index()] = true;
            }
        }
        for n in graph.node_indices() {
            if reaches_sink[n.index()] {
                continue;
            }
            let node = &graph[n];
            let section = if node.planned.is_source() {
                "sources"
            } else {
                "transforms"
            };
            let consumers = graph.neighbors_directed(n, Direction::Outgoing).count();
            let why = if consumers == 0 {
                "nothing reads its output"
            } else {
                "its output reaches no sink"
            };
            self.diagnostics.push(
                Diagnostic::warning(
                    "unused-output",
                    format!("`{}` does nothing useful: {why}", node.name),
                )
                .at(self.key_span(&[section, &node.name]), "output unused")
                .help(format!(
                    "name `{}` in the `inputs` of a sink or transform, or remove it",
                    node.name
                )),
            );
        }
    }
}

/// A plain field name (no path): what `field`, `time_field` and
/// `latency_field` take.
pub(crate) fn is_field_name(field: &str) -> bool {
    crate::expr::is_field_path(field) && !field.contains('.')
}

/// The shortest cycle through the first node of the strongly connected
/// component `scc` (breadth-first within the component).
fn cycle_through(graph: &DiGraph<PlanNode, EdgeKind>, scc: &[NodeIndex]) -> Vec<NodeIndex> {
    let start = scc[0];
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.neighbors_directed(at, Direction::Outgoing) {
            if next == start {
                let mut cycle = vec![at];
                while let Some(&p) = parent.get(cycle.last().unwrap_or(&start)) {
                    cycle.push(p);
                }
                cycle.reverse();
                return cycle;
            }
            if scc.contains(&next) && !parent.contains_key(&next) {
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    vec![start]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceFile;
    use proptest::prelude::*;

    const WORD_COUNT: &str = include_str!("../../../specs/word_count.yaml");

    fn check(text: String) -> Vec<Diagnostic> {
        let loaded = crate::spec::load(SourceFile {
            name: "spec.yaml".into(),
            text,
        });
        compile(&loaded).1
    }

    #[test]
    fn the_example_compiles() {
        assert_eq!(check(WORD_COUNT.to_owned()), Vec::new());
    }

    proptest! {
        /// A typo anywhere in a valid spec (a character inserted, deleted
        /// or replaced) never makes `check` panic, and every diagnostic
        /// points inside the text, on character boundaries.
        #[test]
        fn a_typo_anywhere_is_reported_not_a_panic(
            at in 0usize..WORD_COUNT.len(),
            delete in 0usize..3,
            insert in prop::sample::select(vec!["", "\t", "\"", "'", ":", ": ", " ", "\n", "[", "{", "-", "#", "x", "é", "\n  ", "*a", "&a", "!t"]),
        ) {
            let mut at = at;
            while !WORD_COUNT.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + delete).min(WORD_COUNT.len());
            while !WORD_COUNT.is_char_boundary(end) {
                end += 1;
            }
            let text = format!("{}{insert}{}", &WORD_COUNT[..at], &WORD_COUNT[end..]);
            for d in check(text.clone()) {
                if let Some(span) = &d.span {
                    prop_assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
                    prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end), "{d:?}");
                }
            }
        }
    }

    fn codes(text: &str) -> Vec<&'static str> {
        check(text.to_owned()).iter().map(|d| d.code).collect()
    }

    #[test]
    fn a_node_that_does_not_compile_is_not_also_an_unknown_input() {
        let codes = codes(
            "name: wc\nsources:\n  lines: {type: file, path: a.txt}\ntransforms:\n  \
             counts: {type: count, inputs: [lines], key: 'this.word +'}\n\
             sinks:\n  out: {type: print, inputs: [counts]}\n",
        );
        assert_eq!(codes, ["invalid-expression"]);
    }

    #[test]
    fn an_empty_state_cache_is_refused_where_it_is_written() {
        let text = "name: x\nstate: {backend: sled, cache_entries: 0}\n\
                    sources: {a: {type: generate}}\nsinks: {o: {type: print, inputs: [a]}}\n";
        let diagnostics = check(text.to_owned());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].code, "invalid-value");
        let span = diagnostics[0].span.clone().expect("a span");
        assert_eq!(&text[span.start..span.end], "0");
    }

    /// librdkafka takes an empty group, then refuses every commit.
    #[cfg(feature = "kafka")]
    #[test]
    fn an_empty_kafka_group_is_refused_where_it_is_written() {
        let text = "name: x\nsources: {a: {type: kafka, bootstrap_servers: 'h:9092', \
                    topics: [t], group_id: ' '}}\nsinks: {o: {type: print, inputs: [a]}}\n";
        let diagnostics = check(text.to_owned());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].code, "invalid-value");
        let span = diagnostics[0].span.clone().expect("a span");
        assert_eq!(&text[span.start..span.end], "' '");
    }

    /// The source would read committed records whatever the option said.
    #[cfg(feature = "kafka")]
    #[test]
    fn a_kafka_property_the_source_sets_itself_is_refused_where_it_is_written() {
        let text = "name: x\nsources: {a: {type: kafka, bootstrap_servers: 'h:9092', topics: [t], \
                    librdkafka_options: {isolation.level: read_uncommitted}}}\n\
                    sinks: {o: {type: print, inputs: [a]}}\n";
        let diagnostics = check(text.to_owned());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].code, "invalid-property");
        let span = diagnostics[0].span.clone().expect("a span");
        assert_eq!(&text[span.start..span.end], "read_uncommitted");
    }

    #[test]
    fn a_document_that_cannot_be_read_is_not_also_missing_its_nodes() {
        assert_eq!(
            codes("name: x\nsources:\n  a: {type: generate\nsinks: {}\n"),
            ["yaml-syntax"]
        );
        // A node defined twice is read once, and the rest still checked.
        assert_eq!(
            codes(
                "name: x\nsources:\n  a: {type: generate}\n  a: {type: generate}\n\
                 sinks: {o: {type: print, inputs: [a]}}\n"
            ),
            ["duplicate-node"]
        );
        assert_eq!(
            codes("name: [x]\nsources: {a: {type: generate}}\nsinks: {o: {type: print, inputs: [b]}}\n"),
            ["invalid-type", "unknown-input"]
        );
        assert_eq!(codes(""), ["empty-spec"]);
        assert_eq!(codes("- a\n"), ["invalid-type"]);
        assert_eq!(
            codes("name: x\nsources: 5\nsinks:\n  o: {type: print, inputs: [a]}\n"),
            ["invalid-type"]
        );
    }
}
