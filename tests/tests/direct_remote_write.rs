//! Direct mode (`scraper-node --remote-write.config`): no storage node, each
//! scraper sends straight to a real VictoriaMetrics 1.79 through its
//! embedded durable queue. The cluster's storage node is killed first, so
//! nothing can reach it. VictoriaMetrics is stopped under load, a scraper is
//! killed with `kill -9` meanwhile and started again on its directory, and
//! VictoriaMetrics comes back. The scrapers then shut down, each sending
//! what its queue holds before it exits. VictoriaMetrics must hold exactly
//! what the scrapers committed (their embedded nodes' local copies, read by
//! a storage node opened on each one's directory): nothing lost, nothing
//! twice (it keeps a repeated timestamp, so a duplicate would show).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use scrapegrid_tests::victoria::VictoriaMetrics;
use scrapegrid_tests::{eventually, get_data, hold_for, start_storage, Cluster, TargetServer};

/// Every sample a scraper's embedded node stores: series key -> timestamps.
async fn local_copy(http: &reqwest::Client, addr: &str) -> BTreeMap<String, BTreeSet<i64>> {
    let url = format!(
        "http://{addr}/api/v1/query?query={}",
        urlencode(r#"{__name__=~".+"}[1h]"#)
    );
    let data = get_data(http, &url).await.unwrap();
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for s in data["result"].as_array().unwrap() {
        let mut pairs: Vec<String> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or_default()))
            .collect();
        pairs.sort();
        let set = out.entry(pairs.join(",")).or_default();
        for p in s["values"].as_array().unwrap() {
            set.insert((p[0].as_f64().unwrap() * 1000.0).round() as i64);
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn direct_args(config: &Path, data: &Path) -> Vec<String> {
    vec![
        "--remote-write.config".into(),
        config.display().to_string(),
        "--remote-write.data-dir".into(),
        data.display().to_string(),
        "--drain-timeout".into(),
        "10s".into(),
    ]
}

/// A cluster of a control plane on `yaml` and no scraper, without a storage
/// node (the one the builder started is gone for good), and the path of
/// `yaml` for `--remote-write.config`.
async fn direct_cluster(yaml: &str) -> (Cluster, std::path::PathBuf) {
    let mut cluster = Cluster::builder()
        .scrapers(0)
        .config(yaml)
        .membership_timeout("3s")
        .build()
        .await
        .unwrap();
    cluster.storage.as_mut().unwrap().kill9();
    let config = cluster.dir.path().join("direct.yml");
    std::fs::write(&config, yaml).unwrap();
    (cluster, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapers_send_straight_to_victoriametrics_losing_and_doubling_nothing() {
    let mut targets = Vec::new();
    for i in 0..4 {
        targets.push(
            TargetServer::start(&format!(
                "# TYPE m gauge\nm{{k=\"a\"}} {i}\nm{{k=\"b\"}} 1\n"
            ))
            .await
            .unwrap(),
        );
    }
    let addrs: Vec<&str> = targets.iter().map(|t| t.addr.as_str()).collect();
    let mut vm = VictoriaMetrics::start().await.unwrap();
    let yaml = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}
scrape_configs:
  - job_name: direct
    static_configs: [{{targets: {addrs:?}}}]
remote_write:
  - url: {}
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 20ms, max_backoff: 300ms}}
",
        vm.write_url()
    );
    let (mut cluster, config) = direct_cluster(&yaml).await;
    let dir = cluster.dir.path().to_path_buf();
    // `<dir>/<id>/data`: where `start_storage(<dir>/<id>)` opens a node.
    let data = |id: &str| dir.join(id).join("data");
    for id in ["scraper-0", "scraper-1"] {
        cluster
            .add_scraper_with(id, &direct_args(&config, &data(id)))
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(30), || async {
        let up = vm.export("up").await.ok()?;
        (up.len() == 4 && up.iter().all(|(_, ts, _)| ts.len() >= 2)).then_some(())
    })
    .await
    .unwrap();

    // Nothing else on the host can write into a scraper's queue.
    let local = cluster
        .scraper_mut("scraper-1")
        .listening("storage-http")
        .await
        .unwrap();
    let injected = cluster
        .http
        .post(format!("http://{local}/api/v1/write"))
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status().as_u16(), 401, "an unauthenticated write");

    // VictoriaMetrics goes down under load; scraper-0 is killed meanwhile
    // and comes back on its directory; then VictoriaMetrics comes back.
    vm.stop().unwrap();
    hold_for(
        Duration::from_secs(3),
        "scraping while VictoriaMetrics is down",
    )
    .await;
    cluster.scraper_mut("scraper-0").kill9();
    hold_for(Duration::from_secs(1), "scraper-0 dead").await;
    cluster
        .add_scraper_with("scraper-0", &direct_args(&config, &data("scraper-0")))
        .await
        .unwrap();
    hold_for(
        Duration::from_secs(3),
        "scraping, VictoriaMetrics still down",
    )
    .await;
    vm.start_again().await.unwrap();
    hold_for(Duration::from_secs(3), "scraping with VictoriaMetrics back").await;

    // The scrapers shut down (SIGTERM): each delivers its last batches to
    // its embedded node, which sends what it holds before it exits.
    for id in ["scraper-1", "scraper-0"] {
        let code = cluster
            .terminate_scraper(id, Duration::from_secs(60))
            .unwrap();
        assert_eq!(code, Some(0), "{id} exit code");
    }
    // What they committed: a storage node opened on each one's directory.
    let mut committed: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for id in ["scraper-0", "scraper-1"] {
        let node = start_storage(&dir.join(id), "reader").await.unwrap();
        let copy = local_copy(&cluster.http, &node.http).await;
        println!(
            "{id} committed {} samples in {} series",
            copy.values().map(BTreeSet::len).sum::<usize>(),
            copy.len()
        );
        for (k, ts) in copy {
            committed.entry(k).or_default().extend(ts);
        }
    }
    // The scrapers are gone: what VictoriaMetrics holds only grows until
    // it has made the last requests searchable.
    let mut sent: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    for _ in 0..50 {
        sent = vm
            .export(r#"{__name__=~".+"}"#)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, ts, vs)| {
                let ts: Vec<i64> = ts
                    .into_iter()
                    .zip(vs)
                    .filter(|(_, v)| v.is_finite())
                    .map(|(t, _)| t)
                    .collect();
                (k, ts)
            })
            .collect();
        missing = committed
            .iter()
            .filter_map(|(k, ts)| {
                let got = sent.get(k).cloned().unwrap_or_default();
                let lost: Vec<&i64> = ts.iter().filter(|t| !got.contains(t)).collect();
                (!lost.is_empty()).then(|| {
                    format!(
                        "{k}: {} of {} missing, e.g. {:?}",
                        lost.len(),
                        ts.len(),
                        &lost[..lost.len().min(3)]
                    )
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        missing.is_empty(),
        "committed samples missing at VictoriaMetrics: {missing:#?}"
    );
    let mut twice = Vec::new();
    let mut unknown = Vec::new();
    for (k, ts) in &sent {
        let set: BTreeSet<i64> = ts.iter().copied().collect();
        if set.len() != ts.len() {
            twice.push(k.clone());
        }
        let local = committed.get(k).cloned().unwrap_or_default();
        if local != set {
            let extra: Vec<&i64> = set.difference(&local).collect();
            unknown.push(format!(
                "{k}: {} extra, e.g. {:?}",
                extra.len(),
                &extra[..extra.len().min(3)]
            ));
        }
    }
    assert!(
        twice.is_empty(),
        "samples twice at VictoriaMetrics: {twice:?}"
    );
    assert!(
        unknown.is_empty(),
        "samples at VictoriaMetrics no scraper committed: {unknown:?}"
    );
    assert_eq!(
        committed
            .keys()
            .filter(|k| k.contains("__name__=\"m\""))
            .count(),
        8
    );
    let total: usize = committed.values().map(BTreeSet::len).sum();
    println!(
        "committed and sent: {total} samples in {} series",
        committed.len()
    );
}

/// Direct mode without a local copy (`--remote-write.local-copy=false`,
/// Prometheus's agent mode): the embedded node keeps the queue and no
/// samples. One scraper scrapes every 500 ms; VictoriaMetrics is stopped
/// under load, the scraper is killed with `kill -9` meanwhile and started
/// again on its directory, VictoriaMetrics comes back and the scraper shuts
/// down. Each series at VictoriaMetrics must have every scrape of the run:
/// no timestamp twice, and no gap longer than two intervals except where
/// the scraper was dead (a lost queued sample leaves one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_local_copy_the_queue_alone_loses_nothing() {
    let target = TargetServer::start("# TYPE m gauge\nm{k=\"a\"} 1\nm{k=\"b\"} 2\n")
        .await
        .unwrap();
    let mut vm = VictoriaMetrics::start().await.unwrap();
    let yaml = format!(
        "global: {{scrape_interval: 500ms, scrape_timeout: 400ms}}
scrape_configs:
  - job_name: agent
    static_configs: [{{targets: [{:?}]}}]
remote_write:
  - url: {}
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 20ms, max_backoff: 300ms}}
",
        target.addr,
        vm.write_url()
    );
    let (mut cluster, config) = direct_cluster(&yaml).await;
    let dir = cluster.dir.path().to_path_buf();
    let mut args = direct_args(&config, &dir.join("agent"));
    args.push("--remote-write.local-copy=false".into());
    cluster.add_scraper_with("agent", &args).await.unwrap();
    eventually(Duration::from_secs(30), || async {
        let m = vm.export("m").await.ok()?;
        (m.len() == 2 && m.iter().all(|(_, ts, _)| ts.len() >= 3)).then_some(())
    })
    .await
    .unwrap();

    // The local copy holds nothing (only the queue is kept).
    let local = cluster
        .scraper_mut("agent")
        .listening("storage-http")
        .await
        .unwrap();
    let url = format!(
        "http://{local}/api/v1/query?query={}",
        urlencode(r#"count({__name__=~".+"})"#)
    );
    let data = get_data(&cluster.http, &url).await.unwrap();
    assert_eq!(data["result"], serde_json::json!([]), "local copy: {data}");

    vm.stop().unwrap();
    hold_for(
        Duration::from_secs(3),
        "scraping while VictoriaMetrics is down",
    )
    .await;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let killed_ms = now_ms();
    cluster.scraper_mut("agent").kill9();
    hold_for(Duration::from_secs(1), "the scraper dead").await;
    cluster.add_scraper_with("agent", &args).await.unwrap();
    hold_for(
        Duration::from_secs(3),
        "scraping, VictoriaMetrics still down",
    )
    .await;
    vm.start_again().await.unwrap();
    hold_for(Duration::from_secs(2), "scraping with VictoriaMetrics back").await;
    let code = cluster
        .terminate_scraper("agent", Duration::from_secs(60))
        .unwrap();
    assert_eq!(code, Some(0), "exit code");

    // The first scrape of the restarted scraper, as VictoriaMetrics has it.
    let mut series: Vec<(String, Vec<i64>)> = Vec::new();
    for _ in 0..50 {
        series = vm
            .export("m")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, ts, _)| (k, ts))
            .collect();
        let last_ok = series
            .iter()
            .all(|(_, ts)| ts.iter().filter(|&&t| t > killed_ms + 6_000).count() >= 3);
        if series.len() == 2 && last_ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(series.len(), 2, "{series:?}");
    for (k, ts) in &series {
        let set: BTreeSet<i64> = ts.iter().copied().collect();
        assert_eq!(set.len(), ts.len(), "{k}: a timestamp twice");
        let ts: Vec<i64> = set.into_iter().collect();
        let before = ts.iter().filter(|&&t| t < killed_ms).count();
        assert!(before >= 8, "{k}: {before} samples before the kill");
        // The scraper came back: its first sample after the kill.
        let back = *ts
            .iter()
            .find(|&&t| t >= killed_ms)
            .unwrap_or_else(|| panic!("{k}: nothing after the kill"));
        let gaps: Vec<(i64, i64)> = ts
            .windows(2)
            .map(|w| (w[0], w[1]))
            // The kill may lose the scrape it interrupted (never acked), no more.
            .filter(|&(a, b)| {
                b - a > 1_000 && !((killed_ms - 1_500..killed_ms).contains(&a) && b == back)
            })
            .collect();
        assert!(gaps.is_empty(), "{k}: scrapes missing between {gaps:?}");
        println!(
            "{k}: {} samples, {before} before the kill, back after {} ms",
            ts.len(),
            back - killed_ms
        );
    }
}
