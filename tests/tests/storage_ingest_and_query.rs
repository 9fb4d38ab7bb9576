//! Starts the node in-process on port-0 listeners, writes batches through a
//! real tonic Ingest client, reads them back through the HTTP API and the
//! gRPC Query service, then restarts the node on the same directory.

use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::ingest_client::IngestClient;
use scrapegrid_proto::v1::query_client::QueryClient;
use scrapegrid_tests::storage::{batch, series, Node, Stream, T0, T0_S};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn status(ack: &pb::Ack) -> (pb::AckStatus, pb::RefuseReason) {
    (ack.status(), ack.reason())
}

async fn get(node: &Node, path: &str) -> (u16, Value) {
    let resp = reqwest::get(node.url(path)).await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

async fn post(node: &Node, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body: String = form
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('{', "%7B")
                    .replace('}', "%7D")
                    .replace('"', "%22")
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let resp = reqwest::Client::new()
        .post(node.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

fn success(data: Value) -> Value {
    json!({"status": "success", "data": data})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_query_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;

    let (mut s, last) = Stream::open(&node, "scraper-1").await;
    assert_eq!(last, 0);

    // Batch 1 defines three series.
    let up_a = [("__name__", "up"), ("job", "node"), ("instance", "a")];
    let up_b = [("__name__", "up"), ("job", "node"), ("instance", "b")];
    let dur_a = [
        ("__name__", "scrape_duration_seconds"),
        ("job", "node"),
        ("instance", "a"),
    ];
    let defs = vec![series(1, &up_a), series(2, &up_b), series(3, &dur_a)];
    let ack = s
        .send(batch(1, T0, defs, vec![1, 2, 3], vec![1.0, 0.0, 0.5]))
        .await;
    assert_eq!(
        status(&ack),
        (pb::AckStatus::Applied, pb::RefuseReason::Unspecified)
    );
    assert_eq!(ack.sequence, 1);

    // Batch 2 uses references only; instance b goes stale.
    let stale = scrapegrid_proto::stale_marker();
    let b2 = batch(
        2,
        T0 + 15_000,
        vec![],
        vec![1, 2, 3],
        vec![1.0, stale, 0.25],
    );
    let ack = s.send(b2.clone()).await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);

    // A resend is a duplicate and writes nothing.
    let dup = pb::Batch {
        values: vec![7.0, 7.0, 7.0],
        ..b2
    };
    let ack = s.send(dup).await;
    assert_eq!(
        status(&ack),
        (pb::AckStatus::Duplicate, pb::RefuseReason::Unspecified)
    );

    // An invalid batch is refused, but the series it defines are registered.
    let bad = batch(
        3,
        T0 + 30_000,
        vec![series(4, &[("__name__", "late")])],
        vec![4, 99],
        vec![1.0, 1.0],
    );
    let ack = s.send(bad).await;
    assert_eq!(
        status(&ack),
        (pb::AckStatus::Refused, pb::RefuseReason::Invalid)
    );
    assert!(
        ack.message.contains("unknown series ref 99"),
        "{}",
        ack.message
    );
    let ack = s
        .send(batch(4, T0 + 30_000, vec![], vec![4, 1], vec![3.0, 1.0]))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);

    // An older target generation is fenced.
    let old = pb::Batch {
        target_generation: 1,
        ..batch(5, T0 + 45_000, vec![], vec![1], vec![0.0])
    };
    let ack = s.send(old).await;
    assert_eq!(
        status(&ack),
        (pb::AckStatus::Refused, pb::RefuseReason::Fenced)
    );

    check_http(&node).await;
    check_grpc_query(&node).await;

    drop(s);
    node.stop().await;

    // Reopened: data and the last sequence survived.
    let node = Node::start(dir.path()).await;
    let up_a = [("__name__", "up"), ("job", "node"), ("instance", "a")];
    let (mut s, last) = Stream::open(&node, "scraper-1").await;
    assert_eq!(last, 4);
    let (_, other_last) = Stream::open(&node, "scraper-2").await;
    assert_eq!(other_last, 0);
    let t = format!("{}", (T0 + 30_000) / 1000);
    let (code, body) = get(&node, &format!("/api/v1/query?query=late&time={t}")).await;
    assert_eq!(code, 200);
    assert_eq!(body["data"]["result"][0]["value"], json!([1700000030, "3"]));
    // Series ids continue after the restart: a new series gets a fresh id,
    // an old one (redefined: references are per stream) keeps its id.
    let defs = vec![series(9, &[("__name__", "new")]), series(1, &up_a)];
    let ack = s
        .send(batch(5, T0 + 45_000, defs, vec![9, 1], vec![9.0, 1.0]))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    let t = format!("{}", (T0 + 45_000) / 1000);
    let (_, body) = get(
        &node,
        &format!("/api/v1/query?query=%7B__name__%3D~%22new%7Cup%22%7D&time={t}"),
    )
    .await;
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{body}");
    assert_eq!(result[0]["metric"], json!({"__name__": "new"}));
    let (_, body) = get(&node, "/api/v1/series?match[]=up").await;
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        2,
        "no duplicate series: {body}"
    );
    drop(s);
    node.stop().await;
}

async fn check_http(node: &Node) {
    // Instant query at T0+15s: instance b is stale.
    let (code, body) = get(
        node,
        &format!("/api/v1/query?query=up&time={}", (T0 + 15_000) / 1000),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        success(json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "a", "job": "node"}, "value": [1700000015, "1"]}
        ]}))
    );

    // POST form, RFC 3339 time, fractional result timestamps.
    let (code, body) = post(
        node,
        "/api/v1/query",
        &[
            ("query", r#"up{instance="b"}"#),
            ("time", "2023-11-14T22:13:20.5Z"),
        ],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {"__name__": "up", "instance": "b", "job": "node"}, "value": [1700000000.5, "0"]}])
    );

    // Range selector.
    let (_, body) = get(
        node,
        &format!(
            "/api/v1/query?query=scrape_duration_seconds[1m]&time={}",
            (T0 + 30_000) / 1000
        ),
    )
    .await;
    assert_eq!(body["data"]["resultType"], "matrix");
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[1700000000, "0.5"], [1700000015, "0.25"]])
    );

    // Range query: a every step (lookback), b until it went stale.
    let (code, body) = get(
        node,
        &format!(
            "/api/v1/query_range?query=up&start={T0_S}&end={}&step=15s",
            (T0 + 30_000) / 1000
        ),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        success(json!({"resultType": "matrix", "result": [
            {"metric": {"__name__": "up", "instance": "a", "job": "node"},
             "values": [[1700000000, "1"], [1700000015, "1"], [1700000030, "1"]]},
            {"metric": {"__name__": "up", "instance": "b", "job": "node"},
             "values": [[1700000000, "0"]]}
        ]}))
    );

    let (code, body) = get(node, "/api/v1/series?match[]=up&match[]=late").await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        success(json!([
            {"__name__": "late"},
            {"__name__": "up", "instance": "a", "job": "node"},
            {"__name__": "up", "instance": "b", "job": "node"},
        ]))
    );
    let (code, body) = post(
        node,
        "/api/v1/series",
        &[("match[]", r#"{job="node",instance!="a"}"#)],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body["data"],
        json!([{"__name__": "up", "instance": "b", "job": "node"}])
    );

    let (_, body) = get(node, "/api/v1/labels").await;
    assert_eq!(body, success(json!(["__name__", "instance", "job"])));
    let (_, body) = get(node, "/api/v1/labels?match[]=late").await;
    assert_eq!(body, success(json!(["__name__"])));
    let (_, body) = get(node, "/api/v1/label/job/values").await;
    assert_eq!(body, success(json!(["node"])));
    let (_, body) = get(node, "/api/v1/label/__name__/values").await;
    assert_eq!(
        body,
        success(json!(["late", "scrape_duration_seconds", "up"]))
    );
    // Time-restricted: only `late` and `up{instance="a"}` have samples at T0+30s.
    let (_, body) = get(
        node,
        &format!(
            "/api/v1/label/instance/values?start={0}&end={0}",
            (T0 + 30_000) / 1000
        ),
    )
    .await;
    assert_eq!(body, success(json!(["a"])));

    // Errors.
    let (code, body) = get(node, "/api/v1/query?query=sort_by_label(up,%22job%22)").await;
    assert_eq!(code, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"].as_str().unwrap().contains("unknown function"),
        "{body}"
    );
    // Clients such as Grafana detect a Prometheus API by its build info.
    let (code, body) = get(node, "/api/v1/status/buildinfo").await;
    assert_eq!(
        (code, body["data"]["version"].as_str()),
        (200, Some("2.42.0"))
    );
    // PromQL beyond selectors.
    let (code, body) = get(
        node,
        &format!(
            "/api/v1/query?query=sum%20by%20(job)%20(up)&time={}",
            (T0 + 10_000) / 1000
        ),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["metric"], json!({"job": "node"}));
    assert_eq!(body["data"]["result"][0]["value"][1], "1");
    let (code, body) = get(node, "/api/v1/series").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("no match[] parameter provided"))
    );
    let (code, _) = get(node, "/api/v1/query_range?query=up&start=2&end=1&step=1").await;
    assert_eq!(code, 400);
    let (code, _) = get(node, "/api/v1/query?query=up&time=yesterday").await;
    assert_eq!(code, 400);

    let metrics = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scrapegrid_storage_batches_applied_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scrapegrid_storage_batches_refused_total{reason=\"fenced\"}"),
        "{metrics}"
    );
    let ready = reqwest::get(node.url("/-/ready")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

async fn check_grpc_query(node: &Node) {
    let mut client = QueryClient::connect(format!("http://{}", node.grpc))
        .await
        .unwrap();
    let resp = client
        .select(pb::SelectRequest {
            matchers: vec![pb::Matcher {
                r#type: pb::MatchType::Equal as i32,
                name: "instance".into(),
                value: "b".into(),
            }],
            start_ms: T0,
            end_ms: T0 + 60_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.series.len(), 1);
    let s = &resp.series[0];
    assert_eq!(s.timestamps_ms, [T0, T0 + 15_000]);
    assert_eq!(s.values[0], 0.0);
    assert!(
        scrapegrid_proto::is_stale_marker(s.values[1]),
        "stale markers are returned raw"
    );

    // PromQL through gRPC: the same engine as the HTTP API.
    let r = client
        .instant(pb::InstantQueryRequest {
            query: "sum by (job) (up)".into(),
            time_ms: T0 + 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.result_type, "vector");
    assert_eq!(r.series.len(), 1);
    assert_eq!(
        r.series[0].labels,
        [pb::Label {
            name: "job".into(),
            value: "node".into()
        }]
    );
    assert_eq!(
        (r.series[0].timestamps_ms[0], r.series[0].values[0]),
        (T0 + 10_000, 1.0)
    );
    let r = client
        .range(pb::RangeQueryRequest {
            query: r#"up{instance="a"} * 2"#.into(),
            start_ms: T0,
            end_ms: T0 + 10_000,
            step_ms: 5_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.result_type, "matrix");
    assert_eq!(r.series[0].values, [2.0, 2.0, 2.0]);
    let r = client
        .instant(pb::InstantQueryRequest {
            query: "1 + 1".into(),
            time_ms: T0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.result_type.as_str(), r.scalar, r.time_ms),
        ("scalar", 2.0, T0)
    );
    let err = client
        .instant(pb::InstantQueryRequest {
            query: "up / on() up".into(),
            time_ms: T0 + 10_000,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    let err = client
        .range(pb::RangeQueryRequest {
            query: "up[5m]".into(),
            start_ms: T0,
            end_ms: T0 + 10_000,
            step_ms: 5_000,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");

    let err = client
        .select(pb::SelectRequest {
            matchers: vec![pb::Matcher {
                r#type: pb::MatchType::Regex as i32,
                name: "job".into(),
                value: "(".into(),
            }],
            start_ms: 0,
            end_ms: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let names = client
        .label_names(pb::LabelNamesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names.names, ["__name__", "instance", "job"]);
    let values = client
        .label_values(pb::LabelValuesRequest {
            name: "instance".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(values.values, ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_must_be_hello() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let mut client = IngestClient::connect(format!("http://{}", node.grpc))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(1);
    tx.send(pb::WriteRequest {
        msg: Some(pb::write_request::Msg::Batch(batch(
            1,
            T0,
            vec![],
            vec![],
            vec![],
        ))),
    })
    .await
    .unwrap();
    let result = match client.write(ReceiverStream::new(rx)).await {
        Ok(resp) => resp.into_inner().message().await.map(|_| ()),
        Err(status) => Err(status),
    };
    assert_eq!(result.unwrap_err().code(), tonic::Code::InvalidArgument);
    drop(tx);
    node.stop().await;
}

/// Runs promtool (Debian's prometheus package, installed by
/// scripts/install-deps.sh) against the node: the Prometheus client library
/// must accept our answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_reads_the_api() {
    assert!(
        std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok(),
        "promtool is missing: run scripts/install-deps.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let (mut s, _) = Stream::open(&node, "scraper-1").await;
    let defs = vec![
        series(1, &[("__name__", "up"), ("job", "node"), ("instance", "a")]),
        series(2, &[("__name__", "up"), ("job", "node"), ("instance", "b")]),
    ];
    let ack = s.send(batch(1, T0, defs, vec![1, 2], vec![1.0, 0.0])).await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    let server = format!("http://{}", node.http);
    let promtool = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("promtool")
            .args(&args)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (
            out.status.success(),
            text,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let t = ((T0 + 10_000) / 1000).to_string();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (ok, out, err) = promtool(args(&["query", "instant", "--time", &t, &server, "up"])).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "up{instance=\"a\", job=\"node\"} => 1 @[1700000010]\nup{instance=\"b\", job=\"node\"} => 0 @[1700000010]\n"
    );
    let (ok, out, err) = promtool(args(&[
        "query",
        "range",
        "--start",
        T0_S,
        "--end",
        &t,
        "--step",
        "5s",
        &server,
        r#"up{instance="a"}"#,
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("1 @[1700000000]") && out.contains("1 @[1700000010]"),
        "{out}"
    );
    // promtool's series and labels default to the last year; pass the range.
    let (ok, out, err) = promtool(args(&[
        "query", "series", "--match", "up", "--start", T0_S, "--end", &t, &server,
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let (ok, out, err) = promtool(args(&[
        "query", "labels", "--start", T0_S, "--end", &t, &server, "job",
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "node\n");
    let (ok, out, err) = promtool(args(&[
        "query",
        "instant",
        "--time",
        &t,
        &server,
        "count(up)",
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "{} => 2 @[1700000010]\n");
    let (ok, _, err) = promtool(args(&[
        "query",
        "instant",
        &server,
        r#"sort_by_label(up, "job")"#,
    ]))
    .await;
    assert!(!ok);
    assert!(err.contains("unknown function"), "{err}");
    drop(s);
    node.stop().await;
}
