//! Barrier alignment: when an instance with several inputs may snapshot.
//!
//! In `exactly_once` mode an input that delivered barrier N is blocked
//! (the instance stops reading it) until barrier N has come on every input,
//! so the snapshot reflects exactly the records before the barrier on each.
//! In `at_least_once` mode no input is blocked: records after the barrier
//! on a fast input reach the state before the snapshot, and are counted
//! again after a restore. An input that has ended counts as aligned.
//!
//! A pure state machine; the instance loop asks it which inputs to read.

use std::time::{Duration, Instant};

use crate::plan::settings::CheckpointMode;

pub struct Aligner {
    mode: CheckpointMode,
    ended: Vec<bool>,
    /// Checkpoints whose barrier came on some inputs, oldest first. Only
    /// `at_least_once` mode has several: an input is not blocked after
    /// barrier N, so with `max_concurrent` above 1 it may deliver N+1
    /// before the last input delivers N.
    pending: Vec<Pending>,
    /// The newest checkpoint snapshotted here.
    last: u64,
}

struct Pending {
    id: u64,
    arrived: Vec<bool>,
    started: Instant,
}

/// What to do after a barrier or an end of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep reading (the inputs [`Aligner::is_blocked`] says).
    Continue,
    /// Barrier `id` has come on every input: snapshot and forward it, then
    /// ask [`Aligner::ready`] for the next. `alignment` is how long the
    /// first input waited for the last.
    Snapshot { id: u64, alignment: Duration },
}

impl Aligner {
    pub fn new(inputs: usize, mode: CheckpointMode) -> Aligner {
        Aligner {
            mode,
            ended: vec![false; inputs],
            pending: Vec::new(),
            last: 0,
        }
    }

    /// Barrier `id` arrived on `input`.
    pub fn on_barrier(&mut self, input: usize, id: u64) -> Step {
        if id <= self.last {
            return Step::Continue;
        }
        if self.mode == CheckpointMode::ExactlyOnce {
            match self.pending.first() {
                Some(p) if id < p.id => return Step::Continue,
                // A newer barrier while an older one is incomplete: the
                // older one cannot complete here any more and will time
                // out at the coordinator.
                Some(p) if id > p.id => self.pending.clear(),
                _ => {}
            }
        }
        let at = match self.pending.binary_search_by_key(&id, |p| p.id) {
            Ok(at) => at,
            Err(at) => {
                let pending = Pending {
                    id,
                    arrived: vec![false; self.ended.len()],
                    started: Instant::now(),
                };
                self.pending.insert(at, pending);
                at
            }
        };
        self.pending[at].arrived[input] = true;
        self.ready()
    }

    /// `input` has ended: it will deliver no more barriers.
    pub fn on_end(&mut self, input: usize) -> Step {
        self.ended[input] = true;
        self.ready()
    }

    /// Whether the instance must not read `input` now.
    pub fn is_blocked(&self, input: usize) -> bool {
        self.mode == CheckpointMode::ExactlyOnce
            && self.pending.first().is_some_and(|p| p.arrived[input])
    }

    /// The oldest checkpoint whose barrier has now come on every input.
    /// Older ones still incomplete never will be (inputs deliver barriers
    /// in order), and are dropped.
    pub fn ready(&mut self) -> Step {
        let complete = |p: &Pending| p.arrived.iter().zip(&self.ended).all(|(a, e)| *a || *e);
        let Some(at) = self.pending.iter().position(complete) else {
            return Step::Continue;
        };
        let p = self.pending.remove(at);
        self.pending.drain(..at);
        self.last = p.id;
        Step::Snapshot {
            id: p.id,
            alignment: p.started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckpointMode::*;

    fn snapshot_of(step: Step) -> Option<u64> {
        match step {
            Step::Snapshot { id, .. } => Some(id),
            Step::Continue => None,
        }
    }

    #[test]
    fn one_input_snapshots_at_once() {
        let mut a = Aligner::new(1, ExactlyOnce);
        assert_eq!(snapshot_of(a.on_barrier(0, 1)), Some(1));
        assert!(!a.is_blocked(0));
    }

    #[test]
    fn two_inputs_block_the_first_until_the_second_delivers() {
        let mut a = Aligner::new(2, ExactlyOnce);
        assert_eq!(a.on_barrier(1, 4), Step::Continue);
        assert!(a.is_blocked(1) && !a.is_blocked(0));
        assert_eq!(snapshot_of(a.on_barrier(0, 4)), Some(4));
        assert!(!a.is_blocked(0) && !a.is_blocked(1));
    }

    #[test]
    fn n_inputs_and_at_least_once_never_blocks() {
        let mut a = Aligner::new(4, AtLeastOnce);
        for i in 0..3 {
            assert_eq!(a.on_barrier(i, 2), Step::Continue);
            assert!(!a.is_blocked(i));
        }
        assert_eq!(snapshot_of(a.on_barrier(3, 2)), Some(2));
    }

    #[test]
    fn an_ended_input_counts_as_aligned() {
        let mut a = Aligner::new(3, ExactlyOnce);
        assert_eq!(a.on_end(2), Step::Continue);
        assert_eq!(a.on_barrier(0, 1), Step::Continue);
        assert_eq!(snapshot_of(a.on_barrier(1, 1)), Some(1));
        // The last open input ends while the others wait.
        assert_eq!(a.on_barrier(0, 2), Step::Continue);
        assert_eq!(snapshot_of(a.on_end(1)), Some(2));
    }

    #[test]
    fn a_repeated_or_stale_barrier_changes_nothing() {
        let mut a = Aligner::new(2, ExactlyOnce);
        assert_eq!(a.on_barrier(0, 3), Step::Continue);
        assert_eq!(a.on_barrier(0, 3), Step::Continue);
        assert_eq!(a.on_barrier(1, 2), Step::Continue);
        assert!(a.is_blocked(0) && !a.is_blocked(1));
        assert_eq!(snapshot_of(a.on_barrier(1, 3)), Some(3));
        assert_eq!(a.on_barrier(0, 3), Step::Continue, "already snapshotted");
    }

    #[test]
    fn at_least_once_keeps_every_checkpoint_in_flight() {
        // max_concurrent 2: input 0 delivers barriers 1 and 2 before input 1 delivers 1.
        let mut a = Aligner::new(2, AtLeastOnce);
        assert_eq!(a.on_barrier(0, 1), Step::Continue);
        assert_eq!(a.on_barrier(0, 2), Step::Continue);
        assert_eq!(snapshot_of(a.on_barrier(1, 1)), Some(1));
        assert_eq!(snapshot_of(a.on_barrier(1, 2)), Some(2));
        // An input that ends completes every checkpoint waiting only for it, oldest first.
        assert_eq!(a.on_barrier(1, 3), Step::Continue);
        assert_eq!(a.on_barrier(1, 4), Step::Continue);
        assert_eq!(snapshot_of(a.on_end(0)), Some(3));
        assert_eq!(snapshot_of(a.ready()), Some(4));
        assert_eq!(a.ready(), Step::Continue);
    }
}
