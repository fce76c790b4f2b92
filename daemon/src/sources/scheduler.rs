//! Firing schedule triggers. Each fire queues one asynchronous event and,
//! in the same store transaction, records the due time it handled — so a
//! restart neither fires a due time twice nor forgets one. Due times that
//! passed while kumod was not running follow the `missed_fires` policy.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kumo_triggers::schedule_expression::{self, ScheduleExpression};
use kumo_triggers::scheduled_event::scheduled_event;
use serde::{Deserialize, Serialize};

use super::registry::Triggers;
use crate::dispatch::invoke::{
    InvocationType, InvokeError, InvokeRequest, Invoked, Invoker, Source,
};
use crate::state::functions::FunctionError;
use crate::state::store::{EventCompanion, TriggerRecord, TriggerSource};

/// Longest sleep between looks at the schedules.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Most fires queued at once when many schedules are due together.
const MAX_CONCURRENT_FIRES: usize = 64;
/// Most missed due times counted per trigger (a `rate(1 minute)` down for
/// a week has ~10,000).
const MAX_MISSED_COUNTED: usize = 100_000;

/// What happens to due times that passed while kumod was not running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedFires {
    /// Skip them (logged), continue with the next due time.
    #[default]
    Skip,
    /// Fire once for the latest missed due time, then continue.
    FireOnce,
}

/// What to do with one schedule now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing due; the next due time, if any.
    Wait(Option<DateTime<Utc>>),
    /// Fire for this due time.
    Fire(DateTime<Utc>),
    /// Due times passed while kumod was down: how many, and the latest.
    Missed {
        /// How many due times were missed (capped).
        count: usize,
        /// The latest of them.
        latest: DateTime<Utc>,
    },
}

/// A schedule trigger with its expression parsed once, when it is loaded,
/// rather than at every look.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The trigger as stored (fires update `last_due_ms` here too).
    pub record: TriggerRecord,
    /// The parsed expression; None when it no longer parses (never fires).
    parsed: Option<ScheduleExpression>,
}

impl Entry {
    /// Parses the record's expression.
    pub fn new(record: TriggerRecord) -> Self {
        let parsed = match &record.source {
            TriggerSource::Schedule { expression, .. } => {
                schedule_expression::parse(expression).ok()
            }
            TriggerSource::Bucket { .. }
            | TriggerSource::Http { .. }
            | TriggerSource::Sqs(_)
            | TriggerSource::Sns(_) => None,
        };
        Self { record, parsed }
    }

    /// Decides what this schedule needs at `now`; `started` is when this
    /// kumod started (due times before it were missed, not late).
    pub fn step(&self, now: DateTime<Utc>, started: DateTime<Utc>) -> Step {
        let (Some(parsed), TriggerSource::Schedule { last_due_ms, .. }) =
            (&self.parsed, &self.record.source)
        else {
            return Step::Wait(None);
        };
        let anchor = DateTime::from_timestamp_millis(self.record.created_ms).unwrap_or_default();
        let from = last_due_ms
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(anchor);
        let Some(due) = parsed.next_after(from, anchor) else {
            return Step::Wait(None);
        };
        if due > now {
            return Step::Wait(Some(due));
        }
        if due >= started - chrono::Duration::seconds(1) {
            return Step::Fire(due);
        }
        let mut latest = due;
        let mut count = 1;
        while count < MAX_MISSED_COUNTED {
            match parsed.next_after(latest, anchor) {
                Some(next) if next < started => {
                    latest = next;
                    count += 1;
                }
                _ => break,
            }
        }
        Step::Missed { count, latest }
    }
}

/// The loaded schedules and when each is next due: a look at the
/// schedules touches only those due, so many triggers cost little between
/// their fires.
#[derive(Default)]
struct Timetable {
    entries: Vec<Entry>,
    /// (due ms, index into `entries`); each entry at most once.
    due: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Timetable {
    /// Every entry is looked at first thing (to find its due time, or to
    /// handle fires missed while kumod was down).
    fn new(records: Vec<TriggerRecord>) -> Self {
        let entries: Vec<Entry> = records.into_iter().map(Entry::new).collect();
        let due = (0..entries.len()).map(|i| Reverse((i64::MIN, i))).collect();
        Self { entries, due }
    }

    /// Takes the indices of the entries due at `now`.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<usize> {
        let now_ms = now.timestamp_millis();
        let mut taken = Vec::new();
        while let Some(Reverse((due_ms, index))) = self.due.peek().copied() {
            if due_ms > now_ms {
                break;
            }
            self.due.pop();
            taken.push(index);
        }
        taken
    }

    /// The earliest due time of any entry.
    fn next_due(&self) -> Option<DateTime<Utc>> {
        self.due.peek().map(|Reverse((due_ms, _))| {
            DateTime::from_timestamp_millis(*due_ms).unwrap_or_default()
        })
    }
}

/// Runs the schedules until the task is dropped: sleeps until the earliest
/// due time (or a trigger change), then fires what is due.
pub async fn run(triggers: Triggers, invoker: Invoker, policy: MissedFires) {
    let started = Utc::now();
    // The schedules, read again only when the registry changes them; fires
    // update this copy as they update the store.
    let mut timetable = Timetable::default();
    let mut stale = true;
    loop {
        let changed = triggers.changed.notified();
        if stale {
            match load_schedules(&triggers) {
                Ok(loaded) => {
                    timetable = Timetable::new(loaded);
                    stale = false;
                }
                Err(err) => tracing::error!(%err, "reading triggers failed; retrying"),
            }
        }
        let next = if stale {
            Some(Utc::now() + chrono::Duration::seconds(1))
        } else {
            tick(&triggers, &invoker, policy, started, &mut timetable).await;
            timetable.next_due()
        };
        let sleep = match next {
            Some(due) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = changed => stale = true,
        }
    }
}

/// The enabled schedule triggers in the store.
fn load_schedules(
    triggers: &Triggers,
) -> Result<Vec<TriggerRecord>, crate::state::store::StoreError> {
    Ok(triggers
        .store
        .list_triggers()?
        .into_iter()
        .filter(|r| r.enabled && matches!(r.source, TriggerSource::Schedule { .. }))
        .collect())
}

/// Handles every entry that is due, concurrently (so fires due at the same
/// time share store flushes instead of queueing behind each other's), and
/// files each under its next due time.
async fn tick(
    triggers: &Triggers,
    invoker: &Invoker,
    policy: MissedFires,
    started: DateTime<Utc>,
    timetable: &mut Timetable,
) {
    let mut due = timetable.take_due(Utc::now());
    if due.is_empty() {
        return;
    }
    due.sort_unstable();
    due.dedup();
    // One `&mut` per due entry, in index order.
    let mut work = Vec::with_capacity(due.len());
    let mut rest: &mut [Entry] = &mut timetable.entries;
    let mut offset = 0;
    for index in due {
        let tail = std::mem::take(&mut rest);
        let Some((entry, tail)) = tail
            .get_mut(index - offset..)
            .and_then(<[Entry]>::split_first_mut)
        else {
            break;
        };
        rest = tail;
        offset = index + 1;
        work.push(async move {
            (
                index,
                handle(triggers, invoker, policy, started, entry).await,
            )
        });
    }
    let handled: Vec<(usize, Option<DateTime<Utc>>)> = futures::stream::iter(work)
        .buffer_unordered(MAX_CONCURRENT_FIRES)
        .collect()
        .await;
    for (index, next) in handled {
        if let Some(next) = next {
            timetable
                .due
                .push(Reverse((next.timestamp_millis(), index)));
        }
    }
}

/// Fires every due time of one schedule; returns when to look at it again
/// (None: never).
async fn handle(
    triggers: &Triggers,
    invoker: &Invoker,
    policy: MissedFires,
    started: DateTime<Utc>,
    entry: &mut Entry,
) -> Option<DateTime<Utc>> {
    let retry = || Some(Utc::now() + chrono::Duration::seconds(1));
    loop {
        let updated = match entry.step(Utc::now(), started) {
            Step::Wait(next) => return next,
            Step::Fire(due) => fire(triggers, invoker, &entry.record, due).await,
            Step::Missed { count, latest } => {
                let record = &entry.record;
                tracing::warn!(trigger = %record.name, missed = count, latest = %latest,
                    policy = ?policy, "schedule fires were missed while kumod was not running");
                match policy {
                    MissedFires::Skip => skip_to(triggers, record, latest),
                    MissedFires::FireOnce => fire(triggers, invoker, record, latest).await,
                }
            }
        };
        match updated {
            Some(updated) => entry.record = updated,
            None => return retry(),
        }
    }
}

fn with_last_due(record: &TriggerRecord, due: DateTime<Utc>) -> TriggerRecord {
    let mut updated = record.clone();
    if let TriggerSource::Schedule { last_due_ms, .. } = &mut updated.source {
        *last_due_ms = Some(due.timestamp_millis());
    }
    updated
}

fn skip_to(
    triggers: &Triggers,
    record: &TriggerRecord,
    latest: DateTime<Utc>,
) -> Option<TriggerRecord> {
    let updated = with_last_due(record, latest);
    match triggers.store.put_trigger(&updated) {
        Ok(()) => Some(updated),
        Err(err) => {
            tracing::error!(%err, trigger = %record.name, "recording skipped fires failed");
            None
        }
    }
}

/// Queues one fire; returns the updated record, or None if it failed.
async fn fire(
    triggers: &Triggers,
    invoker: &Invoker,
    record: &TriggerRecord,
    due: DateTime<Utc>,
) -> Option<TriggerRecord> {
    let TriggerSource::Schedule { input, .. } = &record.source else {
        return None;
    };
    let mut updated = with_last_due(record, due);
    let payload = match input {
        Some(input) => input.clone(),
        None => scheduled_event(
            &uuid::Uuid::new_v4().to_string(),
            due,
            &triggers.region,
            &triggers.account_id,
            &record.name,
        )
        .to_string(),
    };
    updated.fired += 1;
    let invoke = InvokeRequest {
        qualifier: record.qualifier.clone(),
        invocation_type: InvocationType::Event,
        companion: EventCompanion::Fired(Box::new(updated.clone())),
        ..InvokeRequest::new(Source::Schedule, record.function.clone(), payload.into())
    };
    match invoker.invoke(invoke).await {
        Ok(invoked) => {
            triggers
                .metrics
                .schedule_fire(&record.name, &record.function);
            let event = match &invoked {
                Invoked::Queued(id) => id.as_str(),
                Invoked::AlreadyQueued | Invoked::Completed(_) => "",
            };
            tracing::info!(trigger = %record.name, due = %due, event, "schedule fired");
            Some(updated)
        }
        Err(err @ InvokeError::Function(FunctionError::NotFound { .. })) => {
            tracing::warn!(%err, trigger = %record.name, function = %record.function,
                "schedule fire skipped: the function does not exist");
            skip_to(triggers, record, due)
        }
        Err(err) => {
            tracing::error!(%err, trigger = %record.name, "queueing a schedule fire failed; retrying");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn schedule(expression: &str, created: &str, last_due: Option<&str>) -> TriggerRecord {
        TriggerRecord {
            name: "t".into(),
            function: "f".into(),
            qualifier: None,
            enabled: true,
            created_ms: at(created).timestamp_millis(),
            source: TriggerSource::Schedule {
                expression: expression.into(),
                input: None,
                last_due_ms: last_due.map(|d| at(d).timestamp_millis()),
            },
            fired: 0,
        }
    }

    #[test]
    fn a_due_time_fires_once_and_then_waits() {
        let started = at("2026-01-01T00:00:00Z");
        let record = schedule("rate(1 minute)", "2026-01-01T00:00:30Z", None);
        assert_eq!(
            Entry::new(record.clone()).step(at("2026-01-01T00:01:00Z"), started),
            Step::Wait(Some(at("2026-01-01T00:01:30Z")))
        );
        assert_eq!(
            Entry::new(record.clone()).step(at("2026-01-01T00:01:30.2Z"), started),
            Step::Fire(at("2026-01-01T00:01:30Z"))
        );
        let fired = with_last_due(&record, at("2026-01-01T00:01:30Z"));
        assert_eq!(
            Entry::new(fired).step(at("2026-01-01T00:01:31Z"), started),
            Step::Wait(Some(at("2026-01-01T00:02:30Z")))
        );
    }

    #[test]
    fn due_times_before_start_are_missed_not_fired() {
        let record = schedule(
            "cron(0/5 * * * ? *)",
            "2026-01-01T00:00:00Z",
            Some("2026-01-01T00:05:00Z"),
        );
        // kumod was down from 00:06 to 00:31.
        let started = at("2026-01-01T00:31:00Z");
        assert_eq!(
            Entry::new(record.clone()).step(at("2026-01-01T00:31:00Z"), started),
            Step::Missed {
                count: 5,
                latest: at("2026-01-01T00:30:00Z")
            }
        );
        let skipped = with_last_due(&record, at("2026-01-01T00:30:00Z"));
        assert_eq!(
            Entry::new(skipped).step(at("2026-01-01T00:31:00Z"), started),
            Step::Wait(Some(at("2026-01-01T00:35:00Z")))
        );
    }

    #[test]
    fn an_expression_that_no_longer_parses_never_fires() {
        let record = schedule("rate(0 minutes)", "2026-01-01T00:00:00Z", None);
        let started = at("2026-01-01T00:00:00Z");
        assert_eq!(
            Entry::new(record).step(at("2026-01-02T00:00:00Z"), started),
            Step::Wait(None)
        );
    }

    #[test]
    fn the_timetable_hands_out_only_what_is_due() {
        let mut timetable = Timetable::new(vec![
            schedule("rate(1 minute)", "2026-01-01T00:00:00Z", None),
            schedule("rate(5 minutes)", "2026-01-01T00:00:00Z", None),
        ]);
        assert_eq!(timetable.take_due(at("2026-01-01T00:00:00Z")), [0, 1]);
        for (index, due) in [(0, "2026-01-01T00:01:00Z"), (1, "2026-01-01T00:05:00Z")] {
            timetable
                .due
                .push(Reverse((at(due).timestamp_millis(), index)));
        }
        assert_eq!(timetable.next_due(), Some(at("2026-01-01T00:01:00Z")));
        assert!(timetable.take_due(at("2026-01-01T00:00:59Z")).is_empty());
        assert_eq!(timetable.take_due(at("2026-01-01T00:01:00Z")), [0]);
        assert_eq!(timetable.next_due(), Some(at("2026-01-01T00:05:00Z")));
    }
}
