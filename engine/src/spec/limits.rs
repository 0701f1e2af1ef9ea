//! Bounds on a spec's size and nesting, checked before any YAML parser
//! reads it.
//!
//! The YAML parsers take time quadratic in the nesting depth (libyaml
//! rescans its pending keys at every token), and their memory grows with
//! depth times size: a few hundred kilobytes of `[` keep `check` busy for
//! minutes. A spec is configuration, a few levels deep and a few kilobytes
//! long, so the limits below are far beyond any real one and keep every
//! pass after them fast, whatever the text.

use std::ops::Range;

use crate::diag::Diagnostic;

/// The largest spec file read.
pub const MAX_BYTES: usize = 1 << 20;

/// The deepest nesting of mappings and sequences, block and flow together.
pub const MAX_DEPTH: usize = 64;

/// The most nodes aliases (`*name`) may add to a spec, counting each
/// alias as the whole node it repeats. Reusing a block of settings a few
/// times adds hundreds; ten aliases of ten aliases of ... (a "billion
/// laughs") add billions, which the YAML parser would build before its
/// own limit, relative to the document's size, stops it.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// The error for a spec deeper than [`MAX_DEPTH`], or whose aliases
/// expand past [`MAX_ALIAS_NODES`]; `None` for any other.
pub fn check(text: &str) -> Option<Diagnostic> {
    if let Some(at) = too_deep(text, MAX_DEPTH) {
        return Some(
            Diagnostic::error(
                "too-deep",
                format!("the spec nests more than {MAX_DEPTH} levels deep"),
            )
            .at(
                Some(char_at(text, at)),
                format!("level {} starts here", MAX_DEPTH + 1),
            )
            .help("a spec's mappings and lists nest a few levels; this one is not a pipeline"),
        );
    }
    let at = alias_bomb(text, MAX_ALIAS_NODES)?;
    Some(
        Diagnostic::error(
            "too-many-aliases",
            format!("the spec's aliases repeat more than {MAX_ALIAS_NODES} nodes"),
        )
        .at(Some(char_at(text, at)), "the limit is passed here")
        .help("an alias repeats the whole node its anchor names; repeat a few settings, not nodes made of aliases of aliases"),
    )
}

/// Where the nodes added by aliases first pass `max`: one pass over the
/// parser's events, each anchor's node counted once with the aliases it
/// holds, so the count never builds what it counts.
fn alias_bomb(text: &str, max: u64) -> Option<usize> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};

    struct Counter {
        /// The nodes each anchor's node stands for.
        sizes: std::collections::HashMap<usize, u64>,
        /// The collections open: their anchor and their nodes so far.
        open: Vec<(usize, u64)>,
        added: u64,
        max: u64,
        passed_at: Option<usize>,
    }

    impl Counter {
        fn add(&mut self, nodes: u64) {
            if let Some(last) = self.open.last_mut() {
                last.1 = last.1.saturating_add(nodes);
            }
        }
    }

    impl MarkedEventReceiver for Counter {
        fn on_event(&mut self, ev: Event, mark: yaml_rust2::scanner::Marker) {
            if self.passed_at.is_some() {
                return;
            }
            match ev {
                Event::Alias(id) => {
                    let nodes = self.sizes.get(&id).copied().unwrap_or(1);
                    self.added = self.added.saturating_add(nodes);
                    self.add(nodes);
                    if self.added > self.max {
                        self.passed_at = Some(mark.index());
                    }
                }
                Event::Scalar(_, _, anchor, _) => {
                    if anchor > 0 {
                        self.sizes.insert(anchor, 1);
                    }
                    self.add(1);
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.open.push((anchor, 1));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, nodes)) = self.open.pop() {
                        if anchor > 0 {
                            self.sizes.insert(anchor, nodes);
                        }
                        self.add(nodes);
                    }
                }
                _ => {}
            }
        }
    }

    let mut counter = Counter {
        sizes: Default::default(),
        open: Vec::new(),
        added: 0,
        max,
        passed_at: None,
    };
    // A text that does not parse is the YAML parser's to report.
    let _ = Parser::new_from_str(text).load(&mut counter, true);
    // The parser counts characters; messages want bytes.
    let chars = counter.passed_at?;
    Some(
        text.char_indices()
            .nth(chars)
            .map_or(text.len(), |(i, _)| i),
    )
}

fn char_at(text: &str, at: usize) -> Range<usize> {
    let len = text[at..].chars().next().map_or(0, char::len_utf8);
    at..at + len
}

/// Where the nesting of `text` first exceeds `max` levels: an estimate
/// from one pass over the text that never counts fewer levels than YAML
/// has, seeing quotes, comments and block scalars as YAML does.
pub fn too_deep(text: &str, max: usize) -> Option<usize> {
    // The open block levels: the column each starts at, and whether it is
    // a sequence entry (`- `) or a mapping.
    let mut levels: Vec<(usize, bool)> = Vec::new();
    let mut flow = 0usize;
    // Inside a quoted scalar, which may span lines: its quote character.
    let mut quote: Option<u8> = None;
    // Inside a block scalar (`|`, `>`): the indentation of its parent.
    let mut literal: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let bytes = line.trim_end_matches(['\n', '\r']).as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let blank = bytes[indent..].iter().all(|b| b.is_ascii_whitespace())
            || bytes.get(indent) == Some(&b'#');
        if let Some(parent) = literal {
            if blank || indent > parent {
                continue;
            }
            literal = None;
        }
        let in_block = quote.is_none() && flow == 0;
        if in_block && blank {
            continue;
        }
        let dash = |k: usize| {
            bytes.get(k) == Some(&b'-') && matches!(bytes.get(k + 1), None | Some(b' ' | b'\t'))
        };
        if in_block && !dash(indent) {
            while levels.last().is_some_and(|&(c, _)| c >= indent) {
                levels.pop();
            }
            levels.push((indent, false));
        }
        // At the start of a node: a quote or a bracket here opens one.
        let mut at_node = true;
        // Inside an anchor or tag (`&a`, `!t`), which a node may follow.
        let mut property = false;
        // The column of the node after this line's last `- `, if it is a key.
        let mut entry: Option<usize> = None;
        let mut keyed = false;
        let mut prev = b' ';
        let mut k = if in_block { indent } else { 0 };
        let mut comment_at = bytes.len();
        while k < bytes.len() {
            let b = bytes[k];
            let next = bytes.get(k + 1).copied().unwrap_or(b' ');
            let spaced = next == b' ' || next == b'\t';
            if let Some(q) = quote {
                if b == q && q == b'\'' && next == b'\'' {
                    k += 1;
                } else if b == q {
                    quote = None;
                    at_node = false;
                } else if q == b'"' && b == b'\\' {
                    k += 1;
                }
                prev = b;
                k += 1;
                continue;
            }
            match b {
                b'#' if prev == b' ' || prev == b'\t' => {
                    comment_at = k;
                    break;
                }
                b' ' | b'\t' => {
                    if property {
                        property = false;
                        at_node = true;
                    }
                }
                b'-' if at_node && flow == 0 && dash(k) => {
                    // A sequence entry: a sibling of the one at its column.
                    while levels.last().is_some_and(|&(c, _)| c > k) {
                        levels.pop();
                    }
                    if levels.last() != Some(&(k, true)) {
                        levels.push((k, true));
                    }
                    entry = Some(k + 2);
                    if levels.len() > max {
                        return Some(start + k);
                    }
                }
                b'"' | b'\'' if at_node => quote = Some(b),
                b'[' | b'{' if at_node || flow > 0 => {
                    flow += 1;
                    at_node = true;
                    if levels.len() + usize::from(keyed) + flow > max {
                        return Some(start + k);
                    }
                }
                b']' | b'}' if flow > 0 => {
                    flow -= 1;
                    at_node = false;
                }
                b',' if flow > 0 => at_node = true,
                b'?' if at_node && spaced => {}
                b':' if spaced || flow > 0 => {
                    at_node = true;
                    keyed |= flow == 0 && entry.is_some();
                }
                b'&' | b'!' if at_node => property = true,
                _ => {
                    if !property {
                        at_node = false;
                    }
                }
            }
            prev = b;
            k += 1;
        }
        // `- key: value`: the entry is a mapping, one level more.
        if let (Some(column), true) = (entry, keyed) {
            levels.push((column, false));
        }
        if levels.len() > max {
            return Some(start + indent);
        }
        // `key: |` or `- >-`: the lines more indented that follow are text.
        if quote.is_none() && flow == 0 {
            let rest = std::str::from_utf8(&bytes[..comment_at]).unwrap_or("");
            let last = rest.split_whitespace().last().unwrap_or("");
            let mut chars = last.chars();
            if matches!(chars.next(), Some('|' | '>'))
                && chars.all(|c| matches!(c, '-' | '+' | '0'..='9'))
            {
                // Its text is indented more than the node that holds it.
                literal = Some(levels.last().map_or(indent, |&(c, _)| c));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anchors reused as users reuse them pass; aliases of aliases that
    /// would build millions of nodes are refused at the alias that passes
    /// the limit, without building them.
    #[test]
    fn aliases_are_counted_as_what_they_repeat() {
        let mut reuse =
            String::from("common: &common {type: generate, count: 10, rate: 5}\nsources:\n");
        for i in 0..200 {
            reuse.push_str(&format!("  s{i}: *common\n"));
        }
        assert_eq!(alias_bomb(&reuse, MAX_ALIAS_NODES), None);
        let mut bomb = String::from("l0: &l0 [\"lol\"]\n");
        for l in 1..=9 {
            let refs = vec![format!("*l{}", l - 1); 5].join(", ");
            bomb.push_str(&format!("l{l}: &l{l} [{refs}]\n"));
        }
        let at = alias_bomb(&bomb, MAX_ALIAS_NODES).expect("refused");
        assert!(bomb[at..].starts_with("*l"), "{}", &bomb[at..]);
        // Each alias of `a` adds its 5 nodes: two add 10, three 15.
        assert!(alias_bomb("a: &a [1, 2, 3, 4]\nb: [*a, *a]\n", 10).is_none());
        assert!(alias_bomb("a: &a [1, 2, 3, 4]\nb: [*a, *a, *a]\n", 10).is_some());
    }

    /// The real depth of a YAML value.
    fn depth(v: &serde_yaml::Value) -> usize {
        match v {
            serde_yaml::Value::Sequence(s) => 1 + s.iter().map(depth).max().unwrap_or(0),
            serde_yaml::Value::Mapping(m) => {
                1 + m
                    .iter()
                    .map(|(k, v)| depth(k).max(depth(v)))
                    .max()
                    .unwrap_or(0)
            }
            serde_yaml::Value::Tagged(t) => depth(&t.value),
            _ => 0,
        }
    }

    #[test]
    fn deep_flows_and_blocks_are_found_where_they_cross_the_limit() {
        let flow = format!("name: x\nsources: {}", "[".repeat(100));
        assert_eq!(too_deep(&flow, 64), Some("name: x\nsources: ".len() + 63));
        let block: String = (0..100)
            .map(|i| format!("{}a{i}:\n", "  ".repeat(i)))
            .collect();
        assert!(too_deep(&block, 64).is_some());
        let dashes = format!("a:\n{}x\n", "- ".repeat(100));
        assert!(too_deep(&dashes, 64).is_some());
    }

    #[test]
    fn brackets_in_quotes_comments_scalars_and_block_text_do_not_count() {
        let deep = "[".repeat(100);
        for text in [
            format!("a: '{deep}'\n"),
            format!("a: \"{deep}\\\"\"\n"),
            format!("a: 'it''s {deep}'\n"),
            format!("a: 1 # {deep}\n"),
            format!("a: x{deep}\n"),
            format!("a: |\n  {deep}\n  {deep}\nb: 1\n"),
            format!("a: >-\n    {deep}\n\n    {deep}\nb: [1]\n"),
            format!("a: \"multi\n  line {deep}\n  end\"\nb: 2\n"),
        ] {
            assert_eq!(too_deep(&text, 64), None, "{text}");
        }
        // A quote inside a plain scalar opens nothing.
        let hidden = format!("a: don't\nb: {deep}\n");
        assert!(too_deep(&hidden, 64).is_some());
    }

    #[test]
    fn the_estimate_never_counts_fewer_levels_than_yaml_has() {
        // Random nested documents in both styles, serialized by serde_yaml
        // and written in flow style by hand.
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn build(next: &mut dyn FnMut(u64) -> u64, levels: usize) -> serde_yaml::Value {
            if levels == 0 || next(5) == 0 {
                return match next(4) {
                    0 => serde_yaml::Value::from("it's [a] {b} # c: d"),
                    1 => serde_yaml::Value::from("line one\nline two [\n"),
                    2 => serde_yaml::Value::from(7),
                    _ => serde_yaml::Value::from("- x"),
                };
            }
            if next(2) == 0 {
                let items = (0..1 + next(3)).map(|_| build(next, levels - 1)).collect();
                serde_yaml::Value::Sequence(items)
            } else {
                let mut m = serde_yaml::Mapping::new();
                for i in 0..1 + next(3) {
                    m.insert(format!("k{i}").into(), build(next, levels - 1));
                }
                serde_yaml::Value::Mapping(m)
            }
        }
        for _ in 0..500 {
            let levels = 1 + next(12) as usize;
            let value = build(&mut next, levels);
            let real = depth(&value);
            let text = serde_yaml::to_string(&value).unwrap();
            let flow = serde_json::to_string(&value).unwrap();
            for text in [text, flow] {
                if real > 0 {
                    assert!(
                        too_deep(&text, real - 1).is_some(),
                        "depth {real} not seen in:\n{text}"
                    );
                }
                // And it does not count wildly more.
                assert_eq!(too_deep(&text, 2 * real + 2), None, "{text}");
            }
        }
    }
}
