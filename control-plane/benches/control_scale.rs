//! The control state at scale (issue 17): one leader's coordinator with N
//! targets and M scrapers, driven through its public API as the gRPC
//! service drives it, and the same state saved to and loaded from a real
//! etcd (Debian's `/usr/bin/etcd`, started here on loopback).
//!
//! ```sh
//! cargo bench -p control-plane --bench control_scale -- --targets 1000000 --scrapers 100
//! cargo bench -p control-plane --bench control_scale -- --smoke     # 10,000 and 10, CI
//! ```
//!
//! Prints, each with wall time, the process's CPU time and its RSS growth:
//! the first assignment (every scraper joined, every target placed), one
//! status round (every scraper reports every target it runs, as every
//! `--status-interval`), the cluster view the targets API reads, a scraper
//! lost (its targets fail over), a scraper
//! joining (its share handed over), the save of the whole state to etcd,
//! its bytes there, its load, and a new leader's takeover (restored state,
//! every scraper rejoining with what it runs, every snapshot sent).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use control_plane::coordinator::inputs::{Health, Running};
use control_plane::coordinator::{
    Coordinator, CoordinatorOptions, Event, Hello, TargetReport, OUTBOUND_CAPACITY,
};
use control_plane::discovery::{DiscoveredTargets, TargetGroup};
use control_plane::ha::{
    Election, EtcdCandidate, EtcdOptions, PersistQueue, PersistedState, StateStore,
};
use scrapegrid_common::Labels;
use scrapegrid_proto::v1 as pb;

const TAKEOVER_GRACE: Duration = Duration::from_secs(1);

/// The binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    targets: usize,
    scrapers: usize,
    etcd: bool,
}

fn args() -> Args {
    let mut a = Args {
        targets: 1_000_000,
        scrapers: 100,
        etcd: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        };
        match arg.as_str() {
            "--targets" => a.targets = number("--targets"),
            "--scrapers" => a.scrapers = number("--scrapers"),
            "--no-etcd" => a.etcd = false,
            "--smoke" => {
                a.targets = 10_000;
                a.scrapers = 10;
            }
            // cargo bench passes --bench.
            _ => {}
        }
    }
    a
}

/// CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Resident memory of this process, in bytes.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Wall time, CPU time and RSS growth of one phase.
struct Phase {
    name: &'static str,
    start: Instant,
    cpu: f64,
    rss: u64,
}

impl Phase {
    fn start(name: &'static str) -> Self {
        Self {
            name,
            start: Instant::now(),
            cpu: cpu_seconds(),
            rss: rss_bytes(),
        }
    }

    fn done(self, detail: &str) {
        let rss = rss_bytes() as i64 - self.rss as i64;
        println!(
            "{:<28} {:>9.3} s wall {:>9.3} s CPU {:>+9.1} MiB RSS   {detail}",
            self.name,
            self.start.elapsed().as_secs_f64(),
            cpu_seconds() - self.cpu,
            rss as f64 / (1 << 20) as f64,
        );
    }
}

/// What one fake scraper was told: its targets (id -> generation), from
/// its snapshots and deltas, as a scraper keeps them.
#[derive(Default)]
struct Member {
    targets: HashMap<String, u64>,
    messages: u64,
}

type Members = Arc<Mutex<BTreeMap<String, Member>>>;

/// Opens a session for `id` that reports `running`; a task applies what
/// it is sent.
async fn join(
    c: &Coordinator,
    members: &Members,
    id: &str,
    session: u64,
    running: Vec<Running>,
) -> CancellationToken {
    let (tx, mut rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let stop = CancellationToken::new();
    let (members, member, until) = (members.clone(), id.to_string(), stop.clone());
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = until.cancelled() => None,
            };
            let Some(Ok(pb::ControlMessage {
                msg: Some(pb::control_message::Msg::Assignment(a)),
            })) = msg
            else {
                if msg.is_none() {
                    return;
                }
                continue;
            };
            let mut all = members.lock().unwrap();
            let m = all.entry(member.clone()).or_default();
            m.messages += 1;
            if a.full {
                m.targets.clear();
            }
            for r in &a.removals {
                m.targets.remove(&r.target_id);
            }
            for t in a.targets {
                m.targets.insert(t.id, t.generation);
            }
        }
    });
    let hello = Hello {
        scraper_id: id.to_string(),
        http_addr: String::new(),
        draining: false,
        running,
    };
    c.send(Event::Join { hello, session, tx }).await;
    stop
}

/// Waits until `done` holds for what the scrapers were told.
/// Each member's targets as `f` makes them from (target, generation).
fn per_member<T>(members: &Members, f: impl Fn(&str, u64) -> T) -> Vec<(String, Vec<T>)> {
    let all = members.lock().unwrap();
    all.iter()
        .map(|(id, m)| {
            let items = m.targets.iter().map(|(t, g)| f(t, *g)).collect();
            (id.clone(), items)
        })
        .collect()
}

async fn until(members: &Members, done: impl Fn(&BTreeMap<String, Member>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if done(&members.lock().unwrap()) {
            return;
        }
        assert!(Instant::now() < deadline, "not done in 10 minutes");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn placed(all: &BTreeMap<String, Member>, skip: &HashSet<String>) -> usize {
    all.iter()
        .filter(|(id, _)| !skip.contains(*id))
        .map(|(_, m)| m.targets.len())
        .sum()
}

fn discovered(n: usize) -> Arc<DiscoveredTargets> {
    let group = TargetGroup {
        source: "file_sd/0".into(),
        targets: (0..n)
            .map(|i| {
                Labels::from_pairs([
                    (
                        "__address__",
                        format!("10.{}.{}.{}:9100", i >> 16, (i >> 8) & 255, i & 255),
                    ),
                    ("zone", format!("z{}", i % 3)),
                ])
            })
            .collect(),
        labels: Labels::from_pairs([("env", "bench")]),
    };
    Arc::new(BTreeMap::from([("node".to_string(), vec![group])]))
}

fn options(
    restored: Option<PersistedState>,
    persist: PersistQueue,
    startup_grace: Duration,
) -> CoordinatorOptions {
    CoordinatorOptions {
        storage_endpoint: "http://127.0.0.1:1".into(),
        membership_timeout: Duration::from_secs(600),
        startup_grace,
        handover_lead: Duration::from_millis(500),
        restored,
        persist: Some(persist),
    }
}

/// A single-member etcd on loopback in a temporary directory.
struct Etcd {
    child: Child,
    client: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start() -> Option<Self> {
        let binary = "/usr/bin/etcd";
        if !std::path::Path::new(binary).exists() {
            println!("{binary} is missing (scripts/install-deps.sh): etcd phases skipped");
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        };
        let (client, peer) = (port(), port());
        let client = format!("http://127.0.0.1:{client}");
        let peer = format!("http://127.0.0.1:{peer}");
        let child = Command::new(binary)
            .args(["--name", "bench", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("bench={peer}")])
            .args(["--quota-backend-bytes", &(8u64 << 30).to_string()])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Self {
            child,
            client,
            _dir: dir,
        })
    }

    /// etcd's own figure of its database size.
    async fn db_bytes(&self) -> Option<u64> {
        let text = reqwest::get(format!("{}/metrics", self.client))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("etcd_mvcc_db_total_size_in_use_in_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args()));
}

async fn run(a: Args) {
    // The coordinator's own logs (one line per round) with RUST_LOG set.
    if std::env::var_os("RUST_LOG").is_some() {
        scrapegrid_common::telemetry::init_tracing();
    }
    println!(
        "control state at scale: {} targets, {} scrapers (2 worker threads)",
        a.targets, a.scrapers
    );
    let config = Arc::new(
        scrapegrid_common::config::load_str(
            "scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n",
            "bench.yml",
        )
        .expect("config"),
    );
    let ids: Vec<String> = (0..a.scrapers).map(|i| format!("scraper-{i:03}")).collect();
    let phase = Phase::start("discovery result");
    let targets = discovered(a.targets);
    let (disc_tx, disc_rx) = watch::channel(Arc::new(DiscoveredTargets::new()));
    phase.done("");

    // The first leader: every scraper joins, then discovery delivers and
    // every target is placed in one round.
    let members: Members = Arc::default();
    let persist = PersistQueue::default();
    let c = Coordinator::new(config.clone(), None);
    let term = CancellationToken::new();
    c.lead(
        options(None, persist.clone(), Duration::ZERO),
        disc_rx.clone(),
        term.clone(),
    );
    let mut sessions = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        sessions.push(join(&c, &members, id, i as u64 + 1, vec![]).await);
    }
    // Every join taken in (the task takes events in order), as the
    // startup grace makes sure at a real start.
    c.view().await.expect("leading");
    let phase = Phase::start("first assignment");
    disc_tx.send_replace(targets);
    until(&members, |m| placed(m, &HashSet::new()) == a.targets).await;
    phase.done(&format!("{} targets placed", a.targets));

    // One status round: every scraper reports every target it runs.
    let reports = per_member(&members, |t, generation| TargetReport {
        target_id: t.to_string(),
        generation,
        health: Health::Up,
        series_count: 100,
        ..Default::default()
    });
    let phase = Phase::start("status round");
    for (i, (id, r)) in reports.into_iter().enumerate() {
        let scraper_id = id;
        let session = ids.iter().position(|x| *x == scraper_id).unwrap_or(i) as u64 + 1;
        c.send(Event::Status {
            scraper_id,
            session,
            reports: r,
        })
        .await;
    }
    // The task takes events in order: this answer comes after the last
    // status is taken in.
    c.request_drain("nobody").await;
    phase.done(&format!("{} reports", a.targets));
    let phase = Phase::start("cluster view (targets API)");
    let view = c.view().await.expect("leading");
    phase.done(&format!("{} active targets", view.active.len()));
    drop(view);

    // A scraper is lost: its targets fail over.
    let lost = ids[0].clone();
    let phase = Phase::start("scraper lost (failover)");
    sessions[0].cancel();
    c.send(Event::Leave {
        scraper_id: lost.clone(),
        session: 1,
    })
    .await;
    let skip = HashSet::from([lost.clone()]);
    until(&members, |m| placed(m, &skip) == a.targets).await;
    phase.done(&format!("{} targets moved", a.targets / a.scrapers));
    members.lock().unwrap().remove(&lost);

    // A scraper joins: the others hand it its share.
    let joiner = format!("scraper-{:03}", a.scrapers);
    let phase = Phase::start("scraper joins (handover)");
    let before: u64 = members.lock().unwrap().values().map(|m| m.messages).sum();
    sessions.push(join(&c, &members, &joiner, 10_000, vec![]).await);
    // The joiner's share counted twice until every old owner's delta is in.
    until(&members, |m| {
        m.get(&joiner).is_some_and(|j| !j.targets.is_empty())
            && placed(m, &HashSet::new()) == a.targets
    })
    .await;
    let messages = members
        .lock()
        .unwrap()
        .values()
        .map(|m| m.messages)
        .sum::<u64>()
        - before;
    let share = members.lock().unwrap()[&joiner].targets.len();
    phase.done(&format!(
        "{share} targets handed to it, {messages} messages"
    ));

    // What the leader saved.
    let mut change = persist.take().expect("owners saved");
    let owners = change.upserts.len();
    let key_bytes: usize = change
        .upserts
        .iter()
        .map(|o| {
            control_plane::ha::keys::Keys::new("/scrapegrid/")
                .owner(&o.target_id)
                .len()
                + control_plane::ha::keys::encode_owner(o).len()
        })
        .sum();
    println!(
        "{:<28} {owners} owner keys, {:.1} MiB of keys and values ({:.0} B per target)",
        "state to save",
        key_bytes as f64 / (1 << 20) as f64,
        key_bytes as f64 / owners.max(1) as f64
    );
    change.upserts.sort_by(|x, y| x.target_id.cmp(&y.target_id));
    let mut restored = PersistedState {
        generation: change.generation,
        owners: change.upserts.clone(),
    };

    // The same state through etcd.
    if a.etcd {
        if let Some(etcd) = Etcd::start() {
            let candidate = EtcdCandidate::new(EtcdOptions {
                endpoints: vec![etcd.client.clone()],
                request_timeout: Duration::from_secs(30),
                ..Default::default()
            })
            .expect("etcd options");
            let leadership = tokio::time::timeout(
                Duration::from_secs(30),
                candidate.campaign("http://127.0.0.1:1"),
            )
            .await
            .expect("etcd up within 30 s")
            .expect("leading");
            let empty = etcd.db_bytes().await.unwrap_or(0);
            let phase = Phase::start("etcd save (whole state)");
            candidate
                .save(&leadership, change)
                .await
                .expect("saved to etcd");
            phase.done(&format!(
                "{} transactions of at most {}",
                owners.div_ceil(control_plane::ha::etcd::MAX_TXN_OPS),
                control_plane::ha::etcd::MAX_TXN_OPS
            ));
            let db = etcd.db_bytes().await.unwrap_or(0);
            println!(
                "{:<28} {:.1} MiB in use ({:.0} B per target)",
                "etcd database",
                db.saturating_sub(empty) as f64 / (1 << 20) as f64,
                db.saturating_sub(empty) as f64 / owners.max(1) as f64
            );
            let phase = Phase::start("etcd load (new leader)");
            let loaded = candidate.load().await.expect("loaded from etcd");
            phase.done(&format!("{} owners", loaded.owners.len()));
            assert_eq!(loaded.owners.len(), owners, "what was saved loads back");
            restored = loaded;
        }
    }

    // A new leader takes over: restored state, every scraper rejoins with
    // what it runs.
    term.cancel();
    c.step_down();
    for s in &sessions {
        s.cancel();
    }
    let running = per_member(&members, |t, generation| Running {
        target_id: t.to_string(),
        generation,
    });
    let members2: Members = Arc::default();
    let c2 = Coordinator::new(config, None);
    let term2 = CancellationToken::new();
    // The scrapers rejoin within the startup grace (`--startup-grace`,
    // 2 s by default; 1 s here), so one round places everything.
    let phase = Phase::start("new leader takes over");
    c2.lead(
        options(Some(restored), PersistQueue::default(), TAKEOVER_GRACE),
        disc_rx,
        term2.clone(),
    );
    let mut sessions2 = Vec::new();
    for (i, (id, r)) in running.into_iter().enumerate() {
        sessions2.push(join(&c2, &members2, &id, i as u64 + 1, r).await);
    }
    until(&members2, |m| placed(m, &HashSet::new()) == a.targets).await;
    let moved = c2.view().await.map_or(0, |v| v.moves.len());
    phase.done(&format!(
        "every snapshot sent (wall includes the {} s grace); {moved} moves",
        TAKEOVER_GRACE.as_secs()
    ));
    term2.cancel();
    println!(
        "RSS at the end: {:.1} MiB",
        rss_bytes() as f64 / (1 << 20) as f64
    );
}
