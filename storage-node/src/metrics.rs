//! The storage node's own metrics, declared in one place, and the recorder
//! that renders them on `/metrics`.
//!
//! Names follow `scrapegrid_storage_<noun>_<unit>`. The recorder is process
//! global; [`handle`] installs it on first use, so several nodes in one test
//! process share it.

use std::sync::OnceLock;
use std::time::Duration;

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
/// Samples written.
pub const SAMPLES_APPENDED: &str = "scrapegrid_storage_samples_appended_total";
/// Series created (first sample of a new label set).
pub const SERIES_CREATED: &str = "scrapegrid_storage_series_created_total";
/// Duration of one WAL sync that makes a group of batches durable.
pub const WRITE_SYNC_SECONDS: &str = "scrapegrid_storage_write_sync_duration_seconds";
/// Batches written per WAL sync.
pub const WRITE_GROUP_BATCHES: &str = "scrapegrid_storage_write_group_batches";
/// Open ingest streams.
pub const INGEST_STREAMS: &str = "scrapegrid_storage_ingest_streams";

const SYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
const GROUP_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// How often the recorder drains histogram data.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Returns the process-wide handle, installing the recorder on first use.
/// When another recorder is installed already, the handle renders only
/// what was recorded before (nothing); the node keeps working.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(WRITE_SYNC_SECONDS.into()), &SYNC_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WRITE_GROUP_BATCHES.into()),
                        &GROUP_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is installed already; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(BATCHES_RECEIVED, "Batches received on ingest streams.");
    describe_counter!(BATCHES_APPLIED, "Batches written and made durable.");
    describe_counter!(BATCHES_DUPLICATE, "Batches acked as duplicates.");
    describe_counter!(BATCHES_REFUSED, "Batches refused, by reason.");
    describe_counter!(SAMPLES_APPENDED, "Samples written.");
    describe_counter!(SERIES_CREATED, "Series created.");
    describe_histogram!(
        WRITE_SYNC_SECONDS,
        metrics::Unit::Seconds,
        "Duration of the WAL sync that makes a group of batches durable."
    );
    describe_histogram!(WRITE_GROUP_BATCHES, "Batches made durable per WAL sync.");
    describe_gauge!(INGEST_STREAMS, "Open ingest streams.");
    // Register the counters at zero so they are rendered before the first
    // batch, and rate() sees their start.
    for name in [
        BATCHES_RECEIVED,
        BATCHES_APPLIED,
        BATCHES_DUPLICATE,
        SAMPLES_APPENDED,
        SERIES_CREATED,
    ] {
        counter!(name).absolute(0);
    }
    for reason in ["fenced", "invalid"] {
        counter!(BATCHES_REFUSED, "reason" => reason).absolute(0);
    }
    gauge!(INGEST_STREAMS).set(0.0);
}

pub fn batch_received() {
    counter!(BATCHES_RECEIVED).increment(1);
}

pub fn batch_applied(samples: usize, series_created: usize) {
    counter!(BATCHES_APPLIED).increment(1);
    counter!(SAMPLES_APPENDED).increment(samples as u64);
    counter!(SERIES_CREATED).increment(series_created as u64);
}

pub fn batch_duplicate() {
    counter!(BATCHES_DUPLICATE).increment(1);
}

/// Counts a refused batch; `reason` is `fenced` or `invalid`.
pub fn batch_refused(reason: &'static str) {
    counter!(BATCHES_REFUSED, "reason" => reason).increment(1);
}

pub fn write_synced(elapsed: Duration, batches: usize) {
    histogram!(WRITE_SYNC_SECONDS).record(elapsed.as_secs_f64());
    histogram!(WRITE_GROUP_BATCHES).record(batches as f64);
}

pub fn ingest_stream_opened() {
    gauge!(INGEST_STREAMS).increment(1.0);
}

pub fn ingest_stream_closed() {
    gauge!(INGEST_STREAMS).decrement(1.0);
}
