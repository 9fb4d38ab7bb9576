//! The ingest client's outbox: batches in order until the storage node
//! acks them, their sequence numbers (assigned at first send, never
//! changed), and the current stream's state: which series it defined
//! ([`encode`] sends labels the first time on a stream, references after)
//! and whether it defined enough beyond the live series to be replaced.
//! Past `memory_batches` it spills to disk ([`Spill`]), in order: once a
//! batch went to disk every later one does, until the disk is read up.

use std::collections::{HashMap, HashSet, VecDeque};

use scrapegrid_proto::v1 as pb;

use super::spill::{ReadBack, Spill, SPILLED_REF};
use super::{LIVE_HORIZON_MS, MAX_PENDING, ROTATE_FACTOR, ROTATE_FLOOR, WINDOW};
use crate::batch::{next_stream, ScrapeBatch, SeriesRef, TargetMetadata};
use crate::metrics;
use scrapegrid_proto::prost::Message as _;

/// A batch waiting for its ack, and its sequence number once sent.
pub(super) struct Pending {
    pub(super) seq: Option<u64>,
    pub(super) item: Item,
    /// The spill segment it was read back from.
    segment: Option<u64>,
}

/// A batch as scraped, or as read back from disk (whole: [`encode_whole`]).
pub(super) enum Item {
    Scraped(ScrapeBatch),
    Spilled(ReadBack),
}

impl Item {
    /// Its target and generation.
    pub(super) fn target(&self) -> (&str, u64) {
        match self {
            Item::Scraped(b) => (&b.target_id, b.generation),
            Item::Spilled(r) => (&r.target_id, r.generation),
        }
    }
}

/// Spilled batches read back into memory at most: enough to fill the
/// window twice, so memory holds encodings for what is about to go, not
/// the whole spill.
const READ_AHEAD: usize = 2 * WINDOW;

/// The batches not yet acked, in order, and what the current stream carried.
pub(super) struct Outbox {
    pub(super) pending: VecDeque<Pending>,
    /// How many batches `pending` holds before the rest goes to `spill`
    /// (or, without one, is dropped).
    memory_batches: usize,
    spill: Option<Spill>,
    /// How many of `pending` were read back from `spill`.
    read_back: usize,
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
        Self::new(MAX_PENDING, None)
    }
}

impl Outbox {
    pub(super) fn new(memory_batches: usize, spill: Option<Spill>) -> Self {
        let mut o = Self {
            pending: VecDeque::new(),
            memory_batches: memory_batches.max(1),
            spill,
            read_back: 0,
            next_seq: 0,
            sent: 0,
            stream: next_stream(),
            defined: 0,
            live: HashMap::new(),
            live_total: 0,
            newest_ms: 0,
            rotating: false,
        };
        // What an earlier process left on disk goes first.
        o.refill();
        o
    }

    /// Whether nothing waits, in memory or on disk.
    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.spill.as_ref().is_none_or(|s| s.unread() == 0)
    }

    /// The batches and samples a process that ends now loses: those held
    /// only in memory (one read back from disk stays there until acked).
    pub(super) fn memory_only(&self) -> (usize, usize) {
        self.pending
            .iter()
            .filter_map(|p| match &p.item {
                Item::Scraped(b) => Some(b.values.len()),
                Item::Spilled(_) => None,
            })
            .fold((0, 0), |(b, s), n| (b + 1, s + n))
    }

    /// Batches waiting on disk, not read back yet.
    pub(super) fn on_disk(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.unread())
    }

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
        if self.on_disk() > 0 || self.pending.len() >= self.memory_batches {
            match self.spill.as_mut() {
                Some(spill) => {
                    if let Err(error) = spill.append(&encode_whole(&batch)) {
                        tracing::error!(%error, "outbox: spilling a batch to disk failed; dropped");
                        ::metrics::counter!(metrics::BATCHES_DROPPED).increment(1);
                    }
                    self.refill();
                }
                None => ::metrics::counter!(metrics::BATCHES_DROPPED).increment(1),
            }
            return;
        }
        self.pending.push_back(Pending {
            seq: None,
            item: Item::Scraped(batch),
            segment: None,
        });
        ::metrics::gauge!(metrics::BATCHES_PENDING).set(self.pending.len() as f64);
    }

    /// Reads spilled batches back while memory has room.
    fn refill(&mut self) {
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        while self.pending.len() < self.memory_batches && self.read_back < READ_AHEAD {
            let Some(r) = spill.read() else {
                break;
            };
            self.read_back += 1;
            self.pending.push_back(Pending {
                seq: None,
                segment: Some(r.segment),
                item: Item::Spilled(r),
            });
        }
        ::metrics::gauge!(metrics::BATCHES_PENDING).set(self.pending.len() as f64);
    }

    /// Removes the oldest pending batch (acked, or durable already).
    fn pop_front(&mut self) {
        if let Some(p) = self.pending.pop_front() {
            if let Some(segment) = p.segment {
                self.read_back -= 1;
                if let Some(spill) = self.spill.as_mut() {
                    spill.acked(segment);
                }
            }
        }
    }

    /// Starts a new stream whose Welcome said `last` is durable.
    pub(super) fn on_welcome(&mut self, last: u64) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.seq.is_some_and(|s| s <= last))
        {
            self.pop_front();
        }
        self.refill();
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
        let batch = match &p.item {
            Item::Scraped(b) => {
                let batch = encode(seq, b, self.stream);
                self.defined += batch.new_series.len();
                batch
            }
            // Its definitions are its own (references above SPILLED_REF,
            // replaced by the next spilled batch that defines them): they
            // do not count toward a rotation.
            Item::Spilled(r) => {
                let decoded = pb::Batch::decode(r.bytes.as_slice()).unwrap_or_else(|error| {
                    // It decoded when read back: memory went bad.
                    tracing::error!(%error, target = %r.target_id, "outbox: a batch read back no longer decodes; sent empty");
                    pb::Batch {
                        target_id: r.target_id.clone(),
                        target_generation: r.generation,
                        ..Default::default()
                    }
                });
                pb::Batch {
                    sequence: seq,
                    ..decoded
                }
            }
        };
        Some(batch)
    }

    /// Removes everything up to `seq` (acks arrive in order).
    pub(super) fn on_ack(&mut self, seq: u64) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.seq.is_some_and(|s| s <= seq))
        {
            self.pop_front();
            self.sent = self.sent.saturating_sub(1);
        }
        self.refill();
        ::metrics::gauge!(metrics::BATCHES_PENDING).set(self.pending.len() as f64);
    }
}

/// Encodes a batch to be read back by any stream, of this process or a
/// later one: every series it uses defined in it, references above
/// [`SPILLED_REF`] (so they replace no live series' definition), metadata
/// whole.
fn encode_whole(b: &ScrapeBatch) -> pb::Batch {
    let spilled = |s: &SeriesRef| s.id | SPILLED_REF;
    let mut seen = HashSet::new();
    let new_series = used_series(b)
        .filter(|s| seen.insert(s.id))
        .map(|s| pb::SeriesDef {
            r#ref: spilled(s),
            labels: s.labels.to_proto(),
        })
        .collect();
    let metadata = b.metadata.as_deref().map(metadata_proto);
    columns(b, 0, new_series, spilled, metadata)
}

/// Encodes a batch for this stream: labels for series not yet defined on it
/// (those of samples, handed-over series and exemplars alike: an exemplar's
/// series normally has a sample in the same batch, but a definition never
/// depends on it).
fn encode(seq: u64, b: &ScrapeBatch, stream: u64) -> pb::Batch {
    let new_series = used_series(b)
        .filter(|s| s.mark_defined(stream))
        .map(|s| pb::SeriesDef {
            r#ref: s.id,
            labels: s.labels.to_proto(),
        })
        .collect();
    let metadata = b
        .metadata
        .as_deref()
        .filter(|m| m.mark_sent(stream))
        .map(metadata_proto);
    columns(b, seq, new_series, |s| s.id, metadata)
}

/// Every series a batch names: its samples', histograms', handed-over and
/// exemplars' (with repeats).
fn used_series(b: &ScrapeBatch) -> impl Iterator<Item = &SeriesRef> {
    b.series
        .iter()
        .chain(b.histograms.iter().map(|(s, _)| s))
        .chain(b.handover.as_deref().unwrap_or_default())
        .chain(b.exemplars.iter().map(|(s, _, _)| s))
}

/// The wire batch of `b` with these definitions, references and metadata.
fn columns(
    b: &ScrapeBatch,
    seq: u64,
    new_series: Vec<pb::SeriesDef>,
    r: impl Fn(&SeriesRef) -> u64,
    metadata: Option<pb::TargetMetadata>,
) -> pb::Batch {
    let handover = b.handover.as_deref().unwrap_or_default();
    let all_at_batch_time = b.timestamps_ms.iter().all(|t| *t == b.timestamp_ms);
    pb::Batch {
        sequence: seq,
        target_id: b.target_id.clone(),
        target_generation: b.generation,
        timestamp_ms: b.timestamp_ms,
        new_series,
        refs: b.series.iter().map(&r).collect(),
        values: b.values.clone(),
        timestamps_ms: if all_at_batch_time {
            Vec::new()
        } else {
            b.timestamps_ms.clone()
        },
        handover: b.handover.is_some(),
        handover_refs: handover.iter().map(&r).collect(),
        exemplars: b
            .exemplars
            .iter()
            .map(|(s, ts, e)| pb::Exemplar {
                r#ref: r(s),
                labels: e.labels.to_proto(),
                value: e.value,
                timestamp_ms: *ts,
                has_timestamp: e.timestamp_ms.is_some(),
            })
            .collect(),
        histogram_refs: b.histograms.iter().map(|(s, _)| r(s)).collect(),
        histograms: b.histograms.iter().map(|(_, h)| h.clone()).collect(),
        metadata,
    }
}

fn metadata_proto(m: &TargetMetadata) -> pb::TargetMetadata {
    pb::TargetMetadata {
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
    }
}
