//! `type: window`: tumbling, sliding and session windows of event time
//! over a key, with named aggregates or a CEL reduce.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::expr::{Expr, Var};
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::window::accumulate::{Aggregate, Body, Function};
use crate::operators::window::{Emit, WindowSpec};
use crate::plan::NodeCx;
use crate::spec::Duration;
use crate::time::windows::Assigner;
use crate::value::intern;

/// Groups records by key into windows of event time and emits one result
/// per key and window, when the watermark closes it: the key, `window_start`,
/// `window_end` and each aggregate (or the reduce's fields).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The field or expression records are grouped by.
    pub key: String,
    /// Tumbling windows of this size, one after another (`1m`).
    #[serde(default)]
    pub tumbling: Option<Duration>,
    /// Sliding windows of this size, one starting every `slide`.
    #[serde(default)]
    pub sliding: Option<Duration>,
    /// How often a sliding window starts; at most its size.
    #[serde(default)]
    pub slide: Option<Duration>,
    /// Session windows: a key's window closes after this long without a record.
    #[serde(default)]
    pub session: Option<Duration>,
    /// Output fields and what they aggregate: `count`, `count(x)`, `sum(x)`,
    /// `min(x)`, `max(x)`, `avg(x)`, `first(x)`, `last(x)` or `collect(x)`,
    /// `x` a field or an expression.
    #[serde(default)]
    pub aggregates: IndexMap<String, String>,
    /// Instead of `aggregates`: the first record, then this CEL expression
    /// of each next record (`this`) and the result so far (`acc`).
    #[serde(default)]
    pub reduce: Option<String>,
    /// `close` (default): one result when the window closes; `update`: a
    /// result after every record.
    #[serde(default)]
    pub emit: EmitSpec,
    /// With `emit: close`: also, this often, the result so far of each
    /// open window that changed since (early results, by the clock).
    #[serde(default)]
    pub early: Option<Duration>,
    /// How long after its end a window still takes late records, each
    /// emitting its result again. Default 0.
    #[serde(default)]
    pub allowed_lateness: Option<Duration>,
    /// What becomes of records later than that: `drop` (default; they are
    /// counted), or `output` to send them on, for a node that reads
    /// `<name>.late`.
    #[serde(default)]
    pub late: LateSpec,
    /// `event` (default): windows of the records' event time, closed by
    /// the watermark. `processing`: of the clock's time when records reach
    /// the node, closed by the clock; for inputs without event time.
    #[serde(default)]
    pub time: TimeSpec,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeSpec {
    #[default]
    Event,
    Processing,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LateSpec {
    #[default]
    Drop,
    Output,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EmitSpec {
    #[default]
    Close,
    Update,
}

/// Field names a window's result sets itself.
const RESERVED: [&str; 2] = ["window_start", "window_end"];

impl TransformType for Window {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let key = cx.key(&self.key);
        let key_field = crate::nodes::transforms::count::key_field(&self.key);
        let assigner = assigner(
            cx,
            "window",
            Kinds {
                tumbling: self.tumbling,
                sliding: self.sliding,
                slide: self.slide,
                session: self.session,
            },
        );
        let body = self.body(cx, &key_field);
        let ms = |d: Option<Duration>| d.map_or(0, |d| i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX));
        Some(Box::new(Planned {
            spec: WindowSpec {
                keys: vec![key?],
                key_field,
                assigner: assigner?,
                allowed_lateness: ms(self.allowed_lateness),
                emit: match self.emit {
                    EmitSpec::Close => Emit::Close,
                    EmitSpec::Update => Emit::Update,
                },
                body: body?,
                late_output: self.late == LateSpec::Output,
                processing_time: self.time == TimeSpec::Processing,
                early_ms: Some(ms(self.early)).filter(|&ms| ms > 0),
            },
            key_text: self.key.trim().to_owned(),
        }))
    }
}

/// The kinds of window a node may give (one of them).
pub(super) struct Kinds {
    pub tumbling: Option<Duration>,
    pub sliding: Option<Duration>,
    pub slide: Option<Duration>,
    pub session: Option<Duration>,
}

impl Kinds {
    pub(super) fn any(&self) -> bool {
        self.tumbling.is_some() || self.sliding.is_some() || self.session.is_some()
    }
}

/// Checks the kind of window of node `cx.name()`, a `what` (`window`,
/// `join`), and gives its assigner.
pub(super) fn assigner(cx: &mut NodeCx<'_, '_>, what: &str, kinds: Kinds) -> Option<Assigner> {
    let this = &kinds;
    let name = cx.name();
    let ms = |d: Duration| i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX);
    let given: Vec<&str> = [
        ("tumbling", this.tumbling.is_some()),
        ("sliding", this.sliding.is_some()),
        ("session", this.session.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if given.len() != 1 {
        let (message, at) = match given.len() {
            0 => (
                format!("{what} `{name}` needs one of `tumbling`, `sliding` or `session`"),
                cx.key_span(None),
            ),
            _ => (
                format!(
                    "{what} `{name}` has both `{}` and `{}`: it needs one kind of window",
                    given[0], given[1]
                ),
                cx.key_span(Some(given[1])),
            ),
        };
        let d = Diagnostic::error("window-kind", message)
            .at(at, "here")
            .help("e.g. `tumbling: 1m`, or `sliding: 10m` with `slide: 1m`, or `session: 5m`");
        cx.error(d);
        return None;
    }
    let positive = |cx: &mut NodeCx<'_, '_>, field: &str, d: Duration| {
        if d.0.as_millis() == 0 {
            let d = Diagnostic::error(
                "invalid-value",
                format!("`{field}` of {what} `{name}` must be at least 1ms"),
            )
            .at(cx.span(field), "zero");
            cx.error(d);
            return false;
        }
        true
    };
    if this.slide.is_some() && this.sliding.is_none() {
        let d = Diagnostic::error(
            "window-kind",
            format!("`slide` of {what} `{name}` goes with `sliding` windows only"),
        )
        .at(cx.key_span(Some("slide")), "not a sliding window");
        cx.error(d);
        return None;
    }
    if let Some(size) = this.tumbling {
        return positive(cx, "tumbling", size).then(|| Assigner::Tumbling { size: ms(size) });
    }
    if let Some(gap) = this.session {
        return positive(cx, "session", gap).then(|| Assigner::Session { gap: ms(gap) });
    }
    let size = this.sliding?;
    let Some(slide) = this.slide else {
        let d = Diagnostic::error(
            "window-kind",
            format!("the sliding windows of {what} `{name}` need a `slide`: how often a window starts"),
        )
        .at(cx.key_span(Some("sliding")), "no `slide`")
        .help("e.g. `slide: 1m` for a window starting every minute");
        cx.error(d);
        return None;
    };
    if !(positive(cx, "sliding", size) & positive(cx, "slide", slide)) {
        return None;
    }
    if slide > size {
        let d = Diagnostic::error(
            "slide-larger-than-size",
            format!(
                "the `slide` of {what} `{name}` ({slide}) is larger than its size ({size}): records between windows would be lost"
            ),
        )
        .at(cx.span("slide"), "larger than `sliding`")
        .help("make `slide` at most the size; equal to it is a tumbling window");
        cx.error(d);
        return None;
    }
    Some(Assigner::Sliding {
        size: ms(size),
        slide: ms(slide),
    })
}

impl Window {
    fn body(&self, cx: &mut NodeCx<'_, '_>, key_field: &str) -> Option<Body> {
        let name = cx.name();
        match (&self.reduce, self.aggregates.is_empty()) {
            (Some(reduce), true) => {
                return cx
                    .expr("reduce", reduce, &[Var::Acc, Var::This])
                    .map(Body::Reduce)
            }
            (None, false) => {}
            (reduce, _) => {
                let (message, at) = if reduce.is_some() {
                    (
                        format!("window `{name}` has both `aggregates` and `reduce`: it takes one"),
                        cx.key_span(Some("reduce")),
                    )
                } else {
                    (
                        format!("window `{name}` has nothing to compute: it needs `aggregates` or `reduce`"),
                        cx.key_span(None),
                    )
                };
                let d = Diagnostic::error("window-body", message)
                    .at(at, "here")
                    .help("e.g. `aggregates: {events: count, bytes: sum(bytes)}`");
                cx.error(d);
                return None;
            }
        }
        let mut aggregates = Vec::new();
        let mut ok = true;
        for (field, text) in &self.aggregates {
            match aggregate(cx, key_field, field, text) {
                Some(a) => aggregates.push(a),
                None => ok = false,
            }
        }
        ok.then_some(Body::Aggregates(aggregates))
    }
}

/// Checks and compiles one aggregate, `field: function(arg)`.
fn aggregate(
    cx: &mut NodeCx<'_, '_>,
    key_field: &str,
    field: &str,
    text: &str,
) -> Option<Aggregate> {
    let name = cx.name();
    let at = cx.span_in(&["aggregates", field]);
    if !crate::plan::is_field_name(field) || RESERVED.contains(&field) || field == key_field {
        let d = Diagnostic::error(
            "invalid-field",
            format!("window `{name}` cannot name an aggregate `{field}`"),
        )
        .at(cx.span_in(&["aggregates"]), "here")
        .help(format!(
            "an aggregate needs a field name other than the key's (`{key_field}`), `window_start` and `window_end`"
        ));
        cx.error(d);
        return None;
    }
    let text = text.trim();
    let (function, arg) = match text.split_once('(') {
        Some((f, rest)) => match rest.trim_end().strip_suffix(')') {
            Some(arg) => (f.trim(), Some(arg)),
            None => (text, None),
        },
        None => (text, None),
    };
    let Some(&(_, kind)) = Function::NAMES.iter().find(|(n, _)| *n == function) else {
        let shape = if text.contains('(') && !text.trim_end().ends_with(')') {
            "an aggregate is written `function(field)`"
        } else {
            "unknown aggregate function"
        };
        let d = Diagnostic::error(
            "unknown-aggregate",
            format!("`{text}` of window `{name}` is not an aggregate: {shape}"),
        )
        .at(at, "here")
        .suggest(function, Function::NAMES.iter().map(|(n, _)| *n))
        .help("the functions are count, sum, min, max, avg, first, last and collect");
        cx.error(d);
        return None;
    };
    let arg = match (kind, arg.map(str::trim)) {
        (Function::Count, None) => None,
        (_, Some(arg)) if !arg.is_empty() => {
            let what = format!("the aggregate `{field}` of window `{name}`");
            Some(cx.key_at(&["aggregates", field], &what, arg)?)
        }
        _ => {
            let d = Diagnostic::error(
                "unknown-aggregate",
                format!("`{text}` of window `{name}` needs what to aggregate: `{function}(field)`"),
            )
            .at(at, "here");
            cx.error(d);
            return None;
        }
    };
    Some(Aggregate {
        name: intern(field),
        function: kind,
        arg,
    })
}

#[derive(Debug)]
struct Planned {
    spec: WindowSpec,
    key_text: String,
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        self.spec.keys.first()
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        Some(("window", &self.key_text))
    }

    fn event_time(&self) -> bool {
        !self.spec.processing_time
    }

    fn late_output(&self) -> bool {
        self.spec.late_output
    }

    fn build(&self) -> Step {
        Step::Window(self.spec.clone())
    }
}
