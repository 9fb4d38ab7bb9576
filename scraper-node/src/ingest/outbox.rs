//! The ingest client's outbox: batches in order until the storage node
//! acks them, their sequence numbers (assigned at first send, never
//! changed), and the current stream's state: which series it defined
//! ([`encode`] sends labels the first time on a stream, references after)
//! and whether it defined enough beyond the live series to be replaced.

use std::collections::{HashMap, VecDeque};

use scrapegrid_proto::v1 as pb;

use super::{LIVE_HORIZON_MS, MAX_PENDING, ROTATE_FACTOR, ROTATE_FLOOR, WINDOW};
use crate::batch::{next_stream, ScrapeBatch};
use crate::metrics;

/// A batch waiting for its ack, and its sequence number once sent.
pub(super) struct Pending {
    pub(super) seq: Option<u64>,
    pub(super) batch: ScrapeBatch,
}

/// The batches not yet acked, in order, and what the current stream carried.
pub(super) struct Outbox {
    pub(super) pending: VecDeque<Pending>,
    /// Next sequence number; 0 until the first Welcome.
    pub(super) next_seq: u64,
    /// How many of `pending` (from the front) were sent on this stream.
    pub(super) sent: usize,
    /// This stream's number: a series marked with it has been defined on
    /// it ([`crate::batch::Series::mark_defined`]).
    pub(super) stream: u64,
    /// Series defined on this stream so far.
    pub(super) defined: usize,
    /// Each target's series in its latest batch and that batch's time (a
    /// target handed over is forgotten at once, one that stopped otherwise
    /// once [`LIVE_HORIZON_MS`] passed), and their sum.
    pub(super) live: HashMap<String, (usize, i64)>,
    pub(super) live_total: usize,
    /// The newest batch time seen.
    pub(super) newest_ms: i64,
    /// A rotation is due: nothing more is sent on this stream, and it is
    /// replaced once what was sent is acked.
    pub(super) rotating: bool,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            pending: VecDeque::new(),
            next_seq: 0,
            sent: 0,
            stream: next_stream(),
            defined: 0,
            live: HashMap::new(),
            live_total: 0,
            newest_ms: 0,
            rotating: false,
        }
    }
}

impl Outbox {
    pub(super) fn push(&mut self, batch: ScrapeBatch) {
        if batch.handover.is_some() {
            let gone = self.live.remove(&batch.target_id);
            self.live_total -= gone.map_or(0, |(n, _)| n);
        } else {
            let now = (
                batch.series.len() + batch.histograms.len(),
                batch.timestamp_ms,
            );
            self.newest_ms = self.newest_ms.max(now.1);
            self.live_total += now.0;
            // The target's key is allocated once, not per batch.
            match self.live.get_mut(&batch.target_id) {
                Some(entry) => self.live_total -= std::mem::replace(entry, now).0,
                None => {
                    self.live.insert(batch.target_id.clone(), now);
                }
            }
        }
        if self.pending.len() >= MAX_PENDING {
            ::metrics::counter!(metrics::BATCHES_DROPPED).increment(1);
            return;
        }
        self.pending.push_back(Pending { seq: None, batch });
        ::metrics::gauge!(metrics::BATCHES_PENDING).set(self.pending.len() as f64);
    }

    /// Starts a new stream whose Welcome said `last` is durable.
    pub(super) fn on_welcome(&mut self, last: u64) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.seq.is_some_and(|s| s <= last))
        {
            self.pending.pop_front();
        }
        self.next_seq = self.next_seq.max(last + 1);
        self.sent = 0;
        self.stream = next_stream();
        self.defined = 0;
        self.rotating = false;
    }

    /// Whether this stream defined enough series beyond the live ones to
    /// be replaced; once it did, nothing more is sent on it.
    pub(super) fn rotation_due(&mut self) -> bool {
        if self.rotating {
            return true;
        }
        let threshold = |live: usize| (ROTATE_FACTOR * live).max(ROTATE_FLOOR);
        if self.defined <= threshold(self.live_total) {
            return false;
        }
        // Targets that stopped long ago no longer count.
        let horizon = self.newest_ms - LIVE_HORIZON_MS;
        let mut gone = 0;
        self.live.retain(|_, (n, at)| {
            let keep = *at >= horizon;
            if !keep {
                gone += *n;
            }
            keep
        });
        self.live_total -= gone;
        self.rotating = self.defined > threshold(self.live_total);
        self.rotating
    }

    /// Returns the next batch to send, if the window allows.
    pub(super) fn next_to_send(&mut self) -> Option<pb::Batch> {
        if self.sent >= WINDOW || self.sent >= self.pending.len() || self.rotation_due() {
            return None;
        }
        let p = &mut self.pending[self.sent];
        let seq = *p.seq.get_or_insert_with(|| {
            let s = self.next_seq;
            self.next_seq += 1;
            s
        });
        self.sent += 1;
        let batch = encode(seq, &p.batch, self.stream);
        self.defined += batch.new_series.len();
        Some(batch)
    }

    /// Removes everything up to `seq` (acks arrive in order).
    pub(super) fn on_ack(&mut self, seq: u64) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.seq.is_some_and(|s| s <= seq))
        {
            self.pending.pop_front();
            self.sent = self.sent.saturating_sub(1);
        }
        ::metrics::gauge!(metrics::BATCHES_PENDING).set(self.pending.len() as f64);
    }
}

/// Encodes a batch for this stream: labels for series not yet defined on it
/// (those of samples, handed-over series and exemplars alike: an exemplar's
/// series normally has a sample in the same batch, but a definition never
/// depends on it).
fn encode(seq: u64, b: &ScrapeBatch, stream: u64) -> pb::Batch {
    let mut new_series = Vec::new();
    let handover = b.handover.as_deref().unwrap_or_default();
    let exemplar_series = b.exemplars.iter().map(|(s, _, _)| s);
    let histogram_series = b.histograms.iter().map(|(s, _)| s);
    for s in b
        .series
        .iter()
        .chain(histogram_series)
        .chain(handover)
        .chain(exemplar_series)
    {
        if s.mark_defined(stream) {
            new_series.push(pb::SeriesDef {
                r#ref: s.id,
                labels: s.labels.to_proto(),
            });
        }
    }
    let all_at_batch_time = b.timestamps_ms.iter().all(|t| *t == b.timestamp_ms);
    pb::Batch {
        sequence: seq,
        target_id: b.target_id.clone(),
        target_generation: b.generation,
        timestamp_ms: b.timestamp_ms,
        new_series,
        refs: b.series.iter().map(|s| s.id).collect(),
        values: b.values.clone(),
        timestamps_ms: if all_at_batch_time {
            Vec::new()
        } else {
            b.timestamps_ms.clone()
        },
        handover: b.handover.is_some(),
        handover_refs: handover.iter().map(|s| s.id).collect(),
        exemplars: b
            .exemplars
            .iter()
            .map(|(s, ts, e)| pb::Exemplar {
                r#ref: s.id,
                labels: e.labels.to_proto(),
                value: e.value,
                timestamp_ms: *ts,
                has_timestamp: e.timestamp_ms.is_some(),
            })
            .collect(),
        histogram_refs: b.histograms.iter().map(|(s, _)| s.id).collect(),
        histograms: b.histograms.iter().map(|(_, h)| h.clone()).collect(),
        metadata: b
            .metadata
            .as_ref()
            .filter(|m| m.mark_sent(stream))
            .map(|m| pb::TargetMetadata {
                target_labels: m.target_labels.to_proto(),
                metrics: m
                    .metrics
                    .iter()
                    .map(|e| pb::MetricMetadata {
                        metric: e.metric.to_string(),
                        r#type: e.kind.to_string(),
                        help: e.help.to_string(),
                        unit: e.unit.to_string(),
                    })
                    .collect(),
            }),
    }
}
