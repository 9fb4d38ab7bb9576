//! Quantiles and fractions of native histograms, as Prometheus 2.42's
//! `histogramQuantile` and `histogramFraction` interpolate them: linearly
//! within the bucket the rank falls in, the zero bucket cut at 0 when all
//! other buckets lie on one side of it.

use scrapegrid_common::histogram::{Bucket, FloatHistogram};

/// The zero bucket (the one spanning 0) as 2.42 reads it for
/// interpolation: only its positive half when there are only positive
/// buckets, only its negative half when there are only negative ones.
fn clip_zero_bucket(mut b: Bucket, h: &FloatHistogram) -> Bucket {
    if b.lower < 0.0 && b.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            b.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            b.upper = 0.0;
        }
    }
    b
}

/// The `q` quantile of the observations in `h`.
pub(super) fn quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let rank_target = q * h.count;
    let mut bucket = Bucket::default();
    let mut count = 0.0;
    for b in h.all_buckets() {
        bucket = b;
        count += b.count;
        if count >= rank_target {
            break;
        }
    }
    let bucket = clip_zero_bucket(bucket, h);
    if count > h.count {
        count = h.count;
    }
    if count < rank_target {
        return bucket.upper;
    }
    let rank = rank_target - (count - bucket.count);
    bucket.lower + (bucket.upper - bucket.lower) * (rank / bucket.count)
}

/// The share of the observations in `h` between `lower` and `upper`.
pub(super) fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for b in h.all_buckets() {
        let b = clip_zero_bucket(b, h);
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = rank + b.count * (lower - b.lower) / (b.upper - b.lower);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = rank + b.count * (upper - b.lower) / (b.upper - b.lower);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if !lower_set || lower_rank > h.count {
        lower_rank = h.count;
    }
    if !upper_set || upper_rank > h.count {
        upper_rank = h.count;
    }
    (upper_rank - lower_rank) / h.count
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_common::histogram::Span;

    /// Schema 0: buckets (0.5,1]: 2, (1,2]: 4, (2,4]: 2; zero bucket
    /// [-0.001, 0.001]: 2; 10 observations.
    fn h() -> FloatHistogram {
        FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 10.0,
            sum: 15.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![2.0, 4.0, 2.0],
            ..Default::default()
        }
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = h();
        // Rank 5 falls 1 into (1,2] (2 zero + 2 first).
        assert_eq!(quantile(0.5, &h), 1.25);
        // Rank 1 is in the zero bucket, cut at 0 (only positive buckets).
        assert_eq!(quantile(0.1, &h), 0.0005);
        assert_eq!(quantile(1.0, &h), 4.0);
        assert_eq!(quantile(1.5, &h), f64::INFINITY);
        assert_eq!(quantile(-1.0, &h), f64::NEG_INFINITY);
        assert!(quantile(f64::NAN, &h).is_nan());
        let empty = FloatHistogram::default();
        assert!(quantile(0.5, &empty).is_nan());
    }

    #[test]
    fn fractions_interpolate_at_both_ends() {
        let h = h();
        assert_eq!(fraction(0.0, 1.0, &h), 0.4);
        assert_eq!(fraction(1.0, 1.5, &h), 0.2);
        assert_eq!(fraction(-10.0, 10.0, &h), 1.0);
        assert_eq!(fraction(2.0, 1.0, &h), 0.0);
        assert!(fraction(f64::NAN, 1.0, &h).is_nan());
    }
}
