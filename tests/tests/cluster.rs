//! End-to-end: real binaries on loopback, real HTTP targets, real RocksDB.

use std::time::{Duration, Instant};

use scrapegrid_tests::{eventually, now_secs, sample_value, Cluster, TargetServer};
use serde_json::Value;

fn metric_of<'a>(series: &'a [Value], label: &str, value: &str) -> Option<&'a Value> {
    series.iter().find(|s| s["metric"][label] == value)
}

/// Series arrive with target labels, relabeling applied, and the right values;
/// `up` is 1 for each target and `promtool query instant` reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_arrive_with_labels_and_values() -> anyhow::Result<()> {
    let t1 = TargetServer::start("# TYPE demo_value gauge\ndemo_value{kind=\"a\"} 42\ndrop_me 1\n")
        .await?;
    let t2 = TargetServer::start("demo_value{kind=\"b\"} 43.5\n").await?;
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['{}', '{}']
        labels:
          env: test
    relabel_configs:
      - source_labels: [__address__]
        regex: '127\.0\.0\.1:(\d+)'
        target_label: port
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: drop_me
        action: drop
"#,
        t1.addr, t2.addr
    );
    let cluster = Cluster::builder()
        .scrapers(2)
        .config(&config)
        .build()
        .await?;

    let series = eventually(Duration::from_secs(30), || async {
        let r = cluster.query("demo_value").await.ok()?;
        (r.len() == 2).then_some(r)
    })
    .await?;
    let a = metric_of(&series, "kind", "a").expect("series a");
    assert_eq!(a["metric"]["job"], "demo");
    assert_eq!(a["metric"]["env"], "test");
    assert_eq!(a["metric"]["instance"], t1.addr.as_str());
    assert_eq!(a["metric"]["port"], t1.addr.rsplit(':').next().unwrap());
    assert_eq!(a["metric"]["__name__"], "demo_value");
    assert_eq!(sample_value(a), 42.0);
    let b = metric_of(&series, "kind", "b").expect("series b");
    assert_eq!(sample_value(b), 43.5);

    assert!(
        cluster.query("drop_me").await?.is_empty(),
        "metric relabeling dropped it"
    );
    let up = eventually(Duration::from_secs(10), || async {
        let r = cluster.query("up{job=\"demo\"}").await.ok()?;
        (r.len() == 2).then_some(r)
    })
    .await?;
    assert!(up.iter().all(|s| sample_value(s) == 1.0), "{up:?}");
    let scraped = cluster.query("scrape_samples_scraped{kind=\"\"}").await?;
    let s1 = metric_of(&scraped, "instance", &t1.addr).expect("report series");
    assert_eq!(sample_value(s1), 2.0);
    let post = cluster
        .query("scrape_samples_post_metric_relabeling")
        .await?;
    assert_eq!(
        sample_value(metric_of(&post, "instance", &t1.addr).unwrap()),
        1.0
    );

    // Range selectors return raw samples, one per interval.
    let raw = cluster.query("demo_value{kind=\"a\"}[10s]").await?;
    assert_eq!(raw.len(), 1);
    assert!(!raw[0]["values"].as_array().unwrap().is_empty());

    // The targets API names the owner of each target.
    let targets = cluster.targets().await?;
    let active = targets["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 2);
    assert!(active.iter().all(|t| t["scraper"]
        .as_str()
        .is_some_and(|s| s.starts_with("scraper-"))));

    // promtool (Debian's prometheus package) reads the same through the HTTP API.
    let out = std::process::Command::new("promtool")
        .args([
            "query",
            "instant",
            &format!("http://{}", cluster.storage_http),
            "up",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for t in [&t1.addr, &t2.addr] {
        assert!(
            text.contains(&format!("instance=\"{t}\"")),
            "promtool output lacks {t}: {text}"
        );
    }
    Ok(())
}

/// SIGKILL one scraper: its targets are scraped by the survivor within the
/// membership timeout plus two intervals, with no longer gap in `up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_scraper_targets_move_to_the_survivor() -> anyhow::Result<()> {
    let mut targets = Vec::new();
    for i in 0..6 {
        targets.push(TargetServer::start(&format!("v{{i=\"{i}\"}} 1\n")).await?);
    }
    let list: Vec<String> = targets.iter().map(|t| format!("'{}'", t.addr)).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fleet\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    );
    let mut cluster = Cluster::builder()
        .scrapers(2)
        .membership_timeout("3s")
        .config(&config)
        .build()
        .await?;
    let owners = eventually(Duration::from_secs(30), || async {
        let t = cluster.targets().await.ok()?;
        let active = t["activeTargets"].as_array()?.clone();
        let healthy = active.iter().filter(|t| t["health"] == "up").count();
        (healthy == 6).then_some(active)
    })
    .await?;
    let victim = owners[0]["scraper"].as_str().unwrap().to_string();
    let moved: Vec<String> = owners
        .iter()
        .filter(|t| t["scraper"] == victim.as_str())
        .map(|t| t["labels"]["instance"].as_str().unwrap().to_string())
        .collect();
    assert!(!moved.is_empty());

    let killed_at = now_secs();
    let kill_instant = Instant::now();
    cluster.scraper_mut(&victim).kill9();
    // A new value shows that someone scrapes the moved targets after the kill.
    for (i, t) in targets.iter().enumerate() {
        if moved.contains(&t.addr) {
            t.set(200, &format!("v{{i=\"{i}\"}} 2\n"));
        }
    }
    // Membership timeout (3 s) plus two scrape intervals (1 s) plus 2 s of
    // slack for process scheduling on a loaded 2-core CI machine.
    let (membership, interval, slack) = (3, 1, 2);
    let bound = Duration::from_secs(membership + 2 * interval + slack);
    for instance in &moved {
        eventually(bound, || async {
            let r = cluster
                .query(&format!("v{{instance=\"{instance}\"}}"))
                .await
                .ok()?;
            (r.len() == 1 && sample_value(&r[0]) == 2.0).then_some(())
        })
        .await?;
    }
    let took = kill_instant.elapsed();
    assert!(
        took <= bound,
        "targets took {took:?} to move (bound {bound:?})"
    );

    // The `up` series of every moved target has no gap longer than the bound.
    let start = killed_at - 5.0;
    let end = now_secs();
    for instance in &moved {
        let raw = cluster
            .query(&format!(
                "up{{instance=\"{instance}\"}}[{}s]",
                (end - start).ceil() as u64 + 1
            ))
            .await?;
        let values = raw[0]["values"].as_array().unwrap();
        let ts: Vec<f64> = values
            .iter()
            .map(|v| v[0].as_f64().unwrap())
            .filter(|t| *t >= start)
            .collect();
        let max_gap = ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(
            max_gap <= bound.as_secs_f64(),
            "gap of {max_gap}s in up of {instance}: {ts:?}"
        );
    }
    // Every target is still owned by the survivor.
    let t = cluster.targets().await?;
    assert!(t["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["scraper"] != victim.as_str()));
    Ok(())
}

/// A malformed exposition gives `up` 0 and a readable last error; a target
/// that leaves file_sd gets stale markers, so it vanishes from instant queries
/// at once instead of after the 5-minute lookback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_are_down_and_removed_targets_go_stale() -> anyhow::Result<()> {
    let good = TargetServer::start("g 1\n").await?;
    let bad = TargetServer::start("bad{ 1\n").await?;
    let config = r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: files
    file_sd_configs:
      - files: ['{dir}/targets/*.json']
"#;
    let cluster = Cluster::builder()
        .scrapers(1)
        .config(config)
        .build()
        .await?;
    let sd = cluster.dir.path().join("targets");
    std::fs::create_dir_all(&sd)?;
    let write = |addrs: &[&str]| {
        let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
        let json = format!(
            "[{{\"targets\": [{}], \"labels\": {{\"team\": \"x\"}}}}]",
            list.join(",")
        );
        std::fs::write(sd.join("tg.json.tmp"), json).unwrap();
        std::fs::rename(sd.join("tg.json.tmp"), sd.join("tg.json")).unwrap();
    };
    write(&[&good.addr, &bad.addr]);

    let up = eventually(Duration::from_secs(30), || async {
        let r = cluster.query("up{job=\"files\"}").await.ok()?;
        (r.len() == 2).then_some(r)
    })
    .await?;
    assert_eq!(
        sample_value(metric_of(&up, "instance", &good.addr).unwrap()),
        1.0
    );
    assert_eq!(
        sample_value(metric_of(&up, "instance", &bad.addr).unwrap()),
        0.0
    );
    assert_eq!(
        metric_of(&up, "instance", &good.addr).unwrap()["metric"]["team"],
        "x"
    );
    let error = eventually(Duration::from_secs(10), || async {
        let t = cluster.targets().await.ok()?;
        let active = t["activeTargets"].as_array()?.clone();
        let b = active
            .iter()
            .find(|t| t["labels"]["instance"] == bad.addr.as_str())?;
        let e = b["lastError"].as_str()?.to_string();
        (b["health"] == "down" && !e.is_empty()).then_some(e)
    })
    .await?;
    assert_eq!(
        error, "expected label name, got \"INVALID\"",
        "the last error reads as Prometheus 2.42's"
    );

    // Remove the good target from discovery: its series go stale.
    write(&[&bad.addr]);
    eventually(Duration::from_secs(10), || async {
        let r = cluster.query("g").await.ok()?;
        r.is_empty().then_some(())
    })
    .await?;
    let up = cluster
        .query(&format!("up{{instance=\"{}\"}}", good.addr))
        .await?;
    assert!(up.is_empty(), "up of a removed target is stale too: {up:?}");
    // Its samples before the stale marker are still there.
    let history = cluster.query("g[1m]").await?;
    assert_eq!(history.len(), 1, "history of g: {history:?}");
    assert!(history[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v[1] == "1"));
    Ok(())
}

/// SIGKILL the storage node while scrapers stream to it, restart it: the
/// batches scraped meanwhile are resent and stored once, so `up` has no gap
/// and no duplicate timestamps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_crash_loses_nothing_and_stores_nothing_twice() -> anyhow::Result<()> {
    let t = TargetServer::start("x 1\n").await?;
    let config = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['{}']\n",
        t.addr
    );
    let mut cluster = Cluster::builder()
        .scrapers(1)
        .config(&config)
        .build()
        .await?;
    eventually(Duration::from_secs(30), || async {
        let r = cluster.query("up").await.ok()?;
        (r.len() == 1).then_some(())
    })
    .await?;
    let start = now_secs();
    cluster.storage.as_mut().unwrap().kill9();
    let requests_at_kill = t.requests();
    // Scraping goes on while storage is down.
    eventually(Duration::from_secs(10), || async {
        (t.requests() >= requests_at_kill + 5).then_some(())
    })
    .await?;
    cluster.restart_storage().await?;
    let scraped_until = now_secs();
    // Wait until everything scraped during the outage is stored.
    let values = eventually(Duration::from_secs(20), || async {
        let r = cluster.query("up[30s]").await.ok()?;
        let v = r.first()?["values"].as_array()?.clone();
        let last = v.last()?[0].as_f64()?;
        (last > scraped_until).then_some(v)
    })
    .await?;
    let ts: Vec<f64> = values
        .iter()
        .map(|v| v[0].as_f64().unwrap())
        .filter(|t| *t >= start - 1.0)
        .collect();
    let max_gap = ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(
        max_gap < 0.9,
        "gap of {max_gap}s in up across the storage crash: {ts:?}"
    );
    let mut dedup = ts.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), ts.len(), "a timestamp was stored twice");
    // The samples span the whole outage: from before the kill to after the restart.
    assert!(
        ts[0] < start && *ts.last().unwrap() > scraped_until,
        "outage not covered: {ts:?}"
    );
    Ok(())
}

/// SIGKILL the control plane and start it again: scrapers keep scraping their
/// last assignment meanwhile, rejoin, and the storage node keeps accepting
/// their batches (generations only grow across control plane restarts, so
/// fencing does not refuse them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_restart_keeps_scraping_and_storing() -> anyhow::Result<()> {
    let t = TargetServer::start("y 1\n").await?;
    let config = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['{}']\n",
        t.addr
    );
    let mut cluster = Cluster::builder()
        .scrapers(2)
        .config(&config)
        .build()
        .await?;
    eventually(Duration::from_secs(30), || async {
        let r = cluster.query("y").await.ok()?;
        (r.len() == 1).then_some(())
    })
    .await?;
    cluster.control.as_mut().unwrap().kill9();
    // The scraper goes on without a control plane.
    t.set(200, "y 2\n");
    eventually(Duration::from_secs(10), || async {
        let r = cluster.query("y").await.ok()?;
        (r.len() == 1 && sample_value(&r[0]) == 2.0).then_some(())
    })
    .await?;
    cluster.restart_control().await?;
    eventually(Duration::from_secs(15), || async {
        let t = cluster.targets().await.ok()?;
        let a = t["activeTargets"].as_array()?.clone();
        (a.len() == 1 && a[0]["health"] == "up").then_some(())
    })
    .await?;
    // After the restart, new values are still stored.
    t.set(200, "y 3\n");
    eventually(Duration::from_secs(10), || async {
        let r = cluster.query("y").await.ok()?;
        (r.len() == 1 && sample_value(&r[0]) == 3.0).then_some(())
    })
    .await?;
    let storage_metrics = cluster
        .http
        .get(format!("http://{}/metrics", cluster.storage_http))
        .send()
        .await?
        .text()
        .await?;
    let fenced: f64 = storage_metrics
        .lines()
        .filter(|l| {
            l.starts_with("scrapegrid_storage_batches_refused_total") && l.contains("fenced")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        fenced, 0.0,
        "batches were fenced after the restart:\n{storage_metrics}"
    );
    Ok(())
}
