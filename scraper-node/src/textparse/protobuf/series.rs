//! How the protobuf parser spells a series in text-format syntax: label
//! values escaped as the text format reads them back, `le` and `quantile`
//! values formatted as Go formats them in Prometheus 2.42, and the name rules
//! that make the result parse.

use std::fmt::Write as _;

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
    push_go_float(out, f);
    if !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// Appends a finite `f` as Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the
/// shortest digits that round-trip, in exponent form when the exponent is
/// below -4 or at least 6 (`1e+06`, `1.5e-07`), else in decimal form.
fn push_go_float(out: &mut String, f: f64) {
    // Rust's `{:e}` has the same shortest digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    }
}
