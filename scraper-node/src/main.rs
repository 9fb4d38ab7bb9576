//! `scraper-node`: scrapes the targets the control plane assigns to it and
//! streams every scrape to the storage node ([`scraper_node::run`]), or in
//! direct mode (`--remote-write.config`) to an embedded one that sends to
//! the `remote_write` endpoints ([`scraper_node::direct`]), until SIGTERM
//! or SIGINT starts its drain. Once bound it prints `listening http <addr>`
//! on stdout.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(name = "scraper-node", version, about)]
struct Flags {
    /// Control plane gRPC endpoints, comma-separated (http://host:port,...).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:9091")]
    control_plane: Vec<String>,
    /// HTTP listen address (/metrics).
    #[arg(long, default_value = "127.0.0.1:9093")]
    http_addr: String,
    /// Stable scraper id; defaults to scraper-<http port>@<hostname>.
    #[arg(long)]
    id: Option<String>,
    /// How often target health is reported to the control plane.
    #[arg(long, default_value = "2s", value_parser = duration)]
    status_interval: Duration,
    /// How long a shutdown (SIGTERM) may take: until a leader has moved
    /// every target to another scraper and the storage node has acked every
    /// batch. Long enough to ride out a storage node restart or a leader
    /// election; what is left at the deadline is logged and counted.
    #[arg(long, default_value = "60s", value_parser = duration)]
    drain_timeout: Duration,
    /// The CA (PEM) that https:// control plane and storage endpoints must
    /// chain to (default: the system's roots).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// This scraper's certificate (PEM) for mutual TLS; with --tls-key.
    #[arg(long)]
    tls_cert: Option<std::path::PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long)]
    tls_key: Option<std::path::PathBuf>,
    /// A file holding the token the control planes require to join.
    #[arg(long)]
    join_token_file: Option<std::path::PathBuf>,
    /// A file holding the token the storage node requires to write.
    #[arg(long)]
    write_token_file: Option<std::path::PathBuf>,
    /// The storage node's gRPC endpoint as this scraper reaches it
    /// (http(s)://host:port), when that differs from the address the
    /// control planes name (a proxy, NAT); default: theirs.
    #[arg(long, conflicts_with = "remote_write_config")]
    storage: Option<String>,
    /// Serve HTTP over TLS with this certificate (PEM); with
    /// --http-tls-key.
    #[arg(long)]
    http_tls_cert: Option<std::path::PathBuf>,
    /// The key of --http-tls-cert (PEM).
    #[arg(long)]
    http_tls_key: Option<std::path::PathBuf>,
    /// Direct mode, without a storage node: send every scrape straight to
    /// the `remote_write` endpoints of this prometheus.yml, through an
    /// embedded storage node that is the durable queue (the storage node
    /// the control plane names is not used). SIGHUP reads it again.
    #[arg(long = "remote-write.config")]
    remote_write_config: Option<std::path::PathBuf>,
    /// Direct mode: the embedded node's data directory (the queue and a
    /// local copy of what was scraped). One per scraper; keep it across
    /// restarts so the queue resumes.
    #[arg(long = "remote-write.data-dir", default_value = "scraper-data")]
    remote_write_data_dir: std::path::PathBuf,
    /// Direct mode: bytes one endpoint may have queued before its oldest
    /// samples are dropped and counted (0: no limit).
    #[arg(long = "remote-write.max-disk-usage-per-url", default_value = "1GB", value_parser = bytes)]
    remote_write_max_disk: u64,
    /// Direct mode: how long the local copy is kept (0: forever).
    #[arg(long = "remote-write.retention", default_value = "1h", value_parser = duration)]
    remote_write_retention: Duration,
    /// Direct mode: whether the embedded node keeps a local copy of the
    /// samples, queryable on its HTTP API. `false` keeps only the queue
    /// (as Prometheus's agent mode and vmagent do), for less CPU and disk.
    #[arg(long = "remote-write.local-copy", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    remote_write_local_copy: bool,
    /// Direct mode: how long a shutdown waits for the queues to send what
    /// they hold before the process exits (the rest is sent after the next
    /// start on the same --remote-write.data-dir).
    #[arg(long = "remote-write.flush-deadline", default_value = "1m", value_parser = duration)]
    remote_write_flush_deadline: Duration,
    /// Mutual TLS on HTTP: only clients with a certificate from this CA
    /// (PEM) may connect.
    #[arg(long)]
    http_client_ca: Option<std::path::PathBuf>,
    /// Batches the outbox holds in memory while the storage node is away
    /// or slow; the rest goes to --outbox.dir.
    #[arg(long = "outbox.memory-batches", default_value_t = scraper_node::ingest::MAX_PENDING)]
    outbox_memory_batches: usize,
    /// Where batches over --outbox.memory-batches wait, in a subdirectory
    /// per --id (`outbox-<id>`); what a process leaves there is sent by the
    /// next one with the same id. Empty: drop them instead.
    #[arg(long = "outbox.dir", default_value = "scraper-data")]
    outbox_dir: String,
    /// Bytes the spilled batches may take before the oldest are dropped
    /// and counted (0: no limit).
    #[arg(long = "outbox.max-disk-usage", default_value = "1GB", value_parser = bytes)]
    outbox_max_disk: u64,
}

fn duration(s: &str) -> Result<Duration, String> {
    scrapegrid_common::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn bytes(s: &str) -> Result<u64, String> {
    scrapegrid_common::duration::parse_size(s).map_err(|e| e.to_string())
}

/// `id` with every character but ASCII letters, digits, `.`, `_` and `-`
/// replaced by `_`, to name a directory.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Scrapes, batches and (in direct mode) the embedded node's writes and
/// queue allocate and free many small objects across threads: mimalloc,
/// as in the storage node binary (built without transparent huge pages,
/// `.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How much longer than `--drain-timeout` the process may take to exit:
/// the delivery gets at least `ingest::FLUSH_FLOOR` after the handovers.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    // Direct mode's embedded storage node reads RocksDB on these threads.
    storage_node::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let flags = Flags::parse();
    scrapegrid_common::telemetry::init_tracing();
    let embedded = match &flags.remote_write_config {
        None => None,
        Some(config) => Some(
            scraper_node::direct::Embedded::start(&scraper_node::direct::DirectConfig {
                config: config.clone(),
                data_dir: flags.remote_write_data_dir.clone(),
                max_disk_bytes_per_url: flags.remote_write_max_disk,
                retention: flags.remote_write_retention,
                local_copy: flags.remote_write_local_copy,
                flush_deadline: flags.remote_write_flush_deadline,
            })
            .await?,
        ),
    };
    let http = tokio::net::TcpListener::bind(&flags.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", flags.http_addr))?;
    scrapegrid_common::telemetry::announce("http", &http)?;
    let port = http.local_addr()?.port();
    let scraper_id = flags.id.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "localhost".into());
        format!("scraper-{port}@{}", host.trim())
    });
    tracing::info!(id = %scraper_id, http = %http.local_addr()?, "scraper node starting");
    use scrapegrid_common::security::{ClientSecurity, Token};
    let token = |flag: &str, path: Option<std::path::PathBuf>| {
        path.map(|p| Token::from_file(flag, &p))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let security = ClientSecurity::new(
        flags.tls_ca.as_deref(),
        flags.tls_cert.as_deref(),
        flags.tls_key.as_deref(),
        None,
    )
    .map_err(anyhow::Error::msg)?;
    let control_security = security.with_token(token("--join-token-file", flags.join_token_file)?);
    let storage_security = match &embedded {
        // Direct mode writes to its own embedded node, with its token.
        Some(e) => security.with_token(Some(e.write_token.clone())),
        None => security.with_token(token("--write-token-file", flags.write_token_file)?),
    };
    let node = scraper_node::NodeConfig {
        scraper_id: scraper_id.clone(),
        control_planes: flags.control_plane,
        status_interval: flags.status_interval,
        drain_timeout: flags.drain_timeout,
        control_security,
        storage_security,
        http_tls: scrapegrid_common::security::HttpTls {
            cert: flags.http_tls_cert,
            key: flags.http_tls_key,
            client_ca: flags.http_client_ca,
        },
        storage_endpoint: match &embedded {
            Some(e) => Some(e.endpoint.clone()),
            None => flags.storage,
        },
        local_ingest: embedded.as_ref().map(|e| e.local_ingest.clone()),
        outbox: scraper_node::ingest::OutboxConfig {
            memory_batches: flags.outbox_memory_batches,
            spill_dir: (!flags.outbox_dir.is_empty()).then(|| {
                std::path::Path::new(&flags.outbox_dir)
                    .join(format!("outbox-{}", file_safe(&scraper_id)))
            }),
            max_disk_bytes: flags.outbox_max_disk,
        },
    };
    let shutdown = CancellationToken::new();
    let deadline = flags.drain_timeout + SHUTDOWN_SLACK;
    let node = scraper_node::run(node, http, shutdown.clone());
    let Some(mut embedded) = embedded else {
        scrapegrid_common::telemetry::run_until_signal(node, shutdown, deadline).await?;
        return Ok(());
    };
    // Direct mode: if the embedded node ends on its own (it failed), the
    // scraper drains (its targets move to other scrapers) and exits with
    // that error; however the scraper ends, the embedded node is stopped
    // after it, its queues flushed.
    let stop_embedded = CancellationToken::new();
    let watcher = tokio::spawn({
        let (stop_embedded, drain) = (stop_embedded.clone(), shutdown.clone());
        async move {
            tokio::select! {
                why = embedded.ended() => {
                    tracing::error!("{why}; stopping the scraper");
                    drain.cancel();
                    Err(anyhow::anyhow!(why))
                }
                _ = stop_embedded.cancelled() => embedded.stop().await,
            }
        }
    });
    let result = scrapegrid_common::telemetry::run_until_signal(node, shutdown, deadline).await;
    stop_embedded.cancel();
    let stopped = watcher.await?;
    result?;
    stopped
}
