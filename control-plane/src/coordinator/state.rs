//! The coordinator task's state, its event loop, and how each event changes
//! it; the assignment rounds are in [`super::reconcile`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::Config;
use scrapegrid_proto::v1 as pb;

use super::wire::pool;
use super::{ClusterView, CoordinatorOptions, Event, MemberView, Move, Outbound, TargetOwner};
use crate::discovery::DiscoveredTargets;
use crate::metrics;
use crate::targets::{self, DroppedTarget, ScrapeTarget};

/// How many moves the view keeps.
pub(super) const MOVES_KEPT: usize = 1000;

pub(super) struct MemberState {
    pub(super) session: u64,
    /// Said Goodbye: takes nothing new, hands everything over.
    pub(super) draining: bool,
    pub(super) http_addr: String,
    pub(super) tx: Outbound,
    pub(super) last_seen: Instant,
    /// Pools this member has been sent, as sent.
    pub(super) pools_sent: HashMap<String, pb::ScrapePool>,
    /// Whether the next message must be a full snapshot.
    pub(super) needs_snapshot: bool,
    pub(super) health: HashMap<String, pb::TargetHealth>,
}

pub(super) struct Owned {
    pub(super) member: String,
    pub(super) generation: u64,
    /// What was sent (without handover fields), to detect changed target
    /// definitions; `None` for an owner learnt back (from a rejoining
    /// scraper or persisted state) whose definition is not confirmed yet.
    pub(super) sent: Option<pb::Target>,
}

pub(super) struct State {
    pub(super) config: Arc<Config>,
    /// The last discovery result, to rebuild targets on a reload.
    pub(super) discovered: Arc<DiscoveredTargets>,
    pub(super) storage_endpoint: String,
    pub(super) pools: BTreeMap<String, pb::ScrapePool>,
    pub(super) targets: BTreeMap<String, ScrapeTarget>,
    pub(super) dropped: Vec<DroppedTarget>,
    pub(super) members: BTreeMap<String, MemberState>,
    /// Members of restored state that have not rejoined, until when they
    /// are presumed alive.
    pub(super) presumed: HashMap<String, Instant>,
    pub(super) owners: HashMap<String, Owned>,
    /// Last series count per target (the assignment's weights).
    pub(super) weights: HashMap<String, u64>,
    pub(super) generation: u64,
    /// Whether discovery has delivered a result since start.
    pub(super) synced: bool,
    pub(super) handover_lead: Duration,
    pub(super) moves: std::collections::VecDeque<Move>,
    pub(super) persist: Option<crate::ha::PersistQueue>,
}

impl State {
    pub(super) fn new(config: Arc<Config>, options: &CoordinatorOptions) -> Self {
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

    pub(super) async fn run(
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
    pub(super) fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::Join { hello, session, tx } => {
                tracing::info!(scraper = %hello.scraper_id, addr = %hello.http_addr, draining = hello.draining, "scraper joined");
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
                // An owner learnt from persisted state that the scraper does
                // not run is stale (it handed the target on, and the save of
                // that move did not happen): forget it, so the target is
                // assigned afresh instead of restarted on a scraper that may
                // be draining.
                let running: std::collections::HashSet<&str> =
                    hello.running.iter().map(|r| r.target_id.as_str()).collect();
                self.owners.retain(|t, o| {
                    o.member != hello.scraper_id || o.sent.is_some() || running.contains(t.as_str())
                });
                self.presumed.remove(&hello.scraper_id);
                self.members.insert(
                    hello.scraper_id,
                    MemberState {
                        session,
                        // A scraper that drains across a leader change says
                        // so in its Hello: it gets nothing new meanwhile.
                        draining: hello.draining,
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
    pub(super) fn rebuild_targets(&mut self) {
        let groups = self.discovered.clone();
        let mut active = BTreeMap::new();
        let mut dropped = Vec::new();
        for sc in &self.config.scrape_configs {
            let Some(job_groups) = groups.get(&sc.job_name) else {
                continue;
            };
            let (mut a, d) = targets::build(sc, job_groups);
            if sc.target_limit > 0 && a.len() as u64 > sc.target_limit {
                // As Prometheus: the targets stay, and every scrape fails.
                let error = format!(
                    "target_limit exceeded (number of targets: {}, limit: {})",
                    a.len(),
                    sc.target_limit
                );
                tracing::warn!(job = %sc.job_name, %error, "job not scraped");
                for t in &mut a {
                    t.forced_error = Some(error.clone());
                }
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

    pub(super) fn view(&self) -> ClusterView {
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

    pub(super) fn record_metrics(&self) {
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
