//! The leadership loop: campaign, lead, lose or resign, campaign again.
//!
//! While this control plane leads, a coordinator task runs for the term
//! ([`Coordinator::lead`]), started from the state the previous leader
//! persisted, and every change of the owners is saved by a persister task
//! fenced by the term. Changes wait in a [`PersistQueue`] that merges them
//! per target, so a slow etcd costs at most one entry per target, and the
//! coordinator never waits for it. When the term ends (the lease could
//! not be kept, e.g. etcd is away) the coordinator stops, its member streams
//! end, and scrapers keep running their last assignment until a leader is
//! back. Without etcd the election is in memory and the first campaign wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::coordinator::{Coordinator, CoordinatorOptions};
use crate::discovery::DiscoveredTargets;
use crate::ha::{Ha, HaError, Leadership, PersistedOwner, StateChange, StateStore};
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

/// Owner changes not yet saved, merged per target (the last change of a
/// target wins) with the highest generation.
#[derive(Clone, Default)]
pub struct PersistQueue {
    inner: Arc<(Mutex<Pending>, Notify)>,
}

#[derive(Default)]
struct Pending {
    generation: u64,
    /// Target id -> its new owner, or `None` when it was removed.
    owners: HashMap<String, Option<PersistedOwner>>,
}

impl std::fmt::Debug for PersistQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.inner.0.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("PersistQueue")
            .field("generation", &p.generation)
            .field("pending", &p.owners.len())
            .finish()
    }
}

impl PersistQueue {
    /// Adds a change; never waits.
    pub fn push(&self, change: StateChange) {
        let (pending, notify) = &*self.inner;
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        p.generation = p.generation.max(change.generation);
        for o in change.upserts {
            p.owners.insert(o.target_id.clone(), Some(o));
        }
        for t in change.removals {
            p.owners.insert(t, None);
        }
        drop(p);
        notify.notify_one();
    }

    /// Takes everything pending as one change; `None` when empty.
    fn take(&self) -> Option<StateChange> {
        let mut p = self.inner.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.owners.is_empty() && p.generation == 0 {
            return None;
        }
        let mut change = StateChange {
            generation: std::mem::take(&mut p.generation),
            ..Default::default()
        };
        for (target, owner) in p.owners.drain() {
            match owner {
                Some(o) => change.upserts.push(o),
                None => change.removals.push(target),
            }
        }
        Some(change)
    }

    /// Puts back a change that could not be saved, under anything newer.
    fn restore(&self, change: StateChange) {
        let mut p = self.inner.0.lock().unwrap_or_else(|e| e.into_inner());
        p.generation = p.generation.max(change.generation);
        for o in change.upserts {
            p.owners.entry(o.target_id.clone()).or_insert(Some(o));
        }
        for t in change.removals {
            p.owners.entry(t).or_insert(None);
        }
    }
}

/// Saves what is queued while the term lasts; a failed save is put back
/// under newer changes and retried.
async fn persist(store: Arc<dyn StateStore>, leadership: Leadership, queue: PersistQueue) {
    loop {
        tokio::select! {
            _ = leadership.lost.cancelled() => return,
            _ = queue.inner.1.notified() => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(t: &str, m: &str, g: u64) -> PersistedOwner {
        PersistedOwner {
            target_id: t.into(),
            member: m.into(),
            generation: g,
        }
    }

    #[test]
    fn queued_changes_merge_per_target_and_failed_ones_go_under_newer() {
        let q = PersistQueue::default();
        assert!(q.take().is_none());
        q.push(StateChange {
            generation: 5,
            upserts: vec![owner("a", "s1", 5), owner("b", "s1", 5)],
            removals: vec![],
        });
        q.push(StateChange {
            generation: 6,
            upserts: vec![owner("a", "s2", 6)],
            removals: vec!["b".into()],
        });
        let mut c = q.take().unwrap();
        c.upserts.sort_by(|x, y| x.target_id.cmp(&y.target_id));
        assert_eq!(c.generation, 6);
        assert_eq!(c.upserts, vec![owner("a", "s2", 6)]);
        assert_eq!(c.removals, vec!["b".to_string()]);
        assert!(q.take().is_none());
        // A failed save goes back under what came since.
        q.push(StateChange {
            generation: 7,
            upserts: vec![owner("a", "s3", 7)],
            removals: vec![],
        });
        q.restore(c);
        let mut c = q.take().unwrap();
        c.upserts.sort_by(|x, y| x.target_id.cmp(&y.target_id));
        assert_eq!(c.generation, 7);
        assert_eq!(c.upserts, vec![owner("a", "s3", 7)]);
        assert_eq!(c.removals, vec!["b".to_string()]);
    }
}
