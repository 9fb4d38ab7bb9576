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
    let storage_security =
        security.with_token(token("--write-token-file", flags.write_token_file)?);
    let node = scraper_node::NodeConfig {
        scraper_id,
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
    };
    let shutdown = CancellationToken::new();
    let deadline = flags.drain_timeout + SHUTDOWN_SLACK;
    let node = scraper_node::run(node, http, shutdown.clone());
    scrapegrid_common::telemetry::run_until_signal(node, shutdown, deadline).await?;
    Ok(())
}
