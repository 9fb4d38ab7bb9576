//! Request parameters of the HTTP API: the merged form (POST body, then URL
//! query, as Go's `r.FormValue` sees it) and the time and duration formats
//! Prometheus accepts.

use axum::extract::{FromRequest, Query, Request};
use axum::http::{header, Method};
use axum::Form;

use super::ApiError;

/// A request's parameters, in order: POST form body first, then the URL
/// query string.
#[derive(Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Returns the first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Returns every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
            .map_err(|e| ApiError::bad_data(format!("invalid query string: {e}")))?;
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let mut pairs = Vec::new();
        if req.method() == Method::POST && is_form {
            let Form(body) = Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(|e| ApiError::bad_data(format!("invalid form body: {e}")))?;
            pairs = body;
        }
        pairs.extend(query);
        Ok(Params(pairs))
    }
}

/// Prometheus's `minTime` (what clients send for "from the beginning").
pub const PROM_MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// Prometheus's `maxTime` (what clients send for "until the end").
pub const PROM_MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;

/// Parses a time as Prometheus does: unix seconds as a float (rounded to
/// the millisecond) or RFC 3339. Returns milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || !s.bytes().any(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let ms = (f.trunc() * 1000.0) + (f.fract() * 1000.0).round();
        if ms < i64::MIN as f64 || ms > i64::MAX as f64 {
            return Err(err());
        }
        return Ok(ms as i64);
    }
    parse_rfc3339(s).ok_or_else(err)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; years may
/// have more than four digits and a sign. Saturates at the i64 range.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let (neg_year, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (year, rest) = rest.split_once('-')?;
    if year.len() < 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let year = if neg_year { -year } else { year };
    let b = rest.as_bytes();
    if b.len() < 15 || b[2] != b'-' || !matches!(b[5], b'T' | b't') || b[8] != b':' || b[11] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = rest.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (month, day) = (num(0..2)?, num(3..5)?);
    let (hour, min, sec) = (num(6..8)?, num(9..11)?, num(12..14)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut tail = &rest[14..];
    let mut nanos = 0i64;
    if let Some(frac) = tail.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = frac[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
        tail = &frac[digits..];
    }
    let offset_secs = match tail {
        "Z" | "z" => 0,
        _ => {
            let tb = tail.as_bytes();
            if tb.len() != 6 || !matches!(tb[0], b'+' | b'-') || tb[3] != b':' {
                return None;
            }
            let h: i64 = tail[1..3].parse().ok()?;
            let m: i64 = tail[4..6].parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if tb[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    let days = i128::from(days_from_civil(year, month, day));
    let secs = days * 86_400 + i128::from(hour * 3600 + min * 60 + sec - offset_secs);
    let ms = secs * 1000 + i128::from(nanos / 1_000_000);
    Some(ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a duration as Prometheus does: float seconds or a duration
/// string (`1h30m`, `15s`, `100ms`). Returns milliseconds, truncated.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid duration");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || !s.bytes().any(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let ns = f * 1e9;
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ns as i64 / 1_000_000);
    }
    parse_prom_duration_ms(s).ok_or_else(err)
}

/// Parses Prometheus duration syntax: integer and unit pairs from largest
/// to smallest unit, each at most once (`1d2h`, not `2h1d`).
pub fn parse_prom_duration_ms(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let ok = [
            ("1435781451.781", 1_435_781_451_781),
            ("1435781451", 1_435_781_451_000),
            ("0.0005", 1),
            ("-1.5", -1_500),
            ("2015-07-01T20:10:51.781Z", 1_435_781_451_781),
            ("2015-07-01T20:10:51Z", 1_435_781_451_000),
            ("2015-07-01T22:10:51.781123+02:00", 1_435_781_451_781),
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1_000),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("-292273086-05-16T16:47:06Z", PROM_MIN_TIME_MS),
            ("292277025-08-18T07:12:54.999999999Z", PROM_MAX_TIME_MS),
        ];
        for (s, want) in ok {
            assert_eq!(parse_time(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "x",
            "NaN",
            "Inf",
            "2015-07-01",
            "2015-02-30T00:00:00Z",
            "2015-07-01T20:10:51",
            "1e400",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(format!("cannot parse {bad:?} to a valid timestamp")),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("15", 15_000),
            ("0.5", 500),
            ("0", 0),
            ("-1", -1_000),
            ("15s", 15_000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("100ms", 100),
            ("1d2h", 93_600_000),
            ("1w", 604_800_000),
            ("0s", 0),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration_ms(s), Ok(want), "{s}");
        }
        for bad in ["", "s", "1x", "2h1d", "1h1h", "1.5h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
