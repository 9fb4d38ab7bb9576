//! A scraper cut off from the control plane (issue 17's hole: it kept
//! scraping a target that had moved until it heard from a control plane
//! again). The control plane moves the target to the other scraper; the
//! storage node fences the cut-off scraper's batches; the cut-off scraper
//! stops that target on the first fenced batch, so the target is scraped
//! once per interval again, not twice. Healed, it rejoins.

use std::time::Duration;

use anyhow::{Context, Result};
use scrapegrid_tests::cut::Cut;
use scrapegrid_tests::{eventually, hold_for, Cluster, TargetServer};

/// The owner and health of the only target, from the control plane.
async fn owner(cluster: &Cluster) -> Option<(String, String)> {
    let t = cluster.targets().await.ok()?;
    let t = t["activeTargets"].as_array()?.first()?.clone();
    Some((
        t["scraper"].as_str()?.to_string(),
        t["health"].as_str()?.to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_scraper_stops_a_target_the_storage_node_fenced() -> Result<()> {
    let target = TargetServer::start("# TYPE demo gauge\ndemo 1\n").await?;
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: one\n    static_configs:\n      - targets: ['{}']\n",
        target.addr
    );
    let mut cluster = Cluster::builder()
        .scrapers(0)
        .membership_timeout("2s")
        .config(&config)
        .build()
        .await?;
    let cut = Cut::start(&cluster.control_grpc).await?;
    cluster.add_scraper_via("cut-off", &cut.addr).await?;
    eventually(Duration::from_secs(30), || async {
        (owner(&cluster).await? == ("cut-off".into(), "up".into())).then_some(())
    })
    .await
    .context("the target on the scraper behind the cut")?;
    cluster.add_scraper("other").await?;
    hold_for(Duration::from_secs(2), "the second scraper joins").await;
    assert_eq!(
        owner(&cluster).await.map(|o| o.0).as_deref(),
        Some("cut-off"),
        "one target stays where it is"
    );

    // The partition: the control plane sees the stream end and moves the
    // target; the cut-off scraper still reaches the storage node.
    cut.cut();
    eventually(Duration::from_secs(30), || async {
        (owner(&cluster).await? == ("other".into(), "up".into())).then_some(())
    })
    .await
    .context("the target moved to the other scraper")?;
    let log = || cluster.scrapers[0].2.as_ref().expect("running").log();
    eventually(Duration::from_secs(20), || async {
        log()
            .contains("the storage node fenced this target")
            .then_some(())
    })
    .await
    .with_context(|| format!("the cut-off scraper stops the fenced target: {}", log()))?;

    // Scraped once per interval again: about 4 requests in 4 s, not 8.
    let before = target.requests();
    hold_for(Duration::from_secs(4), "one scraper scrapes the target").await;
    let during = target.requests() - before;
    assert!((2..=6).contains(&during), "{during} requests in 4 s");

    // Healed: the cut-off scraper rejoins as a member.
    cut.heal();
    eventually(Duration::from_secs(30), || async {
        let url = format!("http://{}/api/v1/scrapegrid/cluster", cluster.control_http);
        let c = scrapegrid_tests::get_data(&cluster.http, &url).await.ok()?;
        (c["members"].as_array()?.len() == 2).then_some(())
    })
    .await
    .context("the cut-off scraper rejoins")?;
    Ok(())
}
