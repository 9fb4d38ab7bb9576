//! Runs the real binary with `--retention.time` and a short check interval:
//! old samples disappear while new ones stay, out-of-order samples are
//! rejected without failing their batch, and the storage metrics appear on
//! `/metrics`.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{batch, eventually, series, Stream};
use scrapegrid_proto::v1 as pb;

/// Kills the node when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Returns the values of `m[3h]` at `t_s`.
async fn stored(http: &str, t_s: i64) -> Vec<serde_json::Value> {
    let url = format!("http://{http}/api/v1/query?query=m[3h]&time={t_s}");
    let body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Returns the value of the metric line starting with `series ` in `text`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_time_flag_deletes_old_samples() {
    let dir = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let _node = Proc(
        Command::new(env!("CARGO_BIN_EXE_storage-node"))
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(["--grpc-addr", &grpc, "--http-addr", &http])
            .args(["--retention.time", "1h", "--retention.size", "512MB"])
            .args(["--retention.check-interval", "200ms"])
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let ready = format!("http://{http}/-/ready");
    eventually(Duration::from_secs(20), "the node to be ready", || {
        let ready = ready.clone();
        async move {
            reqwest::get(ready)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;

    let (mut s, _) = Stream::open_at(&format!("http://{grpc}"), "scraper-1").await;
    let now = now_ms();
    let def = series(1, &[("__name__", "m"), ("job", "j")]);
    let old = s
        .send(batch(
            1,
            now - 2 * 3600 * 1000,
            vec![def],
            vec![1],
            vec![1.0],
        ))
        .await;
    let new = s
        .send(batch(2, now - 60_000, vec![], vec![1], vec![2.0]))
        .await;
    // Older than the newest: rejected, the batch still applied.
    let ooo = s
        .send(batch(3, now - 120_000, vec![], vec![1], vec![3.0]))
        .await;
    for ack in [old, new, ooo] {
        assert_eq!(ack.status(), pb::AckStatus::Applied);
    }

    let t_s = now / 1000;
    eventually(Duration::from_secs(20), "the 2h old sample to go", || {
        let http = http.clone();
        async move { stored(&http, t_s).await.len() == 1 }
    })
    .await;
    let values = stored(&http, t_s).await;
    assert_eq!(values[0][1], "2", "the new sample stays");

    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rejected = "scrapegrid_storage_samples_rejected_total{reason=\"out_of_order\"}";
    assert_eq!(metric(&text, rejected), Some(1.0), "{text}");
    let deleted = "scrapegrid_storage_retention_deleted_ranges_total{reason=\"time\"}";
    assert!(metric(&text, deleted).unwrap() >= 1.0, "{text}");
    assert_eq!(
        metric(&text, "scrapegrid_storage_samples_appended_total"),
        Some(2.0)
    );
    assert_eq!(metric(&text, "scrapegrid_storage_active_series"), Some(1.0));
    assert!(
        metric(&text, "scrapegrid_storage_disk_bytes").is_some(),
        "{text}"
    );
    assert!(
        metric(&text, "scrapegrid_storage_memtables_bytes{cf=\"samples\"}").is_some(),
        "{text}"
    );
    assert!(metric(&text, "scrapegrid_storage_recovery_duration_seconds").is_some());
    let queries =
        "scrapegrid_storage_http_request_duration_seconds_count{handler=\"/api/v1/query\"}";
    assert!(metric(&text, queries).unwrap() >= 2.0, "{text}");
}
