//! Series collection: a series that holds no sample any more (retention
//! deleted its last) leaves the index (`series_by_labels`, its postings),
//! its exemplars and the writer's memory, as Prometheus's head garbage
//! collection drops a series without chunks and its blocks drop it with
//! their last sample. Without it every series ever stored stayed listed by
//! `/api/v1/labels`, `/api/v1/label/<name>/values` and
//! `/api/v1/status/tsdb`, and in the writer's labels -> id map, for ever,
//! growing with churn.
//!
//! Each retention pass lists the indexed series without samples
//! ([`crate::retention::PassReport::unsampled`]); the writer removes those
//! that still hold nothing. It runs on the writer thread, the one writer of
//! samples, so no sample can arrive between the check and the removal. A
//! series that comes back is created anew, with a new id (ids are never
//! reused).
//!
//! Ingest streams keep the ids their series learnt
//! ([`crate::batch::StreamSeries`]); each collection that removes a
//! series moves the writer's series epoch on, and an id learnt in an older
//! epoch is not taken: the writer finds or creates its series by labels
//! again (once per stream entry). A remote write queue reads a series'
//! labels by id when it sends the series' records: while some queue has
//! not sent every record written before the removal, the labels by id stay
//! ([`Collected`]), and later collections forget them once it has (a
//! restart before then keeps them: a few bytes a series, never listed).

use super::*;

/// Series removed from the index whose labels by id wait for the remote
/// write queues: (series id, the egress log's next record at removal).
#[derive(Debug, Default)]
pub(super) struct Collected(std::collections::VecDeque<(u64, u64)>);

impl State {
    /// Removes the series of `ids` that hold nothing; returns how many.
    /// Nothing is removed while the disk guard refuses writes, nor on a
    /// node that does not store samples (its egress log is all it keeps).
    /// A series whose check fails to read is skipped (and logged): only a
    /// failed write fails the writer.
    pub(super) fn collect(&mut self, ids: &[u64]) -> Result<usize> {
        if let Some(f) = &self.failed {
            return Err(Error::WriterUnavailable(f.clone()));
        }
        if self.disk.is_low() || !self.store_samples {
            return Ok(0);
        }
        let mut wb = DbBatch::default();
        let forgotten = self.forget_sent(&mut wb);
        let mut removed = Vec::new();
        let reader = samples::SampleReader::new(&self.db);
        for &id in ids {
            match self.unsampled_labels(&reader, id) {
                Ok(Some(labels)) => removed.push((id, labels)),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(id, error = %err, "checking a series without samples failed; kept");
                }
            }
        }
        drop(reader);
        if removed.is_empty() && forgotten == 0 {
            return Ok(0);
        }
        let exemplars = self.db.cf(keys::CF_EXEMPLARS);
        for (id, labels) in &removed {
            index::unindex_series(&self.db, &mut wb, *id, labels);
            wb.delete_range_cf(
                exemplars,
                keys::exemplar_prefix(*id, i64::MIN),
                keys::exemplar_prefix(*id, i64::MAX),
            );
            match &self.egress {
                Some(e) if e.unsent_from() < e.next() => {
                    self.collected.0.push_back((*id, e.next()));
                }
                _ => index::forget_series(&self.db, &mut wb, *id),
            }
        }
        self.db.write_unsynced(wb)?;
        if removed.is_empty() {
            return Ok(0);
        }
        self.series_epoch = self.series_epoch.wrapping_add(1) & crate::batch::EPOCH_MASK;
        for (id, labels) in &removed {
            self.series.remove(labels);
            self.heads.remove(*id);
            self.exemplars.forget(*id);
        }
        metrics::series_removed(removed.len());
        tracing::debug!(
            removed = removed.len(),
            epoch = self.series_epoch,
            "series without samples removed"
        );
        Ok(removed.len())
    }

    /// The labels of series `id` if it is indexed and holds nothing.
    fn unsampled_labels(
        &self,
        reader: &samples::SampleReader<'_>,
        id: u64,
    ) -> Result<Option<CompactLabels>> {
        if id >= self.next_series_id || reader.holds_any(id)? {
            return Ok(None);
        }
        let Some(stored) = self.db.get(keys::CF_SERIES, &keys::series_key(id))? else {
            return Ok(None);
        };
        // Not indexed any more (removed, its labels kept for the queues).
        if self
            .db
            .get(keys::CF_POSTINGS, &keys::all_postings_key(id))?
            .is_none()
        {
            return Ok(None);
        }
        let labels = keys::decode_labels(&stored).ok_or(Error::Corrupt { what: "series" })?;
        Ok(Some(CompactLabels::new(&labels)))
    }

    /// Adds to `wb` the forgetting of the labels by id that every remote
    /// write queue is done with; returns how many. A log that starts over
    /// (remote write turned off, its records deleted, then on again) is
    /// done with every earlier record.
    fn forget_sent(&mut self, wb: &mut DbBatch) -> usize {
        let (sent_before, next) = self
            .egress
            .as_ref()
            .map_or((u64::MAX, u64::MAX), |e| (e.unsent_from(), e.next()));
        let mut n = 0;
        while let Some(&(id, end)) = self.collected.0.front() {
            if end > sent_before && end <= next {
                break;
            }
            index::forget_series(&self.db, wb, id);
            self.collected.0.pop_front();
            n += 1;
        }
        n
    }
}
