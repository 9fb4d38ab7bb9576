use super::*;

fn span(offset: i32, length: u32) -> pb::BucketSpan {
    pb::BucketSpan { offset, length }
}

fn int_histogram(
    count: u64,
    zero: u64,
    pos: Vec<pb::BucketSpan>,
    deltas: Vec<i64>,
) -> pb::Histogram {
    pb::Histogram {
        count: Some(pb::histogram::Count::CountInt(count)),
        sum: 10.0,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: Some(pb::histogram::ZeroCount::ZeroCountInt(zero)),
        positive_spans: pos,
        positive_deltas: deltas,
        ..Default::default()
    }
}

fn fspans(s: &[(i32, u32)]) -> Vec<Span> {
    s.iter()
        .map(|&(offset, length)| Span { offset, length })
        .collect()
}

#[test]
fn bounds_are_powers_of_the_base() {
    assert_eq!(float::bound(0, 0), 1.0);
    assert_eq!(float::bound(1, 0), 2.0);
    assert_eq!(float::bound(-1, 0), 0.5);
    // The table's 0.7071067811865475 doubled: one ulp below SQRT_2.
    assert_eq!(
        float::bound(1, 1),
        f64::from_bits(std::f64::consts::SQRT_2.to_bits() - 1)
    );
    assert_eq!(float::bound(1, -1), 4.0);
    assert_eq!(float::bound(-1, -2), 1.0 / 16.0);
    // The last finite bucket ends at the largest float.
    assert_eq!(float::bound(1024, 0), f64::MAX);
    assert_eq!(float::bound(1025, 0), f64::INFINITY);
    assert!(float::bound(0, 9).is_nan());
}

#[test]
fn validation_reads_as_prometheus() {
    let ok = int_histogram(5, 1, vec![span(0, 2)], vec![2, 1]);
    assert_eq!(validate(&ok), Ok(()));
    let short = int_histogram(4, 0, vec![span(0, 2)], vec![2, 1]);
    assert_eq!(
        validate(&short).unwrap_err(),
        "5 observations found in buckets, but the Count field is 4: histogram's observation count should be at least the number of observations found in the buckets"
    );
    let mismatch = int_histogram(9, 0, vec![span(0, 3)], vec![2, 1]);
    assert_eq!(
        validate(&mismatch).unwrap_err(),
        "positive side: spans need 3 buckets, have 2 buckets: histogram spans specify different number of buckets than provided"
    );
    let negative = int_histogram(9, 0, vec![span(0, 2)], vec![2, -3]);
    assert_eq!(
        validate(&negative).unwrap_err(),
        "positive side: bucket number 2 has observation count of -1: histogram has a bucket whose observation count is negative"
    );
    let offset = int_histogram(9, 0, vec![span(0, 1), span(-1, 1)], vec![2, 0]);
    assert_eq!(
        validate(&offset).unwrap_err(),
        "positive side: span number 2 with offset -1: histogram has a span whose offset is negative"
    );
    // A NaN or negative zero threshold is refused.
    for zt in [f64::NAN, -1.0] {
        let mut h = ok.clone();
        h.zero_threshold = zt;
        assert!(validate(&h).unwrap_err().contains("zero threshold"), "{zt}");
    }
    // Float sides are summed each on its own, then added, as 2.42 does:
    // 1 + (1 + 2^53) rounds to 2^53, which the count covers.
    let two53 = 9_007_199_254_740_992.0;
    let float = pb::Histogram {
        count: Some(pb::histogram::Count::CountFloat(two53)),
        negative_spans: vec![span(0, 1)],
        negative_counts: vec![1.0],
        positive_spans: vec![span(0, 2)],
        positive_counts: vec![1.0, two53],
        ..Default::default()
    };
    assert_eq!(validate(&float), Ok(()));
    // Deltas that overflow wrap in compaction (which comes before
    // validation), as Go's do, instead of panicking.
    let mut wild = int_histogram(1, 0, vec![span(0, 3)], vec![i64::MAX, 1, 0]);
    compact(&mut wild);
    assert!(validate(&wild).is_err());
    let mut schema = ok.clone();
    schema.schema = 9;
    assert!(validate(&schema).unwrap_err().contains("schema 9"));
    // Offsets that would overflow 32-bit index arithmetic: refused, and
    // compaction leaves them alone rather than overflowing.
    let mut far = int_histogram(9, 0, vec![span(i32::MAX, 1), span(i32::MAX, 1)], vec![1, 0]);
    assert!(validate(&far).unwrap_err().contains("bucket index beyond"));
    compact(&mut far);
    assert_eq!(far.positive_spans.len(), 2);
}

#[test]
fn compact_cuts_empty_buckets_and_keeps_deltas_right() {
    // Buckets 0..=4 with absolute counts 0, 3, 0, 0, 2: deltas 0, 3, -3, 0, 2.
    let mut h = int_histogram(5, 0, vec![span(0, 5)], vec![0, 3, -3, 0, 2]);
    compact(&mut h);
    assert_eq!(h.positive_spans, vec![span(1, 1), span(2, 1)]);
    assert_eq!(h.positive_deltas, vec![3, -1]);
    let f = to_float(&h);
    assert_eq!(f.positive_buckets, vec![3.0, 2.0]);
    let idx: Vec<i32> = f.positive_buckets().map(|b| b.index).collect();
    assert_eq!(idx, vec![1, 4]);

    // Zero-length and zero-offset spans merge.
    let mut h = int_histogram(
        3,
        0,
        vec![span(2, 1), span(0, 1), span(3, 0), span(1, 1)],
        vec![1, 0, 0],
    );
    compact(&mut h);
    assert_eq!(h.positive_spans, vec![span(2, 2), span(4, 1)]);
}

#[test]
fn all_buckets_go_from_negative_through_zero_to_positive() {
    let h = FloatHistogram {
        schema: 0,
        zero_threshold: 0.001,
        zero_count: 2.0,
        count: 9.0,
        sum: 1.0,
        positive_spans: fspans(&[(0, 2)]),
        positive_buckets: vec![3.0, 1.0],
        negative_spans: fspans(&[(0, 2)]),
        negative_buckets: vec![1.0, 2.0],
        ..Default::default()
    };
    let got: Vec<(f64, f64, f64)> = h
        .all_buckets()
        .map(|b| (b.lower, b.upper, b.count))
        .collect();
    assert_eq!(
        got,
        vec![
            (-2.0, -1.0, 2.0),
            (-1.0, -0.5, 1.0),
            (-0.001, 0.001, 2.0),
            (0.5, 1.0, 3.0),
            (1.0, 2.0, 1.0),
        ]
    );
}

#[test]
fn add_and_sub_merge_layouts() {
    let a = FloatHistogram {
        schema: 0,
        count: 4.0,
        sum: 4.0,
        positive_spans: fspans(&[(0, 1), (2, 1)]),
        positive_buckets: vec![1.0, 3.0],
        ..Default::default()
    };
    let b = FloatHistogram {
        schema: 1,
        count: 6.0,
        sum: 2.0,
        // Schema 1 buckets 1..=2 merge into schema 0 bucket 1.
        positive_spans: fspans(&[(1, 2), (3, 1)]),
        positive_buckets: vec![2.0, 1.0, 3.0],
        ..Default::default()
    };
    let mut s = a.clone();
    s.add(&b);
    assert_eq!(s.count, 10.0);
    assert_eq!(s.sum, 6.0);
    let got: Vec<(i32, f64)> = s.positive_buckets().map(|b| (b.index, b.count)).collect();
    // Schema-1 index 6 -> ((6-1)>>1)+1 = 3.
    assert_eq!(got, vec![(0, 1.0), (1, 3.0), (3, 6.0)]);
    s.sub(&b);
    s.compact();
    assert_eq!(s.positive_spans, a.positive_spans);
    assert_eq!(s.positive_buckets, a.positive_buckets);

    let low = b.copy_to_schema(0);
    let got: Vec<(i32, f64)> = low.positive_buckets().map(|b| (b.index, b.count)).collect();
    assert_eq!(got, vec![(1, 3.0), (3, 3.0)]);
}

#[test]
fn zero_buckets_are_reconciled_to_the_wider_threshold() {
    let mut a = FloatHistogram {
        schema: 0,
        zero_threshold: 0.5,
        zero_count: 1.0,
        count: 3.0,
        positive_spans: fspans(&[(1, 1)]),
        positive_buckets: vec![2.0],
        ..Default::default()
    };
    // Bucket 0 is (0.5, 1]: widening a threshold of 0.1 to 0.5 takes the
    // bucket (0.25, 0.5] (index -1) into the zero bucket.
    let b = FloatHistogram {
        schema: 0,
        zero_threshold: 0.1,
        zero_count: 1.0,
        count: 4.0,
        positive_spans: fspans(&[(-1, 2)]),
        positive_buckets: vec![2.0, 1.0],
        ..Default::default()
    };
    a.add(&b);
    assert_eq!(a.zero_threshold, 0.5);
    assert_eq!(a.zero_count, 4.0);
    let got: Vec<(i32, f64)> = a.positive_buckets().map(|b| (b.index, b.count)).collect();
    assert_eq!(got, vec![(0, 1.0), (1, 2.0)]);
}

#[test]
fn counter_resets_are_detected_per_bucket() {
    let prev = FloatHistogram {
        schema: 0,
        count: 5.0,
        positive_spans: fspans(&[(0, 2)]),
        positive_buckets: vec![2.0, 3.0],
        ..Default::default()
    };
    let mut grown = prev.clone();
    grown.count = 6.0;
    grown.positive_buckets = vec![3.0, 3.0];
    assert!(!grown.detect_reset(&prev));
    let mut shrunk = grown.clone();
    shrunk.positive_buckets = vec![4.0, 2.0];
    assert!(shrunk.detect_reset(&prev));
    let mut moved = grown.clone();
    moved.positive_spans = fspans(&[(1, 2)]);
    // Bucket 0 held 2 and is gone.
    assert!(moved.detect_reset(&prev));
    let mut fewer = prev.clone();
    fewer.count = 4.0;
    assert!(fewer.detect_reset(&prev));
}
