//! The window operator: groups a keyed stream's records into windows of
//! event time ([`crate::time::windows`]) and emits one result per key and
//! window when the watermark closes it, as Flink's `WindowOperator` does.
//!
//! Every open window is an entry of keyed state, its key the record key's
//! encoding followed by the window's bounds, its value the record key and
//! the accumulators: so windows are split by key group, restored at any
//! parallelism, and an incremental checkpoint writes only the windows that
//! changed, and a tombstone for each one that closed. The timers (which
//! window closes when) are kept beside the state and rebuilt from it on a
//! restore, so a restored window closes without waiting for its key.
//!
//! A record is late for a window when the watermark has passed the
//! window's end plus `allowed_lateness`; a record late for all of its
//! windows is counted, and dropped or sent to the node's late output
//! (`late: output`, read as `<name>.late`). A record that is behind the watermark
//! but within the allowed lateness updates its window, which emits again
//! at once (a late firing).

pub mod accumulate;

use std::collections::{BTreeSet, HashMap};

use accumulate::Body;

use super::late::LateCount;
use super::timers::Timers;
use super::{OpError, Operator, RecordError, Snapshot, TimedState};
use crate::expr::Expr;
use crate::state::{encode_key, key_group, Changes, KeyedState};
use crate::time::windows::{merge_session, Assigner, Window};
use crate::time::{END, START};
use crate::value::{intern, Name, Value};

/// When a window's result is emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Once, when the watermark passes its end (and again for each late
    /// record within the allowed lateness).
    Close,
    /// After every record it takes: a running result.
    Update,
}

/// A window node's settings, shared by its instances.
#[derive(Clone, Debug)]
pub struct WindowSpec {
    /// The key of each input (one, or two for a window join).
    pub keys: Vec<Expr>,
    /// The name of the key's field in results.
    pub key_field: Name,
    pub assigner: Assigner,
    pub allowed_lateness: i64,
    pub emit: Emit,
    pub body: Body,
    /// Late records go to the late output (`late: output`), not away.
    pub late_output: bool,
    /// Windows of the clock's time when records reach the node, not of
    /// their event time (`time: processing`).
    pub processing_time: bool,
    /// With `emit: close`, results of the open windows that changed, this
    /// often (milliseconds of processing time), before they close.
    pub early_ms: Option<i64>,
}

/// Bytes a window's bounds add to its key in state.
const BOUNDS: usize = 16;

/// Why a restored window entry cannot be one this operator wrote.
#[derive(Debug, thiserror::Error)]
pub enum UnfitWindow {
    #[error("a window entry whose key has no window bounds")]
    Bounds,
    #[error("a window entry that is not [key, accumulators...] of this node's aggregates: `{0}`")]
    Value(String),
    #[error(transparent)]
    LateCount(#[from] super::late::UnfitCount),
}

pub struct WindowOp {
    spec: WindowSpec,
    state: Box<dyn KeyedState>,
    max_parallelism: u32,
    watermark: i64,
    /// Windows not yet fired, by their last time.
    to_fire: Timers,
    /// Windows fired and kept for late records, by their last time plus
    /// the allowed lateness (only with some allowed lateness).
    to_clean: Timers,
    /// Each key's open sessions (session windows only).
    sessions: HashMap<Box<[u8]>, Vec<Window>>,
    /// Records late for every window.
    late: LateCount,
    /// Open windows changed since the last early results (`early`).
    early: BTreeSet<(u16, Box<[u8]>)>,
    /// When the last early results went out (processing time).
    last_early: i64,
    /// Times of results of processing time in a chain without event time.
    untimed: Vec<i64>,
    /// Late records for the late output, with their times, until taken.
    late_out: Vec<Value>,
    late_times: Vec<i64>,
    /// The input the record in hand came from (a window join's side).
    side: usize,
    key_buf: Vec<u8>,
    entry_buf: Vec<u8>,
    windows: Vec<Window>,
    inputs: Vec<Value>,
    output: Output,
}

/// What results are made of: field names interned once, and the text of
/// the bounds written last (windows closing together share them).
struct Output {
    start: Name,
    end: Name,
    value: Name,
    bounds: Option<(Window, Value, Value)>,
}

impl WindowOp {
    pub fn new(
        spec: WindowSpec,
        state: Box<dyn KeyedState>,
        max_parallelism: u32,
        home_group: u16,
    ) -> WindowOp {
        WindowOp {
            spec,
            state,
            max_parallelism,
            watermark: START,
            to_fire: Timers::default(),
            to_clean: Timers::default(),
            sessions: HashMap::new(),
            late: LateCount::new(home_group),
            early: BTreeSet::new(),
            last_early: crate::time::now_millis(),
            untimed: Vec::new(),
            late_out: Vec::new(),
            late_times: Vec::new(),
            side: 0,
            key_buf: Vec::new(),
            entry_buf: Vec::new(),
            windows: Vec::new(),
            inputs: Vec::new(),
            output: Output {
                start: intern("window_start"),
                end: intern("window_end"),
                value: intern("value"),
                bounds: None,
            },
        }
    }

    fn fits(&self, value: &Value) -> bool {
        let Value::List(items) = value else {
            return false;
        };
        match &self.spec.body {
            Body::Aggregates(aggregates) => {
                items.len() == 1 + aggregates.len()
                    && aggregates.iter().zip(&items[1..]).all(|(a, v)| a.fits(v))
            }
            Body::Reduce(_) => items.len() == 2,
            Body::Join { .. } => {
                items.len() == 3
                    && items[1..].iter().all(|side| match side {
                        Value::List(timed) => timed.iter().all(|t| {
                            matches!(t, Value::List(pair) if pair.len() == 2 && matches!(pair[0], Value::Int(_)))
                        }),
                        _ => false,
                    })
            }
        }
    }

    fn set_timers(&mut self, window: Window, key_group: u16, entry: &[u8]) {
        let last = window.max_time();
        if last > self.watermark {
            self.to_fire.insert(last, key_group, entry);
        }
        if self.spec.allowed_lateness > 0 {
            let clean = last.saturating_add(self.spec.allowed_lateness);
            self.to_clean.insert(clean, key_group, entry);
        }
    }

    fn clear_timers(&mut self, window: Window, key_group: u16, entry: &[u8]) {
        let last = window.max_time();
        self.to_fire.remove(last, key_group, entry);
        if self.spec.allowed_lateness > 0 {
            let clean = last.saturating_add(self.spec.allowed_lateness);
            self.to_clean.remove(clean, key_group, entry);
        }
    }

    /// Whether the watermark has passed `window`'s end and lateness: a
    /// record for it is late.
    fn is_late(&self, window: Window) -> bool {
        window.max_time().saturating_add(self.spec.allowed_lateness) <= self.watermark
    }

    /// The inputs the record gives each aggregate; a bad one fails the
    /// record before any window changes.
    fn read_inputs(&mut self, record: &Value) -> Result<(), RecordError> {
        self.inputs.clear();
        if let Body::Aggregates(aggregates) = &self.spec.body {
            for a in aggregates {
                self.inputs.push(a.input(record)?);
            }
        }
        Ok(())
    }

    /// Adds the record (whose inputs were read) to the accumulator in
    /// `slot`, a new one if empty.
    #[allow(clippy::too_many_arguments)]
    fn accumulate(
        body: &Body,
        slot: &mut Option<Value>,
        key: &Value,
        side: usize,
        record: &Value,
        inputs: &[Value],
        time: i64,
    ) -> Result<(), RecordError> {
        match body {
            Body::Join { .. } => {
                let timed = Value::List(vec![Value::Int(time), record.clone()]);
                match slot {
                    Some(Value::List(items)) if items.len() == 3 => {
                        if let Value::List(records) = &mut items[1 + side] {
                            records.push(timed);
                        }
                    }
                    _ => {
                        let mut sides = [Vec::new(), Vec::new()];
                        sides[side].push(timed);
                        let [left, right] = sides;
                        *slot = Some(Value::List(vec![
                            key.clone(),
                            Value::List(left),
                            Value::List(right),
                        ]));
                    }
                }
            }
            Body::Aggregates(aggregates) => {
                let add = |items: &mut [Value]| -> Result<(), RecordError> {
                    for ((a, acc), input) in aggregates.iter().zip(&items[1..]).zip(inputs) {
                        a.check(acc, input)?;
                    }
                    for ((a, acc), input) in aggregates.iter().zip(&mut items[1..]).zip(inputs) {
                        a.add(acc, input.clone(), time);
                    }
                    Ok(())
                };
                match slot {
                    Some(Value::List(items)) => add(items)?,
                    _ => {
                        // Put in state only once the record is in: a bad
                        // record leaves no window behind.
                        let mut items = Vec::with_capacity(1 + aggregates.len());
                        items.push(key.clone());
                        items.extend(aggregates.iter().map(|a| a.empty()));
                        add(&mut items)?;
                        *slot = Some(Value::List(items));
                    }
                }
            }
            Body::Reduce(expr) => match slot {
                Some(Value::List(items)) if items.len() == 2 => {
                    let next = expr
                        .eval(record, Some(&items[1]))
                        .map_err(|e| RecordError(e.to_string()))?;
                    items[1] = next;
                }
                _ => *slot = Some(Value::List(vec![key.clone(), record.clone()])),
            },
        }
        Ok(())
    }

    /// Merges accumulator `other` into `acc` (sessions merging).
    fn merge(body: &Body, acc: &mut Value, other: Value) -> Result<(), RecordError> {
        let (Value::List(a), Value::List(b)) = (acc, other) else {
            return Ok(());
        };
        match body {
            Body::Aggregates(aggregates) => {
                for ((agg, x), y) in aggregates
                    .iter()
                    .zip(&mut a[1..])
                    .zip(b.into_iter().skip(1))
                {
                    agg.merge(x, y);
                }
            }
            Body::Reduce(expr) => {
                if let (Some(x), Some(y)) = (a.get_mut(1), b.get(1)) {
                    *x = expr
                        .eval(y, Some(x))
                        .map_err(|e| RecordError(e.to_string()))?;
                }
            }
            Body::Join { .. } => {
                for (x, y) in a.iter_mut().zip(b).skip(1) {
                    if let (Value::List(x), Value::List(y)) = (x, y) {
                        x.extend(y);
                    }
                }
            }
        }
        Ok(())
    }

    /// The state key of `window` for the key in `key_buf`, in `entry_buf`.
    fn entry_key(&mut self, window: Window) {
        self.entry_buf.clear();
        self.entry_buf.extend_from_slice(&self.key_buf);
        self.entry_buf.extend_from_slice(&ordered(window.start));
        self.entry_buf.extend_from_slice(&ordered(window.end));
    }

    fn process_fixed(
        &mut self,
        key: &Value,
        kg: u16,
        record: &Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<bool, OpError> {
        self.windows.clear();
        let windows = &mut self.windows;
        self.spec.assigner.assign(time, |w| windows.push(w));
        let side = self.side;
        let mut taken = false;
        for i in 0..self.windows.len() {
            let window = self.windows[i];
            if self.is_late(window) {
                continue;
            }
            self.entry_key(window);
            let slot = self.state.value_mut(kg, &self.entry_buf)?;
            let new = slot.is_none();
            Self::accumulate(&self.spec.body, slot, key, side, record, &self.inputs, time)?;
            taken = true;
            if self.spec.emit == Emit::Update || window.max_time() <= self.watermark {
                if let Some(value) = slot {
                    self.output.emit(&self.spec, window, value, out, times);
                }
            } else if self.spec.early_ms.is_some() {
                self.early.insert((kg, self.entry_buf[..].into()));
            }
            if new {
                let entry = std::mem::take(&mut self.entry_buf);
                self.set_timers(window, kg, &entry);
                self.entry_buf = entry;
            }
        }
        Ok(taken)
    }

    fn process_session(
        &mut self,
        key: &Value,
        kg: u16,
        record: &Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<bool, OpError> {
        let mut opened = None;
        self.spec.assigner.assign(time, |w| opened = Some(w));
        let side = self.side;
        let Some(opened) = opened else {
            return Ok(true);
        };
        if self.is_late(opened) {
            return Ok(false);
        }
        let open = self
            .sessions
            .get(&self.key_buf[..])
            .map_or(&[][..], Vec::as_slice);
        let (merged, absorbed) = merge_session(open, opened);
        // The record first, on its own: a bad one changes nothing.
        let mut slot = None;
        Self::accumulate(
            &self.spec.body,
            &mut slot,
            key,
            side,
            record,
            &self.inputs,
            time,
        )?;
        let Some(record_acc) = slot else {
            return Ok(true);
        };
        // The sessions it merges and the record, in time order (the record
        // after a session beginning when it does, which came before it), so
        // that `reduce` and ties in `first` and `last` see arrival order.
        let mut pieces = Vec::with_capacity(absorbed.len() + 1);
        for window in &absorbed {
            self.entry_key(*window);
            let old = self.state.remove(kg, &self.entry_buf)?;
            let entry = std::mem::take(&mut self.entry_buf);
            self.clear_timers(*window, kg, &entry);
            self.entry_buf = entry;
            if let Some(old) = old {
                pieces.push((window.start, old));
            }
        }
        pieces.push((opened.start, record_acc));
        pieces.sort_by_key(|(start, _)| *start);
        let mut pieces = pieces.into_iter().map(|(_, acc)| acc);
        let Some(mut acc) = pieces.next() else {
            return Ok(true);
        };
        for piece in pieces {
            Self::merge(&self.spec.body, &mut acc, piece)?;
        }
        let sessions = self.sessions.entry(self.key_buf[..].into()).or_default();
        sessions.retain(|s| !absorbed.contains(s));
        sessions.push(merged);
        self.entry_key(merged);
        let entry = std::mem::take(&mut self.entry_buf);
        self.set_timers(merged, kg, &entry);
        if self.spec.emit == Emit::Update || merged.max_time() <= self.watermark {
            self.output.emit(&self.spec, merged, &acc, out, times);
        } else if self.spec.early_ms.is_some() {
            self.early.insert((kg, entry[..].into()));
        }
        *self.state.value_mut(kg, &entry)? = Some(acc);
        self.entry_buf = entry;
        Ok(true)
    }

    /// The watermark (of event or processing time) has reached
    /// `watermark`: the windows it closes fire, those past their lateness go.
    fn advance(
        &mut self,
        watermark: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        let keep = self.spec.allowed_lateness > 0;
        let fire = self.spec.emit == Emit::Close;
        while let Some(due) = self.to_fire.take_due(watermark) {
            for (kg, entry) in due {
                let entry = entry.as_bytes();
                let Some(window) = bounds(entry) else {
                    continue;
                };
                if keep {
                    if let (true, Some(value)) = (fire, self.state.get(kg, entry)?) {
                        self.output.emit(&self.spec, window, value, out, times);
                    }
                } else if let (true, Some(value)) = (fire, self.forget(window, kg, entry)?) {
                    self.output.emit(&self.spec, window, &value, out, times);
                }
            }
        }
        while let Some(due) = self.to_clean.take_due(watermark) {
            for (kg, entry) in due {
                if let Some(window) = bounds(entry.as_bytes()) {
                    self.forget(window, kg, entry.as_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Removes a window's entry (it fired, or its lateness ran out), and
    /// gives its value.
    fn forget(
        &mut self,
        window: Window,
        key_group: u16,
        entry: &[u8],
    ) -> Result<Option<Value>, OpError> {
        let value = self.state.remove(key_group, entry)?;
        if self.spec.assigner.is_session() {
            let key = &entry[..entry.len() - BOUNDS];
            if let Some(sessions) = self.sessions.get_mut(key) {
                sessions.retain(|s| *s != window);
                if sessions.is_empty() {
                    self.sessions.remove(key);
                }
            }
        }
        Ok(value)
    }
}

impl TimedState for WindowOp {
    /// Takes one entry of a restored checkpoint: a window (whose timers
    /// are set again) or a late-record count.
    /// `location` names the checkpoint, for messages.
    fn restore(
        &mut self,
        key_group: u16,
        key: &[u8],
        value: Value,
        location: &str,
    ) -> Result<(), OpError> {
        let unfit = |why: UnfitWindow| OpError::Restore {
            location: location.to_owned(),
            why: Box::new(super::RestoreProblem::Window(why)),
        };
        if LateCount::is_count(key) {
            return self.late.restore(&value).map_err(|e| unfit(e.into()));
        }
        let window = bounds(key).ok_or_else(|| unfit(UnfitWindow::Bounds))?;
        if !self.fits(&value) {
            return Err(unfit(UnfitWindow::Value(value.to_string())));
        }
        *self.state.value_mut(key_group, key)? = Some(value);
        self.set_timers(window, key_group, key);
        if self.spec.assigner.is_session() {
            self.sessions
                .entry(key[..key.len() - BOUNDS].into())
                .or_default()
                .push(window);
        }
        Ok(())
    }

    /// Every entry of the checkpoint is restored: the operator goes on
    /// from the watermark the checkpoint recorded for it, and the windows
    /// that had closed, which fired before the checkpoint, wait for late
    /// records only.
    fn restored(&mut self, watermark: Option<i64>) {
        if let Some(watermark) = watermark {
            self.watermark = watermark;
            self.to_fire.clear_until(watermark);
        }
    }
}

impl Operator for WindowOp {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        if !self.spec.processing_time {
            return Err(OpError::Bug("a window's records have no event time"));
        }
        // Records without event times: nothing after takes the results' times.
        let mut times = std::mem::take(&mut self.untimed);
        let result = self.process_at(record, 0, out, &mut times);
        times.clear();
        self.untimed = times;
        result
    }

    fn process_at(
        &mut self,
        record: Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        let time = if self.spec.processing_time {
            crate::time::now_millis()
        } else {
            time
        };
        let Some(key) = self.spec.keys.get(self.side) else {
            return Err(OpError::Bug(
                "a record from an input a window has no key for",
            ));
        };
        let key = key.eval_ref(&record)?.into_owned();
        self.key_buf.clear();
        encode_key(&key, &mut self.key_buf);
        let kg = key_group(&self.key_buf, self.max_parallelism);
        self.read_inputs(&record)?;
        let taken = if self.spec.assigner.is_session() {
            self.process_session(&key, kg, &record, time, out, times)?
        } else {
            self.process_fixed(&key, kg, &record, time, out, times)?
        };
        if !taken {
            self.late.add(1);
            if self.spec.late_output {
                self.late_out.push(record);
                self.late_times.push(time);
            }
        }
        Ok(())
    }

    fn process_input(
        &mut self,
        input: usize,
        record: Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        self.side = input;
        let result = self.process_at(record, time, out, times);
        self.side = 0;
        result
    }

    fn on_watermark(
        &mut self,
        watermark: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        // Of event time, only its end reaches windows of processing time:
        // the input has ended, and every window closes.
        if self.spec.processing_time && watermark < END {
            return Ok(());
        }
        self.advance(watermark, out, times)
    }

    fn wants_ticks(&self) -> bool {
        self.spec.processing_time || self.spec.early_ms.is_some()
    }

    fn on_tick(
        &mut self,
        now_ms: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        if self.spec.processing_time {
            // A window of processing time closes once the clock has passed it.
            self.advance(now_ms.saturating_sub(1), out, times)?;
        }
        let Some(period) = self.spec.early_ms else {
            return Ok(());
        };
        if now_ms.saturating_sub(self.last_early) < period {
            return Ok(());
        }
        self.last_early = now_ms;
        // Early results of the open windows that changed since the last
        // ones; a window that closed or merged since has gone from state.
        for (kg, entry) in std::mem::take(&mut self.early) {
            let Some(window) = bounds(&entry) else {
                continue;
            };
            if window.max_time() <= self.watermark {
                continue;
            }
            if let Some(value) = self.state.get(kg, &entry)? {
                self.output.emit(&self.spec, window, value, out, times);
            }
        }
        Ok(())
    }

    fn late_records(&mut self) -> u64 {
        self.late.take_unreported()
    }

    fn take_late_output(&mut self, out: &mut Vec<Value>, times: &mut Vec<i64>) {
        out.append(&mut self.late_out);
        times.append(&mut self.late_times);
    }

    fn snapshot(&mut self) -> Result<Snapshot, OpError> {
        self.late.save(&mut *self.state)?;
        super::snapshot_of(&mut *self.state)
    }

    fn copy_snapshot(&mut self, budget: usize) -> Result<Option<Changes>, OpError> {
        Ok(self.state.copy_changes(budget)?)
    }
}

impl Output {
    /// The text of `window`'s bounds, written once for the windows that
    /// share them.
    fn bounds(&mut self, window: Window) -> (Value, Value) {
        match &self.bounds {
            Some((w, start, end)) if *w == window => (start.clone(), end.clone()),
            _ => {
                let (start, end) = (text_time(window.start), text_time(window.end));
                self.bounds = Some((window, start.clone(), end.clone()));
                (start, end)
            }
        }
    }

    /// The result record of `window` from its state value.
    fn result(&mut self, spec: &WindowSpec, window: Window, value: &Value) -> Value {
        let Value::List(items) = value else {
            return Value::Null;
        };
        let key = items.first().cloned().unwrap_or_default();
        let (start, end) = self.bounds(window);
        match &spec.body {
            Body::Aggregates(aggregates) => {
                let mut fields = Vec::with_capacity(3 + aggregates.len());
                fields.push((spec.key_field.clone(), key));
                fields.push((self.start.clone(), start));
                fields.push((self.end.clone(), end));
                for (a, acc) in aggregates.iter().zip(&items[1..]) {
                    fields.push((a.name.clone(), a.result(acc)));
                }
                Value::Map(fields)
            }
            // A join's results are its pairs, which `emit` makes.
            Body::Join { .. } => Value::Null,
            Body::Reduce(_) => {
                let reduced = items.get(1).cloned().unwrap_or_default();
                let mut fields = vec![(self.start.clone(), start), (self.end.clone(), end)];
                match reduced {
                    Value::Map(own) => fields.extend(
                        own.into_iter()
                            .filter(|(k, _)| *k != self.start && *k != self.end),
                    ),
                    other => {
                        fields.insert(0, (spec.key_field.clone(), key));
                        fields.push((self.value.clone(), other));
                    }
                }
                Value::Map(fields)
            }
        }
    }

    /// Puts out `window`'s result (a window join's pairs), at the
    /// window's last time.
    fn emit(
        &mut self,
        spec: &WindowSpec,
        window: Window,
        value: &Value,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) {
        let Body::Join { names, outer } = &spec.body else {
            out.push(self.result(spec, window, value));
            times.push(window.max_time());
            return;
        };
        let Value::List(items) = value else {
            return;
        };
        let records = |side: &Value| -> Vec<Value> {
            match side {
                Value::List(timed) => timed
                    .iter()
                    .filter_map(|t| match t {
                        Value::List(pair) => pair.get(1).cloned(),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let (lefts, rights) = match &items[..] {
            [_, left, right] => (records(left), records(right)),
            _ => return,
        };
        let (start, end) = self.bounds(window);
        let mut pair = |left: &Value, right: Value| {
            out.push(Value::Map(vec![
                (names[0].clone(), left.clone()),
                (names[1].clone(), right),
                (self.start.clone(), start.clone()),
                (self.end.clone(), end.clone()),
            ]));
            times.push(window.max_time());
        };
        for left in &lefts {
            if rights.is_empty() && *outer {
                pair(left, Value::Null);
            }
            for right in &rights {
                pair(left, right.clone());
            }
        }
    }
}

/// A time as 8 bytes that sort as the times do.
fn ordered(time: i64) -> [u8; 8] {
    ((time as u64) ^ (1 << 63)).to_be_bytes()
}

/// The window whose bounds end a state key.
fn bounds(entry: &[u8]) -> Option<Window> {
    let at = entry.len().checked_sub(BOUNDS).filter(|&at| at > 0)?;
    let time = |b: &[u8]| -> Option<i64> {
        Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
    };
    let window = Window {
        start: time(&entry[at..at + 8])?,
        end: time(&entry[at + 8..])?,
    };
    (window.start < window.end).then_some(window)
}

/// A window bound as RFC 3339 text in UTC, as CEL writes times; the
/// milliseconds for one too far out to write so.
fn text_time(ms: i64) -> Value {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => Value::from(
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_str(),
        ),
        None => Value::Int(ms),
    }
}

#[cfg(test)]
mod tests {
    use super::accumulate::{Aggregate, Function};
    use super::*;
    use crate::state::memory::MemoryState;

    fn op(assigner: Assigner, allowed_lateness: i64) -> WindowOp {
        let spec = WindowSpec {
            keys: vec![Expr::compile_key("k").unwrap()],
            key_field: intern("k"),
            assigner,
            allowed_lateness,
            emit: Emit::Close,
            late_output: false,
            processing_time: false,
            early_ms: None,
            body: Body::Aggregates(vec![Aggregate {
                name: intern("total"),
                function: Function::Sum,
                arg: Some(Expr::compile_key("n").unwrap()),
            }]),
        };
        WindowOp::new(spec, Box::new(MemoryState::new(true)), 128, 0)
    }

    fn rec(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// Feeds `(time, record)`s, then a watermark; what came out, as JSON.
    fn feed(op: &mut WindowOp, records: &[(i64, &str)], watermark: i64) -> Vec<String> {
        let (mut out, mut times) = (Vec::new(), Vec::new());
        for (time, json) in records {
            let _ = op.process_at(rec(json), *time, &mut out, &mut times);
        }
        op.on_watermark(watermark, &mut out, &mut times).unwrap();
        assert_eq!(out.len(), times.len());
        out.iter().map(Value::to_json).collect()
    }

    /// A record that failed (a sum of text) used to leave an empty window
    /// in state without a timer: later records of its key went into it,
    /// and it never closed.
    #[test]
    fn a_bad_record_leaves_no_window_behind() {
        let mut w = op(Assigner::Tumbling { size: 10 }, 0);
        let out = feed(
            &mut w,
            &[(1, r#"{"k": "a", "n": "x"}"#), (2, r#"{"k": "a", "n": 5}"#)],
            9,
        );
        assert_eq!(
            out,
            [
                r#"{"k":"a","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:00:00.010Z","total":5}"#
            ]
        );
    }

    /// A `reduce` over sessions: a record that bridges two sessions merges
    /// their results in time order; the result gets the window's bounds.
    #[test]
    fn a_reduce_merges_the_sessions_a_record_bridges() {
        let spec = WindowSpec {
            keys: vec![Expr::compile_key("k").unwrap()],
            key_field: intern("k"),
            assigner: Assigner::Session { gap: 10 },
            allowed_lateness: 0,
            emit: Emit::Close,
            late_output: false,
            processing_time: false,
            early_ms: None,
            body: Body::Reduce(
                Expr::compile(
                    r#"{"k": acc.k, "seen": acc.seen + "," + this.seen}"#,
                    &[crate::expr::Var::Acc, crate::expr::Var::This],
                )
                .unwrap(),
            ),
        };
        let mut w = WindowOp::new(spec, Box::new(MemoryState::new(true)), 128, 0);
        let out = feed(
            &mut w,
            &[
                (100, r#"{"k": "a", "seen": "1"}"#),
                (118, r#"{"k": "a", "seen": "3"}"#),
                (109, r#"{"k": "a", "seen": "2"}"#),
            ],
            200,
        );
        assert_eq!(
            out,
            [
                r#"{"window_start":"1970-01-01T00:00:00.100Z","window_end":"1970-01-01T00:00:00.128Z","k":"a","seen":"1,2,3"}"#
            ]
        );
    }

    /// A restore rebuilds the timers from state: a restored window closes
    /// without a record of its key, and one that had closed before the
    /// checkpoint does not close again.
    #[test]
    fn restored_windows_close_once_without_waiting_for_their_key() {
        let mut before = op(Assigner::Tumbling { size: 10 }, 100);
        let fired = feed(
            &mut before,
            &[(1, r#"{"k": "a", "n": 1}"#), (15, r#"{"k": "b", "n": 2}"#)],
            9,
        );
        assert_eq!(fired.len(), 1, "{fired:?}");
        let Snapshot::Deferred = before.snapshot().unwrap() else {
            panic!("memory state defers copying")
        };
        let changes = before.copy_snapshot(usize::MAX).unwrap().unwrap();
        let mut after = op(Assigner::Tumbling { size: 10 }, 100);
        for ((kg, key), value) in changes {
            after.restore(kg, &key, value.unwrap(), "chk-1").unwrap();
        }
        after.restored(Some(9));
        let out = feed(&mut after, &[], 30);
        assert_eq!(out.len(), 1, "only `b`'s window closes: {out:?}");
        assert!(out[0].contains(r#""k":"b""#), "{out:?}");
        // `a`'s window still takes a late record, and emits again.
        let late = feed(&mut after, &[(5, r#"{"k": "a", "n": 10}"#)], 31);
        assert!(late[0].contains(r#""total":11"#), "{late:?}");
    }

    /// A window join over sessions: a session spans both inputs' records;
    /// each left record pairs with each right one of its session, and
    /// (outer) a left record whose session has none comes alone.
    #[test]
    fn a_session_join_pairs_the_records_of_both_inputs_in_a_session() {
        let spec = WindowSpec {
            keys: vec![
                Expr::compile_key("k").unwrap(),
                Expr::compile_key("key").unwrap(),
            ],
            key_field: intern("key"),
            assigner: Assigner::Session { gap: 10 },
            allowed_lateness: 0,
            emit: Emit::Close,
            late_output: false,
            processing_time: false,
            early_ms: None,
            body: Body::Join {
                names: [intern("l"), intern("r")],
                outer: true,
            },
        };
        let mut w = WindowOp::new(spec, Box::new(MemoryState::new(true)), 128, 0);
        let (mut out, mut times) = (Vec::new(), Vec::new());
        w.process_at(rec(r#"{"k": "a", "n": 1}"#), 100, &mut out, &mut times)
            .unwrap();
        w.process_at(rec(r#"{"k": "a", "n": 2}"#), 112, &mut out, &mut times)
            .unwrap();
        w.process_input(1, rec(r#"{"key": "a", "m": 3}"#), 106, &mut out, &mut times)
            .unwrap();
        w.process_at(rec(r#"{"k": "a", "n": 4}"#), 200, &mut out, &mut times)
            .unwrap();
        w.on_watermark(300, &mut out, &mut times).unwrap();
        let got: Vec<String> = out
            .iter()
            .map(|r| format!("{}+{}", r.get("l").unwrap(), r.get("r").unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                r#"{"k":"a","n":1}+{"key":"a","m":3}"#,
                r#"{"k":"a","n":2}+{"key":"a","m":3}"#,
                r#"{"k":"a","n":4}+null"#,
            ]
        );
        assert_eq!(times, [121, 121, 209]);
    }
}
