//! Name, help, type and label checks, in 2.42's order and wording, and where
//! in the entry stream each error comes.

use super::*;

#[test]
fn validates_names_and_labels_as_prometheus() {
    let bad = |n: &[u8], v: &[u8]| pb::LabelPair {
        name: n.to_vec(),
        value: v.to_vec(),
    };
    let labelled = |ty, m: pb::Metric, l: Vec<pb::LabelPair>| {
        let ok = gauge(1.0);
        encode(&[family("x", "", ty, vec![ok, pb::Metric { label: l, ..m }])])
    };
    let mut bad_name = family("x", "", T::Gauge, vec![gauge(1.0)]);
    bad_name.name = vec![b'x', 0xff];
    let mut bad_help = family("x", "", T::Gauge, vec![gauge(1.0)]);
    bad_help.help = vec![b'h', 0xc3];
    let mut bad_type = family("x", "", T::Gauge, vec![gauge(1.0)]);
    bad_type.r#type = 6;
    let mut negative_type = bad_type.clone();
    negative_type.r#type = -1;
    let two = |f: pb::MetricFamily| encode(&[family("ok", "", T::Gauge, vec![gauge(1.0)]), f]);
    let column = encode(&[family("ok", "", T::Gauge, vec![gauge(1.0)])]).len() + 1;
    let at = |m: &str| format!("E {column}: {m}");
    let g = [r#"H x """#, "T x gauge", "S x 1.0"];
    let h = |more: &[&'static str]| [&[r#"H x """#, "T x histogram"][..], more].concat();
    check(vec![
        (
            "empty name",
            encode(&[family("", "", T::Gauge, vec![gauge(1.0)])]),
            vec!["E 1: invalid metric name: "],
        ),
        (
            "name starting with a digit",
            encode(&[family("1x", "", T::Gauge, vec![gauge(1.0)])]),
            vec!["E 1: invalid metric name: 1x"],
        ),
        (
            "name with a dash",
            encode(&[family("a-b", "", T::Gauge, vec![gauge(1.0)])]),
            vec!["E 1: invalid metric name: a-b"],
        ),
        (
            "name with invalid UTF-8",
            encode(&[bad_name]),
            vec!["E 1: invalid metric name: x\u{fffd}"],
        ),
        (
            "help with invalid UTF-8",
            encode(&[bad_help]),
            vec!["E 1: invalid help for metric \"x\": h\u{fffd}"],
        ),
        (
            "unknown type, second family",
            two(bad_type),
            vec![
                r#"H ok """#,
                "T ok gauge",
                "S ok 1.0",
                &at("unknown metric type for metric \"x\": 6"),
            ],
        ),
        (
            "negative type",
            encode(&[negative_type]),
            vec!["E 1: unknown metric type for metric \"x\": -1"],
        ),
        (
            "empty label name",
            labelled(T::Gauge, gauge(2.0), pairs(&[("", "v")])),
            [&g[..], &["E 1: invalid label name: "]].concat(),
        ),
        (
            "label name with a colon",
            labelled(T::Gauge, gauge(2.0), pairs(&[("a:b", "v")])),
            [&g[..], &["E 1: invalid label name: a:b"]].concat(),
        ),
        (
            "label name starting with a digit",
            labelled(T::Gauge, gauge(2.0), pairs(&[("1a", "v")])),
            [&g[..], &["E 1: invalid label name: 1a"]].concat(),
        ),
        (
            "label value with invalid UTF-8",
            labelled(T::Gauge, gauge(2.0), vec![bad(b"a", b"\xff")]),
            [&g[..], &["E 1: invalid label value: \u{fffd}"]].concat(),
        ),
        (
            "name checked before value, pair by pair",
            labelled(
                T::Gauge,
                gauge(2.0),
                vec![bad(b"a", b"\xff"), bad(b"-", b"")],
            ),
            [&g[..], &["E 1: invalid label value: \u{fffd}"]].concat(),
        ),
        // Repeated names parse: 2.42 refuses them on append (see
        // `repeated_label_names_are_refused_by_checked_labels`).
        (
            "repeated label name",
            labelled(
                T::Gauge,
                gauge(2.0),
                pairs(&[("b", "1"), ("a", "1"), ("b", "2")]),
            ),
            [&g[..], &[r#"S x{b="1",a="1",b="2"} 2.0"#]].concat(),
        ),
        (
            "__name__ as a label",
            labelled(T::Gauge, gauge(2.0), pairs(&[("__name__", "y")])),
            [&g[..], &[r#"S x{__name__="y"} 2.0"#]].concat(),
        ),
        (
            "le on a histogram",
            labelled(
                T::Histogram,
                hist_metric(histogram(1, 1.0, vec![])),
                pairs(&[("le", "1")]),
            ),
            h(&[
                "S x_count 0.0",
                "S x_sum 0.0",
                r#"S x_bucket{le="+Inf"} 0.0"#,
                r#"S x_count{le="1"} 1.0"#,
                r#"S x_sum{le="1"} 1.0"#,
                r#"S x_bucket{le="1",le="+Inf"} 1.0"#,
            ]),
        ),
        (
            "quantile on a summary",
            encode(&[family(
                "s",
                "",
                T::Summary,
                vec![with(
                    summary(1, 1.0, &[(0.5, 1.0)]),
                    &[("quantile", "x")],
                    0,
                )],
            )]),
            vec![
                r#"H s """#,
                "T s summary",
                r#"S s_count{quantile="x"} 1.0"#,
                r#"S s_sum{quantile="x"} 1.0"#,
                r#"S s{quantile="x",quantile="0.5"} 1.0"#,
            ],
        ),
        (
            "quantile on a summary without quantiles is fine",
            encode(&[family(
                "s",
                "",
                T::Summary,
                vec![with(summary(1, 1.0, &[]), &[("quantile", "x")], 0)],
            )]),
            vec![
                r#"H s """#,
                "T s summary",
                r#"S s_count{quantile="x"} 1.0"#,
                r#"S s_sum{quantile="x"} 1.0"#,
            ],
        ),
        (
            "le on a summary is fine",
            encode(&[family(
                "s",
                "",
                T::Summary,
                vec![with(summary(1, 1.0, &[(0.5, 1.0)]), &[("le", "x")], 0)],
            )]),
            vec![
                r#"H s """#,
                "T s summary",
                r#"S s_count{le="x"} 1.0"#,
                r#"S s_sum{le="x"} 1.0"#,
                r#"S s{le="x",quantile="0.5"} 1.0"#,
            ],
        ),
        (
            "families without metrics are skipped unchecked",
            encode(&[
                family("1 bad", "", T::Gauge, vec![]),
                family("x", "", T::Gauge, vec![gauge(1.0)]),
            ]),
            g.to_vec(),
        ),
    ]);
}

/// 2.42 appends a series with a repeated label name (`__name__` and the
/// `le`/`quantile` label included) and fails there; `checked_labels` gives
/// that error, naming the first repeat in sorted order, unless a repeated
/// name has an empty value (2.42's labels builder then drops them all).
#[test]
fn repeated_label_names_are_refused_by_checked_labels() {
    let summary_with = |labels: &[(&str, &str)]| {
        encode(&[family(
            "s",
            "",
            T::Summary,
            vec![with(summary(1, 1.0, &[(0.5, 1.0)]), labels, 0)],
        )])
    };
    let gauge_with = |labels: &[(&str, &str)]| {
        encode(&[family(
            "x",
            "",
            T::Gauge,
            vec![pb::Metric {
                label: pairs(labels),
                ..gauge(1.0)
            }],
        )])
    };
    let cases: Vec<(&str, Vec<u8>, Result<&str, &str>)> = vec![
        (
            "repeated name",
            gauge_with(&[("b", "1"), ("a", "1"), ("b", "2")]),
            Err("b"),
        ),
        (
            "__name__",
            gauge_with(&[("__name__", "y")]),
            Err("__name__"),
        ),
        (
            "first repeat in sorted order",
            gauge_with(&[("z", "1"), ("z", "2"), ("a", "1"), ("a", "2")]),
            Err("a"),
        ),
        (
            "an empty value drops every label of its name",
            gauge_with(&[("z", ""), ("z", "2"), ("a", "1")]),
            Ok(r#"{__name__="x", a="1"}"#),
        ),
        (
            "quantile",
            summary_with(&[("quantile", "x")]),
            Err("quantile"),
        ),
    ];
    for (name, body, want) in cases {
        let (entries, err) = parse(&body);
        assert_eq!(err, None, "{name}");
        let Some(Entry::Sample(s)) = entries.last() else {
            panic!("{name}: no sample");
        };
        let got = s.checked_labels().map(|l| l.to_string());
        let want = want
            .map(str::to_owned)
            .map_err(|n| format!("label name \"{n}\" is not unique: invalid sample"));
        assert_eq!(got, want, "{name}");
    }
}
