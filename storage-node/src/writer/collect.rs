//! Series collection: a series retention left without any sample leaves
//! the index (`series`, `series_by_labels`, its postings) and the writer's
//! memory, as Prometheus's head garbage collection drops a series without
//! chunks and its blocks drop it with their last sample. Without it every
//! series ever stored stayed listed by `/api/v1/labels`, `/api/v1/label/<name>/values`
//! and `/api/v1/status/tsdb`, and in the writer's labels -> id map, for
//! ever, growing with churn.
//!
//! Retention names the series whose oldest data it deleted to the end of
//! some column family ([`crate::retention::PassReport::emptied`]); the
//! writer removes those that hold nothing now. It runs on the writer
//! thread, the one writer of samples, so no sample can arrive between the
//! check and the removal. A series that comes back is created anew, with
//! a new id (ids are never reused).
//!
//! Ingest streams keep the ids their series learnt
//! ([`crate::batch::StreamSeries`]); each collection that removes a
//! series moves the writer's series epoch on, and an id learnt in an older
//! epoch is not taken: the writer finds or creates its series by labels
//! again (once per stream entry).

use super::*;

impl State {
    /// Removes the series of `ids` that hold nothing; returns how many.
    /// Nothing is removed while the disk guard refuses writes.
    pub(super) fn collect(&mut self, ids: &[u64]) -> Result<usize> {
        if let Some(f) = &self.failed {
            return Err(Error::WriterUnavailable(f.clone()));
        }
        if self.disk.is_low() {
            return Ok(0);
        }
        let reader = samples::SampleReader::new(&self.db);
        let mut wb = DbBatch::default();
        let mut removed = Vec::new();
        for &id in ids {
            if id >= self.next_series_id || reader.holds_any(id)? {
                continue;
            }
            let Some(stored) = self.db.get(keys::CF_SERIES, &keys::series_key(id))? else {
                continue;
            };
            let labels = keys::decode_labels(&stored).ok_or(Error::Corrupt { what: "series" })?;
            let labels = CompactLabels::new(&labels);
            index::delete_series(&self.db, &mut wb, id, &labels);
            removed.push((id, labels));
        }
        drop(reader);
        if removed.is_empty() {
            return Ok(0);
        }
        self.db.write_unsynced(wb)?;
        self.series_epoch = self.series_epoch.wrapping_add(1) & crate::batch::EPOCH_MASK;
        for (id, labels) in &removed {
            self.series.remove(labels);
            self.heads.remove(*id);
        }
        metrics::series_removed(removed.len());
        tracing::debug!(
            removed = removed.len(),
            epoch = self.series_epoch,
            "series without samples removed"
        );
        Ok(removed.len())
    }
}
