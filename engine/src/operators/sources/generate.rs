//! The `generate` source: deterministic test data.
//!
//! Record `n` is a pure function of the seed and `n`, so any run can be
//! reproduced and replayed from any position. Instance `i` of `p` produces
//! the sequence numbers `n ≡ i (mod p)`.

use std::time::{Duration, Instant};

use super::Cancel;
use crate::operators::{OpError, Poll, Source};
use crate::spec::GenerateMode;
use crate::value::{intern, Name, Str, Value};

pub struct GenerateSource {
    seed: u64,
    next: u64,
    step: u64,
    count: Option<u64>,
    /// Records per second for this instance.
    rate: Option<f64>,
    started: Instant,
    produced: u64,
    lines: Option<Lines>,
    cancel: Cancel,
    seq_field: Name,
    value_field: Name,
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seed: u64,
        count: Option<u64>,
        rate: Option<u64>,
        mode: GenerateMode,
        words_per_line: u32,
        vocabulary: u32,
        instance: u32,
        parallelism: u32,
        cancel: Cancel,
    ) -> GenerateSource {
        let lines = (mode == GenerateMode::Lines).then(|| {
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
            seed,
            next: u64::from(instance),
            step: u64::from(parallelism),
            count,
            rate: rate.map(|r| r as f64 / f64::from(parallelism)),
            started: Instant::now(),
            produced: 0,
            lines,
            cancel,
            seq_field: intern("seq"),
            value_field: intern("value"),
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
            _ => Err(OpError::Fatal(format!(
                "a `generate` source cannot change parallelism on restore: the checkpoint has {} instances, the spec {}",
                positions.len(),
                self.step
            ))),
        }
    }

    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError> {
        // Records this call adds; `out` may hold earlier ones.
        let start = out.len();
        let mut budget = max;
        if let Some(rate) = self.rate {
            let due = (self.started.elapsed().as_secs_f64() * rate) as u64;
            let allowed = due.saturating_sub(self.produced) as usize;
            if allowed == 0 {
                let wait = Duration::from_secs_f64(
                    ((self.produced + 1) as f64 / rate - self.started.elapsed().as_secs_f64())
                        .max(0.0),
                );
                if self.cancel.wait(wait.min(Duration::from_millis(50))) {
                    return Ok(Poll::End);
                }
                return Ok(Poll::Idle);
            }
            budget = budget.min(allowed);
        }
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
                None => Value::Map(vec![
                    (self.seq_field.clone(), Value::Int(n as i64)),
                    (self.value_field.clone(), Value::Int((r % 1_000_000) as i64)),
                ]),
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
        super::super::Canceller::new().token()
    }

    fn all(mut s: GenerateSource) -> Vec<String> {
        let mut out = Vec::new();
        while s.poll(&mut out, 7).unwrap() != Poll::End {}
        out.iter().map(Value::to_json).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_records_split_across_instances() {
        let one = all(GenerateSource::new(
            42,
            Some(20),
            None,
            GenerateMode::Lines,
            3,
            50,
            0,
            1,
            cancel(),
        ));
        let two: Vec<String> = (0..2)
            .flat_map(|i| {
                all(GenerateSource::new(
                    42,
                    Some(20),
                    None,
                    GenerateMode::Lines,
                    3,
                    50,
                    i,
                    2,
                    cancel(),
                ))
            })
            .collect();
        assert_eq!(one.len(), 20);
        let mut sorted_one = one.clone();
        sorted_one.sort();
        let mut sorted_two = two;
        sorted_two.sort();
        assert_eq!(sorted_one, sorted_two);
        assert_eq!(
            one,
            all(GenerateSource::new(
                42,
                Some(20),
                None,
                GenerateMode::Lines,
                3,
                50,
                0,
                1,
                cancel()
            ))
        );
    }
}
