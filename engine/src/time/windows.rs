//! Which windows a record falls in: tumbling, sliding and session windows
//! over event or processing time, as Flink's window assigners define them.
//!
//! A window `[start, end)` holds the records with `start <= time < end`;
//! its last time is `end - 1`, and it can close once the watermark has
//! reached that (a watermark `W` says no record at or before `W` is still
//! to come). Session windows begin as `[time, time + gap)` per record and
//! merge with every session of the key they touch.

/// A window of time: `start` inclusive, `end` exclusive, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// The latest time a record in the window can have: the watermark at
    /// which it is complete.
    pub fn max_time(&self) -> i64 {
        self.end.saturating_sub(1)
    }

    /// Whether two windows overlap or touch, so that sessions merge.
    fn touches(&self, other: &Window) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    fn cover(&self, other: &Window) -> Window {
        Window {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// How records are grouped into windows. Sizes are positive milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assigner {
    /// Fixed windows, one after another: `[k·size, (k+1)·size)`.
    Tumbling { size: i64 },
    /// Windows of `size` starting every `slide`: a record is in
    /// `ceil(size / slide)` of them.
    Sliding { size: i64, slide: i64 },
    /// A window per burst of activity, closed after `gap` without a record.
    Session { gap: i64 },
}

impl Assigner {
    /// Calls `each` with the windows `time` falls in, earliest first; for
    /// sessions, the window the record opens before any merging.
    pub fn assign(&self, time: i64, mut each: impl FnMut(Window)) {
        match *self {
            Assigner::Tumbling { size } => {
                let start = time - time.rem_euclid(size);
                each(Window {
                    start,
                    end: start.saturating_add(size),
                });
            }
            Assigner::Sliding { size, slide } => {
                let last = time - time.rem_euclid(slide);
                // The earliest window holding `time` starts at the first
                // multiple of `slide` after `time - size`.
                let after = time.saturating_sub(size).saturating_add(1);
                let mut start = after + (slide - after.rem_euclid(slide)).rem_euclid(slide);
                while start <= last {
                    each(Window {
                        start,
                        end: start.saturating_add(size),
                    });
                    start += slide;
                }
            }
            Assigner::Session { gap } => each(Window {
                start: time,
                end: time.saturating_add(gap),
            }),
        }
    }

    pub fn is_session(&self) -> bool {
        matches!(self, Assigner::Session { .. })
    }
}

/// Merges the new session `new` into a key's `sessions` (disjoint, not
/// touching): the one window covering `new` and every session it touches,
/// and those sessions, which it replaces.
pub fn merge_session(sessions: &[Window], new: Window) -> (Window, Vec<Window>) {
    let mut merged = new;
    let mut absorbed = Vec::new();
    // Covering one session can make the window touch another.
    loop {
        let before = absorbed.len();
        for s in sessions {
            if !absorbed.contains(s) && merged.touches(s) {
                merged = merged.cover(s);
                absorbed.push(*s);
            }
        }
        if absorbed.len() == before {
            break;
        }
    }
    absorbed.sort();
    (merged, absorbed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn windows(a: Assigner, time: i64) -> Vec<Window> {
        let mut out = Vec::new();
        a.assign(time, |w| out.push(w));
        out
    }

    fn w(start: i64, end: i64) -> Window {
        Window { start, end }
    }

    #[test]
    fn tumbling_windows_align_to_multiples_of_the_size_before_the_epoch_too() {
        let a = Assigner::Tumbling { size: 60_000 };
        assert_eq!(windows(a, 0), [w(0, 60_000)]);
        assert_eq!(windows(a, 59_999), [w(0, 60_000)]);
        assert_eq!(windows(a, 60_000), [w(60_000, 120_000)]);
        assert_eq!(windows(a, -1), [w(-60_000, 0)]);
        assert_eq!(w(0, 60_000).max_time(), 59_999);
    }

    #[test]
    fn sliding_windows_hold_a_time_in_size_over_slide_windows() {
        let a = Assigner::Sliding { size: 10, slide: 5 };
        assert_eq!(windows(a, 7), [w(0, 10), w(5, 15)]);
        assert_eq!(windows(a, 10), [w(5, 15), w(10, 20)]);
        let uneven = Assigner::Sliding { size: 7, slide: 3 };
        assert_eq!(windows(uneven, 6), [w(0, 7), w(3, 10), w(6, 13)]);
        assert_eq!(windows(uneven, 7), [w(3, 10), w(6, 13)]);
    }

    #[test]
    fn sessions_merge_what_they_touch() {
        let sessions = [w(0, 10), w(20, 30), w(50, 60)];
        assert_eq!(merge_session(&sessions, w(35, 45)), (w(35, 45), vec![]));
        assert_eq!(
            merge_session(&sessions, w(10, 20)),
            (w(0, 30), vec![w(0, 10), w(20, 30)]),
            "touching at both ends joins all three"
        );
        assert_eq!(
            merge_session(&sessions, w(25, 35)),
            (w(20, 35), vec![w(20, 30)])
        );
    }

    proptest! {
        /// A window holds a time exactly when the assigner puts it there.
        #[test]
        fn every_assigned_window_holds_the_time_and_no_other_does(
            time in -1_000_000i64..1_000_000,
            size in 1i64..500,
            slide in 1i64..500,
        ) {
            let tumbling = windows(Assigner::Tumbling { size }, time);
            prop_assert_eq!(tumbling.len(), 1);
            prop_assert!(tumbling[0].start <= time && time < tumbling[0].end);
            prop_assert_eq!(tumbling[0].start.rem_euclid(size), 0);

            let slide = slide.min(size);
            let sliding = windows(Assigner::Sliding { size, slide }, time);
            let expected: Vec<Window> = ((time - size - slide)..=time)
                .filter(|s| s.rem_euclid(slide) == 0 && s + size > time)
                .map(|s| w(s, s + size))
                .collect();
            prop_assert_eq!(sliding, expected);
        }

        /// Merging keeps sessions disjoint and covers every time put in.
        #[test]
        fn merged_sessions_stay_disjoint_and_cover_every_record(
            times in proptest::collection::vec(0i64..1000, 1..40),
            gap in 1i64..50,
        ) {
            let mut sessions: Vec<Window> = Vec::new();
            for &t in &times {
                let (merged, absorbed) = merge_session(&sessions, w(t, t + gap));
                sessions.retain(|s| !absorbed.contains(s));
                sessions.push(merged);
                sessions.sort();
            }
            for pair in sessions.windows(2) {
                prop_assert!(pair[0].end < pair[1].start, "{:?}", pair);
            }
            for &t in &times {
                prop_assert!(sessions.iter().any(|s| s.start <= t && t + gap <= s.end));
            }
        }
    }
}
