//! The built-in integrations (issue 16) on a real cluster: `self` makes the
//! cluster scrape its own components' `/metrics` (the control plane, each
//! scraper, and the storage node once its URL is configured, through a
//! reload), `host` scrapes each scraper's `/integrations/host/metrics`; both
//! follow membership (a scraper that joins becomes a target of each).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use scrapegrid_tests::{eventually, Cluster};
use serde_json::Value;

/// (job, component or scraper, health) of every active target.
async fn targets(cluster: &Cluster) -> Option<BTreeSet<(String, String, String)>> {
    let t = cluster.targets().await.ok()?;
    Some(
        t["activeTargets"]
            .as_array()?
            .iter()
            .map(|t| {
                let l = &t["labels"];
                let who = l["component"]
                    .as_str()
                    .map(|c| match l["scraper"].as_str() {
                        Some(s) => format!("{c}/{s}"),
                        None => c.to_string(),
                    })
                    .or_else(|| l["scraper"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&t["scrapePool"]), who, s(&t["health"]))
            })
            .collect(),
    )
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(job, who)| (job.to_string(), who.to_string(), "up".to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_and_host_are_scraped_and_follow_the_cluster() -> Result<()> {
    let integrations = "global:\n  scrape_interval: 1s\nintegrations:\n  self: {enabled: true}\n  host: {enabled: true}\n";
    let mut cluster = Cluster::builder()
        .scrapers(1)
        .config(integrations)
        .build()
        .await?;
    let one = [
        ("integrations/self", "control-plane"),
        ("integrations/self", "scraper/scraper-0"),
        ("integrations/host", "scraper-0"),
    ];
    eventually(Duration::from_secs(30), || async {
        (targets(&cluster).await? == set(&one)).then_some(())
    })
    .await?;

    // A scraper that joins is scraped, and so is its host.
    cluster.add_scraper("scraper-1").await?;
    let two = [
        one.as_slice(),
        &[
            ("integrations/self", "scraper/scraper-1"),
            ("integrations/host", "scraper-1"),
        ],
    ]
    .concat();
    eventually(Duration::from_secs(30), || async {
        (targets(&cluster).await? == set(&two)).then_some(())
    })
    .await?;

    // The storage node once its URL is known: a reload.
    std::fs::write(
        &cluster.config,
        integrations.replace(
            "self: {enabled: true}",
            &format!(
                "self: {{enabled: true, storage_url: 'http://{}'}}",
                cluster.storage_http
            ),
        ),
    )?;
    let reload = cluster
        .http
        .post(format!("http://{}/-/reload", cluster.control_http))
        .send()
        .await?;
    assert!(reload.status().is_success(), "{:?}", reload.text().await);
    let all = [two.as_slice(), &[("integrations/self", "storage-node")]].concat();
    eventually(Duration::from_secs(30), || async {
        (targets(&cluster).await? == set(&all)).then_some(())
    })
    .await?;

    // What they scraped is stored: the control plane's own gauge of its
    // members, the storage node's own metrics, and each host's memory as
    // /proc/meminfo says.
    eventually(Duration::from_secs(30), || async {
        let m = cluster
            .query(
                "scrapegrid_control_members{job=\"integrations/self\",component=\"control-plane\"}",
            )
            .await
            .ok()?;
        (m.len() == 1 && m[0]["value"][1] == "2").then_some(())
    })
    .await?;
    eventually(Duration::from_secs(30), || async {
        let m = cluster
            .query("count({job=\"integrations/self\",component=\"storage-node\",__name__=~\"scrapegrid_storage_.+\"})")
            .await
            .ok()?;
        (m.len() == 1 && m[0]["value"][1].as_str()?.parse::<u64>().ok()? > 5).then_some(())
    })
    .await?;
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let total_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let hosts = eventually(Duration::from_secs(30), || async {
        let m = cluster
            .query("node_memory_MemTotal_bytes{job=\"integrations/host\"}")
            .await
            .ok()?;
        (m.len() == 2).then_some(m)
    })
    .await?;
    for h in &hosts {
        assert_eq!(
            h["value"][1].as_str().unwrap().parse::<f64>()?,
            total_kb * 1024.0,
            "{h}"
        );
    }
    Ok(())
}
