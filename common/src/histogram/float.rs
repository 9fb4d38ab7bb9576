//! The float histogram queries compute with, and its arithmetic, after
//! Prometheus 2.42's `FloatHistogram`: the same bucket merging, zero-bucket
//! reconciliation and counter-reset rules, so that `rate` and `sum` over
//! native histograms give Prometheus's buckets.

use super::adder::BucketAdder;
use super::bounds::EXPONENTIAL_BOUNDS;
use super::compact::compact_buckets;
use super::{ResetHint, Span};

/// A histogram with absolute float bucket counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub reset_hint: ResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
}

/// One bucket with its bounds and count. `index` is the bucket's index in
/// its schema (irrelevant for the zero bucket).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    pub index: i32,
}

/// The upper bound of bucket `idx` in `schema` (2.42's `getBound`); the
/// last finite bucket ends at `f64::MAX`, so that ±Inf has a bucket.
pub fn bound(idx: i32, schema: i32) -> f64 {
    if !(super::MIN_SCHEMA..=super::MAX_SCHEMA).contains(&schema) {
        return f64::NAN;
    }
    if schema < 0 {
        let exp = (idx as i64) << (-schema);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = EXPONENTIAL_BOUNDS[schema as usize][frac_idx as usize];
    let exp = ((idx as i64) >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `frac * 2^exp`, exact (as Go's `math.Ldexp`), saturating to ±Inf/0.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let mut x = frac;
    let mut e = exp.clamp(-2200, 2200);
    // Scale in steps that stay exact for normal intermediate results.
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// The buckets of one side, from the lowest index, merged into
/// `target_schema` (at most the histogram's), skipping buckets whose upper
/// bound is at most `absolute_start` (2.42's `floatBucketIterator`).
struct BucketIter<'a> {
    spans: &'a [Span],
    buckets: &'a [f64],
    schema: i32,
    target_schema: i32,
    positive: bool,
    absolute_start: f64,
    spans_idx: usize,
    idx_in_span: u32,
    buckets_idx: usize,
    orig_idx: i32,
    curr_idx: i32,
    curr_count: f64,
}

impl<'a> BucketIter<'a> {
    fn target_idx(&self, idx: i32) -> i32 {
        if self.schema == self.target_schema {
            idx
        } else {
            ((idx - 1) >> (self.schema - self.target_schema)) + 1
        }
    }

    fn at(&self) -> Bucket {
        bucket_at(
            self.curr_idx,
            self.target_schema,
            self.positive,
            self.curr_count,
        )
    }
}

fn bucket_at(idx: i32, schema: i32, positive: bool, count: f64) -> Bucket {
    let (lower, upper) = if positive {
        (bound(idx - 1, schema), bound(idx, schema))
    } else {
        (-bound(idx, schema), -bound(idx - 1, schema))
    };
    Bucket {
        lower,
        upper,
        lower_inclusive: lower < 0.0,
        upper_inclusive: upper > 0.0,
        count,
        index: idx,
    }
}

impl Iterator for BucketIter<'_> {
    type Item = Bucket;

    fn next(&mut self) -> Option<Bucket> {
        loop {
            if self.spans_idx >= self.spans.len() {
                return None;
            }
            let (mut orig_idx, mut spans_idx, mut idx_in_span) =
                (self.orig_idx, self.spans_idx, self.idx_in_span);
            let mut span = self.spans[spans_idx];
            let mut first = true;
            self.curr_count = 0.0;
            loop {
                if self.buckets_idx == 0 {
                    orig_idx = span.offset;
                } else {
                    orig_idx += 1;
                }
                let mut ended = false;
                while idx_in_span >= span.length {
                    idx_in_span = 0;
                    spans_idx += 1;
                    if spans_idx >= self.spans.len() {
                        ended = true;
                        break;
                    }
                    span = self.spans[spans_idx];
                    orig_idx += span.offset;
                }
                if ended || self.buckets_idx >= self.buckets.len() {
                    if first {
                        self.spans_idx = self.spans.len();
                        return None;
                    }
                    break;
                }
                let curr = self.target_idx(orig_idx);
                if first {
                    self.curr_idx = curr;
                    first = false;
                } else if curr != self.curr_idx {
                    break;
                }
                self.curr_count += self.buckets[self.buckets_idx];
                idx_in_span += 1;
                self.buckets_idx += 1;
                self.orig_idx = orig_idx;
                self.spans_idx = spans_idx;
                self.idx_in_span = idx_in_span;
                if self.schema == self.target_schema {
                    break;
                }
            }
            if bound(self.curr_idx, self.target_schema) <= self.absolute_start {
                continue;
            }
            return Some(self.at());
        }
    }
}

/// The buckets of one side from the highest index down (2.42's
/// `reverseFloatBucketIterator`).
fn reverse_buckets(
    spans: &[Span],
    buckets: &[f64],
    schema: i32,
    positive: bool,
) -> impl Iterator<Item = Bucket> {
    // Each bucket's index, walking the spans forwards once.
    let mut indexes = Vec::with_capacity(buckets.len());
    let mut idx = 0i32;
    for s in spans {
        idx += s.offset;
        for _ in 0..s.length {
            indexes.push(idx);
            idx += 1;
        }
    }
    let buckets = buckets.to_vec();
    (0..buckets.len().min(indexes.len()))
        .rev()
        .map(move |i| bucket_at(indexes[i], schema, positive, buckets[i]))
}

impl FloatHistogram {
    fn iter(&self, positive: bool, absolute_start: f64, target_schema: i32) -> BucketIter<'_> {
        assert!(
            target_schema <= self.schema,
            "cannot merge from schema {} to {}",
            self.schema,
            target_schema
        );
        let (spans, buckets) = if positive {
            (&self.positive_spans[..], &self.positive_buckets[..])
        } else {
            (&self.negative_spans[..], &self.negative_buckets[..])
        };
        BucketIter {
            spans,
            buckets,
            schema: self.schema,
            target_schema,
            positive,
            absolute_start,
            spans_idx: 0,
            idx_in_span: 0,
            buckets_idx: 0,
            orig_idx: 0,
            curr_idx: 0,
            curr_count: 0.0,
        }
    }

    /// The positive buckets, from the lowest.
    pub fn positive_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.iter(true, 0.0, self.schema)
    }

    /// The negative buckets, from the one nearest zero.
    pub fn negative_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.iter(false, 0.0, self.schema)
    }

    /// Every bucket from the lowest bound up: negative buckets, the zero
    /// bucket if it holds observations, positive buckets; the buckets next
    /// to the zero bucket cut at its threshold (2.42's `AllBucketIterator`).
    pub fn all_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        let zt = self.zero_threshold;
        let neg = reverse_buckets(
            &self.negative_spans,
            &self.negative_buckets,
            self.schema,
            false,
        )
        .map(move |mut b| {
            if b.upper > -zt {
                b.upper = -zt;
            }
            b
        });
        let zero = (self.zero_count > 0.0).then(|| Bucket {
            lower: -zt,
            upper: zt,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        });
        let pos = self.positive_buckets().map(move |mut b| {
            if b.lower < zt {
                b.lower = zt;
            }
            b
        });
        neg.chain(zero).chain(pos)
    }

    /// A copy with its buckets merged into `target` (at most its schema).
    pub fn copy_to_schema(&self, target: i32) -> FloatHistogram {
        if target == self.schema {
            return self.clone();
        }
        assert!(
            target < self.schema,
            "cannot copy from schema {} to {}",
            self.schema,
            target
        );
        let mut c = FloatHistogram {
            reset_hint: ResetHint::Unknown,
            schema: target,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: self.sum,
            ..Default::default()
        };
        let mut adder = BucketAdder::default();
        for b in self.iter(true, 0.0, target) {
            adder.add(b, &mut c.positive_spans, &mut c.positive_buckets);
        }
        let mut adder = BucketAdder::default();
        for b in self.iter(false, 0.0, target) {
            adder.add(b, &mut c.negative_spans, &mut c.negative_buckets);
        }
        c
    }

    /// Multiplies every count and the sum by `factor`.
    pub fn scale(&mut self, factor: f64) -> &mut Self {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for b in &mut self.positive_buckets {
            *b *= factor;
        }
        for b in &mut self.negative_buckets {
            *b *= factor;
        }
        self
    }

    /// Adds `other`, whose schema must be at least this one's.
    pub fn add(&mut self, other: &FloatHistogram) -> &mut Self {
        self.merge(other, 1.0)
    }

    /// Subtracts `other`, whose schema must be at least this one's.
    pub fn sub(&mut self, other: &FloatHistogram) -> &mut Self {
        self.merge(other, -1.0)
    }

    fn merge(&mut self, other: &FloatHistogram, sign: f64) -> &mut Self {
        let other_zero = self.reconcile_zero_buckets(other);
        self.zero_count += sign * other_zero;
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        for positive in [true, false] {
            let mut adder = BucketAdder::default();
            let bs: Vec<Bucket> = other
                .iter(positive, self.zero_threshold, self.schema)
                .collect();
            let (spans, buckets) = if positive {
                (&mut self.positive_spans, &mut self.positive_buckets)
            } else {
                (&mut self.negative_spans, &mut self.negative_buckets)
            };
            for mut b in bs {
                b.count *= sign;
                adder.add(b, spans, buckets);
            }
        }
        self
    }

    /// Removes empty buckets (2.42's `Compact(0)`).
    pub fn compact(&mut self) -> &mut Self {
        compact_buckets(
            &mut self.positive_buckets,
            &mut self.positive_spans,
            0,
            false,
        );
        compact_buckets(
            &mut self.negative_buckets,
            &mut self.negative_spans,
            0,
            false,
        );
        self
    }

    /// Returns whether going from `previous` to this histogram means a
    /// counter reset (2.42's `DetectReset`).
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        if self.count < previous.count
            || self.schema > previous.schema
            || self.zero_threshold < previous.zero_threshold
        {
            return true;
        }
        let (prev_zero, threshold) = previous.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold || self.zero_count < prev_zero {
            return true;
        }
        for positive in [true, false] {
            let curr = self.iter(positive, self.zero_threshold, self.schema);
            let prev = previous.iter(positive, self.zero_threshold, self.schema);
            if buckets_reset(curr, prev) {
                return true;
            }
        }
        false
    }

    /// The zero bucket's count and threshold when its threshold grows to at
    /// least `larger`, widened further to the upper bound of any populated
    /// bucket it would cut (2.42's `zeroCountForLargerThreshold`).
    fn zero_count_for_larger_threshold(&self, mut larger: f64) -> (f64, f64) {
        // 2.42 panics on a smaller threshold; validated histograms never
        // ask for one, and a query must not bring the node down.
        if larger <= self.zero_threshold {
            return (self.zero_count, self.zero_threshold);
        }
        'outer: loop {
            let mut count = self.zero_count;
            for b in self.positive_buckets() {
                if b.lower >= larger {
                    break;
                }
                count += b.count;
                if b.upper > larger {
                    if b.count != 0.0 {
                        larger = b.upper;
                    }
                    break;
                }
            }
            for b in self.negative_buckets() {
                if b.upper <= -larger {
                    break;
                }
                count += b.count;
                if b.lower < -larger {
                    if b.count != 0.0 {
                        larger = -b.lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, larger);
        }
    }

    /// Empties the buckets the zero bucket now covers, then compacts.
    fn trim_buckets_in_zero_bucket(&mut self) {
        let zt = self.zero_threshold;
        let n = self.positive_buckets().take_while(|b| b.lower < zt).count();
        for b in &mut self.positive_buckets[..n] {
            *b = 0.0;
        }
        let n = self
            .negative_buckets()
            .take_while(|b| b.upper > -zt)
            .count();
        for b in &mut self.negative_buckets[..n] {
            *b = 0.0;
        }
        self.compact();
    }

    /// Widens the zero bucket of this histogram or of `other` until both
    /// have the same threshold; returns `other`'s zero count at it.
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        // (A NaN threshold, which validation refuses, would never settle.)
        while other_threshold != self.zero_threshold
            && !other_threshold.is_nan()
            && !self.zero_threshold.is_nan()
        {
            if self.zero_threshold > other_threshold {
                (other_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                (self.zero_count, self.zero_threshold) =
                    self.zero_count_for_larger_threshold(other_threshold);
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_count
    }
}

/// 2.42's `detectReset` over one side's buckets.
fn buckets_reset(
    mut curr: impl Iterator<Item = Bucket>,
    mut prev: impl Iterator<Item = Bucket>,
) -> bool {
    let Some(mut p) = prev.next() else {
        return false;
    };
    let rest_populated = |p: Bucket, prev: &mut dyn Iterator<Item = Bucket>| -> bool {
        std::iter::once(p).chain(prev).any(|b| b.count != 0.0)
    };
    let Some(mut c) = curr.next() else {
        return rest_populated(p, &mut prev);
    };
    loop {
        while c.index < p.index {
            match curr.next() {
                Some(n) => c = n,
                None => return rest_populated(p, &mut prev),
            }
        }
        if c.index > p.index {
            if p.count != 0.0 {
                return true;
            }
        } else if c.count < p.count {
            return true;
        }
        match prev.next() {
            Some(n) => p = n,
            None => return false,
        }
    }
}
