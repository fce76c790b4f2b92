//! `/metrics`: kumod's recorded counters and histograms plus gauges read
//! at scrape time — running invocations and queues per function, dead
//! letters, webhook counters, queue sources' counters per trigger, and
//! every agent's instances and memory.

use kumo_proto::model::LATEST;

use crate::dispatch::agents::AgentRegistry;
use crate::dispatch::async_queue::EventQueue;
use crate::dispatch::concurrency::ConcurrencyLimiter;
use crate::metrics::{Gauge, Metrics};
use crate::sources::sqs::QueueStats;
use crate::sources::webhook::WebhookCounters;
use crate::state::functions::Functions;

/// Everything a scrape reads.
#[derive(Clone)]
pub struct Scraper {
    /// The function registry.
    pub functions: Functions,
    /// Running invocations per function.
    pub limiter: ConcurrencyLimiter,
    /// The recorded counters and histograms.
    pub metrics: Metrics,
    /// The asynchronous queue.
    pub queue: EventQueue,
    /// Connected agents.
    pub agents: AgentRegistry,
    /// The MinIO webhook's counters.
    pub webhook: std::sync::Arc<WebhookCounters>,
    /// The queue sources' counters.
    pub queue_sources: QueueStats,
}

fn gauge(name: &'static str, help: &'static str) -> Gauge {
    Gauge {
        name,
        help,
        samples: Vec::new(),
    }
}

impl Scraper {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut running = gauge(
            "kumo_concurrent_executions",
            "Invocations of the function running now.",
        );
        let mut queued = gauge(
            "kumo_async_queue_depth",
            "Accepted asynchronous events waiting to run.",
        );
        let mut in_flight = gauge("kumo_async_in_flight", "Asynchronous events running now.");
        let mut dead = gauge(
            "kumo_dead_letters",
            "Events in the function's dead-letter queue.",
        );
        let mut redelivered = gauge(
            "kumo_async_redeliveries",
            "Events run again after kumod or an agent stopped mid-attempt, since kumod started.",
        );
        let functions = self.functions.list().unwrap_or_default();
        for info in &functions {
            let name = info
                .config
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let labels = vec![("function", name.clone())];
            running
                .samples
                .push((labels.clone(), f64::from(self.limiter.running(&name))));
            if let Ok(stats) = self.queue.stats(&name) {
                queued.samples.push((labels.clone(), stats.queued as f64));
                in_flight
                    .samples
                    .push((labels.clone(), stats.in_flight as f64));
                dead.samples
                    .push((labels.clone(), stats.dead_letters as f64));
                redelivered
                    .samples
                    .push((labels, stats.redeliveries as f64));
            }
        }
        let mut webhook = gauge(
            "kumo_webhook_requests",
            "MinIO webhook requests and events since kumod started, by result.",
        );
        for (result, value) in self.webhook.snapshot() {
            webhook
                .samples
                .push((vec![("result", result.to_string())], value as f64));
        }
        let mut queue_messages = gauge(
            "kumo_queue_source_messages",
            "Messages of the SQS trigger since kumod started, by result (processed, failed, filtered).",
        );
        let mut queue_batches = gauge(
            "kumo_queue_source_batches",
            "Batches of the SQS trigger: in flight now, throttled since kumod started.",
        );
        for (trigger, stats) in self.queue_sources.all() {
            for (result, value) in [
                ("processed", stats.processed),
                ("failed", stats.failed),
                ("filtered", stats.filtered),
            ] {
                queue_messages.samples.push((
                    vec![("trigger", trigger.clone()), ("result", result.to_string())],
                    value as f64,
                ));
            }
            for (state, value) in [
                ("in_flight", stats.in_flight),
                ("throttled", stats.throttled),
            ] {
                queue_batches.samples.push((
                    vec![("trigger", trigger.clone()), ("state", state.to_string())],
                    value as f64,
                ));
            }
        }
        let mut agents = gauge("kumo_agents", "Connected agents.");
        let mut instances = gauge(
            "kumo_agent_instances",
            "Instances (warm or busy) on the agent.",
        );
        let mut agent_running = gauge(
            "kumo_agent_running_invocations",
            "Invocations running on the agent.",
        );
        let mut reserved = gauge(
            "kumo_agent_memory_reserved_bytes",
            "Memory reserved by the agent's instances.",
        );
        let mut allocatable = gauge(
            "kumo_agent_memory_allocatable_bytes",
            "Memory the agent may give instances.",
        );
        let connected: Vec<_> = self
            .agents
            .snapshot()
            .into_iter()
            .filter(|a| a.state != crate::dispatch::agents::NodeState::Lost)
            .collect();
        agents.samples.push((Vec::new(), connected.len() as f64));
        for agent in &connected {
            let labels = vec![("agent", agent.registration.agent_id.clone())];
            instances
                .samples
                .push((labels.clone(), f64::from(agent.heartbeat.instances)));
            agent_running
                .samples
                .push((labels.clone(), f64::from(agent.running)));
            reserved.samples.push((
                labels.clone(),
                (agent.heartbeat.memory_reserved_mb * 1024 * 1024) as f64,
            ));
            allocatable.samples.push((
                labels,
                (agent.registration.allocatable_memory_mb * 1024 * 1024) as f64,
            ));
        }
        let mut info = gauge("kumo_build_info", "kumod's version.");
        info.samples.push((
            vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("latest", LATEST.to_string()),
            ],
            1.0,
        ));
        self.metrics.render(&[
            info,
            running,
            queued,
            in_flight,
            dead,
            redelivered,
            webhook,
            queue_messages,
            queue_batches,
            agents,
            instances,
            agent_running,
            reserved,
            allocatable,
        ])
    }
}
