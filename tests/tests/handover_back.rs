//! A target assigned back to its scraper while that scraper still hands it
//! over (found by the 30-minute chaos run, where a scraper restarted after
//! a `kill -9` lost its session again at once): the scraper ran two loops
//! for the target until the handover time, the one handing over and a new
//! one, and scraped each of those slots twice (one value lost as a
//! duplicate). Now the new loop replaces the one handing over when it
//! starts before that one's handover time, and only then.

use std::time::Duration;

use anyhow::{Context, Result};

use scrapegrid_tests::audit::{self, FleetServer};
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{eventually, hold_for};

const TARGETS: usize = 8;

/// One scraper owning every target, then `joiner` joining: returns once
/// the leader has planned handovers to it `lead` ahead, with the start of
/// the audit window and how many were planned.
async fn handovers_planned(
    fleet: &FleetServer,
    lead: &str,
    joiner: &str,
) -> Result<(HaCluster, i64, usize)> {
    let mut cluster = HaCluster::builder()
        .scrapers(1)
        .control_args(&["--handover-lead", lead])
        .build(fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let start_ms = audit::now_ms();
    cluster.add_scraper(joiner).await?;
    let planned = eventually(Duration::from_secs(10), || async {
        let moves = cluster.moves().await.ok()?;
        let n = moves
            .iter()
            .filter(|m| m["to"] == joiner && m["handover"] == true)
            .count();
        (n > 0).then_some(n)
    })
    .await
    .with_context(|| format!("handovers to {joiner} planned"))?;
    Ok((cluster, start_ms, planned))
}

/// The scraper the targets move to dies before the handover time, so they
/// come back to scraper-0 by failover, whose loops still hand them over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_back_before_its_handover_time_is_scraped_once() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let (mut cluster, start_ms, planned) = handovers_planned(&fleet, "4s", "joiner").await?;
    cluster.kill_scraper("joiner");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(6), "past the handover time").await;
    let what = format!("{planned} handovers planned, back by failover");
    cluster
        .assert_clean_since(&fleet, start_ms, Duration::from_secs(20), &what)
        .await
}

/// The other way back: the scraper the targets move to drains before the
/// handover time, so they come back by a later handover. The loops handing
/// them over run on until their handover time (a first version of the fix
/// above replaced them at once, and nobody scraped the slots until then:
/// 23 intervals missed), the drainer scrapes from there to the second
/// handover, and scraper-0 from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_back_by_a_later_handover_is_scraped_once() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let (mut cluster, start_ms, planned) = handovers_planned(&fleet, "3s", "drainer").await?;
    let d = cluster.terminate_scraper("drainer", Duration::from_secs(30));
    let (code, took) = cluster.drained(d).await?;
    assert_eq!(code, Some(0), "the drainer drains");
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(5), "past both handover times").await;
    let what = format!(
        "{planned} handovers planned, back by handover (drained in {} ms)",
        took.as_millis()
    );
    cluster
        .assert_clean_since(&fleet, start_ms, Duration::from_secs(20), &what)
        .await
}

/// Every target leaves discovery while some are still handed over to a
/// joiner: the scraper handing them over stops them at once and writes
/// their stale markers. Before, only the new owner was told, whose loop had
/// not scraped yet and wrote none, and the old loop ran on to the handover
/// time and handed the series over to nobody: the series of those targets
/// never went stale (a query saw them for five minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_gone_during_its_handover_goes_stale_at_once() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let (cluster, _, planned) = handovers_planned(&fleet, "6s", "joiner").await?;
    let interval = cluster.interval_ms;
    std::fs::write(
        &cluster.config,
        format!(
            "global:\n  scrape_interval: {interval}ms\n  scrape_timeout: {}ms\nscrape_configs:\n  - job_name: {}\n    static_configs: []\n",
            interval * 4 / 5,
            scrapegrid_tests::ha::JOB
        ),
    )?;
    let removed_ms = audit::now_ms();
    let http = reqwest::Client::new();
    for c in &cluster.controls {
        http.post(format!("http://{}/-/reload", c.http))
            .send()
            .await?
            .error_for_status()?;
    }
    hold_for(
        Duration::from_secs(3),
        "the removal applied, the handover time to come",
    )
    .await;
    let end_ms = audit::now_ms();
    let mut not_stale = Vec::new();
    for i in 0..TARGETS {
        let t = i.to_string();
        let series = audit::select(
            &cluster.storage_grpc,
            &[("__name__", "up"), ("t", &t)],
            removed_ms - 60_000,
            end_ms,
        )
        .await?;
        let stale = series.iter().any(|s| {
            s.samples
                .last()
                .is_some_and(|(_, v)| scrapegrid_proto::is_stale_marker(*v))
        });
        if !stale {
            not_stale.push(format!("t={t}: {series:?}"));
        }
    }
    assert!(
        not_stale.is_empty(),
        "{planned} handovers planned, every target removed {} ms before the check: up not stale for\n{}",
        end_ms - removed_ms,
        not_stale.join("\n")
    );
    Ok(())
}
