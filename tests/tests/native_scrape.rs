//! Native histograms scraped (issue 15): Prometheus 2.42 with
//! `--enable-feature=native-histograms` and a cluster with
//! `scrape_native_histograms: true` scrape the same protobuf targets, each
//! client seeing the same body sequence (a scrape counter per client), and
//! store the same thing: every series' samples in order (histograms by
//! count, sum and buckets; floats bit for bit), `up` and the scrape report
//! series per scrape, the same exemplars (2.42 gives a native histogram the
//! first exemplar of its classic buckets; both run with exemplar storage),
//! and the same Accept header.
//!
//! One target serves integer native histograms whose buckets grow (with
//! classic buckets in the same message, which 2.42 ignores for a native
//! family), negative buckets and a negative first span offset, a series
//! that disappears (staleness), one that metric relabeling drops, and a
//! plain counter; one serves a histogram whose count is below its buckets'
//! observations for two scrapes (the scrape fails, `up` 0, stale markers),
//! then recovers; one serves a float gauge histogram.
//!
//! Each job is selected on its own: Prometheus 2.42 answers one selection
//! that spans the float histogram series and integer histogram series
//! (`{job=~"native|float"}[5m]`) with the float histogram's value in every
//! integer histogram series (seen in this test; a query-side bug of 2.42's
//! float histogram support that scrapegrid does not reproduce).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use scrapegrid_proto::prometheus_client as pb;
use scrapegrid_proto::prost::Message;
use serde_json::Value;

use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::Cluster;

/// Scrapes each client must have made of each target before comparing.
const SCRAPES: u64 = 8;

/// Per-client scrape counters and the Accept headers each client sent.
#[derive(Default)]
struct Fixture {
    counts: [[AtomicU64; 2]; 3],
    accept: std::sync::Mutex<[Vec<String>; 2]>,
}

fn client(headers: &HeaderMap) -> usize {
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    usize::from(!ua.starts_with("Prometheus/"))
}

fn label(name: &str, value: &str) -> pb::LabelPair {
    pb::LabelPair {
        name: name.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn span(offset: i32, length: u32) -> pb::BucketSpan {
    pb::BucketSpan { offset, length }
}

fn family(name: &str, kind: pb::MetricType, metric: Vec<pb::Metric>) -> pb::MetricFamily {
    pb::MetricFamily {
        name: name.as_bytes().to_vec(),
        help: format!("{name} help").into_bytes(),
        r#type: kind as i32,
        metric,
    }
}

fn histogram_metric(labels: &[(&str, &str)], h: pb::Histogram) -> pb::Metric {
    pb::Metric {
        label: labels.iter().map(|(n, v)| label(n, v)).collect(),
        histogram: Some(Box::new(h)),
        ..Default::default()
    }
}

/// The good target's body at its `n`th scrape (from 1).
fn good_body(n: u64) -> Vec<u8> {
    let n_i = n as i64;
    // Buckets 0..3+n%3 with counts n, 2n, ...: deltas n each.
    let len = 3 + (n % 3) as u32;
    let a = pb::Histogram {
        sample_count: n * (len as u64) * (len as u64 + 1) / 2 + n,
        sample_sum: 1.5 * n as f64,
        schema: 3,
        zero_threshold: 0.001,
        zero_count: n,
        positive_span: vec![span(0, len)],
        positive_delta: vec![n_i; len as usize],
        // Classic buckets too: 2.42 ingests only the native part, and
        // gives the histogram the first bucket exemplar.
        bucket: vec![
            pb::Bucket {
                cumulative_count: n,
                upper_bound: 1.0,
                ..Default::default()
            },
            pb::Bucket {
                cumulative_count: 2 * n,
                upper_bound: 2.0,
                exemplar: Some(Box::new(pb::Exemplar {
                    label: vec![label("trace_id", &format!("t{n}"))],
                    value: 1.5,
                    timestamp: Some(pb::Timestamp {
                        seconds: 1_700_000_000 + n as i64,
                        nanos: 0,
                    }),
                })),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let b = pb::Histogram {
        sample_count: 5 * n + 1,
        sample_sum: -2.0 * n as f64,
        schema: 0,
        zero_threshold: 0.5,
        zero_count: 1,
        negative_span: vec![span(1, 2)],
        negative_delta: vec![n_i, 0],
        positive_span: vec![span(-2, 1), span(3, 1)],
        positive_delta: vec![n_i, n_i],
        ..Default::default()
    };
    let gone = pb::Histogram {
        sample_count: n,
        sample_sum: n as f64,
        schema: 1,
        zero_threshold: 0.001,
        positive_span: vec![span(0, 1)],
        positive_delta: vec![n_i],
        ..Default::default()
    };
    let mut metrics = vec![
        histogram_metric(&[("path", "/a")], a),
        histogram_metric(&[("path", "/b")], b),
        histogram_metric(&[("path", "/dropme")], gone.clone()),
    ];
    if n <= 4 {
        metrics.push(histogram_metric(&[("path", "/gone")], gone));
    }
    let families = [
        family("nh_req_seconds", pb::MetricType::Histogram, metrics),
        family(
            "nh_plain_total",
            pb::MetricType::Counter,
            vec![pb::Metric {
                counter: Some(Box::new(pb::Counter {
                    value: n as f64 * 3.0,
                    exemplar: None,
                })),
                ..Default::default()
            }],
        ),
    ];
    families
        .iter()
        .flat_map(|f| f.encode_length_delimited_to_vec())
        .collect()
}

/// The float target's body: a float gauge histogram.
fn float_body(n: u64) -> Vec<u8> {
    let scale = 1.0 + (n % 4) as f64 / 4.0;
    let float_gauge = pb::Histogram {
        sample_count_float: 6.0 * scale,
        sample_sum: 3.0 * scale,
        schema: 2,
        zero_threshold: 0.01,
        zero_count_float: 1.0 * scale,
        positive_span: vec![span(4, 2)],
        positive_count: vec![2.0 * scale, 3.0 * scale],
        ..Default::default()
    };
    family(
        "nh_queue_depth",
        pb::MetricType::GaugeHistogram,
        vec![histogram_metric(&[], float_gauge)],
    )
    .encode_length_delimited_to_vec()
}

/// The flaky target's body: its histogram's count is below its buckets'
/// observations at scrapes 4 and 5.
fn flaky_body(n: u64) -> Vec<u8> {
    let count = if (4..=5).contains(&n) { n } else { 2 * n };
    let h = pb::Histogram {
        sample_count: count,
        sample_sum: n as f64,
        schema: 0,
        zero_threshold: 0.001,
        positive_span: vec![span(0, 2)],
        positive_delta: vec![n as i64, 0],
        ..Default::default()
    };
    family(
        "nh_flaky_seconds",
        pb::MetricType::Histogram,
        vec![histogram_metric(&[], h)],
    )
    .encode_length_delimited_to_vec()
}

async fn serve(
    State(f): State<Arc<Fixture>>,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let c = client(&headers);
    let t = match target.as_str() {
        "good" => 0,
        "flaky" => 1,
        _ => 2,
    };
    let n = f.counts[t][c].fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(a) = headers.get("accept").and_then(|v| v.to_str().ok()) {
        let mut seen = f.accept.lock().unwrap();
        if !seen[c].iter().any(|s| s == a) {
            seen[c].push(a.to_string());
        }
    }
    let body = match t {
        0 => good_body(n),
        1 => flaky_body(n),
        _ => float_body(n),
    };
    (
        [(
            "content-type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )],
        body,
    )
}

fn config(addr: &str, native: bool) -> String {
    let global = if native {
        "global:\n  scrape_interval: 1s\n  scrape_native_histograms: true\n"
    } else {
        "global:\n  scrape_interval: 1s\n"
    };
    format!(
        "{global}scrape_configs:
  - job_name: native
    metrics_path: /metrics/good
    static_configs: [{{targets: ['{addr}']}}]
    metric_relabel_configs:
      - source_labels: [path]
        regex: /dropme
        action: drop
  - job_name: flaky
    metrics_path: /metrics/flaky
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: float
    metrics_path: /metrics/float
    static_configs: [{{targets: ['{addr}']}}]
"
    )
}

/// Every series of the two jobs over the last `range`: labels -> (floats,
/// histograms), each in time order, without timestamps.
fn series_values(result: &[Value]) -> BTreeMap<String, (Vec<String>, Vec<Value>)> {
    let mut out = BTreeMap::new();
    for s in result {
        let key = s["metric"].to_string();
        let floats = s["values"]
            .as_array()
            .map(|a| a.iter().map(|p| p[1].to_string()).collect())
            .unwrap_or_default();
        let hists = s["histograms"]
            .as_array()
            .map(|a| a.iter().map(|p| p[1].clone()).collect())
            .unwrap_or_default();
        out.insert(key, (floats, hists));
    }
    out
}

async fn raw(http: &reqwest::Client, addr: &str, q: &str, at: f64) -> Result<Vec<Value>> {
    let v: Value = http
        .get(format!("http://{addr}/api/v1/query"))
        .query(&[("query", q.to_string()), ("time", format!("{at:.3}"))])
        .send()
        .await?
        .json()
        .await?;
    if v["status"] != "success" {
        bail!("query {q} on {addr}: {v}");
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_native_histograms_match_prometheus() -> Result<()> {
    let fixture = Arc::new(Fixture::default());
    let app = axum::Router::new()
        .route("/metrics/{target}", axum::routing::get(serve))
        .with_state(fixture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(&prom_config, config(&addr, false))?;
    let prom = Prometheus::start_with(
        &prom_config,
        &["--enable-feature=native-histograms,exemplar-storage"],
    )
    .await?;
    let cluster = Cluster::builder()
        .scrapers(1)
        .config(&config(&addr, true))
        .build()
        .await
        .context("starting the cluster")?;

    let deadline = Instant::now() + Duration::from_secs(60);
    while fixture
        .counts
        .iter()
        .flatten()
        .any(|c| c.load(Ordering::SeqCst) < SCRAPES + 1)
    {
        if Instant::now() > deadline {
            bail!("not scraped {SCRAPES} times by both clients in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the last scrapes land.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let now = scrapegrid_tests::now_secs();
    // One selection per job: Prometheus 2.42 answers a selection that
    // spans a float histogram series and integer histogram series with the
    // float one's value in the others (see the module doc).
    let mut want = BTreeMap::new();
    let mut got = BTreeMap::new();
    for job in ["native", "flaky", "float"] {
        let q = format!(r#"{{job="{job}", __name__!="scrape_duration_seconds"}}[5m]"#);
        want.extend(series_values(
            &raw(&cluster.http, &prom.addr, &q, now).await?,
        ));
        got.extend(series_values(
            &raw(&cluster.http, &cluster.storage_http, &q, now).await?,
        ));
    }
    let mut diffs = Vec::new();
    let keys: Vec<&String> = want.keys().chain(got.keys()).collect();
    for k in keys {
        let (Some(w), Some(g)) = (want.get(k), got.get(k)) else {
            diffs.push(format!(
                "{k}: only in {}",
                if want.contains_key(k) {
                    "prometheus"
                } else {
                    "scrapegrid"
                }
            ));
            continue;
        };
        // Compare the samples both have (one may have scraped once more).
        let n = w.0.len().min(g.0.len());
        if w.0[..n] != g.0[..n] {
            diffs.push(format!("{k}: floats {:?} vs {:?}", &w.0[..n], &g.0[..n]));
        }
        let n = w.1.len().min(g.1.len());
        if w.1[..n] != g.1[..n] {
            diffs.push(format!(
                "{k}: histograms {:?} vs {:?}",
                &w.1[..n],
                &g.1[..n]
            ));
        }
        if w.0.len().max(w.1.len()) < 4 && !k.contains("/gone") {
            diffs.push(format!("{k}: only {} samples", w.0.len().max(w.1.len())));
        }
    }
    diffs.dedup();
    for d in &diffs {
        println!("DIFF {d}");
    }
    if !diffs.is_empty() {
        for (who, a) in [
            ("prometheus", &prom.addr),
            ("scrapegrid", &cluster.control_http),
        ] {
            let t: Value = cluster
                .http
                .get(format!("http://{a}/api/v1/targets"))
                .send()
                .await?
                .json()
                .await?;
            for t in t["data"]["activeTargets"].as_array().into_iter().flatten() {
                println!(
                    "{who} target {}: {} {}",
                    t["scrapeUrl"], t["health"], t["lastError"]
                );
            }
        }
    }
    // The native series are there, as histograms.
    for name in ["nh_req_seconds", "nh_queue_depth", "nh_flaky_seconds"] {
        assert!(
            got.iter()
                .any(|(k, (_, h))| k.contains(name) && h.len() >= SCRAPES as usize - 3),
            "{name} stored as native histograms: {:?}",
            got.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        !got.keys().any(|k| k.contains("/dropme")),
        "metric relabeling drops a native series"
    );
    assert!(
        !got.keys().any(|k| k.contains("nh_req_seconds_bucket")),
        "a native family is not also stored as classic series"
    );
    // The flaky target failed twice, in both.
    let ups = |m: &BTreeMap<String, (Vec<String>, Vec<Value>)>| {
        m.iter()
            .find(|(k, _)| k.contains(r#""__name__":"up""#) && k.contains("flaky"))
            .map(|(_, v)| v.0.clone())
            .unwrap_or_default()
    };
    assert!(
        ups(&got).iter().filter(|v| *v == "\"0\"").count() >= 2,
        "the flaky target was down twice: {:?}",
        ups(&got)
    );
    // The same exemplars on the native series.
    let exemplars = |addr: String| {
        let http = cluster.http.clone();
        async move {
            let v: Value = http
                .get(format!("http://{addr}/api/v1/query_exemplars"))
                .query(&[
                    ("query", "nh_req_seconds".to_string()),
                    ("start", "1699999000".to_string()),
                    ("end", format!("{now:.3}")),
                ])
                .send()
                .await?
                .json()
                .await?;
            let mut out: Vec<String> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| {
                    let series = s["seriesLabels"].to_string();
                    s["exemplars"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(move |e| format!("{series} {e}"))
                })
                .collect();
            out.sort();
            anyhow::Ok(out)
        }
    };
    let (pe, se) = (
        exemplars(prom.addr.clone()).await?,
        exemplars(cluster.storage_http.clone()).await?,
    );
    // Prometheus starts scraping a few seconds later (its discovery
    // reload delay): each has an exemplar per scrape made.
    let scrapes = |c: usize| fixture.counts[0][c].load(Ordering::SeqCst) as usize;
    let apart = scrapes(0).abs_diff(scrapes(1)) + 1;
    assert!(
        pe.len() >= SCRAPES as usize,
        "prometheus's exemplars: {pe:?}"
    );
    // The fewer are among the others.
    let (fewer, more) = if pe.len() <= se.len() {
        (&pe, &se)
    } else {
        (&se, &pe)
    };
    assert!(
        fewer.iter().all(|e| more.contains(e)) && more.len() - fewer.len() <= apart,
        "the same exemplars: {pe:?} vs {se:?}"
    );
    assert!(se.iter().all(|e| e.contains(r#""path":"/a""#)));

    let accept = fixture.accept.lock().unwrap().clone();
    assert_eq!(
        accept[1],
        vec![scrapegrid_common::config::PROTOBUF_ACCEPT_HEADER.to_string()],
        "scrapegrid's Accept header"
    );
    assert_eq!(accept[0], accept[1], "the same Accept header as Prometheus");
    assert!(
        diffs.is_empty(),
        "{} differences (first: {})",
        diffs.len(),
        diffs[0]
    );
    drop(prom);
    drop(cluster);
    Ok(())
}
