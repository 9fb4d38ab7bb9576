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
//! whose owner died moves at once. A draining member (Goodbye) takes nothing
//! new and hands everything over. Owners are also learnt back: from the
//! targets a rejoining scraper says it runs, and from persisted state after a
//! leader change, whose members are presumed alive for a membership timeout,
//! so a control plane restart moves nothing. Gone targets are only removed
//! once discovery has delivered its first result. Outbound member channels are bounded; a member whose channel is
//! full or closed is dropped from membership (its stream ends, and it rejoins
//! with a snapshot), so one slow scraper never stalls the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::{Config, ScrapeConfig};
use scrapegrid_proto::v1 as pb;

use crate::discovery::DiscoveredTargets;
use crate::metrics;
use crate::sharding::bounded::{self, assign_bounded};
use crate::sharding::Member;
use crate::targets::{self, DroppedTarget, ScrapeTarget};

/// How many moves the view keeps.
const MOVES_KEPT: usize = 1000;

/// What members receive on their stream.
pub type Outbound = mpsc::Sender<Result<pb::ControlMessage, tonic::Status>>;

/// Capacity of each member's outbound channel.
pub const OUTBOUND_CAPACITY: usize = 64;

/// Inputs of the coordinator.
pub enum Event {
    Join {
        hello: pb::Hello,
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
        status: pb::Status,
    },
    View(oneshot::Sender<ClusterView>),
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
    pub health: Option<pb::TargetHealth>,
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
}

impl Coordinator {
    /// A coordinator that does not lead yet.
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                term: std::sync::RwLock::new(None),
                config: std::sync::Mutex::new(config),
            }),
        }
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
        let state = State::new(config, &options);
        tokio::spawn(state.run(rx, discovered, options, cancel));
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

    /// Returns a copy of the current state; `None` when not leading.
    pub async fn view(&self) -> Option<ClusterView> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::View(tx)).await;
        rx.await.ok()
    }
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
    pub persist: Option<crate::leader::PersistQueue>,
}

struct MemberState {
    session: u64,
    /// Said Goodbye: takes nothing new, hands everything over.
    draining: bool,
    http_addr: String,
    tx: Outbound,
    last_seen: Instant,
    /// Pools this member has been sent, as sent.
    pools_sent: HashMap<String, pb::ScrapePool>,
    /// Whether the next message must be a full snapshot.
    needs_snapshot: bool,
    health: HashMap<String, pb::TargetHealth>,
}

struct Owned {
    member: String,
    generation: u64,
    /// What was sent (without handover fields), to detect changed target
    /// definitions; `None` for an owner learnt back (from a rejoining
    /// scraper or persisted state) whose definition is not confirmed yet.
    sent: Option<pb::Target>,
}

struct State {
    config: Arc<Config>,
    /// The last discovery result, to rebuild targets on a reload.
    discovered: Arc<DiscoveredTargets>,
    storage_endpoint: String,
    pools: BTreeMap<String, pb::ScrapePool>,
    targets: BTreeMap<String, ScrapeTarget>,
    dropped: Vec<DroppedTarget>,
    members: BTreeMap<String, MemberState>,
    /// Members of restored state that have not rejoined, until when they
    /// are presumed alive.
    presumed: HashMap<String, Instant>,
    owners: HashMap<String, Owned>,
    /// Last series count per target (the assignment's weights).
    weights: HashMap<String, u64>,
    generation: u64,
    /// Whether discovery has delivered a result since start.
    synced: bool,
    handover_lead: Duration,
    moves: std::collections::VecDeque<Move>,
    persist: Option<crate::leader::PersistQueue>,
}

impl State {
    fn new(config: Arc<Config>, options: &CoordinatorOptions) -> Self {
        let pools = config
            .scrape_configs
            .iter()
            .map(|sc| (sc.job_name.clone(), pool(sc)))
            .collect();
        let mut state = Self {
            config,
            discovered: Arc::new(DiscoveredTargets::new()),
            storage_endpoint: options.storage_endpoint.clone(),
            pools,
            targets: BTreeMap::new(),
            dropped: Vec::new(),
            members: BTreeMap::new(),
            presumed: HashMap::new(),
            owners: HashMap::new(),
            weights: HashMap::new(),
            generation: generation_floor(),
            synced: false,
            handover_lead: options.handover_lead,
            moves: Default::default(),
            persist: options.persist.clone(),
        };
        if let Some(restored) = &options.restored {
            let until = Instant::now() + options.membership_timeout;
            state.generation = state.generation.max(restored.generation);
            for o in &restored.owners {
                state.generation = state.generation.max(o.generation);
                state.presumed.insert(o.member.clone(), until);
                state.owners.insert(
                    o.target_id.clone(),
                    Owned {
                        member: o.member.clone(),
                        generation: o.generation,
                        sent: None,
                    },
                );
            }
            tracing::info!(
                owners = restored.owners.len(),
                members = state.presumed.len(),
                "restored the assignment of the previous leader"
            );
        }
        state
    }

    async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut discovered: watch::Receiver<Arc<DiscoveredTargets>>,
        options: CoordinatorOptions,
        cancel: CancellationToken,
    ) {
        let (membership_timeout, startup_grace) =
            (options.membership_timeout, options.startup_grace);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After a (re)start, scrapers that still run their last assignment
        // rejoin within a moment; assigning before they are back would hand
        // every target to the first one and move them again.
        let grace_end = tokio::time::Instant::now() + startup_grace;
        let mut pending = false;
        loop {
            let in_grace = tokio::time::Instant::now() < grace_end;
            // Only what can change the assignment triggers a reconciliation;
            // heartbeats and views do not.
            let changed = tokio::select! {
                _ = tokio::time::sleep_until(grace_end), if pending && in_grace => false,
                _ = cancel.cancelled() => return,
                Some(event) = events.recv() => self.on_event(event),
                Ok(()) = discovered.changed() => {
                    self.discovered = discovered.borrow_and_update().clone();
                    self.synced = true;
                    self.rebuild_targets();
                    true
                }
                _ = tick.tick() => self.expire(membership_timeout),
            };
            pending |= changed;
            // Before the first discovery result every owner would look gone.
            if pending && self.synced && tokio::time::Instant::now() >= grace_end {
                self.reconcile();
                pending = false;
            }
        }
    }

    /// Applies an event; returns whether the assignment may have changed.
    fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::Join { hello, session, tx } => {
                tracing::info!(scraper = %hello.scraper_id, addr = %hello.http_addr, "scraper joined");
                // Generations only grow, also across control plane restarts:
                // the storage node fences batches with older generations.
                let running_max = hello
                    .running
                    .iter()
                    .map(|r| r.generation)
                    .max()
                    .unwrap_or(0);
                self.generation = self.generation.max(running_max);
                // What it runs is its own, unless someone newer owns it.
                for r in &hello.running {
                    let newer = self
                        .owners
                        .get(&r.target_id)
                        .is_some_and(|o| o.generation >= r.generation);
                    if !newer {
                        self.owners.insert(
                            r.target_id.clone(),
                            Owned {
                                member: hello.scraper_id.clone(),
                                generation: r.generation,
                                sent: None,
                            },
                        );
                    }
                }
                self.presumed.remove(&hello.scraper_id);
                self.members.insert(
                    hello.scraper_id,
                    MemberState {
                        session,
                        draining: false,
                        http_addr: hello.http_addr,
                        tx,
                        last_seen: Instant::now(),
                        pools_sent: HashMap::new(),
                        needs_snapshot: true,
                        health: HashMap::new(),
                    },
                );
                true
            }
            Event::Leave {
                scraper_id,
                session,
            } => {
                if self
                    .members
                    .get(&scraper_id)
                    .is_some_and(|m| m.session == session)
                {
                    tracing::info!(scraper = %scraper_id, "scraper left");
                    self.members.remove(&scraper_id);
                    return true;
                }
                false
            }
            Event::Drain {
                scraper_id,
                session,
            } => match self.members.get_mut(&scraper_id) {
                Some(m) if m.session == session && !m.draining => {
                    tracing::info!(scraper = %scraper_id, "scraper draining");
                    m.draining = true;
                    true
                }
                _ => false,
            },
            Event::Status {
                scraper_id,
                session,
                status,
            } => {
                if let Some(m) = self.members.get_mut(&scraper_id) {
                    if m.session == session {
                        m.last_seen = Instant::now();
                        for h in status.targets {
                            let owned = self
                                .owners
                                .get(&h.target_id)
                                .is_some_and(|o| o.member == scraper_id);
                            if owned && h.series_count > 0 {
                                self.weights.insert(h.target_id.clone(), h.series_count);
                            }
                            m.health.insert(h.target_id.clone(), h);
                        }
                    }
                }
                false
            }
            Event::View(reply) => {
                let _ = reply.send(self.view());
                false
            }
            Event::Reload(config) => {
                self.pools = config
                    .scrape_configs
                    .iter()
                    .map(|sc| (sc.job_name.clone(), pool(sc)))
                    .collect();
                self.config = config;
                self.rebuild_targets();
                tracing::info!(jobs = self.pools.len(), "configuration reloaded");
                true
            }
        }
    }

    /// Rebuilds the targets from the last discovery result and the config.
    fn rebuild_targets(&mut self) {
        let groups = self.discovered.clone();
        let mut active = BTreeMap::new();
        let mut dropped = Vec::new();
        for sc in &self.config.scrape_configs {
            let Some(job_groups) = groups.get(&sc.job_name) else {
                continue;
            };
            let (a, d) = targets::build(sc, job_groups);
            if sc.target_limit > 0 && a.len() as u64 > sc.target_limit {
                tracing::warn!(job = %sc.job_name, count = a.len(), limit = sc.target_limit, "target_limit exceeded; job not scraped");
                continue;
            }
            active.extend(a.into_iter().map(|t| (t.id.clone(), t)));
            dropped.extend(d);
        }
        self.targets = active;
        self.dropped = dropped;
    }

    /// Drops members whose last status is older than the membership timeout;
    /// returns whether any was dropped.
    fn expire(&mut self, timeout: Duration) -> bool {
        let before = self.members.len();
        self.members.retain(|id, m| {
            let alive = m.last_seen.elapsed() <= timeout;
            if !alive {
                tracing::warn!(scraper = %id, "membership timeout; removing scraper");
            }
            alive
        });
        let presumed = self.presumed.len();
        let now = Instant::now();
        self.presumed.retain(|id, until| {
            let alive = *until > now;
            if !alive {
                tracing::warn!(scraper = %id, "restored member did not rejoin; removing");
            }
            alive
        });
        self.members.len() != before || self.presumed.len() != presumed
    }

    /// Recomputes the assignment and sends every member what changed for it.
    fn reconcile(&mut self) {
        loop {
            let failed = self.reconcile_once();
            if failed.is_empty() {
                break;
            }
            for id in failed {
                tracing::warn!(scraper = %id, "scraper stream full or closed; removing");
                self.members.remove(&id);
            }
        }
        self.record_metrics();
    }

    /// One reconciliation round; returns members whose channel refused a send.
    fn reconcile_once(&mut self) -> Vec<String> {
        // Candidates: live members that are not draining, and restored
        // members presumed alive until they rejoin or time out.
        let candidates: Vec<Member> = self
            .members
            .iter()
            .filter(|(_, m)| !m.draining)
            .map(|(id, _)| Member::new(id.as_str()))
            .chain(self.presumed.keys().map(|id| Member::new(id.as_str())))
            .collect();
        let weighted: Vec<(&str, u64)> = self
            .targets
            .keys()
            .map(|t| (t.as_str(), self.weights.get(t).copied().unwrap_or(0)))
            .collect();
        let previous = bounded::Assignment::from_owners(
            self.owners
                .iter()
                .map(|(t, o)| (t.as_str(), o.member.as_str())),
        );
        let desired = assign_bounded(&weighted, &candidates, &previous, bounded::DEFAULT_EPSILON);
        let next_gen = self.generation + 1;
        let now = now_ms();
        let handover_at = now + self.handover_lead.as_millis() as i64;
        let mut adds: HashMap<String, Vec<pb::Target>> = HashMap::new();
        let mut removals: HashMap<String, Vec<pb::TargetRemoval>> = HashMap::new();
        let mut change = crate::ha::StateChange::default();

        // Targets that left discovery, or moved; a target with no candidate
        // to go to stays where it is.
        let mut leaving = Vec::new();
        for (tid, owned) in &self.owners {
            let draining = self.members.get(&owned.member).is_some_and(|m| m.draining);
            let (reason, stop_at) = match desired.owner(tid) {
                None if !self.targets.contains_key(tid) => (pb::RemovalReason::Gone, 0),
                // Nobody to take it over: a draining owner stops at once.
                None if draining => (pb::RemovalReason::Moved, 0),
                None => continue,
                Some(m) if m == owned.member => continue,
                Some(_) if self.members.contains_key(&owned.member) => {
                    (pb::RemovalReason::Moved, handover_at)
                }
                // The old owner is gone: nobody to tell.
                Some(_) => {
                    leaving.push((tid.clone(), false));
                    continue;
                }
            };
            removals
                .entry(owned.member.clone())
                .or_default()
                .push(pb::TargetRemoval {
                    target_id: tid.clone(),
                    reason: reason as i32,
                    stop_at_ms: stop_at,
                });
            leaving.push((tid.clone(), stop_at > 0));
        }
        let mut handovers = HashSet::new();
        for (tid, handover) in leaving {
            let Some(old) = self.owners.remove(&tid) else {
                continue;
            };
            match desired.owner(&tid) {
                Some(to) => {
                    let kind = if handover { "handover" } else { "failover" };
                    ::metrics::counter!(metrics::TARGET_MOVES, "kind" => kind).increment(1);
                    if self.moves.len() == MOVES_KEPT {
                        self.moves.pop_front();
                    }
                    self.moves.push_back(Move {
                        target: tid.clone(),
                        from: old.member,
                        to: to.to_string(),
                        generation: next_gen,
                        handover,
                        at_ms: if handover { handover_at } else { now },
                    });
                    if handover {
                        handovers.insert(tid);
                    }
                }
                None => change.removals.push(tid),
            }
        }
        // Targets that are new, moved here, changed, or learnt back.
        for (tid, member) in desired.iter() {
            let target = &self.targets[tid];
            if let Some(o) = self.owners.get_mut(tid) {
                if o.sent.is_none() {
                    // Learnt back: keep its generation; a snapshot or this
                    // delta tells the member the current definition.
                    let msg = to_proto(target, o.generation);
                    o.sent = Some(msg.clone());
                    adds.entry(member.to_string()).or_default().push(msg);
                    continue;
                }
                if o.sent.as_ref() == Some(&to_proto(target, o.generation)) {
                    continue;
                }
            }
            let msg = to_proto(target, next_gen);
            self.owners.insert(
                tid.to_string(),
                Owned {
                    member: member.to_string(),
                    generation: next_gen,
                    sent: Some(msg.clone()),
                },
            );
            change.upserts.push(crate::ha::PersistedOwner {
                target_id: tid.to_string(),
                member: member.to_string(),
                generation: next_gen,
            });
            let mut out = msg;
            if handovers.contains(tid) {
                out.start_at_ms = handover_at;
                out.await_handover = true;
            }
            adds.entry(member.to_string()).or_default().push(out);
        }
        let changed = !change.upserts.is_empty() || !change.removals.is_empty();
        if changed {
            self.generation = next_gen;
            change.generation = next_gen;
            if let Some(p) = &self.persist {
                p.push(change);
            }
        }

        // Pools each member's targets use, to re-send those that changed.
        let mut pools_in_use: HashMap<String, HashSet<String>> = HashMap::new();
        for o in self.owners.values() {
            if let Some(sent) = &o.sent {
                pools_in_use
                    .entry(o.member.clone())
                    .or_default()
                    .insert(sent.pool.clone());
            }
        }
        let out = Outgoing {
            pools: &self.pools,
            generation: self.generation,
            storage_endpoint: &self.storage_endpoint,
        };
        let mut failed = Vec::new();
        for (id, m) in self.members.iter_mut() {
            let msg = if m.needs_snapshot {
                // This round's adds carry their handover times: a joiner's
                // first message is its snapshot.
                let mut handed: HashMap<String, pb::Target> = adds
                    .remove(id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.id.clone(), t))
                    .collect();
                let targets: Vec<pb::Target> = self
                    .owners
                    .iter()
                    .filter(|(_, o)| o.member == *id)
                    .filter_map(|(tid, o)| handed.remove(tid).or_else(|| o.sent.clone()))
                    .collect();
                m.pools_sent.clear();
                Some(out.assignment(m, true, targets, Vec::new(), HashSet::new()))
            } else {
                let a = adds.remove(id).unwrap_or_default();
                let r = removals.remove(id).unwrap_or_default();
                let changed_pools = pools_in_use.remove(id).unwrap_or_default();
                let changed_pools: HashSet<String> = changed_pools
                    .into_iter()
                    .filter(|p| m.pools_sent.get(p) != self.pools.get(p))
                    .collect();
                (!a.is_empty() || !r.is_empty() || !changed_pools.is_empty())
                    .then(|| out.assignment(m, false, a, r, changed_pools))
            };
            let Some(msg) = msg else { continue };
            let msg = pb::ControlMessage {
                msg: Some(pb::control_message::Msg::Assignment(msg)),
            };
            if m.tx.try_send(Ok(msg)).is_err() {
                failed.push(id.clone());
            } else {
                m.needs_snapshot = false;
            }
        }
        failed
    }

    fn view(&self) -> ClusterView {
        let active = self
            .targets
            .values()
            .map(|t| {
                let owner = self.owners.get(&t.id).map(|o| TargetOwner {
                    scraper: o.member.clone(),
                    generation: o.generation,
                    health: self
                        .members
                        .get(&o.member)
                        .and_then(|m| m.health.get(&t.id).cloned()),
                });
                (t.clone(), owner)
            })
            .collect();
        ClusterView {
            generation: self.generation,
            members: self
                .members
                .iter()
                .map(|(id, m)| {
                    let owned: Vec<&String> = self
                        .owners
                        .iter()
                        .filter(|(_, o)| o.member == *id)
                        .map(|(t, _)| t)
                        .collect();
                    MemberView {
                        id: id.clone(),
                        http_addr: m.http_addr.clone(),
                        targets: owned.len(),
                        series: owned.iter().filter_map(|t| self.weights.get(*t)).sum(),
                        draining: m.draining,
                    }
                })
                .collect(),
            moves: self.moves.iter().cloned().collect(),
            active,
            dropped: self.dropped.clone(),
        }
    }

    fn record_metrics(&self) {
        ::metrics::gauge!(metrics::MEMBERS).set(self.members.len() as f64);
        let mut per_member: HashMap<&str, (u64, u64)> = self
            .members
            .keys()
            .map(|id| (id.as_str(), (0, 0)))
            .collect();
        for (t, o) in &self.owners {
            if let Some(e) = per_member.get_mut(o.member.as_str()) {
                e.0 += 1;
                e.1 += self.weights.get(t).copied().unwrap_or(0);
            }
        }
        for (member, (targets, series)) in per_member {
            let member = member.to_string();
            ::metrics::gauge!(metrics::MEMBER_TARGETS, "member" => member.clone())
                .set(targets as f64);
            ::metrics::gauge!(metrics::MEMBER_SERIES, "member" => member).set(series as f64);
        }
        ::metrics::gauge!(metrics::TARGETS).set(self.targets.len() as f64);
        ::metrics::gauge!(metrics::DROPPED_TARGETS).set(self.dropped.len() as f64);
        ::metrics::gauge!(metrics::GENERATION).set(self.generation as f64);
        let unassigned = self
            .targets
            .keys()
            .filter(|t| !self.owners.contains_key(*t))
            .count();
        ::metrics::gauge!(metrics::UNASSIGNED_TARGETS).set(unassigned as f64);
    }
}

/// Returns milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Returns the first generation of a control plane run: microseconds since
/// the Unix epoch, so a restarted control plane starts above every generation
/// its predecessor handed out (it would need a million changes a second to
/// get ahead of the clock) and the storage node's fencing keeps accepting.
fn generation_floor() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

/// What every assignment message of one round shares.
struct Outgoing<'a> {
    pools: &'a BTreeMap<String, pb::ScrapePool>,
    generation: u64,
    storage_endpoint: &'a str,
}

impl Outgoing<'_> {
    /// Builds a member's assignment with every pool its new targets use
    /// that it lacks, and the `changed` pools whose definition it has old.
    fn assignment(
        &self,
        m: &mut MemberState,
        full: bool,
        targets: Vec<pb::Target>,
        removals: Vec<pb::TargetRemoval>,
        changed: HashSet<String>,
    ) -> pb::Assignment {
        let mut names: Vec<&String> = targets.iter().map(|t| &t.pool).collect();
        names.extend(changed.iter());
        let mut pools = Vec::new();
        for name in names {
            let Some(p) = self.pools.get(name) else {
                continue;
            };
            if m.pools_sent.get(name) != Some(p) {
                m.pools_sent.insert(name.clone(), p.clone());
                pools.push(p.clone());
            }
        }
        pb::Assignment {
            generation: self.generation,
            full,
            storage_endpoint: self.storage_endpoint.to_string(),
            pools,
            targets,
            removals,
        }
    }
}

/// Returns the wire form of a job's scrape settings.
fn pool(sc: &ScrapeConfig) -> pb::ScrapePool {
    pb::ScrapePool {
        name: sc.job_name.clone(),
        scrape_interval_ms: sc.scrape_interval.as_millis() as u64,
        scrape_timeout_ms: sc.scrape_timeout.as_millis() as u64,
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        metric_relabel_rules: sc
            .metric_relabel_configs
            .iter()
            .map(|r| r.to_proto())
            .collect(),
        sample_limit: sc.sample_limit,
        label_limit: sc.label_limit,
        label_name_length_limit: sc.label_name_length_limit,
        label_value_length_limit: sc.label_value_length_limit,
        body_size_limit_bytes: sc.body_size_limit,
        track_timestamps_staleness: sc.track_timestamps_staleness,
    }
}

fn to_proto(t: &ScrapeTarget, generation: u64) -> pb::Target {
    pb::Target {
        id: t.id.clone(),
        generation,
        pool: t.job.clone(),
        url: t.url.clone(),
        labels: t.labels.to_proto(),
        discovered_labels: t.discovered.to_proto(),
        scrape_interval_ms: t.interval.as_millis() as u64,
        scrape_timeout_ms: t.timeout.as_millis() as u64,
        start_at_ms: 0,
        await_handover: false,
    }
}
