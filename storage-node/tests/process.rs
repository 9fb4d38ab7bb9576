//! Runs the real binary: acked batches survive `kill -9`, and SIGTERM ends
//! the process cleanly.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{batch, eventually, series, Stream, T0};
use scrapegrid_proto::v1 as pb;

struct Proc {
    child: Child,
    grpc: String,
    http: String,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Proc {
    async fn start(dir: &std::path::Path) -> Proc {
        let grpc = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_storage-node"))
            .args([
                "--data-dir",
                dir.to_str().unwrap(),
                "--grpc-addr",
                &grpc,
                "--http-addr",
                &http,
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap();
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
        Proc { child, grpc, http }
    }

    fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Sends `signal` (a `kill` signal name) and waits for the exit.
    async fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no exit after {signal}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_batches_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let node = Proc::start(dir.path()).await;
    let (mut s, last) = Stream::open_at(&node.grpc_endpoint(), "scraper-1").await;
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
    let killed = node.signal_and_wait("KILL").await;
    assert!(!killed.success());
    drop(s);

    let node = Proc::start(dir.path()).await;
    let (mut s, last) = Stream::open_at(&node.grpc_endpoint(), "scraper-1").await;
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

    let exited = node.signal_and_wait("TERM").await;
    assert!(exited.success(), "SIGTERM exits cleanly: {exited:?}");
    drop(s);
}
