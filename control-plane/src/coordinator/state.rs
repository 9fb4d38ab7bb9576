//! The coordinator's state and how each input changes it: pure, with the
//! clock passed in as [`Now`]; the assignment rounds are in
//! [`super::plan`], the task that feeds it in [`super::task`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scrapegrid_common::config::Config;
use scrapegrid_proto::v1 as pb;

use super::inputs::{Hello, TargetReport};
use super::ledger::Ledger;
use super::wire::pool;
use super::{ClusterView, CoordinatorOptions, MemberView, Move, TargetOwner};
use crate::discovery::DiscoveredTargets;
use crate::targets::{self, DroppedTarget, ScrapeTarget};

/// The clock as the pure part sees it: read once by the task per input.
#[derive(Clone, Copy, Debug)]
pub(super) struct Now {
    /// For membership deadlines.
    pub(super) mono: Instant,
    /// Milliseconds since the Unix epoch: handover times, moves.
    pub(super) wall_ms: i64,
}

impl Now {
    pub(super) fn read() -> Self {
        Now {
            mono: Instant::now(),
            wall_ms: scrapegrid_common::clock::now_ms(),
        }
    }
}

/// How many moves the view keeps.
pub(super) const MOVES_KEPT: usize = 1000;

pub(super) struct MemberState {
    /// Which of the member's sessions this is: inputs of an older session
    /// (a stream that ended after the member reconnected) are ignored.
    pub(super) session: u64,
    /// Said Goodbye: takes nothing new, hands everything over.
    pub(super) draining: bool,
    pub(super) http_addr: String,
    pub(super) last_seen: Instant,
    /// Pools this member has been sent, as sent.
    pub(super) pools_sent: HashMap<String, pb::ScrapePool>,
    /// Whether the next message must be a full snapshot.
    pub(super) needs_snapshot: bool,
    pub(super) health: HashMap<String, TargetReport>,
}

#[derive(Clone, Debug, PartialEq)]
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
    pub(super) membership_timeout: Duration,
    pub(super) moves: std::collections::VecDeque<Move>,
    /// Handovers whose time has not come, by target: the old owner (empty
    /// for a start held back after a takeover), the new owner and the
    /// handover time, so that a snapshot re-sent to the
    /// new owner (it restarted mid-handover) still starts the target then,
    /// and one that takes the place of a new owner that is gone starts
    /// then too.
    pub(super) handovers: HashMap<String, (String, String, i64)>,
    /// Owners learnt from a Hello that the store does not have (a leader
    /// sent the move and died before saving it): saved at the next round,
    /// so the next leader does not restore the stale owner.
    pub(super) unsaved: HashSet<String>,
    /// Targets whose restored owner came back without them: the saved
    /// owner was stale, so a member not back yet may run them at a newer
    /// generation. Nobody new takes them while a member is presumed.
    pub(super) disowned: HashSet<String>,
    /// Targets each member was last made owner of without being told
    /// (restored from the store, or learnt from its Hello): what its next
    /// Hello checks, so a join costs its own targets, not every target.
    pub(super) unconfirmed_of: HashMap<String, Vec<String>>,
    /// Each member's targets and load, the unowned and the gone targets,
    /// kept in step with `owners`, `targets` and `weights` (which change
    /// only through the ledger's methods).
    pub(super) ledger: Ledger,
    /// Targets the next round checks whatever their owner: new, gone or
    /// changed in discovery, owners learnt from a Hello.
    pub(super) dirty: HashSet<String>,
    /// The next round checks every target (after a reload: pools too).
    pub(super) recheck_all: bool,
    /// When the handovers a predecessor may have set are over (the start
    /// of a term that restored state, plus the handover lead, in wall
    /// milliseconds): what this leader starts afresh starts then at the
    /// earliest.
    pub(super) settled_ms: i64,
}

impl State {
    /// A term's first state: owners restored from the predecessor's
    /// persisted state are presumed alive for a membership timeout, and
    /// generations start above every generation handed out before `now`.
    pub(super) fn new(config: Arc<Config>, options: &CoordinatorOptions, now: Now) -> Self {
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
            generation: generation_floor(now),
            synced: false,
            handover_lead: options.handover_lead,
            membership_timeout: options.membership_timeout,
            moves: Default::default(),
            handovers: HashMap::new(),
            unsaved: HashSet::new(),
            disowned: HashSet::new(),
            unconfirmed_of: HashMap::new(),
            ledger: Ledger::default(),
            dirty: HashSet::new(),
            recheck_all: true,
            settled_ms: match options.restored {
                Some(_) => now.wall_ms + options.handover_lead.as_millis() as i64,
                None => 0,
            },
        };
        if let Some(restored) = &options.restored {
            let until = now.mono + options.membership_timeout;
            state.generation = state.generation.max(restored.generation);
            for o in &restored.owners {
                state.generation = state.generation.max(o.generation);
                state.presumed.insert(o.member.clone(), until);
                state
                    .unconfirmed_of
                    .entry(o.member.clone())
                    .or_default()
                    .push(o.target_id.clone());
                state.set_owner(
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

    /// A scraper (re)joins; returns whether the assignment may change.
    pub(super) fn join(&mut self, hello: Hello, session: u64, now: Now) -> bool {
        tracing::info!(scraper = %hello.scraper_id, addr = %hello.http_addr, draining = hello.draining, "scraper joined");
        // Generations only grow, also across control plane restarts: the
        // storage node fences batches with older generations.
        let running_max = hello
            .running
            .iter()
            .map(|r| r.generation)
            .max()
            .unwrap_or(0);
        self.generation = self.generation.max(running_max);
        // An owner learnt from persisted state (or an earlier Hello) that
        // the scraper does not run is stale (it handed the target on, and
        // the save of that move did not happen): forget it, so the target
        // is assigned afresh instead of restarted on a scraper that may be
        // draining. Someone else may run it at a newer generation (that
        // move's save is what did not happen): it waits for the members
        // not back yet.
        let running: HashSet<&str> = hello.running.iter().map(|r| r.target_id.as_str()).collect();
        for t in self
            .unconfirmed_of
            .remove(&hello.scraper_id)
            .unwrap_or_default()
        {
            let stale = !running.contains(t.as_str())
                && self
                    .owners
                    .get(&t)
                    .is_some_and(|o| o.member == hello.scraper_id && o.sent.is_none());
            // Confirmed, or assigned afresh, at the next round.
            self.dirty.insert(t.clone());
            if stale {
                self.remove_owner(&t);
                self.disowned.insert(t);
            }
        }
        // What it runs is its own, unless someone newer owns it.
        let mut learnt = Vec::new();
        for r in &hello.running {
            let newer = self
                .owners
                .get(&r.target_id)
                .is_some_and(|o| o.generation >= r.generation);
            if !newer {
                self.unsaved.insert(r.target_id.clone());
                self.disowned.remove(&r.target_id);
                learnt.push(r.target_id.clone());
                self.dirty.insert(r.target_id.clone());
                self.set_owner(
                    r.target_id.clone(),
                    Owned {
                        member: hello.scraper_id.clone(),
                        generation: r.generation,
                        sent: None,
                    },
                );
            }
        }
        if !learnt.is_empty() {
            self.unconfirmed_of.insert(hello.scraper_id.clone(), learnt);
        }
        self.presumed.remove(&hello.scraper_id);
        self.members.insert(
            hello.scraper_id,
            MemberState {
                session,
                // A scraper that drains across a leader change says so in
                // its Hello: it gets nothing new meanwhile.
                draining: hello.draining,
                http_addr: hello.http_addr,
                last_seen: now.mono,
                pools_sent: HashMap::new(),
                needs_snapshot: true,
                health: HashMap::new(),
            },
        );
        true
    }

    /// A session ended; returns whether the member left (a newer session
    /// of the same member stays).
    pub(super) fn leave(&mut self, scraper_id: &str, session: u64) -> bool {
        if self
            .members
            .get(scraper_id)
            .is_some_and(|m| m.session == session)
        {
            tracing::info!(scraper = %scraper_id, "scraper left");
            self.members.remove(scraper_id);
            return true;
        }
        false
    }

    /// The member said Goodbye: it hands everything over and keeps its
    /// stream; returns whether that is news.
    pub(super) fn drain(&mut self, scraper_id: &str, session: u64) -> bool {
        match self.members.get_mut(scraper_id) {
            Some(m) if m.session == session && !m.draining => {
                tracing::info!(scraper = %scraper_id, "scraper draining");
                m.draining = true;
                true
            }
            _ => false,
        }
    }

    /// A heartbeat with the health of what the member scrapes; the series
    /// counts of targets it owns become their weights. Never changes the
    /// assignment by itself (weights count at the next round).
    pub(super) fn status(
        &mut self,
        scraper_id: &str,
        session: u64,
        reports: Vec<TargetReport>,
        now: Now,
    ) {
        let Some(m) = self.members.get_mut(scraper_id) else {
            return;
        };
        if m.session != session {
            return;
        }
        m.last_seen = now.mono;
        // Taken out while the weights change (they change the ledger).
        let mut health = std::mem::take(&mut m.health);
        for h in reports {
            let owned = self
                .owners
                .get(&h.target_id)
                .is_some_and(|o| o.member == scraper_id);
            if owned && h.series_count > 0 {
                self.set_weight(&h.target_id, h.series_count);
            }
            health.insert(h.target_id.clone(), h);
        }
        if let Some(m) = self.members.get_mut(scraper_id) {
            m.health = health;
        }
    }

    /// Puts a validated configuration in force: the pools, and the targets
    /// rebuilt from the last discovery result.
    pub(super) fn reload(&mut self, config: Arc<Config>) {
        self.pools = config
            .scrape_configs
            .iter()
            .map(|sc| (sc.job_name.clone(), pool(sc)))
            .collect();
        self.config = config;
        self.rebuild_targets();
        self.recheck_all = true;
        tracing::info!(jobs = self.pools.len(), "configuration reloaded");
    }

    /// A new discovery result.
    pub(super) fn discovered(&mut self, discovered: Arc<DiscoveredTargets>) {
        self.discovered = discovered;
        self.synced = true;
        self.rebuild_targets();
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
        let changed = self.set_targets(active);
        self.dirty.extend(changed);
        self.dropped = dropped;
    }

    /// Drops members whose last status is older than the membership
    /// timeout, and presumed members whose time is up; returns whether any
    /// was dropped.
    pub(super) fn expire(&mut self, now: Now) -> bool {
        let timeout = self.membership_timeout;
        let before = self.members.len();
        self.members.retain(|id, m| {
            let alive = now.mono.saturating_duration_since(m.last_seen) <= timeout;
            if !alive {
                tracing::warn!(scraper = %id, "membership timeout; removing scraper");
            }
            alive
        });
        self.handovers.retain(|_, (_, _, at)| *at > now.wall_ms);
        let presumed = self.presumed.len();
        self.presumed.retain(|id, until| {
            let alive = *until > now.mono;
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
                    let owned = self.ledger.of(id);
                    MemberView {
                        id: id.clone(),
                        http_addr: m.http_addr.clone(),
                        targets: self.ledger.count(id),
                        series: owned.filter_map(|t| self.weights.get(t)).sum(),
                        draining: m.draining,
                    }
                })
                .collect(),
            moves: self.moves.iter().cloned().collect(),
            active,
            dropped: self.dropped.clone(),
        }
    }
}

/// Returns the first generation of a control plane run: microseconds since
/// the Unix epoch, so a restarted control plane starts above every generation
/// its predecessor handed out (it would need a million changes a second to
/// get ahead of the clock) and the storage node's fencing keeps accepting.
fn generation_floor(now: Now) -> u64 {
    (now.wall_ms.max(1) as u64) * 1000
}
