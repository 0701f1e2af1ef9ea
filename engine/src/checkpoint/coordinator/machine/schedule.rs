//! When the next checkpoint may start, from the settings and the times
//! the last ones were triggered and ended.
//!
//! Apart from the rest of the machine because it knows nothing of
//! checkpoint ids, instances or acknowledgements: only the clock.

use std::time::{Duration, Instant};

use crate::plan::CheckpointSettings;

/// When the next checkpoint may start: every `interval`, no sooner than
/// `min_pause` after the previous one ended, at most `max_concurrent` at once.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    min_pause: Duration,
    max_concurrent: usize,
    last_trigger: Instant,
    last_end: Option<Instant>,
}

impl Schedule {
    pub fn new(settings: &CheckpointSettings, start: Instant) -> Schedule {
        Schedule {
            interval: settings.interval,
            min_pause: settings.min_pause,
            max_concurrent: settings.max_concurrent.max(1) as usize,
            last_trigger: start,
            last_end: None,
        }
    }

    pub fn due(&self, now: Instant, in_flight: usize) -> bool {
        in_flight < self.max_concurrent
            && now >= self.last_trigger + self.interval
            && self.rested(now)
    }

    /// Whether `min_pause` has passed since the last checkpoint ended.
    pub fn rested(&self, now: Instant) -> bool {
        self.last_end.is_none_or(|end| now >= end + self.min_pause)
    }

    pub fn triggered(&mut self, now: Instant) {
        self.last_trigger = now;
    }

    /// A checkpoint completed or was aborted at `now`.
    pub fn ended(&mut self, now: Instant) {
        self.last_end = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::checkpoint_settings as settings;

    #[test]
    fn the_schedule_keeps_interval_min_pause_and_max_concurrent() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(&settings("{interval: 100ms, min_pause: 50ms}"), t0);
        assert!(!s.due(t0 + ms(99), 0));
        assert!(s.due(t0 + ms(100), 0));
        s.triggered(t0 + ms(100));
        assert!(!s.due(t0 + ms(250), 1), "one at a time");
        s.ended(t0 + ms(190));
        assert!(s.due(t0 + ms(240), 0));
        // A long checkpoint ending late pushes the next one back by min_pause.
        s.triggered(t0 + ms(240));
        s.ended(t0 + ms(400));
        assert!(!s.due(t0 + ms(449), 0));
        assert!(s.due(t0 + ms(450), 0));
        let s = Schedule::new(&settings("{interval: 10ms, max_concurrent: 2}"), t0);
        assert!(s.due(t0 + ms(10), 1));
        assert!(!s.due(t0 + ms(10), 2));
    }
}
