//! Table tests for the text-format parser. Each case names the Prometheus
//! behaviour it pins.

use std::fmt::Write as _;

use scrapegrid_common::Labels;

use super::*;

mod plain_blocks;
mod realistic;

/// Parses a text-format body: its entries and the error, if any.
fn parse(body: &[u8]) -> (Vec<Entry<'_>>, Option<ParseError>) {
    super::test_support::parse(Format::PrometheusText, body)
}

/// Parses a text-format body that must parse; returns its rendered entries.
fn parse_ok(body: &[u8]) -> Vec<String> {
    super::test_support::parse_ok(Format::PrometheusText, body)
}

#[test]
fn accepts_what_prometheus_accepts() {
    let cases: &[(&str, &[u8], &[&str])] = &[
        ("plain sample", b"a 1\n", &["S a 1.0"]),
        ("last line without newline", b"a 1\nb 2", &["S a 1.0", "S b 2.0"]),
        ("empty body", b"", &[]),
        ("blank and blank-only lines", b"\n \n\t\n\na 1\n\n", &["S a 1.0"]),
        ("colon and underscore in metric name", b"_job:rate5m:sum 1", &["S _job:rate5m:sum 1.0"]),
        ("metric named like a keyword", b"HELP 1\nNaN NaN\n", &["S HELP 1.0", "S NaN NaN:0x7ff8000000000001"]),
        ("labels", b"a{b=\"c\",d_1=\"e\"} 2", &["S a{b=\"c\",d_1=\"e\"} 2.0"]),
        ("empty label block", b"a{} 1", &["S a{} 1.0"]),
        ("trailing comma", b"a{b=\"c\",} 1", &["S a{b=\"c\",} 1.0"]),
        ("missing comma between labels", b"a{b=\"c\" d=\"e\"} 1", &["S a{b=\"c\" d=\"e\"} 1.0"]),
        ("no blank after label value", b"a{b=\"c\"d=\"e\"} 1", &["S a{b=\"c\"d=\"e\"} 1.0"]),
        (
            "blanks between all tokens, series from the line start",
            b" \t a \t{ b = \"c\" , } \t 1 \t 5 \t\n",
            &["S  \t a \t{ b = \"c\" , } 1.0 @5"],
        ),
        ("blanks before a name belong to the series", b"  a 1\n\tb{c=\"d\"} 2\n\n c 3", &["S   a 1.0", "S \tb{c=\"d\"} 2.0", "S  c 3.0"]),
        // 2.42 refuses these on append, not in the parser.
        ("repeated label name", b"a{x=\"1\",x=\"2\"} 1", &["S a{x=\"1\",x=\"2\"} 1.0"]),
        ("__name__ in label block", b"a{__name__=\"b\"} 1", &["S a{__name__=\"b\"} 1.0"]),
        ("no blank between block and value", b"a{b=\"c\"}1", &["S a{b=\"c\"} 1.0"]),
        ("escapes kept raw in series", b"a{b=\"x\\\"y\\\\z\\n\"} 1", &["S a{b=\"x\\\"y\\\\z\\n\"} 1.0"]),
        ("punctuation inside label value", b"a{b=\"}{,=# \"} 1", &["S a{b=\"}{,=# \"} 1.0"]),
        ("raw newline inside label value", b"a{b=\"x\ny\"} 1\nc 2", &["S a{b=\"x\ny\"} 1.0", "S c 2.0"]),
        ("utf-8 label value", "a{b=\"ünï©ødé\"} 1".as_bytes(), &["S a{b=\"ünï©ødé\"} 1.0"]),
        ("timestamp", b"a 1 1700000000000\n", &["S a 1.0 @1700000000000"]),
        ("zero and max timestamp", b"a 1 0\nb 1 9223372036854775807", &["S a 1.0 @0", "S b 1.0 @9223372036854775807"]),
        ("help", b"# HELP a Some text.\n", &["H a \"Some text.\""]),
        ("help without text", b"# HELP a\n# HELP b \n# HELP c  \n", &["H a \"\"", "H b \"\"", "H c \"\""]),
        ("help keeps extra leading blanks", b"# HELP a   x y \n", &["H a \"  x y \""]),
        ("help after tab", b"#\tHELP\ta\tx", &["H a \"x\""]),
        ("help unescapes backslash and newline only", b"# HELP a x\\\\y\\nz\\\"q\\t", &["H a \"x\\\\y\\nz\\\\\\\"q\\\\t\""]),
        ("help drops the byte after the name", b"# HELP a-b c", &["H a \"b c\""]),
        ("help with NUL", b"# HELP a x\0y", &["H a \"x\\0y\""]),
        (
            "all types",
            b"# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d summary\n# TYPE e untyped\n",
            &["T a counter", "T b gauge", "T c histogram", "T d summary", "T e untyped"],
        ),
        ("type with blanks", b"#  TYPE \t a\tgauge", &["T a gauge"]),
        ("comment", b"# hello\n", &["C"]),
        ("comment without blank", b"#hello\n#\n", &["C", "C"]),
        ("keyword without blank is a comment", b"#HELP a b\n# HELP\n# HELPER a b\n# TYPEa b\n", &["C", "C", "C", "C"]),
        ("lowercase keyword is a comment", b"# help a b\n", &["C"]),
        ("other keywords are comments", b"# EOF\n# UNIT a seconds\n", &["C", "C"]),
        ("indented comment", b"  \t# x\na 1", &["C", "S a 1.0"]),
        ("comment with invalid utf-8 and NUL", b"# \xff\0x\na 1", &["C", "S a 1.0"]),
        ("comment with CR", b"# x\r\na 1", &["C", "S a 1.0"]),
        ("NUL in label value", b"a{b=\"x\0y\"} 1", &["S a{b=\"x\0y\"} 1.0"]),
        ("NUL after closing quote", b"a{b=\"x\"\0} 1", &["S a{b=\"x\"\0} 1.0"]),
        ("NUL after backslash escapes the next byte", b"a{b=\"x\\\0\"y\"} 1", &["S a{b=\"x\\\0\"y\"} 1.0"]),
        ("NUL after blank before a label value", b"a{b= \0\"x\"} 1", &["S a{b= \0\"x\"} 1.0"]),
        ("NUL at line start ends input", b"a 1\n\0b 2\n", &["S a 1.0"]),
        ("NUL after blanks ends input", b"a 1\n  \0garbage{", &["S a 1.0"]),
        ("NUL right after # ends input", b"a 1\n#\0x\nb 2", &["S a 1.0"]),
        ("NUL in a comment without blank ends input", b"a 1\n#x\0y\nb 2", &["S a 1.0"]),
        ("NUL right after # and blanks ends input", b"a 1\n# \t\0HELP b c\nb 2", &["S a 1.0"]),
        ("NUL later in a comment is skipped", b"# x\0y\nb 2", &["C", "S b 2.0"]),
        ("NUL inside a keyword is skipped", b"# HE\0LP\0 a x\n# TYPE\0\tb gauge", &["H a \"x\"", "T b gauge"]),
        (
            "realistic family",
            b"# HELP http_requests_total The total number of HTTP requests.\n\
              # TYPE http_requests_total counter\n\
              http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
              http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n",
            &[
                "H http_requests_total \"The total number of HTTP requests.\"",
                "T http_requests_total counter",
                "S http_requests_total{method=\"post\",code=\"200\"} 1027.0 @1395066363000",
                "S http_requests_total{method=\"post\",code=\"400\"} 3.0 @1395066363000",
            ],
        ),
    ];
    for (name, body, want) in cases {
        assert_eq!(parse_ok(body), *want, "case {name:?}");
    }
}

#[test]
fn values_follow_go_parse_float_as_prometheus_restricts_it() {
    let nan = f64::from_bits(NORMAL_NAN_BITS);
    let ok: &[(&str, f64)] = &[
        ("1", 1.0),
        ("-1", -1.0),
        ("+1", 1.0),
        ("0", 0.0),
        ("-0", -0.0),
        ("00012", 12.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.5e3", 1500.0),
        ("1E-3", 0.001),
        ("+1e+3", 1000.0),
        ("1e-400", 0.0),
        ("1.7976931348623157e308", f64::MAX),
        ("9007199254740993", 9007199254740992.0),
        ("NaN", nan),
        ("nan", nan),
        ("NAN", nan),
        ("Inf", f64::INFINITY),
        ("+Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
        ("inf", f64::INFINITY),
        ("INF", f64::INFINITY),
        ("infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
        ("+INFINITY", f64::INFINITY),
    ];
    for (text, want) in ok {
        let body = format!("a {text}\n");
        let (entries, err) = parse(body.as_bytes());
        assert_eq!(err, None, "value {text:?}");
        let Entry::Sample(s) = &entries[0] else {
            panic!("value {text:?}: not a sample");
        };
        assert_eq!(s.value.to_bits(), want.to_bits(), "value {text:?}");
    }

    // 2.42's texts: Go's strconv.NumError, and no quote after "float".
    let syntax = |v: &str| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax");
    let range = |v: &str| format!("strconv.ParseFloat: parsing {v:?}: value out of range");
    let unsupported = "unsupported character in float".to_owned();
    let err: &[(&str, String)] = &[
        ("1_000", unsupported.clone()),
        ("0x1p-2", unsupported.clone()),
        ("1P3", unsupported),
        ("0x10", syntax("0x10")),
        ("1e400", range("1e400")),
        ("-1e400", range("-1e400")),
        ("+NaN", syntax("+NaN")),
        ("-nan", syntax("-nan")),
        ("infin", syntax("infin")),
        ("infinityy", syntax("infinityy")),
        ("1e", syntax("1e")),
        ("1e+", syntax("1e+")),
        (".", syntax(".")),
        ("e3", syntax("e3")),
        ("-", syntax("-")),
        ("--1", syntax("--1")),
        ("1.2.3", syntax("1.2.3")),
        ("1,5", syntax("1,5")),
        ("true", syntax("true")),
        ("1}", syntax("1}")),
        ("١", syntax("١")),
        (
            "1\x7f",
            "strconv.ParseFloat: parsing \"1\\x7f\": invalid syntax".to_owned(),
        ),
    ];
    for (text, want) in err {
        let body = format!("a {text}\n");
        let (_, got) = parse(body.as_bytes());
        let got = got.unwrap_or_else(|| panic!("value {text:?} accepted"));
        assert_eq!(
            (got.line, got.column, got.message.as_str()),
            (1, 3, want.as_str())
        );
    }
}

#[test]
fn rejects_what_prometheus_rejects() {
    // (case, body, line, column, message): 2.42's texts, which name the token
    // the parser got; the column is where that token starts, or where the
    // lexer gave up on an INVALID one.
    #[rustfmt::skip]
    let cases: &[(&str, &[u8], usize, usize, &str)] = &[
        ("digit starts a line", b"1a 1", 1, 1, "\"INVALID\" is not a valid start token"),
        ("brace starts a line", b"{a=\"b\"} 1", 1, 1, "\"INVALID\" is not a valid start token"),
        ("non-ASCII byte starts a line", b"\xff 1", 1, 1, "\"INVALID\" is not a valid start token"),
        ("CRLF blank line", b"\r\n", 1, 1, "\"INVALID\" is not a valid start token"),
        ("dash in metric name", b"a-b 1", 1, 2, "strconv.ParseFloat: parsing \"-b\": invalid syntax"),
        ("digit starts label name", b"a{1b=\"c\"} 1", 1, 3, "expected label name, got \"INVALID\""),
        ("colon in label name", b"a{b:c=\"d\"} 1", 1, 4, "expected equal, got \"INVALID\""),
        ("empty label name", b"a{=\"c\"} 1", 1, 3, "expected label name, got \"EQUAL\""),
        ("double comma", b"a{b=\"c\",,d=\"e\"} 1", 1, 9, "expected label name, got \"COMMA\""),
        ("leading comma", b"a{,b=\"c\"} 1", 1, 3, "expected label name, got \"COMMA\""),
        ("two label names", b"a{b c=\"d\"} 1", 1, 5, "expected equal, got \"LNAME\""),
        ("single quotes", b"a{b='c'} 1", 1, 5, "expected label value, got \"INVALID\""),
        ("unquoted value", b"a{b=c} 1", 1, 5, "expected label value, got \"INVALID\""),
        ("label without value", b"a{b} 1", 1, 4, "expected equal, got \"BCLOSE\""),
        ("label value then line end", b"a{b=\n", 1, 5, "expected label value, got \"INVALID\""),
        ("NUL before a label value", b"a{b=\0\"c\"} 1", 1, 5, "expected label value, got \"INVALID\""),
        ("unclosed block", b"a{b=\"c\" 1", 1, 9, "expected label name, got \"INVALID\""),
        ("unterminated value", b"a{b=\"c", 1, 7, "expected label value, got \"INVALID\""),
        ("unterminated escape", b"a{b=\"c\\", 1, 8, "expected label value, got \"INVALID\""),
        ("escaped line break", b"a{b=\"c\\\nd\"} 1", 1, 8, "expected label value, got \"INVALID\""),
        ("invalid utf-8 label value", b"a{b=\"x\xff\"} 1", 1, 7, "invalid UTF-8 label value"),
        ("truncated utf-8 label value", b"a{b=\"\xc3\"} 1", 1, 6, "invalid UTF-8 label value"),
        ("invalid utf-8 label name", b"a{\xff=\"foo\"} 1", 1, 3, "expected label name, got \"INVALID\""),
        ("NUL in label block", b"a{\0b=\"c\"} 1", 1, 3, "expected label name, got \"INVALID\""),
        ("missing value", b"a", 1, 2, "expected value after metric, got \"INVALID\""),
        ("missing value after labels", b"a{b=\"c\"}\n", 1, 9, "expected value after metric, got \"INVALID\""),
        ("NUL in metric name", b"a\0 1", 1, 2, "expected value after metric, got \"INVALID\""),
        ("second label block", b"a{b=\"c\"}{d=\"e\"} 1", 1, 9, "expected value after metric, got \"BOPEN\""),
        ("second label block after blank", b"a{b=\"c\"} {d=\"e\"} 1", 1, 10, "expected value after metric, got \"BOPEN\""),
        ("CRLF after value", b"a 1\r\n", 1, 3, "strconv.ParseFloat: parsing \"1\\r\": invalid syntax"),
        ("NUL after value", b"a 1\0", 1, 4, "expected timestamp or new record, got \"INVALID\""),
        ("brace after value", b"a 1{", 1, 4, "expected timestamp or new record, got \"INVALID\""),
        ("negative timestamp", b"a 1 -5", 1, 5, "expected timestamp or new record, got \"INVALID\""),
        ("word after value", b"a 1 x", 1, 5, "expected timestamp or new record, got \"INVALID\""),
        ("OpenMetrics exemplar", b"a_total 1 # {a=\"b\"} 1\n# EOF\n", 1, 11, "expected timestamp or new record, got \"INVALID\""),
        ("garbage after timestamp", b"a 1 2 3", 1, 7, "expected next entry after timestamp, got \"TIMESTAMP\""),
        ("letters after timestamp", b"a 1 2abc", 1, 6, "expected next entry after timestamp, got \"INVALID\""),
        ("fractional timestamp", b"a 1 1.5", 1, 6, "expected next entry after timestamp, got \"INVALID\""),
        ("exponent timestamp", b"a 1 1e3", 1, 6, "expected next entry after timestamp, got \"INVALID\""),
        ("CRLF after timestamp", b"a 1 5\r\n", 1, 6, "expected next entry after timestamp, got \"INVALID\""),
        ("timestamp overflow", b"a 1 9223372036854775808", 1, 5, "strconv.ParseInt: parsing \"9223372036854775808\": value out of range"),
        ("unknown type", b"# TYPE a foo", 1, 10, "invalid metric type \"foo\""),
        ("type is case-sensitive", b"# TYPE a Counter", 1, 10, "invalid metric type \"Counter\""),
        ("type without kind", b"# TYPE a\n", 1, 9, "invalid metric type \"\""),
        ("type with trailing blank", b"# TYPE a counter ", 1, 10, "invalid metric type \"counter \""),
        ("type with extra word", b"# TYPE a counter x", 1, 10, "invalid metric type \"counter x\""),
        ("type of later formats", b"# TYPE a info", 1, 10, "invalid metric type \"info\""),
        ("CRLF after type", b"# TYPE a counter\r\n", 1, 10, "invalid metric type \"counter\\r\""),
        ("type quoted as Go does", b"# TYPE a \xffx\0y\x01", 1, 10, "invalid metric type \"\\xffx\\x00y\\x01\""),
        ("type name starts with digit", b"# TYPE 1a counter", 1, 8, "expected metric name after TYPE, got \"INVALID\""),
        ("help without name", b"# HELP \n", 1, 8, "expected metric name after HELP, got \"INVALID\""),
        ("help with invalid utf-8", b"# HELP a x\xffy", 1, 11, "help text is not a valid utf8 string"),
        ("NUL right after a help name", b"# HELP a\0 x\n", 1, 9, "linebreak expected after metadata, got \"EOF\""),
        ("error on a later line", b"a 1\n# c\n\nb{ 1\n", 4, 4, "expected label name, got \"INVALID\""),
        ("line count includes newlines in label values", b"a{b=\"x\ny\"} 1\nc{", 3, 3, "expected label name, got \"INVALID\""),
    ];
    super::test_support::assert_rejects(Format::PrometheusText, cases);
}

#[test]
fn labels_are_parsed_sorted_and_unescaped() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("a", &[("__name__", "a")]),
        ("a{}", &[("__name__", "a")]),
        (
            "a{z=\"1\",b=\"2\"}",
            &[("__name__", "a"), ("b", "2"), ("z", "1")],
        ),
        ("a { b = \"c\" , }", &[("__name__", "a"), ("b", "c")]),
        (
            "a{b=\"c\" d=\"e\"}",
            &[("__name__", "a"), ("b", "c"), ("d", "e")],
        ),
        ("a{b=\"\"}", &[("__name__", "a")]),
        // `\\` `\"` `\n` unescape; `\t` and a lone backslash stay as written.
        (
            "a{b=\"x\\\\y\\\"z\\nw\\tq\"}",
            &[("__name__", "a"), ("b", "x\\y\"z\nw\\tq")],
        ),
        ("a{b=\"\\\\n\"}", &[("__name__", "a"), ("b", "\\n")]),
        ("a{b=\"}{,=\"}", &[("__name__", "a"), ("b", "}{,=")]),
        ("a{b=\"ünï\"}", &[("__name__", "a"), ("b", "ünï")]),
        (
            "a{_b=\"1\",B=\"2\"}",
            &[("B", "2"), ("__name__", "a"), ("_b", "1")],
        ),
        // The blanks before the name are part of it, as in 2.42.
        (" \ta{b=\"c\"}", &[("__name__", " \ta"), ("b", "c")]),
        // A NUL skipped after the closing quote: 2.42 keeps the quote.
        ("a{b=\"c\"\0}", &[("__name__", "a"), ("b", "c\"")]),
        // A NUL skipped after a backslash: the byte after it is escaped.
        ("a{b=\"c\\\0\"d\"}", &[("__name__", "a"), ("b", "c\\\0\"d")]),
        // A repeated name keeps its first value; an empty value drops every
        // label of its name (2.42's labels builder).
        ("a{b=\"2\",b=\"1\"}", &[("__name__", "a"), ("b", "2")]),
        ("a{b=\"2\",c=\"\",b=\"\",c=\"3\"}", &[("__name__", "a")]),
        ("a{__name__=\"\"}", &[]),
    ];
    for (series, want) in cases {
        let body = format!("{series} 1\n");
        let (entries, err) = parse(body.as_bytes());
        assert_eq!(err, None, "series {series:?}");
        let Entry::Sample(s) = &entries[0] else {
            panic!("series {series:?}: not a sample");
        };
        assert_eq!(s.series, *series);
        assert_eq!(
            s.labels(),
            Labels::from_pairs(want.iter().copied()),
            "series {series:?}"
        );
    }
}

#[test]
fn labels_of_a_hand_made_series_are_best_effort() {
    let s = Sample {
        series: "a{b=\"1\",b=\"2\",c=oops}".into(),
        value: 1.0,
        timestamp_ms: None,
        exemplar: None,
    };
    assert_eq!(
        s.labels(),
        Labels::from_pairs([("__name__", "a"), ("b", "1")])
    );
    assert_eq!(
        s.checked_labels(),
        Err("label name \"b\" is not unique: invalid sample".to_owned())
    );
    let not_a_series = Sample {
        series: "{a=\"b\"}".into(),
        ..s
    };
    assert_eq!(not_a_series.checked_labels(), Ok(Labels::new()));
}

#[test]
fn series_is_a_slice_of_the_body() {
    let body = b"# TYPE a counter\n  a{b=\"c\"} 1\n".to_vec();
    let range = body.as_ptr_range();
    let (entries, _) = parse(&body);
    let Entry::Sample(s) = &entries[1] else {
        panic!("not a sample");
    };
    assert!(matches!(s.series, std::borrow::Cow::Borrowed(_)));
    assert!(range.contains(&s.series.as_ptr()));
    assert_eq!(s.series, "  a{b=\"c\"}");
    let Entry::Type { name, .. } = &entries[0] else {
        panic!("not a type");
    };
    assert!(range.contains(&name.as_ptr()));
}

#[test]
fn help_borrows_unless_escaped() {
    let (entries, _) = parse(b"# HELP a plain\n# HELP b esc\\\\aped\n");
    assert!(matches!(
        &entries[0],
        Entry::Help {
            help: Cow::Borrowed("plain"),
            ..
        }
    ));
    assert!(matches!(&entries[1], Entry::Help { help: Cow::Owned(h), .. } if h == "esc\\aped"));
}

#[test]
fn entries_before_an_error_are_returned_and_the_parser_stops() {
    let mut p = Parser::new(Format::PrometheusText, b"a 1\nb{ 2\nc 3\n");
    assert!(matches!(p.next_entry(), Ok(Some(Entry::Sample(s))) if s.series == "a"));
    let err = p.next_entry().unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2, column 4: expected label name, got \"INVALID\""
    );
    assert_eq!(p.next_entry(), Ok(None));
    assert_eq!(p.next_entry(), Ok(None));
}

#[test]
fn parse_error_is_a_std_error() {
    let err: Box<dyn std::error::Error> = Box::new(ParseError {
        line: 3,
        column: 4,
        message: "boom".to_owned(),
    });
    assert_eq!(err.to_string(), "line 3, column 4: boom");
}

#[test]
fn iterator_yields_entries_then_the_error() {
    let p = Parser::new(Format::PrometheusText, b"a 1\n# c\nb 2 x\nd 4\n");
    let items: Vec<_> = p.collect();
    assert_eq!(items.len(), 3);
    assert!(items[1].as_ref().is_ok_and(|e| *e == Entry::Comment));
    assert_eq!(items[2].as_ref().unwrap_err().line, 3);
}

/// 2.42 parses a repeated label name and refuses the series on append,
/// naming the first repeated name in sorted order; `checked_labels` gives that
/// error. An empty value drops every label of its name first.
#[test]
fn checked_labels_refuse_repeated_names_as_prometheus_appends() {
    let err = |n: &str| Err(format!("label name \"{n}\" is not unique: invalid sample"));
    let ok = |pairs: &[(&str, &str)]| Ok(Labels::from_pairs(pairs.iter().copied()));
    let mut large = String::from("a{");
    for i in 0..40 {
        write!(large, "l{i}=\"v\",").unwrap();
    }
    let large_ok = format!("{large}}}");
    let large_dup = format!("{large}l7=\"w\"}}");
    let cases: &[(&str, Result<Labels, String>)] = &[
        ("a{x=\"1\"}", ok(&[("__name__", "a"), ("x", "1")])),
        ("a{x=\"1\",x=\"2\"}", err("x")),
        ("a{x=\"1\",x=\"1\"}", err("x")),
        ("a{__name__=\"b\"}", err("__name__")),
        ("a{__name__=\"a\"}", err("__name__")),
        ("a{z=\"1\",z=\"2\",b=\"1\",b=\"2\"}", err("b")),
        ("a{A=\"1\",A=\"2\",__name__=\"x\"}", err("A")),
        ("a{x=\"\",x=\"2\"}", ok(&[("__name__", "a")])),
        ("a{x=\"\",x=\"2\",y=\"1\",y=\"2\"}", err("y")),
        ("a{__name__=\"\"}", ok(&[])),
        (&large_dup, err("l7")),
    ];
    for (series, want) in cases {
        let body = format!("{series} 1\n");
        let (entries, e) = parse(body.as_bytes());
        assert_eq!(e, None, "series {series:?}");
        let Entry::Sample(s) = &entries[0] else {
            panic!("series {series:?}: not a sample");
        };
        assert_eq!(&s.checked_labels(), want, "series {series:?}");
    }
    let body = format!("{large_ok} 1\n");
    let (entries, _) = parse(body.as_bytes());
    let Entry::Sample(s) = &entries[0] else {
        panic!("not a sample");
    };
    assert_eq!(s.checked_labels().map(|l| l.len()), Ok(41));
}

#[test]
fn content_type_picks_the_parser_as_prometheus_does() {
    use Format::*;
    let om = "application/openmetrics-text";
    #[rustfmt::skip]
    let cases: Vec<(Option<String>, Format)> = [
        (None, PrometheusText),
        (Some(""), PrometheusText),
        (Some("text/plain; version=0.0.4; charset=utf-8"), PrometheusText),
        (Some("application/openmetrics-text; version=1.0.0; charset=utf-8"), OpenMetrics),
        (Some(om), OpenMetrics),
        (Some("Application/OpenMetrics-Text;version=0.0.1"), OpenMetrics),
        (Some("  APPLICATION/OPENMETRICS-TEXT\t"), OpenMetrics),
        (Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"), Protobuf),
        (Some("application/json"), PrometheusText),
        (Some("openmetrics"), PrometheusText),
        // Go lowercases U+0130 to "i", as its simple case mapping says.
        (Some("appl\u{130}cation/openmetrics-text"), OpenMetrics),
    ]
    .into_iter()
    .map(|(ct, f)| (ct.map(str::to_owned), f))
    .chain(
        // Parameters Go's mime.ParseMediaType accepts.
        [
            "; version=1.0.0;",
            "; version=1.0.0 ; \t",
            ";",
            " ; a = b ;c=d",
            "; a=\"\"",
            "; a=\"x;y\\\"z\"",
            "; a=\"C:\\dir\"",
            "; a*0=x; a*1=y; a*=utf-8''z",
            "; a=b\u{a0}",
            "; a=!#$%&'*+-.^_`|~",
        ]
        .map(|p| (Some(format!("{om}{p}")), OpenMetrics)),
    )
    .chain(
        // What it refuses: the text parser, whatever the media type.
        [
            "; version",
            "; version=1.0.0; charset",
            "; version=",
            "; version=1.0.0; version=1.0.0",
            "; Version=1; version=2",
            "; a*=x; a*=y",
            ";;",
            "; ;",
            "; =x",
            "; a=b c",
            "; a=\"x",
            "; a=\"x\ry\"",
            "; a=x\"y\"",
            "; a=(x)",
            "; a=\u{e9}",
            "; a\u{e9}=x",
            " x",
            "/x",
            "/",
        ]
        .map(|p| (Some(format!("{om}{p}")), PrometheusText)),
    )
    .chain(
        // Not a media type.
        ["application/openmetrics-text/x", "application/", "/openmetrics-text", "application /openmetrics-text", "applic@tion/openmetrics-text", " ", ";a=b"]
            .map(|ct| (Some(ct.to_owned()), PrometheusText)),
    )
    .collect();
    for (ct, want) in cases {
        assert_eq!(Format::from_content_type(ct.as_deref()), want, "{ct:?}");
    }
}
