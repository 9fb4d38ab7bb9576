//! The in-memory backend: candidates of one [`MemoryCluster`] compete inside
//! one process.
//!
//! A single control plane without etcd uses one candidate, which wins at
//! once; tests use several. At most one candidate leads; when it resigns or
//! is dropped, its `lost` token is cancelled and a waiting campaigner wins
//! with the next term. State is kept as long as any handle of the cluster
//! lives, so it survives leader changes but not the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    Election, HaError, Leadership, PersistedOwner, PersistedState, Result, StateChange, StateStore,
};

/// A shared in-memory election and state; clones are handles to the same.
#[derive(Clone, Default)]
pub struct MemoryCluster {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Woken whenever the leader steps down.
    released: Notify,
}

#[derive(Default)]
struct Inner {
    next_candidate: u64,
    last_term: u64,
    leader: Option<Term>,
    generation: u64,
    /// Target id -> (member, generation).
    owners: BTreeMap<String, (String, u64)>,
}

/// The current leader.
struct Term {
    candidate: u64,
    term: u64,
    endpoint: String,
    lost: CancellationToken,
}

/// One competitor in a [`MemoryCluster`]; dropping it ends its leadership.
pub struct MemoryCandidate {
    id: u64,
    shared: Arc<Shared>,
}

impl MemoryCluster {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns a new candidate of this cluster.
    pub fn candidate(&self) -> MemoryCandidate {
        let mut inner = self.shared.lock();
        inner.next_candidate += 1;
        MemoryCandidate {
            id: inner.next_candidate,
            shared: self.shared.clone(),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, so a panic in
        // another holder does not make it unusable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the current term if `is_it` says it is the one to end.
    fn step_down(&self, is_it: impl FnOnce(&Term) -> bool) {
        let mut inner = self.lock();
        if inner.leader.as_ref().is_some_and(is_it) {
            if let Some(term) = inner.leader.take() {
                term.lost.cancel();
            }
            drop(inner);
            self.released.notify_waiters();
        }
    }
}

impl Election for MemoryCandidate {
    fn campaign(&self, endpoint: &str) -> BoxFuture<'_, Result<Leadership>> {
        let endpoint = endpoint.to_string();
        Box::pin(async move {
            loop {
                // Registered before looking, so a release in between is not
                // missed.
                let released = self.shared.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                {
                    let mut inner = self.shared.lock();
                    if inner.leader.is_none() {
                        inner.last_term += 1;
                        let lost = CancellationToken::new();
                        inner.leader = Some(Term {
                            candidate: self.id,
                            term: inner.last_term,
                            endpoint,
                            lost: lost.clone(),
                        });
                        return Ok(Leadership {
                            term: inner.last_term,
                            lost,
                            lease: 0,
                        });
                    }
                }
                released.await;
            }
        })
    }

    fn leader(&self) -> BoxFuture<'_, Result<Option<String>>> {
        let leader = self
            .shared
            .lock()
            .leader
            .as_ref()
            .map(|t| t.endpoint.clone());
        Box::pin(async move { Ok(leader) })
    }

    fn resign(&self, leadership: &Leadership) -> BoxFuture<'_, Result<()>> {
        leadership.lost.cancel();
        self.shared.step_down(|t| t.term == leadership.term);
        Box::pin(async { Ok(()) })
    }
}

impl StateStore for MemoryCandidate {
    fn load(&self) -> BoxFuture<'_, Result<PersistedState>> {
        let inner = self.shared.lock();
        let owners = inner
            .owners
            .iter()
            .map(|(target_id, (member, generation))| PersistedOwner {
                target_id: target_id.clone(),
                member: member.clone(),
                generation: *generation,
            })
            .collect();
        let state = PersistedState::new(inner.generation, owners);
        Box::pin(async move { Ok(state) })
    }

    fn save<'a>(
        &'a self,
        leadership: &'a Leadership,
        change: StateChange,
    ) -> BoxFuture<'a, Result<()>> {
        let result = change.validate().and_then(|()| {
            let mut inner = self.shared.lock();
            if inner.leader.as_ref().map(|t| t.term) != Some(leadership.term) {
                return Err(HaError::NotLeader {
                    term: leadership.term,
                });
            }
            for o in change.upserts {
                inner.owners.insert(o.target_id, (o.member, o.generation));
            }
            for id in &change.removals {
                inner.owners.remove(id);
            }
            inner.generation = change.generation;
            Ok(())
        });
        Box::pin(async move { result })
    }
}

impl Drop for MemoryCandidate {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.step_down(|t| t.candidate == id);
    }
}
