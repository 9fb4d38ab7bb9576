//! Owner changes on their way to the state store: the coordinator pushes
//! each change and never waits; the leader's persister takes them merged per
//! target (a slow etcd costs at most one entry per target) and puts back
//! what it could not save, under anything newer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{PersistedOwner, StateChange};

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
    pub fn take(&self) -> Option<StateChange> {
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
    pub fn restore(&self, change: StateChange) {
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

impl PersistQueue {
    /// Waits until something is pushed (or was pushed since the last wait).
    pub async fn changed(&self) {
        self.inner.1.notified().await;
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
