//! A scraper's ingest stream under series churn (issue 17): a target whose
//! 500 series are new at every scrape. The storage node keeps a stream's
//! series references as long as the stream lives, so without an end they
//! grew by 500 every scrape (about 28,000 here); the scraper now replaces
//! its stream once it defined four times the live series (at least 10,000),
//! and nothing is lost on the way.

use std::time::Duration;

use anyhow::Result;

use scrapegrid_tests::audit::{self, FleetServer, Window, REQUESTS};
use scrapegrid_tests::ha::HaCluster;
use scrapegrid_tests::metric_value as metric;

const CHURN: usize = 500;

fn churning_body(_: usize) -> String {
    let mut body = format!(
        "# TYPE fleet_requests_total counter\nfleet_requests_total {REQUESTS}\n# TYPE churn gauge\n"
    );
    for k in 0..CHURN {
        body.push_str(&format!("churn{{scrape=\"{REQUESTS}\",k=\"{k}\"}} 1\n"));
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_does_not_grow_the_storage_nodes_references() -> Result<()> {
    let fleet = FleetServer::start(1, churning_body).await?;
    let cluster = HaCluster::builder()
        .scrapers(1)
        .interval_ms(250)
        .build(&fleet)
        .await?;
    cluster.settled(1, &["scraper-0"]).await?;
    let start_ms = audit::now_ms();
    let mut most = 0.0f64;
    let deadline = std::time::Instant::now() + Duration::from_secs(14);
    while std::time::Instant::now() < deadline {
        if let Ok(refs) = metric(
            &cluster.http,
            &cluster.storage_http,
            "scrapegrid_storage_ingest_stream_refs",
        )
        .await
        {
            most = most.max(refs);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let scrapes = fleet.requests(0).len();
    let rotations = metric(
        &cluster.http,
        &cluster.scrapers[0].http,
        "scrapegrid_scraper_ingest_rotations_total",
    )
    .await?;
    println!(
        "{scrapes} scrapes of {CHURN} new series: at most {most} references held, {rotations} stream rotations"
    );
    assert!(scrapes * CHURN > 20_000, "enough churn: {scrapes} scrapes");
    assert!(rotations >= 1.0, "the stream was replaced");
    assert!(most < 15_000.0, "references held: {most}");

    // Nothing lost across the rotations.
    let end_ms = audit::now_ms() - cluster.interval_ms;
    cluster
        .wait_counters_stored(&fleet, Duration::from_secs(30))
        .await?;
    let a = cluster.audit(&fleet, Window { start_ms, end_ms }).await?;
    println!("churn: {a}");
    assert_eq!(a.steps.lost, 0, "{a}");
    assert_eq!(a.steps.repeated, 0, "{a}");
    assert_eq!(a.stored.missed, 0, "{a}");
    Ok(())
}
