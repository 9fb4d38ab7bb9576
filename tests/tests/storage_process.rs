//! Runs the real storage-node binary: acked batches survive `kill -9`, and
//! SIGTERM ends the process cleanly (and the process runs without
//! transparent huge pages).

use std::process::Command;
use std::time::Duration;

use scrapegrid_proto::v1 as pb;
use scrapegrid_tests::start_storage;
use scrapegrid_tests::storage::{batch, series, Stream, T0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_batches_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_storage(dir.path(), "storage-node").await.unwrap();
    // The node turns transparent huge pages off for itself (main.rs).
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.process.pid())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["THP_enabled:", "0"])),
        "transparent huge pages are on: {status}"
    );
    let (mut s, last) = Stream::open_at(&format!("http://{}", node.grpc), "scraper-1").await;
    assert_eq!(last, 0);
    // Pipelined: all batches in flight at once, acked in order.
    const N: u64 = 200;
    for seq in 1..=N {
        let defs = if seq == 1 {
            vec![series(1, &[("__name__", "m"), ("job", "j")])]
        } else {
            vec![]
        };
        s.send_only(batch(
            seq,
            T0 + seq as i64 * 1000,
            defs,
            vec![1],
            vec![seq as f64],
        ))
        .await;
    }
    for seq in 1..=N {
        let ack = s.recv_ack().await;
        assert_eq!((ack.sequence, ack.status()), (seq, pb::AckStatus::Applied));
    }
    node.process.kill9();
    drop(s);

    // The same data directory; the ports are new ones.
    let mut node = start_storage(dir.path(), "storage-node-2").await.unwrap();
    let (mut s, last) = Stream::open_at(&format!("http://{}", node.grpc), "scraper-1").await;
    assert_eq!(last, N, "every acked sequence survived");
    let t = (T0 + N as i64 * 1000) / 1000;
    let url = format!("http://{}/api/v1/query?query=m[10m]&time={t}", node.http);
    let body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let values = body["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), N as usize, "every acked sample survived");
    {
        let out = Command::new("promtool")
            .args([
                "query",
                "instant",
                "--time",
                &t.to_string(),
                &format!("http://{}", node.http),
                "m",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text, format!("m{{job=\"j\"}} => {N} @[{t}]\n"));
    }
    // A resend after the restart is a duplicate.
    let ack = s
        .send(batch(
            N,
            T0,
            vec![series(1, &[("__name__", "m"), ("job", "j")])],
            vec![1],
            vec![0.0],
        ))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Duplicate);

    // `terminate` blocks this thread; the runtime's other worker keeps the
    // stream's tasks going meanwhile.
    let exited =
        tokio::task::block_in_place(|| node.process.terminate(Duration::from_secs(30))).unwrap();
    assert_eq!(exited, Some(0), "SIGTERM exits cleanly");
    drop(s);
}
