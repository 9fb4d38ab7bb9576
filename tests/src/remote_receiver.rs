//! A remote-write receiver on loopback that records every sample of every
//! request it accepts, for the tests that count what arrived: how many
//! times each sample came, and in which order per series. It answers with
//! the status a test sets (204 by default), so a test can take it "down"
//! (503), refuse (400) or throttle (429) while it keeps listening.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use prost::Message;
use scrapegrid_proto::prometheus as prom;

/// One recorded sample: the series (labels as `name="value"` pairs, sorted,
/// comma-separated), the timestamp and the value's bits.
pub type Recorded = (String, i64, u64);

#[derive(Default)]
struct Inner {
    status: u16,
    delay: std::time::Duration,
    samples: Vec<Recorded>,
    accepted_requests: u64,
    answered_requests: u64,
    headers: Option<HeaderMap>,
    /// Per accepted request that carried metadata: its entries, and
    /// whether it carried samples too.
    metadata: Vec<(Vec<String>, bool)>,
    /// Every exemplar: its series, labels, value bits and timestamp.
    exemplars: Vec<(String, String, u64, i64)>,
    /// Every native histogram, with its series.
    histograms: Vec<(String, prom::Histogram)>,
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/api/v1/write`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            status: 204,
            ..Inner::default()
        }));
        let app = axum::Router::new()
            .route("/api/v1/write", post(write))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/api/v1/write", listener.local_addr()?);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Ok(Self { url, inner, task })
    }

    /// Answers every later request with `status` (2xx: recorded).
    pub fn set_status(&self, status: u16) {
        self.inner.lock().unwrap().status = status;
    }

    /// Answers every later request only after `delay` (a slow endpoint).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// Every sample of every accepted request, in arrival order.
    pub fn samples(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().samples.clone()
    }

    /// Requests accepted, and requests answered at all.
    pub fn requests(&self) -> (u64, u64) {
        let i = self.inner.lock().unwrap();
        (i.accepted_requests, i.answered_requests)
    }

    /// The metadata entries of each accepted request that had any, as
    /// `metric type help unit` (type as the protobuf enum names it), and
    /// whether the request carried samples too.
    pub fn metadata_requests(&self) -> Vec<(Vec<String>, bool)> {
        self.inner.lock().unwrap().metadata.clone()
    }

    /// Every exemplar of every accepted request: its series (as
    /// [`series_key`]), its labels (the same form), value bits, timestamp.
    pub fn exemplars(&self) -> Vec<(String, String, u64, i64)> {
        self.inner.lock().unwrap().exemplars.clone()
    }

    /// Every native histogram of every accepted request, with its series
    /// (as [`series_key`]), in arrival order.
    pub fn histograms(&self) -> Vec<(String, prom::Histogram)> {
        self.inner.lock().unwrap().histograms.clone()
    }

    /// The headers of the last request.
    pub fn last_headers(&self) -> Option<HeaderMap> {
        self.inner.lock().unwrap().headers.clone()
    }

    /// How often each (series, timestamp) arrived, and the series whose
    /// timestamps did not arrive in increasing order.
    pub fn tally(&self) -> (BTreeMap<(String, i64), usize>, Vec<String>) {
        let mut count = BTreeMap::new();
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        let mut unordered = Vec::new();
        for (series, t, _) in self.samples() {
            *count.entry((series.clone(), t)).or_insert(0) += 1;
            let prev = last.insert(series.clone(), t);
            if prev.is_some_and(|p| p >= t) && !unordered.contains(&series) {
                unordered.push(series);
            }
        }
        (count, unordered)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Formats a label set as the receiver records it.
pub fn series_key(labels: &[prom::Label]) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    pairs.sort();
    pairs.join(",")
}

async fn write(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delay = inner.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut i = inner.lock().unwrap();
    i.answered_requests += 1;
    i.headers = Some(headers);
    let status = StatusCode::from_u16(i.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !status.is_success() {
        return status;
    }
    let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(req) = prom::WriteRequest::decode(raw.as_slice()) else {
        return StatusCode::BAD_REQUEST;
    };
    i.accepted_requests += 1;
    if !req.metadata.is_empty() {
        let entries = req
            .metadata
            .iter()
            .map(|m| {
                let kind = prom::metric_metadata::MetricType::try_from(m.r#type)
                    .map_or_else(|_| m.r#type.to_string(), |t| t.as_str_name().to_string());
                format!("{} {kind} {:?} {:?}", m.metric_family_name, m.help, m.unit)
            })
            .collect();
        i.metadata.push((entries, !req.timeseries.is_empty()));
    }
    for ts in req.timeseries {
        let key = series_key(&ts.labels);
        for e in &ts.exemplars {
            i.exemplars.push((
                key.clone(),
                series_key(&e.labels),
                e.value.to_bits(),
                e.timestamp,
            ));
        }
        for s in ts.samples {
            i.samples
                .push((key.clone(), s.timestamp, s.value.to_bits()));
        }
        for h in ts.histograms {
            i.histograms.push((key.clone(), h));
        }
    }
    status
}
