//! The `generate` source: deterministic test data.
//!
//! Record `n` is a pure function of the seed and `n`, so any run can be
//! reproduced and replayed from any position. Instance `i` of `p` produces
//! the sequence numbers `n ≡ i (mod p)`.
//!
//! With `time_field`, each record also carries its source time, in
//! microseconds since the Unix epoch: with a `rate`, the time it was due
//! (so time the source was held back by a slow pipeline counts as latency,
//! rather than being hidden), otherwise the time it was made. The rate's
//! clock starts at the first poll, not when the job is built.

use std::time::{Duration, Instant};

use super::PositionError;
use crate::nodes::sources::generate::{Generate, GenerateMode};
use crate::nodes::Instance;
use crate::operators::{epoch_micros, OpError, Poll, Source};
use crate::runtime::cancel::Cancel;
use crate::value::{intern, Name, Str, Value};

pub struct GenerateSource {
    seed: u64,
    next: u64,
    step: u64,
    count: Option<u64>,
    /// Records per second for this instance.
    rate: Option<f64>,
    /// When the first poll came: the rate's clock, and the same instant
    /// in µs since the Unix epoch.
    started: Option<(Instant, i64)>,
    produced: u64,
    lines: Option<Lines>,
    cancel: Cancel,
    seq_field: Name,
    value_field: Name,
    time_field: Option<Name>,
}

/// Word lines drawn from a Zipf distribution (exponent 1) over `w1`..`wN`.
struct Lines {
    words_per_line: u32,
    /// Cumulative probabilities of the ranks.
    cdf: Vec<f64>,
    words: Vec<String>,
    line: String,
}

impl GenerateSource {
    pub fn new(spec: &Generate, at: Instance, cancel: Cancel) -> GenerateSource {
        let (vocabulary, words_per_line) = (spec.vocabulary, spec.words_per_line);
        let Instance {
            index: instance,
            parallelism,
        } = at;
        let lines = (spec.mode == GenerateMode::Lines).then(|| {
            let weights: Vec<f64> = (1..=vocabulary).map(|r| 1.0 / f64::from(r)).collect();
            let total: f64 = weights.iter().sum();
            let mut acc = 0.0;
            let cdf = weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect();
            Lines {
                words_per_line,
                cdf,
                words: (1..=vocabulary).map(|r| format!("w{r}")).collect(),
                line: String::new(),
            }
        });
        GenerateSource {
            seed: spec.seed,
            next: u64::from(instance),
            step: u64::from(parallelism),
            count: spec.count,
            rate: spec.rate.map(|r| r as f64 / f64::from(parallelism)),
            started: None,
            produced: 0,
            lines,
            cancel,
            seq_field: intern("seq"),
            value_field: intern("value"),
            time_field: spec.time_field.as_deref().map(intern),
        }
    }
}

/// SplitMix64: a fast, well-mixed pure function of its input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Source for GenerateSource {
    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "next": self.next, "step": self.step, "instance": self.next % self.step.max(1) })
    }

    /// Resumes at the recorded sequence number of this instance. Sequence
    /// numbers are dealt round robin over the instances, so the parallelism
    /// must be the one the checkpoint was taken at.
    fn restore(&mut self, positions: &[serde_json::Value]) -> Result<(), OpError> {
        let instance = self.next % self.step.max(1);
        let mine = positions.iter().find(|p| {
            p["instance"].as_u64() == Some(instance) && p["step"].as_u64() == Some(self.step)
        });
        match mine.and_then(|p| p["next"].as_u64()) {
            Some(next) if positions.len() as u64 == self.step => {
                self.next = next;
                Ok(())
            }
            _ => Err(PositionError::Rescaled {
                found: positions.len(),
                now: self.step,
            }
            .into()),
        }
    }

    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError> {
        // Records this call adds; `out` may hold earlier ones.
        let start = out.len();
        let (started, started_us) = *self
            .started
            .get_or_insert_with(|| (Instant::now(), epoch_micros()));
        let mut budget = max;
        if let Some(rate) = self.rate {
            let due = (started.elapsed().as_secs_f64() * rate) as u64;
            let allowed = due.saturating_sub(self.produced) as usize;
            if allowed == 0 {
                let wait = Duration::from_secs_f64(
                    ((self.produced + 1) as f64 / rate - started.elapsed().as_secs_f64()).max(0.0),
                );
                if self.cancel.wait(wait.min(Duration::from_millis(50))) {
                    return Ok(Poll::End);
                }
                return Ok(Poll::Idle);
            }
            budget = budget.min(allowed);
        }
        // Without a rate, the records of one poll are made at one time.
        let mut now = None;
        for _ in 0..budget {
            let n = self.next;
            if self.count.is_some_and(|c| n >= c) {
                return Ok(if out.len() == start {
                    Poll::End
                } else {
                    Poll::Ready
                });
            }
            let r = mix(self.seed ^ mix(n));
            let record = match &mut self.lines {
                None => {
                    let mut fields = vec![
                        (self.seq_field.clone(), Value::Int(n as i64)),
                        (self.value_field.clone(), Value::Int((r % 1_000_000) as i64)),
                    ];
                    if let Some(field) = &self.time_field {
                        let time = match self.rate {
                            // Record k (from 0) is due when k + 1 are.
                            Some(rate) => {
                                started_us + ((self.produced + 1) as f64 * 1e6 / rate) as i64
                            }
                            None => *now.get_or_insert_with(epoch_micros),
                        };
                        fields.push((field.clone(), Value::Int(time)));
                    }
                    Value::Map(fields)
                }
                Some(lines) => {
                    lines.line.clear();
                    let mut state = r;
                    for w in 0..lines.words_per_line {
                        state = mix(state);
                        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                        let rank = lines
                            .cdf
                            .partition_point(|&c| c < u)
                            .min(lines.words.len() - 1);
                        if w > 0 {
                            lines.line.push(',');
                        }
                        lines.line.push_str(&lines.words[rank]);
                    }
                    Value::Str(Str::from(lines.line.as_str()))
                }
            };
            out.push(record);
            self.next += self.step;
            self.produced += 1;
        }
        Ok(Poll::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel() -> Cancel {
        crate::runtime::cancel::Canceller::new().token()
    }

    fn lines(seed: u64, count: u64) -> Generate {
        Generate {
            seed,
            count: Some(count),
            rate: None,
            mode: GenerateMode::Lines,
            words_per_line: 3,
            vocabulary: 50,
            time_field: None,
        }
    }

    fn at(index: u32, parallelism: u32) -> Instance {
        Instance { index, parallelism }
    }

    fn all(mut s: GenerateSource) -> Vec<String> {
        let mut out = Vec::new();
        while s.poll(&mut out, 7).unwrap() != Poll::End {}
        out.iter().map(Value::to_json).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_records_split_across_instances() {
        let one = all(GenerateSource::new(&lines(42, 20), at(0, 1), cancel()));
        let two: Vec<String> = (0..2)
            .flat_map(|i| all(GenerateSource::new(&lines(42, 20), at(i, 2), cancel())))
            .collect();
        assert_eq!(one.len(), 20);
        let mut sorted_one = one.clone();
        sorted_one.sort();
        let mut sorted_two = two;
        sorted_two.sort();
        assert_eq!(sorted_one, sorted_two);
        assert_eq!(
            one,
            all(GenerateSource::new(&lines(42, 20), at(0, 1), cancel()))
        );
    }

    #[test]
    fn records_carry_their_source_time() {
        let rate = 100_000;
        // Kept alive: a dropped canceller cancels its tokens.
        let canceller = crate::runtime::cancel::Canceller::new();
        let before = epoch_micros();
        let spec = Generate {
            seed: 1,
            count: Some(50),
            rate: Some(rate),
            mode: GenerateMode::Records,
            words_per_line: 8,
            vocabulary: 10,
            time_field: Some("ts".into()),
        };
        let mut s = GenerateSource::new(&spec, at(0, 1), canceller.token());
        let mut out = Vec::new();
        while s.poll(&mut out, 1024).unwrap() != Poll::End {}
        let times: Vec<i64> = out
            .iter()
            .map(|r| match r.get("ts") {
                Some(Value::Int(t)) => *t,
                other => panic!("no time in {other:?}"),
            })
            .collect();
        assert_eq!(times.len(), 50);
        assert!(times[0] >= before, "{} < {before}", times[0]);
        // Due times, 1e6 / rate = 10 µs apart.
        for pair in times.windows(2) {
            assert!((9..=11).contains(&(pair[1] - pair[0])), "{pair:?}");
        }
        assert!(times[49] <= epoch_micros());
    }
}
