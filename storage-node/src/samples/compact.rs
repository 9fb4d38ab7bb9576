//! Compaction of the head: moving a series' older head samples into chunks
//! ([`compact_series`]) and finding the series that are due ([`scan_head`]).
//! The [`crate::compactor`] runs both; reads are in the parent module.

use super::*;

/// Splits `n` samples into chunks of about `target` samples: as many chunks
/// of at least `target` as fit (one when `n < target`), sizes differing by at
/// most one. Returns the chunk sizes.
pub(super) fn chunk_sizes(n: usize, target: usize) -> impl Iterator<Item = usize> {
    let pieces = (n / target.max(1)).max(1);
    let (base, extra) = (n / pieces, n % pieces);
    (0..pieces).map(move |i| base + usize::from(i < extra))
}

/// Encodes `samples` (strictly increasing in time) as chunks of about
/// `target` samples and adds them to `wb`.
fn put_chunks(
    db: &Db,
    wb: &mut DbBatch,
    id: u64,
    samples: &[Sample],
    target: usize,
) -> Result<usize> {
    let mut rest = samples;
    let mut n = 0;
    for size in chunk_sizes(samples.len(), target) {
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        let mut enc = ChunkEncoder::new();
        for s in piece {
            enc.append(s.t, s.v).map_err(|e| corrupt_chunk(id, e))?;
        }
        let Some(last) = piece.last() else { continue };
        wb.put_cf(
            db.cf(keys::CF_CHUNKS),
            keys::chunk_key(id, last.t),
            keys::encode_chunk_value(&enc.finish()),
        );
        wb.touches_chunk(id, last.t);
        n += 1;
    }
    Ok(n)
}

/// What [`compact_series`] moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Head samples moved into chunks.
    pub samples: usize,
    /// Chunks written (new or rewritten).
    pub chunks_written: usize,
    /// Existing chunks rewritten: to take late samples, or reopened.
    pub chunks_rewritten: usize,
}

/// Adds to `wb` the moving of series `id`'s head samples with `t <= cut`
/// into chunks of about `target` samples, as read by `reader`: puts the
/// chunks and deletes exactly the head keys they hold. The series' last
/// chunk, when it holds fewer than `target` samples, is reopened: its
/// samples are compacted again with the head's. A head sample at or before
/// the newest timestamp of the chunks that stay (a late one) is merged into
/// the chunk it falls in, which is rewritten (its key stays, as its last
/// timestamp does; a chunk grown past twice `target` is split).
///
/// The batch also lets the series' head bound rise to its first head
/// sample after the cut ([`crate::head_bounds`]), even when nothing is
/// compacted: a head emptied by retention, or a series whose samples are
/// all newer than the cut.
///
/// `reader` must see the database as `wb` will find it: the compactor calls
/// this inside [`Db::read_modify_write`].
pub(crate) fn compact_series(
    reader: &SampleReader<'_>,
    wb: &mut DbBatch,
    id: u64,
    cut: i64,
    target: usize,
) -> Result<Compacted> {
    let db = reader.db;
    // The open chunk's samples will be cut into a chunk of their own: head
    // samples in its span wait for it, so chunks never overlap.
    let cut = match db.open_chunks().first_ts(id) {
        Some(first) => cut.min(first.saturating_sub(1)),
        None => cut,
    };
    let head = reader.head(id, i64::MIN, cut)?;
    let mut done = Compacted::default();
    // Whatever happens below, the head will start at its first sample after
    // the cut (none: the head is empty); the bound may rise to it.
    wb.head_starts_at(id, reader.head_after(id, cut)?.unwrap_or(i64::MAX));
    if head.is_empty() {
        return Ok(done);
    }
    // A last chunk with room left is reopened: its samples are compacted
    // again with the head's (which win at equal timestamps), so a series
    // compacted often grows its last chunk instead of cutting small ones.
    let (before, last) = reader.last_chunks(id)?;
    let mut max_c = last.as_ref().map(|c| c.last_ts);
    let mut pending = std::borrow::Cow::Borrowed(head.as_slice());
    if let Some(last) = last.filter(|c| c.num_samples() < target) {
        wb.delete_cf(db.cf(keys::CF_CHUNKS), keys::chunk_key(id, last.last_ts));
        done.chunks_rewritten += 1;
        pending = std::borrow::Cow::Owned(merge(last.samples()?, &head));
        max_c = before;
    }
    let late_end = max_c.map_or(0, |m| pending.partition_point(|s| s.t <= m));
    let (mut late, fresh) = pending.split_at(late_end);

    if let Some(&first_late) = late.first() {
        // Every late sample falls in, or in the gap before, one of the
        // chunks at or after the first late sample.
        let cf = db.cf(keys::CF_CHUNKS);
        let mut it = reader.series_iter(keys::CF_CHUNKS, id, first_late.t);
        while let (false, Some(k), Some(v)) = (late.is_empty(), it.key(), it.value()) {
            let chunk = StoredChunk::decode(id, k, v)?;
            it.next();
            let mine = late.partition_point(|s| s.t <= chunk.last_ts);
            if mine == 0 {
                continue;
            }
            let merged = merge(chunk.samples()?, &late[..mine]);
            late = &late[mine..];
            wb.delete_cf(cf, keys::chunk_key(id, chunk.last_ts));
            done.chunks_written += put_chunks(db, wb, id, &merged, target)?;
            done.chunks_rewritten += 1;
        }
        it.status()?;
        if !late.is_empty() {
            return Err(corrupt_chunk(id, "late sample after the last chunk"));
        }
    }
    done.chunks_written += put_chunks(db, wb, id, fresh, target)?;

    let cf = db.cf(keys::CF_SAMPLES);
    for s in &head {
        wb.delete_cf(cf, keys::sample_key(id, s.t));
    }
    done.samples = head.len();
    Ok(done)
}

/// Head samples of one series, as counted by [`scan_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadStats {
    pub id: u64,
    /// Head samples at or before the cut.
    pub before_cut: usize,
    /// The oldest head sample's timestamp (`i64::MAX` when none is before
    /// the cut).
    pub oldest: i64,
}

/// Returns, per series whose head bound is at or before `cut`, how many
/// head samples are at or before it and the oldest (none: 0 and
/// `i64::MAX`). Only series whose head bound is at or before `cut`
/// are sought, each at its bound, so the deleted keys before it cost
/// nothing. Reads a snapshot and writes nothing; what it finds may be stale
/// by the time the caller acts, so it only chooses which series to look at.
pub fn scan_head(db: &Db, cut: i64) -> Result<Vec<HeadStats>> {
    let reader = SampleReader::new(db);
    let bounds = db.head_bounds().view();
    let mut it = reader
        .snap
        .raw_iterator_cf_opt(db.cf(keys::CF_SAMPLES), Db::series_read_options());
    let mut out: Vec<HeadStats> = Vec::new();
    for (id, from) in bounds.at_or_before(cut) {
        // A bound before the cut with no sample there is stale: report the
        // series with none, so that the compactor raises its bound.
        out.push(HeadStats {
            id,
            before_cut: 0,
            oldest: i64::MAX,
        });
        it.seek(keys::sample_key(id, from));
        while let Some(k) = it.key() {
            let (sid, t) = keys::decode_sample_key(k).ok_or_else(corrupt_sample)?;
            if sid != id || t > cut {
                break;
            }
            if let Some(s) = out.last_mut() {
                s.oldest = s.oldest.min(t);
                s.before_cut += 1;
            }
            it.next();
        }
        it.status()?;
    }
    Ok(out)
}
