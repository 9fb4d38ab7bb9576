//! Prometheus remote write (`POST /api/v1/write`) and remote read
//! (`POST /api/v1/read`).
//!
//! Both bodies are the snappy *block* encoding (not the framed format) of a
//! protobuf of package `prometheus` (`proto/prometheus/`). A body is read up
//! to [`MAX_COMPRESSED_BYTES`], its announced decompressed length checked
//! against [`MAX_DECOMPRESSED_BYTES`] before anything is allocated, then it
//! is decoded and validated on the blocking pool into [`RemoteWrite`] or
//! [`ReadQuery`]s, so the rest of the code never sees a raw message.
//!
//! A write goes to the writer thread as one job
//! ([`crate::writer::WriterHandle::write`]):
//! all of its samples are stored, atomically, or none; the answer is 204 once
//! they are durable. Samples are admitted as scraped ones are (see
//! [`crate::writer`]); a resent identical sample is a no-op, but one out of
//! order, too old or a duplicate with another value fails the request with
//! 400, as in Prometheus. Malformed input is answered 400 (413 when too large),
//! which Prometheus does not retry; 503 when the writer cannot take writes,
//! which it retries. Stale markers pass through bit-exact. Native
//! histograms are taken as 2.42's write handler reads them (a float
//! histogram only when its float count or float zero count is positive)
//! and checked as its head checks them.
//!
//! A read answers every query with the raw samples of the matching series
//! in `[start, end]`, stale markers included (the reading Prometheus applies
//! staleness itself), native histograms with the buckets Prometheus reads
//! them back with ([`crate::samples::align_histogram_chunks`]), as one
//! snappy-compressed `ReadResponse`. Only the
//! SAMPLES response type is implemented; a client that accepts only
//! STREAMED_XOR_CHUNKS gets SAMPLES anyway, as from any Prometheus-compatible
//! server without streaming (Prometheus 2.42's own client sends no accepted
//! types, which means SAMPLES). Read hints are ignored.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use prost::Message;
use scrapegrid_common::{CompactLabels, Labels};
use scrapegrid_proto::prometheus as prom;

use super::ApiState;
use crate::batch::{BatchHistogram, Sample};
use crate::error::Error;
use crate::index::Matcher;
use crate::query::{DbSource, Series, SeriesSource};
use scrapegrid_common::histogram;
use scrapegrid_common::labels::is_valid_label_name;

/// Largest accepted request body, compressed.
pub const MAX_COMPRESSED_BYTES: usize = 32 << 20;
/// Largest accepted request body once decompressed.
pub const MAX_DECOMPRESSED_BYTES: usize = 32 << 20;
/// Samples one read request may return at most, as Prometheus's
/// `--storage.remote.read-sample-limit` default.
pub const MAX_READ_SAMPLES: usize = 50_000_000;

/// Why a remote write or read failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading request body: {0}")]
    Body(String),
    #[error("snappy decode: {0}")]
    Snappy(#[from] snap::Error),
    #[error("protobuf decode: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The request decoded but is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Storing or reading failed on our side.
    #[error(transparent)]
    Storage(#[from] Error),
    #[error("remote request timed out")]
    Timeout,
}

impl RemoteError {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(_) | Self::Snappy(_) | Self::Protobuf(_) | Self::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Storage(Error::BadData(_) | Error::InvalidMatchers(_)) => StatusCode::BAD_REQUEST,
            Self::Storage(
                Error::ShuttingDown | Error::WriterUnavailable(_) | Error::DiskFull(_),
            )
            | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for RemoteError {
    /// Answers in plain text, as Prometheus's own remote handlers do.
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "remote request failed");
        } else {
            tracing::debug!(error = %self, "remote request refused");
        }
        let body = format!("{self}\n");
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// Decompresses a snappy block of at most `max_decompressed` bytes and
/// decodes the protobuf in it.
pub fn decode<M: Message + Default>(
    compressed: &[u8],
    max_decompressed: usize,
) -> Result<M, RemoteError> {
    let len = snap::raw::decompress_len(compressed)?;
    if len > max_decompressed {
        return Err(RemoteError::TooLarge {
            limit: max_decompressed,
        });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(compressed)?;
    Ok(M::decode(raw.as_slice())?)
}

/// Encodes `msg` as a snappy block.
pub fn encode<M: Message>(msg: &M) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&msg.encode_to_vec())
        .expect("snappy compresses any input below 4 GiB")
}

/// A validated remote write: distinct label sets and samples pointing into
/// them, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWrite {
    pub series: Vec<Arc<CompactLabels>>,
    pub samples: Vec<Sample>,
    pub histograms: Vec<BatchHistogram>,
}

/// Validates one series' labels: valid, non-duplicate names and a
/// `__name__`. Labels with an empty value are absent, as in Prometheus.
fn series_labels(ts: &prom::TimeSeries) -> Result<Labels, String> {
    let mut names: Vec<&str> = Vec::with_capacity(ts.labels.len());
    for l in &ts.labels {
        if l.name.is_empty() {
            return Err("empty label name".into());
        }
        if !is_valid_label_name(&l.name) {
            return Err(format!("invalid label name {:?}", l.name));
        }
        names.push(&l.name);
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("duplicate label name {:?}", w[0]));
    }
    let labels = Labels::from_pairs(
        ts.labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str())),
    );
    if labels.get("__name__").is_none() {
        return Err("missing metric name (__name__ label)".into());
    }
    Ok(labels)
}

/// Renders a label set for error messages.
fn describe(ts: &prom::TimeSeries) -> String {
    let pairs: Vec<String> = ts
        .labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

impl TryFrom<prom::WriteRequest> for RemoteWrite {
    type Error = RemoteError;

    /// Refuses the whole request if any series is malformed or carries a
    /// native histogram Prometheus 2.42's head refuses. Series without
    /// samples are skipped; metadata and exemplars are ignored.
    fn try_from(req: prom::WriteRequest) -> Result<Self, RemoteError> {
        let mut series = Vec::new();
        let mut samples = Vec::new();
        let mut histograms = Vec::new();
        for ts in req.timeseries {
            let labels = series_labels(&ts)
                .map_err(|e| RemoteError::Invalid(format!("series {}: {e}", describe(&ts))))?;
            if ts.samples.is_empty() && ts.histograms.is_empty() {
                continue;
            }
            let idx = series.len() as u32;
            series.push(Arc::new(CompactLabels::new(&labels)));
            samples.extend(ts.samples.iter().map(|s| Sample {
                series: idx,
                ts_ms: s.timestamp,
                value: s.value,
            }));
            for h in &ts.histograms {
                let h = as_2_42_reads_it(h.clone());
                histogram::validate(&h).map_err(|e| {
                    RemoteError::Invalid(format!("series {}: histogram: {e}", describe(&ts)))
                })?;
                histograms.push(BatchHistogram {
                    series: idx,
                    histogram: h,
                });
            }
        }
        Ok(Self {
            series,
            samples,
            histograms,
        })
    }
}

/// A received histogram as 2.42's write handler reads it: a float one only
/// when its float count or float zero count is positive, else an integer
/// one (its integer fields, the float ones ignored).
fn as_2_42_reads_it(mut h: prom::Histogram) -> prom::Histogram {
    use prom::histogram::{Count, ZeroCount};
    let float_count = matches!(h.count, Some(Count::CountFloat(c)) if c > 0.0);
    let float_zero = matches!(h.zero_count, Some(ZeroCount::ZeroCountFloat(c)) if c > 0.0);
    if float_count || float_zero {
        if !matches!(h.count, Some(Count::CountFloat(_))) {
            h.count = Some(Count::CountFloat(0.0));
        }
        if !matches!(h.zero_count, Some(ZeroCount::ZeroCountFloat(_))) {
            h.zero_count = Some(ZeroCount::ZeroCountFloat(0.0));
        }
        h.positive_deltas.clear();
        h.negative_deltas.clear();
    } else {
        if !matches!(h.count, Some(Count::CountInt(_))) {
            h.count = Some(Count::CountInt(0));
        }
        if !matches!(h.zero_count, Some(ZeroCount::ZeroCountInt(_))) {
            h.zero_count = Some(ZeroCount::ZeroCountInt(0));
        }
        h.positive_counts.clear();
        h.negative_counts.clear();
    }
    h
}

/// One validated remote read query.
#[derive(Debug, Clone)]
pub struct ReadQuery {
    pub matchers: Vec<Matcher>,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Converts a wire matcher, compiling its regex.
fn matcher(m: &prom::LabelMatcher) -> Result<Matcher, RemoteError> {
    use prom::label_matcher::Type;
    let res = match Type::try_from(m.r#type) {
        Ok(Type::Eq) => Ok(Matcher::equal(&m.name, &m.value)),
        Ok(Type::Neq) => Ok(Matcher::not_equal(&m.name, &m.value)),
        Ok(Type::Re) => Matcher::regex(&m.name, &m.value),
        Ok(Type::Nre) => Matcher::not_regex(&m.name, &m.value),
        Err(_) => {
            return Err(RemoteError::Invalid(format!(
                "unknown matcher type {}",
                m.r#type
            )))
        }
    };
    Ok(res?)
}

impl TryFrom<&prom::Query> for ReadQuery {
    type Error = RemoteError;

    fn try_from(q: &prom::Query) -> Result<Self, RemoteError> {
        let matchers = q.matchers.iter().map(matcher).collect::<Result<_, _>>()?;
        Ok(Self {
            matchers,
            start_ms: q.start_timestamp_ms,
            end_ms: q.end_timestamp_ms,
        })
    }
}

/// Validates a read request into its queries.
pub fn read_queries(req: &prom::ReadRequest) -> Result<Vec<ReadQuery>, RemoteError> {
    req.queries.iter().map(ReadQuery::try_from).collect()
}

/// Returns the wire form of one series.
fn to_time_series(s: Series) -> prom::TimeSeries {
    prom::TimeSeries {
        labels: s
            .labels
            .iter()
            .map(|l| prom::Label {
                name: l.name.clone(),
                value: l.value.clone(),
            })
            .collect(),
        samples: s
            .samples
            .iter()
            .map(|p| prom::Sample {
                value: p.v,
                timestamp: p.t,
            })
            .collect(),
        exemplars: Vec::new(),
        histograms: s.histograms.into_iter().map(|h| h.h).collect(),
    }
}

/// Answers `queries` from `source`: the matching series with their samples
/// in each query's closed range, sorted by labels, stale markers included.
pub fn answer(
    source: &impl SeriesSource,
    queries: &[ReadQuery],
    max_samples: usize,
) -> Result<prom::ReadResponse, RemoteError> {
    let mut results = Vec::with_capacity(queries.len());
    let mut total = 0usize;
    for q in queries {
        // TODO: the limit is checked after a query's series are read; a
        // streaming select would stop reading at the limit instead.
        let series = source.select(&q.matchers, q.start_ms, q.end_ms)?;
        total += series
            .iter()
            .map(|s| s.samples.len() + s.histograms.len())
            .sum::<usize>();
        if total > max_samples {
            return Err(RemoteError::Invalid(format!(
                "exceeded sample limit ({max_samples})"
            )));
        }
        results.push(prom::QueryResult {
            timeseries: series.into_iter().map(to_time_series).collect(),
        });
    }
    Ok(prom::ReadResponse { results })
}

/// Reads the whole body, refusing more than [`MAX_COMPRESSED_BYTES`]
/// without buffering past the limit.
async fn read_body(body: Body) -> Result<Vec<u8>, RemoteError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RemoteError::Body(e.to_string()))?;
        if buf.len() + chunk.len() > MAX_COMPRESSED_BYTES {
            return Err(RemoteError::TooLarge {
                limit: MAX_COMPRESSED_BYTES,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Runs `f` on the blocking pool under the query timeout.
async fn blocking<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce() -> Result<T, RemoteError> + Send + 'static,
) -> Result<T, RemoteError> {
    match tokio::time::timeout(state.query_timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(res)) => res,
        Ok(Err(join)) => Err(Error::Io(std::io::Error::other(join)).into()),
        Err(_) => Err(RemoteError::Timeout),
    }
}

/// `POST /api/v1/write`.
pub async fn write(State(state): State<ApiState>, body: Body) -> Result<Response, RemoteError> {
    let compressed = read_body(body).await?;
    let req = blocking(&state, move || {
        let msg: prom::WriteRequest = decode(&compressed, MAX_DECOMPRESSED_BYTES)?;
        RemoteWrite::try_from(msg)
    })
    .await?;
    if !req.samples.is_empty() {
        state
            .writer
            .write(req.series, req.samples, req.histograms)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/read`.
pub async fn read(State(state): State<ApiState>, body: Body) -> Result<Response, RemoteError> {
    let compressed = read_body(body).await?;
    let db = state.db.clone();
    let encoded = blocking(&state, move || {
        let msg: prom::ReadRequest = decode(&compressed, MAX_DECOMPRESSED_BYTES)?;
        let queries = read_queries(&msg)?;
        Ok(encode(&answer(
            &DbSource::new(&db),
            &queries,
            MAX_READ_SAMPLES,
        )?))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-protobuf"),
            (header::CONTENT_ENCODING, "snappy"),
        ],
        encoded,
    )
        .into_response())
}

#[cfg(test)]
mod tests;
