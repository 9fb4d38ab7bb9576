//! Validating a wire `Batch` into a [`Batch`] the writer can apply.
//!
//! Series references are scoped to one ingest stream: a `SeriesDef` binds a
//! reference to a label set in the stream's [`RefTable`], later batches use
//! the reference alone. [`resolve`] registers every well-formed definition
//! of a batch before it checks the samples, so a batch refused for a bad
//! sample still defines its series for the batches that follow.
//! Exemplars name their series by the same references; a series that only
//! an exemplar names is added to the batch's series.
//!
//! A reference's entry ([`StreamSeries`]) also keeps the series id once the
//! writer stored or found the series, so the writer looks up nothing for
//! the stream's later batches ([`SeriesRef`]); the table and its entries
//! are in [`refs`].

use std::sync::Arc;

use rustc_hash::FxHashMap;

use scrapegrid_common::labels::is_valid_label_name;
use scrapegrid_common::{CompactLabels, Labels};
use scrapegrid_proto::v1 as pb;

use crate::exemplars::Exemplar;

mod refs;
pub use refs::{RefTable, SeriesRef, StreamSeries, EPOCH_MASK};

/// A validated batch: series as label sets, samples pointing into them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub sequence: u64,
    pub target_id: String,
    pub target_generation: u64,
    /// The scrape's timestamp (fencing compares it).
    pub timestamp_ms: i64,
    /// The series the samples refer to (a label set may appear twice).
    pub series: Vec<SeriesRef>,
    pub samples: Vec<Sample>,
    /// The series set handed over to the target's next owner, if this is a
    /// handover batch.
    pub handover: Option<Vec<Arc<CompactLabels>>>,
    /// The scrape's exemplars, in exposition order.
    pub exemplars: Vec<BatchExemplar>,
    /// Native histogram samples, validated.
    pub histograms: Vec<BatchHistogram>,
}

/// One native histogram sample; `series` indexes [`Batch::series`], the
/// histogram's `timestamp` is the sample's.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchHistogram {
    pub series: u32,
    pub histogram: scrapegrid_proto::prometheus::Histogram,
}

/// One exemplar; `series` indexes [`Batch::series`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchExemplar {
    pub series: u32,
    pub exemplar: Exemplar,
}

/// One sample; `series` indexes [`Batch::series`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub series: u32,
    pub ts_ms: i64,
    pub value: f64,
}

/// Why a batch is malformed; acked REFUSED/INVALID with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn validate_labels(def: &pb::SeriesDef) -> Result<Labels, Invalid> {
    if def.labels.is_empty() {
        return Err(Invalid(format!("series ref {} has no labels", def.r#ref)));
    }
    for l in &def.labels {
        if !is_valid_label_name(&l.name) {
            return Err(Invalid(format!(
                "series ref {}: invalid label name {:?}",
                def.r#ref, l.name
            )));
        }
    }
    let labels = Labels::from_proto(&def.labels);
    let non_empty = def.labels.iter().filter(|l| !l.value.is_empty()).count();
    if labels.len() != non_empty {
        return Err(Invalid(format!(
            "series ref {}: duplicate label name",
            def.r#ref
        )));
    }
    if labels.is_empty() {
        return Err(Invalid(format!(
            "series ref {}: every label value is empty",
            def.r#ref
        )));
    }
    Ok(labels)
}

/// Registers the batch's series definitions in `refs`, then checks and
/// resolves its samples. A definition that reuses a reference replaces it.
pub fn resolve(refs: &mut RefTable, batch: pb::Batch) -> Result<Batch, Invalid> {
    let mut first_err = None;
    for def in &batch.new_series {
        match validate_labels(def) {
            Ok(labels) => refs.insert(def.r#ref, Arc::new(CompactLabels::new(&labels))),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if batch.sequence == 0 {
        return Err(Invalid("sequence must be positive".into()));
    }
    let n = batch.refs.len();
    if batch.values.len() != n {
        return Err(Invalid(format!(
            "column lengths differ: {n} refs, {} values",
            batch.values.len()
        )));
    }
    if !batch.timestamps_ms.is_empty() && batch.timestamps_ms.len() != n {
        return Err(Invalid(format!(
            "column lengths differ: {n} refs, {} timestamps",
            batch.timestamps_ms.len()
        )));
    }
    if batch.timestamps_ms.is_empty() && n > 0 && batch.timestamp_ms == 0 {
        return Err(Invalid("samples without a timestamp".into()));
    }
    // One series entry per sample, in order: a scrape names each series
    // once, and the writer maps a label set named twice to one id, so no
    // per-batch map is built for the samples.
    let mut series = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    for (i, (&r, &value)) in batch.refs.iter().zip(&batch.values).enumerate() {
        let entry = refs
            .get(r)
            .ok_or_else(|| Invalid(format!("unknown series ref {r}")))?;
        let ts_ms = batch
            .timestamps_ms
            .get(i)
            .copied()
            .unwrap_or(batch.timestamp_ms);
        samples.push(Sample {
            series: series.len() as u32,
            ts_ms,
            value,
        });
        series.push(SeriesRef::of(entry));
    }
    let mut index: FxHashMap<u64, u32> = FxHashMap::default();
    if !batch.exemplars.is_empty() || !batch.histograms.is_empty() {
        for (i, &r) in batch.refs.iter().enumerate().rev() {
            index.insert(r, i as u32);
        }
    }
    if batch.histogram_refs.len() != batch.histograms.len() {
        return Err(Invalid(format!(
            "column lengths differ: {} histogram refs, {} histograms",
            batch.histogram_refs.len(),
            batch.histograms.len()
        )));
    }
    let mut histograms = Vec::with_capacity(batch.histograms.len());
    for (&r, h) in batch.histogram_refs.iter().zip(batch.histograms) {
        let idx = match index.get(&r) {
            Some(&idx) => idx,
            None => {
                let entry = refs
                    .get(r)
                    .ok_or_else(|| Invalid(format!("unknown histogram series ref {r}")))?;
                let idx = series.len() as u32;
                series.push(SeriesRef::of(entry));
                index.insert(r, idx);
                idx
            }
        };
        scrapegrid_common::histogram::validate(&h)
            .map_err(|e| Invalid(format!("histogram of series ref {r}: {e}")))?;
        histograms.push(BatchHistogram {
            series: idx,
            histogram: h,
        });
    }
    let mut exemplars = Vec::with_capacity(batch.exemplars.len());
    for e in &batch.exemplars {
        let idx = match index.get(&e.r#ref) {
            Some(&idx) => idx,
            None => {
                let entry = refs
                    .get(e.r#ref)
                    .ok_or_else(|| Invalid(format!("unknown exemplar series ref {}", e.r#ref)))?;
                let idx = series.len() as u32;
                series.push(SeriesRef::of(entry));
                index.insert(e.r#ref, idx);
                idx
            }
        };
        // As Prometheus, exemplar labels are taken as the exposition gave
        // them (names unchecked), without empty values.
        exemplars.push(BatchExemplar {
            series: idx,
            exemplar: Exemplar {
                labels: Labels::from_proto(&e.labels),
                value: e.value,
                ts_ms: e.timestamp_ms,
                has_ts: e.has_timestamp,
            },
        });
    }
    let handover = if batch.handover {
        let series = batch
            .handover_refs
            .iter()
            .map(|&r| {
                refs.get(r)
                    .map(|e| e.labels.clone())
                    .ok_or_else(|| Invalid(format!("unknown handover series ref {r}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(series)
    } else {
        None
    };
    Ok(Batch {
        sequence: batch.sequence,
        target_id: batch.target_id,
        target_generation: batch.target_generation,
        timestamp_ms: batch.timestamp_ms,
        series,
        samples,
        handover,
        exemplars,
        histograms,
    })
}

#[cfg(test)]
mod tests {
    use super::refs::DENSE_FLOOR;
    use super::*;

    fn def(r: u64, pairs: &[(&str, &str)]) -> pb::SeriesDef {
        pb::SeriesDef {
            r#ref: r,
            labels: pairs
                .iter()
                .map(|(n, v)| pb::Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        }
    }

    fn batch(seq: u64, defs: Vec<pb::SeriesDef>, refs: Vec<u64>, values: Vec<f64>) -> pb::Batch {
        pb::Batch {
            sequence: seq,
            target_id: "t".into(),
            target_generation: 1,
            timestamp_ms: 1000,
            new_series: defs,
            refs,
            values,
            timestamps_ms: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn refs_carry_over_between_batches() {
        let mut refs = RefTable::default();
        let b = resolve(
            &mut refs,
            batch(1, vec![def(7, &[("__name__", "up")])], vec![7], vec![1.0]),
        )
        .unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.samples[0].ts_ms, 1000);
        let b = resolve(&mut refs, batch(2, vec![], vec![7, 7], vec![2.0, 3.0])).unwrap();
        assert_eq!(b.samples.len(), 2);
        let (a, c) = (b.samples[0].series as usize, b.samples[1].series as usize);
        let (x, y) = (&b.series[a].0, &b.series[c].0);
        assert_eq!(x.id_at(0), None, "the writer did not learn the id");
        assert!(
            Arc::ptr_eq(x, y),
            "two samples of one series name the same label set"
        );
        // Once the writer learned the id, batches carry it, for the
        // writer's series epoch it was learnt in.
        x.learn(42, 3);
        let b = resolve(&mut refs, batch(3, vec![], vec![7], vec![4.0])).unwrap();
        assert_eq!(b.series[0].0.id_at(3), Some(42));
        assert_eq!(b.series[0].0.id_at(4), None, "series collected since");
    }

    #[test]
    fn references_near_and_far_resolve_and_redefine() {
        let mut refs = RefTable::default();
        let far = u64::MAX - 1;
        let defs = vec![
            def(1, &[("__name__", "a")]),
            def(far, &[("__name__", "far")]),
            def(DENSE_FLOOR + 5, &[("__name__", "past")]),
        ];
        let b = resolve(
            &mut refs,
            batch(1, defs, vec![far, 1, DENSE_FLOOR + 5], vec![1.0; 3]),
        )
        .unwrap();
        assert_eq!(
            (refs.len(), refs.dense.len()),
            (3, 2),
            "far ones in the map"
        );
        let name = |s: &SeriesRef| s.labels().to_labels().get("__name__").unwrap().to_string();
        let names: Vec<String> = b.series.iter().map(name).collect();
        assert_eq!(names, ["far", "a", "past"]);
        // A redefinition replaces the entry (and forgets its id).
        b.series[1].0.learn(9, 0);
        let b = resolve(
            &mut refs,
            batch(
                2,
                vec![def(1, &[("__name__", "z")])],
                vec![1, far],
                vec![1.0; 2],
            ),
        )
        .unwrap();
        assert_eq!(refs.len(), 3);
        let names: Vec<String> = b.series.iter().map(name).collect();
        assert_eq!(names, ["z", "far"]);
    }

    #[test]
    fn refused_batches_still_register_their_series() {
        let mut refs = RefTable::default();
        let err = resolve(
            &mut refs,
            batch(
                1,
                vec![def(1, &[("__name__", "a")])],
                vec![1, 2],
                vec![1.0, 2.0],
            ),
        )
        .unwrap_err();
        assert_eq!(err.0, "unknown series ref 2");
        assert_eq!(refs.len(), 1);
        assert!(resolve(&mut refs, batch(2, vec![], vec![1], vec![1.0])).is_ok());
    }

    #[test]
    fn malformed_batches_are_invalid() {
        let mut refs = RefTable::default();
        let d = || vec![def(1, &[("__name__", "a")])];
        let cases: Vec<(pb::Batch, &str)> = vec![
            (
                batch(1, d(), vec![1], vec![]),
                "column lengths differ: 1 refs, 0 values",
            ),
            (
                pb::Batch {
                    timestamps_ms: vec![1, 2],
                    ..batch(1, d(), vec![1], vec![1.0])
                },
                "column lengths differ: 1 refs, 2 timestamps",
            ),
            (
                pb::Batch {
                    timestamp_ms: 0,
                    ..batch(1, d(), vec![1], vec![1.0])
                },
                "samples without a timestamp",
            ),
            (
                batch(0, d(), vec![1], vec![1.0]),
                "sequence must be positive",
            ),
            (
                batch(1, vec![def(2, &[("0bad", "x")])], vec![], vec![]),
                "series ref 2: invalid label name \"0bad\"",
            ),
            (
                batch(1, vec![def(2, &[("a", "x"), ("a", "y")])], vec![], vec![]),
                "series ref 2: duplicate label name",
            ),
            (
                batch(1, vec![def(2, &[])], vec![], vec![]),
                "series ref 2 has no labels",
            ),
        ];
        for (b, want) in cases {
            assert_eq!(resolve(&mut refs, b).unwrap_err().0, want);
        }
    }

    #[test]
    fn explicit_timestamps_and_empty_batches() {
        let mut refs = RefTable::default();
        let b = resolve(
            &mut refs,
            pb::Batch {
                timestamps_ms: vec![5],
                timestamp_ms: 0,
                ..batch(
                    3,
                    vec![def(1, &[("__name__", "a")])],
                    vec![1],
                    vec![f64::NAN],
                )
            },
        )
        .unwrap();
        assert_eq!(b.samples[0].ts_ms, 5);
        let empty = resolve(&mut refs, batch(4, vec![], vec![], vec![])).unwrap();
        assert!(empty.samples.is_empty());
    }

    #[test]
    fn exemplars_resolve_to_batch_series() {
        let mut refs = RefTable::default();
        let ex = |r: u64, trace: &str| pb::Exemplar {
            r#ref: r,
            labels: vec![
                pb::Label {
                    name: "trace_id".into(),
                    value: trace.into(),
                },
                pb::Label {
                    name: "empty".into(),
                    value: String::new(),
                },
            ],
            value: 0.5,
            timestamp_ms: 900,
            has_timestamp: true,
        };
        let b = resolve(
            &mut refs,
            pb::Batch {
                exemplars: vec![ex(1, "a"), ex(2, "b")],
                ..batch(
                    1,
                    vec![def(1, &[("__name__", "a")]), def(2, &[("__name__", "b")])],
                    vec![1],
                    vec![1.0],
                )
            },
        )
        .unwrap();
        assert_eq!(b.series.len(), 2, "the exemplar-only series is added");
        assert_eq!(b.exemplars[0].series, 0, "shares the sample's series");
        assert_eq!(b.exemplars[1].series, 1);
        assert_eq!(
            b.exemplars[0].exemplar,
            Exemplar {
                labels: Labels::from_pairs([("trace_id", "a")]),
                value: 0.5,
                ts_ms: 900,
                has_ts: true,
            },
            "empty label values dropped"
        );
        let err = resolve(
            &mut refs,
            pb::Batch {
                exemplars: vec![ex(9, "c")],
                ..batch(2, vec![], vec![1], vec![1.0])
            },
        )
        .unwrap_err();
        assert_eq!(err.0, "unknown exemplar series ref 9");
    }
}
