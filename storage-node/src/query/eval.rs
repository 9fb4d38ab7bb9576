//! Evaluating selectors at an instant and over a range of steps.
//!
//! An instant vector selector at reference time `r` sees the last sample in
//! `(r - 5m, r]`, and nothing when that sample is a stale marker. A range
//! vector selector `sel[d]` at `r` sees the raw samples in `(r - d, r]`
//! without stale markers. `offset` and `@` move `r` away from the
//! evaluation time ([`Selector::ref_time`]); results keep the evaluation
//! time, as in Prometheus.

use scrapegrid_common::Labels;
use scrapegrid_proto::is_stale_marker;

use super::promql::{Expr, Selector};
use super::select::SeriesSource;
use crate::error::{Error, Result};
use crate::samples::Sample;

/// How far back an instant selector looks for a sample (Prometheus's
/// `--query.lookback-delta` default).
pub const LOOKBACK_DELTA_MS: i64 = 5 * 60 * 1000;

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One sample per series, at the evaluation time.
    Vector(Vec<(Labels, Sample)>),
    /// Samples per series: raw for a range selector, one per step for a
    /// range query.
    Matrix(Vec<(Labels, Vec<Sample>)>),
    Scalar(Sample),
    /// A string at the evaluation time.
    String(i64, String),
}

/// Returns the value an instant selector sees at `ref_t` in `samples`
/// (sorted by time).
pub fn instant_value(samples: &[Sample], ref_t: i64, lookback_ms: i64) -> Option<f64> {
    let end = samples.partition_point(|s| s.t <= ref_t);
    let last = samples[..end].last()?;
    if last.t <= ref_t.saturating_sub(lookback_ms) || is_stale_marker(last.v) {
        return None;
    }
    Some(last.v)
}

/// Returns the samples a range selector of `range_ms` sees at `ref_t`.
pub fn range_values(samples: &[Sample], ref_t: i64, range_ms: i64) -> Vec<Sample> {
    let lo = samples.partition_point(|s| s.t <= ref_t.saturating_sub(range_ms));
    let hi = samples.partition_point(|s| s.t <= ref_t);
    samples[lo.min(hi)..hi]
        .iter()
        .filter(|s| !is_stale_marker(s.v))
        .copied()
        .collect()
}

/// Evaluates `expr` at `t` (an instant query).
pub fn eval_instant(src: &dyn SeriesSource, expr: &Expr, t: i64) -> Result<Value> {
    match expr {
        Expr::Number(v) => Ok(Value::Scalar(Sample { t, v: *v })),
        Expr::String(s) => Ok(Value::String(t, s.clone())),
        Expr::Vector(sel) => {
            let r = sel.ref_time(t, t, t);
            let mint = r.saturating_sub(LOOKBACK_DELTA_MS).saturating_add(1);
            let mut out = Vec::new();
            for s in src.select(&sel.matchers, mint, r)? {
                if let Some(v) = instant_value(&s.samples, r, LOOKBACK_DELTA_MS) {
                    out.push((s.labels, Sample { t, v }));
                }
            }
            Ok(Value::Vector(out))
        }
        Expr::Matrix(sel, range_ms) => {
            let r = sel.ref_time(t, t, t);
            let mint = r.saturating_sub(*range_ms).saturating_add(1);
            let mut out = Vec::new();
            for s in src.select(&sel.matchers, mint, r)? {
                let points = range_values(&s.samples, r, *range_ms);
                if !points.is_empty() {
                    out.push((s.labels, points));
                }
            }
            Ok(Value::Matrix(out))
        }
    }
}

/// Returns the evaluation times of a range query.
fn steps(start: i64, end: i64, step: i64) -> impl Iterator<Item = i64> {
    debug_assert!(step > 0);
    (0..)
        .map_while(move |i: i64| i.checked_mul(step).and_then(|d| start.checked_add(d)))
        .take_while(move |&t| t <= end)
}

/// Evaluates `expr` at every step from `start` to `end` (a range query).
/// The caller has checked that `start <= end` and `step > 0`.
pub fn eval_range(
    src: &dyn SeriesSource,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value> {
    match expr {
        Expr::Number(v) => Ok(Value::Matrix(vec![(
            Labels::new(),
            steps(start, end, step)
                .map(|t| Sample { t, v: *v })
                .collect(),
        )])),
        Expr::String(_) => Err(invalid_range_type("string")),
        Expr::Matrix(..) => Err(invalid_range_type("range vector")),
        Expr::Vector(sel) => eval_range_selector(src, sel, start, end, step),
    }
}

fn invalid_range_type(kind: &str) -> Error {
    Error::BadData(format!(
        "invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"
    ))
}

fn eval_range_selector(
    src: &dyn SeriesSource,
    sel: &Selector,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value> {
    let (r1, r2) = (
        sel.ref_time(start, start, end),
        sel.ref_time(end, start, end),
    );
    let mint = r1
        .min(r2)
        .saturating_sub(LOOKBACK_DELTA_MS)
        .saturating_add(1);
    let maxt = r1.max(r2);
    let mut out = Vec::new();
    for s in src.select(&sel.matchers, mint, maxt)? {
        let points: Vec<Sample> = steps(start, end, step)
            .filter_map(|t| {
                let r = sel.ref_time(t, start, end);
                instant_value(&s.samples, r, LOOKBACK_DELTA_MS).map(|v| Sample { t, v })
            })
            .collect();
        if !points.is_empty() {
            out.push((s.labels, points));
        }
    }
    Ok(Value::Matrix(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::promql::parse;
    use crate::query::select::Series;
    use scrapegrid_proto::stale_marker;

    const MIN: i64 = 60_000;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn instant_value_looks_back_five_minutes() {
        let samples = [
            s(0, 1.0),
            s(MIN, 2.0),
            s(2 * MIN, stale_marker()),
            s(10 * MIN, 4.0),
        ];
        let lb = LOOKBACK_DELTA_MS;
        assert_eq!(
            instant_value(&samples, -1, lb),
            None,
            "before the first sample"
        );
        assert_eq!(
            instant_value(&samples, 0, lb),
            Some(1.0),
            "exactly at a sample"
        );
        assert_eq!(instant_value(&samples, MIN + 1, lb), Some(2.0));
        assert_eq!(
            instant_value(&samples, 2 * MIN, lb),
            None,
            "stale marker hides the series"
        );
        assert_eq!(instant_value(&samples, 5 * MIN, lb), None, "still stale");
        assert_eq!(instant_value(&samples, 10 * MIN, lb), Some(4.0));
        assert_eq!(
            instant_value(&samples, 15 * MIN - 1, lb),
            Some(4.0),
            "inside (t-5m, t]"
        );
        assert_eq!(
            instant_value(&samples, 15 * MIN, lb),
            None,
            "t-5m itself is excluded"
        );
        let nan = [s(0, f64::NAN)];
        assert!(
            instant_value(&nan, 0, lb).unwrap().is_nan(),
            "a plain NaN is a value"
        );
    }

    #[test]
    fn range_values_are_left_open_and_skip_stale_markers() {
        let samples = [
            s(0, 1.0),
            s(MIN, 2.0),
            s(2 * MIN, stale_marker()),
            s(3 * MIN, 3.0),
        ];
        assert_eq!(
            range_values(&samples, 3 * MIN, 3 * MIN),
            [s(MIN, 2.0), s(3 * MIN, 3.0)]
        );
        assert_eq!(
            range_values(&samples, 3 * MIN, 3 * MIN + 1),
            [s(0, 1.0), s(MIN, 2.0), s(3 * MIN, 3.0)]
        );
        assert_eq!(range_values(&samples, 2 * MIN, MIN), []);
        assert_eq!(range_values(&samples, -MIN, MIN), []);
    }

    fn source() -> Vec<Series> {
        vec![
            Series {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "a")]),
                samples: vec![s(0, 1.0), s(MIN, 0.0), s(2 * MIN, stale_marker())],
            },
            Series {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "b")]),
                samples: vec![s(MIN, 5.0)],
            },
        ]
    }

    #[test]
    fn instant_queries() {
        let src = source();
        let eval = |q: &str, t: i64| eval_instant(&src, &parse(q).unwrap(), t).unwrap();
        let Value::Vector(v) = eval("up", MIN) else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1, s(MIN, 0.0));
        assert_eq!(v[1].1, s(MIN, 5.0));
        // The stale marker at 2m hides job a; job b is still in lookback.
        let Value::Vector(v) = eval("up", 2 * MIN) else {
            panic!()
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0.get("job"), Some("b"));
        // offset reads one minute back but reports the evaluation time.
        let Value::Vector(v) = eval(r#"up{job="a"} offset 1m"#, 2 * MIN) else {
            panic!()
        };
        assert_eq!(v, [(src[0].labels.clone(), s(2 * MIN, 0.0))]);
        let Value::Matrix(m) = eval(r#"up{job="a"}[5m]"#, 2 * MIN) else {
            panic!()
        };
        assert_eq!(m, [(src[0].labels.clone(), vec![s(0, 1.0), s(MIN, 0.0)])]);
        assert_eq!(eval("2", 7), Value::Scalar(s(7, 2.0)));
        assert_eq!(eval(r#""x""#, 7), Value::String(7, "x".into()));
    }

    #[test]
    fn range_queries() {
        let src = source();
        let Value::Matrix(m) = eval_range(&src, &parse("up").unwrap(), 0, 3 * MIN, MIN).unwrap()
        else {
            panic!()
        };
        assert_eq!(m[0].1, [s(0, 1.0), s(MIN, 0.0)], "stale from 2m on");
        assert_eq!(m[1].1, [s(MIN, 5.0), s(2 * MIN, 5.0), s(3 * MIN, 5.0)]);
        let Value::Matrix(m) = eval_range(&src, &parse("3").unwrap(), 0, 10, 5).unwrap() else {
            panic!()
        };
        assert_eq!(m, [(Labels::new(), vec![s(0, 3.0), s(5, 3.0), s(10, 3.0)])]);
        for q in ["up[5m]", r#""x""#] {
            assert!(matches!(
                eval_range(&src, &parse(q).unwrap(), 0, 10, 5),
                Err(Error::BadData(_))
            ));
        }
    }
}
