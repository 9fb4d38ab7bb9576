//! Tests of the protobuf parser: the classic-type cases of Prometheus 2.42's
//! `protobufparse_test.go` and the framing table here, one table per concern
//! in [`types`] (types, naming, exemplars) and [`validation`], and property
//! tests over random families encoded with prost in [`property`].

use scrapegrid_proto::prometheus_client::{Histogram, MetricType as T};

use super::*;

mod property;
mod types;
mod validation;

// ---------------------------------------------------------------- helpers

use super::super::test_support::render;

/// Parses a protobuf body: its entries and the error, if any.
fn parse(body: &[u8]) -> (Vec<Entry<'_>>, Option<ParseError>) {
    super::super::test_support::parse(crate::textparse::Format::Protobuf, body)
}

/// Renders every entry and the error, if any, as `E column: message`.
fn render_all(body: &[u8]) -> Vec<String> {
    let (entries, err) = parse(body);
    let mut out: Vec<String> = entries.iter().map(render).collect();
    if let Some(e) = err {
        assert_eq!(e.line, 1);
        out.push(format!("E {}: {}", e.column, e.message));
    }
    out
}

fn encode(families: &[pb::MetricFamily]) -> Vec<u8> {
    families
        .iter()
        .flat_map(|f| f.encode_length_delimited_to_vec())
        .collect()
}

fn family(name: &str, help: &str, ty: T, metric: Vec<pb::Metric>) -> pb::MetricFamily {
    pb::MetricFamily {
        name: name.into(),
        help: help.into(),
        r#type: ty as i32,
        metric,
    }
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<pb::LabelPair> {
    pairs
        .iter()
        .map(|(n, v)| pb::LabelPair {
            name: (*n).into(),
            value: (*v).into(),
        })
        .collect()
}

fn exemplar(labels: &[(&str, &str)], value: f64, ts: Option<(i64, i32)>) -> Box<pb::Exemplar> {
    Box::new(pb::Exemplar {
        label: pairs(labels),
        value,
        timestamp: ts.map(|(seconds, nanos)| pb::Timestamp { seconds, nanos }),
    })
}

fn gauge(value: f64) -> pb::Metric {
    pb::Metric {
        gauge: Some(Box::new(pb::Gauge { value })),
        ..Default::default()
    }
}

fn counter(value: f64, exemplar: Option<Box<pb::Exemplar>>) -> pb::Metric {
    pb::Metric {
        counter: Some(Box::new(pb::Counter { value, exemplar })),
        ..Default::default()
    }
}

fn untyped(value: f64) -> pb::Metric {
    pb::Metric {
        untyped: Some(Box::new(pb::Untyped { value })),
        ..Default::default()
    }
}

fn summary(count: u64, sum: f64, quantiles: &[(f64, f64)]) -> pb::Metric {
    let quantile = quantiles
        .iter()
        .map(|&(quantile, value)| pb::Quantile { quantile, value })
        .collect();
    pb::Metric {
        summary: Some(Box::new(pb::Summary {
            sample_count: count,
            sample_sum: sum,
            quantile,
        })),
        ..Default::default()
    }
}

fn bucket(upper_bound: f64, count: u64, exemplar: Option<Box<pb::Exemplar>>) -> pb::Bucket {
    pb::Bucket {
        cumulative_count: count,
        upper_bound,
        exemplar,
        ..Default::default()
    }
}

fn histogram(count: u64, sum: f64, bucket: Vec<pb::Bucket>) -> Histogram {
    Histogram {
        sample_count: count,
        sample_sum: sum,
        bucket,
        ..Default::default()
    }
}

fn hist_metric(h: Histogram) -> pb::Metric {
    pb::Metric {
        histogram: Some(Box::new(h)),
        ..Default::default()
    }
}

fn with(mut m: pb::Metric, labels: &[(&str, &str)], ts: i64) -> pb::Metric {
    m.label = pairs(labels);
    m.timestamp_ms = ts;
    m
}

/// Returns `head` then `last`.
fn ending<'s>(head: &[&'s str], last: &'s str) -> Vec<&'s str> {
    [head, &[last]].concat()
}

/// Asserts the rendered entries of a table of cases.
fn check(cases: Vec<(&str, Vec<u8>, Vec<&str>)>) {
    for (what, body, want) in cases {
        assert_eq!(render_all(&body), want, "{what}");
    }
}

// ---------------------------------------------------------- 2.42's tests

/// The classic-type families of 2.42's `TestProtobufParse`, in its order,
/// with its expected series, values, timestamps and exemplars.
fn prometheus_families() -> Vec<pb::MetricFamily> {
    let build_info = [
        ("checksum", ""),
        ("path", "github.com/prometheus/client_golang"),
        ("version", "(devel)"),
    ];
    let h2 = histogram(
        175,
        0.000828,
        vec![
            bucket(-0.00048, 2, None),
            bucket(
                -0.00038,
                4,
                Some(exemplar(
                    &[("dummyID", "59727")],
                    -0.00038,
                    Some((1625851153, 146848499)),
                )),
            ),
            bucket(
                1.0,
                16,
                Some(exemplar(&[("dummyID", "5617")], -0.000295, None)),
            ),
        ],
    );
    let rpc = summary(
        262,
        0.00025551262820703587,
        &[
            (0.5, 6.442786329648548e-07),
            (0.9, 1.9435742936658396e-06),
            (0.99, 4.0471608667037015e-06),
        ],
    );
    vec![
        family(
            "go_build_info",
            "Build information about the main Go module.",
            T::Gauge,
            vec![with(gauge(1.0), &build_info, 0)],
        ),
        family(
            "go_memstats_alloc_bytes_total",
            "Total number of bytes allocated, even if freed.",
            T::Counter,
            vec![counter(
                1.546544e+06,
                Some(exemplar(
                    &[("dummyID", "42")],
                    12.0,
                    Some((1625851151, 233181499)),
                )),
            )],
        ),
        family(
            "something_untyped",
            "Just to test the untyped type.",
            T::Untyped,
            vec![with(untyped(42.0), &[], 1234567)],
        ),
        family(
            "test_histogram2",
            "Similar histogram as before but now without sparse buckets.",
            T::Histogram,
            vec![hist_metric(h2)],
        ),
        family(
            "rpc_durations_seconds",
            "RPC latency distributions.",
            T::Summary,
            vec![with(rpc, &[("service", "exponential")], 0)],
        ),
        family(
            "without_quantiles",
            "A summary without quantiles.",
            T::Summary,
            vec![summary(42, 1.234, &[])],
        ),
    ]
}

#[test]
fn parses_prometheus_classic_cases() {
    let body = encode(&prometheus_families());
    let want = [
        r#"H go_build_info "Build information about the main Go module.""#,
        "T go_build_info gauge",
        r#"S go_build_info{checksum="",path="github.com/prometheus/client_golang",version="(devel)"} 1.0"#,
        r#"H go_memstats_alloc_bytes_total "Total number of bytes allocated, even if freed.""#,
        "T go_memstats_alloc_bytes_total counter",
        r#"S go_memstats_alloc_bytes_total 1546544.0 # {dummyID="42"} 12.0 @1625851151233"#,
        r#"H something_untyped "Just to test the untyped type.""#,
        "T something_untyped untyped",
        "S something_untyped 42.0 @1234567",
        r#"H test_histogram2 "Similar histogram as before but now without sparse buckets.""#,
        "T test_histogram2 histogram",
        "S test_histogram2_count 175.0",
        "S test_histogram2_sum 0.000828",
        r#"S test_histogram2_bucket{le="-0.00048"} 2.0"#,
        r#"S test_histogram2_bucket{le="-0.00038"} 4.0 # {dummyID="59727"} -0.00038 @1625851153146"#,
        r#"S test_histogram2_bucket{le="1.0"} 16.0 # {dummyID="5617"} -0.000295"#,
        r#"S test_histogram2_bucket{le="+Inf"} 175.0"#,
        r#"H rpc_durations_seconds "RPC latency distributions.""#,
        "T rpc_durations_seconds summary",
        r#"S rpc_durations_seconds_count{service="exponential"} 262.0"#,
        r#"S rpc_durations_seconds_sum{service="exponential"} 0.00025551262820703587"#,
        r#"S rpc_durations_seconds{service="exponential",quantile="0.5"} 6.442786329648548e-7"#,
        r#"S rpc_durations_seconds{service="exponential",quantile="0.9"} 1.9435742936658396e-6"#,
        r#"S rpc_durations_seconds{service="exponential",quantile="0.99"} 4.0471608667037015e-6"#,
        r#"H without_quantiles "A summary without quantiles.""#,
        "T without_quantiles summary",
        "S without_quantiles_count 42.0",
        "S without_quantiles_sum 1.234",
    ];
    assert_eq!(render_all(&body), want);

    // The label sets 2.42's test expects (empty values are absent here).
    let (entries, _) = parse(&body);
    let labels: Vec<String> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s.labels().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        labels[0],
        r#"{__name__="go_build_info", path="github.com/prometheus/client_golang", version="(devel)"}"#
    );
    assert_eq!(
        labels[6],
        r#"{__name__="test_histogram2_bucket", le="-0.00038"}"#
    );
    assert_eq!(
        labels[11],
        r#"{__name__="rpc_durations_seconds", quantile="0.5", service="exponential"}"#
    );
}

/// 2.42's native families (integer and float, counter and gauge flavour):
/// HELP, TYPE, then one native histogram entry per metric, named after the
/// family; the families after them parse on.
#[test]
fn native_histograms_are_one_entry_per_metric() {
    let span = |offset, length| pb::BucketSpan { offset, length };
    let native = Histogram {
        schema: 3,
        zero_threshold: 2.938735877055719e-39,
        negative_span: vec![span(-162, 1), span(23, 4)],
        positive_span: vec![span(-161, 1), span(8, 3)],
        ..histogram(175, 0.0008280461746287094, vec![bucket(-0.00049, 2, None)])
    };
    let int = Histogram {
        zero_count: 2,
        negative_delta: vec![1, 3, -2, -1, 1],
        positive_delta: vec![1, 2, -1, -1],
        ..native.clone()
    };
    let float = Histogram {
        sample_count_float: 175.0,
        zero_count_float: 2.0,
        negative_count: vec![1.0, 3.0, -2.0, -1.0, 1.0],
        positive_count: vec![1.0, 2.0, -1.0, -1.0],
        ..native
    };
    for (name, ty, h) in [
        ("test_histogram", T::Histogram, &int),
        ("test_gauge_histogram", T::GaugeHistogram, &int),
        ("test_float_histogram", T::Histogram, &float),
        ("test_gauge_float_histogram", T::GaugeHistogram, &float),
    ] {
        let m = with(hist_metric(h.clone()), &[], 1234568);
        let body = encode(&[
            family(name, "h", ty, vec![m]),
            family("after", "", T::Gauge, vec![gauge(1.0)]),
        ]);
        let kind = if ty == T::Histogram {
            "histogram"
        } else {
            "gaugehistogram"
        };
        let want = [
            format!("H {name} \"h\""),
            format!("T {name} {kind}"),
            format!("N {name} @1234568"),
            "H after \"\"".to_string(),
            "T after gauge".to_string(),
            "S after 1.0".to_string(),
        ];
        assert_eq!(render_all(&body), want, "{name}");
    }
}

/// The histogram a native entry carries, as 2.42's `Histogram()` builds it:
/// integer unless a float count is set, the gauge hint for a gauge
/// histogram, empty buckets compacted away.
#[test]
fn native_entries_carry_the_histogram() {
    use scrapegrid_proto::prometheus::histogram::{Count, ResetHint, ZeroCount};
    let span = |offset, length| pb::BucketSpan { offset, length };
    let h = Histogram {
        sample_count: 6,
        sample_sum: 2.5,
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 1,
        // Absolute counts 2, 0, 3: the middle bucket is compacted away.
        positive_span: vec![span(-1, 3)],
        positive_delta: vec![2, -2, 3],
        ..Default::default()
    };
    let native_of = |ty: T, h: &Histogram| {
        let body = encode(&[family("n", "", ty, vec![hist_metric(h.clone())])]);
        let (entries, err) = parse(&body);
        assert_eq!(err, None);
        entries
            .into_iter()
            .find_map(|e| match e {
                Entry::NativeHistogram(_, h) => Some(*h),
                _ => None,
            })
            .unwrap()
    };
    let got = native_of(T::Histogram, &h);
    assert_eq!(got.count, Some(Count::CountInt(6)));
    assert_eq!(got.zero_count, Some(ZeroCount::ZeroCountInt(1)));
    assert_eq!((got.schema, got.sum, got.zero_threshold), (1, 2.5, 0.001));
    let spans: Vec<(i32, u32)> = got
        .positive_spans
        .iter()
        .map(|s| (s.offset, s.length))
        .collect();
    assert_eq!(spans, vec![(-1, 1), (1, 1)]);
    assert_eq!(got.positive_deltas, vec![2, 1]);
    assert_eq!(got.reset_hint, ResetHint::Unknown as i32);
    let gauge = native_of(T::GaugeHistogram, &h);
    assert_eq!(gauge.reset_hint, ResetHint::Gauge as i32);

    let float = Histogram {
        sample_count_float: 6.5,
        zero_count_float: 0.5,
        positive_count: vec![2.0, 0.0, 4.0],
        positive_delta: vec![],
        ..h.clone()
    };
    // The first exemplar of the classic buckets goes with the histogram.
    let with_exemplars = Histogram {
        bucket: vec![
            bucket(0.5, 1, None),
            bucket(1.0, 2, Some(exemplar(&[("trace_id", "a")], 0.7, None))),
            bucket(2.0, 3, Some(exemplar(&[("trace_id", "b")], 1.5, None))),
        ],
        ..h.clone()
    };
    let body = encode(&[family(
        "n",
        "",
        T::Histogram,
        vec![hist_metric(with_exemplars)],
    )]);
    let (entries, _) = parse(&body);
    let ex = entries
        .iter()
        .find_map(|e| match e {
            Entry::NativeHistogram(s, _) => s.exemplar.clone(),
            _ => None,
        })
        .expect("an exemplar");
    assert_eq!((ex.labels.get("trace_id"), ex.value), (Some("a"), 0.7));

    let got = native_of(T::Histogram, &float);
    assert_eq!(got.count, Some(Count::CountFloat(6.5)));
    assert_eq!(got.zero_count, Some(ZeroCount::ZeroCountFloat(0.5)));
    assert_eq!(got.positive_counts, vec![2.0, 4.0]);
    assert!(got.positive_deltas.is_empty());
}

// ---------------------------------------------------------------- framing

#[test]
fn reads_length_prefixes_as_prometheus() {
    let one = encode(&[family("x", "", T::Gauge, vec![gauge(1.0)])]);
    let g = [r#"H x """#, "T x gauge", "S x 1.0"];
    let then = |tail: &[u8]| [&one[..], tail].concat();
    let after = |e| ending(&g, e);
    let n = one.len() + 1;
    let long_prefix = [&[0x80 | one[0], 0x80, 0x80, 0x80, 0x00][..], &one[1..]].concat();
    check(vec![
        ("empty body", vec![], vec![]),
        ("zero-length messages are empty families", vec![0, 0], vec![]),
        ("trailing zero byte", then(&[0]), g.to_vec()),
        ("non-minimal 5-byte prefix", long_prefix, g.to_vec()),
        ("truncated prefix", then(&[0x80]), after(&format!("E {n}: protobufparse: invalid varint encountered"))),
        ("6-byte prefix", then(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x00]), after(&format!("E {n}: protobufparse: invalid varint encountered"))),
        ("11-byte varint", vec![0xff; 11], vec!["E 1: protobufparse: invalid varint encountered"]),
        ("huge prefix, not allocated", vec![0xff, 0xff, 0xff, 0xff, 0x7f], vec!["E 1: protobufparse: insufficient length of buffer, expected at least 34359738372 bytes, got 5 bytes"]),
        ("truncated message", one[..one.len() - 1].to_vec(), vec![format!("E 1: protobufparse: insufficient length of buffer, expected at least {} bytes, got {} bytes", one.len(), one.len() - 1).as_str()]),
        ("trailing garbage", then(b"\x05abc"), after(&format!("E {n}: protobufparse: insufficient length of buffer, expected at least 6 bytes, got 4 bytes"))),
        ("ill-formed message", then(&[2, 0x0a, 0x05]), after(&format!("E {n}: failed to decode Protobuf message: MetricFamily.name: buffer underflow"))),
        ("wrong wire type", then(&[5, 0x1d, 1, 0, 0, 0]), after(&format!("E {n}: failed to decode Protobuf message: MetricFamily.r#type: invalid wire type: ThirtyTwoBit (expected Varint)"))),
    ]);
}
