//! Overlapping faults (issue 20): a scraper drains (SIGTERM) while another
//! part of the cluster is down or changing, and still nothing is lost,
//! missed or doubled.
//!
//! - a drain while the storage node restarts after `kill -9`, and a join;
//! - a drain while etcd comes back from `kill -9` and a leader is elected;
//! - a drain while the leading control plane is killed with `kill -9`;
//! - a scraper that joins while etcd is down.
//!
//! Every target serves a counter of the requests it received, so the stored
//! values step by exactly one per scrape: a scrape taken but never stored is
//! a step of two. Each test audits, over the whole fault: stored `up` (no
//! missed interval, no duplicate, no stale marker), the stored counter
//! (every step one, over the whole run), and the targets' request logs (no
//! slot unscraped, none scraped twice). The figures are printed before they
//! are asserted.

use std::time::Duration;

use anyhow::{Context, Result};

use scrapegrid_proto::is_stale_marker;
use scrapegrid_tests::audit::{self, FleetServer};
use scrapegrid_tests::etcd::Etcd;
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{eventually, hold_for, wait_healthy};

const TARGETS: usize = 8;
/// Steady scraping before a fault and after the cluster settled again.
const STEADY: Duration = Duration::from_secs(3);
/// How long a SIGTERMed scraper may take; its own drain deadline is 60 s.
const DRAIN: Duration = Duration::from_secs(75);

/// Lets the cluster scrape for [`STEADY`], waits until every scrape so far
/// is stored, then audits from `start_ms` and asserts nothing was lost.
async fn audit_since(
    cluster: &HaCluster,
    fleet: &FleetServer,
    start_ms: i64,
    what: &str,
) -> Result<()> {
    hold_for(STEADY, "steady scraping").await;
    cluster
        .assert_clean_since(fleet, start_ms, Duration::from_secs(30), what)
        .await
}

/// `kill -9` of etcd; returns once no control plane leads.
async fn kill_etcd(etcd: &mut Etcd, cluster: &HaCluster) -> Result<()> {
    etcd.kill9();
    eventually(Duration::from_secs(10), || async {
        cluster.leader().await.is_none().then_some(())
    })
    .await
    .context("the leader steps down without etcd")
}

/// `kill -9` of the storage node; 2.5 s later one of two scrapers is sent
/// SIGTERM, and 1.5 s after that the storage node starts again. The drain
/// must wait until the storage node has acked every batch of the outage, and
/// the targets it hands over must not miss a slot although neither owner can
/// reach the storage node at the handover. Those targets drop a series at
/// their new owner's first scrape: it gets its one stale marker there, once
/// the handed-over series set arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_during_storage_restart_loses_nothing() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder().scrapers(2).build(&fleet).await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    hold_for(STEADY, "steady scraping").await;
    let moved: Vec<usize> = cluster
        .owners(TARGETS)
        .await
        .context("owners")?
        .into_iter()
        .filter(|(_, s)| s == "scraper-1")
        .map(|(t, _)| t.parse().expect("t label"))
        .collect();
    let pid = cluster.scrapers[1]
        .process
        .as_ref()
        .context("scraper-1")?
        .pid();
    let without_gauge = counter_body(0).replace("# TYPE fleet_value gauge\nfleet_value 0\n", "");
    for &i in &moved {
        fleet.switch_unless_from(i, pid, &without_gauge);
    }

    let start_ms = audit::now_ms();
    cluster.kill_storage();
    hold_for(
        Duration::from_millis(2500),
        "the storage node is down before the drain",
    )
    .await;
    let draining = cluster.terminate_scraper("scraper-1", DRAIN);
    hold_for(
        Duration::from_millis(1500),
        "the drain runs while the storage node is down",
    )
    .await;
    cluster.start_storage_again()?;
    wait_healthy(&cluster.http, &cluster.storage_http).await?;
    let (code, took) = cluster.drained(draining).await?;
    println!(
        "storage restart: scraper-1 drained in {} ms, exit {code:?}",
        took.as_millis()
    );
    assert_eq!(code, Some(0), "a drain exits 0");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    audit_since(&cluster, &fleet, start_ms, "drain during a storage restart").await?;

    // The storage node was down at the handover: the new owner committed
    // its first scrapes before the series set arrived.
    let late = cluster
        .scraper_log("scraper-0")
        .lines()
        .filter(|l| l.contains("handover arrived after the first commit"))
        .count();
    assert_eq!(late, moved.len(), "late handovers");
    // The gauge the moved targets dropped at the handover: one stale
    // marker each, at the new owner's first scrape.
    let gauges = audit::select(
        &cluster.storage_grpc,
        &[("__name__", "fleet_value")],
        start_ms - 60_000,
        audit::now_ms() + 60_000,
    )
    .await?;
    for &i in &moved {
        let s = gauges
            .iter()
            .find(|s| s.label("t") == i.to_string())
            .with_context(|| format!("fleet_value of target {i}"))?;
        let stale: Vec<i64> = s
            .samples
            .iter()
            .filter(|(_, v)| is_stale_marker(*v))
            .map(|(t, _)| *t)
            .collect();
        let switched = fleet.switched_at(i).context("the new owner scraped")?;
        println!("target {i}: switched at {switched}, stale markers at {stale:?}");
        assert_eq!(stale.len(), 1, "target {i}: {stale:?}");
        assert!(
            (stale[0] - switched).abs() < cluster.interval_ms / 2,
            "target {i}: the marker is at the new owner's first scrape ({switched}): {stale:?}"
        );
        assert!(s.samples.iter().all(|(t, _)| *t <= stale[0]));
    }
    Ok(())
}

/// `kill -9` of the storage node, then a second scraper joins and takes
/// half the targets by handover while neither scraper can reach the storage
/// node; 2 s later the storage node starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_during_storage_restart_loses_nothing() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder().scrapers(1).build(&fleet).await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(STEADY, "steady scraping").await;

    let start_ms = audit::now_ms();
    cluster.kill_storage();
    hold_for(
        Duration::from_millis(500),
        "the storage node is down before the join",
    )
    .await;
    cluster.add_scraper("scraper-1").await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    hold_for(
        Duration::from_secs(2),
        "the joiner scrapes while the storage node is down",
    )
    .await;
    cluster.start_storage_again()?;
    wait_healthy(&cluster.http, &cluster.storage_http).await?;
    audit_since(&cluster, &fleet, start_ms, "join during a storage restart").await
}

/// Two control planes on one etcd. `kill -9` of etcd, 5 s later it starts
/// again, and one scraper is sent SIGTERM as it does: the drain must wait
/// for a leader that takes the handover, and no target may wait for the
/// membership timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_during_leader_change_leaves_nothing_unscraped() -> Result<()> {
    let mut etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .control_planes(2)
        .etcd(&etcd)
        .scrapers(2)
        .build(&fleet)
        .await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    hold_for(STEADY, "steady scraping").await;

    let start_ms = audit::now_ms();
    kill_etcd(&mut etcd, &cluster).await?;
    let wait = 5_000 - (audit::now_ms() - start_ms);
    hold_for(
        Duration::from_millis(wait.max(0) as u64),
        "etcd is down for 5 s",
    )
    .await;
    etcd.start_again().await?;
    let draining = cluster.terminate_scraper("scraper-1", DRAIN);
    let (code, took) = cluster.drained(draining).await?;
    println!(
        "leader change: scraper-1 drained in {} ms, exit {code:?}",
        took.as_millis()
    );
    assert_eq!(code, Some(0), "a drain exits 0");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    audit_since(&cluster, &fleet, start_ms, "drain during a leader change").await?;
    drop(etcd);
    Ok(())
}

/// Three control planes on etcd; the leader is killed with `kill -9` at the
/// moment one of two scrapers is sent SIGTERM. The drain must finish with
/// the next leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_while_the_leader_is_killed_loses_nothing() -> Result<()> {
    let etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .control_planes(3)
        .etcd(&etcd)
        .scrapers(2)
        .build(&fleet)
        .await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    hold_for(STEADY, "steady scraping").await;

    let start_ms = audit::now_ms();
    let leader = cluster.leader().await.context("a leader")?;
    cluster.kill_control(leader);
    let draining = cluster.terminate_scraper("scraper-1", DRAIN);
    let (code, took) = cluster.drained(draining).await?;
    println!(
        "leader killed: control-plane-{leader} killed, scraper-1 drained in {} ms, exit {code:?}",
        took.as_millis()
    );
    assert_eq!(code, Some(0), "a drain exits 0");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    audit_since(
        &cluster,
        &fleet,
        start_ms,
        "drain while the leader is killed",
    )
    .await?;
    drop(etcd);
    Ok(())
}

/// Two control planes on etcd and one scraper; etcd is killed, a second
/// scraper starts while no leader can be elected, and etcd comes back. The
/// joiner must get its share by handover, with nothing lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_while_etcd_is_down_loses_nothing() -> Result<()> {
    let mut etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .control_planes(2)
        .etcd(&etcd)
        .scrapers(1)
        .build(&fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(STEADY, "steady scraping").await;

    let start_ms = audit::now_ms();
    kill_etcd(&mut etcd, &cluster).await?;
    cluster.add_scraper("scraper-1").await?;
    hold_for(
        Duration::from_secs(2),
        "the joiner waits while etcd is down",
    )
    .await;
    etcd.start_again().await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    audit_since(&cluster, &fleet, start_ms, "join while etcd is down").await?;
    drop(etcd);
    Ok(())
}

/// With neither a control plane nor the storage node left, a drain cannot
/// hand over or deliver: the scraper keeps scraping until its drain
/// deadline (`--drain-timeout 3s` here), keeps retrying delivery for at
/// least the flush floor after that, then exits 0 and says what it gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_cannot_finish_gives_up_at_its_deadline_and_says_so() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .scrapers(2)
        .scraper_args(&["--drain-timeout", "3s"])
        .build(&fleet)
        .await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    let owned = cluster
        .owners(TARGETS)
        .await
        .context("owners")?
        .values()
        .filter(|s| *s == "scraper-1")
        .count();
    cluster.kill_control(0);
    cluster.kill_storage();
    let pid = cluster.scrapers[1]
        .process
        .as_ref()
        .context("scraper-1")?
        .pid();
    let sigterm_ms = audit::now_ms();
    let draining = cluster.terminate_scraper("scraper-1", DRAIN);
    let (code, took) = cluster.drained(draining).await?;
    let log = cluster.scraper_log("scraper-1");
    println!(
        "no control plane, no storage: scraper-1 exited {code:?} after {} ms",
        took.as_millis()
    );
    assert_eq!(code, Some(0));
    assert!(
        took >= Duration::from_secs(3),
        "the drain deadline is waited for: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "and bounded: {took:?}");
    let abandoned = log
        .lines()
        .find(|l| l.contains("drain deadline passed before a leader moved these targets away"))
        .with_context(|| format!("no error for the targets:\n{log}"))?;
    println!("{abandoned}");
    assert!(abandoned.contains("ERROR") && !abandoned.contains("targets=0"));
    let gave_up = log
        .lines()
        .find(|l| l.contains("giving up batches the storage node has not acked"))
        .with_context(|| format!("no error for the batches:\n{log}"))?;
    println!("{gave_up}");
    assert!(gave_up.contains("ERROR") && !gave_up.contains("batches=0"));
    assert!(!gave_up.contains("samples=0"));
    // Its targets were scraped until the deadline: 3 s, about 6 slots each.
    let scraped: usize = (0..TARGETS)
        .map(|i| {
            fleet
                .requests_by(i)
                .iter()
                .filter(|(t, p)| *t >= sigterm_ms && *p == Some(pid))
                .count()
        })
        .sum();
    println!("scrapes by scraper-1 during its drain: {scraped}");
    assert!(scraped >= 5 * owned, "{scraped} scrapes of {owned} targets");
    Ok(())
}
