//! `/api/v1/status/tsdb` against real Prometheus 2.42: both scrape the same
//! targets with the same `prometheus.yml` (one that answers with several
//! metrics and label values, one that is down), then their series count,
//! label pair count and the four top-ten lists must agree. Where counts
//! tie at the tenth place either may pick which name to show, so the
//! counts are compared in full and the names above the tie.

use std::time::Duration;

use anyhow::Result;
use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::{eventually, free_addr, get_data, Cluster, TargetServer};
use serde_json::Value;

const LISTS: [&str; 4] = [
    "seriesCountByMetricName",
    "labelValueCountByLabelName",
    "memoryInBytesByLabelName",
    "seriesCountByLabelValuePair",
];

fn exposition() -> String {
    let mut body = String::from("# TYPE http_requests_total counter\n");
    for (i, code) in ["200", "404", "500", "503"].iter().enumerate() {
        for method in ["get", "post", "put"].iter().take(i + 1) {
            body.push_str(&format!(
                "http_requests_total{{code=\"{code}\",method=\"{method}\"}} {i}\n"
            ));
        }
    }
    body.push_str("# TYPE temperature gauge\n");
    for room in ["kitchen", "hall", "a-much-longer-room-name"] {
        body.push_str(&format!("temperature{{room=\"{room}\"}} 21\n"));
    }
    body.push_str("# TYPE build_info gauge\nbuild_info{version=\"1.2.3\",revision=\"abc\"} 1\n");
    body
}

/// (count, name) pairs of a list, and the names above its tenth count.
fn split(list: &Value) -> (Vec<u64>, Vec<String>) {
    let entries: Vec<(String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut counts: Vec<u64> = entries.iter().map(|e| e.1).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let floor = if entries.len() < 10 { 0 } else { counts[9] };
    let mut names: Vec<String> = entries
        .into_iter()
        .filter(|e| floor == 0 || e.1 > floor)
        .map(|e| format!("{}={}", e.0, e.1))
        .collect();
    names.sort();
    (counts, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsdb_status_matches_prometheus() -> Result<()> {
    let target = TargetServer::start(&exposition()).await?;
    let dead = free_addr();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n        labels: {{team: core}}\n  - job_name: gone\n    static_configs:\n      - targets: ['{dead}']\n",
        target.addr
    );
    let cluster = Cluster::builder().config(&config).build().await?;
    let prometheus = Prometheus::start(&cluster.config).await?;
    let ours = format!("http://{}/api/v1/status/tsdb", cluster.storage_http);
    let theirs = format!("http://{}/api/v1/status/tsdb", prometheus.addr);
    // Both have every series once each has scraped both targets: 13
    // samples from the app and five scrape series per target. Ask
    // Prometheus for its status only then: it keeps the postings
    // statistics for 30 s.
    for addr in [&cluster.storage_http, &prometheus.addr] {
        eventually(Duration::from_secs(30), || async {
            let d: Value = cluster
                .http
                .get(format!("http://{addr}/api/v1/query"))
                .query(&[("query", "count({__name__=~\".+\"})")])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (d["data"]["result"][0]["value"][1] == "23").then_some(())
        })
        .await?;
    }
    let a = get_data(&cluster.http, &ours).await?;
    let b = get_data(&cluster.http, &theirs).await?;
    assert_eq!(a["headStats"]["numSeries"], 23, "{a}");
    assert_eq!(b["headStats"]["numSeries"], 23, "{b}");
    assert_eq!(
        a["headStats"]["numLabelPairs"], b["headStats"]["numLabelPairs"],
        "ours {a}\nPrometheus's {b}"
    );
    for list in LISTS {
        assert_eq!(
            split(&a[list]),
            split(&b[list]),
            "{list}: ours {a}\nPrometheus's {b}"
        );
    }
    // The open chunks in memory: one per series, with recent times.
    let head = &a["headStats"];
    assert_eq!(head["chunkCount"], head["numSeries"], "{a}");
    let (min, max) = (
        head["minTime"].as_i64().unwrap(),
        head["maxTime"].as_i64().unwrap(),
    );
    let now = scrapegrid_common::clock::now_ms();
    assert!(min <= max && now - min < 60_000 && max <= now, "{a}");
    Ok(())
}
