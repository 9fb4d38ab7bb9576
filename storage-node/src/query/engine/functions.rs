//! Function calls, as Prometheus 2.42.
//!
//! A function of a range vector (`rate(x[5m])`, `max_over_time(q[1h:1m])`)
//! runs series by series: at each step its kernel sees the points of one
//! series in the window `[ref - range, ref]` and yields at most one value;
//! the result drops the metric name (but for `last_over_time`). Every other
//! function runs step by step on the vectors and scalars of its arguments.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{Call, Expr};

use scrapegrid_common::{Labels, METRIC_NAME};

use super::aggregate::quantile;
use super::{
    drop_metric_name, execution, offset_ms, Evaluator, Series, StepArg, StepOut, Value, Window,
};
use crate::error::{Error, Result};
use crate::index::MatchOp;
use crate::samples::Sample;

/// Kahan-Neumaier summation step, as Prometheus's `kahanSumInc`.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus's `extrapolatedRate`: `rate`, `increase` and `delta` over the
/// points of a window `[range_start, range_end]` of `range_ms`.
pub(super) fn extrapolated_rate(
    points: &[Sample],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut last_value = 0.0;
        for p in points {
            if p.v < last_value {
                result += last_value;
            }
            last_value = p.v;
        }
    }
    let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    result *= extrapolate_to / sampled_interval;
    if is_rate {
        result /= range_ms as f64 / 1000.0;
    }
    Some(result)
}

/// `irate` (`is_rate`) and `idelta`: from the last two points.
fn instant_rate(points: &[Sample], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let prev = points[points.len() - 2];
    let mut result = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept at `intercept_time`, as Prometheus's
/// `linearRegression` (Kahan sums; a constant series has slope 0).
fn linear_regression(points: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].v;
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn holt_winters(points: &[Sample], sf: f64, tf: f64) -> Result<Option<f64>> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(execution(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(execution(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if points.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, points[0].v);
    let mut b = points[1].v - points[0].v;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i - 1 != 0 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// Runs the kernel of a range-vector function on one window; `scalars` are
/// the function's other arguments at this step.
fn range_kernel(
    name: &str,
    points: &[Sample],
    w: &Window,
    ts: i64,
    scalars: &[f64],
) -> Result<Option<f64>> {
    let end = w.end(ts);
    let start = end - w.range;
    let values = || points.iter().map(|p| p.v);
    Ok(match name {
        "rate" => extrapolated_rate(points, start, end, w.range, true, true),
        "increase" => extrapolated_rate(points, start, end, w.range, true, false),
        "delta" => extrapolated_rate(points, start, end, w.range, false, false),
        "irate" => instant_rate(points, true),
        "idelta" => instant_rate(points, false),
        "deriv" => (points.len() >= 2).then(|| linear_regression(points, points[0].t).0),
        "predict_linear" => (points.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(points, ts);
            slope * scalars[0] + intercept
        }),
        "holt_winters" => holt_winters(points, scalars[0], scalars[1])?,
        "resets" => Some(points.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
        "changes" => Some(
            points
                .windows(2)
                .filter(|w| w[1].v != w[0].v && !(w[1].v.is_nan() && w[0].v.is_nan()))
                .count() as f64,
        ),
        "avg_over_time" => {
            // The running mean with Kahan compensation, as 2.42.
            let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
            for v in values() {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                (mean, c) = kahan_inc(v / count - mean / count, mean, c);
            }
            Some(if mean.is_infinite() { mean } else { mean + c })
        }
        "count_over_time" => Some(points.len() as f64),
        "max_over_time" => {
            Some(values().fold(points[0].v, |m, v| if v > m || m.is_nan() { v } else { m }))
        }
        "min_over_time" => {
            Some(values().fold(points[0].v, |m, v| if v < m || m.is_nan() { v } else { m }))
        }
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for v in values() {
                (sum, c) = kahan_inc(v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        "quantile_over_time" => {
            let mut v: Vec<f64> = values().collect();
            Some(quantile(scalars[0], &mut v))
        }
        "stddev_over_time" | "stdvar_over_time" => {
            let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for v in values() {
                count += 1.0;
                let delta = v - (mean + c_mean);
                (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
                (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
            }
            let var = (aux + c_aux) / count;
            Some(if name == "stddev_over_time" {
                var.sqrt()
            } else {
                var
            })
        }
        "last_over_time" => points.last().map(|p| p.v),
        "present_over_time" | "absent_over_time" => Some(1.0),
        _ => {
            return Err(Error::BadData(format!(
                "unknown function with a range argument: {name}"
            )))
        }
    })
}

/// The labels `absent` and `absent_over_time` give: the equality matchers
/// of a selector argument, but `__name__` and names matched more than once.
fn absent_labels(arg: &Expr) -> Labels {
    let vs = match arg {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let Ok(matchers) = super::matchers(vs) else {
        return Labels::new();
    };
    let mut b = Labels::new().builder();
    let mut empty = Vec::new();
    for m in &matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        match &m.op {
            MatchOp::Equal(v) if b.get(&m.name).is_none() => {
                b.set(m.name.clone(), v.clone());
            }
            _ => empty.push(m.name.clone()),
        }
    }
    for n in empty {
        b.del(&n);
    }
    b.labels()
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

/// A UTC calendar time, as Go's `time.Unix(sec, 0).UTC()` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Civil {
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
fn civil(seconds: f64) -> Option<Civil> {
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

fn date_fn(name: &str, t: Civil) -> f64 {
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

/// Go's `math.Max`: +Inf wins, then NaN.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else {
        x.max(y)
    }
}

/// Go's `math.Min`: -Inf wins, then NaN.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            x
        } else {
            y
        }
    } else {
        x.min(y)
    }
}

fn simple(name: &str, v: f64) -> Option<f64> {
    Some(match name {
        "abs" => v.abs(),
        "ceil" => v.ceil(),
        "floor" => v.floor(),
        "exp" => v.exp(),
        "sqrt" => v.sqrt(),
        "ln" => v.ln(),
        "log2" => v.log2(),
        "log10" => v.log10(),
        "acos" => v.acos(),
        "acosh" => v.acosh(),
        "asin" => v.asin(),
        "asinh" => v.asinh(),
        "atan" => v.atan(),
        "atanh" => v.atanh(),
        "cos" => v.cos(),
        "cosh" => v.cosh(),
        "sin" => v.sin(),
        "sinh" => v.sinh(),
        "tan" => v.tan(),
        "tanh" => v.tanh(),
        "deg" => v * 180.0 / std::f64::consts::PI,
        "rad" => v * std::f64::consts::PI / 180.0,
        "sgn" => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
        _ => return None,
    })
}

/// A bucket of a classic histogram.
#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Prometheus's `bucketQuantile`.
fn bucket_quantile(q: f64, mut buckets: Vec<Bucket>) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce buckets with the same upper bound.
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    // Make the counts monotonic.
    let mut max = f64::NEG_INFINITY;
    for b in &mut buckets {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|b| b.count < rank);
    if b == n {
        return buckets[n - 1].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let bucket_end = buckets[b].upper;
    let mut count = buckets[b].count;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn histogram_quantile(q: f64, vec: &[(&Labels, f64)]) -> StepOut {
    // Buckets grouped by their labels without `le` (the metric name kept,
    // as Prometheus keys them); the result drops both.
    let mut order: Vec<Vec<(String, String)>> = Vec::new();
    type Key = Vec<(String, String)>;
    let mut groups: HashMap<Key, (Labels, Vec<Bucket>)> = HashMap::new();
    for &(labels, v) in vec {
        let Some(upper) = labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let key: Vec<(String, String)> = labels
            .iter()
            .filter(|l| l.name != "le")
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            let mut b = labels.builder();
            b.del(METRIC_NAME);
            b.del("le");
            (b.labels(), Vec::new())
        });
        entry.1.push(Bucket { upper, count: v });
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .filter(|(_, b)| !b.is_empty())
        .map(|(labels, buckets)| (labels, bucket_quantile(q, buckets)))
        .collect()
}

/// Go's `strconv.ParseFloat` for the spellings bucket bounds use.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if t.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

impl Evaluator<'_> {
    pub(super) fn call(&self, c: &Call) -> Result<Value> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| unwrap_parens(a)).collect();
        match name {
            "time" => {
                return Ok(Value::Scalar(
                    self.steps().map(|t| t as f64 / 1000.0).collect(),
                ))
            }
            "pi" => return Ok(Value::Scalar(vec![std::f64::consts::PI; self.step_count()])),
            "timestamp" => {
                if let Expr::VectorSelector(vs) = args[0] {
                    return self.timestamp_of_selector(vs);
                }
            }
            _ => {}
        }
        // A range argument: a range selector or a subquery.
        if let Some(i) = args
            .iter()
            .position(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_)))
        {
            return self.call_range(name, &args, i);
        }
        let values: Vec<Value> = args.iter().map(|a| self.eval(a)).collect::<Result<_>>()?;
        let first_arg = args.first().copied();
        let out = self.step_wise(&values, |step, ts| {
            self.instant_call(name, step, ts, first_arg)
        })?;
        match name {
            "scalar" => {
                let mut v = vec![f64::NAN; self.step_count()];
                for s in out {
                    for p in s.points {
                        v[((p.t - self.start) / self.interval) as usize] = p.v;
                    }
                }
                Ok(Value::Scalar(v))
            }
            _ => Ok(Value::Vector(out)),
        }
    }

    /// `timestamp(selector)`: the time of the sample each series shows.
    fn timestamp_of_selector(&self, vs: &promql_parser::parser::VectorSelector) -> Result<Value> {
        let offset = offset_ms(&vs.offset);
        let (lo, hi) = self.ref_range(&vs.at, offset);
        let lookback = self.opts.lookback_ms;
        let mut out = Vec::new();
        for s in self.select(vs, lo, hi, lookback)? {
            let points: Vec<Sample> = self
                .steps()
                .filter_map(|t| {
                    let r = self.ref_time(&vs.at, offset, t);
                    let end = s.samples.partition_point(|p| p.t <= r);
                    let last = s.samples[..end].last()?;
                    (last.t >= r - lookback && !scrapegrid_proto::is_stale_marker(last.v))
                        .then_some(Sample {
                            t,
                            v: last.t as f64 / 1000.0,
                        })
                })
                .collect();
            if !points.is_empty() {
                out.push(Series {
                    labels: drop_metric_name(&s.labels),
                    points,
                });
            }
        }
        Ok(Value::Vector(out))
    }

    fn call_range(&self, name: &str, args: &[&Expr], i: usize) -> Result<Value> {
        let (series, window) = match args[i] {
            Expr::MatrixSelector(ms) => self.range_source_selector(ms)?,
            Expr::Subquery(sq) => self.range_source_subquery(sq)?,
            _ => unreachable!("a range argument"),
        };
        let scalars: Vec<Vec<f64>> = args
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| match self.eval(a)? {
                Value::Scalar(v) => Ok(v),
                _ => Err(Error::BadData(format!(
                    "expected a scalar argument to {name}"
                ))),
            })
            .collect::<Result<_>>()?;
        let steps: Vec<i64> = self.steps().collect();
        if name == "absent_over_time" {
            let mut found = vec![false; steps.len()];
            for s in &series {
                for (k, &ts) in steps.iter().enumerate() {
                    if !window.points(&s.points, ts).is_empty() {
                        found[k] = true;
                    }
                }
            }
            let points: Vec<Sample> = steps
                .iter()
                .zip(&found)
                .filter(|(_, f)| !**f)
                .map(|(&t, _)| Sample { t, v: 1.0 })
                .collect();
            if points.is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            return Ok(Value::Vector(vec![Series {
                labels: absent_labels(args[i]),
                points,
            }]));
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut total = 0usize;
        let mut step_scalars = vec![0.0; scalars.len()];
        for s in series {
            self.check_deadline()?;
            let mut points = Vec::new();
            for (k, &ts) in steps.iter().enumerate() {
                let window_points = window.points(&s.points, ts);
                if window_points.is_empty() {
                    continue;
                }
                for (x, sc) in step_scalars.iter_mut().zip(&scalars) {
                    *x = sc[k];
                }
                if let Some(v) = range_kernel(name, window_points, &window, ts, &step_scalars)? {
                    points.push(Sample { t: ts, v });
                }
            }
            if points.is_empty() {
                continue;
            }
            let labels = if name == "last_over_time" {
                s.labels
            } else {
                drop_metric_name(&s.labels)
            };
            if !seen.insert(labels.clone()) {
                return Err(execution(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
            total += points.len();
            self.check_samples(total)?;
            out.push(Series { labels, points });
        }
        Ok(Value::Vector(out))
    }

    /// One step of a function of instant vectors and scalars.
    fn instant_call(
        &self,
        name: &str,
        args: &[StepArg<'_>],
        ts: i64,
        first_arg: Option<&Expr>,
    ) -> Result<StepOut> {
        let vector = |i: usize| match args.get(i) {
            Some(StepArg::Vector(v)) => Ok(*v),
            _ => Err(Error::BadData(format!(
                "expected an instant vector argument to {name}"
            ))),
        };
        let scalar = |i: usize| match args.get(i) {
            Some(StepArg::Scalar(v)) => Ok(*v),
            _ => Err(Error::BadData(format!(
                "expected a scalar argument to {name}"
            ))),
        };
        let string = |i: usize| match args.get(i) {
            Some(StepArg::String(s)) => Ok(*s),
            _ => Err(Error::BadData(format!(
                "expected a string argument to {name}"
            ))),
        };
        let map = |f: &dyn Fn(f64) -> f64| -> Result<StepOut> {
            Ok(vector(0)?
                .iter()
                .map(|(l, v)| (drop_metric_name(l), f(*v)))
                .collect())
        };
        if let Some(probe) = simple(name, 0.0) {
            let _ = probe;
            return map(&|v| simple(name, v).unwrap_or(f64::NAN));
        }
        match name {
            "round" => {
                let to_nearest = if args.len() > 1 { scalar(1)? } else { 1.0 };
                let inv = 1.0 / to_nearest;
                map(&|v| (v * inv + 0.5).floor() / inv)
            }
            "clamp" => {
                let (min, max) = (scalar(1)?, scalar(2)?);
                if max < min {
                    return Ok(Vec::new());
                }
                map(&|v| go_max(min, go_min(max, v)))
            }
            "clamp_max" => {
                let max = scalar(1)?;
                map(&|v| go_min(max, v))
            }
            "clamp_min" => {
                let min = scalar(1)?;
                map(&|v| go_max(min, v))
            }
            "vector" => Ok(vec![(Labels::new(), scalar(0)?)]),
            "scalar" => {
                let v = vector(0)?;
                Ok(if v.len() == 1 {
                    vec![(Labels::new(), v[0].1)]
                } else {
                    vec![(Labels::new(), f64::NAN)]
                })
            }
            "timestamp" => Ok(vector(0)?
                .iter()
                .map(|(l, _)| (drop_metric_name(l), ts as f64 / 1000.0))
                .collect()),
            "sort" | "sort_desc" => {
                let mut v: StepOut = vector(0)?.iter().map(|(l, v)| ((*l).clone(), *v)).collect();
                let desc = name == "sort_desc";
                v.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if desc => b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal),
                    _ => a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal),
                });
                Ok(v)
            }
            "absent" => {
                if vector(0)?.is_empty() {
                    Ok(vec![(
                        first_arg.map(absent_labels).unwrap_or_default(),
                        1.0,
                    )])
                } else {
                    Ok(Vec::new())
                }
            }
            "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour"
            | "minute" | "month" | "year" => {
                if args.is_empty() {
                    let t = civil((ts / 1000) as f64)
                        .map(|t| date_fn(name, t))
                        .unwrap_or(f64::NAN);
                    return Ok(vec![(Labels::new(), t)]);
                }
                map(&|v| civil(v).map(|t| date_fn(name, t)).unwrap_or(f64::NAN))
            }
            "label_replace" => {
                let (dst, repl, src, regex) = (string(1)?, string(2)?, string(3)?, string(4)?);
                let re = regex::Regex::new(&format!("^(?s:{regex})$")).map_err(|_| {
                    execution(format!(
                        "invalid regular expression in label_replace(): {regex}"
                    ))
                })?;
                if !scrapegrid_common::relabel::is_valid_label_name(dst) {
                    return Err(execution(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                Ok(vector(0)?
                    .iter()
                    .map(|(l, v)| {
                        let src_val = l.get(src).unwrap_or("");
                        let labels = match re.captures(src_val) {
                            None => (*l).clone(),
                            Some(caps) => {
                                let mut res = String::new();
                                caps.expand(repl, &mut res);
                                let mut b = l.builder();
                                b.del(dst);
                                if !res.is_empty() {
                                    b.set(dst.to_string(), res);
                                }
                                b.labels()
                            }
                        };
                        (labels, *v)
                    })
                    .collect())
            }
            "label_join" => {
                let (dst, sep) = (string(1)?, string(2)?);
                let mut srcs = Vec::new();
                for i in 3..args.len() {
                    let s = string(i)?;
                    if !scrapegrid_common::relabel::is_valid_label_name(s) {
                        return Err(execution(format!(
                            "invalid source label name in label_join(): {s}"
                        )));
                    }
                    srcs.push(s);
                }
                if !scrapegrid_common::relabel::is_valid_label_name(dst) {
                    return Err(execution(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                Ok(vector(0)?
                    .iter()
                    .map(|(l, v)| {
                        let joined: Vec<&str> =
                            srcs.iter().map(|s| l.get(s).unwrap_or("")).collect();
                        let joined = joined.join(sep);
                        let mut b = l.builder();
                        if joined.is_empty() {
                            b.del(dst);
                        } else {
                            b.set(dst.to_string(), joined);
                        }
                        (b.labels(), *v)
                    })
                    .collect())
            }
            "histogram_quantile" => Ok(histogram_quantile(scalar(0)?, vector(1)?)),
            // Native-histogram functions: there are no native histograms here.
            "histogram_count" | "histogram_sum" | "histogram_fraction" => Ok(Vec::new()),
            _ => Err(Error::BadData(format!(
                "function {name:?} is not supported"
            ))),
        }
    }
}
