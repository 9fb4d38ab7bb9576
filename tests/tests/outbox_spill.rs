//! The outbox past its memory: a storage node away longer than the outbox
//! holds in memory. Before, batches over the bound were dropped (and
//! counted); now they wait on disk in order and are delivered when the
//! storage node is back, and what a scraper killed meanwhile left on disk
//! is delivered by the next process with its id.

use std::time::Duration;

use anyhow::Result;

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{eventually, hold_for, metric_value};

const TARGETS: usize = 6;
/// Far below what the outage produces (6 targets, 2 scrapes a second).
const MEMORY: &str = "10";

async fn spilled(cluster: &HaCluster) -> f64 {
    metric_value(
        &cluster.http,
        &cluster.scrapers[0].http,
        "scrapegrid_scraper_batches_spilled_total",
    )
    .await
    .unwrap_or(0.0)
}

async fn one_scraper(fleet: &FleetServer) -> Result<HaCluster> {
    let cluster = HaCluster::builder()
        .scrapers(1)
        .scraper_args(&["--outbox.memory-batches", MEMORY])
        .build(fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    Ok(cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_node_away_longer_than_memory_holds_loses_nothing() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = one_scraper(&fleet).await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let start_ms = audit::now_ms();
    cluster.kill_storage();
    hold_for(Duration::from_secs(8), "the storage node away").await;
    let on_disk = spilled(&cluster).await;
    assert!(on_disk > 50.0, "{on_disk} batches spilled");
    cluster.start_storage_again()?;
    let what = format!("{on_disk} batches spilled while the storage node was away 8 s");
    cluster
        .assert_clean_since(&fleet, start_ms, Duration::from_secs(30), &what)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_scraper_left_on_disk_is_sent_by_the_next_one() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = one_scraper(&fleet).await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let away_ms = audit::now_ms();
    cluster.kill_storage();
    hold_for(Duration::from_secs(6), "the storage node away").await;
    let on_disk = spilled(&cluster).await;
    assert!(on_disk > 30.0, "{on_disk} batches spilled");
    let killed_ms = audit::now_ms();
    cluster.kill_scraper("scraper-0");
    cluster.restart_scraper("scraper-0").await?;
    cluster.start_storage_again()?;
    eventually(Duration::from_secs(20), || async {
        cluster
            .scraper_log("scraper-0")
            .contains("sending what an earlier process spilled")
            .then_some(())
    })
    .await?;
    // The first batches of the outage were in memory and died with the
    // process (about MEMORY / TARGETS intervals); everything after them,
    // up to an interval before the kill, is stored.
    let window = Window {
        start_ms: away_ms + 3 * cluster.interval_ms,
        end_ms: killed_ms - 2 * cluster.interval_ms,
    };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let a = loop {
        let a = cluster.audit(&fleet, window).await;
        match a {
            Ok(a) if a.stored.missed == 0 || std::time::Instant::now() > until => break a,
            Err(e) if std::time::Instant::now() > until => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    println!("{on_disk} batches spilled, then kill -9: {a}");
    assert_eq!(a.stored.missed, 0, "spilled scrapes not stored: {a}");
    let memory: u64 = MEMORY.parse()?;
    assert!(
        a.steps.lost <= memory + TARGETS as u64,
        "only the batches in memory (and a scrape in flight per target) die with the process: {a}"
    );
    assert_eq!(a.stored.duplicates, 0, "{a}");
    Ok(())
}
