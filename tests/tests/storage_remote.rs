//! Prometheus remote write and remote read against a real Prometheus
//! (Debian's `prometheus` 2.42, installed by scripts/install-deps.sh, started
//! by `scrapegrid_tests::prometheus`): one Prometheus scrapes a target in the
//! test and remote-writes into the node, another answers PromQL from the node
//! through `remote_read`. Plus the endpoints' error answers over HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use scrapegrid_proto::prometheus as prom;
use scrapegrid_proto::{stale_marker, STALE_NAN_BITS};
use scrapegrid_tests::eventually;
use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::storage::Node;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

/// Writes `config` to `dir/prometheus.yml` and starts Prometheus on it;
/// `dir` must outlive the Prometheus.
async fn start_prometheus(dir: &Path, config: &str) -> Prometheus {
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    Prometheus::start(&config_file).await.unwrap()
}

/// Runs an instant query on `prometheus` at `time_s` and returns its result
/// vector.
async fn prometheus_query(prometheus: &Prometheus, q: &str, time_s: i64) -> Vec<Value> {
    let url = format!("http://{}/api/v1/query", prometheus.addr);
    instant_query(&url, q, time_s).await
}

async fn instant_query(url: &str, q: &str, time_s: i64) -> Vec<Value> {
    let resp = reqwest::Client::new()
        .get(url)
        .query(&[("query", q), ("time", &time_s.to_string())])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{q}: {status} {body}");
    body["data"]["result"].as_array().unwrap().clone()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> prom::TimeSeries {
    prom::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| prom::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| prom::Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

/// POSTs `body` as a remote write/read request; returns status, headers and
/// body.
async fn post(
    node: &Node,
    path: &str,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(node.url(path))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

async fn remote_write(node: &Node, timeseries: Vec<prom::TimeSeries>) -> (u16, String) {
    let req = prom::WriteRequest {
        timeseries,
        metadata: vec![],
    };
    let (status, _, body) = post(node, "/api/v1/write", snappy(&req.encode_to_vec())).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A scrape target whose exposition body the test can change.
async fn start_target(body: Arc<Mutex<String>>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body.lock().unwrap().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_into_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let body = Arc::new(Mutex::new(
        "# TYPE rw_gauge gauge\nrw_gauge{kind=\"a\"} 42.5\nrw_gauge{kind=\"b\"} -1e-3\n# TYPE rw_total counter\nrw_total 7\n"
            .to_string(),
    ));
    let target = start_target(body.clone()).await;
    let config_dir = tempfile::tempdir().unwrap();
    let prometheus = start_prometheus(
        config_dir.path(),
        &format!(
            r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rw
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: http://{}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#,
            node.http
        ),
    )
    .await;

    let instance = target.to_string();
    let query = |q: &'static str| {
        let url = node.url("/api/v1/query");
        async move { instant_query(&url, q, now_s()).await }
    };
    eventually(DEADLINE, || async {
        (query("rw_gauge").await.len() == 2 && query("rw_total").await.len() == 1).then_some(())
    })
    .await
    .expect("scraped series in the node");
    let gauges = query("rw_gauge").await;
    let got: Vec<(Value, f64)> = gauges
        .iter()
        .map(|s| (s["metric"].clone(), value(s)))
        .collect();
    assert_eq!(
        got,
        [
            (
                json!({"__name__": "rw_gauge", "instance": instance, "job": "rw", "kind": "a"}),
                42.5
            ),
            (
                json!({"__name__": "rw_gauge", "instance": instance, "job": "rw", "kind": "b"}),
                -1e-3
            ),
        ]
    );
    let total = query("rw_total").await;
    assert_eq!(
        total[0]["metric"],
        json!({"__name__": "rw_total", "instance": instance, "job": "rw"})
    );
    assert_eq!(value(&total[0]), 7.0);
    // Prometheus's own series of the scrape arrive too.
    let up = query("up").await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(value(&up[0]), 1.0);

    // Drop kind="b" from the target: Prometheus writes a stale marker, and
    // the node's staleness handling hides the series at once (without a
    // bit-exact marker it would stay visible for the 5m lookback).
    *body.lock().unwrap() = "rw_gauge{kind=\"a\"} 43\nrw_total 8\n".to_string();
    eventually(DEADLINE, || async {
        let g = query("rw_gauge").await;
        (g.len() == 1 && g[0]["metric"]["kind"] == "a" && value(&g[0]) == 43.0).then_some(())
    })
    .await
    .expect("the stale marker of kind=b");
    drop(prometheus);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_runs_promql_through_remote_read() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    // Samples every 15s over the 10 minutes before `t`.
    let t = now_s() - 60;
    let ms = |s: i64| s * 1000;
    let steps: Vec<i64> = (0..=40).map(|k| t - 600 + 15 * k).collect();
    let gauge = |v: f64| steps.iter().map(|&s| (ms(s), v)).collect::<Vec<_>>();
    // A counter growing by 60 per 15s: rate 4/s.
    let counter: Vec<_> = steps
        .iter()
        .enumerate()
        .map(|(k, &s)| (ms(s), 1000.0 + 60.0 * k as f64))
        .collect();
    // A series that ends with a stale marker 30s before `t`.
    let ended = [(ms(t - 60), 9.0), (ms(t - 30), stale_marker())];
    let (status, msg) = remote_write(
        &node,
        vec![
            series(&[("__name__", "m"), ("i", "1")], &gauge(1.5)),
            series(&[("__name__", "m"), ("i", "2")], &gauge(2.5)),
            series(&[("__name__", "c"), ("job", "x")], &counter),
            series(&[("__name__", "ended")], &ended),
        ],
    )
    .await;
    assert_eq!(status, 204, "{msg}");

    let config_dir = tempfile::tempdir().unwrap();
    let prometheus = start_prometheus(
        config_dir.path(),
        &format!(
            r#"
global:
  evaluation_interval: 1s
remote_read:
  - url: http://{}/api/v1/read
    read_recent: true
"#,
            node.http
        ),
    )
    .await;

    let sum = prometheus_query(&prometheus, "sum(m)", t).await;
    assert_eq!(sum.len(), 1, "{sum:?}\n{}", prometheus.log());
    assert_eq!(value(&sum[0]), 4.0);
    let m = prometheus_query(&prometheus, "m", t).await;
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m[0]["metric"], json!({"__name__": "m", "i": "1"}));
    let rate = prometheus_query(&prometheus, "rate(c[1m])", t).await;
    assert_eq!(rate.len(), 1, "{rate:?}");
    assert_eq!(rate[0]["metric"], json!({"job": "x"}));
    assert!((value(&rate[0]) - 4.0).abs() < 1e-9, "{rate:?}");
    // The stale marker reaches Prometheus, which hides the series after it.
    let before = prometheus_query(&prometheus, "ended", t - 45).await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(value(&before[0]), 9.0);
    assert_eq!(
        prometheus_query(&prometheus, "ended", t).await,
        Vec::<Value>::new()
    );
    drop(prometheus);
    node.stop().await;
}

/// Decodes a remote read answer.
fn read_response(headers: &reqwest::header::HeaderMap, body: &[u8]) -> prom::ReadResponse {
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["content-encoding"], "snappy");
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    prom::ReadResponse::decode(raw.as_slice()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_endpoints_answer_errors_and_raw_samples() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;

    // Bad input is refused with a message and stores nothing.
    let (status, _, body) = post(&node, "/api/v1/write", b"not snappy at all".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).starts_with("snappy decode:"),
        "{body:?}"
    );
    let (status, _, body) = post(&node, "/api/v1/write", snappy(&[0x0f, 0x01])).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).starts_with("protobuf decode:"));
    let (status, msg) = remote_write(
        &node,
        vec![
            series(&[("__name__", "good")], &[(1000, 1.0)]),
            series(&[("job", "x")], &[(1000, 1.0)]),
        ],
    )
    .await;
    assert_eq!(
        (status, msg.as_str()),
        (
            400,
            "series {job=\"x\"}: missing metric name (__name__ label)\n"
        )
    );
    let huge = vec![0u8; 33 << 20];
    let (status, _, _) = post(&node, "/api/v1/write", huge).await;
    assert_eq!(status, 413);
    // 40 MiB of zeros compress to a small body that announces too much.
    let (status, _, body) = post(&node, "/api/v1/write", snappy(&vec![0u8; 40 << 20])).await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));

    // Write, then read back raw: stale markers bit-exact, [start, end]
    // closed, one result per query in order.
    let (status, msg) = remote_write(
        &node,
        vec![series(
            &[("job", "j"), ("__name__", "s")],
            &[(1000, 1.0), (2000, stale_marker()), (3000, 3.0)],
        )],
    )
    .await;
    assert_eq!(status, 204, "{msg}");
    // A resend of the same samples (a retry) is accepted; an out-of-order
    // sample fails the whole request, as in Prometheus.
    let s_series = |samples: &[(i64, f64)]| series(&[("__name__", "s"), ("job", "j")], samples);
    let (status, msg) = remote_write(&node, vec![s_series(&[(3000, 3.0)])]).await;
    assert_eq!(status, 204, "{msg}");
    let (status, msg) = remote_write(
        &node,
        vec![
            series(&[("__name__", "good")], &[(1000, 1.0)]),
            s_series(&[(4000, 4.0), (2500, 2.5)]),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        msg.starts_with("1 of 3 samples rejected (1 out of order"),
        "{msg}"
    );
    let eq = |name: &str, value: &str| prom::LabelMatcher {
        r#type: prom::label_matcher::Type::Eq as i32,
        name: name.into(),
        value: value.into(),
    };
    let query = |start, end, matchers| prom::Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers,
        hints: None,
    };
    let req = prom::ReadRequest {
        queries: vec![
            query(1000, 2000, vec![eq("__name__", "s")]),
            query(0, 5000, vec![eq("__name__", "good")]),
        ],
        // Only streaming accepted: answered with SAMPLES anyway.
        accepted_response_types: vec![prom::read_request::ResponseType::StreamedXorChunks as i32],
    };
    let (status, headers, body) = post(&node, "/api/v1/read", snappy(&req.encode_to_vec())).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let resp = read_response(&headers, &body);
    assert_eq!(resp.results.len(), 2);
    let ts = &resp.results[0].timeseries;
    assert_eq!(ts.len(), 1);
    let labels: Vec<(&str, &str)> = ts[0]
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels, [("__name__", "s"), ("job", "j")]);
    let points: Vec<(i64, u64)> = ts[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value.to_bits()))
        .collect();
    assert_eq!(points, [(1000, 1f64.to_bits()), (2000, STALE_NAN_BITS)]);
    assert!(
        resp.results[1].timeseries.is_empty(),
        "the refused request stored nothing"
    );

    let bad = prom::ReadRequest {
        queries: vec![query(0, 1, vec![eq("job", "")])],
        accepted_response_types: vec![],
    };
    let (status, _, body) = post(&node, "/api/v1/read", snappy(&bad.encode_to_vec())).await;
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "vector selector must contain at least one non-empty matcher\n"
    );
    node.stop().await;
}
