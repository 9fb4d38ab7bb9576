//! What each metric type yields, how series are named and spelled, and
//! exemplars, as Prometheus 2.42.

use super::*;

#[test]
fn yields_each_type_as_prometheus() {
    let inf = f64::INFINITY;
    let one = |ty, m: pb::Metric| encode(&[family("x", "", ty, vec![m])]);
    let native_looking = |h: Histogram| one(T::Histogram, hist_metric(h));
    check(vec![
        (
            "counter, no exemplar",
            one(T::Counter, counter(3.5, None)),
            vec![r#"H x """#, "T x counter", "S x 3.5"],
        ),
        (
            "gauge with labels and timestamp",
            one(T::Gauge, with(gauge(-2.0), &[("b", "1"), ("a", "2")], 17)),
            vec![r#"H x """#, "T x gauge", r#"S x{b="1",a="2"} -2.0 @17"#],
        ),
        (
            "negative timestamp",
            one(T::Gauge, with(gauge(1.0), &[], -5)),
            vec![r#"H x """#, "T x gauge", "S x 1.0 @-5"],
        ),
        (
            "untyped",
            one(T::Untyped, untyped(0.0)),
            vec![r#"H x """#, "T x untyped", "S x 0.0"],
        ),
        (
            "value field missing reads 0",
            one(T::Counter, gauge(7.0)),
            vec![r#"H x """#, "T x counter", "S x 0.0"],
        ),
        (
            "summary with user labels",
            one(
                T::Summary,
                with(
                    summary(2, 3.0, &[(0.25, 1.0), (1.0, 2.0)]),
                    &[("q", "v")],
                    9,
                ),
            ),
            vec![
                r#"H x """#,
                "T x summary",
                r#"S x_count{q="v"} 2.0 @9"#,
                r#"S x_sum{q="v"} 3.0 @9"#,
                r#"S x{q="v",quantile="0.25"} 1.0 @9"#,
                r#"S x{q="v",quantile="1.0"} 2.0 @9"#,
            ],
        ),
        (
            "summary field missing",
            one(T::Summary, gauge(1.0)),
            vec![r#"H x """#, "T x summary", "S x_count 0.0", "S x_sum 0.0"],
        ),
        (
            "histogram with its own +Inf bucket",
            one(
                T::Histogram,
                hist_metric(histogram(
                    5,
                    1.5,
                    vec![bucket(0.5, 1, None), bucket(inf, 5, None)],
                )),
            ),
            vec![
                r#"H x """#,
                "T x histogram",
                "S x_count 5.0",
                "S x_sum 1.5",
                r#"S x_bucket{le="0.5"} 1.0"#,
                r#"S x_bucket{le="+Inf"} 5.0"#,
            ],
        ),
        (
            "buckets after +Inf are ignored",
            one(
                T::Histogram,
                hist_metric(histogram(
                    5,
                    1.5,
                    vec![bucket(inf, 4, None), bucket(9.0, 1, None)],
                )),
            ),
            vec![
                r#"H x """#,
                "T x histogram",
                "S x_count 5.0",
                "S x_sum 1.5",
                r#"S x_bucket{le="+Inf"} 4.0"#,
            ],
        ),
        (
            "unsorted buckets kept as sent, +Inf added",
            one(
                T::Histogram,
                hist_metric(histogram(
                    9,
                    0.0,
                    vec![bucket(2.0, 3, None), bucket(1.0, 2, None)],
                )),
            ),
            vec![
                r#"H x """#,
                "T x histogram",
                "S x_count 9.0",
                "S x_sum 0.0",
                r#"S x_bucket{le="2.0"} 3.0"#,
                r#"S x_bucket{le="1.0"} 2.0"#,
                r#"S x_bucket{le="+Inf"} 9.0"#,
            ],
        ),
        (
            "histogram without buckets or histogram field",
            one(T::Histogram, with(gauge(1.0), &[("a", "b")], 0)),
            vec![
                r#"H x """#,
                "T x histogram",
                r#"S x_count{a="b"} 0.0"#,
                r#"S x_sum{a="b"} 0.0"#,
                r#"S x_bucket{a="b",le="+Inf"} 0.0"#,
            ],
        ),
        (
            "gauge histogram: 2.42 keeps the bare name",
            one(
                T::GaugeHistogram,
                hist_metric(histogram(4, 2.0, vec![bucket(1.0, 3, None)])),
            ),
            vec![
                r#"H x """#,
                "T x gaugehistogram",
                "S x 4.0",
                "S x 2.0",
                r#"S x{le="1.0"} 3.0"#,
                r#"S x{le="+Inf"} 4.0"#,
            ],
        ),
        (
            "float counts are ignored",
            native_looking(Histogram {
                sample_count_float: 8.0,
                bucket: vec![pb::Bucket {
                    cumulative_count_float: 8.0,
                    upper_bound: 1.0,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            vec![
                r#"H x """#,
                "T x histogram",
                "S x_count 0.0",
                "S x_sum 0.0",
                r#"S x_bucket{le="1.0"} 0.0"#,
                r#"S x_bucket{le="+Inf"} 0.0"#,
            ],
        ),
        (
            "float native buckets alone are not native in 2.42",
            native_looking(Histogram {
                schema: 3,
                positive_span: vec![pb::BucketSpan {
                    offset: 0,
                    length: 1,
                }],
                positive_count: vec![2.0],
                ..histogram(2, 1.0, vec![])
            }),
            vec![
                r#"H x """#,
                "T x histogram",
                "S x_count 2.0",
                "S x_sum 1.0",
                r#"S x_bucket{le="+Inf"} 2.0"#,
            ],
        ),
        (
            "NaN and stale bits pass through",
            encode(&[family(
                "x",
                "",
                T::Gauge,
                vec![
                    gauge(f64::from_bits(0x7ff8_0000_0000_0000)),
                    gauge(f64::from_bits(0x7ff0_0000_0000_0002)),
                ],
            )]),
            vec![
                r#"H x """#,
                "T x gauge",
                "S x NaN:0x7ff8000000000000",
                "S x NaN:0x7ff0000000000002",
            ],
        ),
        (
            "non-ASCII help is borrowed as is",
            encode(&[family("x", "tést \\n \"q\"", T::Gauge, vec![gauge(1.0)])]),
            vec![r#"H x "tést \\n \"q\"""#, "T x gauge", "S x 1.0"],
        ),
    ]);
}

#[test]
fn decides_native_from_the_first_metric_only() {
    let native = |h: Histogram| hist_metric(h);
    let classic = hist_metric(histogram(1, 1.0, vec![]));
    for (what, h) in [
        (
            "zero threshold",
            Histogram {
                zero_threshold: 1e-128,
                ..Default::default()
            },
        ),
        (
            "zero count",
            Histogram {
                zero_count: 1,
                ..Default::default()
            },
        ),
        (
            "positive deltas",
            Histogram {
                positive_delta: vec![0],
                ..Default::default()
            },
        ),
        (
            "negative deltas",
            Histogram {
                negative_delta: vec![0],
                ..Default::default()
            },
        ),
    ] {
        let first = encode(&[family(
            "x",
            "",
            T::Histogram,
            vec![native(h.clone()), classic.clone()],
        )]);
        assert_eq!(
            render_all(&first)[2..],
            ["N x", "N x"],
            "{what} first: both metrics are native histograms"
        );
        let second = encode(&[family(
            "x",
            "",
            T::Histogram,
            vec![classic.clone(), native(h)],
        )]);
        assert_eq!(
            render_all(&second).len(),
            2 + 3 + 3,
            "{what} second: classic series for both"
        );
    }
}

#[test]
fn formats_le_and_quantile_as_prometheus() {
    // Go: fmt.Sprint, plus ".0" without "." or "e".
    let cases: &[(f64, &str)] = &[
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (-1.0, "-1.0"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (0.5, "0.5"),
        (2.0, "2.0"),
        (10.0, "10.0"),
        (100.0, "100.0"),
        (999999.0, "999999.0"),
        (123456.7, "123456.7"),
        (-123456.5, "-123456.5"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00012, "0.00012"),
        (1e-05, "1e-05"),
        (2.5e-7, "2.5e-07"),
        (-0.00048, "-0.00048"),
        (0.1, "0.1"),
        (0.30000000000000004, "0.30000000000000004"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (-1.5e-300, "-1.5e-300"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (2.938735877055719e-39, "2.938735877055719e-39"),
    ];
    for &(f, want) in cases {
        let mut got = String::new();
        push_openmetrics_float(&mut got, f);
        assert_eq!(got, want, "{f:?}");
    }
}

#[test]
fn series_text_round_trips_awkward_label_values() {
    let awkward = [
        ("a", r#"quote " inside"#),
        ("b", r"back\slash and \n literal"),
        ("c", "new\nline"),
        ("d", "trailing backslash \\"),
        ("e", "}{,=# \t\r\0 é ✓"),
        ("f", r#"\""#),
        ("g", ""),
    ];
    let m = with(counter(1.0, None), &awkward, 0);
    let body = encode(&[family("x", "", T::Counter, vec![m])]);
    let (entries, err) = parse(&body);
    assert_eq!(err, None);
    let Entry::Sample(s) = &entries[2] else {
        panic!("{entries:?}")
    };
    assert_eq!(
        s.series,
        "x{a=\"quote \\\" inside\",b=\"back\\\\slash and \\\\n literal\",c=\"new\\nline\",\
         d=\"trailing backslash \\\\\",e=\"}{,=# \t\r\0 é ✓\",f=\"\\\\\\\"\",g=\"\"}"
    );
    let mut want: Vec<(&str, &str)> = awkward
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    want.push(("__name__", "x"));
    assert_eq!(s.labels(), Labels::from_pairs(want));
}

#[test]
fn reads_exemplars_as_prometheus() {
    let ex = |ts| {
        Some(exemplar(
            &[("trace_id", "abc"), ("z", ""), ("bad", "\u{fffd}")],
            0.5,
            ts,
        ))
    };
    let h = histogram(
        3,
        1.0,
        vec![
            bucket(1.0, 1, ex(Some((-1, -500_000_000)))),
            bucket(2.0, 2, None),
        ],
    );
    let mut bad_utf8 = exemplar(&[], 1.0, Some((i64::MAX, 999_999_999)));
    bad_utf8.label = vec![pb::LabelPair {
        name: b"k".to_vec(),
        value: vec![0xff],
    }];
    check(vec![
        (
            "counter exemplar without timestamp",
            encode(&[family("c", "", T::Counter, vec![counter(1.0, ex(None))])]),
            vec![
                r#"H c """#,
                "T c counter",
                "S c 1.0 # {bad=\"\u{fffd}\", trace_id=\"abc\"} 0.5",
            ],
        ),
        (
            "bucket exemplars only on real buckets, Go arithmetic",
            encode(&[family("h", "", T::Histogram, vec![hist_metric(h)])]),
            vec![
                r#"H h """#,
                "T h histogram",
                "S h_count 3.0",
                "S h_sum 1.0",
                "S h_bucket{le=\"1.0\"} 1.0 # {bad=\"\u{fffd}\", trace_id=\"abc\"} 0.5 @-1500",
                r#"S h_bucket{le="2.0"} 2.0"#,
                r#"S h_bucket{le="+Inf"} 3.0"#,
            ],
        ),
        (
            "exemplar labels are not checked; timestamp wraps as Go",
            encode(&[family(
                "c",
                "",
                T::Counter,
                vec![counter(1.0, Some(bad_utf8))],
            )]),
            vec![
                r#"H c """#,
                "T c counter",
                "S c 1.0 # {k=\"\u{fffd}\"} 1.0 @-1",
            ],
        ),
    ]);
}

#[test]
fn series_text_is_deterministic() {
    let series = || -> Vec<String> {
        let body = encode(&prometheus_families());
        let (entries, _) = parse(&body);
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Sample(s) => Some(s.series.to_string()),
                _ => None,
            })
            .collect()
    };
    let first = series();
    assert_eq!(first.len(), 16);
    assert_eq!(first, series());
}
