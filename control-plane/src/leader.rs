//! The leadership loop: campaign, lead, lose or resign, campaign again.
//!
//! While this control plane leads, a coordinator task runs for the term
//! ([`Coordinator::lead`]), started from the state the previous leader
//! persisted, and every change of the owners is saved by a persister task
//! fenced by the term. Changes wait in a [`PersistQueue`]
//! (`ha/persist_queue.rs`) that merges them per target, so a slow etcd
//! costs at most one entry per target, and the coordinator never waits for
//! it. When the term ends (the lease could not be kept, e.g. etcd is away)
//! the coordinator stops, its member streams end, and scrapers keep running
//! their last assignment until a leader is back. Without etcd the election
//! is in memory and the first campaign wins.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::coordinator::{Coordinator, CoordinatorOptions};
use crate::discovery::DiscoveredTargets;
use crate::ha::advertised::Advertised;
use crate::ha::{Ha, HaError, Leadership, PersistQueue, StateStore};
use crate::metrics;

/// Campaigns and leads until `shutdown`; resigns on the way out.
pub async fn run(
    ha: Ha,
    coordinator: Coordinator,
    options: CoordinatorOptions,
    discovered: watch::Receiver<Arc<DiscoveredTargets>>,
    advertised: Advertised,
    shutdown: CancellationToken,
) {
    let endpoint = advertised.grpc.clone();
    let value = advertised.encode();
    loop {
        let leadership = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = ha.election.campaign(&value) => match r {
                Ok(l) => l,
                Err(error) => {
                    tracing::error!(%error, "campaign failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let Some(restored) = load(ha.state.as_ref(), &leadership, &shutdown).await else {
            continue;
        };
        tracing::info!(term = leadership.term, %endpoint, owners = restored.owners.len(), "leading");
        ::metrics::gauge!(metrics::LEADER).set(1.0);
        ::metrics::counter!(metrics::LEADER_TERMS).increment(1);
        let queue = PersistQueue::default();
        tokio::spawn(persist(ha.state.clone(), leadership.clone(), queue.clone()));
        let term = shutdown.child_token();
        let term_options = CoordinatorOptions {
            restored: (!restored.owners.is_empty()).then_some(restored),
            persist: Some(queue),
            ..options.clone()
        };
        coordinator.lead(term_options, discovered.clone(), term.clone());
        tokio::select! {
            _ = leadership.lost.cancelled() => {
                tracing::warn!(term = leadership.term, "leadership lost; scrapers keep their last assignment");
            }
            _ = shutdown.cancelled() => {
                if let Err(error) = ha.election.resign(&leadership).await {
                    tracing::warn!(%error, "resign failed; the lease will expire");
                }
            }
        }
        term.cancel();
        coordinator.step_down();
        ::metrics::gauge!(metrics::LEADER).set(0.0);
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Loads the persisted state, retrying while the term lasts.
async fn load(
    store: &dyn StateStore,
    leadership: &Leadership,
    shutdown: &CancellationToken,
) -> Option<crate::ha::PersistedState> {
    loop {
        tokio::select! {
            _ = leadership.lost.cancelled() => return None,
            _ = shutdown.cancelled() => return None,
            r = store.load() => match r {
                Ok(state) => return Some(state),
                Err(error) => tracing::warn!(%error, "loading persisted state failed; retrying"),
            },
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Saves what is queued while the term lasts; a failed save is put back
/// under newer changes and retried.
async fn persist(store: Arc<dyn StateStore>, leadership: Leadership, queue: PersistQueue) {
    loop {
        tokio::select! {
            _ = leadership.lost.cancelled() => return,
            _ = queue.changed() => {}
        }
        while let Some(change) = queue.take() {
            match store.save(&leadership, change.clone()).await {
                Ok(()) => {}
                Err(HaError::NotLeader { .. }) => return,
                Err(error) => {
                    ::metrics::counter!(metrics::PERSIST_FAILURES).increment(1);
                    tracing::warn!(%error, "persisting the assignment failed; retrying");
                    queue.restore(change);
                    tokio::select! {
                        _ = leadership.lost.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }
}
