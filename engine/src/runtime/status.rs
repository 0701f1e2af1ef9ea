//! The live status line (on a terminal) and the one-line run summary.

use std::fmt::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::physical::CHANNEL_CAPACITY;
use super::Job;
use crate::operators::sinks::latency::Measured;

/// Records per second per node and how full each node's input channels
/// are, redrawn a few times a second.
pub struct StatusLine {
    bar: ProgressBar,
    last: Instant,
    last_counts: Vec<u64>,
}

impl StatusLine {
    pub fn new() -> StatusLine {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        StatusLine {
            bar,
            last: Instant::now(),
            last_counts: Vec::new(),
        }
    }

    pub fn update(&mut self, job: &Job) {
        let secs = self.last.elapsed().as_secs_f64().max(1e-3);
        let counts: Vec<u64> = job.nodes.iter().map(|n| n.totals().1).collect();
        let mut msg = String::new();
        for (i, node) in job.nodes.iter().enumerate() {
            let before = self.last_counts.get(i).copied().unwrap_or(0);
            let rate = (counts[i].saturating_sub(before)) as f64 / secs;
            let (len, cap) = job
                .queues
                .iter()
                .filter(|(n, _)| *n == node.index)
                .fold((0, 0), |(l, c), (_, rx)| {
                    (l + rx.len(), c + CHANNEL_CAPACITY)
                });
            let _ = write!(msg, "{} {}/s", node.name, human(rate));
            if cap > 0 {
                let _ = write!(msg, " [{len}/{cap}]");
            }
            msg.push_str("  ");
        }
        self.bar.set_message(msg);
        self.bar.tick();
        self.last = Instant::now();
        self.last_counts = counts;
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// A count with a k/M suffix: 12.3k.
pub fn human(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Checkpoint figures for the summary.
pub fn checkpoint_summary(stats: &crate::checkpoint::coordinator::Stats) -> String {
    let mut durations = stats.durations.clone();
    durations.sort();
    let median = durations
        .get(durations.len() / 2)
        .copied()
        .unwrap_or_default();
    let max = durations.last().copied().unwrap_or_default();
    format!(
        "checkpoints: {} completed{}, {} failed, duration median {} ms max {} ms, {} written, longest sync part {:.2} ms, longest alignment {:.1} ms",
        stats.completed,
        stats.last.map(|id| format!(" (last chk-{id})")).unwrap_or_default(),
        stats.failed,
        median.as_millis(),
        max.as_millis(),
        crate::checkpoint::coordinator::human_bytes(stats.bytes_written),
        stats.max_sync.as_secs_f64() * 1e3,
        stats.max_alignment.as_secs_f64() * 1e3,
    )
}

/// The one-line summary printed when a job ends.
pub fn summary(job: &Job, outcome: &str, elapsed: Duration) -> String {
    let mut parts = Vec::new();
    let mut read = 0;
    for node in &job.nodes {
        let (r_in, r_out, dropped) = node.totals();
        let mut s = if node.is_source {
            read += r_out;
            format!("{} {} out", node.name, r_out)
        } else if node.is_sink {
            format!("{} {} in", node.name, r_in)
        } else {
            format!("{} {} in/{} out", node.name, r_in, r_out)
        };
        if dropped > 0 {
            let _ = write!(s, " ({dropped} dropped)");
        }
        parts.push(s);
    }
    let secs = elapsed.as_secs_f64();
    let mut line = format!(
        "{} {outcome} in {:.2}s: {} | {} records/s",
        job.name,
        secs,
        parts.join(", "),
        human(read as f64 / secs.max(1e-6))
    );
    for node in &job.nodes {
        if let Some(latency) = latency(node) {
            let _ = write!(line, " | latency at {}: {}", node.name, latency.describe());
        }
    }
    line
}

/// The latencies a sink measured, over all its instances.
fn latency(node: &super::NodeStats) -> Option<Measured> {
    node.instances
        .iter()
        .filter_map(|m| m.latency.measured())
        .reduce(|mut all, one| {
            all.merge(&one);
            all
        })
}
