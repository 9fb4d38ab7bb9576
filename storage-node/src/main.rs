//! The storage node binary: flags, tracing, listeners (announced on stdout
//! as `listening grpc <addr>` and `listening http <addr>` once bound), then
//! [`storage_node::run`] until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Queries allocate and free many small objects (label strings, sample
/// vectors) across threads: mimalloc does that for about a quarter less
/// time than glibc's malloc here (`bench/promql-vs-prometheus.sh`). It is
/// built without transparent huge pages (`.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The scrapegrid storage node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory of the RocksDB database; created if missing.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address of the gRPC Ingest and Query services.
    #[arg(long)]
    grpc_addr: String,
    /// Address of the Prometheus HTTP API, /metrics and health endpoints.
    #[arg(long)]
    http_addr: String,
    /// A prometheus.yml whose `remote_write` section (and
    /// `global.external_labels`) the node sends every stored sample to;
    /// the rest of the file is the control plane's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Bytes of samples waiting for one remote_write endpoint past which
    /// the oldest are dropped and counted (Prometheus size such as 512MB;
    /// 0 is no limit).
    #[arg(long = "remote-write.max-disk-usage-per-url", default_value = "1GB", value_parser = parse_size)]
    remote_write_max_disk: u64,
    /// How long shutdown waits for the remote_write queues to send what
    /// they hold, beside the rest of the shutdown; the rest is sent after
    /// the next start (Prometheus's --storage.remote.flush-deadline, whose
    /// default is 1m: the queue here is on disk and survives).
    #[arg(long = "remote-write.flush-deadline", default_value = "10s", value_parser = parse_duration)]
    remote_write_flush_deadline: Duration,
    /// How long to keep samples (Prometheus duration; 0 keeps them forever).
    #[arg(long = "retention.time", default_value = "15d", value_parser = parse_duration)]
    retention_time: Duration,
    /// Bytes the database may use, oldest samples deleted first
    /// (Prometheus size such as 512MB; 0 is no limit).
    #[arg(long = "retention.size", default_value = "0", value_parser = parse_size)]
    retention_size: u64,
    /// How often retention runs.
    #[arg(long = "retention.check-interval", default_value = "1m", value_parser = parse_duration, hide = true)]
    retention_interval: Duration,
    /// Refuse writes while less than this is available on the data
    /// directory's filesystem (scrapers keep their batches and send them
    /// again once space is freed; as VictoriaMetrics'
    /// -storage.minFreeDiskSpaceBytes); 0 turns the guard off.
    #[arg(long = "storage.min-free-disk-space", default_value = "100MB", value_parser = parse_size)]
    min_free_disk_space: u64,
    /// Accept samples up to this much older than the newest written
    /// (Prometheus duration; 0 rejects every out-of-order sample).
    #[arg(long = "storage.out-of-order-time-window", default_value = "0", value_parser = parse_duration)]
    out_of_order_time_window: Duration,
    /// Exemplars kept at most, oldest deleted first (Prometheus's
    /// `storage.exemplars.max_exemplars`; 0 keeps none).
    #[arg(long = "storage.exemplars.max-exemplars", default_value_t = storage_node::exemplars::DEFAULT_MAX_EXEMPLARS)]
    max_exemplars: usize,
    /// Maximum time a query may take before it is aborted.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_duration)]
    query_timeout: Duration,
    /// How far back an instant selector looks for a sample; a series whose
    /// last sample is older is absent.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_duration)]
    lookback_delta: Duration,
    /// Maximum number of samples a single query may load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    max_samples: usize,
    /// Serve gRPC over TLS with this certificate (PEM); with --grpc-tls-key.
    #[arg(long)]
    grpc_tls_cert: Option<std::path::PathBuf>,
    /// The key of --grpc-tls-cert (PEM).
    #[arg(long)]
    grpc_tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS: only clients with a certificate from this CA (PEM) may
    /// connect.
    #[arg(long)]
    grpc_client_ca: Option<std::path::PathBuf>,
    /// A file holding the token writers (scrapers, remote_write clients)
    /// must present; without it any client may write.
    #[arg(long)]
    write_token_file: Option<std::path::PathBuf>,
    /// A file holding the token readers must present on the query API,
    /// remote read and the gRPC Query service; without it anyone may read.
    #[arg(long)]
    read_token_file: Option<std::path::PathBuf>,
    /// Serve HTTP over TLS with this certificate (PEM); with
    /// --http-tls-key.
    #[arg(long)]
    http_tls_cert: Option<std::path::PathBuf>,
    /// The key of --http-tls-cert (PEM).
    #[arg(long)]
    http_tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS on HTTP: only clients with a certificate from this CA
    /// (PEM) may connect.
    #[arg(long)]
    http_client_ca: Option<std::path::PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    scrapegrid_common::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> Result<u64, String> {
    scrapegrid_common::duration::parse_size(s).map_err(|e| e.to_string())
}

/// Extra time over the node's own shutdown timeout before main gives up.
const EXIT_GRACE: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    storage_node::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    scrapegrid_common::telemetry::init_tracing();
    let args = Args::parse();
    let grpc = TcpListener::bind(&args.grpc_addr)
        .await
        .with_context(|| format!("binding --grpc-addr {}", args.grpc_addr))?;
    scrapegrid_common::telemetry::announce("grpc", &grpc)?;
    let http = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", args.http_addr))?;
    scrapegrid_common::telemetry::announce("http", &http)?;
    let mut config = storage_node::Config::new(args.data_dir);
    if let Some(path) = args.config.clone() {
        let source =
            storage_node::egress::EgressSource::from_file(path, args.remote_write_max_disk);
        config.egress = source.read().map_err(anyhow::Error::msg)?;
        config.egress_source = Some(source);
    }
    config.egress_flush_timeout = args.remote_write_flush_deadline;
    config.retention = storage_node::retention::RetentionConfig {
        time: args.retention_time,
        size: args.retention_size,
        interval: args.retention_interval,
    };
    config.out_of_order_time_window = args.out_of_order_time_window;
    config.min_free_disk_bytes = args.min_free_disk_space;
    config.max_exemplars = args.max_exemplars;
    config.query_timeout = args.query_timeout;
    config.query.lookback_ms = args.lookback_delta.as_millis() as i64;
    config.query.max_samples = args.max_samples;
    config.grpc_tls = scrapegrid_common::security::ServerTls {
        cert: args.grpc_tls_cert,
        key: args.grpc_tls_key,
        client_ca: args.grpc_client_ca,
    };
    let token = |flag: &str, path: Option<std::path::PathBuf>| {
        path.map(|p| scrapegrid_common::security::Token::from_file(flag, &p))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    config.write_token = token("--write-token-file", args.write_token_file)?;
    config.read_token = token("--read-token-file", args.read_token_file)?;
    config.http_tls = scrapegrid_common::security::HttpTls {
        cert: args.http_tls_cert,
        key: args.http_tls_key,
        client_ca: args.http_client_ca,
    };
    let deadline = config.shutdown_timeout + config.egress_flush_timeout + EXIT_GRACE;
    let shutdown = CancellationToken::new();
    let node = storage_node::run(config, grpc, http, shutdown.clone());
    scrapegrid_common::telemetry::run_until_signal(node, shutdown, deadline).await?;
    Ok(())
}
