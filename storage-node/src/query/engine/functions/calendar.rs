//! The date functions (`day_of_week`, `hour`, ...): calendar fields of a
//! Unix time exactly as Go computes them, odd inputs included.

/// A UTC calendar time, as Go's `time.Unix(sec, 0).UTC()` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Civil {
    year: i64,
    /// 1 to 12.
    month: i64,
    /// 1 to 31.
    day: i64,
    hour: i64,
    minute: i64,
    /// 0 (Sunday) to 6.
    weekday: i64,
    /// 1 to 366.
    yday: i64,
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Go's `int64(v)` on amd64: truncation, and the "integer indefinite"
/// (the smallest int64) for NaN and values out of range.
fn go_int64(v: f64) -> i64 {
    // 2^63 is exactly representable; the range is [-2^63, 2^63).
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || !(-TWO_63..TWO_63).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

/// The calendar time of `seconds` since the epoch exactly as Go 1.19's
/// `time.Unix(int64(seconds), 0).UTC()` computes it: through its "absolute"
/// time in wrapping unsigned arithmetic, so NaN and huge values give the
/// same (odd) dates Prometheus does.
pub(super) fn civil(seconds: f64) -> Option<Civil> {
    const SECS_PER_DAY: u64 = 86_400;
    const DAYS_PER_400: u64 = 365 * 400 + 97;
    const DAYS_PER_100: u64 = 365 * 100 + 24;
    const DAYS_PER_4: u64 = 365 * 4 + 1;
    const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
    // unixToInternal + internalToAbsolute.
    const UNIX_TO_ABSOLUTE: i64 = 9_223_372_028_715_321_600;
    const DAYS_BEFORE: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
    let abs = go_int64(seconds).wrapping_add(UNIX_TO_ABSOLUTE) as u64;
    let mut d = abs / SECS_PER_DAY;
    let mut n = d / DAYS_PER_400;
    let mut y = 400 * n;
    d -= DAYS_PER_400 * n;
    n = d / DAYS_PER_100;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100 * n;
    n = d / DAYS_PER_4;
    y += 4 * n;
    d -= DAYS_PER_4 * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
    let yday = d as i64;
    let mut day = yday;
    let (month, day) = if is_leap(year) && day == 31 + 29 - 1 {
        (2, 29)
    } else {
        if is_leap(year) && day > 31 + 29 - 1 {
            day -= 1;
        }
        let mut month = day / 31;
        let end = DAYS_BEFORE[(month + 1) as usize];
        let begin = if day >= end {
            month += 1;
            end
        } else {
            DAYS_BEFORE[month as usize]
        };
        (month + 1, day - begin + 1)
    };
    // Go's Monday is 1; the absolute epoch is a Monday (wrapping, as Go).
    let weekday = (abs.wrapping_add(SECS_PER_DAY) % (7 * SECS_PER_DAY) / SECS_PER_DAY) as i64;
    Some(Civil {
        year,
        month,
        day,
        hour: ((abs % SECS_PER_DAY) / 3600) as i64,
        minute: ((abs % 3600) / 60) as i64,
        weekday,
        yday: yday + 1,
    })
}

pub(super) fn date_fn(name: &str, t: Civil) -> f64 {
    (match name {
        "day_of_month" => t.day,
        "day_of_week" => t.weekday,
        "day_of_year" => t.yday,
        "days_in_month" => days_in_month(t.year, t.month),
        "hour" => t.hour,
        "minute" => t.minute,
        "month" => t.month,
        _ => t.year,
    }) as f64
}
