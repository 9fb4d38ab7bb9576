//! Overlapping faults (issue 20): a scraper drains (SIGTERM) while another
//! part of the cluster is down or changing, and still nothing is lost,
//! missed or doubled.
//!
//! - a drain while the storage node restarts after `kill -9`;
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

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::etcd::Etcd;
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{eventually, wait_healthy};

const TARGETS: usize = 8;
/// Steady scraping before a fault and after the cluster settled again.
const STEADY: Duration = Duration::from_secs(3);
/// How long a SIGTERMed scraper may take; its own drain deadline is 60 s.
const DRAIN: Duration = Duration::from_secs(75);

/// Waits until every target has an owner among `live`, and each of `live`
/// owns one; returns the owners.
async fn settled(cluster: &HaCluster, live: &[&str]) -> Result<()> {
    eventually(Duration::from_secs(30), || async {
        let o = cluster.owners(TARGETS).await?;
        let ok = o.values().all(|s| live.contains(&s.as_str()))
            && live.iter().all(|l| o.values().any(|s| s == l));
        ok.then_some(())
    })
    .await
    .with_context(|| format!("every target owned by {live:?}"))
}

/// Lets the cluster scrape for [`STEADY`], waits until every scrape so far
/// is stored, then audits from `start_ms` and asserts nothing was lost.
async fn audit_since(
    cluster: &HaCluster,
    fleet: &FleetServer,
    start_ms: i64,
    what: &str,
) -> Result<()> {
    tokio::time::sleep(STEADY).await;
    let end_ms = audit::now_ms() - cluster.interval_ms;
    cluster
        .wait_counters_stored(fleet, Duration::from_secs(30))
        .await
        .context("every scrape stored")?;
    let a = cluster.audit(fleet, Window { start_ms, end_ms }).await?;
    println!("{what}: {a}");
    a.assert_clean(what);
    Ok(())
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
/// reach the storage node at the handover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_during_storage_restart_loses_nothing() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder().scrapers(2).build(&fleet).await?;
    settled(&cluster, &["scraper-0", "scraper-1"]).await?;
    tokio::time::sleep(STEADY).await;

    let start_ms = audit::now_ms();
    cluster.kill_storage();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let draining = cluster.terminate_scraper("scraper-1", DRAIN);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.start_storage_again()?;
    wait_healthy(&cluster.http, &cluster.storage_http).await?;
    let (code, took) = cluster.drained(draining).await?;
    println!(
        "storage restart: scraper-1 drained in {} ms, exit {code:?}",
        took.as_millis()
    );
    assert_eq!(code, Some(0), "a drain exits 0");
    settled(&cluster, &["scraper-0"]).await?;
    audit_since(&cluster, &fleet, start_ms, "drain during a storage restart").await
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
    settled(&cluster, &["scraper-0", "scraper-1"]).await?;
    tokio::time::sleep(STEADY).await;

    let start_ms = audit::now_ms();
    kill_etcd(&mut etcd, &cluster).await?;
    let wait = 5_000 - (audit::now_ms() - start_ms);
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    etcd.start_again().await?;
    let draining = cluster.terminate_scraper("scraper-1", DRAIN);
    let (code, took) = cluster.drained(draining).await?;
    println!(
        "leader change: scraper-1 drained in {} ms, exit {code:?}",
        took.as_millis()
    );
    assert_eq!(code, Some(0), "a drain exits 0");
    settled(&cluster, &["scraper-0"]).await?;
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
    settled(&cluster, &["scraper-0", "scraper-1"]).await?;
    tokio::time::sleep(STEADY).await;

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
    settled(&cluster, &["scraper-0"]).await?;
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
    settled(&cluster, &["scraper-0"]).await?;
    tokio::time::sleep(STEADY).await;

    let start_ms = audit::now_ms();
    kill_etcd(&mut etcd, &cluster).await?;
    cluster.add_scraper("scraper-1").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    etcd.start_again().await?;
    settled(&cluster, &["scraper-0", "scraper-1"]).await?;
    audit_since(&cluster, &fleet, start_ms, "join while etcd is down").await?;
    drop(etcd);
    Ok(())
}
