//! `histogram_quantile` over classic (`le`-bucketed) histograms, and over
//! native ones ([`super::native_histogram`]) in the same vector.

use std::collections::HashMap;

use scrapegrid_common::Labels;

use scrapegrid_common::METRIC_NAME;

use super::super::{El, StepOut};
use super::native_histogram;

/// A bucket of a classic histogram.
#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Prometheus's `bucketQuantile`.
fn bucket_quantile(q: f64, mut buckets: Vec<Bucket>) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce buckets with the same upper bound.
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    // Make the counts monotonic.
    let mut max = f64::NEG_INFINITY;
    for b in &mut buckets {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|b| b.count < rank);
    if b == n {
        return buckets[n - 1].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let bucket_end = buckets[b].upper;
    let mut count = buckets[b].count;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

pub(super) fn histogram_quantile(q: f64, vec: &[El<'_>]) -> StepOut {
    // Buckets grouped by their labels without `le` (the metric name kept,
    // as Prometheus keys them); the result drops both.
    let mut order: Vec<Vec<(String, String)>> = Vec::new();
    type Key = Vec<(String, String)>;
    let mut groups: HashMap<Key, (Labels, Vec<Bucket>)> = HashMap::new();
    let mut natives = Vec::new();
    for &(labels, v, h) in vec {
        if let Some(h) = h {
            natives.push((labels, h));
            continue;
        }
        let Some(upper) = labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let key: Vec<(String, String)> = labels
            .iter()
            .filter(|l| l.name != "le")
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            let mut b = labels.builder();
            b.del(METRIC_NAME);
            b.del("le");
            (b.labels(), Vec::new())
        });
        entry.1.push(Bucket { upper, count: v });
    }
    // A native histogram whose labels are a classic group's key: neither
    // is evaluated (2.42 cannot tell which was meant).
    let mut out = Vec::new();
    for (labels, h) in natives {
        let key: Key = labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        if groups.get(&key).is_some_and(|(_, b)| !b.is_empty()) {
            groups.remove(&key);
            continue;
        }
        out.push((
            super::super::drop_metric_name(labels),
            native_histogram::quantile(q, h),
            None,
        ));
    }
    out.extend(
        order
            .into_iter()
            .filter_map(|k| groups.remove(&k))
            .filter(|(_, b)| !b.is_empty())
            .map(|(labels, buckets)| (labels, bucket_quantile(q, buckets), None)),
    );
    out
}

/// Go's `strconv.ParseFloat` for the spellings bucket bounds use.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if t.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}
