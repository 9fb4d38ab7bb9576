//! Control-plane HA on real etcd: three control planes campaign through an
//! etcd started by the test; scrapers know all three.
//!
//! - `kill -9` of the leader while scraping: a new leader within 5 s,
//!   scraping never stops (no missed interval, no duplicate), and no target
//!   changes owner (the new leader restores the assignment from etcd).
//! - etcd stopped for a while: scraping goes on, nothing moves, and once
//!   etcd is back a leader keeps every target where it was.
//! - the leader paused (SIGSTOP) past its lease: the scrapers, whose
//!   sessions to it stay open but silent, find the new leader before it
//!   gives up on them (its membership timeout), so nothing moves, nothing
//!   is scraped twice and nothing is lost.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::etcd::Etcd;
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{consistently, eventually, hold_for};

const TARGETS: usize = 12;

/// Asserts that over `window` every target was scraped once per slot and
/// stored once per slot, with no stale marker, and that no scrape of the
/// run was lost.
async fn assert_nothing_lost(
    cluster: &HaCluster,
    what: &str,
    fleet: &FleetServer,
    window: Window,
) -> Result<()> {
    cluster
        .wait_counters_stored(fleet, Duration::from_secs(20))
        .await
        .context("every scrape stored")?;
    let a = cluster.audit(fleet, window).await?;
    println!("{what} window: {a}");
    a.assert_clean(what);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_and_etcd_outage_move_nothing_and_lose_nothing() -> Result<()> {
    let mut etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let cluster = HaCluster::builder()
        .control_planes(3)
        .etcd(&etcd)
        .scrapers(2)
        .build(&fleet)
        .await?;

    let owners = eventually(Duration::from_secs(20), || cluster.owners(TARGETS))
        .await
        .context("every target owned")?;
    hold_for(
        Duration::from_secs(3),
        "steady scraping before the failover",
    )
    .await;
    let before = cluster.leader().await.context("a leader")?;

    // kill -9 the leader.
    let mut cluster = cluster;
    let killed_at = audit::now_ms();
    let started = Instant::now();
    cluster.kill_control(before);
    let after = eventually(Duration::from_secs(10), || cluster.leader())
        .await
        .context("a new leader")?;
    let failover = started.elapsed();
    println!(
        "failover: control-plane-{before} killed, control-plane-{after} leads after {} ms",
        failover.as_millis()
    );
    assert_ne!(before, after);
    assert!(
        failover < Duration::from_secs(5),
        "new leader after {failover:?}"
    );
    let owners_after = eventually(Duration::from_secs(10), || cluster.owners(TARGETS))
        .await
        .context("owners after the failover")?;
    assert_eq!(
        owners, owners_after,
        "no target moves because of a failover"
    );
    consistently(
        Duration::from_secs(3),
        "no target moves after a failover",
        || async { cluster.owners(TARGETS).await.as_ref() == Some(&owners) },
    )
    .await?;
    let moves = cluster.moves().await?;
    assert!(moves.is_empty(), "the new leader moved targets: {moves:?}");

    let window = Window {
        start_ms: killed_at - 2_000,
        end_ms: audit::now_ms() - 1_000,
    };
    assert_nothing_lost(&cluster, "failover", &fleet, window).await?;

    // etcd away for a while: scraping goes on, nothing moves.
    let stopped_at = audit::now_ms();
    etcd.kill9();
    let lost = eventually(Duration::from_secs(10), || async {
        cluster.leader().await.is_none().then_some(())
    })
    .await;
    println!(
        "etcd killed: leadership {} after {} ms",
        if lost.is_ok() { "lost" } else { "kept" },
        audit::now_ms() - stopped_at
    );
    lost.context("the leader steps down without etcd")?;
    hold_for(Duration::from_secs(3), "etcd stays down").await;
    etcd.start_again().await?;
    let back = Instant::now();
    eventually(Duration::from_secs(15), || cluster.leader())
        .await
        .context("a leader after etcd is back")?;
    println!(
        "etcd back: a leader after {} ms",
        back.elapsed().as_millis()
    );
    let owners_back = eventually(Duration::from_secs(10), || cluster.owners(TARGETS))
        .await
        .context("owners after etcd is back")?;
    assert_eq!(owners, owners_back, "nothing moves across an etcd outage");
    consistently(
        Duration::from_secs(3),
        "nothing moves after an etcd outage",
        || async { cluster.owners(TARGETS).await.as_ref() == Some(&owners) },
    )
    .await?;
    let moves = cluster.moves().await?;
    assert!(moves.is_empty(), "moves after the outage: {moves:?}");
    let window = Window {
        start_ms: stopped_at - 1_000,
        end_ms: audit::now_ms() - 1_000,
    };
    assert_nothing_lost(&cluster, "etcd outage", &fleet, window).await?;
    drop(cluster);
    Ok(())
}

/// Found by the chaos run (issue 17): a leader paused past its lease left
/// the scrapers on its silent stream for up to ten seconds (an HTTP/2 ping
/// every 5 s with a 5 s timeout); the new leader, after its membership
/// timeout, dropped them as members that never rejoined, gave every target
/// to the first that did, and the old owners scraped the same slots until
/// their new assignments came (a double scrape, one value lost as a
/// duplicate sample).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_moves_nothing() -> Result<()> {
    let etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let cluster = HaCluster::builder()
        .control_planes(2)
        .etcd(&etcd)
        .scrapers(2)
        .membership_timeout("3s")
        .build(&fleet)
        .await?;
    let owners = eventually(Duration::from_secs(20), || cluster.owners(TARGETS))
        .await
        .context("every target owned")?;
    hold_for(Duration::from_secs(2), "steady scraping before the pause").await;
    let before = cluster.leader().await.context("a leader")?;
    let paused_at = audit::now_ms();
    let leader = cluster.controls[before]
        .process
        .as_ref()
        .context("leader")?;
    leader.signal(libc::SIGSTOP);
    hold_for(Duration::from_secs(8), "the leader stays paused").await;
    leader.signal(libc::SIGCONT);
    let after = eventually(Duration::from_secs(10), || cluster.leader())
        .await
        .context("a leader after the pause")?;
    println!("control-plane-{before} paused for 8 s; control-plane-{after} leads");
    assert_ne!(before, after, "the paused leader lost its lease");
    hold_for(Duration::from_secs(2), "steady scraping after the pause").await;
    let owners_after = eventually(Duration::from_secs(10), || cluster.owners(TARGETS))
        .await
        .context("owners after the pause")?;
    let moves = cluster.moves().await?;
    assert!(moves.is_empty(), "the new leader moved targets: {moves:?}");
    assert_eq!(owners, owners_after, "no target moves because of a pause");
    let window = Window {
        start_ms: paused_at - 1_000,
        end_ms: audit::now_ms() - 1_000,
    };
    assert_nothing_lost(&cluster, "leader paused", &fleet, window).await
}
