//! Runs the real binary with `--retention.time` and a short check interval:
//! old samples disappear while new ones stay, out-of-order samples are
//! rejected without failing their batch, and the storage metrics appear on
//! `/metrics`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scrapegrid_proto::v1 as pb;
use scrapegrid_tests::storage::{batch, series, Stream};
use scrapegrid_tests::{eventually, start_storage_with};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Returns the values of `m[3h]` at `t_s`.
async fn stored(http: &str, t_s: i64) -> Vec<serde_json::Value> {
    let url = format!("http://{http}/api/v1/query?query=m[6h]&time={t_s}");
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
    let node = start_storage_with(
        dir.path(),
        "storage-node",
        &[
            "--retention.time",
            "1h",
            "--retention.size",
            "512MB",
            "--retention.check-interval",
            "200ms",
        ],
    )
    .await
    .unwrap();
    let http = node.http.as_str();

    let (mut s, _) = Stream::open_at(&format!("http://{}", node.grpc), "scraper-1").await;
    let now = now_ms();
    let def = series(1, &[("__name__", "m"), ("job", "j")]);
    let old = s
        .send(batch(
            1,
            now - 5 * 3600 * 1000,
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
    eventually(Duration::from_secs(20), || async {
        (stored(http, t_s).await.len() == 1).then_some(())
    })
    .await
    .expect("the 5h old sample to go");
    let values = stored(http, t_s).await;
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
