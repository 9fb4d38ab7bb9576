//! The storage node binary: flags, tracing, listeners, then
//! [`storage_node::run`] until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
}

/// Extra time over the node's own shutdown timeout before main gives up.
const EXIT_GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scrapegrid_common::telemetry::init_tracing();
    let args = Args::parse();
    let grpc = TcpListener::bind(&args.grpc_addr)
        .await
        .with_context(|| format!("binding --grpc-addr {}", args.grpc_addr))?;
    let http = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", args.http_addr))?;
    let config = storage_node::Config::new(args.data_dir);
    let deadline = config.shutdown_timeout + EXIT_GRACE;
    let shutdown = CancellationToken::new();
    let mut node = tokio::spawn(storage_node::run(config, grpc, http, shutdown.clone()));

    tokio::select! {
        r = &mut node => return Ok(r.context("storage node task")??),
        _ = scrapegrid_common::telemetry::shutdown_signal() => tracing::info!("shutdown requested"),
    }
    shutdown.cancel();
    match tokio::time::timeout(deadline, node).await {
        Ok(r) => Ok(r.context("storage node task")??),
        Err(_) => {
            tracing::error!(?deadline, "shutdown deadline passed; exiting");
            std::process::exit(1);
        }
    }
}
