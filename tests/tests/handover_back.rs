//! A target assigned back to its scraper while that scraper still hands it
//! over (found by the 30-minute chaos run, where a scraper restarted after
//! a `kill -9` lost its session again at once): the scraper ran two loops
//! for the target until the handover time, the one handing over and a new
//! one, and scraped each of those slots twice (one value lost as a
//! duplicate). Now the new loop replaces the one handing over.

use std::time::Duration;

use anyhow::{Context, Result};

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{eventually, hold_for};

const TARGETS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_back_before_its_handover_time_is_scraped_once() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .scrapers(1)
        .control_args(&["--handover-lead", "4s"])
        .build(&fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let start_ms = audit::now_ms();

    // A scraper joins: the leader plans handovers to it 4 s ahead. It dies
    // before the handover time, so its targets come back to scraper-0,
    // whose loops are still handing them over.
    cluster.add_scraper("joiner").await?;
    let planned = eventually(Duration::from_secs(10), || async {
        let moves = cluster.moves().await.ok()?;
        let n = moves
            .iter()
            .filter(|m| m["to"] == "joiner" && m["handover"] == true)
            .count();
        (n > 0).then_some(n)
    })
    .await
    .context("handovers to the joiner planned")?;
    cluster.kill_scraper("joiner");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(6), "past the handover time").await;
    let end_ms = audit::now_ms() - cluster.interval_ms;
    cluster
        .wait_counters_stored(&fleet, Duration::from_secs(20))
        .await
        .context("every scrape stored")?;
    let a = cluster.audit(&fleet, Window { start_ms, end_ms }).await?;
    println!("{planned} handovers planned, then back: {a}");
    a.assert_clean("targets back before their handover time");
    Ok(())
}

/// The other way back: the scraper a target is moving to drains before
/// the handover time, so the target comes back by a later handover. The
/// loop handing it over runs on until its handover time (a first version
/// of the fix above replaced it at once, and nobody scraped the slots until
/// then), the drainer scrapes from there to the second handover, and the
/// first owner from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_back_by_a_later_handover_is_scraped_once() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .scrapers(1)
        .control_args(&["--handover-lead", "3s"])
        .build(&fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let start_ms = audit::now_ms();

    cluster.add_scraper("drainer").await?;
    let planned = eventually(Duration::from_secs(10), || async {
        let moves = cluster.moves().await.ok()?;
        let n = moves
            .iter()
            .filter(|m| m["to"] == "drainer" && m["handover"] == true)
            .count();
        (n > 0).then_some(n)
    })
    .await
    .context("handovers to the drainer planned")?;
    let d = cluster.terminate_scraper("drainer", Duration::from_secs(30));
    let (code, took) = cluster.drained(d).await?;
    assert_eq!(code, Some(0), "the drainer drains");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping after the drain").await;
    let end_ms = audit::now_ms() - cluster.interval_ms;
    cluster
        .wait_counters_stored(&fleet, Duration::from_secs(20))
        .await
        .context("every scrape stored")?;
    let a = cluster.audit(&fleet, Window { start_ms, end_ms }).await?;
    println!(
        "{planned} handovers planned, the drainer drained in {} ms: {a}",
        took.as_millis()
    );
    a.assert_clean("targets back by a later handover");
    Ok(())
}
