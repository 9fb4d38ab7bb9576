//! Instant and range queries: the engine's result in the shape the HTTP
//! API returns (a vector at the query time, or a matrix sorted by labels).
//!
//! The engine's semantics are in [`super::engine`].

use promql_parser::parser::Expr;
use scrapegrid_common::Labels;

use super::engine::{self, EngineOptions, Point};
use super::select::SeriesSource;
use crate::error::{Error, Result};
use crate::samples::Sample;

/// How far back an instant selector looks for a sample (Prometheus's
/// `--query.lookback-delta` default).
pub const LOOKBACK_DELTA_MS: i64 = 5 * 60 * 1000;

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One point per series (a float or a native histogram), at the
    /// evaluation time.
    Vector(Vec<(Labels, Point)>),
    /// Points per series: raw for a range selector, one per step for a
    /// range query.
    Matrix(Vec<(Labels, Vec<Point>)>),
    Scalar(Sample),
    /// A string at the evaluation time.
    String(i64, String),
}

pub use super::engine::instant_value;

/// Evaluates `expr` at `t` (an instant query).
pub fn eval_instant(
    src: &dyn SeriesSource,
    opts: EngineOptions,
    expr: &Expr,
    t: i64,
) -> Result<Value> {
    Ok(match engine::evaluate(src, opts, expr, t, t, 1)? {
        engine::Value::Scalar(v) => Value::Scalar(Sample { t, v: v[0] }),
        engine::Value::String(s) => Value::String(t, s),
        engine::Value::Vector(series) => Value::Vector(
            series
                .into_iter()
                .filter_map(|s| {
                    let p = s.points.into_iter().next()?;
                    Some((s.labels, Point { t, ..p }))
                })
                .collect(),
        ),
        engine::Value::Matrix(series) => {
            Value::Matrix(series.into_iter().map(|s| (s.labels, s.points)).collect())
        }
    })
}

/// Evaluates `expr` at every step from `start` to `end` (a range query).
/// The caller has checked that `start <= end` and `step > 0`.
pub fn eval_range(
    src: &dyn SeriesSource,
    opts: EngineOptions,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value> {
    let mut out: Vec<(Labels, Vec<Point>)> =
        match engine::evaluate(src, opts, expr, start, end, step)? {
            engine::Value::Scalar(v) => {
                let points = (0..)
                    .map(|i: i64| start + i * step)
                    .zip(v)
                    .map(|(t, v)| Point::float(t, v))
                    .collect();
                vec![(Labels::new(), points)]
            }
            engine::Value::Vector(series) => {
                series.into_iter().map(|s| (s.labels, s.points)).collect()
            }
            engine::Value::String(_) => return Err(invalid_range_type("string")),
            engine::Value::Matrix(_) => return Err(invalid_range_type("range vector")),
        };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Matrix(out))
}

fn invalid_range_type(kind: &str) -> Error {
    Error::BadData(format!(
        "invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"
    ))
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

    fn pt(t: i64, v: f64) -> Point {
        Point::float(t, v)
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
            instant_value(&samples, 15 * MIN, lb),
            Some(4.0),
            "t-5m itself is included, as in Prometheus 2.x"
        );
        assert_eq!(
            instant_value(&samples, 15 * MIN + 1, lb),
            None,
            "outside [t-5m, t]"
        );
        let nan = [s(0, f64::NAN)];
        assert!(
            instant_value(&nan, 0, lb).unwrap().is_nan(),
            "a plain NaN is a value"
        );
    }

    fn source() -> Vec<Series> {
        vec![
            Series {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "a")]),
                samples: vec![s(0, 1.0), s(MIN, 0.0), s(2 * MIN, stale_marker())],
                histograms: vec![],
            },
            Series {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "b")]),
                samples: vec![s(MIN, 5.0)],
                histograms: vec![],
            },
        ]
    }

    #[test]
    fn instant_queries() {
        let src = source();
        let eval = |q: &str, t: i64| {
            eval_instant(&src, EngineOptions::default(), &parse(q).unwrap(), t).unwrap()
        };
        let Value::Vector(v) = eval("up", MIN) else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1, pt(MIN, 0.0));
        assert_eq!(v[1].1, pt(MIN, 5.0));
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
        assert_eq!(v, [(src[0].labels.clone(), pt(2 * MIN, 0.0))]);
        let Value::Matrix(m) = eval(r#"up{job="a"}[5m]"#, 2 * MIN) else {
            panic!()
        };
        assert_eq!(m, [(src[0].labels.clone(), vec![pt(0, 1.0), pt(MIN, 0.0)])]);
        assert_eq!(eval("2", 7), Value::Scalar(s(7, 2.0)));
        assert_eq!(eval(r#""x""#, 7), Value::String(7, "x".into()));
    }

    #[test]
    fn range_queries() {
        let src = source();
        let Value::Matrix(m) = eval_range(
            &src,
            EngineOptions::default(),
            &parse("up").unwrap(),
            0,
            3 * MIN,
            MIN,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(m[0].1, [pt(0, 1.0), pt(MIN, 0.0)], "stale from 2m on");
        assert_eq!(m[1].1, [pt(MIN, 5.0), pt(2 * MIN, 5.0), pt(3 * MIN, 5.0)]);
        let Value::Matrix(m) = eval_range(
            &src,
            EngineOptions::default(),
            &parse("3").unwrap(),
            0,
            10,
            5,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            m,
            [(Labels::new(), vec![pt(0, 3.0), pt(5, 3.0), pt(10, 3.0)])]
        );
        for q in ["up[5m]", r#""x""#] {
            assert!(matches!(
                eval_range(&src, EngineOptions::default(), &parse(q).unwrap(), 0, 10, 5),
                Err(Error::BadData(_))
            ));
        }
    }
}
