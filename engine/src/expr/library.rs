//! The functions expressions can call: CEL's standard library with its
//! timestamps and durations, the strings, lists and math extensions as in
//! cel-go, and `matches`.
//!
//! `matches` is ours rather than the `cel` crate's, which compiles its
//! pattern on every call: here a pattern is compiled once per thread and
//! kept, so a filter on `this.msg.matches("^ERROR")` costs one match per
//! record. The `regex` crate matches in linear time, so no pattern can
//! make a record take exponential time; a size limit bounds the memory a
//! compiled pattern may take.

use std::cell::RefCell;
use std::collections::HashMap;

use cel::common::types::{CelBool, CelString};
use cel::ExecutionError;

/// The most compiled patterns a thread keeps; past it they are dropped
/// and compiled again as needed (patterns built from records can be many).
const KEPT_PATTERNS: usize = 256;
/// The most memory one compiled pattern may take, in bytes.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The namespaces of the extensions' global functions (`math.abs`).
pub(super) const NAMESPACES: &[&str] = &["math", "strings", "lists"];

/// The environment every expression compiles and runs in.
pub(super) fn env() -> cel::Env {
    let mut env = cel::Env::stdlib();
    // The names of these overloads are new to a standard environment, so
    // declaring them cannot fail; if a `cel` upgrade made one clash, every
    // test that compiles an expression would say so.
    let declared = cel::extensions::strings(&mut env)
        .and_then(|()| cel::extensions::lists(&mut env))
        .and_then(|()| cel::extensions::math(&mut env))
        .and_then(|()| {
            cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>, id = "matches")
        })
        .and_then(|()| cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>));
    if let Err(e) = declared {
        unreachable!("a library function clashes with the standard ones: {e}");
    }
    env
}

/// Compiles `pattern` as `matches` does, for `check` to refuse a bad
/// literal pattern at its place in the spec.
pub(super) fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

thread_local! {
    static PATTERNS: RefCell<HashMap<Box<str>, regex::Regex>> = RefCell::new(HashMap::new());
}

fn matches(text: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    PATTERNS.with_borrow_mut(|kept| {
        if let Some(re) = kept.get(pattern.inner()) {
            return Ok(CelBool::from(re.is_match(text.inner())));
        }
        let re = compile_pattern(pattern.inner()).map_err(|e| {
            ExecutionError::function_error(
                "matches",
                format!("`{}` is not a valid pattern: {e}", pattern.inner()),
            )
        })?;
        let found = re.is_match(text.inner());
        if kept.len() >= KEPT_PATTERNS {
            kept.clear();
        }
        kept.insert(pattern.inner().into(), re);
        Ok(CelBool::from(found))
    })
}
