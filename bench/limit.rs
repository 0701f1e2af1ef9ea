//! `wordcount-limit`: the practical ceiling for one core on the benchmark's
//! job. Reads a file of comma-separated words, counts each word in a hash
//! map, and prints the figures as one JSON line. With `--dump`, prints every
//! word and its count instead (the benchmark checks the engine's counts
//! against them).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dump = args.iter().any(|a| a == "--dump");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: wordcount-limit FILE [--dump]");
        return std::process::ExitCode::from(2);
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot open `{path}`: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut counts: HashMap<Vec<u8>, u64, rustc_hash::FxBuildHasher> = HashMap::default();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut words = 0u64;
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        for word in text.split(|b| *b == b',') {
            words += 1;
            match counts.get_mut(word) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(word.to_vec(), 1);
                }
            }
        }
        line.clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if dump {
        for (word, n) in &counts {
            let _ = writeln!(out, "{}\t{n}", String::from_utf8_lossy(word));
        }
    } else {
        let _ = writeln!(
            out,
            "{{\"words\": {words}, \"distinct\": {}, \"seconds\": {secs:.4}, \"words_per_s\": {:.0}}}",
            counts.len(),
            words as f64 / secs
        );
    }
    std::process::ExitCode::SUCCESS
}
