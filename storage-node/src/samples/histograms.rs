//! Native histogram samples: one key per sample in the `histograms` CF
//! ([`crate::keys`] documents the layout), appended in the scrape batch's
//! `WriteBatch` and read at the reader's snapshot.

use rocksdb::ReadOptions;
use scrapegrid_proto::prometheus as rw;

use super::SampleReader;
use crate::db::{Db, DbBatch};
use crate::error::{Error, Result};
use crate::keys;

/// One stored native histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: rw::Histogram,
}

/// Adds a native histogram sample of series `id` to `wb`; one at the same
/// timestamp is overwritten.
pub fn append_histogram(db: &Db, wb: &mut DbBatch, id: u64, ts_ms: i64, h: &rw::Histogram) {
    wb.put_cf(
        db.cf(keys::CF_HISTOGRAMS),
        keys::sample_key(id, ts_ms),
        keys::encode_histogram_value(h),
    );
}

fn corrupt() -> Error {
    Error::Corrupt {
        what: keys::CF_HISTOGRAMS,
    }
}

impl SampleReader<'_> {
    /// Returns whether the snapshot holds any native histogram sample.
    pub fn has_histograms(&self) -> Result<bool> {
        let mut it = self
            .snap
            .raw_iterator_cf_opt(self.db.cf(keys::CF_HISTOGRAMS), ReadOptions::default());
        it.seek_to_first();
        let any = it.valid();
        it.status()?;
        Ok(any)
    }

    /// Returns the native histogram samples of series `id` with
    /// `mint <= t <= maxt`, oldest first (each with its `timestamp` set).
    pub fn histograms(&self, id: u64, mint: i64, maxt: i64) -> Result<Vec<HistogramSample>> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(keys::sample_key(id, mint).to_vec());
        if let Some(end) = maxt.checked_add(1) {
            ro.set_iterate_upper_bound(keys::sample_key(id, end).to_vec());
        } else if let Some(next) = id.checked_add(1) {
            ro.set_iterate_upper_bound(keys::sample_key(next, i64::MIN).to_vec());
        }
        let mut it = self
            .snap
            .raw_iterator_cf_opt(self.db.cf(keys::CF_HISTOGRAMS), ro);
        it.seek(keys::sample_key(id, mint));
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let (sid, t) = keys::decode_sample_key(k).ok_or_else(corrupt)?;
            if sid != id {
                break;
            }
            let mut h = keys::decode_histogram_value(v).ok_or_else(corrupt)?;
            h.timestamp = t;
            out.push(HistogramSample { t, h });
            it.next();
        }
        it.status()?;
        Ok(out)
    }
}
