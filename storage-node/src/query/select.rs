//! Reading the samples of the series a matcher set selects.

use scrapegrid_common::labels::sort_by_labels;
use scrapegrid_common::Labels;

use crate::db::Db;
use crate::error::Result;
use crate::index::Matcher;
use crate::samples::{self, HistogramSample, Sample, SampleReader};

/// One series and its samples in a time range, oldest first: floats
/// (stale markers included) and native histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

/// Where evaluation reads series from.
pub trait SeriesSource {
    /// Returns the series matching every matcher that have samples with
    /// `mint <= t <= maxt`, sorted by labels, stale markers included.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>>;
}

/// Reads series from the database.
#[derive(Clone, Copy)]
pub struct DbSource<'a> {
    db: &'a Db,
}

impl<'a> DbSource<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self { db }
    }
}

impl SeriesSource for DbSource<'_> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        let mut out = Vec::new();
        // One snapshot for the index and every series: the result is one
        // point in time, whatever the writer and the compactor do meanwhile.
        let reader = SampleReader::new(self.db);
        // In id order, the order of the stored samples, so each cursor
        // steps from one series to the next; sorted by labels once read.
        let (ids, labels): (Vec<u64>, Vec<_>) =
            reader.index().select_by_id(matchers)?.into_iter().unzip();
        let read = reader.read_many(&ids, mint, maxt)?;
        // Histograms are read over the whole head-chunk ranges around the
        // read, to lay their buckets out as Prometheus reads them back.
        // A database without any (the common case) costs one seek, not
        // one per series.
        let (wmin, wmax) = samples::histogram_chunk_window(mint, maxt);
        let any_histograms = reader.has_histograms()?;
        for ((labels, samples), id) in labels.into_iter().zip(read).zip(ids) {
            let mut histograms = Vec::new();
            if any_histograms {
                histograms = reader.histograms(id, wmin, wmax)?;
            }
            if !histograms.is_empty() {
                let floats = reader.read(id, wmin, wmax)?;
                samples::align_histogram_chunks(&floats, &mut histograms);
                histograms.retain(|h| h.t >= mint && h.t <= maxt);
            }
            if !samples.is_empty() || !histograms.is_empty() {
                out.push(Series {
                    labels,
                    samples,
                    histograms,
                });
            }
        }
        sort_by_labels(&mut out, |s| &s.labels);
        Ok(out)
    }
}

/// A fixed set of series, for tests.
impl SeriesSource for Vec<Series> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        crate::index::check_selectable(matchers)?;
        Ok(self
            .iter()
            .filter(|s| matchers.iter().all(|m| m.matches_labels(&s.labels)))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .filter(|p| p.t >= mint && p.t <= maxt)
                    .copied()
                    .collect(),
                histograms: s
                    .histograms
                    .iter()
                    .filter(|p| p.t >= mint && p.t <= maxt)
                    .cloned()
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty() || !s.histograms.is_empty())
            .collect())
    }
}
