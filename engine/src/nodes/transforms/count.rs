//! `type: count`: a rolling count per key.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::Expr;
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::keyed::Fold;
use crate::plan::NodeCx;
use crate::spec::Duration;
use crate::value::{intern, Name};

/// Rolling keyed count: emits `{<name>: <key>, "count": <n>}`, `<name>` being the last field of a field-path key (`user.id` gives `id`), else `key`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub key: String,
    /// Forget a key's state this long after its last record (by the
    /// clock): its next record starts again from nothing.
    #[serde(default)]
    pub ttl: Option<Duration>,
}

impl TransformType for Count {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let ttl = super::ttl::plan(cx, self.ttl);
        Some(Box::new(Planned {
            key: cx.key(&self.key)?,
            ttl: ttl.ok()?,
            key_text: self.key.trim().to_owned(),
            key_field: key_field(&self.key),
        }))
    }
}

/// The name of the key in the output of a `count` whose `key` is written
/// `source`, as SQL names a grouped column: the last name of a field path
/// (`word`; `user.id` gives `id`; `this.word`, the same key as `word`,
/// gives `word`), else `key` (for `this` or any other expression, and for
/// a field named `count`, which would clash with the count).
pub fn key_field(source: &str) -> Name {
    let last = source.rsplit('.').next().unwrap_or(source);
    let name = if crate::expr::is_field_path(source) && source != "this" && last != "count" {
        last
    } else {
        "key"
    };
    intern(name)
}

#[derive(Debug)]
struct Planned {
    key: Expr,
    key_text: String,
    key_field: Name,
    ttl: Option<i64>,
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        Some(&self.key)
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        Some((super::ttl::state_kind("count", self.ttl), &self.key_text))
    }

    fn build(&self) -> Step {
        Step::Keyed(
            Fold::Count {
                key_field: self.key_field.clone(),
            },
            self.ttl,
        )
    }
}
