use scrapegrid_proto::{stale_marker, STALE_NAN_BITS};

use super::*;
use crate::samples::Sample as Point;

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> prom::TimeSeries {
    prom::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| prom::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| prom::Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn write_request(series: Vec<prom::TimeSeries>) -> prom::WriteRequest {
    prom::WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
}

#[test]
fn decodes_snappy_protobuf_round_trip() {
    let req = write_request(vec![ts(&[("__name__", "up")], &[(1, stale_marker())])]);
    let got: prom::WriteRequest = decode(&encode(&req), MAX_DECOMPRESSED_BYTES).unwrap();
    assert_eq!(got.timeseries[0].labels, req.timeseries[0].labels);
    assert_eq!(
        got.timeseries[0].samples[0].value.to_bits(),
        STALE_NAN_BITS,
        "stale marker survives bit-exact"
    );
}

#[test]
fn refuses_bad_snappy_bad_protobuf_and_large_bodies() {
    // Not a snappy block: the length varint never ends.
    let err = decode::<prom::WriteRequest>(&[0xff; 8], MAX_DECOMPRESSED_BYTES).unwrap_err();
    assert!(matches!(err, RemoteError::Snappy(_)), "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);

    // Valid snappy, but not a protobuf: field 1 with wire type 7.
    let garbage = snap::raw::Encoder::new()
        .compress_vec(&[0x0f, 0x01])
        .unwrap();
    let err = decode::<prom::WriteRequest>(&garbage, MAX_DECOMPRESSED_BYTES).unwrap_err();
    assert!(matches!(err, RemoteError::Protobuf(_)), "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);

    // Announces more than the limit: refused before decompressing.
    let big = snap::raw::Encoder::new().compress_vec(&[0; 4096]).unwrap();
    let err = decode::<prom::WriteRequest>(&big, 1024).unwrap_err();
    assert!(
        matches!(err, RemoteError::TooLarge { limit: 1024 }),
        "{err:?}"
    );
    assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // At the limit it is decompressed (zeros are no protobuf, though).
    let err = decode::<prom::WriteRequest>(&big, 4096).unwrap_err();
    assert!(matches!(err, RemoteError::Protobuf(_)), "{err:?}");
}

#[test]
fn validates_write_requests() {
    let ok = RemoteWrite::try_from(write_request(vec![
        // Unsorted, with an empty value (absent label): accepted.
        ts(
            &[("job", "j"), ("__name__", "a"), ("empty", "")],
            &[(1, 1.0), (2, stale_marker())],
        ),
        // No samples: skipped.
        ts(&[("__name__", "b")], &[]),
        ts(&[("__name__", "c")], &[(3, 3.0)]),
    ]))
    .unwrap();
    assert_eq!(
        ok.series,
        [
            Arc::new(CompactLabels::from(Labels::from_pairs([
                ("__name__", "a"),
                ("job", "j")
            ]))),
            Arc::new(CompactLabels::from(Labels::from_pairs([("__name__", "c")]))),
        ]
    );
    let got: Vec<(u32, i64, u64)> = ok
        .samples
        .iter()
        .map(|s| (s.series, s.ts_ms, s.value.to_bits()))
        .collect();
    assert_eq!(
        got,
        [
            (0, 1, 1f64.to_bits()),
            (0, 2, STALE_NAN_BITS),
            (1, 3, 3f64.to_bits())
        ]
    );

    // Two observations in buckets, a count of one.
    let histogram = prom::TimeSeries {
        histograms: vec![prom::Histogram {
            count: Some(prom::histogram::Count::CountInt(1)),
            positive_spans: vec![prom::BucketSpan {
                offset: 0,
                length: 1,
            }],
            positive_deltas: vec![2],
            timestamp: 5,
            ..Default::default()
        }],
        ..ts(&[("__name__", "h")], &[])
    };
    let cases = [
        (
            ts(&[("__name__", "a"), ("", "x")], &[(1, 1.0)]),
            "series {__name__=\"a\", =\"x\"}: empty label name",
        ),
        (
            ts(&[("__name__", "a"), ("a-b", "x")], &[(1, 1.0)]),
            "series {__name__=\"a\", a-b=\"x\"}: invalid label name \"a-b\"",
        ),
        (
            ts(&[("job", "x")], &[(1, 1.0)]),
            "series {job=\"x\"}: missing metric name (__name__ label)",
        ),
        (
            ts(&[("__name__", "")], &[(1, 1.0)]),
            "series {__name__=\"\"}: missing metric name (__name__ label)",
        ),
        (
            ts(&[("__name__", "a"), ("x", "1"), ("x", "2")], &[(1, 1.0)]),
            "series {__name__=\"a\", x=\"1\", x=\"2\"}: duplicate label name \"x\"",
        ),
        (
            histogram,
            "series {__name__=\"h\"}: histogram: 2 observations found in buckets, but the Count field is 1: histogram's observation count should be at least the number of observations found in the buckets",
        ),
    ];
    for (series, want) in cases {
        // A bad series refuses the whole request, good ones included.
        let good = ts(&[("__name__", "ok")], &[(1, 1.0)]);
        let err = RemoteWrite::try_from(write_request(vec![good, series])).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}

fn query(start: i64, end: i64, matchers: Vec<prom::LabelMatcher>) -> prom::Query {
    prom::Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers,
        hints: None,
    }
}

fn m(t: prom::label_matcher::Type, name: &str, value: &str) -> prom::LabelMatcher {
    prom::LabelMatcher {
        r#type: t as i32,
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn answers_each_query_with_raw_samples() {
    use prom::label_matcher::Type;
    let series = |job: &str, points: &[(i64, f64)]| Series {
        labels: Labels::from_pairs([("__name__", "m"), ("job", job)]),
        samples: points.iter().map(|&(t, v)| Point { t, v }).collect(),
        histograms: vec![],
    };
    let source = vec![
        series("a", &[(10, 1.0), (20, stale_marker()), (30, 3.0)]),
        series("b", &[(10, 5.0)]),
    ];
    let req = prom::ReadRequest {
        queries: vec![
            query(20, 30, vec![m(Type::Eq, "__name__", "m")]),
            query(0, 100, vec![m(Type::Re, "job", "b|c")]),
            query(
                0,
                100,
                vec![m(Type::Eq, "__name__", "m"), m(Type::Nre, "job", "a|b")],
            ),
        ],
        accepted_response_types: vec![],
    };
    let resp = answer(&source, &read_queries(&req).unwrap(), 100).unwrap();
    /// A series as (job, [(timestamp, value bits)]).
    type Got = (String, Vec<(i64, u64)>);
    let got: Vec<Vec<Got>> = resp
        .results
        .iter()
        .map(|r| {
            r.timeseries
                .iter()
                .map(|ts| {
                    let job = ts.labels.iter().find(|l| l.name == "job").unwrap();
                    let points = ts
                        .samples
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect();
                    (job.value.clone(), points)
                })
                .collect()
        })
        .collect();
    assert_eq!(
        got,
        [
            vec![(
                "a".to_string(),
                vec![(20, STALE_NAN_BITS), (30, 3f64.to_bits())]
            )],
            vec![("b".to_string(), vec![(10, 5f64.to_bits())])],
            vec![],
        ]
    );

    let err = answer(&source, &read_queries(&req).unwrap(), 2).unwrap_err();
    assert_eq!(err.to_string(), "exceeded sample limit (2)");
}

#[test]
fn refuses_bad_matchers() {
    use prom::label_matcher::Type;
    let bad_type = prom::LabelMatcher {
        r#type: 9,
        ..m(Type::Eq, "a", "b")
    };
    let cases = [
        (vec![bad_type], "unknown matcher type 9"),
        (vec![m(Type::Re, "__name__", "(")], "invalid regex"),
    ];
    for (matchers, want) in cases {
        let req = prom::ReadRequest {
            queries: vec![query(0, 1, matchers)],
            accepted_response_types: vec![],
        };
        let err = read_queries(&req).unwrap_err();
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    // Matchers that all match "" select nothing usable: refused on select.
    let q = read_queries(&prom::ReadRequest {
        queries: vec![query(0, 1, vec![m(Type::Eq, "job", "")])],
        accepted_response_types: vec![],
    })
    .unwrap();
    let err = answer(&Vec::<Series>::new(), &q, 10).unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}
