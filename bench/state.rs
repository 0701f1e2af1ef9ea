//! `state-bench`: the keyed state path alone, without the rest of a job.
//! Reads a file of comma-separated words and, for each, does what a keyed
//! `sum` does to its state (encode the key, find its key group, add 1 to
//! the value in place), timing each backend. Prints one JSON line per
//! configuration, the best of `--runs`.
//!
//! ```text
//! state-bench FILE [--runs N] [--changes-every N] [--cache N]
//! ```
//! `--changes-every N` takes the changes (a snapshot's synchronous part)
//! every N words, with change tracking on; `--cache N` is the sled cache.

use std::process::ExitCode;
use std::time::Instant;

use dataflow::state::memory::MemoryState;
use dataflow::state::sled::{SledStore, DEFAULT_CACHE_ENTRIES};
use dataflow::state::{encode_key, key_group, KeyedState};
use dataflow::value::{Str, Value};

struct Options {
    path: String,
    runs: u32,
    changes_every: Option<usize>,
    cache: u32,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        path: String::new(),
        runs: 3,
        changes_every: None,
        cache: DEFAULT_CACHE_ENTRIES,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--runs" => options.runs = number("--runs")?.max(1) as u32,
            "--changes-every" => {
                options.changes_every = Some(number("--changes-every")?.max(1) as usize)
            }
            "--cache" => options.cache = number("--cache")? as u32,
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => options.path = arg,
        }
    }
    if options.path.is_empty() {
        return Err("usage: state-bench FILE [--runs N] [--changes-every N] [--cache N]".into());
    }
    Ok(options)
}

/// Runs the words (byte ranges of `text`) through `state`; returns seconds
/// and changes taken.
fn run(
    text: &Str,
    words: &[std::ops::Range<usize>],
    state: &mut dyn KeyedState,
    changes_every: Option<usize>,
) -> (f64, usize) {
    let mut key = Vec::new();
    let mut changes = 0;
    let started = Instant::now();
    for (i, word) in words.iter().enumerate() {
        // A word as the engine's `split` makes it: a slice of its line.
        let word = Value::Str(text.slice(word.clone()));
        key.clear();
        encode_key(&word, &mut key);
        let value = state.value_mut(key_group(&key, 128), &key).expect("state");
        match value {
            Some(Value::Int(n)) => *n += 1,
            _ => *value = Some(Value::Int(1)),
        }
        if changes_every.is_some_and(|every| (i + 1) % every == 0) {
            changes += state.take_changes().expect("state").len();
        }
    }
    (started.elapsed().as_secs_f64(), changes)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&options.path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", options.path);
            return ExitCode::from(2);
        }
    };
    let mut words = Vec::new();
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        if byte == b',' || byte == b'\n' {
            words.push(start..i);
            start = i + 1;
        }
    }
    let text = Str::from(text);
    let track = options.changes_every.is_some();
    let dir = std::env::temp_dir().join(format!("state-bench-{}", std::process::id()));
    for backend in ["memory", "sled"] {
        let mut best = f64::MAX;
        let mut changes = 0;
        for _ in 0..options.runs {
            let (secs, n) = if backend == "memory" {
                run(
                    &text,
                    &words,
                    &mut MemoryState::new(track),
                    options.changes_every,
                )
            } else {
                let store = SledStore::open(&dir, options.cache).expect("sled");
                let mut state = store.state("bench", track).expect("sled");
                run(&text, &words, &mut state, options.changes_every)
            };
            best = best.min(secs);
            changes = n;
        }
        println!(
            "{{\"backend\": \"{backend}\", \"words\": {}, \"seconds\": {best:.4}, \"words_per_s\": {:.0}, \"changes\": {changes}}}",
            words.len(),
            words.len() as f64 / best
        );
    }
    ExitCode::SUCCESS
}
