//! Exemplars in through a real tonic Ingest stream, out through
//! `/api/v1/query_exemplars` in Prometheus's JSON shape, before and after a
//! restart of the node on the same directory.

use scrapegrid_proto::v1 as pb;
use scrapegrid_tests::storage::{batch, series, Node, Stream, T0};
use serde_json::{json, Value};

fn exemplar(r: u64, trace: &str, value: f64, ts: i64, has_ts: bool) -> pb::Exemplar {
    pb::Exemplar {
        r#ref: r,
        labels: vec![pb::Label {
            name: "trace_id".into(),
            value: trace.into(),
        }],
        value,
        timestamp_ms: ts,
        has_timestamp: has_ts,
    }
}

/// GETs `/api/v1/query_exemplars` with `params`; returns the status code,
/// the raw body and the parsed body.
async fn query(node: &Node, params: &[(&str, &str)]) -> (u16, String, Value) {
    let resp = reqwest::Client::new()
        .get(node.url("/api/v1/query_exemplars"))
        .query(params)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap();
    (code, text, body)
}

fn bad_data(body: &Value) -> &str {
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["errorType"], "bad_data", "{body}");
    body["error"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_exemplars_answers_as_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let (mut s, _) = Stream::open(&node, "scraper-1").await;

    let counter = [("__name__", "oe_total"), ("job", "j"), ("instance", "a")];
    let bucket = [
        ("__name__", "oeb_bucket"),
        ("job", "j"),
        ("instance", "a"),
        ("le", "1"),
    ];
    let long_trace = "x".repeat(121);
    let b = pb::Batch {
        exemplars: vec![
            exemplar(1, "abc", 0.5, 1_600_000_000_500, true),
            exemplar(2, "x", 0.3, T0, false),
            // 129 runes of labels: dropped, the batch still applies.
            exemplar(1, &long_trace, 1.0, T0, true),
        ],
        ..batch(
            1,
            T0,
            vec![series(1, &counter), series(2, &bucket)],
            vec![1, 2],
            vec![5.0, 1.0],
        )
    };
    assert_eq!(s.send(b).await.status(), pb::AckStatus::Applied);

    let want = json!({"status": "success", "data": [
        {
            "seriesLabels": {"__name__": "oe_total", "instance": "a", "job": "j"},
            "exemplars": [{"labels": {"trace_id": "abc"}, "value": "0.5", "timestamp": 1600000000.5}],
        },
        {
            "seriesLabels": {"__name__": "oeb_bucket", "instance": "a", "job": "j", "le": "1"},
            "exemplars": [{"labels": {"trace_id": "x"}, "value": "0.3", "timestamp": 1700000000}],
        },
    ]});
    // start and end default to all time.
    let (code, text, body) = query(&node, &[("query", r#"{job="j"}"#)]).await;
    assert_eq!(code, 200);
    assert_eq!(body, want);
    assert!(
        text.contains(r#""timestamp":1600000000.500}"#),
        "timestamps as Prometheus writes them: {text}"
    );

    // POST form, a range that only the counter's exemplar is in.
    let resp = reqwest::Client::new()
        .post(node.url("/api/v1/query_exemplars"))
        .form(&[
            ("query", "oe_total"),
            ("start", "1600000000"),
            ("end", "2020-09-13T12:26:40.5Z"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"], json!([want["data"][0]]));

    // Every selector of any expression counts.
    let (_, _, body) = query(
        &node,
        &[(
            "query",
            "histogram_quantile(0.9, rate(oeb_bucket[5m])) / on() group_left sum(oe_total)",
        )],
    )
    .await;
    assert_eq!(body, want);
    let (_, text, _) = query(&node, &[("query", "nothing_here")]).await;
    assert_eq!(text, r#"{"status":"success","data":[]}"#);
    let (_, text, _) = query(&node, &[("query", "1 + 1")]).await;
    assert_eq!(text, r#"{"status":"success","data":null}"#, "no selector");

    // Errors, in Prometheus's words where they are Prometheus's.
    let (code, _, body) = query(&node, &[("query", "up"), ("start", "x")]).await;
    assert_eq!(code, 400);
    assert_eq!(
        bad_data(&body),
        r#"invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid timestamp"#
    );
    let (code, _, body) = query(&node, &[("query", "up"), ("start", "10"), ("end", "9")]).await;
    assert_eq!(code, 400);
    assert_eq!(
        bad_data(&body),
        "end timestamp must not be before start timestamp"
    );
    let (code, _, body) = query(&node, &[("query", "up{")]).await;
    assert_eq!(code, 400);
    assert!(!bad_data(&body).is_empty());
    let (code, _, body) = query(&node, &[]).await;
    assert_eq!(code, 400, "a missing query is a parse error");
    bad_data(&body);

    // The same answers after a restart; the newest exemplar per series is
    // known again, so resending it stores nothing new.
    drop(s);
    node.stop().await;
    let node = Node::start(dir.path()).await;
    let (_, _, body) = query(&node, &[("query", r#"{job="j"}"#)]).await;
    assert_eq!(body, want, "exemplars survive a restart");
    let (mut s, last) = Stream::open(&node, "scraper-1").await;
    assert_eq!(last, 1);
    let b = pb::Batch {
        exemplars: vec![exemplar(2, "x", 0.3, T0 + 15_000, false)],
        ..batch(2, T0 + 15_000, vec![series(2, &bucket)], vec![2], vec![1.0])
    };
    assert_eq!(s.send(b).await.status(), pb::AckStatus::Applied);
    let (_, _, body) = query(&node, &[("query", r#"{job="j"}"#)]).await;
    assert_eq!(
        body, want,
        "a repeated exemplar without a timestamp is a duplicate"
    );
    drop(s);
    node.stop().await;
}
