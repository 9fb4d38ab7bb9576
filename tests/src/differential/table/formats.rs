//! Exposition-format cases: Prometheus text 0.0.4 quirks, OpenMetrics 1.0,
//! delimited protobuf, and the Content-Type fallback rules.

use crate::differential::cases::{
    bytes, case, gen_om, gen_pb, gen_text, om, pb, text, Case, CT_OM, CT_PB,
};
use crate::differential::jobs::Job::*;
use crate::differential::proto::{delimited, exemplar, family, metric, MetricType as T};

pub(super) fn text_format() -> Vec<Case> {
    vec![
        case("t_basic", Plain, "HELP/TYPE lines, counter, gauge and labels are stored as written")
            .phase(text("# HELP t_req Requests.\n# TYPE t_req counter\nt_req{code=\"200\"} 7\nt_req{code=\"500\"} 1\n# TYPE t_temp gauge\nt_temp -3.5\n")),
        case("t_float_spellings", Plain, "every float spelling Go's ParseFloat takes: Inf/NaN in any case, exponents, signs, -0")
            .phase(text("f{v=\"a\"} +Inf\nf{v=\"b\"} -Inf\nf{v=\"c\"} NaN\nf{v=\"d\"} Inf\nf{v=\"e\"} inf\nf{v=\"f\"} nan\nf{v=\"g\"} +infinity\nf{v=\"h\"} -Infinity\nf{v=\"i\"} 1e3\nf{v=\"j\"} 1E-3\nf{v=\"k\"} .5\nf{v=\"l\"} 5.\nf{v=\"m\"} +1\nf{v=\"n\"} -0\nf{v=\"o\"} 1.7976931348623157e308\nf{v=\"p\"} 4.9e-324\n")),
        case("t_float_plus_nan", Plain, "\"+NaN\" is not a Go float: the scrape fails")
            .phase(text("ok 1\nf +NaN\n")).up("0"),
        case("t_float_hex", Plain, "hex floats (with p) are refused")
            .phase(text("f 0x1p3\n")).up("0"),
        case("t_float_hexint", Plain, "a hex integer without p exponent")
            .phase(text("f 0x10\n")).up("0"),
        case("t_float_underscore", Plain, "digit separators are refused")
            .phase(text("f 1_000\n")).up("0"),
        case("t_float_overflow", Plain, "a value beyond f64 range is an error")
            .phase(text("f 1e400\n")).up("0"),
        case("t_escapes", Plain, "label value escapes \\\" \\\\ \\n are decoded, other escapes kept")
            .phase(text("e{l=\"q\\\"b\\\\n\\nt\\tx\\q\"} 1\n")),
        case("t_utf8", Plain, "UTF-8 label values are kept byte for byte")
            .phase(text("u{l=\"ünïcödé ✓ 日本\"} 1\n")),
        case("t_invalid_utf8", Plain, "an invalid UTF-8 label value fails the scrape")
            .phase(bytes(b"ok 1\nu{l=\"\xff\xfe\"} 1\n")).up("0"),
        case("t_invalid_utf8_help", Plain, "invalid UTF-8 in HELP text")
            .phase(bytes(b"# HELP h bad \xff\nh 1\n")).up("0"),
        case("t_dup_series", Plain, "the same series twice with one value: both counted, one stored")
            .phase(text("d{a=\"1\"} 5\nd{a=\"1\"} 5\nother 1\n")),
        case("t_dup_series_diff", Plain, "the same series twice with two values in one scrape")
            .phase(text("d{a=\"1\"} 5\nd{a=\"1\"} 6\nother 1\n")),
        case("t_blank_lines", Plain, "blank and blank-only lines are skipped")
            .phase(text("\n\na 1\n\n   \n\t\nb 2\n\n")),
        case("t_trailing_data", Plain, "extra tokens after the timestamp fail the scrape")
            .phase(text("a 1 1000 extra\n")).up("0"),
        case("t_comments", Plain, "free comments, #-without-space, # EOF and # UNIT are plain comments in text")
            .phase(text("# just a comment\n#nospace\n# EOF\n# UNIT a seconds\na 1\n#\n")),
        case("t_help_type", Plain, "HELP with escapes, TYPE of every kind, TYPE without samples")
            .phase(text("# HELP a line1\\nline2 \\\\ \\t\n# TYPE a counter\na 1\n# TYPE b untyped\nb 2\n# TYPE nothing summary\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0.5\n")),
        case("t_type_invalid", Plain, "an unknown TYPE kind fails the scrape")
            .phase(text("# TYPE a gaugeish\na 1\n")).up("0"),
        case("t_help_no_name", Plain, "a bare # HELP line is a plain comment")
            .phase(text("# HELP\na 1\n")),
        case("t_no_final_newline", Plain, "the last newline is optional")
            .phase(text("a 1\nb 2")),
        case("t_crlf", Plain, "\\r\\n line endings fail (\\r is part of the value)")
            .phase(text("a 1\r\nb 2\r\n")).up("0"),
        case("t_timestamp_ms", Plain, "an explicit timestamp (ms) is honored")
            .phase(gen_text(|c| format!("ts_a 1 {}\nts_b 2\n", c.now_ms - 1000).into_bytes())),
        case("t_timestamp_negative", Plain, "a signed timestamp fails the scrape")
            .phase(text("a 1 -5\n")).up("0"),
        case("t_timestamp_fraction", Plain, "a fractional timestamp fails the scrape")
            .phase(text("a 1 1.5\n")).up("0"),
        case("t_whitespace", Plain, "blanks around every token, trailing comma, no blank before the value")
            .phase(text("w1 { a = \"1\" , b=\"2\", }\t3\nw2{c=\"x\"}4\nw3   5  \n")),
        case("t_leading_blanks", Plain, "blanks before the metric name become part of it: an invalid name fails the scrape")
            .phase(text("ok 1\n  w3 5\n")).up("0"),
        case("t_names", Plain, "colons and underscores in metric names")
            .phase(text("a:b:c 1\n_x 2\n__y 3\nZ9 4\n")),
        case("t_invalid_label_name", Plain, "a label name starting with a digit fails the scrape")
            .phase(text("ok 1\na{1b=\"c\"} 1\n")).up("0"),
        case("t_unquoted_value", Plain, "an unquoted label value fails the scrape")
            .phase(text("a{b=c} 1\n")).up("0"),
        case("t_name_in_block", Plain, "__name__ inside the label block")
            .phase(text("a{__name__=\"b\"} 1\n")).up("0"),
        case("t_dup_label", Plain, "one label name twice in a series")
            .phase(text("a{x=\"1\",x=\"2\"} 1\n")).up("0"),
        case("t_nul_line", Plain, "a NUL byte where a line starts")
            .phase(bytes(b"a 1\n\0b 2\n")),
        case("t_empty_body", Plain, "an empty body is a successful scrape of 0 samples")
            .phase(text("")),
        case("t_summary", Plain, "a classic summary and histogram in text")
            .phase(text("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.99\"} 2\ns_sum 10\ns_count 5\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 2.5\nh_count 3\n")),
        case("t_many_series", Plain, "500 series in one scrape, with a long label value")
            .phase(gen_text(|_| {
                let mut s = String::new();
                for i in 0..500 {
                    s.push_str(&format!("many{{i=\"{i}\",long=\"{}\"}} {i}\n", "x".repeat(100)));
                }
                s.into_bytes()
            })),
    ]
}

pub(super) fn openmetrics() -> Vec<Case> {
    vec![
        case("om_counter", Plain, "OM counter: _total and _created are stored as series")
            .phase(om("# HELP oc A counter.\n# TYPE oc counter\noc_total{a=\"1\"} 3\noc_created{a=\"1\"} 1.6e9\n# EOF\n")),
        case("om_gauge_unit", Plain, "OM gauge with # UNIT")
            .phase(om("# TYPE og_seconds gauge\n# UNIT og_seconds seconds\n# HELP og_seconds Time.\nog_seconds 1.5\n# EOF\n")),
        case("om_histogram", Plain, "OM histogram with _created")
            .phase(om("# TYPE oh histogram\noh_bucket{le=\"0.5\"} 1\noh_bucket{le=\"+Inf\"} 2\noh_count 2\noh_sum 1.5\noh_created 1.6e9\n# EOF\n")),
        case("om_gaugehistogram", Plain, "OM gaugehistogram: _bucket, _gcount, _gsum")
            .phase(om("# TYPE ogh gaugehistogram\nogh_bucket{le=\"1\"} 1\nogh_bucket{le=\"+Inf\"} 3\nogh_gcount 3\nogh_gsum 4\n# EOF\n")),
        case("om_summary", Plain, "OM summary with quantiles, _count, _sum, _created")
            .phase(om("# TYPE os summary\nos{quantile=\"0.9\"} 2\nos_count 4\nos_sum 8\nos_created 1.6e9\n# EOF\n")),
        case("om_info", Plain, "OM info: _info series with value 1")
            .phase(om("# TYPE oi info\noi_info{version=\"1.2\"} 1\n# EOF\n")),
        case("om_stateset", Plain, "OM stateset: one series per state")
            .phase(om("# TYPE ost stateset\nost{ost=\"a\"} 1\nost{ost=\"b\"} 0\n# EOF\n")),
        case("om_unknown", Plain, "OM unknown type")
            .phase(om("# TYPE ou unknown\nou 7\n# EOF\n")),
        case("om_exemplar", Plain, "a counter exemplar is parsed; the sample is stored")
            .phase(om("# TYPE oe counter\noe_total 5 # {trace_id=\"abc\"} 0.5 1600000000.5\n# EOF\n")),
        case("om_exemplar_bucket", Plain, "histogram bucket exemplars")
            .phase(om("# TYPE oeb histogram\noeb_bucket{le=\"1\"} 1 # {trace_id=\"x\"} 0.3\noeb_bucket{le=\"+Inf\"} 1 # {trace_id=\"y\"} 0.3 1600000000\noeb_count 1\noeb_sum 0.3\n# EOF\n")),
        case("om_exemplar_too_long", Plain, "exemplar labels over 128 runes do not fail the scrape (2.42, no exemplar storage)")
            .phase(om(&format!("# TYPE oel counter\noel_total 1 # {{trace_id=\"{}\"}} 1\n# EOF\n", "x".repeat(130)))),
        case("om_timestamp_seconds", Plain, "OM timestamps are seconds with a fraction")
            .phase(gen_om(|c| format!("ots 1 {:.3}\nots2 2 {}\n# EOF\n", (c.now_ms - 1000) as f64 / 1000.0, c.now_ms / 1000 - 1).into_bytes())),
        case("om_no_eof", Plain, "an OM body without # EOF fails the scrape")
            .phase(om("a 1\n")).up("0"),
        case("om_after_eof", Plain, "data after # EOF fails the scrape")
            .phase(om("a 1\n# EOF\nb 2\n")).up("0"),
        case("om_eof_no_newline", Plain, "# EOF without a final newline")
            .phase(om("a 1\n# EOF")),
        case("om_blank_line", Plain, "a blank line is invalid in OM")
            .phase(om("a 1\n\nb 2\n# EOF\n")).up("0"),
        case("om_type_untyped", Plain, "'untyped' is not an OM type")
            .phase(om("# TYPE a untyped\na 1\n# EOF\n")).up("0"),
        case("om_counter_no_total", Plain, "an OM counter sample without _total is accepted (2.42)")
            .phase(om("# TYPE oct counter\noct 1\n# EOF\n")),
        case("om_special_floats", Plain, "+Inf, -Inf, NaN in OM")
            .phase(om("osf{v=\"a\"} +Inf\nosf{v=\"b\"} -Inf\nosf{v=\"c\"} NaN\nosf{v=\"d\"} 1e-3\n# EOF\n")),
        case("om_escapes", Plain, "OM label escapes")
            .phase(om("oesc{l=\"q\\\"b\\\\n\\n\"} 1\n# EOF\n")),
        case("om_empty", Plain, "a body of only # EOF is a successful empty scrape")
            .phase(om("# EOF\n")),
        case("om_invalid_label", Plain, "an invalid OM label name fails the scrape")
            .phase(om("a{1b=\"c\"} 1\n# EOF\n")).up("0"),
        case("om_text_spacing", Plain, "text-format spacing (blanks before {) is invalid in OM")
            .phase(om("a {b=\"c\"} 1\n# EOF\n")).up("0"),
    ]
}

fn pb_basic() -> Vec<u8> {
    delimited(&[
        family(
            "pb_req",
            "Requests.",
            T::Counter,
            vec![
                metric(&[("code", "200")]).counter(7.0, None),
                metric(&[("code", "500")]).counter(1.0, None),
            ],
        ),
        family("pb_temp", "", T::Gauge, vec![metric(&[]).gauge(-3.5)]),
    ])
}

pub(super) fn protobuf() -> Vec<Case> {
    let truncated = {
        let b = pb_basic();
        b[..b.len() - 3].to_vec()
    };
    vec![
        case(
            "pb_counter_gauge",
            Plain,
            "protobuf counter and gauge families",
        )
        .phase(pb(pb_basic())),
        case(
            "pb_summary",
            Plain,
            "protobuf summary: quantiles, _sum, _count",
        )
        .phase(pb(delimited(&[family(
            "pb_sum",
            "",
            T::Summary,
            vec![metric(&[("a", "b")]).summary(5, 10.5, &[(0.5, 1.0), (0.99, 2.0)])],
        )]))),
        case(
            "pb_histogram",
            Plain,
            "protobuf classic histogram (no +Inf bucket given)",
        )
        .phase(pb(delimited(&[family(
            "pb_hist",
            "",
            T::Histogram,
            vec![metric(&[]).histogram(3, 2.5, &[(0.1, 1), (1.0, 2)])],
        )]))),
        case(
            "pb_native",
            Plain,
            "a native histogram (2.42 without the feature flag): the scrape fails, the histogram counted as scraped",
        )
        .phase(pb(delimited(&[
            family(
                "pb_nat_classic",
                "",
                T::Histogram,
                vec![metric(&[]).histogram(3, 2.5, &[(0.1, 1), (1.0, 2)])],
            ),
            family(
                "pb_nat",
                "a native one",
                T::Histogram,
                vec![
                    metric(&[("x", "1")]).native_histogram(10, 4.5, 2, &[3, 5]),
                    metric(&[("x", "2")]).native_histogram(1, 0.5, 1, &[]),
                ],
            ),
            family("pb_nat_after", "", T::Gauge, vec![metric(&[]).gauge(1.0)]),
        ])))
        .up("0"),
        case(
            "mr_native_dropped",
            MetricRelabel,
            "a native histogram that metric relabeling drops does not fail the scrape",
        )
        .phase(pb(delimited(&[
            family(
                "mr_native_drop",
                "",
                T::Histogram,
                vec![metric(&[]).native_histogram(10, 4.5, 2, &[3, 5])],
            ),
            family("mr_native_kept", "", T::Gauge, vec![metric(&[]).gauge(2.0)]),
        ]))),
        case("pb_gauge_histogram", Plain, "protobuf GAUGE_HISTOGRAM").phase(pb(delimited(&[
            family(
                "pb_gh",
                "",
                T::GaugeHistogram,
                vec![metric(&[]).histogram(3, 4.0, &[(1.0, 1), (f64::INFINITY, 3)])],
            ),
        ]))),
        case(
            "pb_untyped_ts",
            Plain,
            "protobuf untyped with timestamp_ms is honored",
        )
        .phase(gen_pb(|c| {
            delimited(&[family(
                "pb_unt",
                "",
                T::Untyped,
                vec![
                    metric(&[("x", "y")])
                        .untyped(42.0)
                        .timestamp_ms(c.now_ms - 1000),
                    metric(&[("x", "z")]).untyped(f64::NAN),
                ],
            )])
        })),
        case("pb_exemplar", Plain, "protobuf counter with an exemplar").phase(pb(delimited(&[
            family(
                "pb_ex",
                "",
                T::Counter,
                vec![metric(&[]).counter(
                    9.0,
                    Some(exemplar(&[("trace_id", "t1")], 1.0, 1_600_000_000_000)),
                )],
            ),
        ]))),
        case(
            "pb_truncated",
            Plain,
            "a truncated protobuf body fails the scrape",
        )
        .phase(pb(truncated))
        .up("0"),
        case(
            "pb_empty",
            Plain,
            "an empty protobuf body is a successful empty scrape",
        )
        .phase(pb(Vec::new())),
        case(
            "pb_invalid_label_name",
            Plain,
            "an invalid label name in protobuf fails the scrape",
        )
        .up("0")
        .phase(pb(delimited(&[family(
            "pb_bad",
            "",
            T::Gauge,
            vec![metric(&[("a-b", "1")]).gauge(1.0)],
        )]))),
        case(
            "pb_text_body",
            Plain,
            "protobuf Content-Type with a text body fails the scrape",
        )
        .phase(text("a 1\n").ct(Some(CT_PB)))
        .up("0"),
    ]
}

pub(super) fn content_type() -> Vec<Case> {
    let om_only = "# TYPE cto counter\ncto_total 1\n";
    vec![
        case("ct_missing", Plain, "no Content-Type: the text parser")
            .phase(text("ct 1\n").ct(None)),
        case("ct_empty", Plain, "an empty Content-Type: the text parser")
            .phase(text("ct 1\n").ct(Some(""))),
        case(
            "ct_unknown",
            Plain,
            "an unknown media type (application/json): the text parser",
        )
        .phase(text("ct 1\n").ct(Some("application/json"))),
        case(
            "ct_malformed",
            Plain,
            "a Content-Type that is not a media type: the text parser",
        )
        .phase(text("ct 1\n").ct(Some("text/plain; version=0.0.4; =x"))),
        case(
            "ct_malformed_om",
            Plain,
            "an OM media type with a malformed parameter falls back to text (no # EOF needed)",
        )
        .phase(text(om_only).ct(Some("application/openmetrics-text; version"))),
        case(
            "ct_om_case",
            Plain,
            "media types are case-insensitive: OM parser (fails without # EOF)",
        )
        .phase(text(om_only).ct(Some("Application/OpenMetrics-Text; version=1.0.0")))
        .up("0"),
        case("ct_om_no_params", Plain, "a bare OM media type: OM parser")
            .phase(text("cto_total 1\n# EOF\n").ct(Some("application/openmetrics-text"))),
        case(
            "ct_om_text_body",
            Plain,
            "OM Content-Type with a text body (no # EOF) fails",
        )
        .phase(text("ct 1\n").ct(Some(CT_OM)))
        .up("0"),
        case(
            "ct_text_om_body",
            Plain,
            "text Content-Type with an OM body: # EOF and # UNIT are comments",
        )
        .phase(text(
            "# TYPE cto_seconds counter\n# UNIT cto_seconds seconds\ncto_seconds_total 1\n# EOF\n",
        )),
        case(
            "ct_text_om_exemplar",
            Plain,
            "text Content-Type with an OM exemplar fails",
        )
        .phase(text("cte_total 1 # {a=\"b\"} 1\n# EOF\n"))
        .up("0"),
    ]
}
