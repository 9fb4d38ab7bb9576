//! Writing the Prometheus text exposition format as client_golang writes
//! it: [`go_float`] for values (and `le`/`quantile` labels) and [`escape`]
//! for HELP texts and label values. The host integration and the parser
//! benchmark's target bodies use them, and the protobuf parser
//! ([`push_go_float`], into its own buffer) for the `le` and `quantile`
//! labels it writes.

use std::fmt::Write as _;

/// Escapes as the text format does: backslash and newline in HELP texts,
/// and double quotes too in label values.
pub fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Formats `v` as client_golang's text format does: Go's
/// `strconv.FormatFloat(v, 'g', -1, 64)`, the shortest digits that
/// round-trip, with an exponent below 1e-4 and from 1e+06 on
/// (`3.56901779e+08`, `36615.42`, `1.5e-05`); -0 as `0`.
pub fn go_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let mut out = String::with_capacity(24);
    push_go_float(&mut out, v);
    out
}

/// Appends a finite `f` as Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the
/// shortest digits that round-trip, in exponent form when the exponent is
/// below -4 or at least 6 (`1e+06`, `1.5e-07`), else in decimal form.
pub fn push_go_float(out: &mut String, f: f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[rustfmt::skip]
    fn go_float_formats_as_client_golang() {
        for (v, want) in [
            (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.0, "-1"), (36615.42, "36615.42"),
            (3.56901779e8, "3.56901779e+08"), (1.5e-5, "1.5e-05"), (-2.5e-7, "-2.5e-07"),
            (0.0001, "0.0001"), (0.00012, "0.00012"), (999999.0, "999999"), (123456.7, "123456.7"),
            (1e6, "1e+06"), (1.173237e6, "1.173237e+06"), (18991.509000000002, "18991.509000000002"),
            (u64::MAX as f64, "1.8446744073709552e+19"), (1e21, "1e+21"), (1e100, "1e+100"),
            (5e-324, "5e-324"), (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"), (f64::INFINITY, "+Inf"), (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(go_float(v), want, "{v:e}");
        }
    }

    #[test]
    fn escape_help_and_label_values() {
        assert_eq!(escape("a\\b\nc\"d", false), "a\\\\b\\nc\"d");
        assert_eq!(escape("a\\b\nc\"d", true), "a\\\\b\\nc\\\"d");
    }
}
