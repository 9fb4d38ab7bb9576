//! The scrapegrid storage node: ingests scrape batches over gRPC into
//! RocksDB and answers the Prometheus HTTP API and the gRPC Query API.
//!
//! Data flows in through [`ingest`]: each scraper stream sends a hello, then
//! batches; [`batch`] resolves the stream's series references and validates
//! the batch, and the [`writer`] thread (the only writer) checks sequence
//! and fencing, allocates series ids, writes each batch as one RocksDB
//! `WriteBatch` and syncs the WAL once per group before the acks go back.
//! [`keys`] is the single description of the column families and key
//! encodings, [`db`] opens them and holds the one write lock,
//! [`open_chunks`] keeps every series' newest samples in an open chunk in
//! memory under a write-ahead log (cut into chunks, checkpointed,
//! recovered at open), and [`samples`] is the seam where sample storage
//! (open chunks, a head of one key per out-of-order sample, chunks) lives: appends and reads in `samples.rs`,
//! the many-series cursor in `samples/cursor.rs`, reads spread over a thread
//! pool in `samples/read_many.rs`, and compaction in `samples/compact.rs`,
//! which the [`compactor`] runs in the background.
//! [`head_bounds`] keeps in memory where each series' head starts, so reads
//! skip the keys the compactor deleted, and [`chunk_ends`] where each
//! series' chunks end, so reads near the end fetch its newest chunk by key
//! (both in [`series_slots`], per-series arrays indexed by series id).
//! [`chunk`] is the Gorilla-style sample codec of those chunks. Native
//! histogram samples have their own column family, one key each
//! ([`samples::append_histogram`]), read beside the floats.
//! [`exemplars`] holds the exemplars that came with the samples, admitted
//! by the writer as Prometheus's exemplar storage admits them and written
//! in the same `WriteBatch`.
//!
//! Data flows out through [`index`] (matchers over postings, label names and
//! values) and [`query`] (PromQL parsed by promql-parser and evaluated by
//! [`query::engine`] as Prometheus 2.42 does), served by [`http_api`] in
//! Prometheus's JSON shapes (exemplars too, `/api/v1/query_exemplars`) and
//! by [`grpc_query`] as the `Query` service (raw selection and PromQL).
//! [`http_api::remote`] is Prometheus remote write (each request one writer
//! job, without sequence or fencing) and remote read (raw samples through
//! the same selection).
//! [`egress`] sends every stored sample to the `remote_write` endpoints of
//! `--config`: the writer queues it in the same `WriteBatch`, and one queue
//! per endpoint reads that log from its own stored position.
//! [`metadata`] keeps the targets' HELP, TYPE and UNIT per metric family
//! that the batches carry, for `/api/v1/metadata`,
//! `/api/v1/targets/metadata` and remote write.
//! [`metrics`] declares the node's own metrics; [`error`] its error type.
//! [`retention`] deletes samples (and exemplars) past `--retention.time` /
//! `--retention.size` in the background and refreshes the disk size gauges.
//!
//! [`run`] wires it together on already-bound listeners and shuts down in
//! order when its token is cancelled: stop accepting and end ingest streams,
//! let the `remote_write` queues send what they hold (at most
//! `egress_flush_timeout`) and stop them, let the writer finish what is
//! queued and sync, then close RocksDB. The
//! binary prints `listening grpc <addr>` and `listening http <addr>` on
//! stdout once bound. `testutil` (tests only) fills a database directly;
//! the node's integration tests are in the `tests` crate
//! (`tests/tests/storage_*.rs`).

pub mod batch;
pub mod chunk;
pub mod chunk_ends;
pub mod compactor;
pub mod db;
pub mod egress;
pub mod error;
pub mod exemplars;
pub mod grpc_query;
pub mod head_bounds;
pub mod http_api;
pub mod index;
pub mod ingest;
pub mod keys;
pub mod metadata;
pub mod metrics;
pub mod open_chunks;
pub mod query;
pub mod retention;
pub mod samples;
pub mod series_slots;
pub mod writer;

#[cfg(test)]
mod testutil;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::{timeout_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::TcpIncoming;

pub use error::{Error, Result};

/// The default of `--storage.min-free-disk-space`: room for RocksDB to
/// flush its memtables (the WAL bound keeps them under about 16 MiB) and
/// compact a few files after writes stop.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 100 << 20;

/// How the node runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where RocksDB keeps its files; created if missing.
    pub data_dir: PathBuf,
    /// How long shutdown may take: draining servers, the writer's last
    /// group, closing the database.
    pub shutdown_timeout: Duration,
    /// How long one HTTP API query may run (Prometheus's `query.timeout`).
    pub query_timeout: Duration,
    /// How PromQL evaluates (`query.lookback-delta`, `query.max-samples`).
    pub query: query::engine::EngineOptions,
    /// What retention keeps and how often it runs.
    pub retention: retention::RetentionConfig,
    /// Samples up to this much older than the newest written are accepted
    /// out of order; zero (the default) rejects every out-of-order sample.
    pub out_of_order_time_window: Duration,
    /// Exemplars kept at most (Prometheus's
    /// `storage.exemplars.max_exemplars`); zero keeps none.
    pub max_exemplars: usize,
    /// TLS of the gRPC server; plain gRPC without a certificate.
    pub grpc_tls: scrapegrid_common::security::ServerTls,
    /// The token writers present on the Ingest service and remote write;
    /// `None` admits any.
    pub write_token: Option<scrapegrid_common::security::Token>,
    /// The token readers present on the Query service, the query API and
    /// remote read; `None` admits any.
    pub read_token: Option<scrapegrid_common::security::Token>,
    /// TLS of the HTTP listener; plain HTTP without a certificate.
    pub http_tls: scrapegrid_common::security::HttpTls,
    /// Where stored samples are sent (`remote_write`); nothing by default.
    pub egress: egress::EgressConfig,
    /// Reads `egress` again on SIGHUP or `POST /-/reload`; `None`: there
    /// is nothing to reload from.
    pub egress_source: Option<egress::EgressSource>,
    /// How long shutdown waits for the `remote_write` queues to send what
    /// is queued (beside `shutdown_timeout`); what is left is sent after
    /// the next start.
    pub egress_flush_timeout: Duration,
    /// Whether samples are stored (the default); without, the node only
    /// queues them for `remote_write` (the index, metadata and exemplars
    /// are kept), and queries find no samples.
    pub store_samples: bool,
    /// Writes are refused (and kept by the scrapers) while less than this
    /// is available on the data directory's filesystem
    /// (`--storage.min-free-disk-space`); 0 turns the guard off.
    pub min_free_disk_bytes: u64,
    /// Filled with the Ingest service while the node runs, for an
    /// embedder that writes without gRPC (direct mode).
    pub local_ingest: Option<ingest::LocalIngest>,
}

impl Config {
    /// Returns a config with default timeouts.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            shutdown_timeout: Duration::from_secs(20),
            query_timeout: Duration::from_secs(120),
            query: query::engine::EngineOptions::default(),
            retention: retention::RetentionConfig::default(),
            out_of_order_time_window: Duration::ZERO,
            max_exemplars: exemplars::DEFAULT_MAX_EXEMPLARS,
            grpc_tls: Default::default(),
            write_token: None,
            read_token: None,
            http_tls: Default::default(),
            egress: Default::default(),
            egress_source: None,
            egress_flush_timeout: Duration::from_secs(10),
            store_samples: true,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
            local_ingest: None,
        }
    }
}

/// The multi-threaded runtime a process running the node uses: RocksDB's
/// perf counters off on each of its threads ([`db::disable_perf_counters`]).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(db::disable_perf_counters)
        .build()
}

/// Runs the node until `shutdown` is cancelled (or a server fails), then
/// shuts down in order under `config.shutdown_timeout` (plus the flush).
pub async fn run(
    config: Config,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let metrics_handle = metrics::handle();
    let data_dir = config.data_dir.clone();
    let recovery = std::time::Instant::now();
    let egress_config = config.egress.clone();
    let (db, egress) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&data_dir)?;
        let db = Arc::new(db::Db::open(&data_dir)?);
        let egress = egress::Egress::open(db.clone(), &egress_config)?;
        Ok::<_, Error>((db, egress))
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    let opened = recovery.elapsed();
    let writer_options = writer::WriterOptions {
        out_of_order_time_window: config.out_of_order_time_window,
        max_exemplars: config.max_exemplars,
        store_samples: config.store_samples,
        min_free_disk_bytes: config.min_free_disk_bytes,
    };
    let (writer, writer_thread) = {
        let db = db.clone();
        let appender = egress.as_ref().map(egress::Egress::appender);
        tokio::task::spawn_blocking(move || writer::spawn_with_egress(db, writer_options, appender))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??
    };
    let recovered = recovery.elapsed();
    metrics::recovered(recovered);
    tracing::info!(
        ?opened,
        ?recovered,
        "recovered in {recovered:?} (database open and wal replay {opened:?}); per-series state loads lazily"
    );

    // Cancelled on shutdown, or by us when a server fails.
    let stop = shutdown.child_token();
    let streams = TaskTracker::new();
    streams.spawn(compactor::run(db.clone(), Default::default(), stop.clone()));
    let metadata = Arc::new(metadata::MetadataStore::default());
    // Cancelled when this function returns, however it does (an early
    // error below included); the shutdown stops the queues before that.
    let egress_stop = CancellationToken::new();
    let _egress_stop = egress_stop.clone().drop_guard();
    let reloader = Arc::new(egress::Reloader::start(
        db.clone(),
        writer.clone(),
        egress,
        config.egress.clone(),
        config.egress_source.clone(),
        metadata.clone(),
        // Not `stop`: at shutdown the queues may flush first.
        egress_stop.clone(),
    ));
    let sighup = tokio::spawn(reload_on_sighup(reloader.clone(), stop.clone()));
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    let retention_writer = writer.clone();
    let ingest = ingest::IngestService::new(
        writer.clone(),
        db.clone(),
        stop.clone(),
        streams.clone(),
        metadata.clone(),
    );
    let local = config
        .local_ingest
        .as_ref()
        .map(|l| l.serve(ingest.clone()));
    let (health, health_service, reflection, reflection_alpha) =
        scrapegrid_common::grpc_standard::services(&[
            scrapegrid_proto::v1::ingest_server::SERVICE_NAME,
            scrapegrid_proto::v1::query_server::SERVICE_NAME,
        ]);
    tokio::spawn(health.serve_until(stop.clone()));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = config.grpc_tls.tonic().map_err(Error::Tls)? {
        builder = builder.tls_config(tls)?;
    }
    let grpc_server = builder
        .add_service(ingest.into_server(config.write_token.clone()))
        .add_service(
            grpc_query::QueryService::new(db.clone())
                .with_engine(config.query, config.query_timeout)
                .into_server(config.read_token.clone()),
        )
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            stop.clone().cancelled_owned(),
        );
    let mut grpc = tokio::spawn(async move { grpc_server.await.map_err(Error::from) });

    let router = http_api::router(http_api::ApiState {
        db: db.clone(),
        metrics: metrics_handle.clone(),
        shutdown: stop.clone(),
        query_timeout: config.query_timeout,
        engine: config.query,
        writer,
        read_token: config.read_token.clone(),
        write_token: config.write_token.clone(),
        reloader: reloader.clone(),
        metadata: metadata.clone(),
    });
    let http_tls = config.http_tls.rustls().map_err(Error::Tls)?;
    let http_server = scrapegrid_common::security::serve_http(
        http_listener,
        router,
        http_tls,
        stop.clone().cancelled_owned(),
    );
    let mut http = tokio::spawn(async move { http_server.await.map_err(Error::from) });

    let upkeep = tokio::spawn(metrics_upkeep(metrics_handle, stop.clone()));
    let retention = retention::spawn(
        db.clone(),
        config.retention,
        retention_writer,
        stop.child_token(),
    );
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %config.data_dir.display(), "storage node started");

    let mut failure: Option<Error> = None;
    tokio::select! {
        biased;
        _ = stop.cancelled() => {}
        r = &mut grpc => failure = server_failure("grpc", r, &stop),
        r = &mut http => failure = server_failure("http", r, &stop),
    }
    stop.cancel();
    tracing::info!("storage node stopping");
    let deadline = Instant::now() + config.shutdown_timeout;

    // 1. Stop accepting; ingest streams end after their queued acks.
    drop(local);
    for (name, handle) in [("grpc", grpc), ("http", http)] {
        if handle.is_finished() {
            continue;
        }
        let abort = handle.abort_handle();
        if timeout_at(deadline, handle).await.is_err() {
            tracing::warn!(
                server = name,
                "server did not drain before the deadline; aborting"
            );
            abort.abort();
        }
    }
    streams.close();
    if timeout_at(deadline, streams.wait()).await.is_err() {
        tracing::warn!("ingest streams did not end before the deadline");
    }
    upkeep.abort();
    sighup.abort();
    // Every acked batch is durable and queued: give the queues the flush
    // deadline to send it, on top of the shutdown timeout (the later steps
    // keep their time).
    let flush = config.egress_flush_timeout;
    let flush_started = Instant::now();
    if !flush.is_zero() && !reloader.flush(flush).await {
        tracing::warn!(
            ?flush,
            "remote_write queues still hold samples at shutdown; they are sent after the next start"
        );
    }
    let deadline = deadline + flush_started.elapsed();
    if timeout_at(deadline, reloader.stop()).await.is_err() {
        tracing::warn!("remote_write queues did not stop before the deadline");
    }
    drop(reloader);
    // A running retention pass stops between series; it must release the
    // database before it closes.
    let abort_retention = retention.abort_handle();
    if timeout_at(deadline, retention).await.is_err() {
        tracing::warn!("retention pass did not stop before the deadline");
        // Its writer handle must go, or the writer never stops.
        abort_retention.abort();
    }

    // 2. With every writer handle gone, the writer drains, syncs and stops.
    let joined = tokio::task::spawn_blocking(move || writer_thread.join());
    match timeout_at(deadline, joined).await {
        Ok(Ok(Ok(()))) => {}
        Ok(_) => tracing::error!("writer thread panicked"),
        Err(_) => tracing::warn!("writer did not stop before the deadline"),
    }

    // 3. Close RocksDB (on the last reference's drop).
    match Arc::try_unwrap(db) {
        Ok(db) => {
            tokio::task::spawn_blocking(move || drop(db)).await.ok();
            tracing::info!("storage node stopped");
        }
        Err(db) => tracing::warn!(
            references = Arc::strong_count(&db),
            "database still in use at shutdown; it closes when the last query ends"
        ),
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Returns the error of a server that ended; `None` when it ended because
/// shutdown had begun.
fn server_failure(
    name: &str,
    r: std::result::Result<Result<()>, tokio::task::JoinError>,
    stop: &CancellationToken,
) -> Option<Error> {
    let err = match r {
        Ok(Ok(())) if stop.is_cancelled() => return None,
        Ok(Ok(())) => Error::Io(std::io::Error::other(format!(
            "{name} server stopped unexpectedly"
        ))),
        Ok(Err(e)) => e,
        Err(e) => Error::Io(std::io::Error::other(format!(
            "{name} server task failed: {e}"
        ))),
    };
    tracing::error!(server = name, error = %err, "server failed");
    Some(err)
}

/// Reloads `remote_write` on every SIGHUP until shutdown.
async fn reload_on_sighup(reloader: Arc<egress::Reloader>, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot install a SIGHUP handler; reload with POST /-/reload");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hup.recv() => {}
        }
        tracing::info!("SIGHUP: reloading remote_write");
        match reloader.reload().await {
            Ok(done) => tracing::info!("{done}"),
            Err(error) => tracing::error!(%error, "reload failed; the previous remote_write stays"),
        }
    }
}

/// Drains the recorder's histograms periodically.
async fn metrics_upkeep(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(metrics::UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}
