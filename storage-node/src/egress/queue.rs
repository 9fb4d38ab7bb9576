//! One `remote_write` endpoint's queue: reads the egress log from its
//! position in rounds, splits each round's samples over its shards by
//! series (so each series' samples stay in order), and sends every shard's
//! requests of at most `max_samples_per_send` samples at the same time,
//! each retried with backoff as [`super::client`] says. The position moves
//! past a round, and is stored, once every shard's requests ended (sent or
//! refused for good). The number of shards grows (doubling, up to
//! `max_shards`) while a full round of samples is still waiting after a
//! round, and shrinks by one (down to `min_shards`) while less than one
//! request's worth is. A `kill -9` in the middle of a round resends the
//! round's requests that had already been sent.
//!
//! A request waits at most `batch_send_deadline` to fill up (not at all
//! while the node flushes at shutdown). Labels of a
//! series are read from the index once, extended with the external labels,
//! relabeled by `write_relabel_configs` and kept encoded in the queue's
//! [`LabelArena`], found through a table indexed by series id (ids are
//! dense, and a scrape's series have neighbouring ids, so a round walks
//! both in order instead of probing a hash table per sample); a series
//! the rules drop is skipped (and counted as dropped by relabeling, as Prometheus does not
//! count it at all). Exemplars travel in the requests beside the samples
//! when the endpoint has `send_exemplars`, each in its series' TimeSeries,
//! and count toward `max_samples_per_send` as in Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use scrapegrid_common::config::RemoteWriteConfig;
use scrapegrid_common::relabel;
use scrapegrid_common::xorshift::XorShift;
use scrapegrid_common::Labels;
use tokio_util::sync::CancellationToken;

use super::client::{Client, Delivery};
use super::wire::{encode_labels, LabelArena, RequestBuilder, Span};
use super::Log;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::keys;
use crate::metrics;

/// Where a queue is: the next record, and the samples of it already sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub offset: u32,
}

impl Position {
    pub fn encode(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 12] = b.try_into().ok()?;
        Some(Self {
            seq: u64::from_be_bytes(b[..8].try_into().ok()?),
            offset: u32::from_be_bytes(b[8..].try_into().ok()?),
        })
    }
}

/// A series as this endpoint sees it.
#[derive(Clone, Copy, Debug, Default)]
enum Sent {
    /// Not looked up yet.
    #[default]
    Unknown,
    /// Relabeling drops it.
    Dropped,
    /// Its labels after external labels and relabeling.
    Labels(Span),
}

/// What the queue keeps per series id.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    sent: Sent,
    /// The request (its number) the series was last added to, and its
    /// index in that request.
    request: u64,
    index: u32,
}

pub struct Queue {
    log: Arc<Log>,
    db: Arc<Db>,
    name: String,
    config: RemoteWriteConfig,
    client: Client,
    external_labels: Labels,
    position: Position,
    shared: Arc<AtomicU64>,
    max_bytes: u64,
    /// Per series id.
    series: Vec<Slot>,
    arena: LabelArena,
    /// The number of the last request begun.
    requests: u64,
    /// Ids below this were created when last read: the table grows only
    /// to ids that exist (a corrupt record's cannot make it huge).
    ids_below: u64,
    shards: usize,
    rng: XorShift,
}

/// One request: its samples, its exemplars, its native histograms and the
/// newest sample timestamp.
struct Request {
    body: Vec<u8>,
    samples: usize,
    exemplars: usize,
    histograms: usize,
    newest_ms: i64,
}

/// One round: each shard's requests, and where the queue is after them.
struct Round {
    shards: Vec<Vec<Request>>,
    after: Position,
}

/// How a shard's requests ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivered {
    /// Each was sent or refused for good.
    Done,
    /// The queue went over its disk bound while they were retried: the
    /// round is dropped from its oldest records and built again.
    OverLimit,
    /// The node is stopping.
    Stopped,
}

impl Queue {
    pub(super) fn new(
        log: Arc<Log>,
        db: Arc<Db>,
        config: RemoteWriteConfig,
        external_labels: Labels,
        position: Position,
        max_bytes: u64,
    ) -> Result<Self> {
        let client = Client::new(config.clone()).map_err(Error::BadData)?;
        let name = config.queue_name();
        let shards = config.queue.min_shards.max(1);
        Ok(Self {
            shared: Arc::new(AtomicU64::new(position.seq)),
            log,
            db,
            name,
            config,
            client,
            external_labels,
            position,
            max_bytes,
            series: Vec::new(),
            arena: LabelArena::default(),
            requests: 0,
            ids_below: 0,
            shards,
            rng: XorShift::new(0x5eed ^ position.seq),
        })
    }

    /// The record before which this queue needs nothing.
    pub(super) fn shared_position(&self) -> Arc<AtomicU64> {
        self.shared.clone()
    }

    pub(super) async fn run(mut self, stop: CancellationToken) {
        let mut durable = self.log.durable();
        tracing::info!(queue = %self.name, url = %self.config.url, position = self.position.seq, "remote_write queue started");
        let max = self.config.queue.max_samples_per_send.max(1);
        let deadline = self.config.queue.batch_send_deadline;
        metrics::remote_write_shards(&self.name, &self.config.url, self.shards);
        // Since when samples have waited for a request to fill up.
        let mut waiting: Option<Instant> = None;
        let mut flushing = self.log.flushing();
        loop {
            self.enforce_limit();
            let end = *durable.borrow_and_update();
            let pending = self.log.bytes_from(self.position.seq);
            metrics::remote_write_pending(&self.name, &self.config.url, pending);
            let available = self.available(end, max);
            if available == 0 {
                waiting = None;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = durable.changed() => if r.is_err() { return },
                }
                continue;
            }
            let since = *waiting.get_or_insert_with(Instant::now);
            if available < max && since.elapsed() < deadline && !*flushing.borrow() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = durable.changed() => if r.is_err() { return },
                    _ = flushing.changed() => {}
                    _ = tokio::time::sleep_until((since + deadline).into()) => {}
                }
                continue;
            }
            waiting = None;
            let end = *durable.borrow();
            let round = match self.next_round(end, max) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(queue = %self.name, error = %e, "reading the remote_write queue failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(self.config.queue.max_backoff) => continue,
                    }
                }
            };
            match self.deliver(round.shards, &stop).await {
                Delivered::Stopped => return,
                // The next turn drops the oldest records.
                Delivered::OverLimit => continue,
                Delivered::Done => {
                    self.position = round.after;
                    self.save_position();
                }
            }
            self.reshard(*durable.borrow(), max);
        }
    }

    /// Items (samples and exemplars) durable past the position, counted up to `enough`.
    fn available(&self, end: u64, enough: usize) -> usize {
        let offset = self.position.offset as usize;
        let mut n = 0usize;
        let mut seq = self.position.seq;
        while seq < end && n < enough + offset {
            n += self.log.samples_of(seq).unwrap_or(0) as usize;
            seq += 1;
        }
        n.saturating_sub(offset)
    }

    /// More shards while a full round waits after a round, fewer while
    /// less than one request does.
    fn reshard(&mut self, end: u64, max: usize) {
        let q = &self.config.queue;
        let (lo, hi) = (q.min_shards.max(1), q.max_shards.max(1));
        let waiting = self.available(end, self.shards * max);
        let shards = if waiting >= self.shards * max {
            (self.shards * 2).min(hi)
        } else if waiting < max {
            self.shards.saturating_sub(1).max(lo)
        } else {
            self.shards
        }
        .clamp(lo.min(hi), hi);
        if shards != self.shards {
            tracing::debug!(queue = %self.name, from = self.shards, to = shards, waiting, "remote_write shards");
            self.shards = shards;
            metrics::remote_write_shards(&self.name, &self.config.url, shards);
        }
    }

    /// Drops the oldest records while more than `max_bytes` wait.
    fn enforce_limit(&mut self) -> bool {
        if self.max_bytes == 0 {
            return false;
        }
        let mut dropped = 0u64;
        let mut moved = false;
        while self.log.bytes_from(self.position.seq) > self.max_bytes {
            let Some(n) = self.log.samples_of(self.position.seq) else {
                break;
            };
            dropped += u64::from(n.saturating_sub(self.position.offset));
            self.position = Position {
                seq: self.position.seq + 1,
                offset: 0,
            };
            moved = true;
        }
        if moved {
            tracing::warn!(queue = %self.name, dropped, "remote_write queue over --remote-write.max-disk-usage-per-url; oldest samples dropped");
            metrics::remote_write_dropped(&self.name, &self.config.url, dropped);
            self.save_position();
        }
        moved
    }

    /// Builds the next round from the position: at most `max` samples per
    /// shard and request, `shards * max` in all, of records before `end`.
    fn next_round(&mut self, end: u64, max: usize) -> Result<Option<Round>> {
        let shards = self.shards;
        let limit = shards * max;
        let records = self.log.read(
            self.position.seq,
            end,
            limit + self.position.offset as usize,
        )?;
        let finish = |(req, _, newest): (RequestBuilder, u64, i64), arena: &LabelArena| Request {
            samples: req.samples(),
            exemplars: req.exemplars(),
            histograms: req.histograms(),
            body: req.encode(arena),
            newest_ms: newest,
        };
        let mut out: Vec<Vec<Request>> = (0..shards).map(|_| Vec::new()).collect();
        // Per shard: the request being filled, its number and its newest
        // timestamp.
        let mut open: Vec<(RequestBuilder, u64, i64)> =
            (0..shards).map(|_| self.fresh_request()).collect();
        let mut taken = 0usize;
        let mut after = self.position;
        'records: for (seq, entries) in records {
            let skip = if seq == self.position.seq {
                self.position.offset as usize
            } else {
                0
            };
            after = Position {
                seq,
                offset: skip as u32,
            };
            for (i, e) in entries.iter().enumerate().skip(skip) {
                if taken == limit {
                    break 'records;
                }
                taken += 1;
                after = Position {
                    seq,
                    offset: (i + 1) as u32,
                };
                if e.exemplar.is_some() && !self.config.send_exemplars
                    || e.histogram.is_some() && !self.config.send_native_histograms
                {
                    continue;
                }
                let shard = shard_of(e.id, shards);
                let b = &open[shard].0;
                let items = b.samples() + b.exemplars() + b.histograms();
                if items == max {
                    let fresh = self.fresh_request();
                    let full = std::mem::replace(&mut open[shard], fresh);
                    out[shard].push(finish(full, &self.arena));
                }
                let request = open[shard].1;
                let slot = self.slot(e.id)?;
                // A series already in the request is not added again.
                let k = if slot.request == request {
                    slot.index
                } else {
                    let Some(labels) = self.labels(e.id)? else {
                        continue;
                    };
                    let k = open[shard].0.add_series(labels);
                    let slot = &mut self.series[e.id as usize];
                    (slot.request, slot.index) = (request, k);
                    k
                };
                let (req, _, newest) = &mut open[shard];
                match (&e.exemplar, &e.histogram) {
                    (Some(labels), _) => {
                        let l = labels.iter().map(|l| (l.name.as_str(), l.value.as_str()));
                        req.push_exemplar(k, encode_labels(l), e.t, e.v);
                    }
                    (None, Some(h)) => {
                        req.push_histogram(k, h.clone());
                        *newest = (*newest).max(e.t);
                    }
                    (None, None) => {
                        req.push(k, e.t, e.v);
                        *newest = (*newest).max(e.t);
                    }
                }
            }
            if after.offset as usize == entries.len() {
                after = Position {
                    seq: seq + 1,
                    offset: 0,
                };
            }
        }
        if after == self.position {
            return Ok(None);
        }
        for (shard, o) in open.into_iter().enumerate() {
            if o.0.samples() + o.0.exemplars() + o.0.histograms() > 0 {
                out[shard].push(finish(o, &self.arena));
            }
        }
        Ok(Some(Round { shards: out, after }))
    }

    /// An empty request with the next number.
    fn fresh_request(&mut self) -> (RequestBuilder, u64, i64) {
        self.requests += 1;
        (RequestBuilder::default(), self.requests, i64::MIN)
    }

    /// The slot of series `id`, the table grown to hold it.
    fn slot(&mut self, id: u64) -> Result<Slot> {
        if id >= self.ids_below {
            // The writer stores the counter with the record that first
            // names a new id.
            self.ids_below = self
                .db
                .get_meta_u64(keys::META_NEXT_SERIES_ID)?
                .unwrap_or(keys::FIRST_SERIES_ID);
            if id >= self.ids_below {
                return Err(Error::Corrupt {
                    what: "egress series id",
                });
            }
        }
        let i = id as usize;
        if i >= self.series.len() {
            self.series.resize(i + 1, Slot::default());
        }
        Ok(self.series[i])
    }

    /// Where the labels series `id` is sent with are in the arena; `None`
    /// when relabeling drops it.
    fn labels(&mut self, id: u64) -> Result<Option<Span>> {
        match self.slot(id)?.sent {
            Sent::Labels(s) => return Ok(Some(s)),
            Sent::Dropped => return Ok(None),
            Sent::Unknown => {}
        }
        let Some(stored) = Index::new(&self.db).find_series_labels(id)? else {
            // Collected with its last sample: retention deleted what this
            // queue had not sent yet. Skipped as a dropped series.
            tracing::warn!(queue = %self.name, id, "remote_write queue names a series retention removed; its samples are dropped");
            self.series[id as usize].sent = Sent::Dropped;
            return Ok(None);
        };
        let mut b = stored.builder();
        for l in self.external_labels.iter() {
            if stored.get(&l.name).is_none() {
                b.set(l.name.as_str(), l.value.as_str());
            }
        }
        let sent = relabel::process(&mut b, &self.config.write_relabel_configs).then(|| {
            let labels = b.labels();
            self.arena
                .push(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
        });
        self.series[id as usize].sent = sent.map_or(Sent::Dropped, Sent::Labels);
        Ok(sent)
    }

    /// Sends every shard's requests, the shards at the same time.
    async fn deliver(&mut self, shards: Vec<Vec<Request>>, stop: &CancellationToken) -> Delivered {
        let start = self.position.seq;
        let seeds: Vec<u64> = shards.iter().map(|_| self.rng.next_u64()).collect();
        let this = &*self;
        let ended = futures::future::join_all(shards.into_iter().zip(seeds).map(
            |(requests, seed)| async move {
                let mut rng = XorShift::new(seed);
                for r in &requests {
                    let d = this.send(r, start, &mut rng, stop).await;
                    if d != Delivered::Done {
                        return d;
                    }
                }
                Delivered::Done
            },
        ))
        .await;
        if ended.contains(&Delivered::Stopped) {
            Delivered::Stopped
        } else if ended.contains(&Delivered::OverLimit) {
            Delivered::OverLimit
        } else {
            Delivered::Done
        }
    }

    /// Counts a request's exemplars and histograms as it `ended`.
    fn carried(&self, r: &Request, ended: metrics::Ended) {
        for (what, n) in [
            (metrics::Carried::Exemplars, r.exemplars),
            (metrics::Carried::Histograms, r.histograms),
        ] {
            metrics::remote_write_carried(&self.name, &self.config.url, what, ended, n);
        }
    }

    /// Sends one request until it ended (sent or refused for good).
    async fn send(
        &self,
        r: &Request,
        start: u64,
        rng: &mut XorShift,
        stop: &CancellationToken,
    ) -> Delivered {
        let delivery = self
            .client
            .deliver(&r.body, rng, stop, |error, backoff| {
                tracing::warn!(queue = %self.name, samples = r.samples, %error, ?backoff, "remote_write request failed; retrying");
                metrics::remote_write_retried(&self.name, &self.config.url, r.samples);
                self.carried(r, metrics::Ended::Retried);
                let waiting = self.log.bytes_from(start);
                metrics::remote_write_pending(&self.name, &self.config.url, waiting);
                self.max_bytes == 0 || waiting <= self.max_bytes
            })
            .await;
        tracing::debug!(queue = %self.name, samples = r.samples, ?delivery, "remote_write request");
        match delivery {
            Delivery::Sent(bytes) => {
                metrics::remote_write_sent(
                    &self.name,
                    &self.config.url,
                    r.samples,
                    bytes,
                    r.newest_ms,
                );
                self.carried(r, metrics::Ended::Sent);
                Delivered::Done
            }
            Delivery::Refused(error) => {
                tracing::error!(queue = %self.name, samples = r.samples, %error, "remote_write request refused; its samples are dropped");
                metrics::remote_write_failed(&self.name, &self.config.url, r.samples);
                self.carried(r, metrics::Ended::Failed);
                Delivered::Done
            }
            Delivery::Stopped => Delivered::Stopped,
            Delivery::Abandoned => Delivered::OverLimit,
        }
    }

    fn save_position(&mut self) {
        let res = self.db.raw().put_cf(
            self.db.cf(keys::CF_META),
            keys::egress_cursor_key(&self.name),
            self.position.encode(),
        );
        if let Err(e) = res {
            tracing::warn!(queue = %self.name, error = %e, "storing the remote_write queue position failed");
        }
        self.shared.store(self.position.seq, Ordering::Release);
        metrics::remote_write_pending(
            &self.name,
            &self.config.url,
            self.log.bytes_from(self.position.seq),
        );
    }
}

/// The shard series `id` is sent by: a multiplicative hash, so ids created
/// together spread.
fn shard_of(id: u64, shards: usize) -> usize {
    ((id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % shards as u64) as usize
}

#[cfg(test)]
mod tests;
