//! The storage node's own metrics, declared in one place, and the recorder
//! that renders them on `/metrics`.
//!
//! Names follow `scrapegrid_storage_<noun>_<unit>`. The recorder is process
//! global; [`handle`] installs it on first use, so several nodes in one test
//! process share it.
//!
//! Besides counters updated where things happen, it holds the HTTP
//! middleware that times every API request ([`track_http`]) and the gauges
//! of on-disk size that [`crate::retention`] refreshes from RocksDB
//! properties.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Batches received on ingest streams.
pub const BATCHES_RECEIVED: &str = "scrapegrid_storage_batches_received_total";
/// Batches written and made durable.
pub const BATCHES_APPLIED: &str = "scrapegrid_storage_batches_applied_total";
/// Batches acked as duplicates (sequence already applied).
pub const BATCHES_DUPLICATE: &str = "scrapegrid_storage_batches_duplicate_total";
/// Batches refused, labelled by `reason` (`fenced`, `invalid`).
pub const BATCHES_REFUSED: &str = "scrapegrid_storage_batches_refused_total";
/// Samples a `remote_write` queue sent (accepted by the endpoint), labelled
/// by `remote_name` and `url` as Prometheus's
/// `prometheus_remote_storage_samples_total`.
pub const REMOTE_WRITE_SAMPLES: &str = "scrapegrid_storage_remote_write_samples_total";
/// Samples an endpoint refused for good (a 4xx, or a 429 without
/// `retry_on_http_429`).
pub const REMOTE_WRITE_FAILED: &str = "scrapegrid_storage_remote_write_failed_samples_total";
/// Samples of requests that failed and were sent again.
pub const REMOTE_WRITE_RETRIED: &str = "scrapegrid_storage_remote_write_retried_samples_total";
/// Samples dropped unsent because the queue was over its disk bound.
pub const REMOTE_WRITE_DROPPED: &str = "scrapegrid_storage_remote_write_dropped_samples_total";
/// Compressed bytes of requests sent.
pub const REMOTE_WRITE_BYTES: &str = "scrapegrid_storage_remote_write_sent_bytes_total";
/// Bytes of egress records waiting for the queue.
pub const REMOTE_WRITE_PENDING_BYTES: &str = "scrapegrid_storage_remote_write_pending_bytes";
/// Shards of a `remote_write` queue sending at the same time.
pub const REMOTE_WRITE_SHARDS: &str = "scrapegrid_storage_remote_write_shards";
/// Timestamp of the newest sample sent, in seconds.
pub const REMOTE_WRITE_HIGHEST_SENT: &str =
    "scrapegrid_storage_remote_write_highest_sent_timestamp_seconds";
/// Exemplars a `remote_write` endpoint accepted (Prometheus's
/// `prometheus_remote_storage_exemplars_total`).
pub const REMOTE_WRITE_EXEMPLARS: &str = "scrapegrid_storage_remote_write_exemplars_total";
/// Exemplars an endpoint refused for good.
pub const REMOTE_WRITE_EXEMPLARS_FAILED: &str =
    "scrapegrid_storage_remote_write_failed_exemplars_total";
/// Exemplars of requests that failed and were sent again.
pub const REMOTE_WRITE_EXEMPLARS_RETRIED: &str =
    "scrapegrid_storage_remote_write_retried_exemplars_total";
/// Native histograms a `remote_write` endpoint accepted (Prometheus's
/// `prometheus_remote_storage_histograms_total`).
pub const REMOTE_WRITE_HISTOGRAMS: &str = "scrapegrid_storage_remote_write_histograms_total";
/// Native histograms an endpoint refused for good.
pub const REMOTE_WRITE_HISTOGRAMS_FAILED: &str =
    "scrapegrid_storage_remote_write_failed_histograms_total";
/// Native histograms of requests that failed and were sent again.
pub const REMOTE_WRITE_HISTOGRAMS_RETRIED: &str =
    "scrapegrid_storage_remote_write_retried_histograms_total";
/// Metadata entries a `remote_write` endpoint accepted (Prometheus's
/// `prometheus_remote_storage_metadata_total`).
pub const REMOTE_WRITE_METADATA: &str = "scrapegrid_storage_remote_write_metadata_total";
/// Metadata entries an endpoint refused for good.
pub const REMOTE_WRITE_METADATA_FAILED: &str =
    "scrapegrid_storage_remote_write_metadata_failed_total";
/// Metadata entries of requests that failed and were sent again.
pub const REMOTE_WRITE_METADATA_RETRIED: &str =
    "scrapegrid_storage_remote_write_metadata_retried_total";
/// Samples written.
pub const SAMPLES_APPENDED: &str = "scrapegrid_storage_samples_appended_total";
/// Native histogram samples written (Prometheus's
/// `prometheus_tsdb_head_samples_appended_total{type="histogram"}`).
pub const HISTOGRAMS_APPENDED: &str = "scrapegrid_storage_histograms_appended_total";
/// Series created (first sample of a new label set).
pub const SERIES_CREATED: &str = "scrapegrid_storage_series_created_total";
/// Duration of one WAL sync that makes a group of batches durable.
pub const WRITE_SYNC_SECONDS: &str = "scrapegrid_storage_write_sync_duration_seconds";
/// Batches written per WAL sync.
pub const WRITE_GROUP_BATCHES: &str = "scrapegrid_storage_write_group_batches";
/// Open ingest streams.
pub const INGEST_STREAMS: &str = "scrapegrid_storage_ingest_streams";
/// Series references the open ingest streams hold (each stream's table
/// lives as long as the stream).
pub const INGEST_STREAM_REFS: &str = "scrapegrid_storage_ingest_stream_refs";
/// Samples rejected while the rest of their batch was stored, labelled by
/// `reason` ([`REJECT_OUT_OF_ORDER`], [`REJECT_TOO_OLD`], [`REJECT_DUPLICATE`]).
pub const SAMPLES_REJECTED: &str = "scrapegrid_storage_samples_rejected_total";
/// Samples of a target's previous owner that arrived after its successor's
/// first batch and were written out of order rather than rejected.
pub const SAMPLES_BEFORE_SUCCESSOR: &str = "scrapegrid_storage_samples_before_successor_total";
/// Samples of a target's new owner written out of order because its old
/// owner, not yet fenced, had stored later scrapes first
/// ([`crate::writer::ownership`]).
pub const SAMPLES_AFTER_OVERRUN: &str = "scrapegrid_storage_samples_after_overrun_total";
/// Series with a sample in the last [`crate::writer::ACTIVE_SERIES_WINDOW`].
pub const ACTIVE_SERIES: &str = "scrapegrid_storage_active_series";
/// Bytes of live SST files, labelled by column family `cf`.
pub const SST_FILES_BYTES: &str = "scrapegrid_storage_sst_files_bytes";
/// Bytes of memtables, labelled by column family `cf`.
pub const MEMTABLES_BYTES: &str = "scrapegrid_storage_memtables_bytes";
/// SST files plus memtables of every column family: what `--retention.size`
/// limits.
pub const DISK_BYTES: &str = "scrapegrid_storage_disk_bytes";
/// Bytes available on the data directory's filesystem, as the writer's
/// free-space guard last read them (`--storage.min-free-disk-space`).
pub const DISK_AVAILABLE: &str = "scrapegrid_storage_disk_available_bytes";
/// Per-series ranges deleted by retention, labelled by `reason` (`time`,
/// `size`).
pub const RETENTION_DELETED_RANGES: &str = "scrapegrid_storage_retention_deleted_ranges_total";
/// Series removed from the index once retention left them no sample, as
/// Prometheus's `prometheus_tsdb_head_series_removed_total`.
pub const SERIES_REMOVED: &str = "scrapegrid_storage_series_removed_total";
/// Duration of one retention pass.
pub const RETENTION_SECONDS: &str = "scrapegrid_storage_retention_duration_seconds";
/// Retention passes that failed.
pub const RETENTION_FAILURES: &str = "scrapegrid_storage_retention_failures_total";
/// The oldest timestamp retention keeps, Unix seconds.
pub const RETENTION_CUTOFF: &str = "scrapegrid_storage_retention_cutoff_timestamp_seconds";
/// Duration of HTTP API requests, labelled by route `handler`, as
/// Prometheus's `prometheus_http_request_duration_seconds`.
pub const HTTP_REQUEST_SECONDS: &str = "scrapegrid_storage_http_request_duration_seconds";
/// Compaction rounds finished (the compactor moves head samples into chunks).
pub const COMPACTION_ROUNDS: &str = "scrapegrid_storage_compaction_rounds_total";
/// Head samples moved into chunks.
pub const COMPACTED_SAMPLES: &str = "scrapegrid_storage_compacted_samples_total";
/// How long each checkpoint of the open chunks took.
pub const CHECKPOINT_SECONDS: &str = "scrapegrid_storage_open_chunks_checkpoint_duration_seconds";
/// Bytes of all open chunks at the last checkpoint.
pub const OPEN_CHUNKS_BYTES: &str = "scrapegrid_storage_open_chunks_bytes";
/// Open chunks cut at a checkpoint because their series went idle.
pub const IDLE_CHUNKS_CUT: &str = "scrapegrid_storage_open_chunks_idle_cut_total";
/// How long opening the database and loading the writer's state took at
/// start.
pub const RECOVERY_SECONDS: &str = "scrapegrid_storage_recovery_duration_seconds";
/// Exemplars written.
pub const EXEMPLARS_APPENDED: &str = "scrapegrid_storage_exemplars_appended_total";
/// Exemplars dropped while the rest of their batch was stored, labelled by
/// `reason` ([`REJECT_OUT_OF_ORDER`], [`REJECT_LABEL_LENGTH`]); duplicates
/// of a series' newest exemplar are no-ops, not counted (as in Prometheus).
pub const EXEMPLARS_REJECTED: &str = "scrapegrid_storage_exemplars_rejected_total";
/// Exemplars stored, at most: retention deletions since the writer started
/// are not subtracted.
pub const EXEMPLARS_STORED: &str = "scrapegrid_storage_exemplars_stored";

/// Rejection reason: older than the series' newest sample.
pub const REJECT_OUT_OF_ORDER: &str = "out_of_order";
/// Rejection reason: older than the out-of-order window allows.
pub const REJECT_TOO_OLD: &str = "too_old";
/// Rejection reason: the newest timestamp again with another value.
pub const REJECT_DUPLICATE: &str = "duplicate";
/// Rejection reason: an exemplar's labels are longer than 128 characters.
pub const REJECT_LABEL_LENGTH: &str = "label_length";

const SYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
const GROUP_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
/// Prometheus's own HTTP request duration buckets.
const HTTP_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0];
const RETENTION_BUCKETS: [f64; 8] = [0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];

/// How often the recorder drains histogram data.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Returns the process-wide handle, installing the recorder (with this
/// node's histogram buckets) on first use; a process whose other node
/// installed it first shares that one (`telemetry::install_metrics`).
pub fn handle() -> PrometheusHandle {
    let handle = scrapegrid_common::telemetry::install_metrics(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(WRITE_SYNC_SECONDS.into()), &SYNC_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(WRITE_GROUP_BATCHES.into()), &GROUP_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_SECONDS.into()), &HTTP_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(RETENTION_SECONDS.into()),
                    &RETENTION_BUCKETS,
                )
            })
            .expect("bucket lists are not empty")
    });
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(describe);
    handle
}

fn describe() {
    describe_counter!(BATCHES_RECEIVED, "Batches received on ingest streams.");
    describe_counter!(BATCHES_APPLIED, "Batches written and made durable.");
    describe_counter!(BATCHES_DUPLICATE, "Batches acked as duplicates.");
    describe_counter!(BATCHES_REFUSED, "Batches refused, by reason.");
    describe_counter!(SAMPLES_APPENDED, "Samples written.");
    describe_counter!(HISTOGRAMS_APPENDED, "Native histogram samples written.");
    describe_counter!(
        REMOTE_WRITE_SAMPLES,
        "Samples a remote_write endpoint accepted."
    );
    describe_counter!(
        REMOTE_WRITE_FAILED,
        "Samples a remote_write endpoint refused for good (4xx)."
    );
    describe_counter!(
        REMOTE_WRITE_RETRIED,
        "Samples of remote_write requests that failed and were retried."
    );
    describe_counter!(
        REMOTE_WRITE_DROPPED,
        "Samples dropped unsent because a remote_write queue was over its disk bound."
    );
    describe_counter!(
        REMOTE_WRITE_BYTES,
        "Compressed bytes of remote_write requests sent."
    );
    describe_gauge!(
        REMOTE_WRITE_PENDING_BYTES,
        "Bytes of stored samples waiting for a remote_write endpoint."
    );
    describe_gauge!(
        REMOTE_WRITE_SHARDS,
        "Shards of a remote_write queue sending at the same time."
    );
    describe_gauge!(
        REMOTE_WRITE_HIGHEST_SENT,
        "Timestamp of the newest sample a remote_write endpoint accepted, in seconds."
    );
    describe_counter!(
        REMOTE_WRITE_EXEMPLARS,
        "Exemplars a remote_write endpoint accepted."
    );
    describe_counter!(
        REMOTE_WRITE_EXEMPLARS_FAILED,
        "Exemplars a remote_write endpoint refused for good."
    );
    describe_counter!(
        REMOTE_WRITE_EXEMPLARS_RETRIED,
        "Exemplars of remote_write requests that failed and were retried."
    );
    describe_counter!(
        REMOTE_WRITE_HISTOGRAMS,
        "Native histograms a remote_write endpoint accepted."
    );
    describe_counter!(
        REMOTE_WRITE_HISTOGRAMS_FAILED,
        "Native histograms a remote_write endpoint refused for good."
    );
    describe_counter!(
        REMOTE_WRITE_HISTOGRAMS_RETRIED,
        "Native histograms of remote_write requests that failed and were retried."
    );
    describe_counter!(
        REMOTE_WRITE_METADATA,
        "Metadata entries a remote_write endpoint accepted."
    );
    describe_counter!(
        REMOTE_WRITE_METADATA_FAILED,
        "Metadata entries a remote_write endpoint refused for good."
    );
    describe_counter!(
        REMOTE_WRITE_METADATA_RETRIED,
        "Metadata entries of remote_write requests that failed and were retried."
    );
    describe_counter!(SERIES_CREATED, "Series created.");
    describe_histogram!(
        WRITE_SYNC_SECONDS,
        metrics::Unit::Seconds,
        "Duration of the WAL sync that makes a group of batches durable."
    );
    describe_histogram!(WRITE_GROUP_BATCHES, "Batches made durable per WAL sync.");
    describe_gauge!(INGEST_STREAMS, "Open ingest streams.");
    describe_gauge!(
        INGEST_STREAM_REFS,
        "Series references the open ingest streams hold."
    );
    describe_histogram!(
        CHECKPOINT_SECONDS,
        metrics::Unit::Seconds,
        "Time each checkpoint of the open chunks took."
    );
    describe_gauge!(
        OPEN_CHUNKS_BYTES,
        metrics::Unit::Bytes,
        "Bytes of all open chunks at the last checkpoint."
    );
    describe_counter!(
        IDLE_CHUNKS_CUT,
        "Open chunks cut at a checkpoint because their series went idle."
    );
    describe_counter!(
        SAMPLES_REJECTED,
        "Samples rejected (the rest of their batch stored), by reason."
    );
    describe_counter!(
        SAMPLES_BEFORE_SUCCESSOR,
        "Samples of a moved target's previous owner written out of order after its successor's first batch."
    );
    describe_counter!(
        SAMPLES_AFTER_OVERRUN,
        "Samples of a moved target's new owner written out of order because the old owner, not yet fenced, stored later scrapes first."
    );
    describe_gauge!(ACTIVE_SERIES, "Series with a sample in the last hour.");
    describe_gauge!(
        SST_FILES_BYTES,
        metrics::Unit::Bytes,
        "Live SST file bytes per column family."
    );
    describe_gauge!(
        MEMTABLES_BYTES,
        metrics::Unit::Bytes,
        "Memtable bytes per column family."
    );
    describe_gauge!(
        DISK_BYTES,
        metrics::Unit::Bytes,
        "SST files plus memtables of all column families."
    );
    describe_gauge!(
        DISK_AVAILABLE,
        metrics::Unit::Bytes,
        "Bytes available on the data directory's filesystem; below --storage.min-free-disk-space writes are refused."
    );
    describe_counter!(
        RETENTION_DELETED_RANGES,
        "Per-series sample ranges deleted by retention, by reason."
    );
    describe_counter!(
        SERIES_REMOVED,
        "Series removed from the index once retention left them no sample."
    );
    describe_histogram!(
        RETENTION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one retention pass."
    );
    describe_counter!(RETENTION_FAILURES, "Retention passes that failed.");
    describe_counter!(COMPACTION_ROUNDS, "Compaction rounds finished.");
    describe_counter!(COMPACTED_SAMPLES, "Head samples moved into chunks.");
    describe_gauge!(
        RETENTION_CUTOFF,
        metrics::Unit::Seconds,
        "Oldest timestamp kept by the last retention pass."
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Duration of HTTP API requests, by handler."
    );
    describe_gauge!(
        RECOVERY_SECONDS,
        metrics::Unit::Seconds,
        "Time to open the database and load state at start."
    );
    describe_counter!(EXEMPLARS_APPENDED, "Exemplars written.");
    describe_counter!(
        EXEMPLARS_REJECTED,
        "Exemplars dropped (the rest of their batch stored), by reason."
    );
    describe_gauge!(
        EXEMPLARS_STORED,
        "Exemplars stored (an upper bound: retention deletions not subtracted)."
    );
    // Register the counters at zero so they are rendered before the first
    // batch, and rate() sees their start.
    for name in [
        BATCHES_RECEIVED,
        BATCHES_APPLIED,
        BATCHES_DUPLICATE,
        SAMPLES_APPENDED,
        HISTOGRAMS_APPENDED,
        SERIES_CREATED,
        EXEMPLARS_APPENDED,
    ] {
        counter!(name).absolute(0);
    }
    for reason in ["fenced", "invalid", "disk_full"] {
        counter!(BATCHES_REFUSED, "reason" => reason).absolute(0);
    }
    gauge!(INGEST_STREAMS).set(0.0);
    gauge!(INGEST_STREAM_REFS).set(0.0);
    for reason in [REJECT_OUT_OF_ORDER, REJECT_TOO_OLD, REJECT_DUPLICATE] {
        counter!(SAMPLES_REJECTED, "reason" => reason).absolute(0);
    }
    for reason in [REJECT_OUT_OF_ORDER, REJECT_LABEL_LENGTH] {
        counter!(EXEMPLARS_REJECTED, "reason" => reason).absolute(0);
    }
    for reason in ["time", "size"] {
        counter!(RETENTION_DELETED_RANGES, "reason" => reason).absolute(0);
    }
    counter!(RETENTION_FAILURES).absolute(0);
    counter!(SERIES_REMOVED).absolute(0);
    counter!(COMPACTION_ROUNDS).absolute(0);
    counter!(COMPACTED_SAMPLES).absolute(0);
    gauge!(ACTIVE_SERIES).set(0.0);
}

pub fn batch_received() {
    counter!(BATCHES_RECEIVED).increment(1);
}

pub fn histograms_appended(n: usize) {
    if n > 0 {
        counter!(HISTOGRAMS_APPENDED).increment(n as u64);
    }
}

pub fn batch_applied(samples: usize, series_created: usize) {
    counter!(BATCHES_APPLIED).increment(1);
    counter!(SAMPLES_APPENDED).increment(samples as u64);
    counter!(SERIES_CREATED).increment(series_created as u64);
}

/// The labels of a `remote_write` queue's series.
fn queue_labels(name: &str, url: &str) -> [(&'static str, String); 2] {
    [("remote_name", name.to_string()), ("url", url.to_string())]
}

pub fn remote_write_sent(name: &str, url: &str, samples: usize, bytes: usize, newest_ms: i64) {
    let labels = queue_labels(name, url);
    counter!(REMOTE_WRITE_SAMPLES, &labels).increment(samples as u64);
    counter!(REMOTE_WRITE_BYTES, &labels).increment(bytes as u64);
    if newest_ms != i64::MIN {
        gauge!(REMOTE_WRITE_HIGHEST_SENT, &labels).set(newest_ms as f64 / 1000.0);
    }
}

pub fn remote_write_failed(name: &str, url: &str, samples: usize) {
    let labels = queue_labels(name, url);
    counter!(REMOTE_WRITE_FAILED, &labels).increment(samples as u64);
}

pub fn remote_write_retried(name: &str, url: &str, samples: usize) {
    let labels = queue_labels(name, url);
    counter!(REMOTE_WRITE_RETRIED, &labels).increment(samples as u64);
}

pub fn remote_write_dropped(name: &str, url: &str, samples: u64) {
    let labels = queue_labels(name, url);
    counter!(REMOTE_WRITE_DROPPED, &labels).increment(samples);
}

/// What a `remote_write` request carried besides samples.
#[derive(Clone, Copy, Debug)]
pub enum Carried {
    Exemplars,
    Histograms,
    Metadata,
}

/// How a `remote_write` request ended, for its exemplars or metadata.
#[derive(Clone, Copy, Debug)]
pub enum Ended {
    Sent,
    Failed,
    Retried,
}

/// Counts the exemplars or metadata entries of a request by how it ended.
pub fn remote_write_carried(name: &str, url: &str, what: Carried, ended: Ended, n: usize) {
    if n == 0 {
        return;
    }
    let metric = match (what, ended) {
        (Carried::Exemplars, Ended::Sent) => REMOTE_WRITE_EXEMPLARS,
        (Carried::Exemplars, Ended::Failed) => REMOTE_WRITE_EXEMPLARS_FAILED,
        (Carried::Exemplars, Ended::Retried) => REMOTE_WRITE_EXEMPLARS_RETRIED,
        (Carried::Histograms, Ended::Sent) => REMOTE_WRITE_HISTOGRAMS,
        (Carried::Histograms, Ended::Failed) => REMOTE_WRITE_HISTOGRAMS_FAILED,
        (Carried::Histograms, Ended::Retried) => REMOTE_WRITE_HISTOGRAMS_RETRIED,
        (Carried::Metadata, Ended::Sent) => REMOTE_WRITE_METADATA,
        (Carried::Metadata, Ended::Failed) => REMOTE_WRITE_METADATA_FAILED,
        (Carried::Metadata, Ended::Retried) => REMOTE_WRITE_METADATA_RETRIED,
    };
    counter!(metric, &queue_labels(name, url)).increment(n as u64);
}

pub fn remote_write_shards(name: &str, url: &str, shards: usize) {
    let labels = queue_labels(name, url);
    gauge!(REMOTE_WRITE_SHARDS, &labels).set(shards as f64);
}

pub fn remote_write_pending(name: &str, url: &str, bytes: u64) {
    let labels = queue_labels(name, url);
    gauge!(REMOTE_WRITE_PENDING_BYTES, &labels).set(bytes as f64);
}

pub fn batch_duplicate() {
    counter!(BATCHES_DUPLICATE).increment(1);
}

/// Counts a refused batch; `reason` is `fenced`, `invalid`, `superseded`
/// or `disk_full`.
pub fn batch_refused(reason: &'static str) {
    counter!(BATCHES_REFUSED, "reason" => reason).increment(1);
}

pub fn write_synced(elapsed: Duration, batches: usize) {
    histogram!(WRITE_SYNC_SECONDS).record(elapsed.as_secs_f64());
    histogram!(WRITE_GROUP_BATCHES).record(batches as f64);
}

pub fn open_chunks_checkpointed(elapsed: Duration, done: &crate::open_chunks::Checkpoint) {
    histogram!(CHECKPOINT_SECONDS).record(elapsed.as_secs_f64());
    gauge!(OPEN_CHUNKS_BYTES).set(done.open_bytes as f64);
    counter!(IDLE_CHUNKS_CUT).increment(done.idle_cut as u64);
}

pub fn ingest_stream_opened() {
    gauge!(INGEST_STREAMS).increment(1.0);
}

pub fn ingest_stream_closed() {
    gauge!(INGEST_STREAMS).decrement(1.0);
}

/// A stream's reference table grew (or, when it ends, went) by `delta`.
pub fn ingest_stream_refs(delta: f64) {
    gauge!(INGEST_STREAM_REFS).increment(delta);
}

/// Counts `n` samples of a previous owner written out of order.
pub fn samples_before_successor(n: u64) {
    if n > 0 {
        counter!(SAMPLES_BEFORE_SUCCESSOR).increment(n);
    }
}

/// Counts `n` samples of a new owner written out of order behind an old
/// owner's overrun.
pub fn samples_after_overrun(n: u64) {
    if n > 0 {
        counter!(SAMPLES_AFTER_OVERRUN).increment(n);
    }
}

/// Counts `n` samples rejected for `reason` (one of the `REJECT_` names).
pub fn samples_rejected(reason: &'static str, n: u64) {
    if n > 0 {
        counter!(SAMPLES_REJECTED, "reason" => reason).increment(n);
    }
}

pub fn exemplars_appended(n: usize) {
    counter!(EXEMPLARS_APPENDED).increment(n as u64);
}

/// Counts `n` exemplars dropped for `reason` ([`REJECT_OUT_OF_ORDER`] or
/// [`REJECT_LABEL_LENGTH`]).
pub fn exemplars_rejected(reason: &'static str, n: u64) {
    if n > 0 {
        counter!(EXEMPLARS_REJECTED, "reason" => reason).increment(n);
    }
}

pub fn exemplars_stored(n: usize) {
    gauge!(EXEMPLARS_STORED).set(n as f64);
}

pub fn active_series(n: usize) {
    gauge!(ACTIVE_SERIES).set(n as f64);
}

/// Sets the size gauges of column family `cf`.
pub fn cf_size(cf: &'static str, sst_bytes: u64, memtable_bytes: u64) {
    gauge!(SST_FILES_BYTES, "cf" => cf).set(sst_bytes as f64);
    gauge!(MEMTABLES_BYTES, "cf" => cf).set(memtable_bytes as f64);
}

pub fn disk_bytes(total: u64) {
    gauge!(DISK_BYTES).set(total as f64);
}

pub fn disk_available(bytes: u64) {
    gauge!(DISK_AVAILABLE).set(bytes as f64);
}

/// Records one retention pass; `reason` is `time` or `size`.
pub fn retention_deleted(reason: &'static str, ranges: u64) {
    counter!(RETENTION_DELETED_RANGES, "reason" => reason).increment(ranges);
}

pub fn series_removed(n: usize) {
    counter!(SERIES_REMOVED).increment(n as u64);
}

pub fn retention_pass(elapsed: Duration, cutoff_ms: i64) {
    histogram!(RETENTION_SECONDS).record(elapsed.as_secs_f64());
    gauge!(RETENTION_CUTOFF).set(cutoff_ms as f64 / 1000.0);
}

pub fn retention_failed() {
    counter!(RETENTION_FAILURES).increment(1);
}

/// Records a finished compaction round that moved `samples` samples.
pub fn compaction_round(samples: usize) {
    counter!(COMPACTED_SAMPLES).increment(samples as u64);
    counter!(COMPACTION_ROUNDS).increment(1);
}

pub fn recovered(elapsed: Duration) {
    gauge!(RECOVERY_SECONDS).set(elapsed.as_secs_f64());
}

/// Axum middleware recording each request's duration under its route
/// pattern (`/api/v1/query`, `/api/v1/label/{name}/values`), so label
/// values stay bounded. Install with `route_layer` so unmatched paths are
/// not recorded.
pub async fn track_http(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let handler = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    histogram!(HTTP_REQUEST_SECONDS, "handler" => handler).record(start.elapsed().as_secs_f64());
    response
}
