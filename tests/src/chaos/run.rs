//! Applies a chaos [`plan`](super::plan) to a live cluster and judges the
//! result ([`run`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use scrapegrid_proto::is_stale_marker;

use super::judge::{judge, ScraperFault, TargetRecord, Verdict};
use super::owners::OwnerWatch;
use super::report::Report;
use super::{plan, Fault, Step};
use crate::audit::{self, FleetServer, Window};
use crate::etcd::Etcd;
use crate::ha::{counter_body, Draining, HaCluster, JOB};
use crate::{eventually, hold_for, wait_healthy};

/// The fleet's scrape interval.
pub const INTERVAL_MS: i64 = 500;
/// The control planes' `--membership-timeout`.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(3);
/// The control planes' etcd lease (see [`HaCluster`]).
pub const LEASE: Duration = Duration::from_secs(2);
/// How long, after a scraper stopped answering for its membership timeout
/// (or a leader is back), the control plane may take to give its targets
/// to another scraper: the fault's window reaches that far.
pub const RECOVERY: Duration = Duration::from_secs(4);
/// How long a drained scraper may take to exit.
const DRAIN: Duration = Duration::from_secs(75);
/// The most scrapers running at once, and the fewest left healthy.
const MOST_SCRAPERS: usize = 5;
const FEWEST_HEALTHY: usize = 2;

/// What a run does.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seed: u64,
    /// How long faults are applied.
    pub length: Duration,
    /// Mean time between the starts of two faults.
    pub mean_gap: Duration,
    pub targets: usize,
    pub scrapers: usize,
}

/// What a fault hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Scraper(String),
    Storage,
    Control(usize),
    Etcd,
    Target(usize),
    Cluster,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Scraper(id) => write!(f, "{id}"),
            Subject::Storage => write!(f, "storage node"),
            Subject::Control(i) => write!(f, "control-plane-{i}"),
            Subject::Etcd => write!(f, "etcd"),
            Subject::Target(i) => write!(f, "target {i}"),
            Subject::Cluster => write!(f, "cluster"),
        }
    }
}

/// A fault as it was applied.
#[derive(Clone, Debug)]
pub struct Applied {
    pub fault: Fault,
    pub subject: Subject,
    /// When it started and when it ended (its subject back), ms since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Applied {
    /// Whether this fault may leave its scraper's targets unscraped.
    fn stops_a_scraper(&self) -> bool {
        matches!(
            self.fault,
            Fault::KillScraper | Fault::PauseScraper | Fault::PartitionScraper
        )
    }

    /// Whether this fault may delay the control plane's answer to one that
    /// stops a scraper.
    fn stops_the_leader(&self) -> bool {
        matches!(
            self.fault,
            Fault::KillLeader | Fault::PauseLeader | Fault::KillEtcd
        )
    }
}

/// A fault that holds.
struct Holding {
    applied: usize,
}

enum Event {
    Start(Step),
    End(Holding),
}

/// The cluster under chaos and what the scheduler knows of it.
struct Chaos {
    cluster: HaCluster,
    etcd: Etcd,
    fleet: FleetServer,
    /// Scrapers whose process runs and that are not draining.
    running: BTreeSet<String>,
    /// Scrapers a fault holds (killed, paused or cut off).
    faulted: BTreeSet<String>,
    /// Scraper id -> every pid it ran as.
    pids: BTreeMap<String, Vec<i32>>,
    storage_faulted: bool,
    control_faulted: bool,
    /// The control plane SIGSTOPped now, which answers nothing.
    paused_control: Option<usize>,
    etcd_faulted: bool,
    flapping: BTreeSet<usize>,
    draining: Vec<Draining>,
    /// Each finished drain: scraper, exit code, how long it took.
    drains: Vec<(String, Option<i32>, Duration)>,
    /// Who owned each target when, as the control planes said.
    owners: OwnerWatch,
    next_scraper: usize,
    reloads: usize,
    applied: Vec<Applied>,
    skipped: BTreeMap<Fault, usize>,
}

/// Starts the cluster, applies the plan drawn from `settings.seed`, heals
/// everything, waits until every scrape is stored and judges each target
/// over the whole run.
pub async fn run(settings: Settings) -> Result<(Report, i64, String)> {
    let began = Instant::now();
    let fleet = FleetServer::start(settings.targets, counter_body).await?;
    let etcd = Etcd::start().await?;
    let cluster = HaCluster::builder()
        .control_planes(3)
        .etcd(&etcd)
        .scrapers(settings.scrapers)
        .interval_ms(INTERVAL_MS)
        .membership_timeout("3s")
        .partitionable()
        .build(&fleet)
        .await?;
    let owners = OwnerWatch::start(
        cluster.http.clone(),
        cluster.controls.iter().map(|c| c.http.clone()).collect(),
    );
    let mut chaos = Chaos {
        owners,
        drains: Vec::new(),
        paused_control: None,
        running: cluster.scrapers.iter().map(|s| s.id.clone()).collect(),
        pids: cluster
            .scrapers
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    vec![s.process.as_ref().map_or(-1, |p| p.pid())],
                )
            })
            .collect(),
        next_scraper: settings.scrapers,
        cluster,
        etcd,
        fleet,
        faulted: BTreeSet::new(),
        storage_faulted: false,
        control_faulted: false,
        etcd_faulted: false,
        flapping: BTreeSet::new(),
        draining: Vec::new(),
        reloads: 0,
        applied: Vec::new(),
        skipped: BTreeMap::new(),
    };
    chaos.settled().await.context("before the faults")?;
    hold_for(Duration::from_secs(2), "steady scraping before the faults").await;

    let steps = plan(settings.seed, settings.length, settings.mean_gap);
    let planned = steps.len();
    let start = Instant::now();
    let start_ms = audit::now_ms();
    let mut events: BinaryHeap<Reverse<(Duration, usize)>> = BinaryHeap::new();
    let mut pending: BTreeMap<usize, Event> = BTreeMap::new();
    for (seq, step) in steps.into_iter().enumerate() {
        events.push(Reverse((step.at, seq)));
        pending.insert(seq, Event::Start(step));
    }
    let mut seq = planned;
    while let Some(Reverse((at, id))) = events.pop() {
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        match pending.remove(&id).expect("a pending event") {
            Event::Start(step) => {
                if let Some(holding) = chaos.begin(&step).await? {
                    seq += 1;
                    events.push(Reverse((start.elapsed() + step.hold, seq)));
                    pending.insert(seq, Event::End(holding));
                }
            }
            Event::End(h) => chaos.end(h).await?,
        }
    }
    for d in std::mem::take(&mut chaos.draining) {
        chaos.finish_drain(d).await?;
    }
    chaos.settled().await.context("after the faults")?;
    hold_for(Duration::from_secs(3), "steady scraping after the faults").await;
    let end_ms = audit::now_ms() - INTERVAL_MS;
    chaos
        .cluster
        .wait_counters_stored(&chaos.fleet, Duration::from_secs(60))
        .await
        .context("every scrape stored after the faults")?;
    let verdict = chaos.judge(Window { start_ms, end_ms }).await?;
    let mut logs = chaos.cluster.dir.path().display().to_string();
    if !verdict.is_clean() {
        // Kept for whoever reads the failure.
        let dir = std::mem::replace(&mut chaos.cluster.dir, tempfile::tempdir()?);
        logs = dir.keep().display().to_string();
    }
    chaos.owners.stop();
    let report = Report {
        settings,
        planned,
        applied: chaos.applied,
        skipped: chaos.skipped,
        verdict,
        drains: chaos.drains,
        took: began.elapsed(),
    };
    Ok((report, start_ms, logs))
}

impl Chaos {
    /// Waits until every target is owned by a running scraper.
    async fn settled(&self) -> Result<()> {
        let n = self.fleet.len();
        eventually(Duration::from_secs(60), || async {
            let owners = self.cluster.owners(n).await?;
            owners
                .values()
                .all(|s| self.running.contains(s))
                .then_some(())
        })
        .await
        .context("every target owned by a running scraper")
    }

    fn healthy_scrapers(&self) -> Vec<String> {
        self.running.difference(&self.faulted).cloned().collect()
    }

    /// A healthy scraper to fault, when at least [`FEWEST_HEALTHY`] others stay healthy.
    fn pick_scraper(&self, pick: u64) -> Option<String> {
        let healthy = self.healthy_scrapers();
        (healthy.len() > FEWEST_HEALTHY).then(|| healthy[pick as usize % healthy.len()].clone())
    }

    fn record(&mut self, step: &Step, subject: Subject, start_ms: i64) -> usize {
        self.applied.push(Applied {
            fault: step.fault,
            subject,
            start_ms,
            end_ms: start_ms,
        });
        self.applied.len() - 1
    }

    /// Waits for a drained scraper's exit and records it.
    async fn finish_drain(&mut self, d: Draining) -> Result<String> {
        let id = d.id().to_string();
        let (code, took) = self.cluster.drained(d).await?;
        self.drains.push((id.clone(), code, took));
        Ok(id)
    }

    fn skip(&mut self, fault: Fault) -> Result<Option<Holding>> {
        *self.skipped.entry(fault).or_default() += 1;
        Ok(None)
    }

    /// Applies the start of a fault; returns what must end it, if it holds.
    async fn begin(&mut self, step: &Step) -> Result<Option<Holding>> {
        let now = audit::now_ms();
        let fault = step.fault;
        let subject = match fault {
            Fault::KillScraper | Fault::PauseScraper | Fault::PartitionScraper => {
                let Some(id) = self.pick_scraper(step.pick) else {
                    return self.skip(fault);
                };
                let i = self.record(step, Subject::Scraper(id.clone()), now);
                match fault {
                    Fault::KillScraper => self.cluster.kill_scraper(&id),
                    Fault::PauseScraper => self.scraper_signal(&id, libc::SIGSTOP),
                    _ => self.cluster.partition_scraper(&id, true),
                }
                self.faulted.insert(id);
                return Ok(Some(Holding { applied: i }));
            }
            Fault::DrainScraper => {
                let Some(id) = self.pick_scraper(step.pick) else {
                    return self.skip(fault);
                };
                self.running.remove(&id);
                let d = self.cluster.terminate_scraper(&id, DRAIN);
                self.draining.push(d);
                Subject::Scraper(id)
            }
            Fault::JoinScraper => {
                if self.running.len() >= MOST_SCRAPERS {
                    return self.skip(fault);
                }
                // Every other join brings back a scraper that drained.
                let done = self.draining.iter().position(|d| d.is_finished());
                let id = match done {
                    Some(i) if step.pick.is_multiple_of(2) => {
                        let d = self.draining.swap_remove(i);
                        let id = self.finish_drain(d).await?;
                        self.cluster.restart_scraper(&id).await?;
                        id
                    }
                    _ => {
                        let id = format!("scraper-{}", self.next_scraper);
                        self.next_scraper += 1;
                        self.cluster.add_scraper(&id).await?;
                        id
                    }
                };
                self.note_pid(&id);
                self.running.insert(id.clone());
                Subject::Scraper(id)
            }
            Fault::KillStorage | Fault::PauseStorage | Fault::PartitionStorage => {
                if self.storage_faulted {
                    return self.skip(fault);
                }
                self.storage_faulted = true;
                let i = self.record(step, Subject::Storage, now);
                match fault {
                    Fault::KillStorage => self.cluster.kill_storage(),
                    Fault::PauseStorage => signal(self.cluster.storage.as_ref(), libc::SIGSTOP),
                    _ => self.cluster.partition_storage(true),
                }
                return Ok(Some(Holding { applied: i }));
            }
            Fault::KillLeader | Fault::KillFollower | Fault::PauseLeader => {
                if self.control_faulted {
                    return self.skip(fault);
                }
                // Without a known leader, a "follower" might be the leader.
                let Some(leader) = self.cluster.leader().await else {
                    return self.skip(fault);
                };
                let victim = match fault {
                    Fault::KillFollower => {
                        let followers: Vec<usize> = (0..self.cluster.controls.len())
                            .filter(|i| *i != leader)
                            .collect();
                        followers[step.pick as usize % followers.len()]
                    }
                    _ => leader,
                };
                self.control_faulted = true;
                let i = self.record(step, Subject::Control(victim), now);
                match fault {
                    Fault::PauseLeader => {
                        signal(
                            self.cluster.controls[victim].process.as_ref(),
                            libc::SIGSTOP,
                        );
                        self.paused_control = Some(victim);
                    }
                    _ => self.cluster.kill_control(victim),
                }
                return Ok(Some(Holding { applied: i }));
            }
            Fault::KillEtcd => {
                if self.etcd_faulted {
                    return self.skip(fault);
                }
                self.etcd_faulted = true;
                let i = self.record(step, Subject::Etcd, now);
                self.etcd.kill9();
                return Ok(Some(Holding { applied: i }));
            }
            Fault::Reload => {
                self.reload().await?;
                Subject::Cluster
            }
            Fault::FlapTarget => {
                let t = step.pick as usize % self.fleet.len();
                if !self.flapping.insert(t) {
                    return self.skip(fault);
                }
                let i = self.record(step, Subject::Target(t), now);
                self.fleet.set_status(t, 503);
                return Ok(Some(Holding { applied: i }));
            }
        };
        // An instant fault.
        self.record(step, subject, now);
        Ok(None)
    }

    /// Ends a fault that held, and waits until its subject is back.
    async fn end(&mut self, h: Holding) -> Result<()> {
        let (fault, subject) = {
            let a = &self.applied[h.applied];
            (a.fault, a.subject.clone())
        };
        match (&fault, &subject) {
            (Fault::KillScraper, Subject::Scraper(id)) => {
                self.cluster.restart_scraper(id).await?;
                self.note_pid(id);
            }
            (Fault::PauseScraper, Subject::Scraper(id)) => self.scraper_signal(id, libc::SIGCONT),
            (Fault::PartitionScraper, Subject::Scraper(id)) => {
                self.cluster.partition_scraper(id, false)
            }
            (Fault::KillStorage, _) => {
                self.cluster.start_storage_again()?;
                wait_healthy(&self.cluster.http, &self.cluster.storage_http).await?;
            }
            (Fault::PauseStorage, _) => signal(self.cluster.storage.as_ref(), libc::SIGCONT),
            (Fault::PartitionStorage, _) => self.cluster.partition_storage(false),
            (Fault::KillLeader | Fault::KillFollower, Subject::Control(i)) => {
                self.cluster.restart_control(*i).await?
            }
            (Fault::PauseLeader, Subject::Control(i)) => {
                signal(self.cluster.controls[*i].process.as_ref(), libc::SIGCONT);
                self.paused_control = None;
            }
            (Fault::KillEtcd, _) => self.etcd.start_again().await?,
            (Fault::FlapTarget, Subject::Target(t)) => {
                self.fleet.set_status(*t, 200);
                self.flapping.remove(t);
            }
            other => unreachable!("{other:?} does not hold"),
        }
        match subject {
            Subject::Scraper(id) => {
                self.faulted.remove(&id);
            }
            Subject::Storage => self.storage_faulted = false,
            Subject::Control(_) => self.control_faulted = false,
            Subject::Etcd => self.etcd_faulted = false,
            _ => {}
        }
        self.applied[h.applied].end_ms = audit::now_ms();
        Ok(())
    }

    fn scraper_signal(&self, id: &str, sig: i32) {
        let s = self.cluster.scrapers.iter().find(|s| s.id == id);
        signal(s.and_then(|s| s.process.as_ref()), sig);
    }

    fn note_pid(&mut self, id: &str) {
        let s = self.cluster.scrapers.iter().find(|s| s.id == id);
        if let Some(p) = s.and_then(|s| s.process.as_ref()) {
            self.pids.entry(id.to_string()).or_default().push(p.pid());
        }
    }

    /// Rewrites the configuration (a new comment) and asks every control
    /// plane that runs to reload it.
    async fn reload(&mut self) -> Result<()> {
        self.reloads += 1;
        let config = std::fs::read_to_string(&self.cluster.config)?;
        let body = config.split("\n# reload").next().unwrap_or_default();
        std::fs::write(
            &self.cluster.config,
            format!("{body}\n# reload {}\n", self.reloads),
        )?;
        for (i, c) in self.cluster.controls.iter().enumerate() {
            // A paused one would not answer; a killed one reads the file
            // when it starts again.
            if c.process.is_some() && self.paused_control != Some(i) {
                let url = format!("http://{}/-/reload", c.http);
                let _ = self.cluster.http.post(&url).send().await;
            }
        }
        Ok(())
    }

    /// The window a scraper fault may leave its targets unscraped in: from
    /// its start until the membership timeout and its end are past, and the
    /// control plane had time to move the targets ([`RECOVERY`]); when a
    /// leader fault overlaps it, until the next leader's membership timeout
    /// (from its election, a lease after the fault began) is past too.
    fn window_of(&self, a: &Applied) -> Window {
        let mt = MEMBERSHIP_TIMEOUT.as_millis() as i64;
        let lease = LEASE.as_millis() as i64;
        let recovery = RECOVERY.as_millis() as i64;
        let mut end = a.end_ms.max(a.start_ms + mt) + recovery;
        for l in self.applied.iter().filter(|l| l.stops_the_leader()) {
            if l.start_ms <= end && a.start_ms <= l.end_ms {
                end = end.max(l.end_ms.max(l.start_ms + lease + mt) + recovery);
            }
        }
        Window {
            start_ms: a.start_ms,
            end_ms: end,
        }
    }

    /// The faults of scrapers that owned target `t` when they held: the
    /// scraper scraped it shortly before or during the fault, or the
    /// control planes said it owned it then.
    fn faults_of(&self, t: usize, requests: &[audit::Request]) -> Vec<ScraperFault> {
        let label = t.to_string();
        self.applied
            .iter()
            .filter(|a| a.stops_a_scraper())
            .filter_map(|a| {
                let Subject::Scraper(id) = &a.subject else {
                    return None;
                };
                let window = self.window_of(a);
                let pids = self.pids.get(id).cloned().unwrap_or_default();
                let scraped = requests.iter().any(|r| {
                    r.pid.is_some_and(|p| pids.contains(&p))
                        && window.start_ms - 3 * INTERVAL_MS <= r.at_ms
                        && r.at_ms <= window.end_ms
                });
                let owned = self
                    .owners
                    .owned_during(&label, id, window.start_ms, window.end_ms);
                (scraped || owned).then(|| ScraperFault {
                    window,
                    pids,
                    killed: a.fault == Fault::KillScraper,
                })
            })
            .collect()
    }

    /// When target `t` failed its requests.
    fn failing_of(&self, t: usize) -> Vec<Window> {
        self.applied
            .iter()
            .filter(|a| a.fault == Fault::FlapTarget && a.subject == Subject::Target(t))
            .map(|a| Window {
                start_ms: a.start_ms,
                end_ms: a.end_ms,
            })
            .collect()
    }

    /// Reads what the storage node holds for the fleet and judges every
    /// target. Times are judged (and reported) in ms since the window's start.
    async fn judge(&self, window: Window) -> Result<Verdict> {
        let series = audit::select(
            &self.cluster.storage_grpc,
            &[("job", JOB)],
            0,
            audit::now_ms() + 60_000,
        )
        .await?;
        let o = window.start_ms;
        let rebase = |samples: &[(i64, f64)]| -> Vec<(i64, f64)> {
            samples.iter().map(|&(t, v)| (t - o, v)).collect()
        };
        let shift = |w: Window| Window {
            start_ms: w.start_ms - o,
            end_ms: w.end_ms - o,
        };
        let mut total = Verdict::default();
        for i in 0..self.fleet.len() {
            let t = i.to_string();
            let mine: Vec<_> = series.iter().filter(|s| s.label("t") == t).collect();
            let named = |name: &str| {
                mine.iter()
                    .find(|s| s.label("__name__") == name)
                    .map(|s| rebase(&s.samples))
                    .unwrap_or_default()
            };
            let stale: Vec<i64> = mine
                .iter()
                .flat_map(|s| s.samples.iter())
                .filter(|(_, v)| is_stale_marker(*v))
                .map(|(t, _)| *t - o)
                .collect();
            let mut requests = self.fleet.log(i);
            let mut faults = self.faults_of(i, &requests);
            for f in &mut faults {
                f.window = shift(f.window);
            }
            let failing: Vec<Window> = self.failing_of(i).into_iter().map(shift).collect();
            for r in &mut requests {
                r.at_ms -= o;
            }
            let v = judge(
                &TargetRecord {
                    requests: &requests,
                    counter: &named("fleet_requests_total"),
                    up: &named("up"),
                    stale: &stale,
                    faults: &faults,
                    failing: &failing,
                },
                INTERVAL_MS,
                Window {
                    start_ms: 0,
                    end_ms: window.end_ms - o,
                },
            );
            total.add(&t, &v);
        }
        // Name the processes in the findings.
        for d in &mut total.details {
            for (id, pids) in &self.pids {
                for p in pids {
                    *d = d.replace(&format!("pid Some({p})"), &format!("{id} (pid {p})"));
                }
            }
        }
        Ok(total)
    }
}

fn signal(p: Option<&crate::Process>, sig: i32) {
    if let Some(p) = p {
        p.signal(sig);
    }
}
