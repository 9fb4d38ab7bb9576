//! The leadership loop: campaign, lead, lose or resign, campaign again.
//!
//! While this control plane leads, a coordinator task runs for the term
//! ([`Coordinator::lead`]), started from the state the previous leader
//! persisted, and every change of the owners is saved in order by a
//! persister task fenced by the term. When the term ends (the lease could
//! not be kept, e.g. etcd is away) the coordinator stops, its member streams
//! end, and scrapers keep running their last assignment until a leader is
//! back. Without etcd the election is in memory and the first campaign wins.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::coordinator::{Coordinator, CoordinatorOptions};
use crate::discovery::DiscoveredTargets;
use crate::ha::{Ha, HaError, Leadership, StateChange, StateStore};
use crate::metrics;

/// Campaigns and leads until `shutdown`; resigns on the way out.
pub async fn run(
    ha: Ha,
    coordinator: Coordinator,
    options: CoordinatorOptions,
    discovered: watch::Receiver<Arc<DiscoveredTargets>>,
    endpoint: String,
    shutdown: CancellationToken,
) {
    loop {
        let leadership = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = ha.election.campaign(&endpoint) => match r {
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
        let (persist_tx, persist_rx) = mpsc::unbounded_channel();
        tokio::spawn(persist(ha.state.clone(), leadership.clone(), persist_rx));
        let term = shutdown.child_token();
        let term_options = CoordinatorOptions {
            restored: (!restored.owners.is_empty()).then_some(restored),
            persist: Some(persist_tx),
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

/// Saves changes in order while the term lasts; a failed save is retried,
/// so a later change never lands before an earlier one.
async fn persist(
    store: Arc<dyn StateStore>,
    leadership: Leadership,
    mut changes: mpsc::UnboundedReceiver<StateChange>,
) {
    while let Some(change) = changes.recv().await {
        loop {
            if leadership.lost.is_cancelled() {
                return;
            }
            match store.save(&leadership, change.clone()).await {
                Ok(()) => break,
                Err(HaError::NotLeader { .. }) => return,
                Err(error) => {
                    ::metrics::counter!(metrics::PERSIST_FAILURES).increment(1);
                    tracing::warn!(%error, "persisting the assignment failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
