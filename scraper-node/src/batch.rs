//! What a scrape produces: series with process-unique ids, and the batch of
//! samples of one scrape that travels to the storage node whole.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use scrapegrid_common::{CompactLabels, Labels};

use scrapegrid_proto::prometheus::Histogram;

use crate::textparse::Exemplar;

/// A series as the scraper knows it. The id is unique in this process and is
/// used as the stream-scoped series reference on the ingest stream. The
/// labels are kept compact: a scraper holds one set per series it scrapes.
#[derive(Debug)]
pub struct Series {
    pub id: u64,
    pub labels: CompactLabels,
    /// The scrape pass ([`next_pass`]) that last counted this series among
    /// its samples, so a target's scrape finds repeats and the series that
    /// went stale without a map of what it saw.
    seen_in: AtomicU64,
    /// The ingest stream that last carried this series' labels, so the
    /// outbox sends them once per stream without a set of what it defined
    /// (which would grow with series churn).
    defined_on: SentOn,
}

/// The ingest stream ([`next_stream`]) that last carried something (a
/// series' labels, a metadata snapshot). A process has one ingest stream
/// at a time, whose outbox alone marks, so relaxed ordering is enough.
#[derive(Debug, Default)]
pub struct SentOn(AtomicU64);

impl SentOn {
    /// Marks it as sent on stream `stream`; false when it already was.
    pub fn mark(&self, stream: u64) -> bool {
        self.0.swap(stream, Ordering::Relaxed) != stream
    }
}

pub type SeriesRef = Arc<Series>;

static NEXT_SERIES_ID: AtomicU64 = AtomicU64::new(1);
/// Scrape passes and ingest streams take their numbers from one counter;
/// 0 is never handed out, so a new series is marked by nothing.
static NEXT_MARK: AtomicU64 = AtomicU64::new(1);

/// Returns a scrape pass number no other scrape in this process has.
pub fn next_pass() -> u64 {
    NEXT_MARK.fetch_add(1, Ordering::Relaxed)
}

/// Returns an ingest stream number no other stream in this process has.
pub fn next_stream() -> u64 {
    NEXT_MARK.fetch_add(1, Ordering::Relaxed)
}

impl Series {
    pub fn new(labels: Labels) -> SeriesRef {
        Self::from_compact(CompactLabels::new(&labels))
    }

    pub fn from_compact(labels: CompactLabels) -> SeriesRef {
        Arc::new(Series {
            id: NEXT_SERIES_ID.fetch_add(1, Ordering::Relaxed),
            labels,
            seen_in: AtomicU64::new(0),
            defined_on: SentOn::default(),
        })
    }

    /// Marks the series' labels as sent on ingest stream `stream`; false
    /// when they already were.
    pub fn mark_defined(&self, stream: u64) -> bool {
        self.defined_on.mark(stream)
    }

    /// Marks the series as seen in `pass`; false when it already was.
    /// A series is only ever marked by the one target state holding it
    /// (a replaced loop's state is consumed by its successor), so relaxed
    /// ordering is enough.
    pub fn mark_seen(&self, pass: u64) -> bool {
        self.seen_in.swap(pass, Ordering::Relaxed) != pass
    }

    /// Whether the series was marked as seen in `pass`.
    pub fn seen_in(&self, pass: u64) -> bool {
        self.seen_in.load(Ordering::Relaxed) == pass
    }
}

/// All samples of one scrape (report series and stale markers included).
#[derive(Debug, Default)]
pub struct ScrapeBatch {
    pub target_id: String,
    pub generation: u64,
    /// Scrape start, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub series: Vec<SeriesRef>,
    pub values: Vec<f64>,
    pub timestamps_ms: Vec<i64>,
    /// On the last batch of a target that moves to another scraper: the
    /// series of its last successful scrape, for the next owner.
    pub handover: Option<Vec<SeriesRef>>,
    /// Exemplars of the scrape's samples, each with its series and its
    /// timestamp (the sample's when the exemplar has none).
    pub exemplars: Vec<(SeriesRef, i64, Exemplar)>,
    /// Native histogram samples, each with its series; the histogram's
    /// `timestamp` is the sample's.
    pub histograms: Vec<(SeriesRef, Histogram)>,
    /// The target's metadata after this scrape; sent when the stream has
    /// not carried this snapshot yet. `None` leaves it as it was.
    pub metadata: Option<Arc<TargetMetadata>>,
}

/// One metric family's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricMetadata {
    pub metric: Box<str>,
    /// Prometheus's type name (`unknown` for untyped).
    pub kind: &'static str,
    pub help: Box<str>,
    pub unit: Box<str>,
}

/// A snapshot of a target's metadata: shared by the batches of the scrapes
/// that left it unchanged, and sent once per ingest stream, as series
/// labels are ([`Series::mark_defined`]).
#[derive(Debug, Default)]
pub struct TargetMetadata {
    pub target_labels: Labels,
    /// Empty forgets the target's metadata on the storage node.
    pub metrics: Vec<MetricMetadata>,
    sent_on: SentOn,
}

impl TargetMetadata {
    pub fn new(target_labels: Labels, metrics: Vec<MetricMetadata>) -> Self {
        Self {
            target_labels,
            metrics,
            sent_on: SentOn::default(),
        }
    }

    /// Metadata that makes the storage node forget the target's (it left
    /// discovery, or moved away).
    pub fn forgotten(target_labels: &Labels) -> Arc<Self> {
        Arc::new(Self::new(target_labels.clone(), Vec::new()))
    }

    /// Marks the snapshot as sent on ingest stream `stream`; false when it
    /// already was.
    pub fn mark_sent(&self, stream: u64) -> bool {
        self.sent_on.mark(stream)
    }
}

impl ScrapeBatch {
    /// A batch with no samples that hands `series` over to the target's next
    /// owner; `timestamp_ms` is the time of the last scrape.
    pub fn handover(
        target_id: &str,
        generation: u64,
        timestamp_ms: i64,
        series: Vec<SeriesRef>,
    ) -> Self {
        Self {
            handover: Some(series),
            ..Self::new(target_id, generation, timestamp_ms)
        }
    }

    pub fn new(target_id: &str, generation: u64, timestamp_ms: i64) -> Self {
        Self {
            target_id: target_id.to_string(),
            generation,
            timestamp_ms,
            ..Default::default()
        }
    }

    pub fn push(&mut self, series: &SeriesRef, timestamp_ms: i64, value: f64) {
        self.series.push(series.clone());
        self.timestamps_ms.push(timestamp_ms);
        self.values.push(value);
    }

    /// Adds a native histogram sample of `series` (its `timestamp` set).
    pub fn push_histogram(&mut self, series: &SeriesRef, histogram: Histogram) {
        self.histograms.push((series.clone(), histogram));
    }

    /// Adds the exemplar of a sample of `series` at `sample_ts_ms`.
    pub fn push_exemplar(&mut self, series: &SeriesRef, sample_ts_ms: i64, exemplar: Exemplar) {
        let ts = exemplar.timestamp_ms.unwrap_or(sample_ts_ms);
        self.exemplars.push((series.clone(), ts, exemplar));
    }

    /// The float samples of the batch (its native histograms are in
    /// [`Self::histograms`]).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the batch has no sample at all, float or histogram.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.histograms.is_empty()
    }
}
