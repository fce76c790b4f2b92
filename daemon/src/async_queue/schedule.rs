//! The in-memory schedule of the asynchronous queue: which accepted events
//! wait for their time, which are due but wait for a concurrency slot, and
//! which run. Payloads stay in the store; this holds ids only, so a large
//! backlog costs little memory. Rebuilt from the store at start-up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// What the schedule knows of one queued event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Event id.
    pub id: String,
    /// Function name.
    pub function: String,
    /// When it was accepted (ms since the epoch).
    pub accepted_ms: i64,
}

/// Per-function counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Waiting (for their time or a slot).
    pub queued: u64,
    /// Running.
    pub in_flight: u64,
    /// Dispatched again after kumod or an agent stopped mid-attempt.
    pub redeliveries: u64,
}

/// The schedule.
#[derive(Default)]
pub struct Schedule {
    timers: BinaryHeap<Reverse<(i64, u64)>>,
    waiting: HashMap<u64, Queued>,
    ready: VecDeque<Queued>,
    counts: HashMap<String, Counts>,
    sequence: u64,
}

impl Schedule {
    /// Queues an event to become due at `due_ms`.
    pub fn add(&mut self, event: Queued, due_ms: i64) {
        self.counts
            .entry(event.function.clone())
            .or_default()
            .queued += 1;
        self.insert_timer(event, due_ms);
    }

    fn insert_timer(&mut self, event: Queued, due_ms: i64) {
        self.sequence += 1;
        self.waiting.insert(self.sequence, event);
        self.timers.push(Reverse((due_ms, self.sequence)));
    }

    /// Moves every event due at `now_ms` to the ready list and returns the
    /// ready list (oldest first) for the dispatcher to work through.
    pub fn take_ready(&mut self, now_ms: i64) -> VecDeque<Queued> {
        while let Some(Reverse((due, seq))) = self.timers.peek().copied() {
            if due > now_ms {
                break;
            }
            self.timers.pop();
            if let Some(event) = self.waiting.remove(&seq) {
                self.ready.push_back(event);
            }
        }
        std::mem::take(&mut self.ready)
    }

    /// Puts back events that were due but could not start, in order.
    pub fn keep_ready(&mut self, events: VecDeque<Queued>) {
        let mut events = events;
        events.append(&mut self.ready);
        self.ready = events;
    }

    /// The event is starting an attempt.
    pub fn started(&mut self, function: &str) {
        let counts = self.counts.entry(function.to_string()).or_default();
        counts.queued = counts.queued.saturating_sub(1);
        counts.in_flight += 1;
    }

    /// The attempt ended and the event waits again until `due_ms`.
    pub fn requeue(&mut self, event: Queued, due_ms: i64) {
        let counts = self.counts.entry(event.function.clone()).or_default();
        counts.in_flight = counts.in_flight.saturating_sub(1);
        counts.queued += 1;
        self.insert_timer(event, due_ms);
    }

    /// The attempt ended and the event left the queue (ran or dead-lettered).
    pub fn finished(&mut self, function: &str) {
        let counts = self.counts.entry(function.to_string()).or_default();
        counts.in_flight = counts.in_flight.saturating_sub(1);
    }

    /// A due event left the queue without an attempt.
    pub fn dropped(&mut self, function: &str) {
        let counts = self.counts.entry(function.to_string()).or_default();
        counts.queued = counts.queued.saturating_sub(1);
    }

    /// Counts an event that may run a second time.
    pub fn redelivered(&mut self, function: &str) {
        self.counts
            .entry(function.to_string())
            .or_default()
            .redeliveries += 1;
    }

    /// A function's counters.
    pub fn counts(&self, function: &str) -> Counts {
        self.counts.get(function).copied().unwrap_or_default()
    }

    /// When the next waiting event falls due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.timers.peek().map(|Reverse((due, _))| *due)
    }

    /// True when due events wait for a slot.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> Queued {
        Queued {
            id: id.into(),
            function: "f".into(),
            accepted_ms: 0,
        }
    }

    #[test]
    fn events_become_ready_in_due_order() {
        let mut s = Schedule::default();
        s.add(event("late"), 200);
        s.add(event("early"), 100);
        assert!(s.take_ready(50).is_empty());
        assert_eq!(s.next_due(), Some(100));
        let ready: Vec<String> = s.take_ready(250).into_iter().map(|e| e.id).collect();
        assert_eq!(ready, ["early", "late"]);
        assert_eq!(s.counts("f").queued, 2);
    }

    #[test]
    fn counts_follow_an_event_through_retries() {
        let mut s = Schedule::default();
        s.add(event("a"), 0);
        let mut ready = s.take_ready(0);
        let a = ready.pop_front().unwrap();
        s.started("f");
        assert_eq!(
            s.counts("f"),
            Counts {
                queued: 0,
                in_flight: 1,
                redeliveries: 0
            }
        );
        s.requeue(a, 10);
        assert_eq!(s.counts("f").queued, 1);
        let a = s.take_ready(10).pop_front().unwrap();
        s.started(&a.function);
        s.finished("f");
        assert_eq!(s.counts("f"), Counts::default());
    }

    #[test]
    fn blocked_events_keep_their_place() {
        let mut s = Schedule::default();
        s.add(event("a"), 0);
        s.add(event("b"), 1);
        let ready = s.take_ready(5);
        s.keep_ready(ready);
        assert!(s.has_ready());
        s.add(event("c"), 2);
        let ids: Vec<String> = s.take_ready(5).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
