//! Rescaling end to end (issue 5): many targets at a short interval while
//! scrapers join, drain on SIGTERM and die on SIGKILL.
//!
//! After each phase the window it spans is audited twice: the raw samples
//! the storage node holds (`Query.Select`, stale markers included) and the
//! request log of the targets themselves, which shows a slot scraped twice
//! even when both scrapes were stored under one timestamp. A move between
//! live scrapers must cost nothing: no missed interval, no duplicate, no
//! stale marker. A SIGKILL may cost at most the membership timeout plus one
//! interval, and still no duplicate. The figures of every phase are printed
//! (`cargo nextest run --no-capture`) before anything is asserted, so a
//! failing run still shows them.
//!
//! Timing: targets scraped every 500 ms, membership timeout 3 s. Each phase
//! is its change(s), the wait until the control plane shows every target up
//! on a live scraper, then 3 s of steady scraping; its window runs from just
//! before the change to the end of the steady period. The whole rescale
//! test takes about 20 s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use scrapegrid_proto::is_stale_marker;
use scrapegrid_tests::audit::{self, coverage, request_coverage, Coverage, FleetServer, Window};
use scrapegrid_tests::{eventually, hold_for, Cluster};

const JOB: &str = "fleet";
const INTERVAL_MS: i64 = 500;
const MEMBERSHIP_TIMEOUT: &str = "3s";
const MEMBERSHIP_TIMEOUT_MS: i64 = 3000;
/// How long the cluster runs unchanged after the assignment settled.
const STEADY: Duration = Duration::from_secs(3);
/// How long an assignment may take to settle after a graceful change.
const SETTLE: Duration = Duration::from_secs(20);
/// How long the SIGKILL window runs before the kill: more than a scrape
/// timeout plus delivery, so in-flight scrapes lost to the kill are counted
/// in the kill's window.
const KILL_LEAD: Duration = Duration::from_secs(1);

/// How long a SIGTERMed scraper may take to drain and exit.
const DRAIN: Duration = Duration::from_secs(20);

fn config(fleet: &FleetServer) -> String {
    format!(
        "global:\n  scrape_interval: {INTERVAL_MS}ms\n  scrape_timeout: {}ms\nscrape_configs:\n  - job_name: {JOB}\n{}",
        INTERVAL_MS * 4 / 5,
        fleet.static_configs()
    )
}

fn fleet_body(i: usize, extra: bool) -> String {
    let mut body = format!("# TYPE fleet_value gauge\nfleet_value {i}\n");
    if extra {
        body.push_str("# TYPE fleet_extra gauge\nfleet_extra 1\n");
    }
    body
}

/// Returns the owning scraper and the health of every target, by its `t` label.
async fn owners(cluster: &Cluster) -> Option<BTreeMap<usize, (String, String)>> {
    let t = cluster.targets().await.ok()?;
    t["activeTargets"]
        .as_array()?
        .iter()
        .map(|t| {
            let i = t["labels"]["t"].as_str()?.parse().ok()?;
            let scraper = t["scraper"].as_str().unwrap_or_default().to_string();
            Some((i, (scraper, t["health"].as_str()?.to_string())))
        })
        .collect()
}

/// Waits until all `targets` are up and owned by the `live` scrapers, each
/// of which owns at least one; returns the owners.
async fn settle(
    cluster: &Cluster,
    targets: usize,
    live: &[&str],
    deadline: Duration,
) -> anyhow::Result<BTreeMap<usize, String>> {
    eventually(deadline, || async {
        let o = owners(cluster).await?;
        let ok = o.len() == targets
            && o.values()
                .all(|(s, h)| live.contains(&s.as_str()) && h == "up")
            && live.iter().all(|l| o.values().any(|(s, _)| s == l));
        ok.then(|| o.into_iter().map(|(i, (s, _))| (i, s)).collect())
    })
    .await
}

/// Returns the owners once a steady period is over; records a failure
/// unless every target is listed, up, and owned by one of the `live` scrapers.
async fn owned_by_live(
    cluster: &Cluster,
    targets: usize,
    live: &[&str],
    phase: &str,
    failures: &mut Vec<String>,
) -> anyhow::Result<BTreeMap<usize, String>> {
    let o = owners(cluster)
        .await
        .context("reading the control plane's /api/v1/targets")?;
    let bad: Vec<_> = o
        .iter()
        .filter(|(_, (s, h))| !live.contains(&s.as_str()) || h != "up")
        .collect();
    expect(failures, o.len() == targets && bad.is_empty(), || {
        format!(
            "{phase}: after the steady period {} targets are listed (want {targets}); \
             these are not up on a live scraper: {bad:?}",
            o.len()
        )
    });
    Ok(o.into_iter().map(|(i, (s, _))| (i, s)).collect())
}

/// Waits (up to 10 s) until every `up` series of the job holds a sample at
/// or after `end_ms`, so the tail of the last window is stored before it is
/// audited. Gives up quietly: what is missing then shows as a gap.
async fn wait_stored_until(cluster: &Cluster, targets: usize, end_ms: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let up = audit::select(
            &cluster.storage_grpc,
            &[("job", JOB), ("__name__", "up")],
            end_ms - 3 * INTERVAL_MS,
            end_ms + 60_000,
        )
        .await
        .unwrap_or_default();
        let covered = up.iter().all(|s| {
            s.samples
                .iter()
                .any(|(t, v)| *t >= end_ms && !is_stale_marker(*v))
        });
        if up.len() >= targets && covered {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One phase of the test: a change and the steady period after it.
struct Phase {
    name: &'static str,
    window: Window,
    before: BTreeMap<usize, String>,
    after: BTreeMap<usize, String>,
    /// Scrapers that joined during the phase.
    joiners: Vec<&'static str>,
    /// Scrapers that left (drained or were killed) during the phase.
    leavers: Vec<&'static str>,
    /// Whether every change was graceful (joins and SIGTERM drains).
    graceful: bool,
    /// What else to print about the phase.
    notes: Vec<String>,
}

impl Phase {
    /// Returns the targets whose owner changed.
    fn moved(&self) -> Vec<usize> {
        self.before
            .iter()
            .filter(|(i, s)| self.after.get(i) != Some(s))
            .map(|(i, _)| *i)
            .collect()
    }
}

/// What the audit of one phase found.
struct Findings {
    up: Coverage,
    value: Coverage,
    /// Stale markers in any series of the job: (series name, `t`, timestamp).
    stale: Vec<(String, String, i64)>,
    source: Coverage,
    /// Where the duplicates and gaps of `up` and of the requests are, in ms
    /// from the window's start.
    examples: Vec<String>,
}

/// Describes the duplicates and the gaps of one series or request log;
/// `by(t)` names who sent what is at `t` (empty when unknown).
fn examples(what: &str, c: &Coverage, window: Window, by: &dyn Fn(i64) -> String) -> Vec<String> {
    let at = |t: i64| format!("+{}{}", t - window.start_ms, by(t));
    let dups = c
        .duplicate_pairs
        .iter()
        .map(|(a, b)| format!("{what}: twice, at {} and {} ms", at(*a), at(*b)));
    let gaps = c
        .gap_pairs
        .iter()
        .map(|(a, b)| format!("{what}: nothing between {} and {} ms", at(*a), at(*b)));
    dups.chain(gaps).collect()
}

/// Returns " (sender, ...)" for the requests of `log` that arrived at `t`,
/// naming scrapers by their pid.
fn senders(log: &[(i64, Option<i32>)], t: i64, names: &BTreeMap<i32, String>) -> String {
    let who: Vec<String> = log
        .iter()
        .filter(|(at, _)| *at == t)
        .map(|(_, pid)| match pid {
            Some(p) => names.get(p).cloned().unwrap_or_else(|| format!("pid {p}")),
            None => "unknown sender".into(),
        })
        .collect();
    if who.is_empty() {
        String::new()
    } else {
        format!(" ({})", who.join(", "))
    }
}

/// Audits one phase's window: the stored `up` and `fleet_value` series, the
/// stale markers of every series of the job, and the targets' request logs.
async fn audit_phase(
    cluster: &Cluster,
    fleet: &FleetServer,
    names: &BTreeMap<i32, String>,
    window: Window,
) -> anyhow::Result<Findings> {
    let margin = 3 * INTERVAL_MS;
    let series = audit::select(
        &cluster.storage_grpc,
        &[("job", JOB)],
        window.start_ms - margin,
        window.end_ms + margin,
    )
    .await?;
    let mut f = Findings {
        up: Coverage::default(),
        value: Coverage::default(),
        stale: Vec::new(),
        source: Coverage::default(),
        examples: Vec::new(),
    };
    for s in &series {
        let c = coverage(&s.samples, INTERVAL_MS, window);
        match s.label("__name__") {
            "up" => {
                let what = format!("t={} stored up", s.label("t"));
                f.examples
                    .extend(examples(&what, &c, window, &|_| String::new()));
                f.up.add(&c);
            }
            "fleet_value" => f.value.add(&c),
            _ => {}
        }
        for t in &c.stale {
            let name = s.label("__name__").to_string();
            f.stale.push((name, s.label("t").to_string(), *t));
        }
    }
    for i in 0..fleet.len() {
        let log = fleet.requests_by(i);
        let times: Vec<i64> = log.iter().map(|(t, _)| *t).collect();
        let c = request_coverage(&times, INTERVAL_MS, window);
        let by = |t: i64| senders(&log, t, names);
        f.examples
            .extend(examples(&format!("t={i} requests"), &c, window, &by));
        f.source.add(&c);
    }
    Ok(f)
}

fn expect(failures: &mut Vec<String>, ok: bool, what: impl FnOnce() -> String) {
    if !ok {
        failures.push(what());
    }
}

/// Scrapers 2 -> 4 (joins) -> 2 (SIGTERM drains) -> 1 (SIGKILL) under 80
/// targets at 500 ms: graceful moves miss nothing, take no slot twice and write
/// no stale marker; only the leavers' targets move and a join moves about
/// 1/N; a SIGKILL leaves no gap over membership timeout plus one interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescaling_moves_targets_without_gaps_or_duplicates() -> anyhow::Result<()> {
    const TARGETS: usize = 80;
    let fleet = FleetServer::start(TARGETS, |i| fleet_body(i, false)).await?;
    let mut cluster = Cluster::builder()
        .scrapers(2)
        .membership_timeout(MEMBERSHIP_TIMEOUT)
        .config(&config(&fleet))
        .build()
        .await?;
    let mut owners_now = settle(
        &cluster,
        TARGETS,
        &["scraper-0", "scraper-1"],
        Duration::from_secs(30),
    )
    .await?;
    hold_for(STEADY, "steady scraping").await;
    let mut phases = Vec::new();
    // Scraper ids by pid, to name who sent a request.
    let mut names = BTreeMap::new();
    for id in ["scraper-0", "scraper-1"] {
        names.insert(cluster.scraper_mut(id).pid(), id.to_string());
    }
    let mut failures = Vec::new();

    // Joins: 2 -> 3 -> 4.
    let name = "join 2->4";
    let start = audit::now_ms();
    let before = owners_now.clone();
    cluster.add_scraper("scraper-2").await?;
    names.insert(cluster.scraper_mut("scraper-2").pid(), "scraper-2".into());
    settle(
        &cluster,
        TARGETS,
        &["scraper-0", "scraper-1", "scraper-2"],
        SETTLE,
    )
    .await?;
    cluster.add_scraper("scraper-3").await?;
    names.insert(cluster.scraper_mut("scraper-3").pid(), "scraper-3".into());
    let live = ["scraper-0", "scraper-1", "scraper-2", "scraper-3"];
    settle(&cluster, TARGETS, &live, SETTLE).await?;
    hold_for(STEADY, "steady scraping").await;
    owners_now = owned_by_live(&cluster, TARGETS, &live, name, &mut failures).await?;
    phases.push(Phase {
        name,
        window: Window {
            start_ms: start,
            end_ms: audit::now_ms(),
        },
        before,
        after: owners_now.clone(),
        joiners: vec!["scraper-2", "scraper-3"],
        leavers: Vec::new(),
        graceful: true,
        notes: Vec::new(),
    });

    // Drains: SIGTERM scraper-0, then scraper-3.
    let name = "drain 4->2 (SIGTERM)";
    let start = audit::now_ms();
    let before = owners_now.clone();
    let mut notes = Vec::new();
    for (id, live) in [
        ("scraper-0", &["scraper-1", "scraper-2", "scraper-3"][..]),
        ("scraper-3", &["scraper-1", "scraper-2"][..]),
    ] {
        let sent = Instant::now();
        let code = cluster.terminate_scraper(id, DRAIN)?;
        notes.push(format!(
            "{id} exited {:.1} s after SIGTERM with code {code:?}",
            sent.elapsed().as_secs_f64()
        ));
        expect(&mut failures, code == Some(0), || {
            format!("{name}: {id} exited with {code:?} after SIGTERM, not 0")
        });
        settle(&cluster, TARGETS, live, SETTLE).await?;
    }
    hold_for(STEADY, "steady scraping").await;
    let live = ["scraper-1", "scraper-2"];
    owners_now = owned_by_live(&cluster, TARGETS, &live, name, &mut failures).await?;
    phases.push(Phase {
        name,
        window: Window {
            start_ms: start,
            end_ms: audit::now_ms(),
        },
        before,
        after: owners_now.clone(),
        joiners: Vec::new(),
        leavers: vec!["scraper-0", "scraper-3"],
        graceful: true,
        notes,
    });

    // SIGKILL: 2 -> 1.
    let name = "kill 2->1 (SIGKILL)";
    let start = audit::now_ms();
    let before = owners_now.clone();
    // The kill's window starts well before the kill: a scrape that the
    // killed scraper fetched but had not delivered yet is the kill's loss,
    // not the drain's (its timestamp is at most a timeout before the kill).
    hold_for(KILL_LEAD, "the kill's window opens before the kill").await;
    cluster.scraper_mut("scraper-1").kill9();
    let kill_settle = Duration::from_millis(MEMBERSHIP_TIMEOUT_MS as u64) + SETTLE;
    settle(&cluster, TARGETS, &["scraper-2"], kill_settle).await?;
    hold_for(STEADY, "steady scraping").await;
    owners_now = owned_by_live(&cluster, TARGETS, &["scraper-2"], name, &mut failures).await?;
    let end = audit::now_ms();
    phases.push(Phase {
        name,
        window: Window {
            start_ms: start,
            end_ms: end,
        },
        before,
        after: owners_now,
        joiners: Vec::new(),
        leavers: vec!["scraper-1"],
        graceful: false,
        notes: Vec::new(),
    });
    wait_stored_until(&cluster, TARGETS, end).await;

    for phase in &phases {
        let f = audit_phase(&cluster, &fleet, &names, phase.window).await?;
        let moved = phase.moved();
        let name = phase.name;
        let secs = (phase.window.end_ms - phase.window.start_ms) as f64 / 1000.0;
        println!("rescale phase {name} ({secs:.1} s):");
        println!("  moved targets      {} of {TARGETS}", moved.len());
        for note in &phase.notes {
            println!("  {note}");
        }
        println!("  stored up          {}", f.up);
        println!("  stored fleet_value {}", f.value);
        println!("  source requests    {}", f.source);
        println!(
            "  stale markers (any series of the job) {}: {:?}",
            f.stale.len(),
            f.stale.iter().take(10).collect::<Vec<_>>()
        );
        for e in f.examples.iter().take(12) {
            println!("    {e}");
        }
        if f.examples.len() > 12 {
            println!("    ... {} more", f.examples.len() - 12);
        }

        expect(&mut failures, f.up.series == TARGETS, || {
            format!("{name}: {} up series stored, want {TARGETS}", f.up.series)
        });
        // Only the leavers' targets move; a join moves them to the joiners only.
        if phase.leavers.is_empty() {
            let elsewhere: Vec<_> = moved
                .iter()
                .filter(|i| !phase.joiners.contains(&phase.after[i].as_str()))
                .collect();
            expect(&mut failures, elsewhere.is_empty(), || {
                format!("{name}: targets moved between old scrapers: {elsewhere:?}")
            });
            // Ideally the joiners take their fair share and no more;
            // allow 10 % over (the load bound's slack).
            let members: BTreeSet<&String> = phase.after.values().collect();
            let share = phase.joiners.len() as f64 / members.len() as f64;
            let bound = (TARGETS as f64 * share * 1.1).ceil() as usize;
            expect(&mut failures, moved.len() <= bound, || {
                format!("{name}: {} targets moved, more than {bound}", moved.len())
            });
        } else {
            let bystanders: Vec<_> = moved
                .iter()
                .filter(|i| !phase.leavers.contains(&phase.before[i].as_str()))
                .collect();
            expect(&mut failures, bystanders.is_empty(), || {
                format!("{name}: targets of scrapers that stayed moved: {bystanders:?}")
            });
        }
        expect(&mut failures, f.up.duplicates == 0, || {
            format!("{name}: stored duplicates in up: {}", f.up)
        });
        expect(&mut failures, f.value.duplicates == 0, || {
            format!("{name}: stored duplicates in fleet_value: {}", f.value)
        });
        expect(&mut failures, f.source.duplicates == 0, || {
            format!("{name}: a target was scraped twice in a slot: {}", f.source)
        });
        if !phase.graceful {
            let bound = MEMBERSHIP_TIMEOUT_MS + INTERVAL_MS;
            for (what, c) in [
                ("stored up", &f.up),
                ("stored fleet_value", &f.value),
                ("source", &f.source),
            ] {
                expect(&mut failures, c.max_gap_ms <= bound, || {
                    format!("{name}: {what} has a gap over {bound} ms: {c}")
                });
            }
        } else {
            for (what, c) in [
                ("stored up", &f.up),
                ("stored fleet_value", &f.value),
                ("source", &f.source),
            ] {
                expect(&mut failures, c.missed == 0, || {
                    format!("{name}: {what} missed intervals: {c}")
                });
            }
            expect(&mut failures, f.stale.is_empty(), || {
                format!("{name}: stale markers for moved targets: {:?}", f.stale)
            });
        }
    }
    // How the storage node met the previous owners' last scrapes: written out
    // of order after a successor's first batch, or rejected.
    let metrics = reqwest::get(format!("http://{}/metrics", cluster.storage_http))
        .await?
        .text()
        .await?;
    for line in metrics.lines().filter(|l| {
        l.starts_with("scrapegrid_storage_samples_before_successor_total")
            || l.starts_with("scrapegrid_storage_samples_rejected_total")
            || l.starts_with("scrapegrid_storage_batches_refused_total")
            || l.starts_with("scrapegrid_storage_batches_duplicate_total")
    }) {
        println!("  storage: {line}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// A series vanishes exactly at the first scrape of a target's new owner
/// (a scraper that joined): the old owner handed over its series set, so that
/// series gets exactly one stale marker; no other series gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_that_vanishes_during_a_move_gets_one_stale_marker() -> anyhow::Result<()> {
    const TARGETS: usize = 16;
    let fleet = FleetServer::start(TARGETS, |i| fleet_body(i, true)).await?;
    let mut cluster = Cluster::builder()
        .scrapers(1)
        .membership_timeout(MEMBERSHIP_TIMEOUT)
        .config(&config(&fleet))
        .build()
        .await?;
    settle(&cluster, TARGETS, &["scraper-0"], Duration::from_secs(30)).await?;
    hold_for(STEADY, "steady scraping").await;

    // From its first scrape by any process but scraper-0, a target no longer
    // exposes fleet_extra.
    let old = cluster.scraper_mut("scraper-0").pid();
    for i in 0..TARGETS {
        fleet.switch_unless_from(i, old, &fleet_body(i, false));
    }
    let start = audit::now_ms();
    cluster.add_scraper("scraper-1").await?;
    let live = ["scraper-0", "scraper-1"];
    settle(&cluster, TARGETS, &live, SETTLE).await?;
    hold_for(STEADY, "steady scraping").await;
    let mut failures = Vec::new();
    let after = owned_by_live(&cluster, TARGETS, &live, "join 1->2", &mut failures).await?;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let end = audit::now_ms();
    wait_stored_until(&cluster, TARGETS, end).await;

    let moved: BTreeSet<usize> = (0..TARGETS).filter(|i| after[i] == "scraper-1").collect();
    let switched: BTreeSet<usize> = (0..TARGETS)
        .filter(|i| fleet.switched_at(*i).is_some())
        .collect();
    let series = audit::select(
        &cluster.storage_grpc,
        &[("job", JOB)],
        start - 3 * INTERVAL_MS,
        end + 3 * INTERVAL_MS,
    )
    .await?;
    // Stale markers per (series name, target).
    let mut stale: BTreeMap<(String, usize), Vec<i64>> = BTreeMap::new();
    let mut last_extra: BTreeMap<usize, i64> = BTreeMap::new();
    for s in &series {
        let t: usize = s.label("t").parse()?;
        let name = s.label("__name__").to_string();
        for (ts, v) in &s.samples {
            if is_stale_marker(*v) {
                stale.entry((name.clone(), t)).or_default().push(*ts);
            } else if name == "fleet_extra" {
                last_extra.insert(t, *ts);
            }
        }
    }
    let markers_of_moved: Vec<usize> = moved
        .iter()
        .map(|t| stale.get(&("fleet_extra".into(), *t)).map_or(0, Vec::len))
        .collect();
    let others: Vec<_> = stale
        .iter()
        .filter(|((name, t), _)| !(name == "fleet_extra" && moved.contains(t)))
        .collect();
    println!(
        "vanishing series: moved {} of {TARGETS} targets {moved:?}; switched at the new owner {switched:?}",
        moved.len()
    );
    println!("  fleet_extra stale markers per moved target: {markers_of_moved:?}");
    println!("  stale markers in any other series: {others:?}");

    assert!(!moved.is_empty(), "the join moved no target");
    assert_eq!(
        switched, moved,
        "the series vanished at the first scrape by scraper-1 of exactly the moved targets"
    );
    for t in &moved {
        let markers = stale
            .get(&("fleet_extra".into(), *t))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            markers.len(),
            1,
            "fleet_extra of moved target {t} has {} stale markers: {markers:?}",
            markers.len()
        );
        let last = last_extra.get(t).copied().unwrap_or(i64::MIN);
        assert!(
            markers[0] > last,
            "the stale marker of target {t} ({}) precedes its last sample ({last})",
            markers[0]
        );
    }
    assert!(others.is_empty(), "unexpected stale markers: {others:?}");
    Ok(())
}
