//! Retention: deleting samples older than `--retention.time`, and the oldest
//! samples while the database is larger than `--retention.size`, in the
//! background while ingest goes on. The same task refreshes the on-disk
//! size gauges from RocksDB properties.
//!
//! Sample keys start with the series id, so old data is one range per series:
//! a pass walks each column family it deletes in ([`RETAINED_CFS`]) series by
//! series (a seek or two each; the head only through the series its bounds
//! say have head samples, [`crate::head_bounds`]), and for every series with
//! data older than the cut-off adds a `delete_range_cf` to a `WriteBatch`. In the head
//! (`samples`) the key's timestamp is the sample's, in `chunks` it is the
//! chunk's last sample's, so in both a key below `(id, cutoff)` holds only
//! data older than the cut-off: a chunk that straddles it is kept whole.
//! Exemplars (`exemplars`) go the same way by the time the scrape that
//! brought them ran, the second part of their key: they live as long as
//! the samples of their scrape, whatever their own timestamp says. The
//! cut-offs are measured on samples only ([`SAMPLE_CFS`]).
//! Deletes go through [`Db::write_unsynced`] like every write (WAL, not
//! synced: a lost delete is redone by the next pass), in batches of at most
//! [`MAX_RANGES_PER_WRITE`] so ingest never waits long on the write lock.
//!
//! Size retention measures SST files plus memtables of every column family
//! (`rocksdb.total-sst-files-size`, `rocksdb.cur-size-all-mem-tables`; the
//! WAL is not counted). While over the limit it raises the cut-off from the
//! oldest sample towards the newest in [`SIZE_STEPS`] steps, deleting and
//! compacting the sample column families after each (a range tombstone frees
//! nothing until compaction); it never deletes the newest timestamp.
//!
//! After its deletes a pass lists the indexed series that hold no sample
//! ([`PassReport::unsampled`]: one walk of each sample column family, as
//! the deletes take, and the open chunks), and the writer removes them
//! from the index ([`crate::writer::WriterHandle::collect`], on the writer
//! thread: no sample can arrive between its check and the removal). Every
//! pass lists them all again, so a series a pass could not remove (the
//! disk low, a queue still sending it, a restart in between) goes at a
//! later one, and so do series left empty before.
//!
//! Open chunks ([`crate::open_chunks`]) live in memory until they are cut
//! (at most [`crate::open_chunks::CHUNK_SAMPLES`] samples or one
//! [`crate::open_chunks::CHUNK_RANGE_MS`] range), and retention deletes
//! them only once cut, as Prometheus keeps its head whatever
//! `retention.time` says; the cut-offs count their samples.
//!
//! The time cut-off is the newest stored sample's timestamp (at most the
//! wall clock) minus `retention.time`, as Prometheus measures from its
//! newest block. Unlike Prometheus, data is deleted per series at
//! millisecond precision rather than per whole block.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::DbBatch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::writer::WriterHandle;
use crate::{keys, metrics, samples};

/// A key encoding: series id and timestamp to key, and back.
type KeyFn = fn(u64, i64) -> [u8; 16];
type DecodeFn = fn(&[u8]) -> Option<(u64, i64)>;

/// Every column family holding samples, with its key encoding; the
/// retention cut-offs are measured on these. A new sample layout is one
/// more line here.
pub const SAMPLE_CFS: [(&str, KeyFn, DecodeFn); 3] = [
    (keys::CF_SAMPLES, keys::sample_key, keys::decode_sample_key),
    (keys::CF_CHUNKS, keys::chunk_key, keys::decode_chunk_key),
    (
        keys::CF_HISTOGRAMS,
        keys::sample_key,
        keys::decode_sample_key,
    ),
];

/// Every column family retention deletes in: [`SAMPLE_CFS`] and the
/// exemplars, whose keys start with (series id, ingest time).
pub const RETAINED_CFS: [(&str, KeyFn, DecodeFn); 4] = [
    SAMPLE_CFS[0],
    SAMPLE_CFS[1],
    SAMPLE_CFS[2],
    (
        keys::CF_EXEMPLARS,
        keys::exemplar_prefix,
        keys::decode_exemplar_prefix,
    ),
];

/// Range deletes per `WriteBatch` at most.
pub const MAX_RANGES_PER_WRITE: usize = 10_000;
/// Steps from the oldest to the newest sample that size retention takes.
pub const SIZE_STEPS: i64 = 10;
/// How often the size gauges are refreshed.
pub const USAGE_INTERVAL: Duration = Duration::from_secs(15);

/// What retention keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Samples older than this are deleted; zero keeps them.
    pub time: Duration,
    /// Bytes the database may use; zero is no limit.
    pub size: u64,
    /// How often a pass runs.
    pub interval: Duration,
}

impl Default for RetentionConfig {
    /// Prometheus's defaults: 15 days, no size limit; a pass a minute.
    fn default() -> Self {
        Self {
            time: Duration::from_secs(15 * 24 * 3600),
            size: 0,
            interval: Duration::from_secs(60),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// The time cut-off applied (`now - retention.time`), if any.
    pub time_cutoff_ms: Option<i64>,
    /// Ranges deleted for the time limit.
    pub time_ranges: u64,
    /// The cut-off the size limit raised to, if it had to.
    pub size_cutoff_ms: Option<i64>,
    /// Ranges deleted for the size limit.
    pub size_ranges: u64,
    /// Database size after the pass, when a size limit is set.
    pub bytes_after: Option<u64>,
    /// Indexed series holding no sample after the pass, ascending: they
    /// leave the index. Empty when the pass was stopped.
    pub unsampled: Vec<u64>,
}

/// Bytes of one column family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CfUsage {
    pub cf: &'static str,
    pub sst_bytes: u64,
    pub memtable_bytes: u64,
}

/// Returns the size of every column family from RocksDB properties.
pub fn disk_usage(db: &Db) -> Result<Vec<CfUsage>> {
    keys::ALL_CFS
        .iter()
        .map(|&cf| {
            let prop = |name: &str| -> Result<u64> {
                Ok(db
                    .raw()
                    .property_int_value_cf(db.cf(cf), name)?
                    .unwrap_or(0))
            };
            Ok(CfUsage {
                cf,
                sst_bytes: prop("rocksdb.total-sst-files-size")?,
                memtable_bytes: prop("rocksdb.cur-size-all-mem-tables")?,
            })
        })
        .collect()
}

/// Returns the total size [`RetentionConfig::size`] limits.
pub fn total_bytes(db: &Db) -> Result<u64> {
    Ok(disk_usage(db)?
        .iter()
        .map(|u| u.sst_bytes + u.memtable_bytes)
        .sum())
}

/// Refreshes the size gauges.
pub fn record_usage(db: &Db) -> Result<()> {
    let usage = disk_usage(db)?;
    for u in &usage {
        metrics::cf_size(u.cf, u.sst_bytes, u.memtable_bytes);
    }
    metrics::disk_bytes(usage.iter().map(|u| u.sst_bytes + u.memtable_bytes).sum());
    Ok(())
}

/// Calls `visit` for each series with keys in `cf`, in id order, with the
/// series id and the timestamps of its oldest and (with `newest`, else
/// `None`: finding it costs a seek per series) newest key, until `visit`
/// returns an error or `false`. The head is walked through its bounds
/// ([`samples::for_each_head_span`]): a walk of its keys would step over
/// every sample the compactor deleted and RocksDB still keeps.
fn for_each_span(
    db: &Db,
    (cf_name, key, decode): (&'static str, KeyFn, DecodeFn),
    newest: bool,
    mut visit: impl FnMut(u64, i64, Option<i64>) -> Result<bool>,
) -> Result<()> {
    if cf_name == keys::CF_SAMPLES {
        return samples::for_each_head_span(db, |id, first, last| visit(id, first, Some(last)));
    }
    let corrupt = || Error::Corrupt { what: cf_name };
    let mut it = db
        .raw()
        .raw_iterator_cf_opt(db.cf(cf_name), Db::total_order_read_options());
    it.seek_to_first();
    while it.valid() {
        let (id, first) = it.key().and_then(decode).ok_or_else(corrupt)?;
        let last = if newest {
            it.seek_for_prev(key(id, i64::MAX));
            Some(it.key().and_then(decode).ok_or_else(corrupt)?.1)
        } else {
            None
        };
        if !visit(id, first, last)? {
            break;
        }
        match id.checked_add(1) {
            Some(next) => it.seek(key(next, i64::MIN)),
            None => break,
        }
    }
    Ok(it.status()?)
}

/// Deletes, in every [`RETAINED_CFS`], each series' data older than
/// `cutoff_ms`; returns the number of ranges deleted. Stops early (having
/// deleted part) when `stop` is cancelled.
pub fn delete_before(db: &Db, cutoff_ms: i64, stop: &CancellationToken) -> Result<u64> {
    let mut ranges = 0u64;
    for cf_def @ (cf_name, key, _) in RETAINED_CFS {
        let cf = db.cf(cf_name);
        let mut wb = DbBatch::default();
        let mut pending = 0usize;
        // Only chunks need their newest key: the chunk end rises to it.
        let chunks = cf_name == keys::CF_CHUNKS;
        for_each_span(db, cf_def, chunks, |id, first, last| {
            if first < cutoff_ms {
                wb.delete_range_cf(cf, key(id, i64::MIN), key(id, cutoff_ms));
                if let (true, Some(last)) = (chunks, last) {
                    wb.touches_chunk(id, last);
                }
                pending += 1;
                if pending == MAX_RANGES_PER_WRITE {
                    db.write_unsynced(std::mem::take(&mut wb))?;
                    ranges += pending as u64;
                    pending = 0;
                }
            }
            Ok(!stop.is_cancelled())
        })?;
        if pending > 0 {
            db.write_unsynced(wb)?;
            ranges += pending as u64;
        }
    }
    Ok(ranges)
}

/// Returns the oldest and newest key timestamps over [`SAMPLE_CFS`]; `None`
/// when no sample is stored.
pub fn time_bounds(db: &Db) -> Result<Option<(i64, i64)>> {
    let mut bounds: Option<(i64, i64)> = None;
    for cf_def in SAMPLE_CFS {
        for_each_span(db, cf_def, true, |_, first, last| {
            let last = last.unwrap_or(first);
            bounds = Some(match bounds {
                None => (first, last),
                Some((lo, hi)) => (lo.min(first), hi.max(last)),
            });
            Ok(true)
        })?;
    }
    Ok(match (bounds, db.open_chunks().time_bounds()) {
        (Some((lo, hi)), Some((olo, ohi))) => Some((lo.min(olo), hi.max(ohi))),
        (b, None) | (None, b) => b,
    })
}

/// Compacts every column family retention deletes in, so deleted ranges
/// free their space.
fn compact_samples(db: &Db) {
    for (cf, _, _) in RETAINED_CFS {
        db.raw()
            .compact_range_cf(db.cf(cf), None::<&[u8]>, None::<&[u8]>);
    }
}

/// Runs one pass: the time limit, then the size limit. As in Prometheus,
/// the time limit counts back from the newest stored sample (capped at the
/// wall clock `now_ms`, so one sample from the future cannot wipe the
/// rest), so a node that stopped receiving data, or holds backfilled old
/// data, keeps its last `retention.time`. Blocking; call it off the async
/// threads.
pub fn run_pass(
    db: &Db,
    config: &RetentionConfig,
    now_ms: i64,
    stop: &CancellationToken,
) -> Result<PassReport> {
    let mut report = PassReport::default();
    let mut cutoff = i64::MIN;
    if !config.time.is_zero() {
        let keep_ms = i64::try_from(config.time.as_millis()).unwrap_or(i64::MAX);
        let newest = time_bounds(db)?.map_or(i64::MIN, |(_, newest)| newest);
        cutoff = newest.min(now_ms).saturating_sub(keep_ms);
        report.time_cutoff_ms = Some(cutoff);
        report.time_ranges = delete_before(db, cutoff, stop)?;
        metrics::retention_deleted("time", report.time_ranges);
    }
    if config.size == 0 {
        report.unsampled = unsampled_unless_stopped(db, stop)?;
        return Ok(report);
    }
    let mut bytes = total_bytes(db)?;
    if bytes > config.size {
        if let Some((oldest, newest)) = time_bounds(db)? {
            let step = ((newest - oldest) / SIZE_STEPS).max(1);
            let mut size_cutoff = cutoff.max(oldest);
            while bytes > config.size && size_cutoff < newest && !stop.is_cancelled() {
                size_cutoff = size_cutoff.saturating_add(step).min(newest);
                let ranges = delete_before(db, size_cutoff, stop)?;
                report.size_ranges += ranges;
                metrics::retention_deleted("size", ranges);
                compact_samples(db);
                bytes = total_bytes(db)?;
            }
            report.size_cutoff_ms = Some(size_cutoff);
            if bytes > config.size {
                tracing::warn!(
                    bytes,
                    limit = config.size,
                    "retention.size cannot be met without deleting the newest samples"
                );
            }
        }
    }
    report.bytes_after = Some(bytes);
    report.unsampled = unsampled_unless_stopped(db, stop)?;
    Ok(report)
}

fn unsampled_unless_stopped(db: &Db, stop: &CancellationToken) -> Result<Vec<u64>> {
    match stop.is_cancelled() {
        true => Ok(Vec::new()),
        false => series_without_samples(db, stop),
    }
}

/// Returns the indexed series that hold no sample (in a column family of
/// [`SAMPLE_CFS`] or in memory), ascending; nothing once `stop` is
/// cancelled. Read without a lock: the writer checks each again before it
/// removes it.
pub fn series_without_samples(db: &Db, stop: &CancellationToken) -> Result<Vec<u64>> {
    let mut held = rustc_hash::FxHashSet::default();
    for cf_def in SAMPLE_CFS {
        for_each_span(db, cf_def, false, |id, _, _| {
            held.insert(id);
            Ok(!stop.is_cancelled())
        })?;
    }
    if stop.is_cancelled() {
        return Ok(Vec::new());
    }
    let open = db.open_chunks();
    let mut ids = crate::index::Index::new(db).all_postings()?;
    ids.retain(|id| !held.contains(id) && !open.holds(*id));
    Ok(ids)
}

/// Series ids per [`WriterHandle::collect`] job at most: the writer checks
/// each (a few seeks), so ingest waits for one job at a time, not a pass.
pub const COLLECT_IDS_PER_JOB: usize = 1024;

/// Has the writer remove the series of `unsampled` that still hold
/// nothing, a job at a time until `stop`; returns how many it removed.
pub async fn collect_unsampled(
    writer: &WriterHandle,
    unsampled: &[u64],
    stop: &CancellationToken,
) -> Result<usize> {
    let mut removed = 0;
    for ids in unsampled.chunks(COLLECT_IDS_PER_JOB) {
        if stop.is_cancelled() {
            break;
        }
        removed += writer.collect(ids.to_vec()).await?;
    }
    if unsampled.is_empty() {
        // Still forgets the labels the remote write queues are done with.
        writer.collect(Vec::new()).await?;
    }
    Ok(removed)
}

/// Starts the background task: a retention pass every
/// `config.interval` (when a limit is set), then the removal of the series
/// it left without samples through `writer`, and the size gauges every
/// [`USAGE_INTERVAL`], each on the blocking pool. It ends when `stop` is
/// cancelled, after the running pass notices (between series).
pub fn spawn(
    db: Arc<Db>,
    config: RetentionConfig,
    writer: WriterHandle,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let enabled = !config.time.is_zero() || config.size > 0;
        let mut pass_tick = tokio::time::interval(config.interval.max(Duration::from_millis(1)));
        pass_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut usage_tick = tokio::time::interval(USAGE_INTERVAL);
        usage_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = pass_tick.tick(), if enabled => {
                    let (pass_db, pass_stop) = (db.clone(), stop.clone());
                    let joined = tokio::task::spawn_blocking(move || {
                        let start = Instant::now();
                        let now = scrapegrid_common::clock::now_ms();
                        let res = run_pass(&pass_db, &config, now, &pass_stop);
                        (res, start.elapsed())
                    })
                    .await;
                    match joined {
                        Ok((Ok(report), elapsed)) => {
                            log_pass(&report, elapsed);
                            match collect_unsampled(&writer, &report.unsampled, &stop).await {
                                Ok(0) => {}
                                Ok(removed) => tracing::info!(removed, "removed series retention left without samples"),
                                Err(err) => tracing::warn!(error = %err, "removing series without samples failed"),
                            }
                        }
                        Ok((Err(err), _)) => {
                            metrics::retention_failed();
                            tracing::error!(error = %err, "retention pass failed");
                        }
                        Err(err) => {
                            metrics::retention_failed();
                            tracing::error!(error = %err, "retention pass panicked");
                        }
                    }
                }
                _ = usage_tick.tick() => {
                    let db = db.clone();
                    match tokio::task::spawn_blocking(move || record_usage(&db)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => tracing::warn!(error = %err, "reading database size failed"),
                        Err(err) => tracing::warn!(error = %err, "reading database size panicked"),
                    }
                }
            }
        }
    })
}

fn log_pass(report: &PassReport, elapsed: Duration) {
    let cutoff = report
        .size_cutoff_ms
        .or(report.time_cutoff_ms)
        .unwrap_or(i64::MIN);
    metrics::retention_pass(elapsed, cutoff);
    let deleted = report.time_ranges + report.size_ranges;
    if deleted > 0 {
        tracing::info!(
            time_cutoff_ms = report.time_cutoff_ms,
            time_ranges = report.time_ranges,
            size_cutoff_ms = report.size_cutoff_ms,
            size_ranges = report.size_ranges,
            bytes_after = report.bytes_after,
            ?elapsed,
            "retention deleted old samples"
        );
    } else {
        tracing::debug!(?elapsed, "retention pass deleted nothing");
    }
}

#[cfg(test)]
mod tests;
