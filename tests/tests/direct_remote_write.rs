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
    let mut cluster = Cluster::builder()
        .scrapers(0)
        .config(&yaml)
        .membership_timeout("3s")
        .build()
        .await
        .unwrap();
    // No storage node: the one the builder started is gone for good.
    cluster.storage.as_mut().unwrap().kill9();
    let dir = cluster.dir.path().to_path_buf();
    let config = dir.join("direct.yml");
    std::fs::write(&config, &yaml).unwrap();
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
