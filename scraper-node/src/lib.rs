//! The scrapegrid scraper node.
//!
//! [`control`] keeps the session with the control plane and applies each
//! assignment to the [`manager`], which runs one [`scrape`] loop per target.
//! A loop fetches its target, parses the exposition ([`textparse`]), and its
//! [`scrape::state`] turns the result into one [`batch::ScrapeBatch`]
//! (target labels, metric relabeling, limits, staleness, report series) that
//! the [`ingest`] client delivers to the storage node exactly once.
//! [`target`] holds the validated pools and targets an assignment carries,
//! [`metrics`] the node's own metrics, [`error`] its error type, [`clock`]
//! the cluster's clock (the control plane's, estimated) that slots and
//! timestamps are read on.
//! [`direct`] is the mode without a storage node: an embedded one is the
//! durable queue to the `remote_write` endpoints.
//!
//! Data flow: assignment -> manager -> scrape loop -> batch -> ingest stream.
//! Shutdown order: say goodbye to the control plane, hand every target over
//! (each loop scrapes up to its handover time; across leader changes, until
//! a leader has moved each target away), stop what is left, then deliver
//! every unacked batch. One drain deadline (`--drain-timeout`) bounds it all.
//!
//! [`run`] runs the node on an already-bound HTTP listener (`/metrics`,
//! health, readiness, and `/integrations/host/metrics`, the `host`
//! integration); the binary prints `listening http <addr>` on stdout once
//! bound.

pub mod batch;
pub mod clock;
pub mod control;
pub mod direct;
pub mod error;
pub mod ingest;
pub mod manager;
pub mod metrics;
pub mod scrape;
pub mod target;
pub mod textparse;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

/// How the scraper node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub scraper_id: String,
    /// Control plane gRPC endpoints (http://host:port), tried in turn.
    pub control_planes: Vec<String>,
    /// How often health is reported (also the membership heartbeat).
    pub status_interval: Duration,
    /// How long a shutdown may take to hand every target over and deliver
    /// every batch before it gives up what is left (logged and counted).
    pub drain_timeout: Duration,
    /// TLS for `https://` endpoints and the join token for control planes.
    pub control_security: scrapegrid_common::security::ClientSecurity,
    /// TLS for an `https://` storage node and its write token.
    pub storage_security: scrapegrid_common::security::ClientSecurity,
    /// TLS of the HTTP listener; plain HTTP without a certificate.
    pub http_tls: scrapegrid_common::security::HttpTls,
    /// The storage node to write to; `None`: the one the control plane
    /// names. Set in [`direct`] mode (the embedded node) and by `--storage`.
    pub storage_endpoint: Option<String>,
    /// Direct mode: the embedded node's Ingest service, written to without
    /// gRPC (`storage_endpoint` still serves handover reads).
    pub local_ingest: Option<storage_node::ingest::LocalIngest>,
    /// How much the outbox holds in memory, and where the rest goes.
    pub outbox: ingest::OutboxConfig,
}

/// Runs the scraper node until `shutdown`; `http` serves `/metrics`.
pub async fn run(node: NodeConfig, http: TcpListener, shutdown: CancellationToken) -> Result<()> {
    // The recorder first: descriptions given before it exists are lost.
    scrapegrid_common::telemetry::metrics_handle();
    metrics::describe();
    let http_addr = http.local_addr()?.to_string();
    let (endpoint_tx, endpoint_rx) =
        watch::channel(node.storage_endpoint.clone().unwrap_or_default());
    // A fixed storage node: what the control plane names goes nowhere.
    let endpoint_tx = match node.storage_endpoint {
        Some(_) => watch::channel(String::new()).0,
        None => endpoint_tx,
    };
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel();
    let (ingest, ingest_task) = ingest::start(
        node.scraper_id.clone(),
        endpoint_rx,
        node.storage_security.clone(),
        drain_rx,
        node.local_ingest.clone(),
        &node.outbox,
    );
    let client = scrape::http_client::TargetClient::new()?;
    // The loops outlive the shutdown signal: they hand over first, and the
    // control session stops them.
    let manager =
        manager::ScrapeManager::new(client, ingest, endpoint_tx, CancellationToken::new());
    let session = control::SessionConfig {
        scraper_id: node.scraper_id.clone(),
        security: node.control_security.clone(),
        http_addr,
        endpoints: node.control_planes.clone(),
        status_interval: node.status_interval,
        drain_timeout: node.drain_timeout,
        ready: Arc::new(AtomicBool::new(false)),
    };
    let ready = session.ready.clone();
    let control_task = tokio::spawn(control::run(session, manager, shutdown.clone()));

    let handle = scrapegrid_common::telemetry::metrics_handle();
    let router = axum::Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        // The `host` integration: this host's CPU, memory, disks and
        // network with node_exporter's names, scraped when the config
        // enables it.
        .route("/integrations/host/metrics", get(host_metrics))
        // Ready while a leading control plane counts it as a member and it
        // is not draining (Kubernetes' readiness: a rollout waits for it).
        .route(
            "/-/ready",
            get(move || async move {
                if ready.load(Ordering::Relaxed) {
                    (axum::http::StatusCode::OK, "Ready.\n")
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable: not a member of a leading control plane's shard set, or draining.\n",
                    )
                }
            }),
        );
    // `/metrics` stays up through the drain, so what it gives up can be read.
    let http_stop = CancellationToken::new();
    let http_until = http_stop.clone().cancelled_owned();
    let http_tls = node
        .http_tls
        .rustls()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let http_server = tokio::spawn(scrapegrid_common::security::serve_http(
        http, router, http_tls, http_until,
    ));

    let c = control_task.await;
    // The loops have stopped and handed in their batches: deliver them
    // until the drain deadline.
    let _ = drain_tx.send(
        c.as_ref()
            .copied()
            .unwrap_or_else(|_| tokio::time::Instant::now()),
    );
    let _ = ingest_task.await;
    http_stop.cancel();
    http_server.await??;
    c?;
    Ok(())
}

/// `GET /integrations/host/metrics`: this host's metrics, read from `/proc`,
/// `/sys` and the mounted filesystems at each request.
async fn host_metrics() -> axum::response::Response {
    use axum::response::IntoResponse;
    let read = tokio::task::spawn_blocking(|| {
        scrapegrid_common::host_metrics::render(std::path::Path::new("/"))
    });
    match read.await {
        Ok(body) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the host's metrics failed: {e}\n"),
        )
            .into_response(),
    }
}
