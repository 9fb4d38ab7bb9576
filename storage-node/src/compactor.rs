//! The compactor: moves older head samples (out-of-order ones: in-order
//! samples go to [`crate::open_chunks`]) into compressed chunks, and before
//! each round has RocksDB drop superseded open chunk checkpoints
//! ([`Db::compact_superseded_checkpoints`]) and deletes handover records
//! an hour past their handover
//! ([`crate::writer::ownership::prune_handovers`]).
//!
//! Every [`CompactorConfig::interval`] one round runs on a blocking thread
//! ([`compact_once`]). It scans the head ([`samples::scan_head`], which
//! seeks only series whose [`crate::head_bounds`] bound is before the cut)
//! for samples older than the cut (`now - head_window`), and picks the series
//! with at least [`CompactorConfig::chunk_target`] of them, or whose oldest
//! head sample is older than [`CompactorConfig::max_head_age`] (series that
//! stopped or scrape rarely; their last chunk grows rather than a small
//! one being cut). It then compacts those series in groups of
//! about [`CompactorConfig::max_group_samples`] samples: each group is read,
//! encoded and written as ONE `WriteBatch` inside [`Db::read_modify_write`],
//! which holds the database's write lock. So a crash leaves each sample in
//! the head or in a chunk (never both, never neither), and the writer cannot
//! overwrite a head key between the compactor reading it and deleting it;
//! the writer waits at most one group (a few milliseconds).
//!
//! The compactor writes without syncing the WAL: a compaction lost in a
//! crash leaves the head as it was, and the writer's next sync makes it
//! durable. Late samples (at or before a series' newest compacted sample)
//! wait in the head, where reads already merge them, and the next round
//! rewrites the chunk they fall in.

use std::sync::Arc;
use std::time::Duration;

use scrapegrid_common::clock::now_ms;
use scrapegrid_common::telemetry::Progress;

use crate::db::DbBatch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::error::Result;
use crate::samples::{self, HeadStats, SampleReader};

/// When and how the compactor runs.
#[derive(Debug, Clone)]
pub struct CompactorConfig {
    /// Time between rounds.
    pub interval: Duration,
    /// Samples newer than this (behind the wall clock) stay in the head.
    pub head_window: Duration,
    /// Samples per chunk to aim for (Prometheus cuts at 120).
    pub chunk_target: usize,
    /// A series whose oldest head sample is older than this is compacted
    /// even with fewer than `chunk_target` samples (its last chunk, when it
    /// has room, is reopened and grows). Keeps the head, one RocksDB key per
    /// sample and slow to read, to the last few minutes.
    pub max_head_age: Duration,
    /// Samples compacted per write-locked group, about.
    pub max_group_samples: usize,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            head_window: Duration::from_secs(120),
            chunk_target: 120,
            max_head_age: Duration::from_secs(300),
            max_group_samples: 16 * 1024,
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    /// Series compacted.
    pub series: usize,
    /// Head samples moved into chunks.
    pub samples: usize,
    /// Chunks written.
    pub chunks_written: usize,
    /// Existing chunks rewritten: to take late samples, or reopened to
    /// grow.
    pub chunks_rewritten: usize,
}

/// Runs rounds every `config.interval` until `stop` is cancelled. Each round
/// runs on a blocking thread and checks `stop` between groups, so this ends
/// within one group of cancellation.
pub async fn run(db: Arc<Db>, config: CompactorConfig, stop: CancellationToken) {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is immediate; let startup settle first.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if db.writes_refused() {
            // The disk is (nearly) full: the room left is RocksDB's.
            tracing::debug!("compaction round skipped: writes are refused for want of space");
            continue;
        }
        let (db, config, round_stop) = (db.clone(), config.clone(), stop.clone());
        let round = tokio::task::spawn_blocking(move || {
            match db.compact_superseded_checkpoints() {
                Ok(true) => tracing::debug!("compacted superseded open chunk checkpoints"),
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "reading the checkpoint files' size"),
            }
            let now = now_ms();
            let before = now.saturating_sub(crate::writer::ownership::HANDOVER_KEPT_MS);
            match crate::writer::ownership::prune_handovers(&db, before) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(records = n, "pruned old handover records"),
                Err(err) => tracing::warn!(error = %err, "pruning handover records"),
            }
            compact_once(&db, &config, now, &round_stop)
        })
        .await;
        if let Ok(Ok(stats)) = &round {
            crate::metrics::compaction_round(stats.samples);
        }
        match round {
            Ok(Ok(stats)) if stats.series > 0 => {
                tracing::debug!(
                    series = stats.series,
                    samples = stats.samples,
                    chunks = stats.chunks_written,
                    rewritten = stats.chunks_rewritten,
                    "compacted head samples into chunks"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "compaction failed"),
            Err(err) => tracing::error!(error = %err, "compaction panicked"),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs one round as if the time were `now_ms`; returns what it did.
/// Blocks; stops early (between groups) when `stop` is cancelled.
pub fn compact_once(
    db: &Db,
    config: &CompactorConfig,
    now_ms: i64,
    stop: &CancellationToken,
) -> Result<RoundStats> {
    let cut = now_ms.saturating_sub(ms(config.head_window));
    let old = now_ms.saturating_sub(ms(config.max_head_age));
    // A series with nothing before the cut is due too: its bound is stale
    // (retention emptied its head, or it was compacted and scrapes rarely),
    // and compacting it raises the bound without writing anything.
    let due: Vec<HeadStats> = samples::scan_head(db, cut)?
        .into_iter()
        .filter(|s| s.before_cut == 0 || s.before_cut >= config.chunk_target || s.oldest <= old)
        .collect();
    let round = compact_due(db, config, cut, &due, stop);
    // The head bounds of what this round compacted rise once no reader
    // from before it remains; on an idle node no write would do it.
    db.apply_head_narrowings();
    round
}

/// Compacts the `due` series in groups; see [`compact_once`].
fn compact_due(
    db: &Db,
    config: &CompactorConfig,
    cut: i64,
    due: &[HeadStats],
    stop: &CancellationToken,
) -> Result<RoundStats> {
    let mut stats = RoundStats::default();
    let mut progress = Progress::new("compacting head samples into chunks (series)");
    for group in groups(due, config.max_group_samples) {
        if stop.is_cancelled() {
            break;
        }
        progress.tick(stats.series as u64, Some(due.len() as u64));
        let done = db.read_modify_write(|| {
            let reader = SampleReader::new(db);
            let mut wb = DbBatch::default();
            let mut done = RoundStats::default();
            for s in group {
                let c = samples::compact_series(&reader, &mut wb, s.id, cut, config.chunk_target)?;
                done.series += usize::from(c.samples > 0);
                done.samples += c.samples;
                done.chunks_written += c.chunks_written;
                done.chunks_rewritten += c.chunks_rewritten;
            }
            Ok((wb, done))
        })?;
        stats.series += done.series;
        stats.samples += done.samples;
        stats.chunks_written += done.chunks_written;
        stats.chunks_rewritten += done.chunks_rewritten;
    }
    progress.done(stats.series as u64);
    Ok(stats)
}

/// What looking at one series costs a group, in samples: its seeks.
const SERIES_COST: usize = 8;

/// Splits `due` into runs of whole series of about `max_samples` samples
/// (at least one series each), each series counting [`SERIES_COST`] more
/// than its samples, so that a group of series with nothing to move is
/// still short.
fn groups(due: &[HeadStats], max_samples: usize) -> impl Iterator<Item = &[HeadStats]> {
    let mut rest = due;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0;
        let n = rest
            .iter()
            .take_while(|s| {
                let cost = s.before_cut + SERIES_COST;
                let fits = total == 0 || total + cost <= max_samples;
                total += cost;
                fits
            })
            .count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        Some(group)
    })
}

#[cfg(test)]
mod tests;
