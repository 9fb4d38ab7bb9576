//! One `remote_write` endpoint's queue: reads the egress log from its
//! position, sends requests of at most `max_samples_per_send` samples one
//! after the other (so each series' samples arrive in order), retries with
//! backoff as [`super::client`] says, and stores its position after every
//! request that ended.
//!
//! A request waits at most `batch_send_deadline` to fill up. Labels of a
//! series are read from the index once, extended with the external labels
//! and relabeled by `write_relabel_configs`; a series the rules drop is
//! skipped (and counted as dropped by relabeling, as Prometheus does not
//! count it at all).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;
use scrapegrid_common::config::RemoteWriteConfig;
use scrapegrid_common::relabel;
use scrapegrid_common::xorshift::XorShift;
use scrapegrid_common::Labels;
use scrapegrid_proto::prometheus as prom;
use tokio_util::sync::CancellationToken;

use super::client::{Client, Outcome};
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

/// A series as this endpoint sees it: its labels after external labels and
/// relabeling, or `None` when relabeling drops it.
type Sent = Option<Arc<Vec<prom::Label>>>;

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
    series: FxHashMap<u64, Sent>,
    rng: XorShift,
}

/// One request being sent: its samples and where the queue is after it.
struct Pending {
    request: prom::WriteRequest,
    samples: usize,
    after: Position,
    newest_ms: i64,
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
            series: FxHashMap::default(),
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
        // Since when samples have waited for a request to fill up.
        let mut waiting: Option<Instant> = None;
        loop {
            self.enforce_limit();
            let end = *durable.borrow_and_update();
            let available = self.available(end);
            if available == 0 {
                waiting = None;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = durable.changed() => if r.is_err() { return },
                }
                continue;
            }
            let since = *waiting.get_or_insert_with(Instant::now);
            if available < max as u64 && since.elapsed() < deadline {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = durable.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep_until((since + deadline).into()) => {}
                }
                continue;
            }
            waiting = None;
            let end = *durable.borrow();
            let pending = match self.next_request(end, max) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(queue = %self.name, error = %e, "reading the remote_write queue failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(self.config.queue.max_backoff) => continue,
                    }
                }
            };
            if !self.send(pending, &stop).await {
                return;
            }
        }
    }

    /// Samples durable past the position, counted up to a little more than
    /// one full request.
    fn available(&self, end: u64) -> u64 {
        let offset = u64::from(self.position.offset);
        let enough = self.config.queue.max_samples_per_send as u64 + offset;
        let mut n = 0u64;
        let mut seq = self.position.seq;
        while seq < end && n < enough {
            n += u64::from(self.log.samples_of(seq).unwrap_or(0));
            seq += 1;
        }
        n.saturating_sub(offset)
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

    /// Builds the next request from the position: at most `max` samples of
    /// records before `end`.
    fn next_request(&mut self, end: u64, max: usize) -> Result<Option<Pending>> {
        let records = self
            .log
            .read(self.position.seq, end, max + self.position.offset as usize)?;
        let mut request = prom::WriteRequest::default();
        let mut index_of: FxHashMap<u64, usize> = FxHashMap::default();
        let mut taken = 0usize;
        let mut newest_ms = i64::MIN;
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
                if taken == max {
                    after = Position {
                        seq,
                        offset: i as u32,
                    };
                    break 'records;
                }
                taken += 1;
                after = Position {
                    seq,
                    offset: (i + 1) as u32,
                };
                let Some(labels) = self.labels(e.id)? else {
                    continue;
                };
                let k = *index_of.entry(e.id).or_insert_with(|| {
                    request.timeseries.push(prom::TimeSeries {
                        labels: labels.as_ref().clone(),
                        ..Default::default()
                    });
                    request.timeseries.len() - 1
                });
                request.timeseries[k].samples.push(prom::Sample {
                    value: e.v,
                    timestamp: e.t,
                });
                newest_ms = newest_ms.max(e.t);
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
        Ok(Some(Pending {
            samples: request.timeseries.iter().map(|s| s.samples.len()).sum(),
            request,
            after,
            newest_ms,
        }))
    }

    /// The labels series `id` is sent with.
    fn labels(&mut self, id: u64) -> Result<Sent> {
        if let Some(s) = self.series.get(&id) {
            return Ok(s.clone());
        }
        let stored = Index::new(&self.db).series_labels(id)?;
        let mut b = stored.builder();
        for l in self.external_labels.iter() {
            if stored.get(&l.name).is_none() {
                b.set(l.name.as_str(), l.value.as_str());
            }
        }
        let sent = relabel::process(&mut b, &self.config.write_relabel_configs).then(|| {
            Arc::new(
                b.labels()
                    .iter()
                    .map(|l| prom::Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
            )
        });
        self.series.insert(id, sent.clone());
        Ok(sent)
    }

    /// Sends until the request ended (sent or refused for good); `false`
    /// when `stop` came first.
    async fn send(&mut self, pending: Pending, stop: &CancellationToken) -> bool {
        let (min_backoff, max_backoff) =
            (self.config.queue.min_backoff, self.config.queue.max_backoff);
        let mut backoff = min_backoff;
        let started = self.position;
        loop {
            if pending.samples == 0 {
                break;
            }
            let sending = self.client.send(&pending.request);
            let (outcome, bytes) = tokio::select! {
                _ = stop.cancelled() => return false,
                r = sending => r,
            };
            tracing::debug!(queue = %self.name, samples = pending.samples, ?outcome, bytes, "remote_write request");
            match outcome {
                Outcome::Sent => {
                    metrics::remote_write_sent(
                        &self.name,
                        &self.config.url,
                        pending.samples,
                        bytes,
                        pending.newest_ms,
                    );
                    break;
                }
                Outcome::Refused(error) => {
                    tracing::error!(queue = %self.name, samples = pending.samples, %error, "remote_write request refused; its samples are dropped");
                    metrics::remote_write_failed(&self.name, &self.config.url, pending.samples);
                    break;
                }
                Outcome::Retry { error, retry_after } => {
                    tracing::warn!(queue = %self.name, samples = pending.samples, %error, ?backoff, "remote_write request failed; retrying");
                    metrics::remote_write_retried(&self.name, &self.config.url, pending.samples);
                    let jitter = backoff.mul_f64(self.rng.unit() * 0.25);
                    let wait = (backoff + jitter).max(retry_after.unwrap_or_default());
                    tokio::select! {
                        _ = stop.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(max_backoff);
                    // The disk bound may have dropped what is in flight.
                    if self.enforce_limit() && self.position != started {
                        return true;
                    }
                }
            }
        }
        self.position = pending.after;
        self.save_position();
        true
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
