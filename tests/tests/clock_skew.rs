//! Scrapers whose clocks are off (issue 17): one 3 s ahead of the control
//! plane and one 2 s behind (Debian's `faketime`), both more than the
//! handover lead (500 ms) and several intervals (500 ms). They join a
//! scraper on the right time and take targets by handover, then drain and
//! hand them back. Every slot is scraped once and stored once, in order:
//! the scrapers read slots, timestamps and handover times on the control
//! plane's clock (`Assignment.sent_at_ms`), not their own. On their own
//! clocks the one ahead started its targets before their old owner stopped
//! (slots scraped twice) and stamped them 3 s ahead, so the samples of the
//! owner it handed back to were refused as out of order (lost).

use std::time::Duration;

use anyhow::{Context, Result};

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::ha::{counter_body, HaCluster, Skew};
use scrapegrid_tests::{eventually, hold_for, metric_value};

const TARGETS: usize = 8;
const DRAIN: Duration = Duration::from_secs(75);

/// The clock offset a scraper exports (`scrapegrid_scraper_clock_offset_seconds`).
async fn offset(cluster: &HaCluster, id: &str) -> Result<f64> {
    let s = cluster
        .scrapers
        .iter()
        .find(|s| s.id == id)
        .context("scraper")?;
    metric_value(
        &cluster.http,
        &s.http,
        "scrapegrid_scraper_clock_offset_seconds",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_scrapers_hand_over_without_gap_or_double() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .scrapers(1)
        .membership_timeout("3s")
        .build(&fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping on one scraper").await;

    let start_ms = audit::now_ms();
    cluster
        .add_scraper_skewed("ahead", Some(Skew::Fixed("+3s")))
        .await?;
    cluster
        .add_scraper_skewed("behind", Some(Skew::Fixed("-2s")))
        .await?;
    cluster
        .settled(TARGETS, &["scraper-0", "ahead", "behind"])
        .await?;
    hold_for(Duration::from_secs(3), "the skewed scrapers scrape").await;
    let ahead = offset(&cluster, "ahead").await;
    let behind = offset(&cluster, "behind").await;
    println!("clock offsets: ahead {ahead:?} s, behind {behind:?} s");

    for id in ["ahead", "behind"] {
        let d = cluster.terminate_scraper(id, DRAIN);
        let (code, took) = cluster.drained(d).await?;
        println!("{id} drained in {} ms", took.as_millis());
        assert_eq!(code, Some(0), "{id} drains");
    }
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping after the drains").await;
    let end_ms = audit::now_ms() - cluster.interval_ms;
    cluster
        .wait_counters_stored(&fleet, Duration::from_secs(30))
        .await
        .context("every scrape stored")?;
    let a = cluster.audit(&fleet, Window { start_ms, end_ms }).await?;
    println!("skewed scrapers: {a}");
    a.assert_clean("skewed scrapers");
    let (ahead, behind) = (ahead?, behind?);
    assert!((-3.2..=-2.8).contains(&ahead), "ahead: {ahead}");
    assert!((1.8..=2.2).contains(&behind), "behind: {behind}");
    Ok(())
}

/// A scraper's host clock steps 3 s ahead while the cluster is quiet (no
/// assignment comes): it keeps stamping on the control plane's clock, and
/// its exported offset shows the step within a clock reading (every
/// session carries one every 5 s). Before, the estimate was kept against
/// the host's wall clock and refreshed only by assignments, so every sample
/// was stamped 3 s in the future for as long as nothing moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_whose_host_clock_steps_keeps_the_cluster_clock() -> Result<()> {
    let fleet = FleetServer::start(2, counter_body).await?;
    let mut cluster = HaCluster::builder().scrapers(0).build(&fleet).await?;
    let clock = cluster.dir.path().join("stepped-clock");
    std::fs::write(&clock, "+0\n")?;
    cluster
        .add_scraper_skewed("stepped", Some(Skew::File(&clock)))
        .await?;
    cluster.settled(2, &["stepped"]).await?;
    hold_for(Duration::from_secs(2), "scraping on the right time").await;
    let before = offset(&cluster, "stepped").await?;
    assert!(before.abs() < 0.3, "offset before the step: {before}");

    std::fs::write(&clock, "+3s\n")?;
    let started = std::time::Instant::now();
    let after = eventually(Duration::from_secs(20), || async {
        let o = offset(&cluster, "stepped").await.ok()?;
        (-3.3..=-2.7).contains(&o).then_some(o)
    })
    .await
    .context("the offset shows the step")?;
    println!(
        "offset {before} s before the step, {after} s {} ms after it",
        started.elapsed().as_millis()
    );
    // Samples stamped since the step are on the control plane's clock, not
    // 3 s ahead of it.
    hold_for(Duration::from_secs(2), "scraping after the step").await;
    let now = audit::now_ms();
    let up = audit::select(
        &cluster.storage_grpc,
        &[("__name__", "up")],
        now - 10_000,
        now + 60_000,
    )
    .await?;
    let newest = up
        .iter()
        .filter_map(|s| s.samples.last().map(|(t, _)| *t))
        .max()
        .context("samples stored")?;
    assert!(
        newest <= audit::now_ms() + 200,
        "a sample stamped {} ms in the future",
        newest - audit::now_ms()
    );
    Ok(())
}
