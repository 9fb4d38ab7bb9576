//! Function calls, as Prometheus 2.42.
//!
//! A function of a range vector (`rate(x[5m])`, `max_over_time(q[1h:1m])`)
//! runs series by series: at each step its kernel sees the points of one
//! series in the window `[ref - range, ref]` and yields at most one value;
//! the result drops the metric name (but for `last_over_time`). Every other
//! function runs step by step on the vectors and scalars of its arguments.
//!
//! Files: this one dispatches calls and holds the element-wise math;
//! [`range`] the range-vector kernels; [`calendar`] the date functions;
//! [`histogram`] `histogram_quantile`.

mod calendar;
mod histogram;
mod native_histogram;
mod range;

use promql_parser::parser::{Call, Expr};

use scrapegrid_common::{Labels, METRIC_NAME};

use super::{
    drop_metric_name, execution, Evaluator, Point, Series, StepArg, StepOut, Value, Window,
};
use crate::error::{Error, Result};
use crate::index::MatchOp;
use calendar::{civil, date_fn};
use histogram::histogram_quantile;
use range::range_kernel;

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
                    return self.instant_selector(
                        vs,
                        |p| Point::float(p.t, p.t as f64 / 1000.0),
                        true,
                    );
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
            let points: Vec<Point> = steps
                .iter()
                .zip(&found)
                .filter(|(_, f)| !**f)
                .map(|(&t, _)| Point::float(t, 1.0))
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
        let mut total = 0usize;
        let mut step_scalars = vec![0.0; scalars.len()];
        for s in series {
            self.check_deadline()?;
            // One point per step at most: sized once, not doubled (a range
            // query's output is as large as its input).
            let mut points = Vec::with_capacity(steps.len());
            for (k, &ts) in steps.iter().enumerate() {
                let window_points = window.points(&s.points, ts);
                if window_points.is_empty() {
                    continue;
                }
                for (x, sc) in step_scalars.iter_mut().zip(&scalars) {
                    *x = sc[k];
                }
                if let Some((v, h)) = range_kernel(name, window_points, &window, ts, &step_scalars)?
                {
                    points.push(Point { t: ts, v, h });
                }
            }
            if points.is_empty() {
                continue;
            }
            if points.len() < points.capacity() / 2 {
                points.shrink_to_fit();
            }
            let labels = if name == "last_over_time" {
                s.labels
            } else {
                drop_metric_name(&s.labels)
            };
            total += points.len();
            self.check_samples(total)?;
            out.push(Series { labels, points });
        }
        // Dropping the metric name can make two series one label set.
        let mut labels: Vec<&Labels> = out.iter().map(|s| &s.labels).collect();
        labels.sort_unstable();
        if labels.windows(2).any(|w| w[0] == w[1]) {
            return Err(execution(
                "vector cannot contain metrics with the same labelset",
            ));
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
                .map(|(l, v, _)| (drop_metric_name(l), f(*v), None))
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
            "vector" => Ok(vec![(Labels::new(), scalar(0)?, None)]),
            "scalar" => {
                let v = vector(0)?;
                Ok(if v.len() == 1 {
                    vec![(Labels::new(), v[0].1, None)]
                } else {
                    vec![(Labels::new(), f64::NAN, None)]
                })
            }
            "timestamp" => Ok(vector(0)?
                .iter()
                .map(|(l, _, _)| (drop_metric_name(l), ts as f64 / 1000.0, None))
                .collect()),
            "sort" | "sort_desc" => {
                // Elements are kept whole, histograms too.
                let mut v: StepOut = vector(0)?
                    .iter()
                    .map(|(l, v, h)| ((*l).clone(), *v, h.cloned()))
                    .collect();
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
                        None,
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
                    return Ok(vec![(Labels::new(), t, None)]);
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
                if !scrapegrid_common::labels::is_valid_label_name(dst) {
                    return Err(execution(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                Ok(vector(0)?
                    .iter()
                    .map(|(l, v, _)| {
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
                        // 2.42 keeps the float value only.
                        (labels, *v, None)
                    })
                    .collect())
            }
            "label_join" => {
                let (dst, sep) = (string(1)?, string(2)?);
                let mut srcs = Vec::new();
                for i in 3..args.len() {
                    let s = string(i)?;
                    if !scrapegrid_common::labels::is_valid_label_name(s) {
                        return Err(execution(format!(
                            "invalid source label name in label_join(): {s}"
                        )));
                    }
                    srcs.push(s);
                }
                if !scrapegrid_common::labels::is_valid_label_name(dst) {
                    return Err(execution(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                Ok(vector(0)?
                    .iter()
                    .map(|(l, v, _)| {
                        let joined: Vec<&str> =
                            srcs.iter().map(|s| l.get(s).unwrap_or("")).collect();
                        let joined = joined.join(sep);
                        let mut b = l.builder();
                        if joined.is_empty() {
                            b.del(dst);
                        } else {
                            b.set(dst.to_string(), joined);
                        }
                        (b.labels(), *v, None)
                    })
                    .collect())
            }
            "histogram_quantile" => Ok(histogram_quantile(scalar(0)?, vector(1)?)),
            // Of native histograms only; float elements are skipped.
            "histogram_count" | "histogram_sum" => Ok(vector(0)?
                .iter()
                .filter_map(|(l, _, h)| {
                    let h = (*h)?;
                    let v = if name == "histogram_count" {
                        h.count
                    } else {
                        h.sum
                    };
                    Some((drop_metric_name(l), v, None))
                })
                .collect()),
            "histogram_fraction" => {
                let (lower, upper) = (scalar(0)?, scalar(1)?);
                Ok(vector(2)?
                    .iter()
                    .filter_map(|(l, _, h)| {
                        let f = native_histogram::fraction(lower, upper, (*h)?);
                        Some((drop_metric_name(l), f, None))
                    })
                    .collect())
            }
            _ => Err(Error::BadData(format!(
                "function {name:?} is not supported"
            ))),
        }
    }
}
