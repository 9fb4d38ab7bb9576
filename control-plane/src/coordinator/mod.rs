//! The coordinator: the one task that owns the cluster's scrape state.
//!
//! It owns the scrape pools, the active targets (from discovery, after target
//! relabeling), the members (scrapers with a live `Session` stream), and which
//! member owns which target at which generation. Every input is an [`Event`]
//! or a new discovery result; after each it recomputes the assignment
//! ([`crate::sharding::bounded`]: bounded load, weighted by series count, from the
//! previous owners so that only what must move does) and sends each member
//! what changed for it: a full snapshot when it (re)joins, a delta otherwise.
//!
//! A target that moves between two live members is handed over at a time
//! `H` a little ahead (`handover_lead`): the old owner scrapes the slots
//! before `H` and hands its series over, the new one starts at `H`. A target
//! whose owner died moves at once; a target whose live owner would hand it
//! to a member that has not reconnected yet (presumed alive after a leader
//! change) stays until that member is back or expired. A draining member
//! (Goodbye, or a Hello that says draining: a drain that outlived a leader)
//! takes nothing new and hands everything over; when it rejoins, its
//! snapshot carries those handovers. Owners are also learnt back: from the
//! targets a rejoining scraper says it runs, and from persisted state after a
//! leader change, whose members are presumed alive for a membership timeout,
//! so a control plane restart moves nothing. Gone targets are only removed
//! once discovery has delivered its first result. Outbound member channels
//! are bounded; a member whose channel is full or closed is dropped from
//! membership (its stream ends, and it rejoins with a snapshot), so one slow
//! scraper never stalls the others.
//!
//! The rules are pure: the state and the clock in, a plan out
//! (`State::plan(now) -> Plan`). Files: this one holds the API (events,
//! views, the handle); [`inputs`] what scrapers say, as domain types;
//! [`state`] the state and how each input changes it; [`ledger`] what a
//! round reads instead of every target (each member's targets and load, the
//! unowned and the gone targets), kept in step with the state; [`plan`] the
//! assignment rounds (who owns what, handovers, drains, the message for each
//! member, the change to persist), which read only what may change;
//! [`task`] the shell that reads the clock,
//! sends, persists and records metrics; [`wire`] the wire forms of pools and
//! targets; `tests` the table tests of the pure part.

pub mod inputs;
mod ledger;
mod plan;
mod state;
mod task;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::Config;
use scrapegrid_proto::v1 as pb;

use crate::discovery::DiscoveredTargets;
use crate::integrations::{Endpoints, EndpointsSender};
use crate::targets::{DroppedTarget, ScrapeTarget};
pub use inputs::{Hello, TargetReport};
use state::{Now, State};
use task::Task;

/// What members receive on their stream.
pub type Outbound = mpsc::Sender<Result<pb::ControlMessage, tonic::Status>>;

/// Capacity of each member's outbound channel.
pub const OUTBOUND_CAPACITY: usize = 64;

/// Inputs of the coordinator.
pub enum Event {
    Join {
        hello: Hello,
        session: u64,
        tx: Outbound,
    },
    Leave {
        scraper_id: String,
        session: u64,
    },
    /// The member said Goodbye: hand its targets over, keep its stream.
    Drain {
        scraper_id: String,
        session: u64,
    },
    Status {
        scraper_id: String,
        session: u64,
        reports: Vec<TargetReport>,
    },
    View(oneshot::Sender<ClusterView>),
    /// An operator asks a member to drain: send it `Drain` on its stream
    /// (it answers with a Goodbye, which is [`Event::Drain`]). The reply
    /// says whether it was told.
    RequestDrain {
        scraper_id: String,
        reply: oneshot::Sender<DrainRequest>,
    },
    /// A validated new configuration: targets are rebuilt from the last
    /// discovery result, and members get the pools that changed.
    Reload(Arc<Config>),
}

/// A read-only copy of the state, for the HTTP API and tests.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    pub generation: u64,
    pub members: Vec<MemberView>,
    /// The latest moves, oldest first.
    pub moves: Vec<Move>,
    pub active: Vec<(ScrapeTarget, Option<TargetOwner>)>,
    pub dropped: Vec<DroppedTarget>,
}

#[derive(Clone, Debug)]
pub struct MemberView {
    pub id: String,
    pub http_addr: String,
    pub targets: usize,
    /// Sum of the series counts its targets last reported.
    pub series: u64,
    pub draining: bool,
}

/// One target changing owner.
#[derive(Clone, Debug)]
pub struct Move {
    pub target: String,
    pub from: String,
    pub to: String,
    pub generation: u64,
    /// Handed over between live members (`false`: the old owner was gone).
    pub handover: bool,
    /// Milliseconds since the Unix epoch: the handover time, or when decided.
    pub at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct TargetOwner {
    pub scraper: String,
    pub generation: u64,
    pub health: Option<TargetReport>,
}

/// Handle to the coordinator. The coordinator task runs only while this
/// control plane leads: [`Coordinator::lead`] starts one for a term, and
/// [`Coordinator::step_down`] forgets it when the term ends. Events sent
/// while not leading are dropped; a configuration reload is kept for the
/// next term.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    /// The current term's task, if leading.
    term: std::sync::RwLock<Option<mpsc::Sender<Event>>>,
    /// The configuration in force, for the next term.
    config: std::sync::Mutex<Arc<Config>>,
    /// Where the components are, for the integrations' targets: a term's
    /// task publishes this control plane and its members.
    endpoints: EndpointsSender,
    /// This control plane's HTTP address (`host:port`), if reachable.
    own_http: Option<String>,
}

impl Coordinator {
    /// A coordinator that does not lead yet; `own_http` is this control
    /// plane's HTTP address as others reach it.
    pub fn new(config: Arc<Config>, own_http: Option<String>) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                term: std::sync::RwLock::new(None),
                config: std::sync::Mutex::new(config),
                endpoints: watch::Sender::new(Default::default()),
                own_http,
            }),
        }
    }

    /// Where the cluster's components are while this control plane leads.
    pub fn endpoints(&self) -> watch::Receiver<Arc<Endpoints>> {
        self.inner.endpoints.subscribe()
    }

    /// Starts the coordinator task of a term with the configuration in
    /// force; it runs until `cancel`.
    pub fn lead(
        &self,
        options: CoordinatorOptions,
        discovered: watch::Receiver<Arc<DiscoveredTargets>>,
        cancel: CancellationToken,
    ) {
        let (tx, rx) = mpsc::channel(1024);
        let config = lock(&self.inner.config).clone();
        let state = State::new(config, &options, Now::read());
        let endpoints = (self.inner.endpoints.clone(), self.inner.own_http.clone());
        let task = Task::new(state, options.persist.clone(), endpoints);
        tokio::spawn(task.run(rx, discovered, options, cancel));
        *self.inner.term.write().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// Forgets the term's task (cancel it first).
    pub fn step_down(&self) {
        *self.inner.term.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Returns whether a term's task runs here.
    pub fn is_leading(&self) -> bool {
        self.sender().is_some_and(|tx| !tx.is_closed())
    }

    fn sender(&self) -> Option<mpsc::Sender<Event>> {
        self.inner
            .term
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn send(&self, event: Event) {
        if let Some(tx) = self.sender() {
            // The task stops only with its term; then events no longer matter.
            let _ = tx.send(event).await;
        }
    }

    /// Puts a validated configuration in force, now and for later terms.
    pub async fn reload(&self, config: Arc<Config>) {
        *lock(&self.inner.config) = config.clone();
        self.send(Event::Reload(config)).await;
    }

    /// Tells the member `scraper_id` to drain (see [`Event::RequestDrain`]).
    pub async fn request_drain(&self, scraper_id: &str) -> DrainRequest {
        if !self.is_leading() {
            return DrainRequest::NotLeading;
        }
        let (reply, rx) = oneshot::channel();
        let scraper_id = scraper_id.to_string();
        self.send(Event::RequestDrain { scraper_id, reply }).await;
        rx.await.unwrap_or(DrainRequest::NotLeading)
    }

    /// Returns a copy of the current state; `None` when not leading.
    pub async fn view(&self) -> Option<ClusterView> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::View(tx)).await;
        rx.await.ok()
    }
}

/// What became of a drain request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainRequest {
    /// The member was told; it drains and exits.
    Sent,
    /// No member has that id.
    UnknownMember,
    /// The member's stream is full or closed: it was not told.
    Busy,
    /// This control plane does not lead.
    NotLeading,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the coordinator runs.
#[derive(Clone, Debug)]
pub struct CoordinatorOptions {
    /// The storage node's gRPC endpoint, passed on to scrapers.
    pub storage_endpoint: String,
    pub membership_timeout: Duration,
    /// How long after start the first assignment waits for scrapers.
    pub startup_grace: Duration,
    /// How far ahead of a decision a handover happens, so both owners have
    /// their assignment by then.
    pub handover_lead: Duration,
    /// Owners restored from persisted state (a new leader's predecessor's).
    pub restored: Option<crate::ha::PersistedState>,
    /// Where changes of the owners are persisted, if anywhere.
    pub persist: Option<crate::ha::PersistQueue>,
}
