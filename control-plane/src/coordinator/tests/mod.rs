//! Table tests of the coordinator's pure part. Each case is a list of steps
//! (scrapers join, drain, leave, crash, rejoin a new leader, time passes,
//! discovery or the configuration changes); after each step a round is
//! planned and applied exactly as the task does, and its messages, rendered
//! on one line, must be the row's. Behind the rows a model of the scrapers
//! runs every message as a scraper does (a snapshot replaces, a removal
//! with a stop time hands over then, an add that awaits a handover starts
//! then), and after every round the model must hold the promises: no target
//! is scraped by two members at any time, every target owned by a live
//! member is scraped from now on without a gap, by its owner at the owner's
//! generation, and generations only grow.
//!
//! A rendered round is `member: snap|delta` per member that got a message,
//! then `+N` targets starting at once, `+N^` targets awaiting a handover,
//! `-N>` handed over at the round's handover time, `-N!` stopped at once
//! (moved with nobody to hand to), `-Nx` gone from discovery, and `pN` pools
//! sent; members are joined by `; `, and a round with no message is `-`.
//! `random.rs` runs random sequences of the same steps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use scrapegrid_common::Labels;
use scrapegrid_proto::v1 as pb;

use super::inputs::{Health, Hello, Running, TargetReport};
use super::ledger::Ledger;
use super::plan::Plan;
use super::state::{Now, State};
use super::CoordinatorOptions;
use crate::discovery::TargetGroup;
use crate::ha::{PersistedOwner, PersistedState, StateChange};

mod random;

const TIMEOUT: Duration = Duration::from_secs(15);
const LEAD: Duration = Duration::from_millis(500);

/// One thing that happens to the cluster.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A scraper opens a session, running nothing.
    Join(&'static str),
    /// As `Join`, with a Hello that says it is draining.
    JoinDraining(&'static str),
    /// A scraper opens a new session and says what it runs (after a leader
    /// change, or a reconnect).
    Rejoin(&'static str),
    /// As `Rejoin`, while draining.
    RejoinDraining(&'static str),
    /// As `Rejoin`, but the Hello claims target `n` at a generation below
    /// its current owner's (a partitioned old owner).
    RejoinClaimingStale(&'static str, usize),
    /// As `Rejoin`, and the Hello claims target `n` at a generation far
    /// above any handed out (a scraper of a leader whose clock ran ahead).
    RejoinClaimingAhead(&'static str, usize),
    /// It says Goodbye.
    Drain(&'static str),
    /// It exits: its stream ends and it scrapes nothing from now on.
    Leave(&'static str),
    /// Its previous session's stream ends late (after it reconnected).
    LeaveOldSession(&'static str),
    /// The process dies silently: it scrapes nothing from now on, sends
    /// nothing, and its stream stays open until membership expires it.
    Crash(&'static str),
    /// It reports `series` for every target it scrapes.
    Weigh(&'static str, u64),
    /// Milliseconds pass: every connected scraper heartbeats, membership
    /// expires.
    Advance(u64),
    /// The leader is replaced: the new one starts from what was persisted,
    /// every session ends, the scrapers keep scraping.
    LeaderChange,
    /// Discovery now returns `n` targets.
    Targets(usize),
    /// A configuration with another scrape interval for the job.
    Reload,
    /// The state store goes away: the leader's changes are not saved (it
    /// sends them all the same) until `StoreBack`.
    StoreDown,
    StoreBack,
}
use Step::*;

struct Case {
    name: &'static str,
    /// Rows that set the case up (checked like the others).
    start: &'static [(Step, &'static str)],
    steps: &'static [(Step, &'static str)],
}

/// Scraper `a` alone owns every target.
const A: &[(Step, &str)] = &[(Join("a"), "a: snap +6 p1")];

/// `a` and `b` own half each, their handover done.
const A_AND_B: &[(Step, &str)] = &[
    (Join("a"), "a: snap +6 p1"),
    (Join("b"), "a: delta -3>; b: snap +3^ p1"),
    (Advance(1000), "-"),
];

const CASES: &[Case] = &[
    Case {
        name: "a target whose new owner is gone before its handover goes to another at that time",
        start: A_AND_B,
        steps: &[
            (Join("c"), "a: delta -1>; b: delta -1>; c: snap +2^ p1"),
            (Join("d"), "a: delta +1^ -1>; b: delta +1^ -1>; c: delta -1>; d: snap +1^ p1"),
            (Leave("c"), "d: delta +1^"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a definition that changes during a handover is re-sent to start at its time",
        start: A,
        steps: &[
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
            (Reload, "a: delta +3 p1; b: delta +3^ p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "the first scraper gets every target in its snapshot",
        start: &[],
        steps: &[(Join("a"), "a: snap +6 p1")],
    },
    Case {
        name: "a joiner takes its share by handover, the others hand over",
        start: A_AND_B,
        steps: &[(Join("c"), "a: delta -1>; b: delta -1>; c: snap +2^ p1")],
    },
    Case {
        name: "a joiner restarted mid-handover still starts at the handover time",
        start: A,
        steps: &[
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
            (Crash("b"), "-"),
            (Join("b"), "b: snap +3^ p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a joiner that reconnects mid-handover keeps waiting for it",
        start: A,
        steps: &[
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
            (Rejoin("b"), "b: snap +3^ p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "an old owner that reconnects mid-handover keeps handing over",
        start: A,
        steps: &[
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
            (Rejoin("a"), "a: snap +3 p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a drain hands everything to the others at the handover time",
        start: A_AND_B,
        steps: &[
            (Drain("b"), "a: delta +3^; b: delta -3>"),
            (Advance(1000), "-"),
            (Leave("b"), "-"),
        ],
    },
    Case {
        name: "the last scraper draining stops at once",
        start: A,
        steps: &[(Drain("a"), "a: delta -6!")],
    },
    Case {
        name: "a second Goodbye changes nothing",
        start: A,
        steps: &[
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
            (Drain("a"), "a: delta -3>; b: delta +3^"),
            (Drain("a"), "-"),
        ],
    },
    Case {
        name: "a drain during a handover hands the targets on at the next time",
        start: A,
        steps: &[
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
            (Drain("b"), "a: delta +3^; b: delta -3>"),
        ],
    },
    Case {
        name: "a joiner that drains before its handover hands back what it awaited",
        start: A_AND_B,
        steps: &[
            (Join("c"), "a: delta -1>; b: delta -1>; c: snap +2^ p1"),
            (Drain("c"), "a: delta +1^; b: delta +1^; c: delta -2>"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a Hello that says draining is given nothing",
        start: &[],
        steps: &[(JoinDraining("a"), "a: snap"), (Join("b"), "b: snap +6 p1")],
    },
    Case {
        name: "a stream that ends fails over at once, without handover",
        start: A_AND_B,
        steps: &[(Leave("b"), "a: delta +3")],
    },
    Case {
        name: "a crashed scraper keeps its targets until its membership expires",
        start: A_AND_B,
        steps: &[
            (Crash("b"), "-"),
            (Advance(10_000), "-"),
            (Advance(6_000), "a: delta +3"),
        ],
    },
    Case {
        name: "the end of an old session does not remove the new one",
        start: A,
        steps: &[
            (Rejoin("a"), "a: snap +6 p1"),
            (LeaveOldSession("a"), "-"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a member over its capacity after new weights hands the excess over",
        start: A_AND_B,
        steps: &[
            (Weigh("b", 10), "-"),
            (Weigh("a", 1000), "a: delta -1>; b: delta +1^"),
            (Advance(1000), "-"),
            (Weigh("b", 1000), "-"),
            (Weigh("a", 1000), "-"),
        ],
    },
    Case {
        name: "a new target goes to one member, a gone one is removed",
        start: A_AND_B,
        steps: &[
            (Targets(7), "a: delta +1"),
            (Targets(4), "a: delta -2x; b: delta -1x"),
            (Targets(0), "a: delta -2x; b: delta -2x"),
        ],
    },
    Case {
        name: "a reload re-sends the changed pool and every target using it",
        start: A_AND_B,
        steps: &[(Reload, "a: delta +3 p1; b: delta +3 p1")],
    },
    Case {
        name: "statuses coming in one member at a time after a leader change move nothing",
        start: A_AND_B,
        steps: &[
            (Weigh("a", 1000), "-"),
            (Weigh("b", 1000), "-"),
            (LeaderChange, "-"),
            (Rejoin("b"), "b: snap +3 p1"),
            (Rejoin("a"), "a: snap +3 p1"),
            (Weigh("a", 1000), "-"),
            (Advance(1000), "-"),
            (Weigh("b", 1000), "-"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a leader change moves nothing: owners are learnt back",
        start: A_AND_B,
        steps: &[
            (LeaderChange, "-"),
            (Rejoin("b"), "b: snap +3 p1"),
            (Rejoin("a"), "a: snap +3 p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a presumed member that never returns fails over after the timeout",
        start: A_AND_B,
        steps: &[
            (Crash("b"), "-"),
            (LeaderChange, "-"),
            (Rejoin("a"), "a: snap +3 p1"),
            (Advance(10_000), "-"),
            (Advance(6_000), "a: delta +3"),
        ],
    },
    Case {
        name: "a joiner after a leader change takes nothing from owners not back yet",
        start: A_AND_B,
        steps: &[
            (LeaderChange, "-"),
            (Join("c"), "c: snap"),
            (Rejoin("a"), "a: snap +2 -1> p1; c: delta +1^ p1"),
            (Rejoin("b"), "b: snap +3 p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name:
            "a restored owner that comes back restarted, running nothing, loses its targets at once",
        start: A_AND_B,
        steps: &[
            (LeaderChange, "-"),
            (Join("c"), "c: snap"),
            (Rejoin("b"), "b: snap +2 -1> p1; c: delta +1^ p1"),
            (Join("a"), "a: snap +2 p1; c: delta +1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a live owner keeps targets whose new owner has not reconnected",
        start: A_AND_B,
        steps: &[
            (LeaderChange, "-"),
            (RejoinDraining("a"), "a: snap +3 p1"),
            (Advance(1000), "-"),
            (Rejoin("b"), "a: delta -3>; b: snap +3 +3^ p1"),
            (Advance(1000), "-"),
            (Leave("a"), "-"),
        ],
    },
    Case {
        name: "a draining scraper that rejoins a new leader hands everything over",
        start: A_AND_B,
        steps: &[
            (LeaderChange, "-"),
            (Rejoin("b"), "b: snap +3 p1"),
            (RejoinDraining("a"), "a: snap -3>; b: delta +3^"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a drain cut by a leader change goes on with the new leader",
        start: A_AND_B,
        steps: &[
            (Drain("a"), "a: delta -3>; b: delta +3^"),
            (LeaderChange, "-"),
            (RejoinDraining("a"), "a: snap"),
            (Rejoin("b"), "b: snap +6 p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a leader that crashed before persisting a handover: the stale owner is forgotten",
        start: A_AND_B,
        steps: &[
            (LeaderChange, "-"),
            (Rejoin("b"), "b: snap +3 p1"),
            (RejoinClaimingStale("a", 0), "a: snap +3 p1"),
        ],
    },
    Case {
        name: "a failover the store lost: the owner back restarted takes nothing from the failover's owner",
        start: A_AND_B,
        steps: &[
            (StoreDown, "-"),
            (Crash("a"), "-"),
            (Advance(16_000), "b: delta +3"),
            (LeaderChange, "-"),
            (StoreBack, "-"),
            (Join("a"), "a: snap"),
            (Rejoin("b"), "a: delta +3^ p1; b: snap +3 -3> p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "a failover the store lost: the next leader saves it when it learns it back",
        start: A_AND_B,
        steps: &[
            (StoreDown, "-"),
            (Crash("a"), "-"),
            (Advance(16_000), "b: delta +3"),
            (LeaderChange, "-"),
            (StoreBack, "-"),
            (Rejoin("b"), "b: snap +6 p1"),
            (LeaderChange, "-"),
            (Join("a"), "a: snap"),
            (Rejoin("b"), "a: delta +3^ p1; b: snap +3 -3> p1"),
            (Advance(1000), "-"),
        ],
    },
    Case {
        name: "generations only grow past what a scraper says it runs",
        start: A,
        steps: &[
            (LeaderChange, "-"),
            (RejoinClaimingAhead("a", 0), "a: snap +6 p1"),
            (Join("b"), "a: delta -3>; b: snap +3^ p1"),
        ],
    },
];

/// One stretch of time a scraper scrapes a target: `[start, stop)`.
#[derive(Clone, Debug)]
struct Interval {
    member: String,
    start: i64,
    stop: Option<i64>,
    generation: u64,
}

/// The scrapers as they run what they are sent, and the store the
/// persister keeps.
struct World {
    state: State,
    now: Now,
    targets: usize,
    reload: bool,
    /// By target id.
    runs: BTreeMap<String, Vec<Interval>>,
    /// Scrapers with a session to the leader: member -> (session, previous).
    sessions: HashMap<String, (u64, u64)>,
    /// Members that died silently, whose streams are still open.
    crashed: std::collections::HashSet<String>,
    /// Until when gaps after a crash are known (wall milliseconds).
    gaps_until: i64,
    /// Whether running a message asserts that generations only grow.
    strict: bool,
    next_session: u64,
    stored: BTreeMap<String, PersistedOwner>,
    stored_generation: u64,
    /// The highest generation each target was ever assigned at.
    highest: HashMap<String, u64>,
    /// Whether changes are lost instead of saved.
    store_down: bool,
}

fn config(reload: bool) -> Arc<scrapegrid_common::config::Config> {
    let yaml = if reload {
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 30s\n"
    } else {
        "scrape_configs:\n  - job_name: j\n"
    };
    Arc::new(scrapegrid_common::config::load_str(yaml, "test.yml").expect("config"))
}

fn options(restored: Option<PersistedState>) -> CoordinatorOptions {
    CoordinatorOptions {
        storage_endpoint: "http://127.0.0.1:1".into(),
        membership_timeout: TIMEOUT,
        startup_grace: Duration::ZERO,
        handover_lead: LEAD,
        restored,
        persist: None,
    }
}

impl World {
    fn new() -> Self {
        let now = Now::read();
        let mut w = World {
            state: State::new(config(false), &options(None), now),
            now,
            targets: 6,
            reload: false,
            runs: BTreeMap::new(),
            sessions: HashMap::new(),
            crashed: Default::default(),
            gaps_until: 0,
            strict: true,
            next_session: 1,
            stored: BTreeMap::new(),
            stored_generation: 0,
            highest: HashMap::new(),
            store_down: false,
        };
        w.discover();
        w
    }

    fn discover(&mut self) {
        let group = TargetGroup {
            source: "static/0".into(),
            targets: (0..self.targets)
                .map(|i| Labels::from_pairs([("__address__", format!("127.0.0.1:{}", 9000 + i))]))
                .collect(),
            labels: Labels::default(),
        };
        let d = BTreeMap::from([("j".to_string(), vec![group])]);
        self.state.discovered(Arc::new(d));
        assert_eq!(self.state.targets.len(), self.targets);
    }

    /// Target `n` in id order.
    fn target(&self, n: usize) -> String {
        self.state.targets.keys().nth(n).expect("target").clone()
    }

    /// What `member` scrapes from now on, at which generation.
    fn running(&self, member: &str) -> Vec<Running> {
        self.runs
            .iter()
            .filter_map(|(t, ivs)| {
                ivs.iter()
                    .find(|iv| iv.member == member && iv.stop.is_none())
                    .map(|iv| Running {
                        target_id: t.clone(),
                        generation: iv.generation,
                    })
            })
            .collect()
    }

    fn join(&mut self, id: &str, draining: bool, running: Vec<Running>) {
        let session = self.next_session;
        self.next_session += 1;
        if self.crashed.remove(id) {
            self.gaps_until = self
                .gaps_until
                .max(self.now.wall_ms + LEAD.as_millis() as i64);
        }
        let previous = self.sessions.get(id).map(|s| s.0).unwrap_or(0);
        self.sessions.insert(id.to_string(), (session, previous));
        let hello = Hello {
            scraper_id: id.to_string(),
            http_addr: String::new(),
            draining,
            running,
        };
        self.state.join(hello, session, self.now);
    }

    fn step(&mut self, step: Step) {
        match step {
            Join(id) => self.join(id, false, vec![]),
            JoinDraining(id) => self.join(id, true, vec![]),
            Rejoin(id) => self.join(id, false, self.running(id)),
            RejoinDraining(id) => self.join(id, true, self.running(id)),
            RejoinClaimingStale(id, n) => {
                let mut running = self.running(id);
                running.push(Running {
                    target_id: self.target(n),
                    generation: 1,
                });
                self.join(id, false, running)
            }
            RejoinClaimingAhead(id, n) => {
                let mut running = self.running(id);
                let t = self.target(n);
                running.retain(|r| r.target_id != t);
                let ahead = self.state.generation + 1_000_000;
                running.push(Running {
                    target_id: t.clone(),
                    generation: ahead,
                });
                // The scraper does run it at that generation.
                for iv in self.runs.get_mut(&t).into_iter().flatten() {
                    if iv.member == id && iv.stop.is_none() {
                        iv.generation = ahead;
                    }
                }
                self.highest.insert(t, ahead);
                self.join(id, false, running)
            }
            Drain(id) => {
                let session = self.sessions[id].0;
                self.state.drain(id, session);
            }
            Leave(id) => {
                let (session, _) = self.sessions[id];
                // What it was handing over is unscraped until then.
                self.gaps_until = self.now.wall_ms + LEAD.as_millis() as i64;
                self.stop_all(id);
                self.state.leave(id, session);
            }
            LeaveOldSession(id) => {
                let previous = self.sessions[id].1;
                self.state.leave(id, previous);
            }
            Crash(id) => {
                self.stop_all(id);
                self.crashed.insert(id.to_string());
            }
            Weigh(id, series) => {
                let reports = self
                    .running(id)
                    .into_iter()
                    .map(|r| TargetReport {
                        target_id: r.target_id,
                        generation: r.generation,
                        health: Health::Up,
                        series_count: series,
                        ..Default::default()
                    })
                    .collect();
                let session = self.sessions[id].0;
                self.state.status(id, session, reports, self.now);
            }
            Advance(ms) => {
                self.now.mono += Duration::from_millis(ms);
                self.now.wall_ms += ms as i64;
                let connected: Vec<(String, u64)> = self
                    .sessions
                    .iter()
                    .map(|(id, s)| (id.clone(), s.0))
                    .collect();
                for (id, session) in connected {
                    self.state.status(&id, session, vec![], self.now);
                }
                self.state.expire(self.now);
            }
            LeaderChange => {
                self.sessions.clear();
                // What the new leader starts afresh waits for the handovers
                // its predecessor may have set (it cannot know them).
                self.gaps_until = self.now.wall_ms + LEAD.as_millis() as i64;
                let restored = PersistedState {
                    generation: self.stored_generation,
                    owners: self.stored.values().cloned().collect(),
                };
                self.state = State::new(config(self.reload), &options(Some(restored)), self.now);
                self.discover();
            }
            Targets(n) => {
                self.targets = n;
                self.discover();
            }
            Reload => {
                self.reload = true;
                self.state.reload(config(true));
            }
            StoreDown => self.store_down = true,
            StoreBack => self.store_down = false,
        }
    }

    /// `id` stops scraping: its process ends.
    fn stop_all(&mut self, id: &str) {
        self.sessions.remove(id);
        let now = self.now.wall_ms;
        for iv in self.runs.values_mut().flatten() {
            if iv.member == id && iv.stop.is_none_or(|s| s > now) {
                iv.stop = Some(now);
            }
        }
    }

    /// Plans, applies and delivers a round as the task does; returns it
    /// rendered.
    fn round(&mut self) -> String {
        assert_eq!(
            self.state.ledger,
            Ledger::count_from(&self.state),
            "the ledger kept in step"
        );
        let plan = self.state.plan(self.now);
        let reference = self.state.plan_reference(self.now);
        assert_eq!(
            comparable(&plan),
            comparable(&reference),
            "a round that reads what changed decides as one that reads every target"
        );
        let moved: HashMap<&str, bool> = plan
            .owners
            .moves
            .iter()
            .map(|m| (m.target.as_str(), m.handover))
            .collect();
        for m in &plan.owners.moves {
            assert_eq!(moved.get(m.target.as_str()), Some(&m.handover));
        }
        self.state.apply(plan.owners);
        assert_eq!(self.state.ledger, Ledger::count_from(&self.state));
        if let Some(change) = plan.persist.as_ref().filter(|_| !self.store_down) {
            self.persist(change);
        }
        let mut lines = Vec::new();
        for (id, a) in &plan.messages {
            // A crashed member's stream stays open until membership
            // expires it: what it is sent is taken, and never run.
            let crashed = self.crashed.contains(id);
            assert!(
                self.sessions.contains_key(id) || crashed,
                "{id} got a message without a session"
            );
            self.state.delivered(id, a);
            if !crashed {
                self.run(id, a);
            }
            lines.push(render(id, a));
        }
        if lines.is_empty() {
            "-".to_string()
        } else {
            lines.join("; ")
        }
    }

    fn persist(&mut self, change: &StateChange) {
        assert!(change.generation > self.stored_generation || self.stored_generation == 0);
        self.stored_generation = change.generation;
        for t in &change.removals {
            self.stored.remove(t);
        }
        for o in &change.upserts {
            self.stored.insert(o.target_id.clone(), o.clone());
        }
    }

    /// `member` runs message `a` as a scraper does.
    fn run(&mut self, member: &str, a: &pb::Assignment) {
        let now = self.now.wall_ms;
        for r in &a.removals {
            // Every loop of the target stops by then: one that starts
            // later (a handover to it still to come) never runs.
            let stop = if r.stop_at_ms > 0 { r.stop_at_ms } else { now };
            for iv in self.runs.entry(r.target_id.clone()).or_default() {
                if iv.member == member && iv.stop.is_none_or(|s| s > now) {
                    iv.stop = Some(iv.stop.map_or(stop, |s| s.min(stop)));
                }
            }
        }
        if a.full {
            // A snapshot replaces the running loops: those it does not list
            // stop; loops already handing over finish their handover.
            for (t, ivs) in self.runs.iter_mut() {
                if !a.targets.iter().any(|x| x.id == *t) {
                    for iv in ivs.iter_mut() {
                        if iv.member == member && iv.stop.is_none() {
                            iv.stop = Some(now);
                        }
                    }
                }
            }
        }
        for t in &a.targets {
            let high = self.highest.entry(t.id.clone()).or_default();
            assert!(
                !self.strict || t.generation >= *high,
                "{}: generation {} after {}",
                t.id,
                t.generation,
                high
            );
            *high = t.generation;
            let ivs = self.runs.entry(t.id.clone()).or_default();
            let current = ivs
                .iter()
                .position(|iv| iv.member == member && iv.stop.is_none());
            // A loop still handing the target over is replaced by the new
            // one, which goes on from where it stops (the scraper's
            // `resume_slot`).
            // One that had not started yet (it awaited a handover from
            // another member) hands on its start.
            let mut start = t.start_at_ms.max(now);
            if current.is_none() {
                for iv in ivs.iter_mut() {
                    if iv.member == member && iv.stop.is_some_and(|s| s > start) {
                        start = start.max(iv.start);
                        iv.stop = Some(start);
                    }
                }
            }
            match current {
                Some(i) => ivs[i].generation = t.generation,
                None => ivs.push(Interval {
                    member: member.to_string(),
                    start,
                    stop: None,
                    generation: t.generation,
                }),
            }
        }
    }

    /// The promises, at this moment.
    fn check(&mut self, context: &str) {
        let now = self.now.wall_ms;
        // A member that died silently leaves its targets unscraped until
        // membership expires it, and those it was handing over until the
        // handover time after that: a fault window, where gaps are known.
        let (members, presumed) = (&self.state.members, &self.state.presumed);
        let known = |c: &String| members.contains_key(c) || presumed.contains_key(c);
        let expired = self.crashed.iter().any(|c| !known(c));
        self.crashed.retain(known);
        if expired {
            self.gaps_until = self.gaps_until.max(now + LEAD.as_millis() as i64);
        }
        let gaps_known = !self.crashed.is_empty() || now < self.gaps_until;
        for ivs in self.runs.values_mut() {
            ivs.retain(|iv| iv.stop.is_none_or(|s| s > now));
        }
        // A loop stopped at its start (replaced before its first slot)
        // never scrapes; it is kept, as a scraper keeps it until then.
        let scrapes = |iv: &&Interval| iv.stop.is_none_or(|s| s > iv.start);
        for (t, ivs) in &self.runs {
            let ivs: Vec<&Interval> = ivs.iter().filter(scrapes).collect();
            for (i, x) in ivs.iter().enumerate() {
                for y in &ivs[i + 1..] {
                    let apart = x.stop.is_some_and(|s| s <= y.start)
                        || y.stop.is_some_and(|s| s <= x.start);
                    assert!(apart, "{context}: {t} scraped twice: {x:?} and {y:?}");
                }
            }
        }
        for (t, owner) in &self.state.owners {
            if !self.state.targets.contains_key(t) {
                continue;
            }
            let live = self.sessions.contains_key(&owner.member)
                && self.state.members.contains_key(&owner.member);
            if !live {
                continue;
            }
            let ivs = self.runs.get(t).cloned().unwrap_or_default();
            let open: Vec<&Interval> = ivs.iter().filter(|iv| iv.stop.is_none()).collect();
            assert_eq!(open.len(), 1, "{context}: {t}: {ivs:?}");
            assert_eq!(open[0].member, owner.member, "{context}: {t}: {ivs:?}");
            assert_eq!(open[0].generation, owner.generation, "{context}: {t}");
            // From now on, without a gap.
            let mut sorted: Vec<Interval> = ivs.iter().filter(scrapes).cloned().collect();
            sorted.sort_by_key(|iv| iv.start);
            let mut covered = now;
            for iv in &sorted {
                assert!(
                    gaps_known || iv.start <= covered,
                    "{context}: {t}: gap before {iv:?}"
                );
                covered = iv.stop.unwrap_or(i64::MAX).max(covered);
            }
        }
        // With a live member to take them, every target has an owner.
        let takers = self.state.members.values().filter(|m| !m.draining).count();
        if takers > 0 && self.state.presumed.is_empty() {
            for t in self.state.targets.keys() {
                assert!(self.state.owners.contains_key(t), "{context}: {t} unowned");
            }
        }
    }
}

/// A plan with every list in one order (rounds build them from hash
/// maps), to compare two plans.
fn comparable(plan: &Plan) -> String {
    let o = &plan.owners;
    let mut released: Vec<&String> = o.released.iter().collect();
    released.sort();
    let mut set: Vec<_> = o.set.iter().collect();
    set.sort_by(|a, b| a.0.cmp(b.0));
    let mut moves: Vec<String> = o.moves.iter().map(|m| format!("{m:?}")).collect();
    moves.sort();
    let persist = plan.persist.as_ref().map(|p| {
        let mut upserts: Vec<String> = p.upserts.iter().map(|u| format!("{u:?}")).collect();
        upserts.sort();
        let mut removals = p.removals.clone();
        removals.sort();
        (p.generation, upserts, removals)
    });
    let messages: Vec<String> = plan
        .messages
        .iter()
        .map(|(id, a)| {
            let mut a = a.clone();
            a.targets.sort_by(|x, y| x.id.cmp(&y.id));
            a.removals.sort_by(|x, y| x.target_id.cmp(&y.target_id));
            format!("{id}: {a:?}")
        })
        .collect();
    format!(
        "generation {}\nreleased {released:?}\nset {set:?}\nmoves {moves:?}\npersist {persist:?}\nmessages {messages:#?}",
        o.generation
    )
}

fn render(member: &str, a: &pb::Assignment) -> String {
    let mut s = format!("{member}: {}", if a.full { "snap" } else { "delta" });
    let count = |n: usize, sign: char, mark: &str, s: &mut String| {
        if n > 0 {
            s.push_str(&format!(" {sign}{n}{mark}"));
        }
    };
    let starting = a.targets.iter().filter(|t| !t.await_handover).count();
    let awaiting = a.targets.len() - starting;
    let reason = |r: &pb::TargetRemoval| pb::RemovalReason::try_from(r.reason);
    let handed = a
        .removals
        .iter()
        .filter(|r| r.stop_at_ms > 0 && reason(r) == Ok(pb::RemovalReason::Moved))
        .count();
    let stopped = a
        .removals
        .iter()
        .filter(|r| r.stop_at_ms == 0 && reason(r) == Ok(pb::RemovalReason::Moved))
        .count();
    let gone = a
        .removals
        .iter()
        .filter(|r| reason(r) == Ok(pb::RemovalReason::Gone))
        .count();
    count(starting, '+', "", &mut s);
    count(awaiting, '+', "^", &mut s);
    count(handed, '-', ">", &mut s);
    count(stopped, '-', "!", &mut s);
    count(gone, '-', "x", &mut s);
    if !a.pools.is_empty() {
        s.push_str(&format!(" p{}", a.pools.len()));
    }
    s
}

#[test]
fn coordinator_rounds() {
    let mut failures = Vec::new();
    for case in CASES {
        let mut w = World::new();
        let mut got = Vec::new();
        for (i, (step, want)) in case.start.iter().chain(case.steps).enumerate() {
            w.step(*step);
            let line = w.round();
            w.check(&format!("{}: step {i} ({step:?})", case.name));
            if line != *want {
                failures.push(format!(
                    "{}: step {i} ({step:?}): want {want:?}, got {line:?}",
                    case.name
                ));
            }
            got.push(line);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_handover_starts_the_new_owner_where_the_old_one_stops() {
    let mut w = World::new();
    w.step(Join("a"));
    w.round();
    w.step(Join("b"));
    let plan = w.state.plan(w.now);
    let stop: Vec<i64> = plan.messages["a"]
        .removals
        .iter()
        .map(|r| r.stop_at_ms)
        .collect();
    let start: Vec<i64> = plan.messages["b"]
        .targets
        .iter()
        .map(|t| t.start_at_ms)
        .collect();
    let at = w.now.wall_ms + LEAD.as_millis() as i64;
    assert!(
        !stop.is_empty() && stop.iter().all(|s| *s == at),
        "{stop:?}"
    );
    assert!(start.len() == stop.len() && start.iter().all(|s| *s == at));
    let moves = &plan.owners.moves;
    assert!(moves.iter().all(|m| m.handover && m.at_ms == at));
    let persist = plan.persist.as_ref().expect("a move is persisted");
    assert_eq!(persist.upserts.len(), stop.len());
    assert!(persist.upserts.iter().all(|o| o.member == "b"));
}

#[test]
fn a_round_with_nothing_new_sends_and_persists_nothing() {
    let mut w = World::new();
    w.step(Join("a"));
    w.round();
    let generation = w.state.generation;
    let plan = w.state.plan(w.now);
    assert!(plan.messages.is_empty());
    assert!(plan.persist.is_none());
    assert!(plan.owners.moves.is_empty());
    w.state.apply(plan.owners);
    assert_eq!(w.state.generation, generation);
}

#[test]
fn an_owner_learnt_back_that_the_store_lacks_is_saved_once() {
    let mut w = World::new();
    for step in [Join("a"), Join("b"), Advance(1000), StoreDown, Crash("a")] {
        w.step(step);
        w.round();
    }
    w.step(Advance(16_000));
    assert_eq!(w.round(), "b: delta +3");
    let learnt: Vec<(String, u64)> = w
        .running("b")
        .into_iter()
        .map(|r| (r.target_id, r.generation))
        .collect();
    let stale = |w: &World| {
        learnt
            .iter()
            .filter(|(t, g)| {
                w.stored
                    .get(t)
                    .is_none_or(|o| o.member != "b" || o.generation != *g)
            })
            .count()
    };
    assert_eq!(stale(&w), 3, "the failover was not saved");
    w.step(LeaderChange);
    w.step(StoreBack);
    w.round();
    w.step(Rejoin("b"));
    w.round();
    assert_eq!(stale(&w), 0, "learnt back from b's Hello, and saved");
    // Rejoining again saves nothing more.
    w.step(Rejoin("b"));
    let plan = w.state.plan(w.now);
    assert!(plan.persist.is_none(), "{:?}", plan.persist);
}

#[test]
fn a_hello_without_an_id_is_refused_at_the_edge() {
    let err = Hello::try_from(pb::Hello::default()).unwrap_err();
    assert_eq!(err.to_string(), "hello: scraper_id is empty");
    let ok = Hello::try_from(pb::Hello {
        scraper_id: "a".into(),
        running: vec![pb::RunningTarget {
            target_id: "t".into(),
            generation: 7,
        }],
        draining: true,
        ..Default::default()
    })
    .expect("hello");
    assert_eq!(ok.running[0].generation, 7);
    assert!(ok.draining);
}
