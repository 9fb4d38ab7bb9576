//! [`SeriesCursor`]: reads the samples of many series at one snapshot with
//! one iterator per column family, stepping from one series' chunks to the
//! next's instead of seeking when they are near.

use rocksdb::{DBRawIterator, ReadOptions};

use super::{chunk_samples_in, corrupt_chunk, corrupt_sample, merge, Sample};
use crate::chunk::ChunkDecoder;
use crate::chunk_ends::{self, EndsView};
use crate::db::Db;
use crate::error::Result;
use crate::head_bounds::BoundsView;
use crate::keys;

/// Reads the samples of many series at one snapshot ([`super::SampleReader::cursor`]).
pub struct SeriesCursor<'r> {
    pub(super) head: DBRawIterator<'r>,
    pub(super) chunks: DBRawIterator<'r>,
    /// When known, a key such that `chunks` is at the first key at or after
    /// it (or at the end when there is none).
    pub(super) chunks_from: Option<(u64, i64)>,
    /// Reads left that seek without trying to step first: set when stepping
    /// failed, as it does for every series of a read that starts late in
    /// each series (an instant query), where the steps are wasted.
    pub(super) seek_only: u8,
    /// Taken after the reader's snapshot, so valid for it.
    pub(super) bounds: BoundsView,
    /// Taken after the reader's snapshot, so valid for it.
    pub(super) ends: EndsView,
    /// Reads one key at the reader's snapshot.
    pub(super) get_opts: ReadOptions,
    pub(super) db: &'r Db,
}

/// Keys at most this many ahead of the chunks iterator are reached by
/// stepping, not seeking.
const STEP_MAX: usize = 8;
/// Reads that seek straight away after stepping failed once.
const SEEK_ONLY_READS: u8 = 16;

impl SeriesCursor<'_> {
    /// Moves the chunks iterator to the first key at or after `(id, t)`:
    /// by stepping when it is a few keys ahead (the next series of a read in
    /// id order), else by seeking; after stepping failed, the next
    /// [`SEEK_ONLY_READS`] reads seek without trying.
    fn chunks_to(&mut self, id: u64, t: i64) -> Result<()> {
        let target = (id, t);
        if self.seek_only > 0 {
            self.seek_only -= 1;
        } else if self.chunks_from.is_some_and(|from| from <= target) {
            for _ in 0..=STEP_MAX {
                let Some(k) = self.chunks.key() else {
                    // Nothing at or after `from`, so nothing after `target`.
                    return Ok(self.chunks.status()?);
                };
                let at = keys::decode_chunk_key(k).ok_or_else(|| corrupt_chunk(id, "key"))?;
                if at >= target {
                    return Ok(());
                }
                self.chunks_next(at);
            }
            self.seek_only = SEEK_ONLY_READS;
        }
        self.chunks.seek(keys::chunk_key(id, t));
        self.chunks_from = Some(target);
        Ok(())
    }

    /// Steps the chunks iterator on from the key `at` it is on.
    fn chunks_next(&mut self, at: (u64, i64)) {
        self.chunks.next();
        self.chunks_from = match at {
            (id, t) if t < i64::MAX => Some((id, t + 1)),
            (id, _) => id.checked_add(1).map(|next| (next, i64::MIN)),
        };
    }

    /// Returns the samples of series `id` with `mint <= t <= maxt`, oldest
    /// first, stale markers included, as [`super::SampleReader::read`] does.
    pub fn read(&mut self, id: u64, mint: i64, maxt: i64) -> Result<Vec<Sample>> {
        if mint > maxt {
            return Ok(Vec::new());
        }
        let mut head = Vec::new();
        let from = mint.max(self.bounds.head_min(id));
        if from <= maxt {
            self.head.seek(keys::sample_key(id, from));
            while let (Some(k), Some(v)) = (self.head.key(), self.head.value()) {
                let (sid, t) = keys::decode_sample_key(k).ok_or_else(corrupt_sample)?;
                if sid != id || t > maxt {
                    break;
                }
                let v = keys::decode_sample_value(v).ok_or_else(corrupt_sample)?;
                head.push(Sample { t, v });
                self.head.next();
            }
            self.head.status()?;
        }
        let mut compacted = Vec::new();
        if !self.newest_chunk_only(id, mint, maxt, &mut compacted)? {
            self.chunks_in(id, mint, maxt, &mut compacted)?;
        }
        // Newer than every stored chunk but a recent cut one, which the
        // merge counts once.
        self.db.open_chunks().read(id, mint, maxt, &mut compacted)?;
        Ok(merge(compacted, &head))
    }

    /// Reads the samples of series `id` in `[mint, maxt]` from its chunks
    /// when its chunk end ([`crate::chunk_ends`]) shows that none of its
    /// chunks reaches the range, or that only its newest does (then fetched
    /// by key); returns whether it could.
    fn newest_chunk_only(
        &mut self,
        id: u64,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<bool> {
        let end = self.ends.get(id);
        if end == chunk_ends::UNKNOWN {
            return Ok(false);
        }
        if end < mint {
            // The newest chunk in the snapshot ends at or before `end`.
            return Ok(true);
        }
        let found = self.db.raw().get_pinned_cf_opt(
            self.db.cf(keys::CF_CHUNKS),
            keys::chunk_key(id, end),
            &self.get_opts,
        )?;
        // Missing: retention deleted it, or it was written after the
        // snapshot (the end rose meanwhile).
        let Some(value) = found else {
            return Ok(false);
        };
        let bytes =
            keys::decode_chunk_value(&value).ok_or_else(|| corrupt_chunk(id, "encoding"))?;
        let first = match ChunkDecoder::new(bytes)
            .map_err(|e| corrupt_chunk(id, e))?
            .next()
        {
            Some(first) => first.map_err(|e| corrupt_chunk(id, e))?.0,
            None => return Err(corrupt_chunk(id, "empty chunk")),
        };
        // It is the newest chunk in the snapshot, and older chunks end
        // before it starts: they hold nothing at or after `mint` when it
        // starts there or earlier.
        if first > mint {
            return Ok(false);
        }
        chunk_samples_in(id, end, bytes, mint, maxt, out)?;
        Ok(true)
    }

    /// Reads the samples of series `id` in `[mint, maxt]` from its chunks
    /// through the chunks iterator; learns the series' chunk end when it
    /// reads the newest chunk.
    fn chunks_in(&mut self, id: u64, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
        let compacted = out;
        let mut last_read = None;
        self.chunks_to(id, mint)?;
        while let (Some(k), Some(v)) = (self.chunks.key(), self.chunks.value()) {
            let (sid, last_ts) =
                keys::decode_chunk_key(k).ok_or_else(|| corrupt_chunk(id, "key"))?;
            if sid != id {
                break;
            }
            let bytes = keys::decode_chunk_value(v).ok_or_else(|| corrupt_chunk(id, "encoding"))?;
            chunk_samples_in(id, last_ts, bytes, mint, maxt, compacted)?;
            last_read = Some(last_ts);
            self.chunks_next((sid, last_ts));
            // Chunks never overlap: one that ends at or after `maxt` is the
            // last that can hold samples in the range.
            if last_ts >= maxt {
                break;
            }
        }
        self.chunks.status()?;
        // The key after the last chunk read belongs to another series (or
        // there is none): that chunk is the series' newest.
        if let Some(last_ts) = last_read {
            let next_series = match self.chunks.key() {
                Some(k) => keys::decode_chunk_key(k).is_none_or(|(sid, _)| sid != id),
                None => true,
            };
            if next_series {
                self.db.chunk_ends().saw_newest(id, last_ts);
            }
        }
        Ok(())
    }
}
