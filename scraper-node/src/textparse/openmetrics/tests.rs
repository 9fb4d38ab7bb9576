//! Table tests for the OpenMetrics parser: every case of Prometheus 2.42's
//! `openmetricsparse_test.go` (marked "2.42"), then edge cases of our own.
//! Property tests are in `tests/property.rs`.

mod property;

use std::borrow::Cow;
use std::fmt::Write as _;

use scrapegrid_common::Labels;

use super::super::{Entry, Format, ParseError, Parser, Sample, NORMAL_NAN_BITS};

/// Parses an OpenMetrics body: its entries and the error, if any.
fn parse(body: &[u8]) -> (Vec<Entry<'_>>, Option<ParseError>) {
    super::super::test_support::parse(Format::OpenMetrics, body)
}

/// Parses an OpenMetrics body that must parse; returns its rendered entries.
fn parse_ok(body: &[u8]) -> Vec<String> {
    super::super::test_support::parse_ok(Format::OpenMetrics, body)
}

fn sample<'e, 'a>(e: &'e Entry<'a>) -> &'e Sample<'a> {
    match e {
        Entry::Sample(s) => s,
        other => panic!("not a sample: {other:?}"),
    }
}

/// 2.42 `TestOpenMetricsParse`: one body with every kind of line.
#[test]
fn prometheus_parse_test() {
    let mut input = String::from(
        r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
# HELP nohelp1 
# HELP help2 escape \ \n \\ \" \x chars
# UNIT nounit 
go_gc_duration_seconds{quantile="1.0",a="b"} 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"} 1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33 123.123
# TYPE hh histogram
hh_bucket{le="+Inf"} 1
# TYPE gh gaugehistogram
gh_bucket{le="+Inf"} 1
# TYPE hhh histogram
hhh_bucket{le="+Inf"} 1 # {aa="bb"} 4
# TYPE ggh gaugehistogram
ggh_bucket{le="+Inf"} 1 # {cc="dd",xx="yy"} 4 123.123
# TYPE ii info
ii{foo="bar"} 1
# TYPE ss stateset
ss{ss="foo"} 1
ss{ss="bar"} 0
ss{A="a"} 0
# TYPE un unknown
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1
# TYPE foo counter
foo_total 17.0 1520879607.789 # {xx="yy"} 5"#,
    );
    input += "\n# HELP metric foo\x00bar";
    input += "\nnull_byte_metric{a=\"abc\x00\"} 1";
    input += "\n# EOF\n";

    let want = [
        r#"H go_gc_duration_seconds "A summary of the GC invocation durations.""#,
        "T go_gc_duration_seconds summary",
        "U go_gc_duration_seconds seconds",
        r#"S go_gc_duration_seconds{quantile="0"} 4.9351e-5"#,
        r#"S go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-5"#,
        r#"S go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-5"#,
        r#"H nohelp1 """#,
        r#"H help2 "escape \\ \n \\ \" \\x chars""#,
        "U nounit ",
        r#"S go_gc_duration_seconds{quantile="1.0",a="b"} 8.3835e-5"#,
        "S go_gc_duration_seconds_count 99.0",
        r#"S some:aggregate:rate5m{a_b="c"} 1.0"#,
        r#"H go_goroutines "Number of goroutines that currently exist.""#,
        "T go_goroutines gauge",
        "S go_goroutines 33.0 @123123",
        "T hh histogram",
        r#"S hh_bucket{le="+Inf"} 1.0"#,
        "T gh gaugehistogram",
        r#"S gh_bucket{le="+Inf"} 1.0"#,
        "T hhh histogram",
        r#"S hhh_bucket{le="+Inf"} 1.0 # {aa="bb"} 4.0"#,
        "T ggh gaugehistogram",
        r#"S ggh_bucket{le="+Inf"} 1.0 # {cc="dd", xx="yy"} 4.0 @123123"#,
        "T ii info",
        r#"S ii{foo="bar"} 1.0"#,
        "T ss stateset",
        r#"S ss{ss="foo"} 1.0"#,
        r#"S ss{ss="bar"} 0.0"#,
        r#"S ss{A="a"} 0.0"#,
        "T un unknown",
        "S _metric_starting_with_underscore 1.0",
        r#"S testmetric{_label_starting_with_underscore="foo"} 1.0"#,
        r#"S testmetric{label="\"bar\""} 1.0"#,
        "T foo counter",
        r#"S foo_total 17.0 @1520879607789 # {xx="yy"} 5.0"#,
        r#"H metric "foo\0bar""#,
        "S null_byte_metric{a=\"abc\0\"} 1.0",
    ];
    assert_eq!(parse_ok(input.as_bytes()), want);

    // The label sets 2.42 expects from `Metric()`.
    let (entries, _) = parse(input.as_bytes());
    let labels: Vec<Labels> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s.labels()),
            _ => None,
        })
        .collect();
    let n = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
    let want_labels = [
        n(&[("__name__", "go_gc_duration_seconds"), ("quantile", "0")]),
        n(&[("__name__", "go_gc_duration_seconds"), ("quantile", "0.25")]),
        n(&[
            ("__name__", "go_gc_duration_seconds"),
            ("quantile", "0.5"),
            ("a", "b"),
        ]),
        n(&[
            ("__name__", "go_gc_duration_seconds"),
            ("quantile", "1.0"),
            ("a", "b"),
        ]),
        n(&[("__name__", "go_gc_duration_seconds_count")]),
        n(&[("__name__", "some:aggregate:rate5m"), ("a_b", "c")]),
        n(&[("__name__", "go_goroutines")]),
        n(&[("__name__", "hh_bucket"), ("le", "+Inf")]),
        n(&[("__name__", "gh_bucket"), ("le", "+Inf")]),
        n(&[("__name__", "hhh_bucket"), ("le", "+Inf")]),
        n(&[("__name__", "ggh_bucket"), ("le", "+Inf")]),
        n(&[("__name__", "ii"), ("foo", "bar")]),
        n(&[("__name__", "ss"), ("ss", "foo")]),
        n(&[("__name__", "ss"), ("ss", "bar")]),
        n(&[("A", "a"), ("__name__", "ss")]),
        n(&[("__name__", "_metric_starting_with_underscore")]),
        n(&[
            ("__name__", "testmetric"),
            ("_label_starting_with_underscore", "foo"),
        ]),
        n(&[("__name__", "testmetric"), ("label", "\"bar\"")]),
        n(&[("__name__", "foo_total")]),
        n(&[("__name__", "null_byte_metric"), ("a", "abc\0")]),
    ];
    assert_eq!(labels, want_labels);
}

#[test]
fn accepts_what_prometheus_accepts() {
    #[rustfmt::skip]
    let cases: &[(&str, &[u8], &[&str])] = &[
        ("2.42: only EOF", b"# EOF", &[]),
        ("2.42: only EOF and newline", b"# EOF\n", &[]),
        ("2.42 null bytes: in label value", b"null_byte_metric{a=\"abc\x00\"} 1\n# EOF\n", &["S null_byte_metric{a=\"abc\0\"} 1.0"]),
        ("2.42 null bytes: value starts with NUL", b"a{b=\"\x00ss\"} 1\n# EOF\n", &["S a{b=\"\0ss\"} 1.0"]),
        ("2.42 null bytes: value is NUL", b"a{b=\"\x00\"} 1\n# EOF\n", &["S a{b=\"\0\"} 1.0"]),
        ("2.42 null bytes: no final newline", b"a{b=\"\x00\"} 1\n# EOF", &["S a{b=\"\0\"} 1.0"]),
        (
            "every type",
            b"# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d gaugehistogram\n\
              # TYPE e summary\n# TYPE f info\n# TYPE g stateset\n# TYPE h unknown\n# EOF\n",
            &[
                "T a counter", "T b gauge", "T c histogram", "T d gaugehistogram",
                "T e summary", "T f info", "T g stateset", "T h unknown",
            ],
        ),
        (
            "counter with _total and _created, ordinary samples",
            b"# TYPE a counter\na_total 3\na_created 1.6e9\n# EOF\n",
            &["T a counter", "S a_total 3.0", "S a_created 1600000000.0"],
        ),
        (
            "info and stateset families",
            b"# TYPE b info\nb_info{v=\"1\"} 1\n# TYPE s stateset\ns{s=\"x\"} 1\ns{s=\"y\"} 0\n# EOF",
            &["T b info", "S b_info{v=\"1\"} 1.0", "T s stateset", "S s{s=\"x\"} 1.0", "S s{s=\"y\"} 0.0"],
        ),
        (
            "gaugehistogram with _gcount and _gsum",
            b"# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 2\ng_gcount 2\ng_gsum 1.5\n# EOF",
            &["T g gaugehistogram", "S g_bucket{le=\"1\"} 2.0", "S g_gcount 2.0", "S g_gsum 1.5"],
        ),
        (
            "samples need not match the declared family",
            b"# TYPE a counter\nb 1\na 2\n# EOF",
            &["T a counter", "S b 1.0", "S a 2.0"],
        ),
        ("unit as suffix", b"# UNIT a_seconds seconds\n# EOF", &["U a_seconds seconds"]),
        ("unit with underscores", b"# UNIT a_b_c b_c\n# EOF", &["U a_b_c b_c"]),
        ("unit of a name that is _ plus the unit", b"# UNIT _seconds seconds\n# EOF", &["U _seconds seconds"]),
        ("empty unit", b"# UNIT a \n# EOF", &["U a "]),
        ("empty label block", b"a{} 1\n# EOF", &["S a{} 1.0"]),
        ("colons in metric name", b"a:b:c 1\n# EOF", &["S a:b:c 1.0"]),
        ("punctuation and blanks in label value", b"a{b=\"} {,=# \t\"} 1\n# EOF", &["S a{b=\"} {,=# \t\"} 1.0"]),
        ("utf-8 label value", "a{b=\"ünï©ødé ☃\"} 1\n# EOF".as_bytes(), &["S a{b=\"ünï©ødé ☃\"} 1.0"]),
        ("utf-8 help", "# HELP a ☃ snow\n# EOF".as_bytes(), &["H a \"☃ snow\""]),
        ("help keeps blanks after the first", b"# HELP a   x \n# EOF", &["H a \"  x \""]),
        ("help keeps a CR", b"# HELP a x\r\n# EOF", &["H a \"x\\r\""]),
        ("help with only a blank", b"# HELP a  \n# EOF", &["H a \" \""]),
        ("value spellings", b"a +Inf\nb -Inf\nc NaN\nd nan\ne .5\nf 1.\ng -0\nh 1E3\ni Infinity\n# EOF", &[
            "S a inf", "S b -inf", "S c NaN:0x7ff8000000000001", "S d NaN:0x7ff8000000000001",
            "S e 0.5", "S f 1.0", "S g -0.0", "S h 1000.0", "S i inf",
        ]),
        ("timestamps in seconds", b"a 1 1.5\nb 1 -1.5\nc 1 1e3\nd 1 0\ne 1 +2\nf 1 .25\n# EOF", &[
            "S a 1.0 @1500", "S b 1.0 @-1500", "S c 1.0 @1000000", "S d 1.0 @0", "S e 1.0 @2000", "S f 1.0 @250",
        ]),
        ("timestamps truncate toward zero", b"a 1 0.0015\nb 1 -0.0015\nc 1 -0.0005\nd 1 1520879607.789\n# EOF", &[
            "S a 1.0 @1", "S b 1.0 @-1", "S c 1.0 @0", "S d 1.0 @1520879607789",
        ]),
        ("timestamp out of int64 range is amd64's integer indefinite", b"a 1 1e300\nb 1 -1e300\nc 1 9223372036854775.807\n# EOF", &[
            "S a 1.0 @-9223372036854775808", "S b 1.0 @-9223372036854775808", "S c 1.0 @-9223372036854775808",
        ]),
        ("exemplar on _bucket of a gauge", b"# TYPE a gauge\na_bucket 1 # {t=\"x\"} 2\n# EOF", &["T a gauge", "S a_bucket 1.0 # {t=\"x\"} 2.0"]),
        ("exemplar without TYPE", b"a_total 1 # {t=\"x\"} 2 3.5\n# EOF", &["S a_total 1.0 # {t=\"x\"} 2.0 @3500"]),
        ("exemplar after timestamp", b"a_total 1 5 # {t=\"x\"} 2 -3\n# EOF", &["S a_total 1.0 @5000 # {t=\"x\"} 2.0 @-3000"]),
        ("exemplar on a metric named _total", b"_total 1 # {} 2\n# EOF", &["S _total 1.0 # {} 2.0"]),
        ("exemplar without labels", b"a_total 1 # {} NaN\n# EOF", &["S a_total 1.0 # {} NaN:0x7ff8000000000001"]),
        ("exemplar labels sorted", b"a_total 1 # {z=\"1\",a=\"2\"} 0\n# EOF", &["S a_total 1.0 # {a=\"2\", z=\"1\"} 0.0"]),
        ("exemplar label values not unescaped", b"a_total 1 # {t=\"x\\\"y\\\\\"} 1\n# EOF", &["S a_total 1.0 # {t=\"x\\\\\\\"y\\\\\\\\\"} 1.0"]),
        ("exemplar empty label value dropped", b"a_total 1 # {t=\"\",u=\"v\"} 1\n# EOF", &["S a_total 1.0 # {u=\"v\"} 1.0"]),
        ("exemplar repeated label keeps the last", b"a_total 1 # {t=\"1\",t=\"2\"} 1\n# EOF", &["S a_total 1.0 # {t=\"2\"} 1.0"]),
        ("exemplar utf-8 label value", "a_total 1 # {t=\"☃\"} 1\n# EOF".as_bytes(), &["S a_total 1.0 # {t=\"☃\"} 1.0"]),
        ("# then no blank is a timestamp token", b"a 1 5\n# EOF", &["S a 1.0 @5000"]),
        // NUL quirks of the lexer, which skips NULs after `# ` and in text.
        ("NUL after EOF", b"# EOF\0", &[]),
        ("NULs after EOF newline", b"# EOF\n\0\0", &[]),
        ("NUL inside keyword", b"# HE\0LP a x\n# E\0OF", &["H a \"x\""]),
        ("NULs after a help line join its text", b"# HELP a x\n\0\0# EOF", &["H a \"x\\n\\0\""]),
        ("NUL in help", b"# HELP a \0x\0\n# EOF", &["H a \"\\0x\\0\""]),
        ("escaped NUL-free backslash before NUL", b"a{b=\"\\\\\0\"} 1\n# EOF", &["S a{b=\"\\\\\0\"} 1.0"]),
        ("NUL after closing quote", b"a{b=\"c\"\0} 1\n# EOF", &["S a{b=\"c\"\0} 1.0"]),
        ("NUL after backslash", b"a{b=\"c\\\0n\"} 1\n# EOF", &["S a{b=\"c\\\0n\"} 1.0"]),
        // 2.42 refuses these on append, not in the parser.
        ("repeated label name", b"a{b=\"1\",c=\"2\",b=\"3\"} 1\n# EOF", &["S a{b=\"1\",c=\"2\",b=\"3\"} 1.0"]),
        ("__name__ in label block", b"a{__name__=\"b\"} 1\n# EOF", &["S a{__name__=\"b\"} 1.0"]),
    ];
    for (name, body, want) in cases {
        assert_eq!(parse_ok(body), *want, "case {name:?}");
    }
}

#[test]
fn rejects_what_prometheus_rejects() {
    // (case, body, line, column, message)
    #[rustfmt::skip]
    let cases: &[(&str, &[u8], usize, usize, &str)] = &[
        ("2.42: empty", b"", 1, 1, "data does not end with # EOF"),
        ("2.42: newline", b"\n", 1, 1, "\"INVALID\" \"\\n\" is not a valid start token"),
        ("2.42: name only", b"metric", 1, 7, "expected value after metric, got \"EOF\""),
        ("2.42: no EOF", b"metric 1", 1, 9, "data does not end with # EOF"),
        ("2.42: no EOF after newline", b"metric 1\n", 2, 1, "data does not end with # EOF"),
        ("2.42: no EOF after exemplar", b"metric_total 1 # {aa=\"bb\"} 4", 1, 29, "data does not end with # EOF"),
        ("2.42: name then newline", b"a\n#EOF\n", 1, 2, "expected value after metric, got \"INVALID\""),
        ("2.42: blank lines", b"\n\n#EOF\n", 1, 1, "\"INVALID\" \"\\n\" is not a valid start token"),
        ("2.42: leading blank", b" a 1\n#EOF\n", 1, 1, "\"INVALID\" \" \" is not a valid start token"),
        ("2.42: digit", b"9\n#EOF\n", 1, 1, "\"INVALID\" \"9\" is not a valid start token"),
        ("2.42: untyped", b"# TYPE u untyped\n#EOF\n", 1, 10, "invalid metric type \"untyped\""),
        ("2.42: type trailing blank", b"# TYPE c counter \n#EOF\n", 1, 10, "invalid metric type \"counter \""),
        ("2.42: two blanks before TYPE", b"#  TYPE c counter\n#EOF\n", 1, 3, "\"INVALID\" \" \" is not a valid start token"),
        ("2.42: TYPE without name", b"# TYPE \n#EOF\n", 1, 8, "expected metric name after TYPE, got \"INVALID\""),
        ("2.42: TYPE without text", b"# TYPE m\n#EOF\n", 1, 9, "expected text in TYPE"),
        ("2.42: unit not suffix", b"# UNIT metric suffix\n#EOF\n", 1, 15, "unit not a suffix of metric \"metric\""),
        ("2.42: unit without _", b"# UNIT metricsuffix suffix\n#EOF\n", 1, 21, "unit not a suffix of metric \"metricsuffix\""),
        ("2.42: unit longer", b"# UNIT m suffix\n#EOF\n", 1, 10, "unit not a suffix of metric \"m\""),
        ("2.42: UNIT without name", b"# UNIT \n#EOF\n", 1, 8, "expected metric name after UNIT, got \"INVALID\""),
        ("2.42: UNIT without text", b"# UNIT m\n#EOF\n", 1, 9, "expected text in UNIT"),
        ("2.42: HELP without name", b"# HELP \n#EOF\n", 1, 8, "expected metric name after HELP, got \"INVALID\""),
        ("2.42: HELP without text", b"# HELP m\n#EOF\n", 1, 9, "expected text in HELP"),
        ("2.42: tab before value", b"a\t1\n#EOF\n", 1, 2, "expected value after metric, got \"INVALID\""),
        ("2.42: tab in value", b"a 1\t2\n#EOF\n", 1, 3, "strconv.ParseFloat: parsing \"1\\t2\": invalid syntax"),
        ("2.42: blank after timestamp", b"a 1 2 \n#EOF\n", 1, 7, "expected next entry after timestamp, got \"INVALID\""),
        ("2.42: # after timestamp", b"a 1 2 #\n#EOF\n", 1, 6, "expected next entry after timestamp, got \"TIMESTAMP\""),
        ("2.42: bad timestamp", b"a 1 1z\n#EOF\n", 1, 5, "strconv.ParseFloat: parsing \"1z\": invalid syntax"),
        ("2.42: blank before EOF", b" # EOF\n", 1, 1, "\"INVALID\" \" \" is not a valid start token"),
        ("2.42: sample after EOF", b"# EOF\na 1", 2, 1, "unexpected data after # EOF"),
        ("2.42: blank line after EOF", b"# EOF\n\n", 2, 1, "unexpected data after # EOF"),
        ("2.42: EOF then text", b"# EOFa 1", 1, 6, "unexpected data after # EOF"),
        ("2.42: tab after #", b"#\tTYPE c counter\n", 1, 2, "\"INVALID\" \"\\t\" is not a valid start token"),
        ("2.42: two blanks before kind", b"# TYPE c  counter\n", 1, 10, "invalid metric type \" counter\""),
        ("2.42: two timestamps", b"a 1 1 1\n# EOF\n", 1, 6, "expected next entry after timestamp, got \"TIMESTAMP\""),
        ("2.42: single quotes", b"a{b='c'} 1\n# EOF\n", 1, 5, "expected label value, got \"INVALID\""),
        ("2.42: trailing comma", b"a{b=\"c\",} 1\n# EOF\n", 1, 9, "expected label name, got \"BCLOSE\""),
        ("2.42: leading comma", b"a{,b=\"c\"} 1\n# EOF\n", 1, 3, "expected label name or left brace, got \"COMMA\""),
        ("2.42: missing comma", b"a{b=\"c\"d=\"e\"} 1\n# EOF\n", 1, 8, "expected comma, got \"LNAME\""),
        ("2.42: double comma", b"a{b=\"c\",,d=\"e\"} 1\n# EOF\n", 1, 9, "expected label name, got \"COMMA\""),
        ("2.42: value then newline", b"a{b=\n# EOF\n", 1, 5, "expected label value, got \"INVALID\""),
        ("2.42: invalid utf-8 label name", b"a{\xff=\"foo\"} 1\n# EOF\n", 1, 3, "expected label name or left brace, got \"INVALID\""),
        ("2.42: invalid utf-8 label value", b"a{b=\"\xff\"} 1\n# EOF\n", 1, 6, "invalid UTF-8 label value"),
        ("2.42: word value", b"a true\n", 1, 3, "strconv.ParseFloat: parsing \"true\": invalid syntax"),
        ("2.42: unterminated value", b"something_weird{problem=\"\n# EOF\n", 1, 26, "expected label value, got \"INVALID\""),
        ("2.42: empty label name", b"empty_label_name{=\"\"} 0\n# EOF\n", 1, 18, "expected label name or left brace, got \"EQUAL\""),
        ("2.42: underscore in value", b"foo 1_2\n\n# EOF\n", 1, 5, "unsupported character in float"),
        ("2.42: hex value", b"foo 0x1p-3\n\n# EOF\n", 1, 5, "unsupported character in float"),
        ("2.42: hex value, capital P", b"foo 0x1P-3\n\n# EOF\n", 1, 5, "unsupported character in float"),
        ("2.42: underscore in timestamp", b"foo 0 1_2\n\n# EOF\n", 1, 7, "unsupported character in float"),
        ("2.42: unquoted exemplar value", b"custom_metric_total 1 # {aa=bb}\n# EOF\n", 1, 29, "expected label value, got \"INVALID\""),
        ("2.42: exemplar without value", b"custom_metric_total 1 # {aa=\"bb\"}\n# EOF\n", 1, 34, "expected value after exemplar labels, got \"INVALID\""),
        ("2.42: exemplar then end", b"custom_metric_total 1 # {aa=\"bb\"}", 1, 34, "expected value after exemplar labels, got \"EOF\""),
        ("2.42: exemplar on a plain name", b"custom_metric 1 # {aa=\"bb\"}", 1, 17, "metric name custom_metric does not support exemplars"),
        ("2.42: exemplar double comma", b"custom_metric_total 1 # {aa=\"bb\",,cc=\"dd\"} 1", 1, 34, "expected label name, got \"COMMA\""),
        ("2.42: exemplar value underscore", b"custom_metric_total 1 # {aa=\"bb\"} 1_2", 1, 35, "unsupported character in float"),
        ("2.42: exemplar value hex", b"custom_metric_total 1 # {aa=\"bb\"} 0x1p-3", 1, 35, "unsupported character in float"),
        ("2.42: exemplar value word", b"custom_metric_total 1 # {aa=\"bb\"} true", 1, 35, "strconv.ParseFloat: parsing \"true\": invalid syntax"),
        ("2.42: exemplar label without value", b"custom_metric_total 1 # {aa=\"bb\",cc=}", 1, 37, "expected label value, got \"INVALID\""),
        ("2.42: exemplar escaped quote", b"custom_metric_total 1 # {aa=\\\"\\xff\\\"} 9.0", 1, 29, "expected label value, got \"INVALID\""),
        ("2.42: brace starts a line", b"{b=\"c\",} 1", 1, 1, "\"INVALID\" \"{\" is not a valid start token"),
        ("2.42: NaN timestamp", b"a 1 NaN", 1, 5, "invalid timestamp"),
        ("2.42: -Inf timestamp", b"a 1 -Inf", 1, 5, "invalid timestamp"),
        ("2.42: Inf timestamp", b"a 1 Inf", 1, 5, "invalid timestamp"),
        ("2.42: NaN exemplar timestamp", b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN", 2, 39, "invalid exemplar timestamp"),
        ("2.42: -Inf exemplar timestamp", b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 -Inf", 2, 39, "invalid exemplar timestamp"),
        ("2.42: Inf exemplar timestamp", b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 Inf", 2, 39, "invalid exemplar timestamp"),
        ("2.42 null bytes: before quote", b"a{b=\x00\"ssss\"} 1\n# EOF\n", 1, 5, "expected label value, got \"INVALID\""),
        ("2.42 null bytes: unterminated", b"a{b=\"\x00", 1, 7, "expected label value, got \"INVALID\""),
        ("2.42 null bytes: in label name", b"a{b\x00=\"hiih\"}\t1", 1, 4, "expected equal, got \"INVALID\""),
        ("2.42 null bytes: after name", b"a\x00{b=\"ddd\"} 1", 1, 2, "expected value after metric, got \"INVALID\""),
        ("2.42 null bytes: lone #", b"#", 1, 2, "\"INVALID\" \" \" is not a valid start token"),
        ("2.42 null bytes: # H", b"# H", 1, 4, "\"INVALID\" \" \" is not a valid start token"),
        ("2.42 null bytes: exemplar before quote", b"custom_metric_total 1 # {b=\x00\"ssss\"} 1\n", 1, 28, "expected label value, got \"INVALID\""),
        ("2.42 null bytes: exemplar value", b"custom_metric_total 1 # {b=\"\x00ss\"} 1\n", 1, 29, "expected label value, got \"INVALID\""),
        // Our own.
        ("blank line between samples", b"a 1\n\nb 1\n# EOF", 2, 1, "\"INVALID\" \"\\n\" is not a valid start token"),
        ("plain comment", b"# hello\n# EOF", 1, 3, "\"INVALID\" \"h\" is not a valid start token"),
        ("comment without blank", b"#hello\n# EOF", 1, 2, "\"INVALID\" \"h\" is not a valid start token"),
        ("lowercase keyword", b"# help a b\n# EOF", 1, 3, "\"INVALID\" \"h\" is not a valid start token"),
        ("keyword without blank", b"# HELPa b\n# EOF", 1, 7, "\"INVALID\" \"a\" is not a valid start token"),
        ("NUL starts a line", b"a 1\n\0b 1\n# EOF", 2, 1, "\"INVALID\" \"\\x00\" is not a valid start token"),
        ("NUL right after # and blank", b"# \0HELP a b\n# EOF", 1, 3, "\"INVALID\" \"\\x00\" is not a valid start token"),
        ("non-ASCII byte starts a line", b"\xff 1\n# EOF", 1, 1, "\"INVALID\" \"\u{ff}\" is not a valid start token"),
        ("control byte starts a line", b"\x80 1\n# EOF", 1, 1, "\"INVALID\" \"\\u0080\" is not a valid start token"),
        ("CRLF after value", b"a 1\r\n# EOF\r\n", 1, 3, "strconv.ParseFloat: parsing \"1\\r\": invalid syntax"),
        ("CRLF after EOF", b"# EOF\r\n", 1, 6, "unexpected data after # EOF"),
        ("CRLF after type", b"# TYPE a counter\r\n# EOF", 1, 10, "invalid metric type \"counter\\r\""),
        ("CRLF after exemplar", b"a_total 1 # {a=\"b\"} 1\r\n# EOF", 1, 21, "strconv.ParseFloat: parsing \"1\\r\": invalid syntax"),
        ("trailing blank after value", b"a 1 \n# EOF", 1, 5, "expected timestamp or # symbol, got \"INVALID\""),
        ("two blanks before value", b"a  1\n# EOF", 1, 3, "expected value after metric, got \"INVALID\""),
        ("blank before label block", b"a {b=\"c\"} 1\n# EOF", 1, 3, "strconv.ParseFloat: parsing \"{b=\\\"c\\\"}\": invalid syntax"),
        ("blank after comma", b"a{b=\"c\", d=\"e\"} 1\n# EOF", 1, 9, "expected label name, got \"INVALID\""),
        ("blank before equal", b"a{b =\"c\"} 1\n# EOF", 1, 4, "expected equal, got \"INVALID\""),
        ("second label block", b"a{b=\"c\"}{d=\"e\"} 1\n# EOF", 1, 9, "expected value after metric, got \"BOPEN\""),
        ("raw newline in label value", b"a{b=\"x\ny\"} 1\n# EOF", 1, 7, "expected label value, got \"INVALID\""),
        ("escaped newline in label value", b"a{b=\"x\\\ny\"} 1\n# EOF", 1, 8, "expected label value, got \"INVALID\""),
        ("truncated utf-8 label value", b"a{b=\"\xc3\"} 1\n# EOF", 1, 6, "invalid UTF-8 label value"),
        ("digit starts label name", b"a{1b=\"c\"} 1\n# EOF", 1, 3, "expected label name or left brace, got \"INVALID\""),
        ("colon in label name", b"a{b:c=\"d\"} 1\n# EOF", 1, 4, "expected equal, got \"INVALID\""),
        ("value out of range", b"a 1e400\n# EOF", 1, 3, "strconv.ParseFloat: parsing \"1e400\": value out of range"),
        ("signed NaN", b"a -NaN\n# EOF", 1, 3, "strconv.ParseFloat: parsing \"-NaN\": invalid syntax"),
        ("hex without p", b"a 0x10\n# EOF", 1, 3, "strconv.ParseFloat: parsing \"0x10\": invalid syntax"),
        ("invalid utf-8 value quoted as Go does", b"a 1\xff\n# EOF", 1, 3, "strconv.ParseFloat: parsing \"1\\xff\": invalid syntax"),
        ("timestamp out of range", b"a 1 1e400\n# EOF", 1, 5, "strconv.ParseFloat: parsing \"1e400\": value out of range"),
        ("timestamp then end of input", b"a 1 2", 1, 6, "expected next entry after timestamp, got \"EOF\""),
        ("# and word after value", b"a 1 # x\n# EOF", 1, 7, "expected timestamp or # symbol, got \"INVALID\""),
        ("#{ glued is a timestamp", b"a_total 1 #{a=\"b\"} 1\n# EOF", 1, 11, "strconv.ParseFloat: parsing \"#{a=\\\"b\\\"}\": invalid syntax"),
        ("exemplar on _created", b"a_created 1 # {a=\"b\"} 1\n# EOF", 1, 13, "metric name a_created does not support exemplars"),
        ("exemplar on _info", b"a_info 1 # {a=\"b\"} 1\n# EOF", 1, 10, "metric name a_info does not support exemplars"),
        ("exemplar on _count", b"a_count 1 # {a=\"b\"} 1\n# EOF", 1, 11, "metric name a_count does not support exemplars"),
        ("exemplar checked before its labels", b"a 1 # {\n# EOF", 1, 5, "metric name a does not support exemplars"),
        ("exemplar two blanks before value", b"a_total 1 # {a=\"b\"}  1\n# EOF", 1, 21, "expected value after exemplar labels, got \"INVALID\""),
        ("exemplar trailing blank", b"a_total 1 # {a=\"b\"} 1 \n# EOF", 1, 23, "expected timestamp or comment, got \"INVALID\""),
        ("exemplar trailing blank after timestamp", b"a_total 1 # {a=\"b\"} 1 2 \n# EOF", 1, 25, "expected next entry after exemplar timestamp, got \"INVALID\""),
        ("second exemplar", b"a_total 1 # {a=\"b\"} 1 2 # {c=\"d\"} 3\n# EOF", 1, 24, "expected next entry after exemplar timestamp, got \"TIMESTAMP\""),
        ("exemplar label then value", b"a_total 1 # {a= 1} 1\n# EOF", 1, 16, "expected label value, got \"VALUE\""),
        ("exemplar quoted value after labels", b"a_total 1 # {a=\"b\"}\"c\" 1\n# EOF", 1, 20, "expected value after exemplar labels, got \"LVALUE\""),
        ("exemplar missing comma", b"a_total 1 # {a=\"b\"c=\"d\"} 1\n# EOF", 1, 19, "expected comma, got \"LNAME\""),
        ("exemplar trailing comma", b"a_total 1 # {a=\"b\",} 1\n# EOF", 1, 20, "expected label name, got \"BCLOSE\""),
        ("exemplar NUL in value", b"a_total 1 # {a=\"b\0\"} 1\n# EOF", 1, 18, "expected label value, got \"INVALID\""),
        ("exemplar invalid utf-8", b"a_total 1 # {a=\"\xff\"} 1\n# EOF", 1, 17, "invalid UTF-8 label value"),
        ("exemplar timestamp out of range", b"a_total 1 # {} 1 1e999\n# EOF", 1, 18, "strconv.ParseFloat: parsing \"1e999\": value out of range"),
        ("Counter is case-sensitive", b"# TYPE a Counter\n# EOF", 1, 10, "invalid metric type \"Counter\""),
        ("type with extra word", b"# TYPE a counter x\n# EOF", 1, 10, "invalid metric type \"counter x\""),
        ("type quoted as Go does", b"# TYPE a \xffx\0\n# EOF", 1, 10, "invalid metric type \"\\xffx\\x00\""),
        ("NUL after a type line", b"# TYPE a gauge\n\0# EOF", 1, 10, "invalid metric type \"gauge\\n\""),
        ("type name starts with digit", b"# TYPE 1a counter\n# EOF", 1, 8, "expected metric name after TYPE, got \"INVALID\""),
        ("help without newline at the end", b"# HELP a b", 1, 11, "expected text in HELP"),
        ("help with invalid utf-8", b"# HELP a x\xffy\n# EOF", 1, 11, "help text is not a valid utf8 string"),
        ("unit equal to the name", b"# UNIT seconds seconds\n# EOF", 1, 16, "unit not a suffix of metric \"seconds\""),
        ("unit of a _total name", b"# UNIT a_seconds_total seconds\n# EOF", 1, 24, "unit not a suffix of metric \"a_seconds_total\""),
        ("unit with blank", b"# UNIT a_seconds seconds \n# EOF", 1, 18, "unit not a suffix of metric \"a_seconds\""),
        ("EOF twice", b"a 1\n# EOF\n# EOF", 3, 1, "unexpected data after # EOF"),
        ("EOF lowercase", b"# eof\n", 1, 3, "\"INVALID\" \"e\" is not a valid start token"),
        ("help then no EOF", b"# HELP a b\n", 2, 1, "data does not end with # EOF"),
        ("error on a later line", b"a 1\nb 2\nc{ 3\n# EOF", 3, 3, "expected label name or left brace, got \"INVALID\""),
    ];
    super::super::test_support::assert_rejects(Format::OpenMetrics, cases);
}

#[test]
fn labels_are_unescaped_and_exemplar_labels_are_not() {
    let body =
        b"a_total{b=\"x\\\\y\\\"z\\nw\\tq\",e=\"\",u=\"\xc3\xbc\"} 1 # {t=\"x\\\\y\"} 2\n# EOF";
    let (entries, err) = parse(body);
    assert_eq!(err, None);
    let s = sample(&entries[0]);
    assert_eq!(
        s.labels(),
        Labels::from_pairs([("__name__", "a_total"), ("b", "x\\y\"z\nw\\tq"), ("u", "ü")])
    );
    let ex = s.exemplar.as_ref().unwrap();
    assert_eq!(ex.labels, Labels::from_pairs([("t", "x\\\\y")]));
}

/// A NUL that 2.42's lexer skips right after a closing quote ends up inside
/// the label value token, whose first and last bytes 2.42 drops: the value
/// keeps the quote. One after a backslash is skipped before the escaped byte.
#[test]
fn labels_after_a_skipped_nul_are_read_as_prometheus() {
    for (body, want) in [
        (&b"a{b=\"c\"\0} 1\n# EOF"[..], "c\""),
        (b"a{b=\"c\"\0\0} 1\n# EOF", "c\"\0"),
        (b"a{b=\"c\\\0n\"} 1\n# EOF", "c\\\0n"),
        (b"a{b=\"c\\\0\"d\"} 1\n# EOF", "c\\\0\"d"),
    ] {
        let (entries, err) = parse(body);
        assert_eq!(err, None, "{body:?}");
        assert_eq!(
            sample(&entries[0]).labels(),
            Labels::from_pairs([("__name__", "a"), ("b", want)]),
            "{body:?}"
        );
    }
}

#[test]
fn series_and_names_are_slices_of_the_body() {
    let body = b"# TYPE a counter\n# HELP a plain\n# HELP b esc\\\\aped\n# UNIT a_s s\na_total{b=\"c\"} 1\n# EOF\n".to_vec();
    let range = body.as_ptr_range();
    let (entries, err) = parse(&body);
    assert_eq!(err, None);
    let Entry::Type { name, .. } = &entries[0] else {
        panic!("not a type");
    };
    assert!(range.contains(&name.as_ptr()));
    assert!(
        matches!(&entries[1], Entry::Help { help: Cow::Borrowed(h), .. } if range.contains(&h.as_ptr()))
    );
    assert!(matches!(&entries[2], Entry::Help { help: Cow::Owned(h), .. } if h == "esc\\aped"));
    assert!(
        matches!(&entries[3], Entry::Unit { unit, .. } if range.contains(&unit.as_ptr()) && *unit == "s")
    );
    let s = sample(&entries[4]);
    assert!(matches!(&s.series, Cow::Borrowed(series) if range.contains(&series.as_ptr())));
    assert_eq!(s.series, "a_total{b=\"c\"}");
    assert!(s.exemplar.is_none());
}

/// The 128-rune limit on exemplar labels is enforced by 2.42's TSDB on
/// append, not by its parser.
#[test]
fn exemplar_labels_are_not_limited_by_the_parser() {
    let body = format!("a_total 1 # {{t=\"{}\"}} 1\n# EOF", "☃".repeat(200));
    let (entries, err) = parse(body.as_bytes());
    assert_eq!(err, None);
    let ex = sample(&entries[0]).exemplar.as_ref().expect("exemplar");
    assert_eq!(ex.labels.get("t").map(|v| v.chars().count()), Some(200));
}

#[test]
fn nan_values_have_the_normal_bits() {
    let (entries, err) = parse(b"a_total NaN # {} nan\n# EOF");
    assert_eq!(err, None);
    let s = sample(&entries[0]);
    assert_eq!(s.value.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(
        s.exemplar.as_ref().unwrap().value.to_bits(),
        NORMAL_NAN_BITS
    );
}

#[test]
fn entries_before_an_error_are_returned_and_the_parser_stops() {
    let mut p = Parser::new(Format::OpenMetrics, b"a 1\nb{ 2\nc 3\n# EOF\n");
    assert!(matches!(p.next_entry(), Ok(Some(Entry::Sample(s))) if s.series == "a"));
    let err = p.next_entry().unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2, column 3: expected label name or left brace, got \"INVALID\""
    );
    assert_eq!(p.next_entry(), Ok(None));
    assert_eq!(p.next_entry(), Ok(None));

    // After "# EOF" too, the parser stays done.
    let mut p = Parser::new(Format::OpenMetrics, b"# EOF\n");
    assert_eq!(p.next_entry(), Ok(None));
    assert_eq!(p.next_entry(), Ok(None));
}

#[test]
fn repeated_names_in_a_large_label_block_fail_checked_labels() {
    let mut series = String::from("a{");
    for i in 0..40 {
        write!(series, "l{i}=\"v\",").unwrap();
    }
    let ok = format!("{}}} 1\n# EOF", series.trim_end_matches(','));
    let (entries, err) = parse(ok.as_bytes());
    assert_eq!(err, None);
    assert_eq!(
        sample(&entries[0]).checked_labels().map(|l| l.len()),
        Ok(41)
    );
    let dup = format!("{series}l7=\"w\"}} 1\n# EOF");
    let (entries, err) = parse(dup.as_bytes());
    assert_eq!(err, None);
    assert_eq!(
        sample(&entries[0]).checked_labels(),
        Err("label name \"l7\" is not unique: invalid sample".to_owned())
    );
}
