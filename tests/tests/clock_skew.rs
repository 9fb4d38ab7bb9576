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
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{hold_for, metric_value};

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
    cluster.add_scraper_skewed("ahead", Some("+3s")).await?;
    cluster.add_scraper_skewed("behind", Some("-2s")).await?;
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
