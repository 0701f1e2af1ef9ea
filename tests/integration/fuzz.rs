//! Property tests of the loader and the planner: whatever text a user
//! hands to `dataflow check`, it answers with diagnostics and never panics,
//! and every diagnostic points at a real place in that text.
//!
//! The inputs are random strings, soups of YAML and spec tokens, the
//! example specs (and the documentation's) mutated line by line and
//! character by character, and valid specs with random expressions.

use std::sync::LazyLock;

use dataflow::diag::{self, SourceFile};
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::harness::root;

/// Cases per property: enough to reach the odd corners (tabs, multibyte
/// characters, truncated quotes) while keeping the whole file to about a
/// second in release. `PROPTEST_CASES=400000` hunts longer.
const CASES: u32 = 5000;

fn config() -> Config {
    let default = Config::default();
    Config {
        cases: default.cases.max(CASES),
        // Failures worth keeping become named regression tests instead.
        failure_persistence: None,
        ..default
    }
}

/// Loads and compiles `text` as `dataflow check` does, renders the result
/// both ways, and checks every diagnostic's span.
fn check(text: &str) -> Result<(), TestCaseError> {
    let file = SourceFile {
        name: "fuzz.yaml".to_owned(),
        text: text.to_owned(),
    };
    let loaded = dataflow::spec::load(file);
    let (plan, diagnostics) = dataflow::plan::compile(&loaded);
    for d in &diagnostics {
        let Some(span) = &d.span else { continue };
        prop_assert!(
            span.start <= span.end && span.end <= text.len(),
            "[{}] span {span:?} outside the text ({} bytes): {}",
            d.code,
            text.len(),
            d.message
        );
        prop_assert!(
            text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
            "[{}] span {span:?} splits a character: {}",
            d.code,
            d.message
        );
    }
    // A document that is not YAML is one problem, not a cascade of them.
    if diagnostics.iter().any(|d| d.code == "yaml-syntax") {
        let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
        prop_assert_eq!(codes.len(), 1, "{:?}", codes);
    }
    prop_assert_eq!(
        plan.is_some(),
        !diagnostics.iter().any(diag::Diagnostic::is_error),
        "a plan comes exactly when there is no error"
    );
    let _ = diag::render(&loaded.file, &diagnostics);
    for d in &diagnostics {
        let _ = d.to_json(&loaded.file);
    }
    if let Some(plan) = plan {
        let _ = plan.summary_text();
        let _ = plan.summary_json();
    }
    Ok(())
}

/// The texts mutations start from: the example specs and every complete
/// spec in the documentation, which between them use every node type.
static CORPUS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut corpus: Vec<String> = crate::specs::example_specs()
        .iter()
        .map(|p| std::fs::read_to_string(root().join(p)).expect("the example is readable"))
        .collect();
    corpus.extend(crate::docs::snippets().into_iter().map(|s| s.text));
    corpus
});

/// Pieces of YAML syntax and of the spec language, including the
/// characters that trip position arithmetic (tabs, CR, multibyte ones).
const TOKENS: &[&str] = &[
    "name",
    "sources",
    "transforms",
    "sinks",
    "checkpoint",
    "state",
    "type",
    "inputs",
    "parallelism",
    "max_parallelism",
    "on_error",
    "batch_size",
    "buffer_timeout",
    "interval",
    "store",
    "backend",
    "dir",
    "cache_entries",
    "path",
    "address",
    "expr",
    "condition",
    "split",
    "key",
    "field",
    "format",
    "mode",
    "count",
    "rate",
    "file",
    "socket",
    "generate",
    "stdin",
    "map",
    "filter",
    "flat_map",
    "key_by",
    "sum",
    "min",
    "max",
    "reduce",
    "print",
    "blackhole",
    "sled",
    ":",
    ": ",
    "\n",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    " ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ",",
    "\"",
    "'",
    "#",
    " # note",
    "&a ",
    "*a",
    "!!str ",
    "!file ",
    "|\n",
    ">-\n",
    "? ",
    "---\n",
    "...\n",
    "\t",
    "é",
    "𝄞",
    "\u{3000}",
    "\u{a0}",
    "\u{85}",
    "\u{2028}",
    "\r",
    "\r\n",
    "\u{feff}",
    "\0",
    "\\",
    "0",
    "-1",
    "4294967296",
    "1e3",
    "0.5",
    "10s",
    "0ms",
    "99999999999999999999h",
    "true",
    "null",
    "~",
    "this",
    "this.word",
    "acc",
    " + ",
    "(",
    ")",
    "'a'",
    "\"é\"",
    ".",
    "file:///tmp/x",
    "s3://b/p?region=x",
    "hdfs://h/p",
    "127.0.0.1:8888",
    "*.txt",
    "[!",
    "<<: ",
    "{\"word\": this, \"count\": 1}",
];

/// Characters a mutation writes over another.
const CHARS: &[char] = &[
    ':', '-', ' ', '\t', '\n', '\r', '"', '\'', '{', '}', '[', ']', ',', '#', '&', '*', '!', '|',
    '>', '?', '%', '@', '`', '.', '0', 'x', 'é', '€', '𝄞', '\u{3000}', '\u{a0}', '\u{feff}', '\0',
];

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceChar(usize, char),
    InsertTab(usize),
    Insert(usize, &'static str),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![3 => prop::sample::select(CHARS), 1 => any::<char>()];
    prop_oneof![
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<usize>(), ch).prop_map(|(at, c)| Mutation::ReplaceChar(at, c)),
        1 => any::<usize>().prop_map(Mutation::InsertTab),
        2 => (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(at, s)| Mutation::Insert(at, s)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let n = lines.len().max(1);
    match *m {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % n);
            lines.concat()
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            lines.insert(i % n, lines[i % n]);
            lines.concat()
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            lines.swap(a % n, b % n);
            lines.concat()
        }
        Mutation::ReplaceChar(at, c) => {
            let at = boundary(text, at);
            let next = text[at..].chars().next().map_or(0, char::len_utf8);
            format!("{}{c}{}", &text[..at], &text[at + next..])
        }
        Mutation::InsertTab(at) => {
            let at = boundary(text, at);
            format!("{}\t{}", &text[..at], &text[at..])
        }
        Mutation::Insert(at, s) => {
            let at = boundary(text, at);
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Mutation::Truncate(at) => text[..boundary(text, at)].to_owned(),
        _ => text.to_owned(),
    }
}

/// A valid spec whose `map` transform computes `expr` and whose keyed
/// `reduce` uses `key`.
fn spec_with_expressions(expr: &str, key: &str) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    format!(
        "name: fuzz\nsources:\n  lines: {{type: file, path: specs/data/words.txt}}\ntransforms:\n  \
         shaped: {{type: map, inputs: [lines], expr: {}}}\n  \
         totals: {{type: reduce, inputs: [shaped], key: {}, expr: {}}}\n\
         sinks:\n  out: {{type: print, inputs: [totals]}}\n",
        quote(expr),
        quote(key),
        quote(expr)
    )
}

/// Pieces of CEL.
const CEL_TOKENS: &[&str] = &[
    "this",
    "acc",
    "word",
    ".",
    ".word",
    "count",
    " ",
    "+",
    "-",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "'a'",
    "\"é\"",
    "1",
    "0",
    "-9223372036854775808",
    "18446744073709551615u",
    "1.5",
    "1e999",
    "true",
    "null",
    "b'x'",
    "size(",
    "has(",
    "this.map(x, x)",
    "exists",
    "in",
    "\\",
    "\n",
    "\t",
    "é",
    "𝄞",
    "\u{3000}",
    "`",
    "$",
    "@",
    "#",
    "r'",
    "'''",
    "\"\"\"",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_text_never_panics(text in "(?s).{0,400}") {
        check(&text)?;
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..80)) {
        check(&tokens.concat())?;
    }

    #[test]
    fn mutated_examples_never_panic(
        example in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut text = CORPUS[example.index(CORPUS.len())].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        check(&text)?;
    }

    #[test]
    fn random_expressions_never_panic(
        expr in prop::collection::vec(prop::sample::select(CEL_TOKENS), 0..24),
        key in prop_oneof![
            prop::collection::vec(prop::sample::select(CEL_TOKENS), 0..6).prop_map(|t| t.concat()),
            "[a-z_.]{0,12}",
        ],
    ) {
        check(&spec_with_expressions(&expr.concat(), &key))?;
    }
}

#[test]
fn the_corpus_is_valid_before_mutation() {
    for text in CORPUS.iter() {
        check(text).unwrap_or_else(|e| panic!("{e}"));
        let loaded = dataflow::spec::load(SourceFile {
            name: "corpus.yaml".to_owned(),
            text: text.clone(),
        });
        let (plan, diagnostics) = dataflow::plan::compile(&loaded);
        assert!(plan.is_some(), "{diagnostics:?}\n{text}");
    }
    let loaded = dataflow::spec::load(SourceFile {
        name: "expressions.yaml".to_owned(),
        text: spec_with_expressions("this", "word"),
    });
    assert!(dataflow::plan::compile(&loaded).0.is_some());
}
