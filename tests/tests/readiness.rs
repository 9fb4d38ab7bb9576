//! A scraper's `/-/ready` (what Kubernetes' readiness probe and a rollout
//! wait for): 503 while no leading control plane counts it as a member,
//! 200 once it holds a session and its first snapshot, 503 (or gone)
//! once it is told to drain. `/-/healthy` is 200 throughout.

use std::time::Duration;

use scrapegrid_tests::{bin, eventually, free_addr, Cluster, Process, ANY_PORT};

async fn ready(http: &reqwest::Client, addr: &str) -> u16 {
    http.get(format!("http://{addr}/-/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_is_ready_only_as_a_member_that_is_not_draining() -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    // No control plane where it looks: alive, not ready.
    let dir = tempfile::tempdir()?;
    let args: Vec<String> = [
        "--control-plane",
        &format!("http://{}", free_addr()),
        "--http-addr",
        ANY_PORT,
        "--id",
        "alone",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut alone = Process::spawn("alone", &bin("scraper-node"), &args, dir.path())?;
    let addr = alone.listening("http").await?;
    let healthy = http.get(format!("http://{addr}/-/healthy")).send().await?;
    assert_eq!(healthy.status().as_u16(), 200);
    assert_eq!(ready(&http, &addr).await, 503);
    alone.terminate(Duration::from_secs(20))?;

    // In a cluster: ready once joined.
    let mut cluster = Cluster::builder()
        .scrapers(2)
        .config("global:\n  scrape_interval: 1s\nscrape_configs: []\n")
        .build()
        .await?;
    for (id, addr, _) in &cluster.scrapers {
        eventually(Duration::from_secs(30), || async {
            (ready(&http, addr).await == 200).then_some(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
    }
    // Draining: not ready while it hands over and delivers (with nothing to
    // hand over it exits at once).
    let (id, addr) = (cluster.scrapers[0].0.clone(), cluster.scrapers[0].1.clone());
    let pid = cluster.scraper_mut(&id).pid();
    // SAFETY: kill(2) on the PID of a child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    eventually(Duration::from_secs(10), || async {
        // 0: it has exited (nothing answers), also not ready.
        matches!(ready(&http, &addr).await, 503 | 0).then_some(())
    })
    .await?;
    Ok(())
}
