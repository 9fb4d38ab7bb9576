//! `scraper-node`: scrapes the targets the control plane assigns to it and
//! streams every scrape to the storage node ([`scraper_node::run`]), until
//! SIGTERM or SIGINT starts its drain. Once bound it prints
//! `listening http <addr>` on stdout.

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
}

fn duration(s: &str) -> Result<Duration, String> {
    scrapegrid_common::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// How much longer than `--drain-timeout` the process may take to exit:
/// the delivery gets at least `ingest::FLUSH_FLOOR` after the handovers.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    scrapegrid_common::telemetry::init_tracing();
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
    let node = scraper_node::NodeConfig {
        scraper_id,
        control_planes: flags.control_plane,
        status_interval: flags.status_interval,
        drain_timeout: flags.drain_timeout,
    };
    let shutdown = CancellationToken::new();
    let deadline = flags.drain_timeout + SHUTDOWN_SLACK;
    let node = scraper_node::run(node, http, shutdown.clone());
    scrapegrid_common::telemetry::run_until_signal(node, shutdown, deadline).await?;
    Ok(())
}
