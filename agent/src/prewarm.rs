//! The node's supplies of pre-started sandboxes (see
//! [`crate::instance::prewarmed`]), one per kind and network mode: python3
//! kept at `prewarm_python_instances`, Node.js at `prewarm_node_instances`,
//! python3 in the `outbound` mode (links to the bridge included) at
//! `prewarm_python_outbound_instances`, each refilled in the background
//! after each claim, so a cold start takes one instead of building a
//! sandbox and starting an interpreter.
//!
//! Blanks are not instances: they hold a uid from the pool but no memory
//! reservation (an idle interpreter is 10-50 MB) until claimed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::instance::prewarmed::{self, Blank, BlankKind};
use crate::instance::InstanceSettings;
use crate::pool::Pool;
use crate::sandbox::NetworkMode;

/// Pause after a blank failed to start.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Pause before replacing a claimed blank, so that starting the next one
/// (an interpreter start-up's worth of CPU) does not compete with the cold
/// start that claimed it.
const REFILL_DELAY: Duration = Duration::from_millis(100);

/// Pre-started sandboxes of one kind waiting for functions.
pub struct Prewarm {
    settings: InstanceSettings,
    pool: Arc<Pool>,
    kind: BlankKind,
    network: NetworkMode,
    target: usize,
    blanks: Mutex<Vec<Blank>>,
    wake: Notify,
    stopped: AtomicBool,
}

impl Prewarm {
    /// Keeps `target` blanks of `kind` in network mode `network` ready
    /// (refilled by a background task that ends with the returned handle).
    pub fn start(
        settings: InstanceSettings,
        pool: Arc<Pool>,
        (kind, network): (BlankKind, NetworkMode),
        target: usize,
    ) -> Arc<Prewarm> {
        let prewarm = Arc::new(Prewarm {
            settings,
            pool,
            kind,
            network,
            target,
            blanks: Mutex::new(Vec::new()),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
        });
        tokio::spawn(refill(Arc::downgrade(&prewarm)));
        prewarm
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Blank>> {
        self.blanks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kind and network mode of the blanks it keeps.
    pub fn serves(&self) -> (BlankKind, NetworkMode) {
        (self.kind, self.network)
    }

    /// Blanks ready now.
    pub fn ready(&self) -> usize {
        self.lock().len()
    }

    /// A live blank, if one is ready (dead ones are discarded).
    pub fn take(&self) -> Option<Blank> {
        let taken = loop {
            let Some(blank) = self.lock().pop() else {
                break None;
            };
            if blank.is_alive() {
                break Some(blank);
            }
            self.pool.give_back_uid(blank.uid);
            tokio::spawn(blank.destroy());
        };
        self.wake.notify_one();
        taken
    }

    /// Stops every blank and the refill task.
    pub async fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let blanks: Vec<Blank> = std::mem::take(&mut *self.lock());
        for blank in blanks {
            self.pool.give_back_uid(blank.uid);
            blank.destroy().await;
        }
    }
}

async fn refill(prewarm: Weak<Prewarm>) {
    loop {
        let Some(this) = prewarm.upgrade() else {
            return;
        };
        if this.stopped.load(Ordering::SeqCst) {
            return;
        }
        if this.ready() >= this.target {
            // Re-check now and then so the task ends after shutdown (the
            // wait holds the handle, so keep it short).
            let woken =
                tokio::time::timeout(Duration::from_millis(500), this.wake.notified()).await;
            if woken.is_ok() {
                tokio::time::sleep(REFILL_DELAY).await;
            }
            continue;
        }
        let uid = this.pool.take_uid();
        match prewarmed::start_blank(&this.settings, this.serves(), uid).await {
            Ok(blank) if this.stopped.load(Ordering::SeqCst) => {
                this.pool.give_back_uid(blank.uid);
                blank.destroy().await;
            }
            Ok(blank) => {
                if let Some(after) = this.settings.idle_freeze_after {
                    blank.park(after);
                }
                this.lock().push(blank);
                tracing::debug!(kind = this.kind.label(), network = %this.network, "pre-started sandbox ready");
            }
            Err(err) => {
                this.pool.give_back_uid(uid);
                tracing::warn!(%err, kind = this.kind.label(), network = %this.network,
                    "pre-starting a sandbox failed");
                drop(this);
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
        }
    }
}
