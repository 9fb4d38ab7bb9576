//! The writer's exemplar state and admission ([`crate::exemplars`] has the
//! rules and the storage): the newest exemplar per series, which
//! [`exemplars::check`] compares against, and the keys of what is stored in
//! arrival order, so that the oldest go first once more than the limit are
//! stored, as Prometheus's circular buffer overwrites its oldest entry.
//!
//! Both are loaded from the database when the writer starts (the stored
//! exemplars are bounded by the limit, so this is a short scan), and change
//! only once the batch that changes them is written. The arrival order may
//! still hold keys that retention has deleted since; evicting one deletes
//! nothing, so the limit is an upper bound on what is stored.

use std::collections::VecDeque;

use super::*;
use crate::batch::BatchExemplar;
use crate::exemplars::{self, Exemplar, Verdict};

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct ExemplarBuffer {
    /// Exemplars stored at most; 0 stores none (Prometheus's exemplar
    /// storage with `max_exemplars: 0`).
    limit: usize,
    /// Keys of the stored exemplars, oldest arrival first.
    order: VecDeque<[u8; 24]>,
    /// The newest stored exemplar per series id, and its key.
    newest: HashMap<u64, ([u8; 24], Exemplar)>,
}

impl ExemplarBuffer {
    /// Loads the state from `db` and deletes the oldest exemplars beyond
    /// `limit` (a smaller limit than before the restart).
    pub(super) fn load(db: &Db, limit: usize) -> Result<Self> {
        let loaded = exemplars::load(db)?;
        let mut buffer = Self {
            limit,
            order: loaded.keys.into(),
            newest: loaded.newest,
        };
        let excess = buffer.order.len().saturating_sub(limit);
        if excess > 0 {
            let mut wb = DbBatch::default();
            for key in buffer.order.iter().take(excess) {
                exemplars::delete(db, &mut wb, key);
            }
            db.write_unsynced(wb)?;
            buffer.evict(excess);
            tracing::info!(
                deleted = excess,
                limit,
                "deleted the oldest exemplars beyond the limit"
            );
        }
        metrics::exemplars_stored(buffer.order.len());
        Ok(buffer)
    }

    /// Forgets the newest exemplar of series `id`, removed with all of
    /// its exemplars ([`super::collect`]); their keys may stay in the
    /// arrival order, where evicting them deletes nothing.
    pub(super) fn forget(&mut self, id: u64) {
        self.newest.remove(&id);
    }

    /// Drops the `n` oldest keys; a series whose newest exemplar goes has
    /// none left and accepts any next one, as in Prometheus.
    fn evict(&mut self, n: usize) {
        for _ in 0..n {
            let Some(key) = self.order.pop_front() else {
                return;
            };
            let Some((id, _, _)) = keys::decode_exemplar_key(&key) else {
                continue;
            };
            if self.newest.get(&id).is_some_and(|(k, _)| *k == key) {
                self.newest.remove(&id);
            }
        }
    }
}

/// The outcome of admitting one batch's exemplars, applied to the writer's
/// state once the batch is written.
#[derive(Debug, Default)]
pub(super) struct ExemplarsAdmitted {
    /// New newest exemplars by series id.
    newest: HashMap<u64, ([u8; 24], Exemplar)>,
    /// Keys written, in order.
    appended: Vec<[u8; 24]>,
    /// How many of the oldest keys (stored, then appended) were deleted.
    evicted: usize,
    pub(super) out_of_order: u64,
    pub(super) label_length: u64,
    /// The exemplars stored, in order, for the egress.
    stored: Vec<(u64, Exemplar)>,
}

impl ExemplarsAdmitted {
    /// The exemplars the batch stores, in order, with their series ids.
    pub(super) fn stored(&self) -> impl Iterator<Item = (u64, &Exemplar)> {
        self.stored.iter().map(|(id, e)| (*id, e))
    }
}

impl State {
    /// Checks `batch_exemplars` (series indexing `ids`) in order, each
    /// against the state the earlier ones left (as Prometheus's `Commit`
    /// adds them one by one), adds the accepted ones to `wb` under
    /// `ingest_ms`, and deletes the oldest beyond the limit.
    pub(super) fn admit_exemplars(
        &self,
        wb: &mut WriteBatch,
        ids: &[u64],
        ingest_ms: i64,
        batch_exemplars: &[BatchExemplar],
    ) -> ExemplarsAdmitted {
        let mut out = ExemplarsAdmitted::default();
        let buffer = &self.exemplars;
        if buffer.limit == 0 {
            // Exemplar storage is off: dropped without an error.
            return out;
        }
        for be in batch_exemplars {
            let id = ids[be.series as usize];
            let newest = out
                .newest
                .get(&id)
                .or_else(|| buffer.newest.get(&id))
                .map(|(_, e)| e);
            match exemplars::check(newest, &be.exemplar) {
                Verdict::Append => {
                    let key = exemplars::put(&self.db, wb, id, ingest_ms, &be.exemplar);
                    out.newest.insert(id, (key, be.exemplar.clone()));
                    out.appended.push(key);
                    if self.egress.is_some() {
                        out.stored.push((id, be.exemplar.clone()));
                    }
                }
                Verdict::Duplicate => {}
                Verdict::OutOfOrder => out.out_of_order += 1,
                Verdict::LabelsTooLong => out.label_length += 1,
            }
        }
        out.evicted = (buffer.order.len() + out.appended.len()).saturating_sub(buffer.limit);
        // After the puts, so a key put and evicted by this batch is gone.
        for key in buffer.order.iter().chain(&out.appended).take(out.evicted) {
            exemplars::delete(&self.db, wb, key);
        }
        out
    }

    /// Makes a written batch's admitted exemplars the new state.
    pub(super) fn commit_exemplars(&mut self, admitted: ExemplarsAdmitted) {
        let appended = admitted.appended.len();
        let buffer = &mut self.exemplars;
        buffer.newest.extend(admitted.newest);
        buffer.order.extend(admitted.appended);
        buffer.evict(admitted.evicted);
        metrics::exemplars_appended(appended);
        metrics::exemplars_rejected(metrics::REJECT_OUT_OF_ORDER, admitted.out_of_order);
        metrics::exemplars_rejected(metrics::REJECT_LABEL_LENGTH, admitted.label_length);
        metrics::exemplars_stored(buffer.order.len());
    }
}
