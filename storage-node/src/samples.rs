//! Sample storage: how samples are appended, read back and compacted.
//!
//! New samples go to their series' open chunk in memory ([`append_fresh`],
//! [`crate::open_chunks`]); samples older than their series' newest go to
//! the head, one key per sample ([`append`]); the writer adds either inside
//! its scrape batch's `WriteBatch`. The [`crate::compactor`]
//! later moves older head samples into compressed chunks
//! ([`compact_series`] and [`scan_head`], in `samples/compact.rs`). Reads
//! ([`SampleReader`], [`read`], [`any_in`]) see both CFs at one RocksDB
//! snapshot and merge them by timestamp, so a compaction committing in the
//! middle of a read is invisible to it. [`SeriesCursor`]
//! (`samples/cursor.rs`) reads many series at one snapshot with one iterator
//! per CF, and [`SampleReader::read_many`] (`samples/read_many.rs`) spreads
//! such reads over a pool of threads.
//! Native histogram samples have their own CF, one key each
//! (`samples/histograms.rs`: [`append_histogram`],
//! [`SampleReader::histograms`]).
//! [`crate::keys`] documents the layouts; besides this module and the
//! compactor, only retention (deleting old ranges) and [`crate::db`]
//! (reading where each head starts, at open) touch the `samples` or
//! `chunks` CF.

use rocksdb::{DBRawIterator, ReadOptions, Snapshot};

use crate::chunk::{ChunkDecoder, ChunkEncoder};

use crate::db::{Db, DbBatch};
use crate::error::{Error, Result};
use crate::head_bounds::ReadGuard;
use crate::keys;

/// One stored sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// Adds a sample of series `id` to `wb`; a sample at the same timestamp is
/// overwritten.
pub fn append(db: &Db, wb: &mut DbBatch, id: u64, ts_ms: i64, value: f64) {
    wb.put_cf(
        db.cf(keys::CF_SAMPLES),
        keys::sample_key(id, ts_ms),
        keys::encode_sample_value(value),
    );
    wb.appends(id, ts_ms);
}

/// Adds a sample of series `id` newer than every sample the series has
/// to `wb`: appended to its open chunk when the batch is written
/// ([`crate::open_chunks`]).
pub fn append_fresh(wb: &mut DbBatch, id: u64, ts_ms: i64, value: f64) {
    wb.appends_fresh(id, ts_ms, value);
}

/// Returns the samples of series `id` with `mint <= t <= maxt`, oldest
/// first, stale markers included.
pub fn read(db: &Db, id: u64, mint: i64, maxt: i64) -> Result<Vec<Sample>> {
    SampleReader::new(db).read(id, mint, maxt)
}

/// Returns whether series `id` has any sample with `mint <= t <= maxt`.
pub fn any_in(db: &Db, id: u64, mint: i64, maxt: i64) -> Result<bool> {
    SampleReader::new(db).any_in(id, mint, maxt)
}

/// Returns the newest timestamp of series `id` stored in a chunk, if any.
/// Samples at or before it that arrive late go to the head and are merged
/// into their chunk by the next compaction; a writer that wants to refuse
/// them instead compares against this.
pub fn max_compacted_ts(db: &Db, id: u64) -> Result<Option<i64>> {
    SampleReader::new(db).max_compacted_ts(id)
}

/// Returns the newest timestamp of series `id` (open chunk, head or
/// chunks), if any.
pub fn last_ts(db: &Db, id: u64) -> Result<Option<i64>> {
    let r = SampleReader::new(db);
    if let Some(t) = db.open_chunks().last_ts(id) {
        return Ok(Some(t));
    }
    let head = match db.head_bounds().head_min(id) {
        i64::MAX => None,
        _ => r.last_key_before(keys::CF_SAMPLES, id)?,
    };
    Ok(head.max(r.max_compacted_ts(id)?))
}

/// Calls `visit` for each series with head samples, in id order, with the
/// series id and the timestamps of its oldest and newest head sample, until
/// `visit` returns an error or `false`. Each series is
/// sought at its head bound, so the compactor's deleted keys before it cost
/// nothing (a walk of the `samples` CF from its start steps over every one
/// of them).
pub fn for_each_head_span(
    db: &Db,
    mut visit: impl FnMut(u64, i64, i64) -> Result<bool>,
) -> Result<()> {
    let reader = SampleReader::new(db);
    let bounds = db.head_bounds().view();
    let mut it = reader
        .snap
        .raw_iterator_cf_opt(db.cf(keys::CF_SAMPLES), Db::series_read_options());
    // `i64::MAX` is "no head samples".
    for (id, from) in bounds.at_or_before(i64::MAX - 1) {
        it.seek(keys::sample_key(id, from));
        let Some(k) = it.key() else {
            it.status()?;
            continue;
        };
        let (sid, first) = keys::decode_sample_key(k).ok_or_else(corrupt_sample)?;
        if sid != id {
            continue;
        }
        it.seek_for_prev(keys::sample_key(id, i64::MAX));
        let (_, last) = it
            .key()
            .and_then(keys::decode_sample_key)
            .filter(|(sid, _)| *sid == id)
            .ok_or_else(corrupt_sample)?;
        if !visit(id, first, last)? {
            break;
        }
    }
    Ok(it.status()?)
}

fn corrupt_sample() -> Error {
    Error::Corrupt { what: "sample" }
}

fn corrupt_chunk(id: u64, err: impl std::fmt::Display) -> Error {
    tracing::error!(series = id, error = %err, "corrupt chunk");
    Error::Corrupt { what: "chunk" }
}

/// Reads samples from the head and the chunks at one snapshot, and from
/// the open chunks in memory.
pub struct SampleReader<'a> {
    db: &'a Db,
    snap: Snapshot<'a>,
    /// Registered before the snapshot was taken, so the head bounds stay
    /// valid for it ([`crate::head_bounds`]).
    _registered: ReadGuard<'a>,
}

impl<'a> SampleReader<'a> {
    /// Returns a reader of the database as it is now.
    pub fn new(db: &'a Db) -> Self {
        let registered = db.head_bounds().register();
        Self {
            db,
            snap: db.raw().snapshot(),
            _registered: registered,
        }
    }

    /// Returns where series `id`'s head samples in `[mint, maxt]` start
    /// being worth a seek: `None` when the head bound says there are none.
    fn head_from(&self, id: u64, mint: i64, maxt: i64) -> Option<i64> {
        let from = mint.max(self.db.head_bounds().head_min(id));
        (from <= maxt).then_some(from)
    }

    /// Returns an iterator over `cf` bounded to the keys of series `id`,
    /// positioned at `(id, from)`.
    fn series_iter(&self, cf: &'static str, id: u64, from: i64) -> DBRawIterator<'_> {
        let mut ro = ReadOptions::default();
        if let Some(next) = id.checked_add(1) {
            ro.set_iterate_upper_bound(keys::sample_key(next, i64::MIN).to_vec());
        }
        let mut it = self.snap.raw_iterator_cf_opt(self.db.cf(cf), ro);
        it.seek(keys::sample_key(id, from));
        it
    }

    /// Returns the timestamp in the last key of series `id` in `cf` (the
    /// newest head sample, or the newest chunk's last sample).
    fn last_key_before(&self, cf: &'static str, id: u64) -> Result<Option<i64>> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(keys::sample_key(id, i64::MIN).to_vec());
        let mut it = self.snap.raw_iterator_cf_opt(self.db.cf(cf), ro);
        it.seek_for_prev(keys::sample_key(id, i64::MAX));
        let found = match it.key() {
            Some(k) => {
                let (sid, t) = keys::decode_sample_key(k).ok_or_else(corrupt_sample)?;
                (sid == id).then_some(t)
            }
            None => None,
        };
        it.status()?;
        Ok(found)
    }

    /// Returns the newest compacted timestamp of series `id`.
    pub fn max_compacted_ts(&self, id: u64) -> Result<Option<i64>> {
        self.last_key_before(keys::CF_CHUNKS, id)
    }

    /// Returns series `id`'s last chunk and the last timestamp of the chunk
    /// before it: `(before, last)`.
    fn last_chunks(&self, id: u64) -> Result<(Option<i64>, Option<StoredChunk>)> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(keys::chunk_key(id, i64::MIN).to_vec());
        let mut it = self
            .snap
            .raw_iterator_cf_opt(self.db.cf(keys::CF_CHUNKS), ro);
        it.seek_for_prev(keys::chunk_key(id, i64::MAX));
        let last = match (it.key(), it.value()) {
            (Some(k), Some(v)) => Some(StoredChunk::decode(id, k, v)?),
            _ => None,
        };
        let before = if last.is_some() {
            it.prev();
            it.key()
                .map(|k| keys::decode_chunk_key(k).ok_or_else(|| corrupt_chunk(id, "key")))
                .transpose()?
                .map(|(_, t)| t)
        } else {
            None
        };
        it.status()?;
        Ok((before, last))
    }

    /// Returns the head samples of series `id` with `mint <= t <= maxt`.
    pub fn head(&self, id: u64, mint: i64, maxt: i64) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        let Some(from) = self.head_from(id, mint, maxt) else {
            return Ok(out);
        };
        let mut it = self.series_iter(keys::CF_SAMPLES, id, from);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let (_, t) = keys::decode_sample_key(k).ok_or_else(corrupt_sample)?;
            if t > maxt {
                break;
            }
            let v = keys::decode_sample_value(v).ok_or_else(corrupt_sample)?;
            out.push(Sample { t, v });
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Returns the timestamp of series `id`'s first head sample after `t`.
    fn head_after(&self, id: u64, t: i64) -> Result<Option<i64>> {
        let Some(from) = t.checked_add(1) else {
            return Ok(None);
        };
        let Some(from) = self.head_from(id, from, i64::MAX) else {
            return Ok(None);
        };
        let it = self.series_iter(keys::CF_SAMPLES, id, from);
        let found = match it.key() {
            Some(k) => Some(keys::decode_sample_key(k).ok_or_else(corrupt_sample)?.1),
            None => None,
        };
        it.status()?;
        Ok(found)
    }

    /// Returns the chunks of series `id` that may hold samples with
    /// `mint <= t <= maxt`, oldest first.
    pub fn chunks(&self, id: u64, mint: i64, maxt: i64) -> Result<Vec<StoredChunk>> {
        let mut out = Vec::new();
        if mint > maxt {
            return Ok(out);
        }
        let mut it = self.series_iter(keys::CF_CHUNKS, id, mint);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let chunk = StoredChunk::decode(id, k, v)?;
            if chunk.first_ts > maxt {
                break;
            }
            out.push(chunk);
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Returns the series index as this reader's snapshot sees it.
    pub fn index(&self) -> crate::index::Index<'_> {
        crate::index::Index::at(self.db, &self.snap)
    }

    /// Returns a cursor that reads many series at this reader's snapshot
    /// with one iterator per column family: seeking an open iterator costs
    /// far less than opening one per series.
    pub fn cursor(&self) -> SeriesCursor<'_> {
        let open = |cf, ro| self.snap.raw_iterator_cf_opt(self.db.cf(cf), ro);
        SeriesCursor {
            // The head holds the compactor's deleted keys: each read seeks
            // and stops at the end of its series, never stepping into the
            // next one's deleted keys.
            head: open(keys::CF_SAMPLES, Db::series_read_options()),
            // Chunks are rarely deleted: reads in id order step on from
            // one series' chunks to the next's.
            chunks: open(keys::CF_CHUNKS, Db::total_order_read_options()),
            chunks_from: None,
            seek_only: 0,
            bounds: self.db.head_bounds().view(),
            ends: self.db.chunk_ends().view(),
            get_opts: {
                let mut ro = ReadOptions::default();
                ro.set_snapshot(&self.snap);
                ro
            },
            db: self.db,
        }
    }

    /// Returns the samples of series `id` with `mint <= t <= maxt`, oldest
    /// first, stale markers included: the chunks' and the head's, merged.
    pub fn read(&self, id: u64, mint: i64, maxt: i64) -> Result<Vec<Sample>> {
        self.cursor().read(id, mint, maxt)
    }

    /// Returns whether series `id` holds anything: a sample (open chunk,
    /// head or chunk) or a native histogram, whatever its time.
    pub fn holds_any(&self, id: u64) -> Result<bool> {
        if self.any_in(id, i64::MIN, i64::MAX)? {
            return Ok(true);
        }
        let it = self.series_iter(keys::CF_HISTOGRAMS, id, i64::MIN);
        let found = it.key().is_some();
        it.status()?;
        Ok(found)
    }

    /// Returns whether series `id` has any sample with `mint <= t <= maxt`.
    pub fn any_in(&self, id: u64, mint: i64, maxt: i64) -> Result<bool> {
        if mint > maxt {
            return Ok(false);
        }
        if self.db.open_chunks().any_in(id, mint, maxt)? {
            return Ok(true);
        }
        if let Some(from) = self.head_from(id, mint, maxt) {
            let it = self.series_iter(keys::CF_SAMPLES, id, from);
            let in_head = it
                .key()
                .and_then(keys::decode_sample_key)
                .is_some_and(|(_, t)| t <= maxt);
            it.status()?;
            if in_head {
                return Ok(true);
            }
        }
        for chunk in self.chunks(id, mint, maxt)? {
            // The chunk spans [first_ts, last_ts] and overlaps the range;
            // only a gap inside it can leave the range empty.
            if chunk.first_ts >= mint || chunk.last_ts <= maxt {
                return Ok(true);
            }
            for s in ChunkDecoder::new(chunk.bytes()).map_err(|e| corrupt_chunk(id, e))? {
                let (t, _) = s.map_err(|e| corrupt_chunk(id, e))?;
                if t > maxt {
                    break;
                }
                if t >= mint {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// One stored chunk of a series.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub id: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    /// The `chunks` value: encoding byte and chunk.
    value: Vec<u8>,
}

impl StoredChunk {
    fn decode(id: u64, k: &[u8], v: &[u8]) -> Result<Self> {
        let (sid, last_ts) = keys::decode_chunk_key(k).ok_or_else(|| corrupt_chunk(id, "key"))?;
        let bytes = keys::decode_chunk_value(v).ok_or_else(|| corrupt_chunk(id, "encoding"))?;
        let first = ChunkDecoder::new(bytes)
            .map_err(|e| corrupt_chunk(id, e))?
            .next()
            .ok_or_else(|| corrupt_chunk(id, "empty chunk"))?;
        let (first_ts, _) = first.map_err(|e| corrupt_chunk(id, e))?;
        if sid != id || first_ts > last_ts {
            return Err(corrupt_chunk(id, "key does not match chunk"));
        }
        Ok(Self {
            id,
            first_ts,
            last_ts,
            value: v.to_vec(),
        })
    }

    /// Returns the chunk bytes ([`crate::chunk`] layout).
    pub fn bytes(&self) -> &[u8] {
        &self.value[1..]
    }

    /// Returns the number of samples the chunk holds.
    fn num_samples(&self) -> usize {
        ChunkDecoder::new(self.bytes()).map_or(0, |d| d.num_samples())
    }

    /// Returns all samples of the chunk.
    fn samples(&self) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        chunk_samples_in(
            self.id,
            self.last_ts,
            self.bytes(),
            i64::MIN,
            i64::MAX,
            &mut out,
        )?;
        Ok(out)
    }
}

/// Appends the samples with `mint <= t <= maxt` of the chunk `bytes` of
/// series `id`, whose key says it ends at `last_ts`, to `out`; checks that
/// it does end there when decoded to the end.
fn chunk_samples_in(
    id: u64,
    last_ts: i64,
    bytes: &[u8],
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> Result<()> {
    let corrupt = |e| corrupt_chunk(id, e);
    let mut last = None;
    for s in ChunkDecoder::new(bytes).map_err(corrupt)? {
        let (t, v) = s.map_err(corrupt)?;
        if t > maxt {
            return Ok(());
        }
        last = Some(t);
        if t >= mint {
            out.push(Sample { t, v });
        }
    }
    if last != Some(last_ts) {
        return Err(corrupt_chunk(id, "last sample does not match key"));
    }
    Ok(())
}

/// Merges two runs of samples sorted by time into one; when both hold a
/// timestamp, `newer`'s sample wins. An unsorted `older` (chunks that
/// overlap, which compaction never writes) is sorted first.
fn merge(mut older: Vec<Sample>, newer: &[Sample]) -> Vec<Sample> {
    if !older.windows(2).all(|w| w[0].t < w[1].t) {
        older.sort_by_key(|s| s.t);
        older.dedup_by_key(|s| s.t);
    }
    if newer.is_empty() {
        return older;
    }
    if older.is_empty() {
        return newer.to_vec();
    }
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut i, mut j) = (0, 0);
    while i < older.len() && j < newer.len() {
        let (a, b) = (older[i], newer[j]);
        if a.t < b.t {
            out.push(a);
            i += 1;
        } else {
            out.push(b);
            j += 1;
            if a.t == b.t {
                i += 1;
            }
        }
    }
    out.extend_from_slice(&older[i..]);
    out.extend_from_slice(&newer[j..]);
    out
}

mod compact;
mod cursor;
mod histogram_chunks;
mod histograms;
mod read_many;
pub(crate) use compact::compact_series;
pub use compact::{scan_head, Compacted, HeadStats};
pub use cursor::SeriesCursor;
pub use histogram_chunks::{align as align_histogram_chunks, window as histogram_chunk_window};
pub use histograms::{append_histogram, HistogramSample};

#[cfg(test)]
mod tests;
