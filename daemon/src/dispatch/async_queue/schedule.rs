//! The in-memory schedule of the asynchronous queue: which accepted events
//! wait for their time, which are due but wait for a concurrency slot (in
//! one queue per function, so a function throttled behind a long backlog
//! costs the dispatcher one check, not one per event), and which run.
//! Payloads stay in the store; this holds ids only, so a large backlog
//! costs little memory. Rebuilt from the store at start-up.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

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
    ready: BTreeMap<String, VecDeque<Queued>>,
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

    /// Moves every event due at `now_ms` to its function's ready queue.
    pub fn promote_due(&mut self, now_ms: i64) {
        while let Some(Reverse((due, seq))) = self.timers.peek().copied() {
            if due > now_ms {
                break;
            }
            self.timers.pop();
            if let Some(event) = self.waiting.remove(&seq) {
                self.ready
                    .entry(event.function.clone())
                    .or_default()
                    .push_back(event);
            }
        }
    }

    /// Functions with due events, in name order.
    pub fn ready_functions(&self) -> Vec<String> {
        self.ready.keys().cloned().collect()
    }

    /// The oldest due event of `function`.
    pub fn pop_ready(&mut self, function: &str) -> Option<Queued> {
        let queue = self.ready.get_mut(function)?;
        let event = queue.pop_front();
        if queue.is_empty() {
            self.ready.remove(function);
        }
        event
    }

    /// Puts back an event that could not start, at the head of its queue.
    pub fn unpop_ready(&mut self, event: Queued) {
        self.ready
            .entry(event.function.clone())
            .or_default()
            .push_front(event);
    }

    /// Takes out every due event that `expired` says must leave the queue
    /// without an attempt (its function is gone, or it is too old).
    pub fn remove_ready_where(&mut self, mut expired: impl FnMut(&Queued) -> bool) -> Vec<Queued> {
        let mut removed = Vec::new();
        for queue in self.ready.values_mut() {
            let (gone, kept): (VecDeque<Queued>, VecDeque<Queued>) =
                std::mem::take(queue).into_iter().partition(|e| expired(e));
            removed.extend(gone);
            *queue = kept;
        }
        self.ready.retain(|_, queue| !queue.is_empty());
        removed
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

    /// Due events of every function, oldest first per function (tests).
    #[cfg(test)]
    fn drain_ready(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        for function in self.ready_functions() {
            while let Some(event) = self.pop_ready(&function) {
                ids.push(event.id);
            }
        }
        ids
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
        s.promote_due(50);
        assert!(!s.has_ready());
        assert_eq!(s.next_due(), Some(100));
        s.promote_due(250);
        assert_eq!(s.drain_ready(), ["early", "late"]);
        assert_eq!(s.counts("f").queued, 2);
    }

    #[test]
    fn counts_follow_an_event_through_retries() {
        let mut s = Schedule::default();
        s.add(event("a"), 0);
        s.promote_due(0);
        let a = s.pop_ready("f").unwrap();
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
        s.promote_due(10);
        let a = s.pop_ready("f").unwrap();
        s.started(&a.function);
        s.finished("f");
        assert_eq!(s.counts("f"), Counts::default());
    }

    #[test]
    fn blocked_events_keep_their_place() {
        let mut s = Schedule::default();
        s.add(event("a"), 0);
        s.add(event("b"), 1);
        s.promote_due(5);
        let a = s.pop_ready("f").unwrap();
        s.unpop_ready(a);
        assert!(s.has_ready());
        s.add(event("c"), 2);
        s.promote_due(5);
        assert_eq!(s.drain_ready(), ["a", "b", "c"]);
    }

    #[test]
    fn each_function_has_its_own_queue_and_expired_events_leave() {
        let mut s = Schedule::default();
        for (id, function, accepted) in [("a1", "a", 0), ("b1", "b", 5), ("a2", "a", 10)] {
            s.add(
                Queued {
                    id: id.into(),
                    function: function.into(),
                    accepted_ms: accepted,
                },
                accepted,
            );
        }
        s.promote_due(20);
        assert_eq!(s.ready_functions(), ["a", "b"]);
        let old: Vec<String> = s
            .remove_ready_where(|e| e.accepted_ms < 5)
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(old, ["a1"]);
        assert_eq!(s.pop_ready("a").unwrap().id, "a2");
        assert!(s.pop_ready("a").is_none());
        assert_eq!(s.ready_functions(), ["b"]);
    }
}
