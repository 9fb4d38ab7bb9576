//! The kernels of the range-vector functions: one window of one series
//! in, at most one value out. As in Prometheus 2.42, only `rate`,
//! `increase` and `delta` compute on native histograms; the others read a
//! histogram point as its float value, 0.

use scrapegrid_common::histogram::FloatHistogram;

use super::super::aggregate::quantile;
use super::super::{execution, Hist, Point};
use super::Window;
use crate::error::{Error, Result};

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
/// Over native histograms (the first point one), every point must be a
/// histogram and the result is a histogram; over floats, every point must
/// be a float. A mix gives nothing.
pub(super) fn extrapolated_rate(
    points: &[Point],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<(f64, Option<Hist>)> {
    if points.len() < 2 {
        return None;
    }
    let first = &points[0];
    let last = &points[points.len() - 1];
    let mut result = 0.0;
    let mut histogram = None;
    if first.h.is_some() {
        histogram = Some(histogram_rate(points, is_counter)?);
    } else {
        result = last.v - first.v;
        let mut prev = first.v;
        for p in &points[1..] {
            if p.h.is_some() {
                return None;
            }
            if !is_counter {
                continue;
            }
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
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
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= go_seconds(range_ms);
    }
    match &mut histogram {
        None => result *= factor,
        Some(h) => {
            h.scale(factor);
        }
    }
    Some((result, histogram.map(Hist::new)))
}

/// A duration of `ms` milliseconds in seconds as Go's `Duration.Seconds`
/// computes it (whole seconds plus the nanoseconds divided by 1e9: for
/// some durations one ulp away from `ms / 1000`).
fn go_seconds(ms: i64) -> f64 {
    let (sec, rest_ms) = (ms / 1000, ms % 1000);
    sec as f64 + (rest_ms * 1_000_000) as f64 / 1e9
}

/// 2.42's `histogramRate`: the last histogram minus the first, in the
/// lowest schema of the window, with counter resets added back (for
/// counters), compacted. `None` when a point is a float.
fn histogram_rate(points: &[Point], is_counter: bool) -> Option<FloatHistogram> {
    let first = points[0].h.as_deref()?;
    let last = points[points.len() - 1].h.as_deref()?;
    let mut min_schema = first.schema.min(last.schema);
    for p in &points[1..points.len() - 1] {
        let curr = p.h.as_deref()?;
        if is_counter && curr.schema < min_schema {
            min_schema = curr.schema;
        }
    }
    let mut h = last.copy_to_schema(min_schema);
    h.sub(first);
    if is_counter {
        let mut prev = first;
        for p in &points[1..] {
            let curr = p.h.as_deref()?;
            if curr.detect_reset(prev) {
                h.add(prev);
            }
            prev = curr;
        }
    }
    h.compact();
    Some(h)
}

/// `irate` (`is_rate`) and `idelta`: from the last two points.
fn instant_rate(points: &[Point], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = &points[points.len() - 1];
    let prev = &points[points.len() - 2];
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
fn linear_regression(points: &[Point], intercept_time: i64) -> (f64, f64) {
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

fn holt_winters(points: &[Point], sf: f64, tf: f64) -> Result<Option<f64>> {
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
pub(super) fn range_kernel(
    name: &str,
    points: &[Point],
    w: &Window,
    ts: i64,
    scalars: &[f64],
) -> Result<Option<(f64, Option<Hist>)>> {
    let end = w.end(ts);
    let start = end - w.range;
    match name {
        "rate" => return Ok(extrapolated_rate(points, start, end, w.range, true, true)),
        "increase" => return Ok(extrapolated_rate(points, start, end, w.range, true, false)),
        "delta" => return Ok(extrapolated_rate(points, start, end, w.range, false, false)),
        _ => {}
    }
    let values = || points.iter().map(|p| p.v);
    let v = match name {
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
    };
    Ok(v.map(|v| (v, None)))
}
