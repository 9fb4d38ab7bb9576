//! How the protobuf parser spells a series in text-format syntax: label
//! values escaped as the text format reads them back, `le` and `quantile`
//! values formatted as Go formats them in Prometheus 2.42, and the name rules
//! that make the result parse.

/// Appends a label value with `\`, `"` and newline escaped, as the text
/// format reads them back.
pub(super) fn push_escaped(out: &mut String, value: &str) {
    let mut rest = value;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Appends `f` as 2.42's `formatOpenMetricsFloat`: Go's `fmt.Sprint(f)`,
/// with `.0` added when that has neither `.` nor `e`.
pub(super) fn push_openmetrics_float(out: &mut String, f: f64) {
    let special = if f.is_nan() {
        "NaN"
    } else if f == f64::INFINITY {
        "+Inf"
    } else if f == f64::NEG_INFINITY {
        "-Inf"
    } else if f == 1.0 {
        "1.0"
    } else if f == -1.0 {
        "-1.0"
    } else if f == 0.0 {
        // Also -0.0, as Go's `f == 0`.
        "0.0"
    } else {
        ""
    };
    if !special.is_empty() {
        out.push_str(special);
        return;
    }
    let start = out.len();
    scrapegrid_common::exposition::push_go_float(out, f);
    if !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}
