//! High availability: leader election among control planes, and the state a
//! new leader needs to keep every target where it is.
//!
//! Two small traits hide the backend. [`Election`]: a candidate campaigns
//! until it leads, gets a [`Leadership`] (a fencing `term` and a `lost`
//! token), and resigns at shutdown. [`StateStore`]: the leader saves the
//! cluster generation and the target owners as they change, and the next
//! leader loads them; a save is fenced by the term, so a deposed leader
//! cannot overwrite its successor's state.
//!
//! Backends:
//! - [`memory`]: one process, no etcd. [`MemoryCluster`] hands out
//!   candidates that compete in memory; a single control plane uses one and
//!   wins at once. State lives as long as the cluster handle.
//! - [`etcd`]: control planes campaign with a leased key in etcd and persist
//!   state under a key prefix ([`keys`] documents the layout).
//!
//! Both pass the same conformance suite (`tests/tests/ha_conformance.rs`).
//! [`advertised`] is what a candidate advertises as the election's value
//! (its gRPC endpoint and HTTP address).
//! [`persist_queue`] holds owner changes between the coordinator, which
//! never waits for the store, and the leader's persister; [`error`] is the
//! error type of both traits.
//!
//! The intended loop of a control plane: `campaign` -> lead until
//! `leadership.lost` fires (saving with `save(&leadership, ..)`) -> stop
//! acting as leader -> `campaign` again; `resign` on graceful shutdown.

pub mod advertised;
pub mod error;
pub mod etcd;
pub mod keys;
pub mod memory;
pub mod persist_queue;

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use error::{HaError, Result};
pub use etcd::{EtcdCandidate, EtcdOptions};
pub use memory::{MemoryCandidate, MemoryCluster};
pub use persist_queue::PersistQueue;

/// Proof of leadership for one term.
///
/// Leadership ends when the candidate resigns, when its backend can no
/// longer confirm it (etcd: the lease expired, or keepalives went
/// unconfirmed for a whole TTL), or when the candidate is dropped; then
/// `lost` is cancelled. Clones share the same `lost` token.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// Fencing token: strictly increases from one term to the next across
    /// all candidates of a cluster (etcd: the leader key's create_revision).
    pub term: u64,
    /// Cancelled when this leadership ends.
    pub lost: CancellationToken,
    /// The etcd lease that keeps the term alive; 0 in memory.
    lease: i64,
}

/// Elects one leader among candidates.
pub trait Election: Send + Sync {
    /// Waits until this candidate, advertising `endpoint` (for example
    /// `http://127.0.0.1:9091`), leads; then keeps the leadership alive in
    /// the background until it is lost or resigned. Transient backend errors
    /// are retried (and logged), so this only returns once leading or on a
    /// permanent error. One campaign per candidate at a time. Dropping the
    /// future may leave a term that was just won unkept; it then ends when
    /// its lease expires.
    fn campaign(&self, endpoint: &str) -> BoxFuture<'_, Result<Leadership>>;

    /// Returns the current leader's endpoint, if there is a leader.
    fn leader(&self) -> BoxFuture<'_, Result<Option<String>>>;

    /// Gives up `leadership` at once, so another candidate wins without
    /// waiting for a lease to expire. `lost` is cancelled even when this
    /// returns an error (the backend was unreachable; etcd then lets the
    /// lease expire).
    fn resign(&self, leadership: &Leadership) -> BoxFuture<'_, Result<()>>;
}

/// What a leader persisted: the cluster generation and who owns each target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersistedState {
    /// The highest generation persisted: the saved cluster generation, or a
    /// higher owner generation when a save stopped half-way.
    pub generation: u64,
    /// Owners sorted by target id.
    pub owners: Vec<PersistedOwner>,
}

/// Which member scrapes a target, since which generation.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistedOwner {
    pub target_id: String,
    /// The scraper's member id.
    pub member: String,
    /// The generation of the assignment that gave the target to `member`.
    pub generation: u64,
}

/// A change to persist: the new cluster generation, owners set or replaced,
/// owners removed (by target id). A target may appear at most once.
#[derive(Clone, Debug, Default)]
pub struct StateChange {
    pub generation: u64,
    pub upserts: Vec<PersistedOwner>,
    pub removals: Vec<String>,
}

/// Keeps the leader's state across leaders.
pub trait StateStore: Send + Sync {
    /// Returns the persisted state (empty if nothing was saved).
    fn load(&self) -> BoxFuture<'_, Result<PersistedState>>;

    /// Persists `change`, only while `leadership` is the current term: a
    /// deposed leader's save fails with [`HaError::NotLeader`] and writes
    /// nothing. etcd applies a change in transactions of at most
    /// [`etcd::MAX_TXN_OPS`] operations with the generation in the last one,
    /// so a larger change cut short by a lost leadership may be partly
    /// applied; [`StateStore::load`] then reports the highest generation.
    fn save<'a>(
        &'a self,
        leadership: &'a Leadership,
        change: StateChange,
    ) -> BoxFuture<'a, Result<()>>;
}

/// Election and state of one control plane, whichever the backend.
#[derive(Clone)]
pub struct Ha {
    pub election: Arc<dyn Election>,
    pub state: Arc<dyn StateStore>,
}

impl Ha {
    /// A single control plane without etcd: it wins at once and keeps state
    /// in memory.
    pub fn in_memory() -> Self {
        let candidate = Arc::new(MemoryCluster::new().candidate());
        Self {
            election: candidate.clone(),
            state: candidate,
        }
    }

    /// A candidate in etcd. Connects lazily, so it must be called inside a
    /// Tokio runtime and succeeds while etcd is down.
    pub fn etcd(options: EtcdOptions) -> Result<Self> {
        let candidate = Arc::new(EtcdCandidate::new(options)?);
        Ok(Self {
            election: candidate.clone(),
            state: candidate,
        })
    }
}

impl StateChange {
    /// Checks that every target id is non-empty and appears once.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let ids = self
            .upserts
            .iter()
            .map(|o| o.target_id.as_str())
            .chain(self.removals.iter().map(String::as_str));
        for id in ids {
            if id.is_empty() {
                return Err(HaError::InvalidChange("empty target id".into()));
            }
            if !seen.insert(id) {
                return Err(HaError::InvalidChange(format!(
                    "target {id:?} appears more than once"
                )));
            }
        }
        Ok(())
    }
}

impl PersistedState {
    /// Builds a state from a saved generation and owners sorted by target
    /// id, reporting the highest generation of all.
    fn new(saved_generation: u64, owners: Vec<PersistedOwner>) -> Self {
        let generation = owners
            .iter()
            .map(|o| o.generation)
            .fold(saved_generation, u64::max);
        Self { generation, owners }
    }
}
