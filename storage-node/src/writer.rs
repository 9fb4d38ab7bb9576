//! The writer thread: the only code that writes to RocksDB.
//!
//! Ingest streams send [`Job`]s through a [`WriterHandle`] over a bounded
//! channel; when it is full, `send` waits, which stops the stream from
//! reading more requests (backpressure reaches the scraper through gRPC flow
//! control). The thread takes one job, then everything already queued (up to
//! [`MAX_GROUP`]), writes each batch as its own `WriteBatch` without sync,
//! then fsyncs the WAL once for the group and only then replies, in order.
//! So an ack always follows durability, and `kill -9` after an ack loses
//! nothing.
//!
//! The thread owns the ingest state: the next series id, the labels -> series
//! id cache, and the last applied sequence per scraper and the generation
//! fence per target ([`ownership`], read lazily from `meta`). Being single-threaded,
//! duplicate and fencing checks need no locks. If a write or a WAL sync
//! fails, the thread refuses everything after it: what it wrote may not be
//! durable, a later sequence must not be applied past a lost one, and only a
//! restart (WAL recovery) tells what is.
//!
//! Samples are admitted as Prometheus's head appender admits them
//! (`tsdb/head_append.go`, `memSeries.appendable`): per series the thread
//! keeps the newest stored timestamp and value ([`Head`]), loaded lazily
//! from the database on first use after a restart. A sample older than the
//! newest is rejected as out of order (or, with an out-of-order time window,
//! accepted when within the window of the newest timestamp written, else
//! rejected as too old); a sample at the newest timestamp is a no-op when
//! its value is bit-identical (stale markers included) and rejected as a
//! duplicate otherwise. Rejected samples are counted
//! ([`metrics::samples_rejected`]) and do not fail the batch: the accepted
//! rest is written as the batch's one `WriteBatch`, as Prometheus commits
//! the rest of a scrape. Samples are checked in batch order, each against
//! the state the earlier ones left, as Prometheus's `Commit` re-checks.
//!
//! A batch's exemplars are admitted the same way, by Prometheus's exemplar
//! rules ([`crate::exemplars`]), against state the thread keeps
//! ([`exemplar_buffer`]): accepted ones and the deletion of the oldest
//! beyond [`WriterOptions::max_exemplars`] go into the batch's `WriteBatch`,
//! dropped ones are counted and do not fail the batch.
//!
//! Files: this one holds the thread, its jobs and the batch path;
//! [`admission`] the sample rules; [`resolve`] the series ids a write
//! names (found, created, learned by streams); [`series_ids`] the labels
//! -> id map; [`exemplar_buffer`] the exemplar state;
//! [`ownership`] fencing and handover records; [`disk_space`] the guard
//! that refuses writes before the disk is full; [`incarnations`] which
//! process owns each scraper id's sequences; [`unsequenced`] remote
//! writes (no sequence, no fencing, all or nothing); [`collect`] the
//! removal of series retention left without samples; `tests` the tests, by
//! topic.

use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::DbBatch;
use rocksdb::WriteBatch;
use scrapegrid_common::clock::now_ms;
use scrapegrid_common::CompactLabels;
use scrapegrid_proto::v1 as pb;
use tokio::sync::{mpsc, oneshot};

use crate::batch::{Batch, BatchHistogram, Sample, SeriesRef, StreamSeries};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::{index, keys, metrics, samples};

mod admission;
mod collect;
pub mod disk_space;
mod egress;
mod exemplar_buffer;
mod incarnations;
pub mod ownership;
mod resolve;
pub use egress::EgressOpener;
mod series_ids;
mod unsequenced;

use exemplar_buffer::ExemplarBuffer;
use ownership::{Fence, Handover, LateWrites};
use series_ids::SeriesIds;

pub use admission::{check, Head, Verdict};

/// Batches written per WAL sync at most.
pub const MAX_GROUP: usize = 256;
/// Jobs queued for the writer at most.
pub const QUEUE_CAPACITY: usize = 1024;
/// A series counts as active while its newest sample is at most this old;
/// older [`Head`]s are dropped from memory (and reloaded when needed).
pub const ACTIVE_SERIES_WINDOW: Duration = Duration::from_secs(3600);
/// How often the writer drops inactive [`Head`]s.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// How the writer admits samples and exemplars.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Samples older than a series' newest sample are accepted when at most
    /// this much older than the newest timestamp written
    /// (`--storage.out-of-order-time-window`); zero disables it.
    pub out_of_order_time_window: Duration,
    /// Exemplars stored at most (oldest arrivals deleted first), as
    /// Prometheus's `storage.exemplars.max_exemplars`; zero stores none.
    pub max_exemplars: usize,
    /// Whether samples and native histograms are stored; without, only
    /// the `remote_write` queue gets them (direct mode without a local
    /// copy, as Prometheus's agent mode).
    pub store_samples: bool,
    /// Writes are refused while less than this is available on the
    /// database's filesystem ([`disk_space`], `--storage.min-free-disk-space`);
    /// 0 turns the guard off.
    pub min_free_disk_bytes: u64,
}

impl Default for WriterOptions {
    /// No out-of-order window, Prometheus's default exemplar limit,
    /// samples stored, no free-space guard.
    fn default() -> Self {
        Self {
            out_of_order_time_window: Duration::ZERO,
            max_exemplars: crate::exemplars::DEFAULT_MAX_EXEMPLARS,
            store_samples: true,
            min_free_disk_bytes: 0,
        }
    }
}

/// A request to the writer thread.
#[derive(Debug)]
enum Job {
    /// Returns the durable last sequence of a scraper.
    Hello {
        scraper_id: Arc<str>,
        incarnation: u64,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// Applies one batch and returns its ack.
    Batch {
        scraper_id: Arc<str>,
        incarnation: u64,
        batch: Batch,
        reply: oneshot::Sender<Result<pb::Ack>>,
    },
    /// Applies series and samples that do not come from a scraper stream
    /// (Prometheus remote write): no sequence, no fencing; all or nothing.
    Write {
        series: Vec<Arc<CompactLabels>>,
        samples: Vec<Sample>,
        histograms: Vec<BatchHistogram>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Removes the series of `ids` that hold nothing ([`collect`]) and
    /// returns how many it removed.
    Collect {
        ids: Vec<u64>,
        reply: oneshot::Sender<Result<usize>>,
    },
    /// Syncs, then opens the remote write egress anew with `open` between
    /// two writes and queues what is stored from then on through it
    /// ([`crate::egress::Reloader`]).
    SwapEgress {
        open: EgressOpener,
        reply: oneshot::Sender<Result<Option<crate::egress::Egress>>>,
    },
}

/// Sends jobs to the writer thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

/// The ack of a submitted batch, once it is durable.
pub type PendingAck = oneshot::Receiver<Result<pb::Ack>>;

impl WriterHandle {
    /// Returns the last sequence durably applied for `scraper_id` (0 if none).
    pub async fn hello(&self, scraper_id: Arc<str>) -> Result<u64> {
        self.hello_as(scraper_id, 0).await
    }

    /// As [`WriterHandle::hello`], for the process `incarnation`
    /// ([`incarnations`]): fails with [`Error::Superseded`] when a newer one
    /// owns the id.
    pub async fn hello_as(&self, scraper_id: Arc<str>, incarnation: u64) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Hello {
            scraper_id,
            incarnation,
            reply,
        })
        .await?;
        rx.await.map_err(|_| closed())?
    }

    /// Queues `batch`; waits while the queue is full. The returned receiver
    /// yields the ack once the batch is durable (or known not to be stored).
    pub async fn submit(&self, scraper_id: Arc<str>, batch: Batch) -> Result<PendingAck> {
        self.submit_as(scraper_id, 0, batch).await
    }

    /// As [`WriterHandle::submit`], from the process `incarnation`: refused
    /// (SUPERSEDED) when a newer one owns the id.
    pub async fn submit_as(
        &self,
        scraper_id: Arc<str>,
        incarnation: u64,
        batch: Batch,
    ) -> Result<PendingAck> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Batch {
            scraper_id,
            incarnation,
            batch,
            reply,
        })
        .await?;
        Ok(rx)
    }

    /// Writes `samples` and `histograms` (indexing `series`) as one
    /// `WriteBatch`, outside any scraper stream: no sequence, no fencing.
    /// Returns once durable.
    pub async fn write(
        &self,
        series: Vec<Arc<CompactLabels>>,
        samples: Vec<Sample>,
        histograms: Vec<BatchHistogram>,
    ) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Write {
            series,
            samples,
            histograms,
            reply,
        })
        .await?;
        rx.await.map_err(|_| closed())?
    }

    /// Removes the series of `ids` that hold no sample any more from the
    /// index ([`collect`]); returns how many it removed, once durable.
    pub async fn collect(&self, ids: Vec<u64>) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Collect { ids, reply }).await?;
        rx.await.map_err(|_| closed())?
    }

    async fn send(&self, job: Job) -> Result<()> {
        self.tx.send(job).await.map_err(|_| closed())
    }
}

fn closed() -> Error {
    Error::WriterUnavailable("writer thread has stopped".into())
}

/// Starts the writer thread. It runs until every [`WriterHandle`] is dropped,
/// then syncs the WAL a last time and returns.
pub fn spawn(db: Arc<Db>) -> Result<(WriterHandle, std::thread::JoinHandle<()>)> {
    spawn_with(db, WriterOptions::default())
}

/// Starts the writer thread with `options`; see [`spawn`].
pub fn spawn_with(
    db: Arc<Db>,
    options: WriterOptions,
) -> Result<(WriterHandle, std::thread::JoinHandle<()>)> {
    spawn_with_egress(db, options, None)
}

/// Starts the writer thread with `options`, queueing what it stores for
/// remote write through `egress` ([`crate::egress`]); see [`spawn`].
pub fn spawn_with_egress(
    db: Arc<Db>,
    options: WriterOptions,
    egress: Option<crate::egress::Appender>,
) -> Result<(WriterHandle, std::thread::JoinHandle<()>)> {
    let next_series_id = db
        .get_meta_u64(keys::META_NEXT_SERIES_ID)?
        .unwrap_or(keys::FIRST_SERIES_ID);
    let exemplars = ExemplarBuffer::load(&db, options.max_exemplars)?;
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let mut state = State {
        disk: disk_space::DiskGuard::new(db.path().to_path_buf(), options.min_free_disk_bytes),
        refused: Default::default(),
        db,
        next_series_id,
        series: SeriesIds::default(),
        series_epoch: 0,
        collected: Default::default(),
        seqs: HashMap::new(),
        incarnations: Default::default(),
        gens: HashMap::new(),
        failed: None,
        heads: Default::default(),
        head_max_t: i64::MIN,
        ooo_window_ms: i64::try_from(options.out_of_order_time_window.as_millis())
            .unwrap_or(i64::MAX),
        store_samples: options.store_samples,
        last_prune: Instant::now(),
        exemplars,
        egress,
    };
    let thread = std::thread::Builder::new()
        .name("storage-writer".into())
        .spawn(move || {
            crate::db::disable_perf_counters();
            state.run(rx)
        })?;
    Ok((WriterHandle { tx }, thread))
}

struct State {
    db: Arc<Db>,
    next_series_id: u64,
    /// Labels -> series id of every series written or looked up so far
    /// and not collected since.
    series: SeriesIds,
    /// Moves on each time series are collected: the ids streams learnt
    /// before may name series that are gone ([`crate::batch::StreamSeries`]).
    series_epoch: u32,
    /// Series removed whose labels by id wait for the remote write queues.
    collected: collect::Collected,
    seqs: HashMap<Arc<str>, u64>,
    /// Which process owns each scraper id's sequences.
    incarnations: incarnations::Incarnations,
    gens: HashMap<String, Fence>,
    /// Set when a WAL sync failed; every later job fails with it.
    failed: Option<String>,
    /// The free-space guard.
    disk: disk_space::DiskGuard,
    /// Sequences refused for want of space, per scraper: its later
    /// batches wait for them.
    refused: disk_space::Refused,
    /// Newest stored sample per series id, for the series seen lately.
    heads: admission::Heads,
    /// Newest timestamp written since start (Prometheus's head max time),
    /// the reference of the out-of-order window.
    head_max_t: i64,
    ooo_window_ms: i64,
    /// [`WriterOptions::store_samples`].
    store_samples: bool,
    last_prune: Instant,
    /// Newest exemplar per series and the arrival order of stored ones.
    exemplars: ExemplarBuffer,
    /// The remote write queue's log, when remote write is configured.
    egress: Option<crate::egress::Appender>,
}

/// A reply waiting for the group's WAL sync.
enum Reply {
    Hello(oneshot::Sender<Result<u64>>, Result<u64>),
    Ack(oneshot::Sender<Result<pb::Ack>>, Result<pb::Ack>),
    Written(oneshot::Sender<Result<()>>, Result<()>),
    Collected(oneshot::Sender<Result<usize>>, Result<usize>),
}

impl State {
    fn run(&mut self, mut rx: mpsc::Receiver<Job>) {
        tracing::debug!(next_series_id = self.next_series_id, "writer started");
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.run_group(group);
            self.prune_heads();
            self.checkpoint();
        }
        if self.failed.is_none() {
            if let Err(err) = self.db.sync_wal() {
                tracing::error!(error = %err, "final wal sync failed");
            }
        }
        tracing::debug!("writer stopped");
    }

    fn run_group(&mut self, group: Vec<Job>) {
        let mut replies = Vec::with_capacity(group.len());
        let mut written = 0;
        let writes = group
            .iter()
            .any(|j| matches!(j, Job::Batch { .. } | Job::Write { .. }));
        let disk_full = match writes && self.failed.is_none() {
            true => self.disk.check(&self.db).err().map(|e| e.to_string()),
            false => None,
        };
        for job in group {
            match job {
                Job::Hello {
                    scraper_id,
                    incarnation,
                    reply,
                } => {
                    let res = match self.incarnations.hello(&scraper_id, incarnation) {
                        Ok(()) => self.last_sequence(&scraper_id),
                        Err(incarnations::Superseded) => Err(Error::Superseded {
                            scraper_id: scraper_id.to_string(),
                        }),
                    };
                    replies.push(Reply::Hello(reply, res));
                }
                Job::Batch {
                    scraper_id,
                    incarnation,
                    batch,
                    reply,
                } if !self.incarnations.owns(&scraper_id, incarnation) => {
                    metrics::batch_refused("superseded");
                    let why = format!(
                        "a newer process with scraper id {scraper_id:?} owns its sequence numbers; \
                         give each scraper its own --id"
                    );
                    let refused = ack(
                        batch.sequence,
                        pb::AckStatus::Refused,
                        pb::RefuseReason::Superseded,
                        why,
                    );
                    replies.push(Reply::Ack(reply, Ok(refused)));
                }
                Job::Batch {
                    scraper_id,
                    batch,
                    reply,
                    ..
                } if disk_full.is_some() || self.refused.blocks(&scraper_id, batch.sequence) => {
                    metrics::batch_refused("disk_full");
                    let why = disk_full.clone().unwrap_or_else(|| {
                        "an earlier batch of this scraper was refused for want of disk space; \
                         send it again first"
                            .into()
                    });
                    self.refused.refuse(&scraper_id, batch.sequence);
                    replies.push(Reply::Ack(reply, Err(Error::DiskFull(why))));
                }
                Job::Write { reply, .. } if disk_full.is_some() => {
                    let why = disk_full.clone().unwrap_or_default();
                    replies.push(Reply::Written(reply, Err(Error::DiskFull(why))));
                }
                Job::Batch {
                    scraper_id,
                    batch,
                    reply,
                    ..
                } => {
                    self.refused.taken(&scraper_id, batch.sequence);
                    let res = self.apply(scraper_id, batch);
                    if let (Err(err), None) = (&res, &self.failed) {
                        // Later batches of the scraper must not be applied
                        // past this one, or a resend would be dropped as
                        // already stored.
                        tracing::error!(error = %err, "write failed; refusing all further writes");
                        self.failed = Some(err.to_string());
                    }
                    if matches!(&res, Ok(ack) if ack.status == pb::AckStatus::Applied as i32) {
                        written += 1;
                    }
                    replies.push(Reply::Ack(reply, res));
                }
                Job::SwapEgress { open, reply } => drop(reply.send(self.swap_egress(open))),
                Job::Collect { ids, reply } => {
                    let res = self.collect(&ids);
                    if let (Err(err), None) = (&res, &self.failed) {
                        tracing::error!(error = %err, "write failed; refusing all further writes");
                        self.failed = Some(err.to_string());
                    }
                    written += usize::from(matches!(res, Ok(n) if n > 0));
                    replies.push(Reply::Collected(reply, res));
                }
                Job::Write {
                    series,
                    samples,
                    histograms,
                    reply,
                } => {
                    let res = self.apply_unsequenced(&series, &samples, &histograms);
                    match (&res, &self.failed) {
                        // Refused samples: nothing was written.
                        (Err(Error::BadData(_)), _) => {}
                        (Err(err), None) => {
                            tracing::error!(error = %err, "write failed; refusing all further writes");
                            self.failed = Some(err.to_string());
                        }
                        _ => {}
                    }
                    written += usize::from(res.is_ok());
                    replies.push(Reply::Written(reply, res));
                }
            }
        }
        if written > 0 {
            let start = Instant::now();
            if let Err(err) = self.db.sync_wal() {
                tracing::error!(error = %err, "wal sync failed; refusing all further writes");
                self.failed = Some(err.to_string());
            }
            metrics::write_synced(start.elapsed(), written);
            if let (Some(e), None) = (&self.egress, &self.failed) {
                e.publish();
            }
        }
        // Nothing in this group is known durable after a failed sync.
        let failed = self.failed.clone();
        for reply in replies {
            match (reply, &failed) {
                (Reply::Hello(tx, _), Some(f)) => {
                    drop(tx.send(Err(Error::WriterUnavailable(f.clone()))))
                }
                (Reply::Ack(tx, _), Some(f)) => {
                    drop(tx.send(Err(Error::WriterUnavailable(f.clone()))))
                }
                (Reply::Written(tx, _), Some(f)) => {
                    drop(tx.send(Err(Error::WriterUnavailable(f.clone()))))
                }
                (Reply::Collected(tx, _), Some(f)) => {
                    drop(tx.send(Err(Error::WriterUnavailable(f.clone()))))
                }
                (Reply::Collected(tx, res), None) => drop(tx.send(res)),
                (Reply::Hello(tx, res), None) => drop(tx.send(res)),
                (Reply::Written(tx, res), None) => drop(tx.send(res)),
                (Reply::Ack(tx, res), None) => drop(tx.send(res)),
            }
        }
    }

    /// Checkpoints the open chunks when due ([`crate::open_chunks`]); its
    /// write is synced with the next group's. A failure fails the writer
    /// as a failed write does.
    fn checkpoint(&mut self) {
        if self.failed.is_some() || self.disk.is_low() {
            return;
        }
        let start = Instant::now();
        match self.db.checkpoint_if_due() {
            Ok(Some(done)) => {
                metrics::open_chunks_checkpointed(start.elapsed(), &done);
                tracing::debug!(
                    written = done.written,
                    idle_cut = done.idle_cut,
                    open_bytes = done.open_bytes,
                    took = ?start.elapsed(),
                    "open chunks checkpointed"
                );
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, "open chunk checkpoint failed; refusing all further writes");
                self.failed = Some(err.to_string());
            }
        }
    }

    fn last_sequence(&mut self, scraper_id: &Arc<str>) -> Result<u64> {
        if let Some(&seq) = self.seqs.get(scraper_id) {
            return Ok(seq);
        }
        let seq = self
            .db
            .get_meta_u64(&keys::seq_key(scraper_id))?
            .unwrap_or(0);
        self.seqs.insert(scraper_id.clone(), seq);
        Ok(seq)
    }

    fn target_fence(&mut self, target_id: &str) -> Result<Fence> {
        if let Some(&f) = self.gens.get(target_id) {
            return Ok(f);
        }
        let f = match self.db.get(keys::CF_META, &keys::gen_key(target_id))? {
            Some(v) => Fence::decode(&v).ok_or(Error::Corrupt { what: "gen" })?,
            None => Fence::default(),
        };
        self.gens.insert(target_id.to_string(), f);
        Ok(f)
    }

    /// Adds native histogram samples to `wb`, and to the egress record.
    /// Counted once the write succeeded ([`metrics::histograms_appended`]).
    fn append_histograms(&mut self, wb: &mut DbBatch, ids: &[u64], histograms: &[BatchHistogram]) {
        for h in histograms {
            let id = ids[h.series as usize];
            if self.store_samples {
                samples::append_histogram(&self.db, wb, id, h.histogram.timestamp, &h.histogram);
            }
            if let Some(e) = &mut self.egress {
                e.push_histogram(id, &h.histogram);
            }
        }
    }

    /// Checks, writes (unsynced) and returns the ack of one batch; state is
    /// updated only when the write succeeded.
    fn apply(&mut self, scraper_id: Arc<str>, batch: Batch) -> Result<pb::Ack> {
        if let Some(f) = &self.failed {
            return Err(Error::WriterUnavailable(f.clone()));
        }
        let seq = batch.sequence;
        let last = self.last_sequence(&scraper_id)?;
        if seq <= last {
            metrics::batch_duplicate();
            return Ok(ack(
                seq,
                pb::AckStatus::Duplicate,
                pb::RefuseReason::Unspecified,
                String::new(),
            ));
        }
        let mut late = LateWrites::None;
        let fence = if batch.target_id.is_empty() {
            None
        } else {
            let seen = self.target_fence(&batch.target_id)?;
            if seen.refuses(batch.target_generation, batch.timestamp_ms) {
                metrics::batch_refused("fenced");
                return Ok(ack(
                    seq,
                    pb::AckStatus::Refused,
                    pb::RefuseReason::Fenced,
                    format!(
                        "target {} generation {} at {} is older than generation {} from {}",
                        batch.target_id,
                        batch.target_generation,
                        batch.timestamp_ms,
                        seen.generation,
                        seen.first_ts
                    ),
                ));
            }
            let fence = seen.after(batch.target_generation, batch.timestamp_ms);
            late = fence.late_writes(batch.target_generation);
            Some(fence)
        };

        let db = self.db.clone();
        let cf_meta = db.cf(keys::CF_META);
        let mut wb = DbBatch::default();

        let (ids, created) = self.resolve_series(&mut wb, &batch.series)?;
        let admitted = self.admit_samples(&mut wb, &ids, &batch.samples, late)?;
        self.append_histograms(&mut wb, &ids, &batch.histograms);
        // Exemplars are keyed by when they arrived: the scrape's time.
        let ingest_ms = match batch.timestamp_ms {
            0 => now_ms(),
            t => t,
        };
        let exemplars = self.admit_exemplars(&mut wb, &ids, ingest_ms, &batch.exemplars);
        if let Some(e) = &mut self.egress {
            for (id, x) in exemplars.stored() {
                e.push_exemplar(id, x);
            }
            e.stage(&db, &mut wb);
        }
        wb.put_cf(cf_meta, keys::seq_key(&scraper_id), keys::encode_u64(seq));
        if let Some(f) = fence {
            wb.put_cf(cf_meta, keys::gen_key(&batch.target_id), f.encode());
        }
        if let Some(series) = &batch.handover {
            let record = Handover {
                generation: batch.target_generation,
                timestamp_ms: batch.timestamp_ms,
                series: series.iter().map(|l| l.to_labels()).collect(),
            };
            wb.put_cf(
                cf_meta,
                keys::handover_key(&batch.target_id),
                record.encode(),
            );
        }
        if let Err(e) = db.write_unsynced(wb) {
            self.undo_admitted(admitted);
            return Err(e);
        }
        if let Some(e) = &mut self.egress {
            e.committed();
        }

        let n_created = self.commit_series(created);
        self.seqs.insert(scraper_id, seq);
        if let Some(f) = fence {
            self.gens.insert(batch.target_id, f);
        }
        self.commit_admitted(&admitted);
        metrics::batch_applied(admitted.appended, n_created);
        metrics::histograms_appended(batch.histograms.len());
        admitted.log_rejections(seq);
        if exemplars.out_of_order + exemplars.label_length > 0 {
            // Prometheus logs these at debug level too.
            tracing::debug!(
                sequence = seq,
                out_of_order = exemplars.out_of_order,
                label_length = exemplars.label_length,
                "exemplars dropped; the rest of the batch is stored"
            );
        }
        self.commit_exemplars(exemplars);
        Ok(ack(
            seq,
            pb::AckStatus::Applied,
            pb::RefuseReason::Unspecified,
            String::new(),
        ))
    }
}

/// Builds an ack.
pub fn ack(
    sequence: u64,
    status: pb::AckStatus,
    reason: pb::RefuseReason,
    message: String,
) -> pb::Ack {
    pb::Ack {
        sequence,
        status: status as i32,
        reason: reason as i32,
        message,
    }
}

#[cfg(test)]
mod tests;
