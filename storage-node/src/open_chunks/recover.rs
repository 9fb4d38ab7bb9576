//! Recovery at open: the open chunks rebuilt from the last checkpoint and
//! the WAL records after it ([`OpenChunks::recover`]).

use std::collections::HashMap;

use rocksdb::{ColumnFamily, DB};
use scrapegrid_common::telemetry::Progress;

use super::{corrupt, lock, slot, wal, Open, OpenChunks, Staging, MIN_CHECKPOINT_WAL_BYTES};
use crate::db::Db;
use crate::error::Result;
use crate::keys;

/// The newest chunk's last timestamp of every series asked about, read
/// from the database once each.
struct ChunkEndsAtOpen<'a> {
    db: &'a DB,
    cf: &'a ColumnFamily,
    known: HashMap<u64, i64>,
}

impl ChunkEndsAtOpen<'_> {
    fn get(&mut self, id: u64) -> Result<i64> {
        if let Some(&t) = self.known.get(&id) {
            return Ok(t);
        }
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(keys::chunk_key(id, i64::MIN).to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.cf, ro);
        it.seek_for_prev(keys::chunk_key(id, i64::MAX));
        let end = match it.key() {
            Some(k) => match keys::decode_chunk_key(k) {
                Some((sid, t)) if sid == id => t,
                Some(_) => i64::MIN,
                None => return Err(corrupt("chunk")),
            },
            None => i64::MIN,
        };
        it.status()?;
        self.known.insert(id, end);
        Ok(end)
    }
}

/// What recovery rebuilt, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Open chunks loaded from the checkpoint.
    pub checkpointed: usize,
    /// Checkpointed open chunks dropped because they were cut after it.
    pub cut_since: usize,
    /// WAL records and the samples in them appended again.
    pub wal_records: usize,
    pub wal_samples: usize,
}

impl OpenChunks {
    /// Rebuilds the open chunks from the checkpoint and the WAL of the
    /// database `db`, just opened; adds the chunks replay cuts to `out`.
    pub(crate) fn recover(db: &DB, out: &mut Staging<'_, '_>) -> Result<(Self, Recovered)> {
        let mut ends = ChunkEndsAtOpen {
            db,
            cf: out.cfs.chunks,
            known: HashMap::new(),
        };
        let mut done = Recovered::default();
        let mut max_t = i64::MIN;

        let mut open_by_id: HashMap<u64, Box<Open>> = HashMap::new();
        let mut progress = Progress::new("loading the open chunks' checkpoint (series)");
        let mut it = db.raw_iterator_cf_opt(out.cfs.open, Db::total_order_read_options());
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            progress.tick(open_by_id.len() as u64, None);
            let id = keys::decode_u64(k).ok_or_else(|| corrupt("open chunk key"))?;
            let end = ends.get(id)?;
            let mut open = Box::new(Open::new());
            open.last_ts = end;
            open.checkpointed = true;
            let samples = crate::chunk::decode_all(v).map_err(|_| corrupt("open chunk"))?;
            open.wal_base = samples.last().map(|&(_, v)| v.to_bits());
            if samples.first().is_some_and(|&(t, _)| t <= end) {
                // Cut after the checkpoint: its samples are in `chunks`,
                // and the checkpoint key goes at the next checkpoint.
                open.dirty = true;
                done.cut_since += 1;
            } else {
                for (t, v) in samples {
                    open.append(id, t, v, out);
                    max_t = max_t.max(t);
                }
                open.dirty = false;
                done.checkpointed += 1;
            }
            open_by_id.insert(id, open);
            it.next();
        }
        it.status()?;
        progress.done(open_by_id.len() as u64);

        let mut next_seq = 0;
        let mut progress = Progress::new("replaying the open chunks' WAL (records)");
        let mut it = db.raw_iterator_cf(out.cfs.wal);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            progress.tick(done.wal_records as u64, None);
            let seq = keys::decode_u64(k).ok_or_else(|| corrupt("wal key"))?;
            next_seq = seq + 1;
            done.wal_records += 1;
            for entry in wal::decode(v) {
                let entry = entry.ok_or_else(|| corrupt("wal record"))?;
                let (id, t) = (entry.id, entry.t);
                let open = match open_by_id.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let mut open = Box::new(Open::new());
                        open.last_ts = ends.get(id)?;
                        e.insert(open)
                    }
                };
                let v = entry
                    .value(open.wal_base)
                    .ok_or_else(|| corrupt("wal record without its base"))?;
                open.wal_base = Some(v.to_bits());
                if open.append(id, t, v, out) {
                    done.wal_samples += 1;
                    max_t = max_t.max(t);
                }
            }
            it.next();
        }
        it.status()?;
        progress.done(done.wal_records as u64);
        // Replay re-created what the WAL holds: after a checkpoint's worth
        // of records the next checkpoint comes soon.
        let chunks = Self::empty(next_seq);
        {
            let mut state = chunks.wal_state();
            state.max_t = max_t;
            state.bytes = MIN_CHECKPOINT_WAL_BYTES.min(done.wal_records as u64 * 1024);
        }
        for (id, open) in open_by_id {
            if open.enc.is_empty() && !open.checkpointed {
                continue;
            }
            let (seg, i) = slot(id);
            *lock(&chunks.segment(seg)[i]) = Some(open);
        }
        // Nothing reads before open returns: chunks replay cut are visible
        // to every reader.
        chunks.cuts_applied(&std::mem::take(out.cut), 0);
        Ok((chunks, done))
    }
}
