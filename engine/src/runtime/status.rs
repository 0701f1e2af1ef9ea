//! The live status line (on a terminal) and the one-line run summary.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::physical::CHANNEL_CAPACITY;
use super::Job;
use crate::operators::sinks::latency::Measured;

/// Rates are taken over this much of the recent past, so that records
/// arriving a few seconds apart show as a small rate, not as 0/s between
/// them and a burst at each.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Per node, the records it has handled so far and its recent rate, how
/// full its input channels are, and the age of the last completed
/// checkpoint; one line cut to the terminal's width, redrawn a few times a
/// second, drawn through [`crate::console`] so other output goes around it.
pub struct StatusLine {
    bar: ProgressBar,
    /// Recent (time, records per node), oldest first, spanning [`RATE_WINDOW`].
    samples: VecDeque<(Instant, Vec<u64>)>,
    /// The newest checkpoint this run completed (0: none), when checkpointing is on.
    checkpoints: Option<Arc<AtomicU64>>,
    /// The last completed checkpoint seen, and when it was first seen.
    last_checkpoint: Option<(u64, Instant)>,
}

impl StatusLine {
    pub fn new(checkpoints: Option<Arc<AtomicU64>>) -> StatusLine {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        // `wide_msg` is cut to what the terminal's width leaves: a line
        // that wrapped could no longer be erased and redrawn in place.
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        crate::console::show_status(bar.clone());
        StatusLine {
            bar,
            samples: VecDeque::new(),
            checkpoints,
            last_checkpoint: None,
        }
    }

    pub fn update(&mut self, job: &Job) {
        let now = Instant::now();
        let counts: Vec<u64> = job.nodes.iter().map(|n| n.handled()).collect();
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let mut msg = String::new();
        if let Some(completed) = &self.checkpoints {
            let id = completed.load(Ordering::Relaxed);
            if id != 0 && self.last_checkpoint.is_none_or(|(last, _)| last != id) {
                self.last_checkpoint = Some((id, now));
            }
            match self.last_checkpoint {
                Some((id, at)) => {
                    let _ = write!(msg, "chk-{id} {} ago", age(now.duration_since(at)));
                }
                None => msg.push_str("no checkpoint yet"),
            }
        }
        let (since, before) = self
            .samples
            .front()
            .map_or((Duration::ZERO, None), |(t, c)| {
                (now.duration_since(*t), Some(c))
            });
        for (i, node) in job.nodes.iter().enumerate() {
            if !msg.is_empty() {
                msg.push_str(" \u{b7} ");
            }
            let _ = write!(msg, "{} {}", node.name, human(counts[i] as f64));
            if let Some(before) = before.filter(|_| !since.is_zero()) {
                let handled = counts[i].saturating_sub(before.get(i).copied().unwrap_or(0));
                let _ = write!(msg, " {}/s", human(handled as f64 / since.as_secs_f64()));
            }
            let (len, cap) = job
                .queues
                .iter()
                .filter(|(n, _)| *n == node.index)
                .fold((0, 0), |(l, c), (_, rx)| {
                    (l + rx.len(), c + CHANNEL_CAPACITY)
                });
            if cap > 0 {
                let _ = write!(msg, " [{len}/{cap}]");
            }
        }
        self.bar.set_message(msg);
        self.bar.tick();
        self.samples.push_back((now, counts));
    }

    pub fn clear(&self) {
        crate::console::hide_status();
    }
}

/// A whole number of seconds, minutes or hours: 4s, 12m, 3h.
fn age(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// A count or rate with a k/M suffix, and decimals where it is small
/// enough that they matter: 12.3M, 45.6k, 512, 3.5, 0.38.
pub fn human(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else if n >= 100.0 || n == n.trunc() {
        format!("{n:.0}")
    } else if n >= 1.0 {
        format!("{n:.1}")
    } else {
        format!("{n:.2}")
    }
}

/// Checkpoint figures for the summary.
pub fn checkpoint_summary(stats: &crate::checkpoint::coordinator::Stats) -> String {
    let mut durations = stats.durations.clone();
    durations.sort();
    let median = median(&durations);
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

/// The middle of sorted `values`, or the mean of the two middle ones.
fn median(sorted: &[Duration]) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
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
        let late = node.late();
        if late > 0 {
            let _ = write!(s, " ({late} late)");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_rates_keep_their_decimals() {
        // 6 records in 16 s is not 0 records/s.
        assert_eq!(human(6.0 / 16.0), "0.38");
        assert_eq!(human(3.5), "3.5");
        assert_eq!(human(6.0), "6");
        assert_eq!(human(512.0), "512");
        assert_eq!(human(45_600.0), "45.6k");
        assert_eq!(human(12_300_000.0), "12.3M");
        assert_eq!(human(0.0), "0");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(median(&[ms(97), ms(119)]), ms(108));
        assert_eq!(median(&[ms(1), ms(5), ms(9)]), ms(5));
        assert_eq!(median(&[ms(1), ms(2), ms(4), ms(100)]), ms(3));
    }

    #[test]
    fn ages_are_whole_seconds_minutes_or_hours() {
        assert_eq!(age(Duration::from_millis(4_900)), "4s");
        assert_eq!(age(Duration::from_secs(600)), "10m");
        assert_eq!(age(Duration::from_secs(3 * 3600 + 5)), "3h");
    }
}
