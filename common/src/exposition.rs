//! Writing the Prometheus text exposition format as client_golang writes
//! it: [`go_float`] for values (and `le`/`quantile` labels) and [`escape`]
//! for HELP texts and label values. The host integration and the parser
//! benchmark's target bodies use them.

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
    // Rust's `{:e}` and `{}` write the same shortest digits as Go.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
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
