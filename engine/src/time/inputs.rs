//! An instance's watermark from its inputs' watermarks: the lowest of
//! those that are not idle, never going back. An input that ended holds
//! nothing back; when every input is idle, the instance is idle too.
//!
//! A pure state machine, apart from the loop that reads the channels.

use super::{Watermark, END, START};

pub struct InputWatermarks {
    inputs: Vec<Input>,
    /// The watermark passed on last.
    current: i64,
    /// The watermark a checkpoint recorded, which a restore starts from.
    restored: i64,
    /// Whether `Idle` was passed on last.
    idle: bool,
}

#[derive(Clone, Copy)]
struct Input {
    at: i64,
    idle: bool,
    /// Once ended: the watermark it had sent before.
    ended_at: Option<i64>,
}

impl InputWatermarks {
    /// `restored`: the watermark a checkpoint recorded for this instance.
    pub fn new(inputs: usize, restored: Option<i64>) -> InputWatermarks {
        InputWatermarks {
            inputs: vec![
                Input {
                    at: START,
                    idle: false,
                    ended_at: None,
                };
                inputs
            ],
            current: restored.unwrap_or(START),
            restored: restored.unwrap_or(START),
            idle: false,
        }
    }

    /// The watermark passed on last.
    pub fn current(&self) -> i64 {
        self.current
    }

    /// What a checkpoint records: the watermark the records read so far
    /// make, leaving out the end of inputs that ended. A job restored to
    /// read more input goes on in event time from there, rather than
    /// finding every later record late.
    pub fn resumable(&self) -> i64 {
        // An input that ended without a watermark had no records.
        let data = self
            .inputs
            .iter()
            .filter_map(|i| match i.ended_at {
                Some(START) => None,
                Some(at) => Some(at),
                None => Some(i.at),
            })
            .min();
        data.map_or(self.restored, |d| d.max(self.restored).min(self.current))
    }

    /// Input `i` sent `watermark`. Returns what to pass on, if anything.
    pub fn update(&mut self, i: usize, watermark: Watermark) -> Option<Watermark> {
        let input = &mut self.inputs[i];
        match watermark {
            // A source's input ended (or it was drained).
            Watermark::At(END) => return self.end(i),
            Watermark::At(at) => {
                input.at = input.at.max(at);
                input.idle = false;
            }
            Watermark::Idle => input.idle = true,
        }
        self.combine()
    }

    /// Input `i` ended its event time.
    fn end(&mut self, i: usize) -> Option<Watermark> {
        let ended_at = Some(self.inputs[i].ended_at.unwrap_or(self.inputs[i].at));
        self.inputs[i] = Input {
            at: END,
            idle: false,
            ended_at,
        };
        self.combine()
    }

    fn combine(&mut self) -> Option<Watermark> {
        if self.inputs.iter().all(|i| i.ended_at.is_some()) {
            self.idle = false;
            let moved = self.current < END;
            self.current = END;
            return moved.then_some(Watermark::At(END));
        }
        // Ended inputs hold nothing back, but do not make the others'
        // idleness an end either.
        let active = self
            .inputs
            .iter()
            .filter(|i| !i.idle && i.ended_at.is_none())
            .map(|i| i.at)
            .min();
        match active {
            None if self.idle => None,
            None => {
                self.idle = true;
                Some(Watermark::Idle)
            }
            Some(at) => {
                let was_idle = std::mem::replace(&mut self.idle, false);
                if at > self.current {
                    self.current = at;
                    Some(Watermark::At(at))
                } else if was_idle {
                    // Active again: say so, at the time already reached.
                    (self.current > START).then_some(Watermark::At(self.current))
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Watermark::{At, Idle};

    #[test]
    fn the_lowest_input_holds_the_watermark_and_it_never_goes_back() {
        let mut w = InputWatermarks::new(2, None);
        assert_eq!(w.update(0, At(10)), None);
        assert_eq!(w.update(1, At(5)), Some(At(5)));
        assert_eq!(w.update(1, At(20)), Some(At(10)));
        // An input's watermark does not go back either.
        assert_eq!(w.update(0, At(3)), None);
        assert_eq!(w.update(0, At(15)), Some(At(15)));
        assert_eq!(w.current(), 15);
    }

    #[test]
    fn an_ended_input_holds_nothing_back() {
        let mut w = InputWatermarks::new(2, None);
        assert_eq!(w.update(0, At(10)), None);
        assert_eq!(w.end(1), Some(At(10)));
        assert_eq!(w.end(0), Some(At(END)));
        assert_eq!(w.current(), END);
        // A checkpoint after the end keeps the time the records made.
        assert_eq!(w.resumable(), 10);
    }

    /// An ended input counted as active at the end of time: with the
    /// others idle, the instance's watermark went to the end, and every
    /// later record of the idle ones was late.
    #[test]
    fn an_ended_input_with_the_others_idle_is_idle_not_the_end() {
        let mut w = InputWatermarks::new(2, None);
        w.update(0, At(10));
        w.update(1, At(20));
        assert_eq!(w.end(1), None);
        assert_eq!(w.update(0, Idle), Some(Idle));
        assert_eq!(w.update(0, At(15)), Some(At(15)));
        assert_eq!(w.end(0), Some(At(END)));
    }

    #[test]
    fn idle_inputs_are_left_out_until_they_send_a_time() {
        let mut w = InputWatermarks::new(2, None);
        w.update(0, At(10));
        assert_eq!(w.update(1, Idle), Some(At(10)));
        assert_eq!(w.update(0, At(30)), Some(At(30)));
        // Back, behind: it holds the watermark from now on, which stays.
        assert_eq!(w.update(1, At(20)), None);
        assert_eq!(w.update(0, At(40)), None);
        assert_eq!(w.update(1, At(35)), Some(At(35)));
        // All idle: the instance is idle, once; active again at its time.
        assert_eq!(w.update(0, Idle), None);
        assert_eq!(w.update(1, Idle), Some(Idle));
        assert_eq!(w.update(1, Idle), None);
        assert_eq!(w.update(1, At(36)), Some(At(36)));
    }

    #[test]
    fn a_restored_watermark_is_where_it_starts() {
        let mut w = InputWatermarks::new(1, Some(100));
        assert_eq!(w.resumable(), 100);
        assert_eq!(w.update(0, At(50)), None);
        assert_eq!(w.update(0, At(120)), Some(At(120)));
    }
}
