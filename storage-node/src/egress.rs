//! Remote write egress: every sample the node stores is sent to each
//! `remote_write` endpoint of the config (`--config`), through a queue on
//! disk that survives receiver outages, restarts and `kill -9`.
//!
//! Why here: the storage node is where a batch becomes durable and is
//! stored at most once (sequence numbers, fencing), so what it acked is
//! exactly what must reach the endpoints; a scraper would also send what
//! the node refused and resend what it already sent after a reconnect.
//!
//! How: the writer puts one [`record`] per write into the `egress` column
//! family, in the same RocksDB write batch as the samples, so a sample is
//! queued if and only if it is stored ([`Appender`]). After each WAL sync the
//! writer publishes how far the log is durable ([`Log`]). One [`queue`] per
//! endpoint reads the log from its own position (kept in the `meta` column
//! family), builds remote-write 1.0 requests ([`wire`]: protobuf with each
//! series' labels encoded once; [`client`]: snappy, HTTP),
//! and moves on only when a request succeeded or was refused for good, so
//! each endpoint gets every sample, in order per series. A restart resumes
//! from the positions; only the request in flight when the node died can
//! arrive twice. Records every queue has passed are deleted.
//!
//! [`metadata`] sends the targets' metadata every `send_interval`, beside
//! the samples. [`reload`] applies a changed `remote_write` without a
//! restart.
//!
//! The queue is bounded: past `--remote-write.max-disk-usage-per-url`
//! bytes of records waiting for one endpoint, the oldest are dropped for
//! that endpoint and counted
//! (`scrapegrid_storage_remote_write_dropped_samples_total`).

pub mod client;
pub mod metadata;
pub mod queue;
pub mod record;
pub mod reload;
pub mod wire;

pub use reload::{EgressSource, Reloader};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocksdb::{Direction, IteratorMode};
use scrapegrid_common::config::RemoteWriteConfig;
use scrapegrid_common::Labels;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{Db, DbBatch};
use crate::error::{Error, Result};
use crate::keys;

/// How often records every queue has sent are deleted.
const TRUNCATE_INTERVAL: Duration = Duration::from_secs(5);

/// What the egress needs besides the database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EgressConfig {
    /// The `remote_write` entries; none turns egress off (and deletes any
    /// queue left from an earlier config).
    pub remote_write: Vec<RemoteWriteConfig>,
    /// `global.external_labels`, added to each series sent (labels it
    /// already has win), as Prometheus does before `write_relabel_configs`.
    pub external_labels: Labels,
    /// Bytes of records one endpoint may have waiting before its oldest
    /// are dropped; 0 is no limit.
    pub max_disk_bytes_per_url: u64,
}

/// The records of the `egress` column family not yet sent everywhere: how
/// far they are durable, and each one's size, for the disk bound.
pub struct Log {
    db: Arc<Db>,
    durable: watch::Sender<u64>,
    /// Set at shutdown: queues send partial requests at once instead of
    /// waiting `batch_send_deadline` for them to fill.
    flushing: watch::Sender<bool>,
    backlog: Mutex<Backlog>,
}

/// Sizes of records `first..first + records.len()`.
#[derive(Debug, Default)]
struct Backlog {
    first: u64,
    /// Bytes of every record before `first` that this process saw.
    base: u64,
    /// Per record: the bytes of it and every record before it (from
    /// `base`), and its sample count.
    records: VecDeque<(u64, u32)>,
}

impl Backlog {
    fn end(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    fn cum_before(&self, seq: u64) -> u64 {
        if seq <= self.first {
            return self.base;
        }
        let i = (seq - self.first) as usize;
        match self.records.get(i - 1) {
            Some(&(cum, _)) => cum,
            None => self.records.back().map_or(self.base, |r| r.0),
        }
    }

    fn push(&mut self, bytes: u64, samples: u32) {
        let cum = self.records.back().map_or(self.base, |r| r.0) + bytes;
        self.records.push_back((cum, samples));
    }
}

impl Log {
    /// Reads the sizes of the records in the `egress` column family.
    /// Records start at `start` when the family is empty (the highest
    /// queue position kept, so a sequence is never reused).
    fn open(db: Arc<Db>, start: u64) -> Result<Self> {
        let mut backlog = Backlog {
            first: start,
            ..Backlog::default()
        };
        let mut first = true;
        for item in db
            .raw()
            .iterator_cf(db.cf(keys::CF_EGRESS), IteratorMode::Start)
        {
            let (k, v) = item?;
            let seq = record::seq_of(&k).ok_or(Error::Corrupt { what: "egress" })?;
            if first {
                backlog.first = seq;
                first = false;
            } else if seq != backlog.end() {
                return Err(Error::Corrupt { what: "egress" });
            }
            let samples = record::count(&v).ok_or(Error::Corrupt { what: "egress" })?;
            backlog.push(v.len() as u64, samples);
        }
        let end = backlog.end();
        Ok(Self {
            db,
            durable: watch::channel(end).0,
            flushing: watch::channel(false).0,
            backlog: Mutex::new(backlog),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence after the last record written.
    pub fn end(&self) -> u64 {
        self.lock().end()
    }

    /// Records before this are durable (synced); a queue reads no further.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Whether the node is flushing the queues (shutdown).
    pub fn flushing(&self) -> watch::Receiver<bool> {
        self.flushing.subscribe()
    }

    /// Bytes of the records from `seq` on.
    pub fn bytes_from(&self, seq: u64) -> u64 {
        let b = self.lock();
        b.records.back().map_or(b.base, |r| r.0) - b.cum_before(seq)
    }

    /// The items (samples and exemplars) of record `seq`, if it is still kept.
    pub fn samples_of(&self, seq: u64) -> Option<u32> {
        let b = self.lock();
        let i = usize::try_from(seq.checked_sub(b.first)?).ok()?;
        b.records.get(i).map(|r| r.1)
    }

    /// Reads records `from..to` (fewer when `limit` items are reached
    /// first) with their sequences.
    pub fn read(&self, from: u64, to: u64, limit: usize) -> Result<Vec<(u64, Vec<record::Entry>)>> {
        let mut out = Vec::new();
        let mut samples = 0;
        let start = record::key(from);
        let it = self.db.raw().iterator_cf(
            self.db.cf(keys::CF_EGRESS),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in it {
            let (k, v) = item?;
            let seq = record::seq_of(&k).ok_or(Error::Corrupt { what: "egress" })?;
            if seq >= to {
                break;
            }
            let entries = record::decode(&v).ok_or(Error::Corrupt { what: "egress" })?;
            samples += entries.len();
            out.push((seq, entries));
            if samples >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes the records before `seq`.
    fn truncate(&self, seq: u64) -> Result<()> {
        let first = self.lock().first;
        if seq <= first {
            return Ok(());
        }
        let mut wb = DbBatch::default();
        wb.delete_range_cf(
            self.db.cf(keys::CF_EGRESS),
            record::key(first),
            record::key(seq),
        );
        self.db.write_unsynced(wb)?;
        let mut b = self.lock();
        while b.first < seq {
            match b.records.pop_front() {
                Some((cum, _)) => b.base = cum,
                None => break,
            }
            b.first += 1;
        }
        Ok(())
    }
}

/// The writer's side of the log: the record of the write being built,
/// and the next sequence.
pub struct Appender {
    log: Arc<Log>,
    /// Whether some queue sends exemplars (else none are queued).
    with_exemplars: bool,
    with_histograms: bool,
    next: u64,
    record: record::RecordWriter,
    staged: Option<(u64, u32)>,
}

impl Appender {
    fn new(log: Arc<Log>, with_exemplars: bool, with_histograms: bool) -> Self {
        let next = log.end();
        Self {
            log,
            with_exemplars,
            with_histograms,
            next,
            record: record::RecordWriter::default(),
            staged: None,
        }
    }

    /// Starts the record of a new write.
    pub fn begin(&mut self) {
        self.record.clear();
        self.staged = None;
    }

    /// Adds a stored sample to the write's record.
    pub fn push(&mut self, id: u64, t: i64, v: f64) {
        self.record.push(id, t, v);
    }

    /// Adds a stored exemplar of series `id` to the write's record.
    pub fn push_exemplar(&mut self, id: u64, e: &crate::exemplars::Exemplar) {
        if self.with_exemplars {
            self.record.push_exemplar(id, e.ts_ms, e.value, &e.labels);
        }
    }

    /// Adds a stored native histogram of series `id` to the write's record.
    pub fn push_histogram(&mut self, id: u64, h: &scrapegrid_proto::prometheus::Histogram) {
        if self.with_histograms {
            self.record
                .push_histogram(id, &prost::Message::encode_to_vec(h));
        }
    }

    /// Puts the write's record (if it has samples or exemplars) into `wb`.
    pub fn stage(&mut self, db: &Db, wb: &mut DbBatch) {
        let samples = self.record.items();
        if samples == 0 {
            return;
        }
        let value = self.record.take();
        self.staged = Some((value.len() as u64, samples));
        wb.put_cf(db.cf(keys::CF_EGRESS), record::key(self.next), value);
    }

    /// The staged record was written.
    pub fn committed(&mut self) {
        if let Some((bytes, samples)) = self.staged.take() {
            self.log.lock().push(bytes, samples);
            self.next += 1;
        }
    }

    /// The sequence the next record gets.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The oldest record some queue has not sent yet (every record before
    /// it is sent or given up by every queue); [`Appender::next`] when
    /// none is left.
    pub fn unsent_from(&self) -> u64 {
        self.log.lock().first
    }

    /// Everything written so far is synced: queues may read it.
    pub fn publish(&self) {
        self.log.durable.send_if_modified(|end| {
            let changed = *end != self.next;
            *end = self.next;
            changed
        });
    }
}

/// The egress of a node: the writer's [`Appender`] and the tasks to run.
pub struct Egress {
    log: Arc<Log>,
    queues: Vec<queue::Queue>,
    with_exemplars: bool,
    with_histograms: bool,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("queues", &self.queues.len())
            .finish()
    }
}

impl Egress {
    /// Opens the log and the queues of `config`, deleting the positions of
    /// endpoints no longer configured. `None` when nothing is configured
    /// (then every record and position left is deleted).
    pub fn open(db: Arc<Db>, config: &EgressConfig) -> Result<Option<Self>> {
        let cf_meta = db.cf(keys::CF_META);
        let mut positions = Vec::new();
        for item in db.raw().iterator_cf(
            cf_meta,
            IteratorMode::From(keys::META_EGRESS_PREFIX, Direction::Forward),
        ) {
            let (k, v) = item?;
            let Some(name) = k.strip_prefix(keys::META_EGRESS_PREFIX) else {
                break;
            };
            let position = queue::Position::decode(&v).ok_or(Error::Corrupt { what: "egress" })?;
            positions.push((String::from_utf8_lossy(name).into_owned(), position));
        }
        let names: Vec<String> = config
            .remote_write
            .iter()
            .map(RemoteWriteConfig::queue_name)
            .collect();
        let mut wb = DbBatch::default();
        for (name, _) in &positions {
            if !names.contains(name) {
                tracing::info!(queue = %name, "remote_write queue no longer configured; its position is deleted");
                wb.delete_cf(cf_meta, keys::egress_cursor_key(name));
            }
        }
        let start = positions.iter().map(|(_, p)| p.seq).max().unwrap_or(0);
        if config.remote_write.is_empty() {
            wb.delete_range_cf(
                db.cf(keys::CF_EGRESS),
                record::key(0),
                record::key(u64::MAX),
            );
            db.write_unsynced(wb)?;
            return Ok(None);
        }
        db.write_unsynced(wb)?;
        let log = Arc::new(Log::open(db.clone(), start)?);
        let mut queues = Vec::new();
        for rw in &config.remote_write {
            let name = rw.queue_name();
            let position = positions
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| *p)
                // A new endpoint gets what is stored from now on.
                .unwrap_or(queue::Position {
                    seq: log.end(),
                    offset: 0,
                });
            queues.push(queue::Queue::new(
                log.clone(),
                db.clone(),
                rw.clone(),
                config.external_labels.clone(),
                position,
                config.max_disk_bytes_per_url,
            )?);
        }
        let with_exemplars = config.remote_write.iter().any(|r| r.send_exemplars);
        let with_histograms = config.remote_write.iter().any(|r| r.send_native_histograms);
        Ok(Some(Self {
            log,
            queues,
            with_exemplars,
            with_histograms,
        }))
    }

    /// The writer's side.
    pub fn appender(&self) -> Appender {
        Appender::new(self.log.clone(), self.with_exemplars, self.with_histograms)
    }

    /// Runs the queues and the truncation until `stop`; returns how far
    /// the queues are.
    pub fn spawn(self, tasks: &TaskTracker, stop: CancellationToken) -> Progress {
        let positions: Vec<_> = self.queues.iter().map(|q| q.shared_position()).collect();
        let progress = Progress {
            log: self.log.clone(),
            positions: positions.clone(),
        };
        for q in self.queues {
            tasks.spawn(q.run(stop.clone()));
        }
        let log = self.log;
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(TRUNCATE_INTERVAL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(min) = positions
                    .iter()
                    .map(|p| p.load(std::sync::atomic::Ordering::Acquire))
                    .min()
                else {
                    return;
                };
                let log = log.clone();
                let res = tokio::task::spawn_blocking(move || log.truncate(min)).await;
                if let Ok(Err(e)) = res {
                    tracing::warn!(error = %e, "deleting sent remote_write records failed");
                }
            }
        });
        progress
    }
}

/// How far the queues of a running egress are.
#[derive(Clone)]
pub struct Progress {
    log: Arc<Log>,
    positions: Vec<Arc<std::sync::atomic::AtomicU64>>,
}

impl Progress {
    /// Tells the queues to send what they hold without waiting for full
    /// requests.
    pub fn start_flush(&self) {
        self.log.flushing.send_replace(true);
    }

    /// Whether every queue has sent (or given up) every record written.
    pub fn sent_everything(&self) -> bool {
        let end = self.log.end();
        self.positions
            .iter()
            .all(|p| p.load(std::sync::atomic::Ordering::Acquire) >= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EgressConfig {
        let file = scrapegrid_common::config::load_str(
            "remote_write: [{url: 'http://127.0.0.1:9/w', name: a}, {url: 'http://127.0.0.1:9/x', name: b}]",
            "prometheus.yml",
        )
        .unwrap();
        EgressConfig {
            remote_write: file.remote_write,
            ..Default::default()
        }
    }

    /// Writes a record of `n` samples through the appender, as the writer does.
    fn append(db: &Db, a: &mut Appender, n: usize) {
        a.begin();
        for i in 0..n {
            a.push(i as u64 + 1, 1000 * i as i64, i as f64);
        }
        let mut wb = DbBatch::default();
        a.stage(db, &mut wb);
        db.write_unsynced(wb).unwrap();
        a.committed();
        a.publish();
    }

    fn save(db: &Db, name: &str, p: queue::Position) {
        db.raw()
            .put_cf(
                db.cf(keys::CF_META),
                keys::egress_cursor_key(name),
                p.encode(),
            )
            .unwrap();
    }

    #[test]
    fn log_counts_bytes_survives_reopen_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let egress = Egress::open(db.clone(), &config()).unwrap().unwrap();
        let log = egress.log.clone();
        let durable = log.durable();
        let mut a = egress.appender();
        // An empty write queues nothing.
        append(&db, &mut a, 0);
        assert_eq!(log.end(), 0);
        for n in [3, 5, 7] {
            append(&db, &mut a, n);
        }
        assert_eq!(log.end(), 3);
        assert_eq!(*durable.borrow(), 3);
        assert_eq!(log.samples_of(1), Some(5));
        let all = log.bytes_from(0);
        // Version, count, then id, time delta and 8 value bytes per sample
        // (deltas of 0, 1000, 1000 ms: 1, 2, 2 bytes).
        assert_eq!(all - log.bytes_from(1), 2 + 3 * 9 + 1 + 2 + 2);
        assert_eq!(log.bytes_from(3), 0);
        let read = log.read(1, 3, 1).unwrap();
        assert_eq!(read.len(), 1, "stops once the limit is reached");
        assert_eq!(read[0].0, 1);
        assert_eq!(read[0].1.len(), 5);
        assert_eq!(read[0].1[4].t, 4000);

        // Queue a is past record 1, queue b past record 2: after a reopen
        // the log is the same and truncation keeps what a still needs.
        save(&db, "a", queue::Position { seq: 1, offset: 2 });
        save(&db, "b", queue::Position { seq: 2, offset: 0 });
        drop((a, egress, log, durable));
        let db = Arc::into_inner(db).unwrap();
        drop(db);
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let egress = Egress::open(db.clone(), &config()).unwrap().unwrap();
        assert_eq!(egress.log.end(), 3);
        assert_eq!(egress.log.bytes_from(0), all);
        egress.log.truncate(1).unwrap();
        assert_eq!(egress.log.samples_of(0), None);
        assert_eq!(egress.log.samples_of(1), Some(5));
        assert_eq!(egress.log.read(0, 3, 100).unwrap()[0].0, 1);
        let mut a = egress.appender();
        append(&db, &mut a, 2);
        assert_eq!(egress.log.end(), 4);

        // Without remote_write, everything queued is deleted, and the
        // sequence does not restart below what a queue had reached.
        drop((a, egress));
        assert!(Egress::open(db.clone(), &EgressConfig::default())
            .unwrap()
            .is_none());
        let left = db
            .raw()
            .iterator_cf(db.cf(keys::CF_EGRESS), IteratorMode::Start)
            .count();
        assert_eq!(left, 0);
        let egress = Egress::open(db.clone(), &config()).unwrap().unwrap();
        assert_eq!(egress.log.end(), 0, "positions were deleted with the queue");
    }
}
