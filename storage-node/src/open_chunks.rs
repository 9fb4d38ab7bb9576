//! Open chunks: every series' newest samples, appended in place to an open
//! Gorilla chunk ([`crate::chunk`]) in memory, and written to the `chunks`
//! column family as one key when the chunk is cut.
//!
//! This replaces a RocksDB key per ingested sample (a memtable insert, a
//! later read and delete by the compactor, and the flushes and compactions
//! of all of it) with an append of a few bits. Durability does not weaken:
//!
//! - **WAL.** Every write that appends samples carries them as one record
//!   in the `wal` column family ([`wal`] encodes it), in the same RocksDB
//!   `WriteBatch` as the rest of the scrape batch (sequence, fencing,
//!   series), so an acked batch survives `kill -9` as before.
//! - **Cuts.** A chunk is cut when it holds [`CHUNK_SAMPLES`] samples, when
//!   a sample crosses a [`CHUNK_RANGE_MS`]-aligned boundary, or when its
//!   series has been idle for [`IDLE_MS`] (at a checkpoint); the cut chunk
//!   is put in the same `WriteBatch` as the sample that caused it.
//! - **Checkpoints.** Once the WAL holds twice the bytes of the open
//!   chunks (at least [`MIN_CHECKPOINT_WAL_BYTES`]), or [`CHECKPOINT_INTERVAL`]
//!   after the last one, every changed open chunk is written to the
//!   `open_chunks` column family and the WAL records before it are deleted,
//!   in one `WriteBatch`.
//! - **Recovery** ([`OpenChunks::recover`], at open, in `recover.rs`) loads the checkpoint,
//!   drops a checkpointed chunk that was cut after it (its samples are in
//!   `chunks`), and replays the WAL: a sample after its series' newest
//!   chunk and open chunk is appended.
//!
//! Samples that arrive older than their series' newest (within the
//! out-of-order window, or a previous owner's last scrapes) cannot be
//! appended to a Gorilla chunk: they go to the `samples` column family, one
//! key each, and the [`crate::compactor`] merges them into chunks, never
//! past the start of the open chunk ([`OpenChunks::first_ts`]), so chunks
//! never overlap.
//!
//! Every change happens under the database's write lock ([`crate::db`]),
//! so staging, checkpoints and the compactor never interleave; readers take
//! one series' lock to copy its samples. A reader whose RocksDB snapshot is
//! older than a cut must still see the cut chunk: a cut chunk stays in
//! memory (`recent`) tagged with the reader epoch of its write
//! ([`crate::head_bounds::HeadBounds::new_epoch`]) until every registered
//! reader is at least that new. Reads merge the open chunk, the recent
//! chunks and the stored chunks by timestamp, so a chunk seen twice counts
//! once.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rocksdb::{ColumnFamily, WriteBatch};

use crate::chunk::{ChunkDecoder, ChunkEncoder};
use crate::error::{Error, Result};
use crate::keys;
use crate::samples::Sample;
use crate::series_slots::{slot, Segments, SEGMENT};

mod recover;
pub mod wal;

pub use recover::Recovered;

/// Samples per chunk: the chunk is cut before the sample after these.
pub const CHUNK_SAMPLES: usize = 120;
/// Chunks do not span a multiple of this (2 h, Prometheus's block range).
pub const CHUNK_RANGE_MS: i64 = 2 * 60 * 60 * 1000;
/// A series whose newest sample is this much older than the newest sample
/// written has its open chunk cut at the next checkpoint.
pub const IDLE_MS: i64 = 60 * 60 * 1000;
/// WAL bytes a checkpoint waits for at least.
pub const MIN_CHECKPOINT_WAL_BYTES: u64 = 16 << 20;
/// The longest time between checkpoints while the WAL holds anything.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);

/// The epoch of a cut whose write has not been applied yet.
const PENDING: u64 = u64::MAX;

/// One sample to append: series id, timestamp, value.
pub type Fresh = (u64, i64, f64);

/// The column families staging and checkpoints write.
pub(crate) struct Cfs<'a> {
    pub chunks: &'a ColumnFamily,
    pub wal: &'a ColumnFamily,
    pub open: &'a ColumnFamily,
}

/// A chunk cut from a series' open chunk, kept until every reader's
/// snapshot holds it.
struct Recent {
    /// The reader epoch from which snapshots hold it ([`PENDING`] until its
    /// write is applied).
    epoch: u64,
    chunk: Box<[u8]>,
}

/// One series' open chunk.
struct Open {
    enc: ChunkEncoder,
    /// The open chunk's first sample (meaningless while it is empty).
    first_ts: i64,
    /// The newest sample appended, cut or not (`i64::MIN`: none).
    last_ts: i64,
    recent: Vec<Recent>,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// The checkpoint holds a key for it.
    checkpointed: bool,
    /// The value bits the series' next WAL sample is XORed with
    /// ([`wal`]'s base rule).
    wal_base: Option<u64>,
}

impl Open {
    fn new() -> Self {
        Self {
            enc: ChunkEncoder::new(),
            first_ts: i64::MIN,
            last_ts: i64::MIN,
            recent: Vec::new(),
            dirty: false,
            checkpointed: false,
            wal_base: None,
        }
    }

    /// Appends a sample; `false` (nothing changed) when it is not after the
    /// newest. May cut the open chunk first into `out`.
    fn append(&mut self, id: u64, t: i64, v: f64, out: &mut Staging<'_, '_>) -> bool {
        if t <= self.last_ts {
            return false;
        }
        if !self.enc.is_empty()
            && (self.enc.len() >= CHUNK_SAMPLES || t >= range_end(self.first_ts))
        {
            self.cut(id, out);
        }
        if self.enc.append(t, v).is_err() {
            return false;
        }
        if self.enc.len() == 1 {
            self.first_ts = t;
        }
        self.last_ts = t;
        self.dirty = true;
        true
    }

    /// Cuts the open chunk (not empty) into `out`'s batch.
    fn cut(&mut self, id: u64, out: &mut Staging<'_, '_>) {
        let chunk = std::mem::take(&mut self.enc).finish().into_boxed_slice();
        out.wb.put_cf(
            out.cfs.chunks,
            keys::chunk_key(id, self.last_ts),
            keys::encode_chunk_value(&chunk),
        );
        out.chunks.push((id, self.last_ts));
        out.cut.push(id);
        self.recent.push(Recent {
            epoch: PENDING,
            chunk,
        });
        self.dirty = true;
    }

    /// Drops the recent chunks every reader's snapshot holds.
    fn prune(&mut self, safe_epoch: u64) {
        self.recent.retain(|r| r.epoch > safe_epoch);
    }

    /// Whether nothing is left to keep in memory or in the checkpoint.
    fn is_gone(&self) -> bool {
        self.enc.is_empty() && self.recent.is_empty() && !self.checkpointed
    }
}

/// The end (exclusive) of the [`CHUNK_RANGE_MS`] range `t` falls in.
fn range_end(t: i64) -> i64 {
    (t.div_euclid(CHUNK_RANGE_MS) + 1).saturating_mul(CHUNK_RANGE_MS)
}

/// Where staging and checkpoints put what they write.
pub(crate) struct Staging<'a, 'c> {
    pub cfs: &'a Cfs<'c>,
    pub wb: &'a mut WriteBatch,
    /// Chunks written: (series id, last timestamp).
    pub chunks: &'a mut Vec<(u64, i64)>,
    /// Series whose chunk was cut (in the order cut).
    pub cut: &'a mut Vec<u64>,
}

type Slot = Mutex<Option<Box<Open>>>;

/// The open chunks of every series, and the WAL's bookkeeping. See the
/// module doc.
pub struct OpenChunks {
    segments: Segments<[Slot]>,
    wal: Mutex<WalState>,
    /// Series that may hold recent chunks, pruned at every write.
    with_recent: Mutex<Vec<u64>>,
}

impl std::fmt::Debug for OpenChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenChunks").finish_non_exhaustive()
    }
}

struct WalState {
    /// The key of the next WAL record.
    next_seq: u64,
    /// WAL bytes written since the last checkpoint.
    bytes: u64,
    /// The open chunks' bytes at the last checkpoint.
    open_bytes: u64,
    last_checkpoint: Instant,
    /// The newest timestamp appended to any series.
    max_t: i64,
}

/// What a checkpoint wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Open chunks written.
    pub written: usize,
    /// Open chunks cut because their series went idle.
    pub idle_cut: usize,
    /// Bytes of all open chunks.
    pub open_bytes: u64,
    /// The WAL records before this one were deleted.
    pub wal_end: u64,
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Box<Open>>> {
    // A panic while holding it leaves at worst a sample appended twice in
    // memory, which reads deduplicate.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

fn corrupt(what: &'static str) -> Error {
    Error::Corrupt { what }
}

impl OpenChunks {
    fn empty(next_seq: u64) -> Self {
        Self {
            segments: Segments::default(),
            with_recent: Mutex::new(Vec::new()),
            wal: Mutex::new(WalState {
                next_seq,
                bytes: 0,
                open_bytes: 0,
                last_checkpoint: Instant::now(),
                max_t: i64::MIN,
            }),
        }
    }

    fn wal_state(&self) -> MutexGuard<'_, WalState> {
        self.wal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn segment(&self, seg: usize) -> Arc<[Slot]> {
        self.segments
            .get_or_add(seg, || (0..SEGMENT).map(|_| Mutex::new(None)).collect())
    }

    /// Runs `f` on series `id`'s open chunk, if it has one.
    fn with<R>(&self, id: u64, f: impl FnOnce(&Open) -> R) -> Option<R> {
        let (seg, i) = slot(id);
        let segment = self.segments.with(|s| s.get(seg).cloned())?;
        let guard = lock(&segment[i]);
        guard.as_deref().map(f)
    }

    /// Appends `fresh` samples (in order per series) to their open chunks,
    /// adding the WAL record and the chunks they cut to `out`. Returns the
    /// samples that are not after their series' newest: the caller writes
    /// them to the `samples` column family. Called under the write lock.
    pub(crate) fn stage(
        &self,
        fresh: &[Fresh],
        safe_epoch: u64,
        out: &mut Staging<'_, '_>,
    ) -> Vec<Fresh> {
        let mut late = Vec::new();
        let mut record = wal::RecordWriter::new();
        let mut cached: Option<(usize, Arc<[Slot]>)> = None;
        let mut max_t = i64::MIN;
        for &(id, t, v) in fresh {
            let (seg, i) = slot(id);
            let s = match &cached {
                Some((n, s)) if *n == seg => s,
                _ => &cached.insert((seg, self.segment(seg))).1,
            };
            let mut guard = lock(&s[i]);
            let open = guard.get_or_insert_with(|| Box::new(Open::new()));
            open.prune(safe_epoch);
            if open.append(id, t, v, out) {
                record.push(id, t, v, open.wal_base);
                open.wal_base = Some(v.to_bits());
                max_t = max_t.max(t);
            } else {
                late.push((id, t, v));
            }
        }
        if !record.is_empty() {
            let record = record.finish();
            let mut state = self.wal_state();
            out.wb
                .put_cf(out.cfs.wal, wal::key(state.next_seq), &record);
            state.next_seq += 1;
            state.bytes += record.len() as u64;
            state.max_t = state.max_t.max(max_t);
        }
        late
    }

    /// Tags the chunks cut by a write just applied with `epoch`, the first
    /// reader epoch whose snapshots hold them.
    pub(crate) fn cuts_applied(&self, cut: &[u64], epoch: u64) {
        self.with_recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(cut);
        for &id in cut {
            let (seg, i) = slot(id);
            let segment = self.segment(seg);
            let mut guard = lock(&segment[i]);
            if let Some(open) = guard.as_mut() {
                for r in open.recent.iter_mut().filter(|r| r.epoch == PENDING) {
                    r.epoch = epoch;
                }
            }
        }
    }

    /// Drops the recent chunks that every reader's snapshot holds, so a
    /// chunk retention deleted is not read from memory for long.
    pub(crate) fn prune_recent(&self, safe_epoch: u64) {
        let mut ids = self.with_recent.lock().unwrap_or_else(|p| p.into_inner());
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&id| {
            let (seg, i) = slot(id);
            let Some(segment) = self.segments.with(|s| s.get(seg).cloned()) else {
                return false;
            };
            let mut guard = lock(&segment[i]);
            let Some(open) = guard.as_mut() else {
                return false;
            };
            open.prune(safe_epoch);
            if open.is_gone() {
                *guard = None;
                return false;
            }
            !open.recent.is_empty()
        });
    }

    /// Whether a checkpoint is due: the WAL holds twice what the open
    /// chunks would take to write (and at least
    /// [`MIN_CHECKPOINT_WAL_BYTES`]), so checkpoints write at most half as
    /// much as ingest, or
    /// anything after [`CHECKPOINT_INTERVAL`].
    pub fn checkpoint_due(&self) -> bool {
        let state = self.wal_state();
        state.bytes >= MIN_CHECKPOINT_WAL_BYTES.max(2 * state.open_bytes)
            || (state.bytes > 0 && state.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL)
    }

    /// Adds a checkpoint to `out`: every changed open chunk, the deletion
    /// of emptied ones, the cut of idle ones, and the deletion of every WAL
    /// record so far. Called under the write lock.
    pub(crate) fn checkpoint(&self, safe_epoch: u64, out: &mut Staging<'_, '_>) -> Checkpoint {
        let mut done = Checkpoint::default();
        let mut state = self.wal_state();
        let idle_before = state.max_t.saturating_sub(IDLE_MS);
        for (seg, segment) in self.segments.list().iter().enumerate() {
            for (i, slot) in segment.iter().enumerate() {
                let mut guard = lock(slot);
                let Some(open) = guard.as_mut() else { continue };
                let id = (seg * SEGMENT + i) as u64;
                open.prune(safe_epoch);
                if !open.enc.is_empty() && open.last_ts < idle_before {
                    open.cut(id, out);
                    done.idle_cut += 1;
                }
                if open.enc.is_empty() {
                    if open.checkpointed {
                        out.wb.delete_cf(out.cfs.open, keys::series_key(id));
                        open.checkpointed = false;
                    }
                } else if open.dirty {
                    out.wb
                        .put_cf(out.cfs.open, keys::series_key(id), open.enc.bytes());
                    open.checkpointed = true;
                    done.written += 1;
                }
                open.dirty = false;
                // What the checkpoint now holds for the series is what its
                // next WAL sample is XORed with.
                open.wal_base = open.enc.last().map(|(_, v)| v);
                done.open_bytes += open.enc.bytes().len() as u64;
                if open.is_gone() {
                    *guard = None;
                }
            }
        }
        out.wb
            .delete_range_cf(out.cfs.wal, wal::key(0), wal::key(state.next_seq));
        state.bytes = 0;
        state.open_bytes = done.open_bytes;
        done.wal_end = state.next_seq;
        state.last_checkpoint = Instant::now();
        done
    }

    /// Returns the bytes of the open chunks at the last checkpoint.
    pub fn checkpointed_bytes(&self) -> u64 {
        self.wal_state().open_bytes
    }

    /// Returns the first sample's timestamp of series `id`'s open chunk,
    /// if it holds any: samples written elsewhere must stay before it.
    pub fn first_ts(&self, id: u64) -> Option<i64> {
        self.with(id, |o| (!o.enc.is_empty()).then_some(o.first_ts))
            .flatten()
    }

    /// Returns the newest timestamp appended to series `id` since it was
    /// last idle, if any.
    pub fn last_ts(&self, id: u64) -> Option<i64> {
        self.with(id, |o| (o.last_ts != i64::MIN).then_some(o.last_ts))
            .flatten()
    }

    /// Appends series `id`'s samples in memory with `mint <= t <= maxt` to
    /// `out`: those of its recent chunks, then of its open chunk (so `out`
    /// may repeat a stored chunk's samples, or be out of order after them:
    /// readers merge).
    pub fn read(&self, id: u64, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
        if mint > maxt {
            return Ok(());
        }
        self.with(id, |o| {
            if o.last_ts < mint {
                return Ok(());
            }
            for r in &o.recent {
                samples_in(&r.chunk, mint, maxt, out)?;
            }
            if !o.enc.is_empty() && o.first_ts <= maxt {
                samples_in(o.enc.bytes(), mint, maxt, out)?;
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
    }

    /// Returns whether series `id` has any sample in memory (an open or a
    /// recent chunk), without decoding one.
    pub fn holds(&self, id: u64) -> bool {
        self.with(id, |o| !o.enc.is_empty() || !o.recent.is_empty())
            .unwrap_or(false)
    }

    /// Returns whether series `id` has a sample in memory with
    /// `mint <= t <= maxt`.
    pub fn any_in(&self, id: u64, mint: i64, maxt: i64) -> Result<bool> {
        let mut found = Vec::new();
        self.read(id, mint, maxt, &mut found)?;
        Ok(!found.is_empty())
    }

    /// Returns the oldest and newest timestamps in memory (open and recent
    /// chunks), if any; one pass over every series.
    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        let mut bounds: Option<(i64, i64)> = None;
        for segment in self.segments.list() {
            for slot in segment.iter() {
                let guard = lock(slot);
                let Some(open) = guard.as_deref() else {
                    continue;
                };
                let first = open
                    .recent
                    .first()
                    .and_then(|r| ChunkDecoder::new(&r.chunk).ok()?.next()?.ok())
                    .map(|(t, _)| t)
                    .or((!open.enc.is_empty()).then_some(open.first_ts));
                if let Some(first) = first {
                    bounds = Some(match bounds {
                        None => (first, open.last_ts),
                        Some((lo, hi)) => (lo.min(first), hi.max(open.last_ts)),
                    });
                }
            }
        }
        bounds
    }

    /// Returns how many series have an open chunk holding samples.
    pub fn series(&self) -> usize {
        self.segments
            .list()
            .iter()
            .flat_map(|s| s.iter())
            .filter(|s| lock(s).as_ref().is_some_and(|o| !o.enc.is_empty()))
            .count()
    }
}

/// Appends the samples of chunk `bytes` with `mint <= t <= maxt` to `out`.
fn samples_in(bytes: &[u8], mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
    for s in ChunkDecoder::new(bytes).map_err(|_| corrupt("open chunk"))? {
        let (t, v) = s.map_err(|_| corrupt("open chunk"))?;
        if t > maxt {
            break;
        }
        if t >= mint {
            out.push(Sample { t, v });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
