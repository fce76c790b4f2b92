//! The asynchronous queue: accepted events are written durably before the
//! caller hears of them, then dispatched in parallel within every
//! concurrency limit, retried after failures, and dead-lettered for good.
//!
//! - [`policy`]: retry delays and backoff.
//! - [`schedule`]: the in-memory schedule (ids and counters only).
//! - [`attempt`]: running one attempt and deciding what follows.
//! - [`dead_letters`]: the dead-letter queue and on-failure destinations.
//!
//! Delivery is at least once: an event leaves the store only after an
//! attempt finished; one that was running when kumod or its agent stopped
//! runs again and is counted as a redelivery.

pub mod attempt;
pub mod dead_letters;
pub mod destinations;
pub mod policy;
pub mod remote_targets;
pub mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kumo_proto::control::QueueStats;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::dispatch::concurrency::{ConcurrencyLimiter, Throttle};
use crate::dispatch::invoke::{InvokeError, Invoker};
use crate::state::functions::{FunctionError, Functions};
use crate::state::store::{
    DeadLetterCondition, EventCompanion, EventRecord, QueueStore, StoreError,
};

pub use policy::AsyncConfig;
use schedule::{Queued, Schedule};

/// How often waiting events are checked for age even when nothing happens.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs blocking store work (flushes) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(StoreError {
            op: "run blocking store task",
            key: String::new(),
            message: e.to_string(),
        })
    })
}

pub(crate) struct Shared {
    store: Arc<dyn QueueStore>,
    functions: Functions,
    limiter: ConcurrencyLimiter,
    policy: AsyncConfig,
    schedule: Mutex<Schedule>,
    wake: Notify,
    /// Attempts and dead-letter moves in progress (aborted on stop).
    tasks: Mutex<JoinSet<()>>,
}

impl Shared {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` as a tracked task, reaping finished ones.
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(work);
    }
}

/// The asynchronous queue of kumod.
#[derive(Clone)]
pub struct EventQueue {
    shared: Arc<Shared>,
    dispatcher: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl EventQueue {
    /// Loads every stored event; dispatching begins with [`Self::start`].
    pub async fn open(
        store: Arc<dyn QueueStore>,
        functions: Functions,
        limiter: ConcurrencyLimiter,
        policy: AsyncConfig,
    ) -> Result<Self, StoreError> {
        let loader = store.clone();
        let events = blocking(move || loader.list_events()).await?;
        let mut schedule = Schedule::default();
        let now = now_ms();
        let mut interrupted = 0usize;
        for event in &events {
            if event.dispatched {
                interrupted += 1;
                schedule.redelivered(&event.function);
            }
            schedule.add(queued(event), event.not_before_ms.min(now));
        }
        if !events.is_empty() {
            tracing::info!(
                queued = events.len(),
                interrupted,
                "recovered asynchronous events; those interrupted mid-attempt run again (possible duplicates)"
            );
        }
        let shared = Arc::new(Shared {
            store,
            functions,
            limiter,
            policy,
            schedule: Mutex::new(schedule),
            wake: Notify::new(),
            tasks: Mutex::new(JoinSet::new()),
        });
        Ok(Self {
            shared,
            dispatcher: Arc::default(),
        })
    }

    /// Starts dispatching due events, each attempt run by `invoker`.
    pub fn start(&self, invoker: Invoker) {
        let dispatcher = tokio::spawn(dispatch_loop(self.shared.clone(), invoker));
        let previous = self
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(dispatcher);
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Stores a new (already checked) event and its companion write in one
    /// durable transaction and schedules it now; the id is also the request
    /// id of every attempt. Callers outside the queue go through
    /// [`Invoker::invoke`]. Returns its id, or `None` when the
    /// companion is a delivery already queued before.
    pub async fn submit(
        &self,
        event: NewEvent,
        companion: EventCompanion,
    ) -> Result<Option<String>, InvokeError> {
        enqueue(&self.shared, event, companion).await
    }

    /// A function's queue counters and dead-letter count.
    pub fn stats(&self, function: &str) -> Result<QueueStats, FunctionError> {
        let counts = self.shared.schedule().counts(function);
        let dead_letters = self.shared.store.count_dead_letters(function)?;
        Ok(QueueStats {
            queued: counts.queued,
            in_flight: counts.in_flight,
            dead_letters,
            redeliveries: counts.redeliveries,
        })
    }

    /// Stops dispatching and abandons running attempts; their events stay
    /// stored and run again at the next start (at least once).
    pub async fn stop(&self) {
        let dispatcher = self
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(dispatcher) = dispatcher {
            dispatcher.abort();
            let _ = dispatcher.await;
        }
        let mut tasks =
            std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// An event to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Function name.
    pub function: String,
    /// Qualifier, if any.
    pub qualifier: Option<String>,
    /// JSON payload.
    pub payload: String,
    /// The dead letter it replays, or "".
    pub replay_of: String,
}

pub(crate) async fn enqueue(
    shared: &Arc<Shared>,
    new: NewEvent,
    companion: EventCompanion,
) -> Result<Option<String>, InvokeError> {
    let now = now_ms();
    let NewEvent {
        function,
        qualifier,
        payload,
        replay_of,
    } = new;
    let event = EventRecord {
        id: uuid::Uuid::new_v4().to_string(),
        function,
        qualifier,
        payload,
        accepted_ms: now,
        not_before_ms: now,
        attempts: 0,
        backoffs: 0,
        dispatched: false,
        last_error_type: String::new(),
        last_error_message: String::new(),
        last_response: String::new(),
        replay_of,
    };
    let store = shared.store.clone();
    let stored = event.clone();
    let written = blocking(move || store.put_event_with(&stored, &companion))
        .await
        .map_err(|e| InvokeError::Queue(e.to_string()))?;
    if !written {
        return Ok(None);
    }
    shared.schedule().add(queued(&event), now);
    shared.wake.notify_one();
    Ok(Some(event.id))
}

/// A due event leaves the queue without an attempt: its function was
/// deleted (the event goes with it) or it is older than its maximum age
/// (dead-lettered).
fn leave_without_attempt(shared: &Arc<Shared>, event: Queued, function_deleted: bool) {
    if function_deleted {
        shared.schedule().dropped(&event.function);
        shared.spawn(attempt::discard(shared.clone(), event));
    } else {
        shared.schedule().started(&event.function);
        shared.spawn(dead_letters::dead_letter_by_id(
            shared.clone(),
            event,
            DeadLetterCondition::EventAgeExceeded,
        ));
    }
}

fn queued(event: &EventRecord) -> Queued {
    Queued {
        id: event.id.clone(),
        function: event.function.clone(),
        accepted_ms: event.accepted_ms,
    }
}

/// Starts every due event that has a concurrency slot; sleeps until the
/// next due time, a new event, a freed slot, or the age sweep.
async fn dispatch_loop(shared: Arc<Shared>, invoker: Invoker) {
    let mut last_sweep = std::time::Instant::now();
    let mut rotation = 0usize;
    loop {
        let limiter = shared.limiter.clone();
        let released = limiter.released().notified();
        let woken = shared.wake.notified();
        tokio::pin!(released, woken);
        released.as_mut().enable();

        let now = now_ms();
        shared.schedule().promote_due(now);
        let max_age_of = |function: &str| {
            shared
                .functions
                .get_record(function)
                .ok()
                .map(|r| i64::from(r.config.max_event_age_seconds) * 1000)
        };
        // Events stuck behind a throttled head are checked for their age
        // (and deleted functions) on the sweep, not on every wake.
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            last_sweep = std::time::Instant::now();
            let mut max_ages: HashMap<String, Option<i64>> = HashMap::new();
            let leaving = shared.schedule().remove_ready_where(|event| {
                let max_age = *max_ages
                    .entry(event.function.clone())
                    .or_insert_with(|| max_age_of(&event.function));
                max_age.is_none_or(|max_age| now - event.accepted_ms > max_age)
            });
            for event in leaving {
                let deleted = max_ages.get(&event.function).copied().flatten().is_none();
                leave_without_attempt(&shared, event, deleted);
            }
        }
        let mut functions = shared.schedule().ready_functions();
        if !functions.is_empty() {
            // Start with a different function each time, so none starves
            // the others of the account's unreserved concurrency.
            let len = functions.len();
            functions.rotate_left(rotation % len);
            rotation = rotation.wrapping_add(1);
        }
        for function in functions {
            let max_age = max_age_of(&function);
            loop {
                let Some(event) = shared.schedule().pop_ready(&function) else {
                    break;
                };
                let Some(max_age) = max_age else {
                    leave_without_attempt(&shared, event, true);
                    continue;
                };
                if now - event.accepted_ms > max_age {
                    leave_without_attempt(&shared, event, false);
                    continue;
                }
                match limiter.try_acquire(&event.function) {
                    Ok(permit) => {
                        shared.schedule().started(&event.function);
                        shared.spawn(attempt::run(shared.clone(), invoker.clone(), event, permit));
                    }
                    Err(Throttle::Disabled { .. }) => {
                        shared.schedule().started(&event.function);
                        shared.spawn(dead_letters::dead_letter_by_id(
                            shared.clone(),
                            event,
                            DeadLetterCondition::ZeroReservedConcurrency,
                        ));
                    }
                    Err(_) => {
                        // Throttled: so is everything behind it.
                        shared.schedule().unpop_ready(event);
                        break;
                    }
                }
            }
        }
        let (next_due, has_blocked) = {
            let schedule = shared.schedule();
            (schedule.next_due(), schedule.has_ready())
        };
        let mut sleep_ms = next_due.map_or(i64::MAX, |due| (due - now_ms()).max(0));
        if has_blocked {
            sleep_ms = sleep_ms.min(SWEEP_INTERVAL.as_millis() as i64);
        }
        let sleep = tokio::time::sleep(Duration::from_millis(sleep_ms.clamp(0, 3_600_000) as u64));
        tokio::select! {
            _ = sleep => {}
            _ = &mut released => {}
            _ = &mut woken => {}
        }
    }
}
