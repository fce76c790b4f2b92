//! Firing schedule triggers. Each fire queues one asynchronous event and,
//! in the same store transaction, records the due time it handled — so a
//! restart neither fires a due time twice nor forgets one. Due times that
//! passed while kumod was not running follow the `missed_fires` policy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kumo_triggers::schedule_expression;
use kumo_triggers::scheduled_event::scheduled_event;
use serde::{Deserialize, Serialize};

use super::registry::Triggers;
use crate::async_queue::{EventQueue, NewEvent};
use crate::store::{EventCompanion, TriggerRecord, TriggerSource};

/// Longest sleep between looks at the schedules.
const MAX_SLEEP: Duration = Duration::from_secs(60);
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

/// Decides what a schedule needs at `now`; `started` is when this kumod
/// started (due times before it were missed, not late).
pub fn step(record: &TriggerRecord, now: DateTime<Utc>, started: DateTime<Utc>) -> Step {
    let TriggerSource::Schedule {
        expression,
        last_due_ms,
        ..
    } = &record.source
    else {
        return Step::Wait(None);
    };
    let Ok(parsed) = schedule_expression::parse(expression) else {
        return Step::Wait(None);
    };
    let anchor = DateTime::from_timestamp_millis(record.created_ms).unwrap_or_default();
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

/// Runs the schedules until the task is dropped.
pub async fn run(triggers: Triggers, queue: EventQueue, policy: MissedFires) {
    let started = Utc::now();
    // The schedules, read again only when the registry changes them; fires
    // update this copy as they update the store.
    let mut schedules = Vec::new();
    let mut stale = true;
    loop {
        let changed = triggers.changed.notified();
        if stale {
            match load_schedules(&triggers) {
                Ok(loaded) => {
                    schedules = loaded;
                    stale = false;
                }
                Err(err) => tracing::error!(%err, "reading triggers failed; retrying"),
            }
        }
        let next = if stale {
            Some(Utc::now() + chrono::Duration::seconds(1))
        } else {
            tick(&triggers, &queue, policy, started, &mut schedules).await
        };
        let sleep = next
            .and_then(|due| (due - Utc::now()).to_std().ok())
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        let sleep = if next.is_none() { MAX_SLEEP } else { sleep };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = changed => stale = true,
        }
    }
}

/// The enabled schedule triggers in the store.
fn load_schedules(triggers: &Triggers) -> Result<Vec<TriggerRecord>, crate::store::StoreError> {
    Ok(triggers
        .store
        .list_triggers()?
        .into_iter()
        .filter(|r| r.enabled && matches!(r.source, TriggerSource::Schedule { .. }))
        .collect())
}

/// Fires everything due; returns the earliest future due time.
async fn tick(
    triggers: &Triggers,
    queue: &EventQueue,
    policy: MissedFires,
    started: DateTime<Utc>,
    schedules: &mut [TriggerRecord],
) -> Option<DateTime<Utc>> {
    let mut earliest: Option<DateTime<Utc>> = None;
    for record in schedules.iter_mut() {
        // Handle every due time of this trigger before moving on.
        loop {
            match step(record, Utc::now(), started) {
                Step::Wait(next) => {
                    earliest = match (earliest, next) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    break;
                }
                Step::Fire(due) => match fire(triggers, queue, record, due).await {
                    Some(updated) => *record = updated,
                    None => {
                        let retry = Utc::now() + chrono::Duration::seconds(1);
                        earliest = Some(earliest.map_or(retry, |e| e.min(retry)));
                        break;
                    }
                },
                Step::Missed { count, latest } => {
                    tracing::warn!(trigger = %record.name, missed = count, latest = %latest,
                        policy = ?policy, "schedule fires were missed while kumod was not running");
                    let updated = match policy {
                        MissedFires::Skip => skip_to(triggers, record, latest),
                        MissedFires::FireOnce => fire(triggers, queue, record, latest).await,
                    };
                    match updated {
                        Some(updated) => *record = updated,
                        None => break,
                    }
                }
            }
        }
    }
    earliest
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
    queue: &EventQueue,
    record: &TriggerRecord,
    due: DateTime<Utc>,
) -> Option<TriggerRecord> {
    let TriggerSource::Schedule { input, .. } = &record.source else {
        return None;
    };
    let mut updated = with_last_due(record, due);
    if triggers.functions.get_record(&record.function).is_err() {
        tracing::warn!(trigger = %record.name, function = %record.function,
            "schedule fire skipped: the function does not exist");
        return skip_to(triggers, record, due);
    }
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
    let event = NewEvent {
        function: record.function.clone(),
        qualifier: record.qualifier.clone(),
        payload,
        replay_of: String::new(),
    };
    match queue
        .submit(event, EventCompanion::Fired(Box::new(updated.clone())))
        .await
    {
        Ok(id) => {
            triggers
                .metrics
                .schedule_fire(&record.name, &record.function);
            tracing::info!(trigger = %record.name, due = %due, event = id.as_deref().unwrap_or(""), "schedule fired");
            Some(updated)
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
            step(&record, at("2026-01-01T00:01:00Z"), started),
            Step::Wait(Some(at("2026-01-01T00:01:30Z")))
        );
        assert_eq!(
            step(&record, at("2026-01-01T00:01:30.2Z"), started),
            Step::Fire(at("2026-01-01T00:01:30Z"))
        );
        let fired = with_last_due(&record, at("2026-01-01T00:01:30Z"));
        assert_eq!(
            step(&fired, at("2026-01-01T00:01:31Z"), started),
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
            step(&record, at("2026-01-01T00:31:00Z"), started),
            Step::Missed {
                count: 5,
                latest: at("2026-01-01T00:30:00Z")
            }
        );
        let skipped = with_last_due(&record, at("2026-01-01T00:30:00Z"));
        assert_eq!(
            step(&skipped, at("2026-01-01T00:31:00Z"), started),
            Step::Wait(Some(at("2026-01-01T00:35:00Z")))
        );
    }
}
