//! `type: join`: an interval join or a window join of two inputs, by key
//! and event time.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::expr::Expr;
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::join::JoinSpec;
use crate::operators::window::accumulate::Body;
use crate::operators::window::{Emit, WindowSpec};
use crate::plan::NodeCx;
use crate::spec::Duration;
use crate::value::intern;

/// Joins each record of the second input (the right) with the records of
/// the first (the left) that have the same key and a time within
/// `between` of its own (an interval join), or that fall in the same
/// window (`tumbling`, `sliding` or `session`: a window join). Results
/// hold the two records under their inputs' names.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// One key for both inputs, or each input's by its name
    /// (`{orders: id, payments: order_id}`).
    pub key: JoinKey,
    /// The bounds of the right record's time minus the left's.
    #[serde(default)]
    pub between: Option<Between>,
    /// A window join: records of the same key in the same tumbling window
    /// of this size (`1m`) join.
    #[serde(default)]
    pub tumbling: Option<Duration>,
    /// A window join over sliding windows of this size, one every `slide`.
    #[serde(default)]
    pub sliding: Option<Duration>,
    #[serde(default)]
    pub slide: Option<Duration>,
    /// A window join over session windows: a key's window closes after
    /// this long without a record on either input.
    #[serde(default)]
    pub session: Option<Duration>,
    /// `inner` (default): joined pairs only. `left`: also each left
    /// record that joined none, alone, once the watermark passes its bounds.
    #[serde(default)]
    pub kind: JoinKind,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum JoinKey {
    Both(String),
    Each(IndexMap<String, String>),
}

/// `right.time - left.time` must be at least `lower` and at most `upper`:
/// durations, negative ones written with a `-` (`-5m`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Between {
    pub lower: String,
    pub upper: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    #[default]
    Inner,
    Left,
}

impl TransformType for Join {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let name = cx.name();
        let inputs: Vec<String> = cx
            .spec()
            .transforms
            .get(name)
            .map(|n| n.inputs.clone())
            .unwrap_or_default();
        if inputs.len() != 2 {
            let d = Diagnostic::error(
                "join-inputs",
                format!(
                    "join `{name}` needs two inputs, the left and the right, not {}",
                    inputs.len()
                ),
            )
            .at(cx.span("inputs"), "here")
            .help("e.g. `inputs: [orders, payments]`");
            cx.error(d);
            return None;
        }
        let keys = self.keys(cx, &inputs);
        let kinds = super::window::Kinds {
            tumbling: self.tumbling,
            sliding: self.sliding,
            slide: self.slide,
            session: self.session,
        };
        let windowed = kinds.any();
        let between = match (&self.between, windowed) {
            (Some(between), false) => Some(between),
            (None, true) => None,
            (given, _) => {
                let (message, at) = if given.is_some() {
                    (
                        format!("join `{name}` has both `between` and a window: it is an interval join or a window join"),
                        cx.key_span(Some("between")),
                    )
                } else {
                    (
                        format!("join `{name}` needs `between` (an interval join) or one of `tumbling`, `sliding` or `session` (a window join)"),
                        cx.key_span(None),
                    )
                };
                let d = Diagnostic::error("join-kind", message)
                    .at(at, "here")
                    .help("e.g. `between: {lower: -5m, upper: 5m}`, or `tumbling: 1m`");
                cx.error(d);
                return None;
            }
        };
        let key_text = match &self.key {
            JoinKey::Both(k) => k.trim().to_owned(),
            JoinKey::Each(m) => m
                .iter()
                .map(|(i, k)| format!("{i}: {}", k.trim()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let names = [intern(&inputs[0]), intern(&inputs[1])];
        let outer = self.kind == JoinKind::Left;
        let spec = match between {
            Some(between) => {
                let bounds = self.bounds(cx, between);
                let [left, right] = keys?;
                let (lower, upper) = bounds?;
                JoinKindSpec::Interval(JoinSpec {
                    keys: [left, right],
                    names,
                    lower,
                    upper,
                    outer,
                })
            }
            None => {
                let assigner = super::window::assigner(cx, "join", kinds);
                let keys = keys?;
                JoinKindSpec::Window(WindowSpec {
                    keys: keys.to_vec(),
                    key_field: intern("key"),
                    assigner: assigner?,
                    allowed_lateness: 0,
                    emit: Emit::Close,
                    body: Body::Join { names, outer },
                    late_output: false,
                    processing_time: false,
                    early_ms: None,
                })
            }
        };
        Some(Box::new(Planned { spec, key_text }))
    }
}

impl Join {
    /// Each side's key, left first.
    fn keys(&self, cx: &mut NodeCx<'_, '_>, inputs: &[String]) -> Option<[Expr; 2]> {
        let name = cx.name();
        match &self.key {
            JoinKey::Both(key) => {
                let key = cx.key(key)?;
                Some([key.clone(), key])
            }
            JoinKey::Each(by_input) => {
                let mut keys = Vec::new();
                for input in inputs {
                    let Some(text) = by_input.get(input) else {
                        let d = Diagnostic::error(
                            "join-key",
                            format!("the `key` of join `{name}` gives no key for its input `{input}`"),
                        )
                        .at(cx.span("key"), "here")
                        .help("give each input's key by its name, e.g. `key: {orders: id, payments: order_id}`");
                        cx.error(d);
                        return None;
                    };
                    let what = format!("the key of `{input}` in join `{name}`");
                    keys.push(cx.key_at(&["key", input], &what, text)?);
                }
                if let Some(extra) = by_input.keys().find(|k| !inputs.contains(k)) {
                    let d = Diagnostic::error(
                        "join-key",
                        format!("the `key` of join `{name}` names `{extra}`, which is not one of its inputs"),
                    )
                    .at(cx.span_in(&["key", extra]), "not an input")
                    .suggest(extra, inputs.iter().map(String::as_str));
                    cx.error(d);
                    return None;
                }
                let right = keys.pop()?;
                let left = keys.pop()?;
                Some([left, right])
            }
        }
    }

    fn bounds(&self, cx: &mut NodeCx<'_, '_>, between: &Between) -> Option<(i64, i64)> {
        let name = cx.name();
        let mut parse = |field: &str, text: &str| -> Option<i64> {
            let (negative, magnitude) = match text.trim().strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.trim()),
            };
            match Duration::parse(magnitude) {
                Ok(d) => {
                    let ms = i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX);
                    Some(if negative { -ms } else { ms })
                }
                Err(e) => {
                    let d = Diagnostic::error("invalid-duration", e.to_string())
                        .at(cx.span_in(&["between", field]), "not a duration")
                        .help("a duration such as `15m`, `-5m` or `0s`");
                    cx.error(d);
                    None
                }
            }
        };
        let lower = parse("lower", &between.lower);
        let upper = parse("upper", &between.upper);
        let (lower, upper) = (lower?, upper?);
        if lower > upper {
            let d = Diagnostic::error(
                "join-bounds",
                format!(
                    "the bounds of join `{name}` are the wrong way round: `lower` ({}) is after `upper` ({}), so no records would join",
                    between.lower.trim(),
                    between.upper.trim()
                ),
            )
            .at(cx.span("between"), "lower > upper")
            .help("`lower` and `upper` bound the right record's time minus the left's; `lower` must not be after `upper`");
            cx.error(d);
            return None;
        }
        Some((lower, upper))
    }
}

/// An interval join, or a window join (a window over both inputs).
#[derive(Debug)]
enum JoinKindSpec {
    Interval(JoinSpec),
    Window(WindowSpec),
}

#[derive(Debug)]
struct Planned {
    spec: JoinKindSpec,
    key_text: String,
}

impl Planned {
    fn keys(&self) -> &[Expr] {
        match &self.spec {
            JoinKindSpec::Interval(spec) => &spec.keys,
            JoinKindSpec::Window(spec) => &spec.keys,
        }
    }
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        self.keys().first()
    }

    fn input_key(&self, input: usize) -> Option<&Expr> {
        self.keys().get(input)
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        let kind = match self.spec {
            JoinKindSpec::Interval(_) => "join",
            JoinKindSpec::Window(_) => "window join",
        };
        Some((kind, &self.key_text))
    }

    fn event_time(&self) -> bool {
        true
    }

    fn build(&self) -> Step {
        match &self.spec {
            JoinKindSpec::Interval(spec) => Step::Join(spec.clone()),
            JoinKindSpec::Window(spec) => Step::Window(spec.clone()),
        }
    }
}
