//! End-to-end exemplars: a real OpenMetrics target with exemplars, scraped
//! by the real binaries, read back through the storage node's
//! `/api/v1/query_exemplars`, and still there after `kill -9` of the
//! storage node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scrapegrid_tests::{eventually, now_secs, sample_value, Cluster};
use serde_json::{json, Value};

/// `TargetServer` answers `text/plain`; exemplars need OpenMetrics.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A real HTTP target serving a settable OpenMetrics body on `/metrics`.
struct OmTarget {
    addr: String,
    body: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl OmTarget {
    async fn start(body: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let body = Arc::new(Mutex::new(body.to_string()));
        let b = body.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let text = b.lock().unwrap().clone();
                async move { ([("content-type", OPENMETRICS)], text) }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, body, task })
    }

    fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }
}

impl Drop for OmTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn body(bucket_exemplar_value: &str) -> String {
    format!(
        "# TYPE req counter\n\
         req_total 5 # {{trace_id=\"abc\"}} 0.5 1600000000.5\n\
         # TYPE lat histogram\n\
         lat_bucket{{le=\"0.1\"}} 1 # {{trace_id=\"x\"}} {bucket_exemplar_value}\n\
         lat_bucket{{le=\"+Inf\"}} 2 # {{trace_id=\"y\"}} 0.3 1600000001\n\
         lat_count 2\n\
         lat_sum 0.35\n\
         # TYPE big counter\n\
         big_total 1 # {{trace_id=\"{}\"}} 1\n\
         # EOF\n",
        "t".repeat(130)
    )
}

/// Returns `/api/v1/query_exemplars` for `{job="om"}` since 2017 as
/// `metric name and le -> [(trace_id, value, timestamp)]`.
async fn exemplars(cluster: &Cluster) -> Option<Vec<(String, Vec<(String, String, f64)>)>> {
    let url = format!("http://{}/api/v1/query_exemplars", cluster.storage_http);
    let end = (now_secs() + 60.0).to_string();
    let params = [
        ("query", r#"{job="om"}"#),
        ("start", "1500000000"),
        ("end", end.as_str()),
    ];
    let r = cluster.http.get(url).query(&params).send().await.ok()?;
    let body: Value = r.json().await.ok()?;
    assert_eq!(body["status"], "success", "{body}");
    let series = body["data"].as_array()?;
    Some(
        series
            .iter()
            .map(|s| {
                let l = &s["seriesLabels"];
                assert_eq!(l["job"], "om");
                let name = match l["le"].as_str() {
                    Some(le) => format!("{}{{le={le}}}", l["__name__"].as_str().unwrap()),
                    None => l["__name__"].as_str().unwrap().to_string(),
                };
                let list = s["exemplars"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e["labels"]["trace_id"].as_str().unwrap().to_string(),
                            e["value"].as_str().unwrap().to_string(),
                            e["timestamp"].as_f64().unwrap(),
                        )
                    })
                    .collect();
                (name, list)
            })
            .collect(),
    )
}

/// Exemplars are stored as Prometheus stores them: explicit timestamps
/// kept, the sample's timestamp otherwise, a repeated exemplar once, labels
/// over 128 characters dropped without failing the scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_exemplars_reach_query_exemplars() -> anyhow::Result<()> {
    let target = OmTarget::start(&body("0.05")).await?;
    let config = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n\
         scrape_configs:\n  - job_name: om\n    static_configs:\n      - targets: ['{}']\n",
        target.addr
    );
    let mut cluster = Cluster::builder()
        .scrapers(1)
        .config(&config)
        .build()
        .await?;
    let started = now_secs();

    // Four scrapes stored, so the exemplar without a timestamp came again.
    eventually(Duration::from_secs(30), || async {
        let raw = cluster.query(r#"up{job="om"}[1m]"#).await.ok()?;
        (raw.first()?["values"].as_array()?.len() >= 4).then_some(())
    })
    .await?;
    let up = cluster.query(r#"up{job="om"}"#).await?;
    assert_eq!(sample_value(&up[0]), 1.0, "the scrape succeeds");
    let big = cluster.query(r#"big_total{job="om"}"#).await?;
    assert_eq!(
        sample_value(&big[0]),
        1.0,
        "the sample of a too-long exemplar is stored"
    );

    let got = exemplars(&cluster).await.expect("query_exemplars answers");
    assert_eq!(got.len(), 3, "no series for the too-long exemplar: {got:?}");
    assert_eq!(got[0].0, "lat_bucket{le=+Inf}");
    assert_eq!(got[0].1, [("y".into(), "0.3".into(), 1600000001.0)]);
    assert_eq!(got[1].0, "lat_bucket{le=0.1}");
    assert_eq!(got[1].1.len(), 1, "stored once over many scrapes: {got:?}");
    let (trace, value, ts) = &got[1].1[0];
    assert_eq!((trace.as_str(), value.as_str()), ("x", "0.05"));
    assert!(
        *ts >= started && *ts <= now_secs(),
        "a scrape's timestamp: {ts}"
    );
    assert_eq!(got[2].0, "req_total");
    assert_eq!(got[2].1, [("abc".into(), "0.5".into(), 1600000000.5)]);

    // A new value makes a new exemplar.
    target.set(&body("0.07"));
    let got = eventually(Duration::from_secs(20), || async {
        let got = exemplars(&cluster).await?;
        (got[1].1.len() == 2).then_some(got)
    })
    .await?;
    assert_eq!(got[1].1[1].1, "0.07");

    // What was acked survives kill -9 of the storage node.
    let url = format!(
        "http://{}/api/v1/query_exemplars?query=req_total",
        cluster.storage_http
    );
    let before: Value = cluster.http.get(&url).send().await?.json().await?;
    cluster.storage.as_mut().unwrap().kill9();
    cluster.restart_storage().await?;
    let after: Value = cluster.http.get(&url).send().await?.json().await?;
    assert_eq!(after, before);
    assert_eq!(
        after["data"][0]["exemplars"],
        json!([{"labels": {"trace_id": "abc"}, "value": "0.5", "timestamp": 1600000000.5}])
    );
    let got = exemplars(&cluster).await.expect("query_exemplars answers");
    assert!(got[1].1.len() >= 2, "{got:?}");
    Ok(())
}
