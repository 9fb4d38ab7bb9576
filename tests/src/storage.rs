//! Helpers for the storage node's own tests (`tests/tests/storage_*.rs`):
//! an in-process node ([`Node`], `storage_node::run` on port-0 listeners)
//! and an ingest stream client ([`Stream`]), with builders for the series
//! definitions and batches they send. The tests that need the real binary
//! start it with [`crate::start_storage`] instead.

use std::net::SocketAddr;
use std::time::Duration;

use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::ingest_client::IngestClient;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// 2023-11-14T22:13:20Z: a round scrape time.
pub const T0: i64 = 1_700_000_000_000;
pub const T0_S: &str = "1700000000";

/// A storage node running in the test's process on port-0 listeners.
pub struct Node {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<storage_node::Result<()>>,
}

impl Node {
    /// Starts a node with its data in `dir`.
    pub async fn start(dir: &std::path::Path) -> Node {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let config = storage_node::Config::new(dir);
        let task = tokio::spawn(storage_node::run(config, grpc, http, shutdown.clone()));
        Node {
            grpc: grpc_addr,
            http: http_addr,
            shutdown,
            task,
        }
    }

    /// Cancels the node and waits (up to 30 s) for a clean shutdown.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("node stops before the deadline")
            .expect("node task")
            .expect("node run");
    }

    /// Returns the URL of `path` on the node's HTTP API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }
}

/// One ingest stream.
pub struct Stream {
    pub tx: mpsc::Sender<pb::WriteRequest>,
    pub rx: tonic::Streaming<pb::WriteResponse>,
}

impl Stream {
    /// Opens a stream and returns it with the Welcome's last sequence.
    pub async fn open(node: &Node, scraper_id: &str) -> (Stream, u64) {
        Self::open_at(&format!("http://{}", node.grpc), scraper_id).await
    }

    /// Opens a stream to the node at `endpoint`.
    pub async fn open_at(endpoint: &str, scraper_id: &str) -> (Stream, u64) {
        Self::open_as(endpoint, scraper_id, 0).await.unwrap()
    }

    /// Opens a stream as the scraper process `incarnation`; the error is
    /// the status that ended it instead of a Welcome.
    pub async fn open_as(
        endpoint: &str,
        scraper_id: &str,
        incarnation: u64,
    ) -> Result<(Stream, u64), tonic::Status> {
        let mut client = IngestClient::connect(endpoint.to_string()).await.unwrap();
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::WriteRequest {
            msg: Some(pb::write_request::Msg::Hello(pb::WriteHello {
                scraper_id: scraper_id.into(),
                incarnation,
            })),
        })
        .await
        .unwrap();
        let mut rx = client.write(ReceiverStream::new(rx)).await?.into_inner();
        let welcome = match rx.message().await?.and_then(|m| m.msg) {
            Some(pb::write_response::Msg::Welcome(w)) => w,
            other => panic!("expected a Welcome, got {other:?}"),
        };
        Ok((Stream { tx, rx }, welcome.last_sequence))
    }

    /// Sends a batch and returns its ack.
    pub async fn send(&mut self, batch: pb::Batch) -> pb::Ack {
        self.send_only(batch).await;
        self.recv_ack().await
    }

    /// Sends a batch without waiting for its ack.
    pub async fn send_only(&mut self, batch: pb::Batch) {
        self.tx
            .send(pb::WriteRequest {
                msg: Some(pb::write_request::Msg::Batch(batch)),
            })
            .await
            .unwrap();
    }

    /// Returns the next ack.
    pub async fn recv_ack(&mut self) -> pb::Ack {
        match self.rx.message().await.unwrap().unwrap().msg {
            Some(pb::write_response::Msg::Ack(a)) => a,
            other => panic!("expected an Ack, got {other:?}"),
        }
    }
}

/// Returns the definition of series reference `r` with the label `pairs`.
pub fn series(r: u64, pairs: &[(&str, &str)]) -> pb::SeriesDef {
    pb::SeriesDef {
        r#ref: r,
        labels: pairs
            .iter()
            .map(|(n, v)| pb::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
    }
}

/// Returns batch `seq` of target `t1` (generation 2) scraped at `ts`: the
/// series it defines, then one value per reference.
pub fn batch(
    seq: u64,
    ts: i64,
    defs: Vec<pb::SeriesDef>,
    refs: Vec<u64>,
    values: Vec<f64>,
) -> pb::Batch {
    pb::Batch {
        sequence: seq,
        target_id: "t1".into(),
        target_generation: 2,
        timestamp_ms: ts,
        new_series: defs,
        refs,
        values,
        timestamps_ms: vec![],
        ..Default::default()
    }
}
