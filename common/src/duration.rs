//! Prometheus duration and size syntax, so `prometheus.yml` files mean here
//! what they mean to Prometheus.
//!
//! Durations follow `model.ParseDuration` from prometheus/common: integer
//! amounts of `y` (365d), `w`, `d`, `h`, `m`, `s`, `ms`, written largest unit
//! first, each unit at most once (`1h30m`, `500ms`), or a bare `0`. They are
//! formatted back the way Prometheus prints them (`90d`, `2w`, `1m30s`).
//!
//! Sizes follow `units.Base2Bytes` (used by `body_size_limit`): `0`, or
//! amounts with `B`, `KiB`..`EiB` or `KB`..`EB`, all powers of 1024, fractions
//! and sequences allowed (`1.5MB`, `1MB512KB`).
//!
//! The `serde_*` modules let config structs deserialize these from strings.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {input:?} ({reason})")]
    Invalid { input: String, reason: String },
    #[error("duration out of range: {input:?}")]
    OutOfRange { input: String },
}

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("not a valid size: {input:?} ({reason})")]
    Invalid { input: String, reason: String },
    #[error("size out of range: {input:?}")]
    OutOfRange { input: String },
}

const MS_PER_SECOND: u64 = 1000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// Units from largest to smallest; a duration names them in this order.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("y", MS_PER_YEAR),
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

/// Parses a Prometheus duration such as `15s`, `1h30m` or `0`.
///
/// Like Prometheus, rejects durations longer than Go's `time.Duration` can
/// hold (about 292 years).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = |reason: String| DurationError::Invalid {
        input: s.to_string(),
        reason,
    };
    let mut rest = s;
    // Index into DURATION_UNITS of the next unit allowed.
    let mut next_unit = 0;
    let mut total_ms: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid("expected a number".into()));
        }
        let amount: u128 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::OutOfRange {
                input: s.to_string(),
            })?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(invalid("missing unit".into()));
        }
        let Some(pos) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(invalid(format!("unknown unit {unit:?}")));
        };
        if pos < next_unit {
            return Err(invalid(format!(
                "unit {unit:?} repeated or out of order, units go from y to ms"
            )));
        }
        next_unit = pos + 1;
        total_ms = total_ms.saturating_add(amount.saturating_mul(DURATION_UNITS[pos].1 as u128));
    }
    // Go's time.Duration is an int64 of nanoseconds.
    if total_ms.saturating_mul(1_000_000) > i64::MAX as u128 {
        return Err(DurationError::OutOfRange {
            input: s.to_string(),
        });
    }
    Ok(Duration::from_millis(total_ms as u64))
}

/// Formats a duration as Prometheus does: millisecond precision, years and
/// weeks only when they divide the duration exactly (`90d`, not `12w6d`), and
/// `0s` for anything under a millisecond.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (i, (unit, mult)) in DURATION_UNITS.iter().enumerate() {
        let mult = *mult as u128;
        let v = ms / mult;
        // Years and weeks only when they leave no remainder.
        let exact_only = i < 2;
        if exact_only && v * mult != ms {
            continue;
        }
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    out
}

/// Parses a Prometheus `Base2Bytes` size such as `10MB`, `1KiB`, `512B` or
/// `0`, returning bytes.
///
/// `KB` and `KiB` both mean 1024 (lowercase `kB` is rejected, as Prometheus
/// does); fractions and sequences are allowed (`1.5MB`, `1MB512KB`). Negative
/// sizes, which Prometheus accepts and treats as "no limit", return 0, this
/// crate's "no limit".
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    const IEC: [(&str, u64); 7] = [
        ("B", 1),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
        ("PiB", 1 << 50),
        ("EiB", 1 << 60),
    ];
    const OLD: [(&str, u64); 7] = [
        ("B", 1),
        ("KB", 1 << 10),
        ("MB", 1 << 20),
        ("GB", 1 << 30),
        ("TB", 1 << 40),
        ("PB", 1 << 50),
        ("EB", 1 << 60),
    ];
    // Prometheus tries the IEC spelling for the whole string, then the old
    // one, so `1MiB512KB` (mixed) is rejected.
    let value = parse_units(s, &IEC).or_else(|_| parse_units(s, &OLD))?;
    if value >= 9_223_372_036_854_775_808.0 {
        return Err(SizeError::OutOfRange {
            input: s.to_string(),
        });
    }
    if value <= 0.0 {
        return Ok(0);
    }
    Ok(value as u64)
}

/// Parses `[-+]?([0-9]*(\.[0-9]*)?[A-Za-z]+)+` against a unit table, summing
/// in f64 as alecthomas/units does so fractional results round the same way.
fn parse_units(s: &str, units: &[(&str, u64)]) -> Result<f64, SizeError> {
    let invalid = |reason: String| SizeError::Invalid {
        input: s.to_string(),
        reason,
    };
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(invalid("empty size".into()));
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut amount = if int_len > 0 {
            rest[..int_len]
                .parse::<f64>()
                .map_err(|_| invalid("bad number".into()))?
        } else {
            0.0
        };
        rest = &rest[int_len..];
        let mut frac_len = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            if frac_len > 0 {
                let frac: f64 = after_dot[..frac_len]
                    .parse()
                    .map_err(|_| invalid("bad number".into()))?;
                amount += frac / 10f64.powi(frac_len as i32);
            }
            rest = &after_dot[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid("expected a number".into()));
        }
        let unit_len = rest
            .bytes()
            .take_while(|b| *b != b'.' && !b.is_ascii_digit())
            .count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some((_, mult)) = units.iter().find(|(u, _)| *u == unit) else {
            return Err(invalid(format!("unknown unit {unit:?}")));
        };
        total += amount * *mult as f64;
    }
    Ok(if neg { -total } else { total })
}

/// `#[serde(with = "serde_duration")]` for a required [`Duration`] written in
/// Prometheus syntax.
pub mod serde_duration {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(ParseVisitor(parse_duration))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
}

/// `#[serde(default, with = "serde_duration_opt")]` for an optional
/// [`Duration`]; null means absent.
pub mod serde_duration_opt {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionVisitor(ParseVisitor(parse_duration)))
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

/// `#[serde(with = "serde_size")]` for a byte size written as Prometheus
/// `Base2Bytes` (`10MB`).
pub mod serde_size {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(ParseVisitor(parse_size))
    }

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{n}B"))
    }
}

/// `#[serde(default, with = "serde_size_opt")]` for an optional byte size.
pub mod serde_size_opt {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptionVisitor(ParseVisitor(parse_size)))
    }

    pub fn serialize<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => s.serialize_str(&format!("{n}B")),
            None => s.serialize_none(),
        }
    }
}

/// Parses a scalar with `F` inside the visitor, so the deserializer
/// attributes a parse error to the value's own path and position. Integers
/// are parsed as their text: YAML reads `0` as an integer, and Prometheus
/// (through yaml.v2) reads integers into duration and size strings.
struct ParseVisitor<F>(F);

impl<T, E, F> serde::de::Visitor<'_> for ParseVisitor<F>
where
    F: Fn(&str) -> Result<T, E>,
    E: std::fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<T, Er> {
        (self.0)(v).map_err(Er::custom)
    }

    fn visit_u64<Er: serde::de::Error>(self, v: u64) -> Result<T, Er> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<Er: serde::de::Error>(self, v: i64) -> Result<T, Er> {
        self.visit_str(&v.to_string())
    }
}

/// Maps null to `None` and anything else through the inner visitor.
struct OptionVisitor<V>(V);

impl<'de, V: serde::de::Visitor<'de>> serde::de::Visitor<'de> for OptionVisitor<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_durations_like_prometheus() {
        let ok: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("15s", ms(15_000)),
            ("1m", ms(60_000)),
            ("1m30s", ms(90_000)),
            ("1h30m", ms(5_400_000)),
            ("500ms", ms(500)),
            ("1s500ms", ms(1500)),
            ("01m", ms(60_000)),
            ("1d", ms(MS_PER_DAY)),
            ("1w", ms(MS_PER_WEEK)),
            ("1y", ms(MS_PER_YEAR)),
            (
                "1y2w3d4h5m6s7ms",
                ms(MS_PER_YEAR
                    + 2 * MS_PER_WEEK
                    + 3 * MS_PER_DAY
                    + 4 * MS_PER_HOUR
                    + 5 * MS_PER_MINUTE
                    + 6 * MS_PER_SECOND
                    + 7),
            ),
            ("292y", ms(292 * MS_PER_YEAR)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_duration(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        let bad: &[(&str, &str)] = &[
            ("", "empty duration string"),
            (
                "1x",
                r#"not a valid duration string: "1x" (unknown unit "x")"#,
            ),
            ("30m1h", r#""30m1h" (unit "h" repeated or out of order"#),
            ("1h1h", r#""1h1h" (unit "h" repeated or out of order"#),
            ("1ms1s", "out of order"),
            ("-1m", r#""-1m" (expected a number)"#),
            ("1.5m", r#""1.5m""#),
            ("10S", r#"unknown unit "S""#),
            ("1h 30m", r#"unknown unit "h ""#),
            ("5", "missing unit"),
            ("s", "expected a number"),
            ("300y", r#"duration out of range: "300y""#),
            ("99999999999999999999999999999999999999999s", "out of range"),
        ];
        for (input, want) in bad {
            let err = parse_duration(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn formats_durations_like_prometheus() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_micros(999), "0s"),
            (ms(15_000), "15s"),
            (ms(60_000), "1m"),
            (ms(90_000), "1m30s"),
            (ms(3_600_000), "1h"),
            (ms(500), "500ms"),
            (ms(1500), "1s500ms"),
            (ms(MS_PER_DAY), "1d"),
            (ms(MS_PER_WEEK), "1w"),
            (ms(14 * MS_PER_DAY), "2w"),
            (ms(90 * MS_PER_DAY), "90d"),
            (ms(MS_PER_YEAR), "1y"),
            (ms(730 * MS_PER_DAY), "2y"),
            (ms(MS_PER_YEAR + MS_PER_DAY), "366d"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(*d), *want, "{d:?}");
            if !d.is_zero() && d.as_micros() % 1000 == 0 {
                assert_eq!(parse_duration(want), Ok(*d), "round trip {want}");
            }
        }
    }

    #[test]
    fn parses_sizes_like_base2bytes() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("-0", 0),
            ("512B", 512),
            ("1KiB", 1024),
            ("1KB", 1024),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("1GiB", 1 << 30),
            ("1TB", 1 << 40),
            ("1EB", 1 << 60),
            ("1.5MB", 3 << 19),
            ("1MB512KB", (1 << 20) + (512 << 10)),
            (".5KB", 512),
            ("-1KB", 0),
        ];
        for (input, want) in ok {
            assert_eq!(parse_size(input), Ok(*want), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty size"),
            ("100", r#"unknown unit """#),
            ("1", r#"unknown unit """#),
            ("B", "expected a number"),
            ("1kB", r#"not a valid size: "1kB" (unknown unit "kB")"#),
            ("1M", r#"unknown unit "M""#),
            ("10mb", r#"unknown unit "mb""#),
            ("1MiB512KB", "unknown unit"),
            ("8EB", "size out of range"),
        ];
        for (input, want) in bad {
            let err = parse_size(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn serde_helpers_read_strings_and_integers() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(with = "serde_duration")]
            a: Duration,
            #[serde(default, with = "serde_duration_opt")]
            b: Option<Duration>,
            #[serde(default, with = "serde_duration_opt")]
            c: Option<Duration>,
            #[serde(with = "serde_size")]
            d: u64,
            #[serde(default, with = "serde_size_opt")]
            e: Option<u64>,
        }
        let t: T = yaml_serde::from_str("a: 1m30s\nb: 0\nd: 1KB\ne: 0\n").unwrap();
        assert_eq!(t.a, ms(90_000));
        assert_eq!(t.b, Some(Duration::ZERO));
        assert_eq!(t.c, None);
        assert_eq!(t.d, 1024);
        assert_eq!(t.e, Some(0));
        let err = yaml_serde::from_str::<T>("a: 1x\nd: 0\n").err().unwrap();
        assert!(
            err.to_string()
                .contains(r#"not a valid duration string: "1x""#),
            "{err}"
        );
    }
}
