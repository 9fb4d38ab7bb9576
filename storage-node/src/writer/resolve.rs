//! Series resolution: the id of each series a write names (the id its
//! stream's entry learnt in the current series epoch, else found by labels
//! or created), staged in the write's batch and applied to the writer's
//! state once written.

use super::*;

/// Series a write creates, applied to the writer's state once it is written.
pub(super) struct NewSeries {
    ids: FxHashMap<Arc<CompactLabels>, u64>,
    next_id: u64,
    /// The stream entries of the batch's series named by labels, and their ids.
    learned: Vec<(Arc<StreamSeries>, u64)>,
}

impl State {
    /// Returns the id of `labels` if the series exists.
    pub(super) fn lookup_series(&mut self, labels: &Arc<CompactLabels>) -> Result<Option<u64>> {
        if let Some(id) = self.series.get(labels) {
            return Ok(Some(id));
        }
        let stored = self.db.get(keys::CF_SERIES_BY_LABELS, labels.as_bytes())?;
        let Some(v) = stored else { return Ok(None) };
        let id = keys::decode_u64(&v).ok_or(Error::Corrupt {
            what: "series_by_labels",
        })?;
        self.series.insert(labels.clone(), id);
        Ok(Some(id))
    }

    /// Returns the series id of each label set, adding to `wb` the series
    /// that are new (two entries may name the same labels) and the advanced
    /// id counter. Nothing in memory changes until [`Self::commit_series`].
    pub(super) fn resolve_series(
        &mut self,
        wb: &mut WriteBatch,
        series: &[SeriesRef],
    ) -> Result<(Vec<u64>, NewSeries)> {
        let mut created = self.new_series();
        let mut ids = Vec::with_capacity(series.len());
        for SeriesRef(entry) in series {
            let id = match entry.id_at(self.series_epoch) {
                Some(id) => id,
                None => {
                    let id = self.series_id(wb, &mut created, &entry.labels)?;
                    created.learned.push((entry.clone(), id));
                    id
                }
            };
            ids.push(id);
        }
        self.stage_next_series_id(wb, &created);
        Ok((ids, created))
    }

    /// [`Self::resolve_series`] for label sets (remote write).
    pub(super) fn resolve_labels(
        &mut self,
        wb: &mut WriteBatch,
        series: &[Arc<CompactLabels>],
    ) -> Result<(Vec<u64>, NewSeries)> {
        let mut created = self.new_series();
        let ids = series
            .iter()
            .map(|labels| self.series_id(wb, &mut created, labels))
            .collect::<Result<Vec<u64>>>()?;
        self.stage_next_series_id(wb, &created);
        Ok((ids, created))
    }

    pub(super) fn new_series(&self) -> NewSeries {
        NewSeries {
            ids: FxHashMap::default(),
            next_id: self.next_series_id,
            learned: Vec::new(),
        }
    }

    /// The id of `labels`: found, created by this write already, or
    /// created now (its index entries added to `wb`).
    pub(super) fn series_id(
        &mut self,
        wb: &mut WriteBatch,
        created: &mut NewSeries,
        labels: &Arc<CompactLabels>,
    ) -> Result<u64> {
        if let Some(&id) = created.ids.get(labels) {
            return Ok(id);
        }
        if let Some(id) = self.lookup_series(labels)? {
            return Ok(id);
        }
        let id = created.next_id;
        created.next_id += 1;
        index::put_series(&self.db, wb, id, labels);
        created.ids.insert(labels.clone(), id);
        Ok(id)
    }

    /// Adds the advanced next series id to `wb` when the write creates series.
    pub(super) fn stage_next_series_id(&self, wb: &mut WriteBatch, created: &NewSeries) {
        if created.next_id != self.next_series_id {
            wb.put_cf(
                self.db.cf(keys::CF_META),
                keys::META_NEXT_SERIES_ID,
                keys::encode_u64(created.next_id),
            );
        }
    }

    /// Records series made durable by a write (and tells the batch's
    /// stream entries their ids); returns how many were new.
    pub(super) fn commit_series(&mut self, created: NewSeries) -> usize {
        self.next_series_id = created.next_id;
        let n = created.ids.len();
        for (labels, id) in created.ids {
            self.series.insert(labels, id);
        }
        for (entry, id) in created.learned {
            entry.learn(id, self.series_epoch);
        }
        n
    }
}
