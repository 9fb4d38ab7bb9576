//! The Prometheus HTTP API's JSON encoding, written by hand because its
//! number formats are not serde's: timestamps are JSON numbers in seconds
//! with at most three decimals (`1435781451.781`), sample values are
//! strings formatted like Go's `strconv.FormatFloat(v, 'f', -1, 64)`
//! (`"1"`, `"0.5"`, `"NaN"`, `"+Inf"`).

use std::fmt::Write;

use scrapegrid_common::Labels;

use scrapegrid_common::histogram::FloatHistogram;

use crate::exemplars::SeriesExemplars;
use crate::query::engine::Point;
use crate::query::Value;
use crate::samples::Sample;

/// Formats a sample value as Prometheus does.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's `Display` is the shortest representation that round-trips
        // and never uses an exponent, like Go's 'f' format with precision -1.
        v.to_string()
    }
}

/// Writes a millisecond timestamp as seconds.
pub fn write_timestamp(out: &mut String, t_ms: i64) {
    let abs = t_ms.unsigned_abs();
    if t_ms < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Writes a JSON string.
pub fn write_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
}

/// Writes a label set as a JSON object.
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// Writes `[t, "v"]`.
fn write_point(out: &mut String, s: &Sample) {
    out.push('[');
    write_timestamp(out, s.t);
    out.push_str(",\"");
    out.push_str(&format_value(s.v));
    out.push_str("\"]");
}

/// Writes `[t, "v"]`, or `[t, {histogram}]` for a native histogram.
fn write_any_point(out: &mut String, p: &Point) {
    match &p.h {
        None => write_point(out, &Sample { t: p.t, v: p.v }),
        Some(h) => {
            out.push('[');
            write_timestamp(out, p.t);
            out.push(',');
            write_histogram(out, h);
            out.push(']');
        }
    }
}

/// Writes a native histogram as Prometheus 2.42 does: count, sum, and the
/// buckets that hold observations, lowest first, each as
/// `[boundaries, "lower", "upper", "count"]` where boundaries says which
/// ends are inclusive (0: upper, 1: lower, 2: neither, 3: both).
pub fn write_histogram(out: &mut String, h: &FloatHistogram) {
    let _ = write!(
        out,
        r#"{{"count":"{}","sum":"{}""#,
        format_value(h.count),
        format_value(h.sum)
    );
    let mut first = true;
    for b in h.all_buckets().filter(|b| b.count != 0.0) {
        out.push_str(if first { r#","buckets":["# } else { "," });
        first = false;
        let boundaries = match (b.lower_inclusive, b.upper_inclusive) {
            (true, true) => 3,
            (true, false) => 1,
            (false, true) => 0,
            (false, false) => 2,
        };
        let _ = write!(
            out,
            r#"[{boundaries},"{}","{}","{}"]"#,
            format_value(b.lower),
            format_value(b.upper),
            format_value(b.count)
        );
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

/// Returns the `data` object of a query answer.
pub fn query_data(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Vector(v) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, (labels, s)) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, labels);
                out.push_str(if s.h.is_some() {
                    r#","histogram":"#
                } else {
                    r#","value":"#
                });
                write_any_point(&mut out, s);
                out.push('}');
            }
            out.push_str("]}");
        }
        Value::Matrix(m) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, (labels, points)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, labels);
                // Floats as "values", then histograms as "histograms", each
                // only when there are some (2.42's two passes).
                for (key, histograms) in [(r#","values":["#, false), (r#","histograms":["#, true)] {
                    let mut first = true;
                    for p in points.iter().filter(|p| p.h.is_some() == histograms) {
                        out.push_str(if first { key } else { "," });
                        first = false;
                        write_any_point(&mut out, p);
                    }
                    if !first {
                        out.push(']');
                    }
                }
                out.push('}');
            }
            out.push_str("]}");
        }
        Value::Scalar(s) => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            write_point(&mut out, s);
            out.push('}');
        }
        Value::String(t, s) => {
            out.push_str(r#"{"resultType":"string","result":["#);
            write_timestamp(&mut out, *t);
            out.push(',');
            write_str(&mut out, s);
            out.push_str("]}");
        }
    }
    out
}

/// Returns the `data` of `/api/v1/query_exemplars`: per series
/// `{"seriesLabels":{..},"exemplars":[{"labels":{..},"value":"v","timestamp":t}]}`.
pub fn exemplar_results(found: &[SeriesExemplars]) -> String {
    let mut out = String::from("[");
    for (i, s) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"seriesLabels":"#);
        write_labels(&mut out, &s.labels);
        out.push_str(r#","exemplars":["#);
        for (j, e) in s.exemplars.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"labels":"#);
            write_labels(&mut out, &e.labels);
            out.push_str(r#","value":""#);
            out.push_str(&format_value(e.value));
            out.push_str(r#"","timestamp":"#);
            write_timestamp(&mut out, e.ts_ms);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

/// Returns a JSON array of label sets (the series API's `data`).
pub fn label_sets(sets: &[Labels]) -> String {
    let mut out = String::from("[");
    for (i, l) in sets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_labels(&mut out, l);
    }
    out.push(']');
    out
}

/// Returns a JSON array of strings.
pub fn strings(values: &[String]) -> String {
    serde_json::to_string(values).expect("strings always serialize")
}

/// Wraps `data` (JSON) in a success envelope.
pub fn success(data: &str) -> String {
    format!(r#"{{"status":"success","data":{data}}}"#)
}

/// Returns an error envelope.
pub fn error(error_type: &str, message: &str) -> String {
    let mut out = String::from(r#"{"status":"error","errorType":"#);
    write_str(&mut out, error_type);
    out.push_str(r#","error":"#);
    write_str(&mut out, message);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_go() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (-0.0, "-0"),
            (1e21, "1000000000000000000000"),
            (1.5e-7, "0.00000015"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789.125, "123456789.125"),
            (f64::NAN, "NaN"),
            (scrapegrid_proto::stale_marker(), "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_value(v), want, "{v:e}");
        }
        let max = format_value(f64::MAX);
        assert_eq!(max.len(), 309);
        assert!(max.starts_with("17976931348623157000"));
    }

    #[test]
    fn timestamps_are_seconds_with_millis() {
        let cases = [
            (1_435_781_451_781, "1435781451.781"),
            (1_435_781_451_780, "1435781451.780"),
            (1_435_781_451_000, "1435781451"),
            (5, "0.005"),
            (0, "0"),
            (-1_500, "-1.500"),
        ];
        for (t, want) in cases {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            assert_eq!(s, want);
            // Every form is a valid JSON number.
            assert!(serde_json::from_str::<f64>(&s).is_ok());
        }
    }

    #[test]
    fn exemplar_shape() {
        use crate::exemplars::{Exemplar, SeriesExemplars};
        let found = [SeriesExemplars {
            labels: Labels::from_pairs([("__name__", "a_total"), ("job", "j")]),
            exemplars: vec![
                Exemplar {
                    labels: Labels::from_pairs([("trace_id", "abc")]),
                    value: 0.5,
                    ts_ms: 1_600_000_000_500,
                    has_ts: true,
                },
                Exemplar {
                    labels: Labels::new(),
                    value: f64::INFINITY,
                    ts_ms: -1_500,
                    has_ts: false,
                },
            ],
        }];
        assert_eq!(
            success(&exemplar_results(&found)),
            r#"{"status":"success","data":[{"seriesLabels":{"__name__":"a_total","job":"j"},"exemplars":[{"labels":{"trace_id":"abc"},"value":"0.5","timestamp":1600000000.500},{"labels":{},"value":"+Inf","timestamp":-1.500}]}]}"#
        );
        assert_eq!(exemplar_results(&[]), "[]");
    }

    #[test]
    fn result_shapes() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        let v = Value::Vector(vec![(l.clone(), Point::float(1_000, 1.0))]);
        assert_eq!(
            success(&query_data(&v)),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1,"1"]}]}}"#
        );
        let m = Value::Matrix(vec![(
            l,
            vec![Point::float(1_500, 2.0), Point::float(2_500, f64::NAN)],
        )]);
        assert_eq!(
            query_data(&m),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[1.500,"2"],[2.500,"NaN"]]}]}"#
        );
        assert_eq!(
            query_data(&Value::Scalar(Sample { t: 1, v: 0.25 })),
            r#"{"resultType":"scalar","result":[0.001,"0.25"]}"#
        );
        assert_eq!(
            query_data(&Value::String(0, "x".into())),
            r#"{"resultType":"string","result":[0,"x"]}"#
        );
        assert_eq!(
            query_data(&Value::Vector(vec![])),
            r#"{"resultType":"vector","result":[]}"#
        );
        assert_eq!(
            error("bad_data", "oops \"q\""),
            r#"{"status":"error","errorType":"bad_data","error":"oops \"q\""}"#
        );
        assert_eq!(strings(&[]), "[]");
    }
}
