//! `dataflow top` and `dataflow tap`: watching a running job from a
//! terminal, through its control endpoint.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use super::print;
use crate::checkpoint::coordinator::human_bytes;
use crate::control::client::{answer, call, CallError};
use crate::control::registry::{self, FindError};
use crate::control::RunInfo;
use crate::error::{Class, Classify};

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error(transparent)]
    Find(#[from] FindError),
    #[error("job `{job}` (run {run}): {source}")]
    Call {
        job: String,
        run: String,
        source: CallError,
    },
}

impl Classify for WatchError {
    fn class(&self) -> Class {
        match self {
            WatchError::Find(_) => Class::User,
            WatchError::Call { source, .. } => source.class(),
        }
    }
}

/// How long one call may take beyond what it asks the job to wait.
const CALL_LIMIT: Duration = Duration::from_secs(10);

fn get(run: &RunInfo, path: &str, limit: Duration) -> Result<Value, WatchError> {
    call(run, Method::GET, path, None, limit)
        .and_then(|(status, body)| answer::<Value>(status, &body))
        .map_err(|source| WatchError::Call {
            job: run.job.clone(),
            run: run.run.clone(),
            source,
        })
}

/// Whether the run is gone from this machine, or going: a run that ends
/// closes its endpoint a moment before it removes its run file.
fn ended(run: &RunInfo) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        if !registry::running().iter().any(|r| r.run == run.run) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/`-free text for a path segment: every byte but letters, digits and
/// `-_.~` as `%XX`.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `dataflow tap <job> <node>`: prints records sampled from `node`'s
/// output as JSON lines, until `limit` have been printed, the job ends,
/// or Ctrl-C. A sample the job could not hand over at once is lost, never
/// waited for.
pub fn tap(job: &str, node: &str, limit: Option<u64>) -> ExitCode {
    let run = match registry::find(job) {
        Ok(run) => run,
        Err(e) => return super::failed(&WatchError::from(e)),
    };
    let mut printed = 0u64;
    loop {
        let max = limit.map_or(1000, |l| (l - printed).min(1000));
        let path = format!("/v1/tap/{}?max={max}&wait_ms=1000", path_segment(node));
        let sampled = match get(&run, &path, CALL_LIMIT) {
            Ok(sampled) => sampled,
            Err(_) if ended(&run) => {
                report!("job `{}` (run {}) ended", run.job, run.run);
                return ExitCode::SUCCESS;
            }
            Err(e) => return super::failed(&e),
        };
        let mut text = String::new();
        for record in sampled["records"].as_array().into_iter().flatten() {
            text.push_str(&record.to_string());
            text.push('\n');
            printed += 1;
        }
        if let Err(code) = print(&text) {
            return code;
        }
        if limit.is_some_and(|l| printed >= l) {
            return ExitCode::SUCCESS;
        }
    }
}

/// `dataflow top <job>`: a dashboard of the job's nodes and checkpoints,
/// redrawn every `interval` on a terminal; printed once otherwise, or
/// with `once`.
pub fn top(job: &str, interval: Duration, once: bool) -> ExitCode {
    let run = match registry::find(job) {
        Ok(run) => run,
        Err(e) => return super::failed(&WatchError::from(e)),
    };
    let plan = match get(&run, "/v1/plan", CALL_LIMIT) {
        Ok(plan) => plan,
        Err(e) => return super::failed(&e),
    };
    let terminal = std::io::stdout().is_terminal();
    let once = once || !terminal;
    loop {
        let frame = get(&run, "/v1/metrics", CALL_LIMIT).and_then(|metrics| {
            let checkpoints = get(&run, "/v1/checkpoints", CALL_LIMIT)?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            Ok(frame(&run, &plan, &metrics, &checkpoints, width(), now_ms))
        });
        let frame = match frame {
            Ok(frame) => frame,
            Err(_) if ended(&run) => {
                report!("job `{}` (run {}) ended", run.job, run.run);
                return ExitCode::SUCCESS;
            }
            Err(e) => return super::failed(&e),
        };
        // Home, the frame with each line cleared to its end, then the rest
        // of the screen cleared: no flicker, nothing left of a longer frame.
        let text = if once {
            frame
        } else {
            let mut t = String::from("\x1b[H");
            for line in frame.lines() {
                t.push_str(line);
                t.push_str("\x1b[K\n");
            }
            t.push_str("\x1b[J");
            t
        };
        if let Err(code) = print(&text) {
            return code;
        }
        if once {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(interval);
    }
}

/// The terminal's width from `COLUMNS`, else 80.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c >= 40)
        .unwrap_or(80)
}

/// A watermark in 12 characters: its UTC time of day when it is within a
/// day of `now_ms`, else its date; `end` once event time ended.
fn watermark(w: i64, now_ms: u64) -> String {
    if w == i64::MAX {
        return "end".to_owned();
    }
    let Ok(at) = u64::try_from(w) else {
        return "before 1970".to_owned();
    };
    let utc = crate::checkpoint::inspect::utc(at);
    let recent = now_ms.abs_diff(at) < 86_400_000;
    let part = if recent {
        utc.get(11..19)
    } else {
        utc.get(0..10)
    };
    part.unwrap_or(&utc).to_owned()
}

/// `3h05m09s`, `5m09s`, `9s`.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// `12.3k`, `4.56M`: a rate in at most 6 characters.
fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{}", v.round() as u64)
    }
}

fn percent(v: f64) -> String {
    format!("{}%", (v * 100.0).round() as u64)
}

/// A name cut to `width` characters, the cut marked.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One screen of `top` at `now_ms`, no line longer than `width`.
fn frame(
    run: &RunInfo,
    plan: &Value,
    metrics: &Value,
    checkpoints: &Value,
    width: usize,
    now_ms: u64,
) -> String {
    let mut lines = Vec::new();
    let up = Duration::from_millis(now_ms.saturating_sub(run.started_at_ms));
    lines.push(format!(
        "{} · run {} · attempt {} · up {}",
        run.job,
        run.run,
        metrics["attempt"],
        uptime(up)
    ));
    lines.push(String::new());
    let name_width = width.saturating_sub(64).max(8);
    lines.push(format!(
        "{:<name_width$} {:<9} {:>3} {:>7} {:>7} {:>6} {:>5} {:>7} {:>12}",
        "NODE", "TYPE", "P", "IN/S", "OUT/S", "BACKPR", "IDLE", "DROPPED", "WATERMARK"
    ));
    let nodes = plan["nodes"].as_array().cloned().unwrap_or_default();
    for node in metrics["nodes"].as_array().into_iter().flatten() {
        let instances = node["instances"].as_array().cloned().unwrap_or_default();
        let sum = |k: &str| instances.iter().filter_map(|i| i[k].as_f64()).sum::<f64>();
        let max = |k: &str| {
            instances
                .iter()
                .filter_map(|i| i[k].as_f64())
                .fold(0.0, f64::max)
        };
        let min = |k: &str| {
            instances
                .iter()
                .filter_map(|i| i[k].as_f64())
                .fold(1.0, f64::min)
        };
        let name = node["node"].as_str().unwrap_or_default();
        let planned = nodes.iter().find(|n| n["name"] == name);
        let watermark = instances
            .iter()
            .filter_map(|i| i["watermark_ms"].as_i64())
            .min()
            .map_or("-".to_owned(), |w| watermark(w, now_ms));
        lines.push(format!(
            "{:<name_width$} {:<9} {:>3} {:>7} {:>7} {:>6} {:>5} {:>7} {:>12}",
            cut(name, name_width),
            cut(planned.and_then(|p| p["type"].as_str()).unwrap_or("?"), 9),
            instances.len(),
            rate(sum("records_in_per_second")),
            rate(sum("records_out_per_second")),
            percent(max("backpressure")),
            percent(min("idle")),
            sum("dropped") as u64,
            watermark
        ));
    }
    lines.push(String::new());
    let count = |k: &str| checkpoints[k].as_u64().unwrap_or(0);
    let in_progress = checkpoints["in_progress"].as_array().map_or(0, Vec::len);
    lines.push(format!(
        "CHECKPOINTS  {} completed, {} failed, {} abandoned, {in_progress} in progress",
        count("completed"),
        count("failed"),
        count("abandoned")
    ));
    lines.push(format!(
        "{:>8} {:<11} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "ID", "STATUS", "DURATION", "SIZE", "ALIGNMENT", "SYNC", "ASYNC"
    ));
    let recent: Vec<&Value> = checkpoints["in_progress"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .chain(checkpoints["ended"].as_array().into_iter().flatten().rev())
        .take(8)
        .collect();
    for c in recent {
        let max = |k: &str| {
            c["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i[k].as_f64())
                .fold(0.0, f64::max)
        };
        lines.push(format!(
            "{:>8} {:<11} {:>10} {:>10} {:>10} {:>10} {:>10}",
            c["id"].as_u64().unwrap_or_default(),
            c["status"].as_str().unwrap_or_default().replace('_', " "),
            format!("{} ms", c["duration_ms"]),
            human_bytes(c["bytes"].as_u64().unwrap_or(0)),
            format!("{:.1} ms", max("alignment_ms")),
            format!("{:.1} ms", max("sync_ms")),
            format!("{:.1} ms", max("async_ms")),
        ));
    }
    let mut text = String::new();
    for line in lines {
        text.push_str(&cut(&line, width));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_frame_fits_80_columns_and_shows_nodes_and_checkpoints() {
        let run = RunInfo {
            job: "word-count".into(),
            run: "0123456789ab".into(),
            pid: 1,
            port: 1,
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            spec: "wc.yaml".into(),
            started_at_ms: 0,
        };
        let plan = json!({"nodes": [{"name": "a-very-long-node-name-indeed", "type": "flat_map"}, {"name": "counts", "type": "count"}]});
        let instance = |wm: Option<i64>| json!({"records_in_per_second": 1234.0, "records_out_per_second": 123456.0, "backpressure": 0.25, "idle": 0.5, "dropped": 3, "watermark_ms": wm});
        let metrics = json!({"attempt": 1, "nodes": [
            {"node": "a-very-long-node-name-indeed", "instances": [instance(None), instance(None)]},
            {"node": "counts", "instances": [instance(Some(1_796_000_000_000))]},
        ]});
        let checkpoints = json!({"completed": 7, "failed": 1, "abandoned": 0, "in_progress": [],
            "ended": [{"id": 7, "status": "completed", "duration_ms": 28, "bytes": 16_000,
                "instances": [{"alignment_ms": 1.25, "sync_ms": 0.5, "async_ms": 9.0}]}]});
        let text = frame(&run, &plan, &metrics, &checkpoints, 80, 1_796_000_100_000);
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{line:?} is wider than 80");
        }
        assert!(text.contains("\na-very-long-nod… flat_map    2    2468  246.9k    25%   50%       6            -\n"), "{text}");
        assert!(text.contains("\ncounts           count       1    1234  123.5k    25%   50%       3     00:53:20\n"), "{text}");
        assert!(
            text.contains("CHECKPOINTS  7 completed, 1 failed, 0 abandoned, 0 in progress"),
            "{text}"
        );
        assert!(
            text.contains(
                "       7 completed        28 ms   15.6 KiB     1.2 ms     0.5 ms     9.0 ms"
            ),
            "{text}"
        );
        assert_eq!(path_segment("a b/ç"), "a%20b%2F%C3%A7");
        assert_eq!(
            uptime(Duration::from_secs(3 * 3600 + 5 * 60 + 9)),
            "3h05m09s"
        );
        assert_eq!(uptime(Duration::from_secs(309)), "5m09s");
        let now = 1_796_000_000_000;
        assert_eq!(watermark(now as i64 - 1000, now), "00:53:19");
        assert_eq!(watermark(now as i64 - 3 * 86_400_000, now), "2026-11-27");
        assert_eq!(watermark(-5, now), "before 1970");
        assert_eq!(watermark(i64::MAX, now), "end");
    }
}
