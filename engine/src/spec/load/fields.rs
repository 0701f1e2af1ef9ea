//! Reading one mapping as a typed struct while reporting every wrong
//! field, not only serde's first: a rejected field is reported, set aside,
//! and the rest read again; a required field whose value was wrong gets a
//! stand-in, so the fields after it are still checked.
//!
//! Apart from the document and the nodes, which decide what mapping to
//! read as what, because this is the one place that talks to serde.

use serde::de::DeserializeOwned;
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use super::{Loader, TOO_MANY_ERRORS};
use crate::diag::{did_you_mean, Diagnostic};
use crate::spec::serde_errors::{error_path, quoted_after, serde_diagnostic};
use crate::spec::spans::{Path, Seg};

/// Values tried in turn in place of a required field whose own value was
/// wrong: the first that reads stands in for it. `"1s"` reads as a string
/// and as a duration.
static STAND_INS: std::sync::LazyLock<[Value; 5]> = std::sync::LazyLock::new(|| {
    [
        Value::from(1),
        Value::from("1s"),
        Value::from(false),
        Value::Sequence(Vec::new()),
        Value::Mapping(Mapping::new()),
    ]
});

/// The most errors reported in one mapping.
const MAX_ERRORS_PER_MAPPING: usize = 20;

impl Loader<'_> {
    /// Deserializes the mapping `fields` (found at `path`, described as
    /// `what`) as a `T`, or as its variant `tag` if `T` is an enum. Every
    /// field serde rejects is reported, set aside, and the rest read again,
    /// until it reads or a required field is missing. `extra` are other
    /// names valid at this place, for suggestions.
    pub(super) fn fields<T: DeserializeOwned>(
        &mut self,
        path: &[Seg],
        what: &str,
        mut fields: Mapping,
        tag: Option<&str>,
        extra: &[&str],
    ) -> Option<T> {
        let mut set_aside: Vec<String> = Vec::new();
        let mut stood_in: Vec<String> = Vec::new();
        let read = |fields: &Mapping| {
            let value = match tag {
                Some(tag) => Value::Tagged(Box::new(TaggedValue {
                    tag: Tag::new(tag),
                    value: Value::Mapping(fields.clone()),
                })),
                None => Value::Mapping(fields.clone()),
            };
            serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
                // The path of an error inside a variant starts with the variant.
                let inner: Path = error_path(e.path())
                    .into_iter()
                    .skip(usize::from(tag.is_some()))
                    .collect();
                (inner, e.into_inner().to_string())
            })
        };
        // Each round reads the whole mapping again: bounded, so that a
        // mapping of thousands of wrong keys is checked in linear time.
        for _ in 0..MAX_ERRORS_PER_MAPPING {
            let (inner, message) = match read(&fields) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            if let Some(field) = quoted_after(&message, "missing field `") {
                if set_aside.iter().any(|f| f == field) && !stood_in.iter().any(|f| f == field) {
                    // A required field whose value was wrong (reported
                    // already): a stand-in takes its place, so that the
                    // other fields can still be checked. The spec has an
                    // error there, so the stand-in never runs.
                    if let Some(v) = STAND_INS.iter().find(|v| {
                        let mut with = fields.clone();
                        with.insert(Value::from(field), (*v).clone());
                        match read(&with) {
                            Ok(_) => true,
                            Err((at, _)) => at.first() != Some(&Seg::Key(field.to_owned())),
                        }
                    }) {
                        fields.insert(Value::from(field), v.clone());
                        stood_in.push(field.to_owned());
                        continue;
                    }
                    return None;
                }
                // Its name was misspelled (`feild`): reported already.
                if set_aside.iter().any(|f| did_you_mean(f, [field]).is_some()) {
                    return None;
                }
            }
            let mut full = path.to_vec();
            full.extend(inner.iter().cloned());
            self.diagnostics.push(serde_diagnostic(
                self.spans,
                &full,
                path.len(),
                what,
                &message,
                extra,
            ));
            let culprit = quoted_after(&message, "unknown field `")
                .map(str::to_owned)
                .or_else(|| match inner.first() {
                    Some(Seg::Key(k)) => Some(k.clone()),
                    _ => None,
                });
            match culprit {
                // In order: the errors shown are the first ones written.
                Some(field) if fields.shift_remove(field.as_str()).is_some() => {
                    set_aside.push(field)
                }
                _ => return None,
            }
        }
        if read(&fields).is_err() {
            self.diagnostics.push(
                Diagnostic::error(
                    TOO_MANY_ERRORS,
                    format!("{what} has more than {MAX_ERRORS_PER_MAPPING} errors; the rest are not shown"),
                )
                .at(self.spans.value(path), "")
                .help("fix these first"),
            );
        }
        None
    }
}
