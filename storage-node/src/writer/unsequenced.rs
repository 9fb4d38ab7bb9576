//! Writes that do not come from a scraper stream (remote write): no sequence,
//! no fencing, the same admission rules, all or nothing.

use super::*;

impl State {
    /// Writes (unsynced) series and samples that carry no sequence or
    /// fencing; state is updated only when the write succeeded. Samples are
    /// admitted as a batch's are, but all or nothing: if any is rejected,
    /// nothing is written and the error is `BadData`, as Prometheus's remote
    /// write handler fails the whole request (400) on an out-of-order or
    /// duplicate sample.
    pub(super) fn apply_unsequenced(
        &mut self,
        series: &[Arc<CompactLabels>],
        points: &[Sample],
        histograms: &[BatchHistogram],
    ) -> Result<()> {
        if let Some(f) = &self.failed {
            return Err(Error::WriterUnavailable(f.clone()));
        }
        let mut wb = DbBatch::default();
        let (ids, created) = self.resolve_labels(&mut wb, series)?;
        let admitted = self.admit_samples(&mut wb, &ids, points, LateWrites::None)?;
        let rejected = admitted.out_of_order + admitted.too_old + admitted.duplicate;
        if rejected > 0 {
            metrics::samples_rejected(metrics::REJECT_OUT_OF_ORDER, admitted.out_of_order);
            metrics::samples_rejected(metrics::REJECT_TOO_OLD, admitted.too_old);
            metrics::samples_rejected(metrics::REJECT_DUPLICATE, admitted.duplicate);
            let err = Error::BadData(format!(
                "{rejected} of {} samples rejected ({} out of order, {} too old, {} duplicate \
                 timestamp with another value); nothing stored",
                points.len(),
                admitted.out_of_order,
                admitted.too_old,
                admitted.duplicate
            ));
            self.undo_admitted(admitted);
            return Err(err);
        }
        self.append_histograms(&mut wb, &ids, histograms);
        if let Some(e) = &mut self.egress {
            e.stage(&self.db, &mut wb);
        }
        if let Err(e) = self.db.write_unsynced(wb) {
            self.undo_admitted(admitted);
            return Err(e);
        }
        if let Some(e) = &mut self.egress {
            e.committed();
        }
        let n_created = self.commit_series(created);
        self.commit_admitted(&admitted);
        metrics::batch_applied(admitted.appended, n_created);
        metrics::histograms_appended(histograms.len());
        Ok(())
    }
}
