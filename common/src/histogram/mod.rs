//! Native histograms, as Prometheus 2.42's `model/histogram` defines them.
//!
//! A native histogram travels and rests as the remote-write message
//! [`pb::Histogram`] (scrape batches, the storage node's disk, remote write
//! and remote read): an integer histogram (counts as deltas between
//! consecutive buckets) or a float histogram (absolute counts). This module
//! checks one ([`validate`], the head's `ValidateHistogram`), compacts it
//! ([`compact`], as the scrape parser does before appending) and turns it
//! into a [`FloatHistogram`] ([`to_float`]), the form queries compute with:
//! [`float`] holds its arithmetic (add, subtract, scale, change of schema,
//! counter-reset detection) and bucket iteration, with 2.42's semantics;
//! [`bounds`] the schemas' bucket bounds; `adder.rs` the adding of
//! buckets into spans that sums and differences use.

mod adder;
mod bounds;
mod compact;
mod float;

pub use float::{Bucket, FloatHistogram};

use scrapegrid_proto::prometheus as pb;

use compact::compact_buckets;

/// The schemas Prometheus 2.42 defines bucket bounds for.
pub const MIN_SCHEMA: i32 = -4;
pub const MAX_SCHEMA: i32 = 8;

/// The largest bucket index accepted, either sign. Beyond ±(1025 << 8)
/// every schema's bounds are 0 or infinite; this bound keeps all index
/// arithmetic far from `i32` overflow.
pub const MAX_BUCKET_INDEX: i64 = 1 << 24;

/// Returns whether every bucket index the spans describe is within
/// ±[`MAX_BUCKET_INDEX`].
fn indexes_in_range(spans: &[pb::BucketSpan]) -> bool {
    let mut end: i64 = 0;
    for (n, s) in spans.iter().enumerate() {
        let start = if n == 0 {
            i64::from(s.offset)
        } else {
            end + i64::from(s.offset)
        };
        end = start + i64::from(s.length);
        if start.abs() > MAX_BUCKET_INDEX || end.abs() > MAX_BUCKET_INDEX {
            return false;
        }
    }
    true
}

/// A run of consecutive buckets: `offset` buckets after the previous span
/// (for the first span, the index of its first bucket), `length` long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// Whether a histogram may be read as a counter that was reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetHint {
    #[default]
    Unknown,
    Yes,
    No,
    Gauge,
}

fn spans(s: &[pb::BucketSpan]) -> Vec<Span> {
    s.iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn pb_spans(s: &[Span]) -> Vec<pb::BucketSpan> {
    s.iter()
        .map(|s| pb::BucketSpan {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

/// Returns whether `h` is a float histogram (counts rather than deltas).
pub fn is_float(h: &pb::Histogram) -> bool {
    matches!(h.count, Some(pb::histogram::Count::CountFloat(_)))
}

/// The count of a histogram, as a float.
pub fn count(h: &pb::Histogram) -> f64 {
    match h.count {
        Some(pb::histogram::Count::CountFloat(c)) => c,
        Some(pb::histogram::Count::CountInt(c)) => c as f64,
        None => 0.0,
    }
}

fn zero_count(h: &pb::Histogram) -> f64 {
    match h.zero_count {
        Some(pb::histogram::ZeroCount::ZeroCountFloat(c)) => c,
        Some(pb::histogram::ZeroCount::ZeroCountInt(c)) => c as f64,
        None => 0.0,
    }
}

/// Checks `h` as Prometheus 2.42's head does before appending it
/// (`ValidateHistogram` / `ValidateFloatHistogram`), with its messages: the
/// spans of each side cover exactly its buckets, only the first span has a
/// negative offset, no bucket count is negative, and the count is at least
/// the observations in the buckets (the zero bucket not counted).
///
/// Also refuses a schema outside -4 to 8, which 2.42 stores and then cannot
/// query (its bucket bounds index out of their table), a NaN or negative
/// zero threshold, and bucket indexes beyond [`MAX_BUCKET_INDEX`].
pub fn validate(h: &pb::Histogram) -> Result<(), String> {
    if !(MIN_SCHEMA..=MAX_SCHEMA).contains(&h.schema) {
        return Err(format!(
            "schema {} is outside {MIN_SCHEMA} to {MAX_SCHEMA}: histogram has an invalid schema",
            h.schema
        ));
    }
    // 2.42 takes these and then hangs or panics when a query widens a zero
    // bucket to it.
    if h.zero_threshold.is_nan() || h.zero_threshold < 0.0 {
        return Err(format!(
            "zero threshold {}: histogram has an invalid zero threshold",
            h.zero_threshold
        ));
    }
    let sides = [
        (
            "negative side",
            &h.negative_spans,
            h.negative_deltas.len(),
            h.negative_counts.len(),
        ),
        (
            "positive side",
            &h.positive_spans,
            h.positive_deltas.len(),
            h.positive_counts.len(),
        ),
    ];
    let float = is_float(h);
    for (side, spans, deltas, counts) in sides {
        let n = if float { counts } else { deltas };
        check_spans(spans, n).map_err(|e| format!("{side}: {e}"))?;
        if !indexes_in_range(spans) {
            return Err(format!(
                "{side}: a bucket index beyond ±{MAX_BUCKET_INDEX}: histogram has buckets no schema bounds"
            ));
        }
    }
    if float {
        // Each side summed on its own, then the two added, as 2.42 does.
        let mut sides = [0.0f64; 2];
        for (k, (side, buckets)) in [
            ("negative side", &h.negative_counts),
            ("positive side", &h.positive_counts),
        ]
        .into_iter()
        .enumerate()
        {
            for (i, &c) in buckets.iter().enumerate() {
                if c < 0.0 {
                    return Err(format!(
                        "{side}: bucket number {} has observation count of {}: histogram has a bucket whose observation count is negative",
                        i + 1,
                        c
                    ));
                }
                sides[k] += c;
            }
        }
        let total = sides[0] + sides[1];
        let c = count(h);
        if total > c {
            return Err(format!(
                "{total:.6} observations found in buckets, but the Count field is {c:.6}: histogram's observation count should be at least the number of observations found in the buckets"
            ));
        }
    } else {
        let mut total: u64 = 0;
        for (side, buckets) in [
            ("negative side", &h.negative_deltas),
            ("positive side", &h.positive_deltas),
        ] {
            let mut last: i64 = 0;
            for (i, &d) in buckets.iter().enumerate() {
                let c = last.wrapping_add(d);
                if c < 0 {
                    return Err(format!(
                        "{side}: bucket number {} has observation count of {c}: histogram has a bucket whose observation count is negative",
                        i + 1
                    ));
                }
                last = c;
                total = total.wrapping_add(c as u64);
            }
        }
        let c = match h.count {
            Some(pb::histogram::Count::CountInt(c)) => c,
            _ => 0,
        };
        if total > c {
            return Err(format!(
                "{total} observations found in buckets, but the Count field is {c}: histogram's observation count should be at least the number of observations found in the buckets"
            ));
        }
    }
    Ok(())
}

fn check_spans(spans: &[pb::BucketSpan], buckets: usize) -> Result<(), String> {
    let mut need: u64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(format!(
                "span number {} with offset {}: histogram has a span whose offset is negative",
                n + 1,
                s.offset
            ));
        }
        need += u64::from(s.length);
    }
    if need != buckets as u64 {
        return Err(format!(
            "spans need {need} buckets, have {buckets} buckets: histogram spans specify different number of buckets than provided"
        ));
    }
    Ok(())
}

/// The spans and counts of buckets given by index in increasing order:
/// each run of consecutive indexes one span.
pub fn spans_of<C>(buckets: impl IntoIterator<Item = (i32, C)>) -> (Vec<pb::BucketSpan>, Vec<C>) {
    let mut spans: Vec<pb::BucketSpan> = Vec::new();
    let mut counts = Vec::new();
    let mut prev: Option<i32> = None;
    for (i, c) in buckets {
        match (prev, spans.last_mut()) {
            (Some(p), Some(last)) if i == p + 1 => last.length += 1,
            (Some(p), _) => spans.push(pb::BucketSpan {
                offset: i - p - 1,
                length: 1,
            }),
            (None, _) => spans.push(pb::BucketSpan {
                offset: i,
                length: 1,
            }),
        }
        counts.push(c);
        prev = Some(i);
    }
    (spans, counts)
}

/// Absolute bucket counts as an integer histogram's deltas.
pub fn deltas_of(counts: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut prev = 0i64;
    counts
        .into_iter()
        .map(|c| {
            let d = c.wrapping_sub(prev);
            prev = c;
            d
        })
        .collect()
}

/// Removes empty buckets and merges spans, as 2.42's `Compact(0)`. A
/// histogram whose spans do not cover its buckets exactly, or reach beyond
/// [`MAX_BUCKET_INDEX`], is left alone ([`validate`] refuses it).
pub fn compact(h: &mut pb::Histogram) {
    let float = is_float(h);
    let covers = |spans: &[pb::BucketSpan], n: usize| {
        spans.iter().map(|s| u64::from(s.length)).sum::<u64>() == n as u64
    };
    let (np, nn) = if float {
        (h.positive_counts.len(), h.negative_counts.len())
    } else {
        (h.positive_deltas.len(), h.negative_deltas.len())
    };
    if !covers(&h.positive_spans, np)
        || !covers(&h.negative_spans, nn)
        || !indexes_in_range(&h.positive_spans)
        || !indexes_in_range(&h.negative_spans)
    {
        return;
    }
    let mut pos = spans(&h.positive_spans);
    let mut neg = spans(&h.negative_spans);
    if float {
        compact_buckets(&mut h.positive_counts, &mut pos, 0, false);
        compact_buckets(&mut h.negative_counts, &mut neg, 0, false);
    } else {
        compact_buckets(&mut h.positive_deltas, &mut pos, 0, true);
        compact_buckets(&mut h.negative_deltas, &mut neg, 0, true);
    }
    h.positive_spans = pb_spans(&pos);
    h.negative_spans = pb_spans(&neg);
}

fn hint(h: &pb::Histogram) -> ResetHint {
    match pb::histogram::ResetHint::try_from(h.reset_hint) {
        Ok(pb::histogram::ResetHint::Yes) => ResetHint::Yes,
        Ok(pb::histogram::ResetHint::No) => ResetHint::No,
        Ok(pb::histogram::ResetHint::Gauge) => ResetHint::Gauge,
        _ => ResetHint::Unknown,
    }
}

/// The float form of `h` (2.42's `ToFloat`: deltas summed in `f64`).
pub fn to_float(h: &pb::Histogram) -> FloatHistogram {
    let absolute = |deltas: &[i64]| -> Vec<f64> {
        let mut current = 0.0;
        deltas
            .iter()
            .map(|&d| {
                current += d as f64;
                current
            })
            .collect()
    };
    let (positive_buckets, negative_buckets) = if is_float(h) {
        (h.positive_counts.clone(), h.negative_counts.clone())
    } else {
        (absolute(&h.positive_deltas), absolute(&h.negative_deltas))
    };
    FloatHistogram {
        reset_hint: hint(h),
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: zero_count(h),
        count: count(h),
        sum: h.sum,
        positive_spans: spans(&h.positive_spans),
        negative_spans: spans(&h.negative_spans),
        positive_buckets,
        negative_buckets,
    }
}

/// `h` as a float histogram message at `timestamp`, for remote write and
/// remote read of computed or stored histograms.
pub fn float_to_pb(h: &FloatHistogram, timestamp: i64) -> pb::Histogram {
    pb::Histogram {
        count: Some(pb::histogram::Count::CountFloat(h.count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(pb::histogram::ZeroCount::ZeroCountFloat(h.zero_count)),
        negative_spans: pb_spans(&h.negative_spans),
        negative_deltas: Vec::new(),
        negative_counts: h.negative_buckets.clone(),
        positive_spans: pb_spans(&h.positive_spans),
        positive_deltas: Vec::new(),
        positive_counts: h.positive_buckets.clone(),
        reset_hint: match h.reset_hint {
            ResetHint::Unknown => pb::histogram::ResetHint::Unknown,
            ResetHint::Yes => pb::histogram::ResetHint::Yes,
            ResetHint::No => pb::histogram::ResetHint::No,
            ResetHint::Gauge => pb::histogram::ResetHint::Gauge,
        } as i32,
        timestamp,
    }
}

#[cfg(test)]
mod tests;
