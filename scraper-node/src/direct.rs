//! Direct mode: a scraper that sends straight to the `remote_write`
//! endpoints of a `prometheus.yml`, with no storage node in the cluster.
//!
//! The durable queue is an embedded storage node (the `storage-node`
//! library) on loopback, on a data directory of this scraper's own: the
//! ingest client delivers each scrape to it exactly as to a shared storage
//! node (sequence numbers, an ack only once the batch is synced), and its
//! egress sends every stored sample to each endpoint from the on-disk queue
//! (`storage_node::egress`). So the promise is the same as with a storage
//! node: what the scraper committed reaches every endpoint, in order per
//! series of its queue, across an outage of the endpoint and a `kill -9` of the scraper
//! (started again on the same directory, it resumes the queue), and a
//! scraper that shuts down sends what it holds first
//! (`--remote-write.flush-deadline`). It also
//! keeps a local copy of what it scraped, for `--remote-write.retention`,
//! queryable with the Prometheus HTTP API on the address it prints as
//! `listening storage-http <addr>`.
//!
//! What a shared storage node adds and this mode lacks: one queue for every
//! series (after a move during an endpoint outage the old owner's backlog
//! can reach the endpoint after the new owner's newer samples, which
//! endpoints that refuse out-of-order samples answer with a 400), fencing
//! between two scrapers that both believe they own a target (each has its
//! own node), and the series a moved target's previous owner hands over
//! (the new owner finds none, so a series that vanished during the move
//! gets no stale marker from it; the endpoint's lookback ends it). A moved
//! target's metadata is forgotten by the old owner's node (the handover
//! batch says so) and sent by the new owner's.
//!
//! If the embedded node ends on its own (it failed), the scraper drains
//! and exits with its error; however the scraper ends, the embedded node is
//! stopped after it (`main.rs`).

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What direct mode needs.
#[derive(Clone, Debug)]
pub struct DirectConfig {
    /// The `prometheus.yml` whose `remote_write` and external labels apply;
    /// read again on SIGHUP.
    pub config: PathBuf,
    /// The embedded node's data directory (the queue and the local copy).
    pub data_dir: PathBuf,
    /// Bytes one endpoint may have waiting before its oldest are dropped.
    pub max_disk_bytes_per_url: u64,
    /// How long the local copy is kept.
    pub retention: Duration,
    /// Whether there is a local copy at all (else only the queue).
    pub local_copy: bool,
    /// How long a shutdown waits for the queues to send what they hold.
    pub flush_deadline: Duration,
}

/// The running embedded node.
pub struct Embedded {
    /// Its gRPC endpoint, for the ingest client.
    pub endpoint: String,
    /// The token its Ingest service and `/api/v1/write` require (random,
    /// known only to this process): nothing else on the host can put
    /// samples into the queue the endpoints' credentials send from.
    pub write_token: scrapegrid_common::security::Token,
    /// Its Ingest service, written to without gRPC.
    pub local_ingest: storage_node::ingest::LocalIngest,
    stop: CancellationToken,
    task: JoinHandle<storage_node::Result<()>>,
}

/// Refuses a config without `remote_write` entries: in direct mode they are
/// where everything goes (a reload to none would delete the queue).
fn require_remote_write(
    path: &std::path::Path,
    c: &storage_node::egress::EgressConfig,
) -> Result<(), String> {
    if c.remote_write.is_empty() {
        return Err(format!(
            "{}: --remote-write.config has no remote_write entry: nothing would be sent",
            path.display()
        ));
    }
    Ok(())
}

impl Embedded {
    /// Starts the embedded node: reads the config (its error names the
    /// file, the field and the reason), opens the data directory and binds
    /// two loopback ports, printed as `listening storage-grpc <addr>` and
    /// `listening storage-http <addr>`.
    pub async fn start(c: &DirectConfig) -> anyhow::Result<Self> {
        // Its histogram buckets, before the scraper installs the recorder.
        storage_node::metrics::handle();
        let file = storage_node::egress::EgressSource::from_file(
            c.config.clone(),
            c.max_disk_bytes_per_url,
        );
        let path = c.config.clone();
        let source = storage_node::egress::EgressSource(std::sync::Arc::new(move || {
            let egress = file.read()?;
            require_remote_write(&path, &egress)?;
            Ok(egress)
        }));
        let egress = source.read().map_err(anyhow::Error::msg)?;
        let grpc = TcpListener::bind("127.0.0.1:0").await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        scrapegrid_common::telemetry::announce("storage-grpc", &grpc)?;
        scrapegrid_common::telemetry::announce("storage-http", &http)?;
        let endpoint = format!("http://{}", grpc.local_addr()?);
        let write_token =
            scrapegrid_common::security::Token::random().map_err(anyhow::Error::msg)?;
        let mut config = storage_node::Config::new(&c.data_dir);
        config.write_token = Some(write_token.clone());
        config.egress = egress;
        config.egress_source = Some(source);
        config.retention.time = c.retention;
        config.store_samples = c.local_copy;
        config.egress_flush_timeout = c.flush_deadline;
        let local_ingest = storage_node::ingest::LocalIngest::default();
        config.local_ingest = Some(local_ingest.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(storage_node::run(config, grpc, http, stop.clone()));
        tracing::info!(%endpoint, data_dir = %c.data_dir.display(), "direct mode: remote_write through an embedded storage node");
        Ok(Self {
            endpoint,
            write_token,
            local_ingest,
            stop,
            task,
        })
    }

    /// Resolves when the embedded node ended on its own (it failed): the
    /// scraper must then stop, since nothing it scrapes is stored.
    pub async fn ended(&mut self) -> String {
        match (&mut self.task).await {
            Ok(Ok(())) => "the embedded storage node stopped".into(),
            Ok(Err(e)) => format!("the embedded storage node failed: {e}"),
            Err(e) => format!("the embedded storage node's task failed: {e}"),
        }
    }

    /// Stops the embedded node (after the scraper delivered its batches):
    /// its queues send what they hold, for at most the flush deadline (a
    /// scraper scaled down should leave nothing behind); what is left waits
    /// on disk for the next start.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await??;
        Ok(())
    }
}
