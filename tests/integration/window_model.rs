//! An independent reference for windows: a generator of out-of-order
//! event streams with late records, and a model of the results a window
//! node must give on them, written apart from the engine (it shares no
//! code with it) from the documented semantics in docs/time.md.
//!
//! Which records are late depends on the watermark when they arrive, and
//! that depends on how the source batched its reads. The generator only
//! writes records whose fate does not: with `max_out_of_orderness` `ooo`
//! and batches of at most `batch` records, the watermark in force when
//! record `i` arrives lies between
//! `lo = max(ts[..i - batch]) - ooo - 1` and `hi = max(ts[..i]) - ooo - 1`.
//! An on-time record is after `hi + 1`; a late one is so far behind `lo`
//! that every window it falls in has passed its end and lateness; a record
//! "late but allowed" falls in a window that has surely closed and surely
//! not been cleaned up.

use std::collections::BTreeMap;

use crate::recovery::Prng;

/// The kind of windows, with sizes in milliseconds.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Tumbling(i64),
    Sliding(i64, i64),
    Session(i64),
}

impl Kind {
    pub fn yaml(&self) -> String {
        match self {
            Kind::Tumbling(size) => format!("tumbling: {size}ms"),
            Kind::Sliding(size, slide) => format!("sliding: {size}ms\n    slide: {slide}ms"),
            Kind::Session(gap) => format!("session: {gap}ms"),
        }
    }

    /// The longest a window lasts (a session's first record's window).
    fn span(&self) -> i64 {
        match *self {
            Kind::Tumbling(size) | Kind::Sliding(size, _) => size,
            Kind::Session(gap) => gap,
        }
    }

    /// The fixed windows `[start, end)` that hold `ts`.
    fn windows(&self, ts: i64) -> Vec<(i64, i64)> {
        match *self {
            Kind::Tumbling(size) => {
                let start = ts.div_euclid(size) * size;
                vec![(start, start + size)]
            }
            Kind::Sliding(size, slide) => {
                let mut out = Vec::new();
                let mut start = ts.div_euclid(slide) * slide;
                while start + size > ts {
                    out.push((start, start + size));
                    start -= slide;
                }
                out.reverse();
                out
            }
            Kind::Session(_) => unreachable!("sessions are merged, not assigned"),
        }
    }
}

/// One generated record.
#[derive(Clone, Debug)]
pub struct Event {
    pub ts: i64,
    pub key: String,
    pub n: i64,
    pub s: String,
    pub fate: Fate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    OnTime,
    /// Behind the watermark, within the allowed lateness: a late firing.
    Allowed,
    /// Past every window's lateness: counted and left out.
    Late,
}

/// The settings a stream is generated for.
pub struct Setup {
    pub kind: Kind,
    pub ooo: i64,
    pub batch: usize,
    pub lateness: i64,
    pub keys: u64,
}

/// `n` events starting at `start`, about `late_percent` of them late and
/// as many late-but-allowed where the windows allow it.
pub fn generate(setup: &Setup, n: usize, start: i64, late_percent: u64, seed: u64) -> Vec<Event> {
    let mut rng = Prng(seed);
    let mut events: Vec<Event> = Vec::with_capacity(n);
    // The newest time among the first i records, for each i.
    let mut newest_before: Vec<i64> = vec![i64::MIN];
    let mut newest = i64::MIN;
    for i in 0..n {
        let hi = newest.checked_sub(setup.ooo + 1);
        let lo = (i > setup.batch).then(|| newest_before[i - setup.batch] - setup.ooo - 1);
        let roll = rng.range(0, 99);
        let mut pick = None;
        if let (Some(lo), true) = (lo, roll < late_percent) {
            let ts = lo - setup.lateness - setup.kind.span() - rng.range(0, 5_000) as i64;
            pick = Some((ts, Fate::Late));
        } else if let (Some(lo), Some(hi), true, Kind::Tumbling(size)) =
            (lo, hi, roll < 2 * late_percent, setup.kind)
        {
            // The last window surely closed; allowed if surely not cleaned up.
            let mut wstart = (lo + 1 - size).div_euclid(size) * size;
            if wstart + size - 1 > lo {
                wstart -= size;
            }
            if setup.lateness > 0 && wstart + size - 1 + setup.lateness > hi {
                pick = Some((wstart + rng.range(0, size as u64 - 1) as i64, Fate::Allowed));
            }
        }
        let (ts, fate) = pick.unwrap_or_else(|| {
            let ts = if newest == i64::MIN {
                start
            } else {
                // After hi + 1, at most `ooo - 1` behind the newest.
                newest - setup.ooo + 1 + rng.range(0, setup.ooo as u64 + 400) as i64
            };
            (ts, Fate::OnTime)
        });
        newest = newest.max(ts);
        newest_before.push(newest);
        let key = format!("k{}", rng.range(0, setup.keys - 1));
        events.push(Event {
            ts,
            n: rng.range(0, 1_000) as i64 - 100,
            s: format!("s{}", rng.range(0, 9)),
            key,
            fate,
        });
    }
    events
}

/// The JSON lines of a stream.
pub fn jsonl(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{{\"ts\": {}, \"k\": \"{}\", \"n\": {}, \"s\": \"{}\"}}\n",
                e.ts, e.key, e.n, e.s
            )
        })
        .collect()
}

/// What a window must put out: its final result, and how many times it
/// is emitted (once when it closes, once more per late-but-allowed record).
#[derive(Debug, PartialEq)]
pub struct Expected {
    pub result: serde_json::Value,
    pub emissions: usize,
}

/// The aggregates the tests ask for, as a spec writes them.
pub const AGGREGATES: &str = "{events: count, total: sum(n), low: min(n), high: max(n), \
    mean: avg(n), first: first(s), last: last(s), all: collect(n)}";

/// The results by (key, window start, window end), and the late count.
pub fn expected(
    setup: &Setup,
    events: &[Event],
) -> (BTreeMap<(String, i64, i64), Expected>, usize) {
    let late = events.iter().filter(|e| e.fate == Fate::Late).count();
    let taken: Vec<&Event> = events.iter().filter(|e| e.fate != Fate::Late).collect();
    // Each window's records in arrival order, and its emissions.
    let mut windows: BTreeMap<(String, i64, i64), (Vec<&Event>, usize)> = BTreeMap::new();
    match setup.kind {
        Kind::Session(gap) => {
            let mut by_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
            for e in &taken {
                by_key.entry(&e.key).or_default().push(e);
            }
            for (key, records) in by_key {
                // Sessions are the touching runs of [ts, ts + gap).
                let mut spans: Vec<(i64, i64)> =
                    records.iter().map(|e| (e.ts, e.ts + gap)).collect();
                spans.sort();
                let mut merged: Vec<(i64, i64)> = Vec::new();
                for (s, e) in spans {
                    match merged.last_mut() {
                        Some(last) if s <= last.1 => last.1 = last.1.max(e),
                        _ => merged.push((s, e)),
                    }
                }
                for (s, e) in merged {
                    let inside: Vec<&Event> = records
                        .iter()
                        .copied()
                        .filter(|r| r.ts >= s && r.ts < e)
                        .collect();
                    windows.insert((key.to_owned(), s, e), (inside, 1));
                }
            }
        }
        kind => {
            for e in &taken {
                for (s, end) in kind.windows(e.ts) {
                    let w = windows
                        .entry((e.key.clone(), s, end))
                        .or_insert((Vec::new(), 0));
                    w.0.push(e);
                    // On time: one emission when the window closes, for all
                    // of them; late but allowed: one each, at once.
                    let closes = e.fate == Fate::OnTime
                        && !w.0[..w.0.len() - 1].iter().any(|r| r.fate == Fate::OnTime);
                    if closes || e.fate == Fate::Allowed {
                        w.1 += 1;
                    }
                }
            }
        }
    }
    let results = windows
        .into_iter()
        .map(|((key, s, e), (records, emissions))| {
            let result = result(&key, s, e, &records);
            ((key, s, e), Expected { result, emissions })
        })
        .collect();
    (results, late)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A window's result from its records, in arrival order.
fn result(key: &str, start: i64, end: i64, records: &[&Event]) -> serde_json::Value {
    let total: i64 = records.iter().map(|r| r.n).sum();
    // Earliest time first; among equal times, arrival order.
    let mut by_time: Vec<&&Event> = records.iter().collect();
    by_time.sort_by_key(|r| r.ts);
    let first = by_time.first().unwrap();
    let last_time = by_time.last().unwrap().ts;
    let last = records.iter().rev().find(|r| r.ts == last_time).unwrap();
    serde_json::json!({
        "k": key,
        "window_start": rfc3339(start),
        "window_end": rfc3339(end),
        "events": records.len(),
        "total": total,
        "low": records.iter().map(|r| r.n).min(),
        "high": records.iter().map(|r| r.n).max(),
        "mean": total as f64 / records.len() as f64,
        "first": first.s,
        "last": last.s,
        "all": by_time.iter().map(|r| r.n).collect::<Vec<_>>(),
    })
}

/// The engine's output by window: the final result of each window (the
/// one of most records: a late firing adds one, and output in several
/// files has no order), and how many it emitted.
pub fn by_window(
    records: &[serde_json::Value],
) -> BTreeMap<(String, String, String), (serde_json::Value, usize)> {
    let mut out: BTreeMap<(String, String, String), (serde_json::Value, usize)> = BTreeMap::new();
    for r in records {
        let field = |f: &str| r[f].as_str().unwrap_or_default().to_owned();
        let w = out
            .entry((field("k"), field("window_start"), field("window_end")))
            .or_insert((serde_json::Value::Null, 0));
        if w.0["events"].as_u64() <= r["events"].as_u64() {
            w.0 = r.clone();
        }
        w.1 += 1;
    }
    out
}

/// Compares the engine's output with the model's; a message for each difference.
pub fn compare(
    expected: &BTreeMap<(String, i64, i64), Expected>,
    records: &[serde_json::Value],
) -> Vec<String> {
    let got = by_window(records);
    let mut problems = Vec::new();
    for ((key, s, e), want) in expected {
        let at = (key.clone(), rfc3339(*s), rfc3339(*e));
        match got.get(&at) {
            None => problems.push(format!("missing window {at:?}: {}", want.result)),
            Some((result, emissions)) => {
                if *result != want.result {
                    problems.push(format!("window {at:?}: got {result}, want {}", want.result));
                }
                if *emissions != want.emissions {
                    problems.push(format!(
                        "window {at:?}: emitted {emissions} times, want {}",
                        want.emissions
                    ));
                }
            }
        }
    }
    let known: std::collections::BTreeSet<_> = expected
        .keys()
        .map(|(k, s, e)| (k.clone(), rfc3339(*s), rfc3339(*e)))
        .collect();
    for (at, (result, _)) in &got {
        if !known.contains(at) {
            problems.push(format!("unexpected window {at:?}: {result}"));
        }
    }
    problems
}
