//! `type: join`: an interval join of two inputs by key and event time.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::expr::Expr;
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::join::JoinSpec;
use crate::plan::NodeCx;
use crate::spec::Duration;
use crate::value::intern;

/// Joins each record of the second input (the right) with the records of
/// the first (the left) that have the same key and a time within
/// `between` of its own. Results hold the two records under their
/// inputs' names.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// One key for both inputs, or each input's by its name
    /// (`{orders: id, payments: order_id}`).
    pub key: JoinKey,
    /// The bounds of the right record's time minus the left's.
    pub between: Between,
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
        let bounds = self.bounds(cx);
        let [left, right] = keys?;
        let (lower, upper) = bounds?;
        let key_text = match &self.key {
            JoinKey::Both(k) => k.trim().to_owned(),
            JoinKey::Each(m) => m
                .iter()
                .map(|(i, k)| format!("{i}: {}", k.trim()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        Some(Box::new(Planned {
            spec: JoinSpec {
                keys: [left, right],
                names: [intern(&inputs[0]), intern(&inputs[1])],
                lower,
                upper,
                outer: self.kind == JoinKind::Left,
            },
            key_text,
        }))
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

    fn bounds(&self, cx: &mut NodeCx<'_, '_>) -> Option<(i64, i64)> {
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
        let lower = parse("lower", &self.between.lower);
        let upper = parse("upper", &self.between.upper);
        let (lower, upper) = (lower?, upper?);
        if lower > upper {
            let d = Diagnostic::error(
                "join-bounds",
                format!(
                    "the bounds of join `{name}` are the wrong way round: `lower` ({}) is after `upper` ({}), so no records would join",
                    self.between.lower.trim(),
                    self.between.upper.trim()
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

#[derive(Debug)]
struct Planned {
    spec: JoinSpec,
    key_text: String,
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        Some(&self.spec.keys[0])
    }

    fn input_key(&self, input: usize) -> Option<&Expr> {
        self.spec.keys.get(input)
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        Some(("join", &self.key_text))
    }

    fn event_time(&self) -> bool {
        true
    }

    fn build(&self) -> Step {
        Step::Join(self.spec.clone())
    }
}
