//! The coordinator: the one task that owns the cluster's scrape state.
//!
//! It owns the scrape pools, the active targets (from discovery, after target
//! relabeling), the members (scrapers with a live `Session` stream), and which
//! member owns which target at which generation. Every input is an [`Event`]
//! or a new discovery result; after each it recomputes the sharding and sends
//! each member what changed for it: a full snapshot when it (re)joins, a delta
//! otherwise. Outbound member channels are bounded; a member whose channel is
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
use crate::sharding::{self, Member};
use crate::targets::{self, DroppedTarget, ScrapeTarget};

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
    pub active: Vec<(ScrapeTarget, Option<TargetOwner>)>,
    pub dropped: Vec<DroppedTarget>,
}

#[derive(Clone, Debug)]
pub struct MemberView {
    pub id: String,
    pub http_addr: String,
    pub targets: usize,
}

#[derive(Clone, Debug)]
pub struct TargetOwner {
    pub scraper: String,
    pub generation: u64,
    pub health: Option<pb::TargetHealth>,
}

/// Handle to the coordinator task.
#[derive(Clone)]
pub struct Coordinator {
    tx: mpsc::Sender<Event>,
}

impl Coordinator {
    /// Starts the coordinator task.
    pub fn start(
        config: Arc<Config>,
        storage_endpoint: String,
        discovered: watch::Receiver<Arc<DiscoveredTargets>>,
        membership_timeout: Duration,
        startup_grace: Duration,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let state = State::new(config, storage_endpoint);
        tokio::spawn(state.run(rx, discovered, membership_timeout, startup_grace, cancel));
        Self { tx }
    }

    pub async fn send(&self, event: Event) {
        // The coordinator only stops at shutdown; then events no longer matter.
        let _ = self.tx.send(event).await;
    }

    /// Returns a copy of the current state.
    pub async fn view(&self) -> Option<ClusterView> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::View(tx)).await;
        rx.await.ok()
    }
}

struct MemberState {
    session: u64,
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
    /// What was sent, to detect changed target definitions.
    sent: pb::Target,
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
    owners: HashMap<String, Owned>,
    generation: u64,
}

impl State {
    fn new(config: Arc<Config>, storage_endpoint: String) -> Self {
        let pools = config
            .scrape_configs
            .iter()
            .map(|sc| (sc.job_name.clone(), pool(sc)))
            .collect();
        Self {
            config,
            discovered: Arc::new(DiscoveredTargets::new()),
            storage_endpoint,
            pools,
            targets: BTreeMap::new(),
            dropped: Vec::new(),
            members: BTreeMap::new(),
            owners: HashMap::new(),
            generation: generation_floor(),
        }
    }

    async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut discovered: watch::Receiver<Arc<DiscoveredTargets>>,
        membership_timeout: Duration,
        startup_grace: Duration,
        cancel: CancellationToken,
    ) {
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
                    self.rebuild_targets();
                    true
                }
                _ = tick.tick() => self.expire(membership_timeout),
            };
            pending |= changed;
            if pending && tokio::time::Instant::now() >= grace_end {
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
                self.members.insert(
                    hello.scraper_id,
                    MemberState {
                        session,
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
            Event::Status {
                scraper_id,
                session,
                status,
            } => {
                if let Some(m) = self.members.get_mut(&scraper_id) {
                    if m.session == session {
                        m.last_seen = Instant::now();
                        for h in status.targets {
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
        self.members.len() != before
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
        let members: Vec<Member> = self.members.keys().map(Member::new).collect();
        let desired = sharding::assign(self.targets.keys().map(String::as_str), &members);
        let next_gen = self.generation + 1;
        let mut adds: HashMap<String, Vec<pb::Target>> = HashMap::new();
        let mut removals: HashMap<String, Vec<pb::TargetRemoval>> = HashMap::new();

        // Targets that left discovery or moved.
        let mut gone = Vec::new();
        for (tid, owned) in &self.owners {
            let reason = match desired.get(tid) {
                None => pb::RemovalReason::Gone,
                Some(m) if *m != owned.member => pb::RemovalReason::Moved,
                Some(_) => continue,
            };
            removals
                .entry(owned.member.clone())
                .or_default()
                .push(pb::TargetRemoval {
                    target_id: tid.clone(),
                    reason: reason as i32,
                });
            if reason == pb::RemovalReason::Moved {
                ::metrics::counter!(metrics::TARGET_MOVES).increment(1);
            }
            gone.push(tid.clone());
        }
        for tid in gone {
            self.owners.remove(&tid);
        }
        // Targets that are new, moved here, or changed.
        for (tid, member) in &desired {
            let target = &self.targets[tid];
            let unchanged = self
                .owners
                .get(tid)
                .is_some_and(|o| o.sent == to_proto(target, o.generation));
            if unchanged {
                continue;
            }
            let msg = to_proto(target, next_gen);
            self.owners.insert(
                tid.clone(),
                Owned {
                    member: member.clone(),
                    generation: next_gen,
                    sent: msg.clone(),
                },
            );
            adds.entry(member.clone()).or_default().push(msg);
        }
        let changed = !adds.is_empty() || !removals.is_empty();
        if changed {
            self.generation = next_gen;
        }

        // Pools each member's targets use, to re-send those that changed.
        let mut pools_in_use: HashMap<String, HashSet<String>> = HashMap::new();
        for o in self.owners.values() {
            pools_in_use
                .entry(o.member.clone())
                .or_default()
                .insert(o.sent.pool.clone());
        }
        let out = Outgoing {
            pools: &self.pools,
            generation: self.generation,
            storage_endpoint: &self.storage_endpoint,
        };
        let mut failed = Vec::new();
        for (id, m) in self.members.iter_mut() {
            let msg = if m.needs_snapshot {
                let targets: Vec<pb::Target> = self
                    .owners
                    .iter()
                    .filter(|(_, o)| o.member == *id)
                    .map(|(_, o)| o.sent.clone())
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
                .map(|(id, m)| MemberView {
                    id: id.clone(),
                    http_addr: m.http_addr.clone(),
                    targets: self.owners.values().filter(|o| o.member == *id).count(),
                })
                .collect(),
            active,
            dropped: self.dropped.clone(),
        }
    }

    fn record_metrics(&self) {
        ::metrics::gauge!(metrics::MEMBERS).set(self.members.len() as f64);
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
    }
}
