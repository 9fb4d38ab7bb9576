//! The PromQL evaluator, after Prometheus 2.42's engine.
//!
//! An [`Evaluator`] evaluates an expression (promql-parser's AST) at every
//! step of `[start, end]` at once, as Prometheus's `rangeEval` does; an
//! instant query is a range of one step. Every node yields a [`Value`]:
//! a scalar per step, an instant vector as series with one point per step
//! at which they exist, a range vector (only as a function argument, or at
//! the top of an instant query), or a string. Operators, aggregations and
//! functions of instant vectors work step by step on the vectors of their
//! arguments ([`Evaluator::step_wise`]); functions of range vectors work
//! series by series over a sliding window ([`functions`]).
//!
//! Reads go through [`SeriesSource`], once per selector for the whole time
//! range the selector needs, so the evaluation is independent of storage.
//!
//! Files: this one holds the evaluator, selectors and subqueries;
//! [`functions`] the function calls; [`aggregate`] the aggregations;
//! [`binary`] the operators and vector matching; `points.rs` the points
//! (floats and native histograms) and how selected series become them.

mod aggregate;
mod binary;
mod functions;
mod points;

use points::{instant_point, points_of};
pub use points::{Hist, Point};

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use promql_parser::parser::{self, AtModifier, Expr, Offset};

use scrapegrid_common::{Labels, METRIC_NAME};
use scrapegrid_proto::is_stale_marker;

use super::select::SeriesSource;
use crate::error::{Error, Result};
use crate::index::{self, Matcher};
use crate::samples::Sample;

/// One series and its points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// What an expression evaluates to over the steps of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One value per step.
    Scalar(Vec<f64>),
    /// Series with a point at each step where they exist.
    Vector(Vec<Series>),
    /// Raw points per series (a range selector or a subquery), for one step.
    Matrix(Vec<Series>),
    String(String),
}

/// How the engine evaluates.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample.
    pub lookback_ms: i64,
    /// The step of a subquery that gives none (Prometheus's global
    /// evaluation interval).
    pub default_subquery_step_ms: i64,
    /// The most points a query may hold at once.
    pub max_samples: usize,
    /// When the evaluation gives up (`query.timeout`), if ever.
    pub deadline: Option<std::time::Instant>,
}

impl EngineOptions {
    /// These options with a deadline `timeout` from now.
    pub fn with_timeout(self, timeout: std::time::Duration) -> Self {
        Self {
            deadline: std::time::Instant::now().checked_add(timeout),
            ..self
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60_000,
            max_samples: 50_000_000,
            deadline: None,
        }
    }
}

/// Evaluates `expr` at every step from `start` to `end` (inclusive) `step`
/// apart; `start == end` is an instant query.
pub fn evaluate(
    src: &dyn SeriesSource,
    opts: EngineOptions,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value> {
    let ev = Evaluator {
        src,
        opts,
        start,
        end,
        interval: step.max(1),
        query_start: start,
        query_end: end,
    };
    ev.eval(expr)
}

/// The state of one evaluation (a subquery gets its own).
struct Evaluator<'a> {
    src: &'a dyn SeriesSource,
    opts: EngineOptions,
    start: i64,
    end: i64,
    interval: i64,
    /// The top-level query's range, for `@ start()` and `@ end()`.
    query_start: i64,
    query_end: i64,
}

/// One element of an instant vector at a step: its labels, its float
/// value (0 for a histogram) and its histogram, if it is one.
pub(crate) type El<'v> = (&'v Labels, f64, Option<&'v Hist>);

/// What one argument of a step-wise operation holds at a step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StepArg<'v> {
    Scalar(f64),
    Vector(&'v [El<'v>]),
    String(&'v str),
}

/// The output elements of a step-wise operation.
pub(crate) type StepOut = Vec<(Labels, f64, Option<Hist>)>;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => millis(*d),
        Some(Offset::Neg(d)) => -millis(*d),
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

/// The time a selector with `at` and `offset` reads at when evaluated at
/// `ts`, in a query over `[query_start, query_end]`.
fn reference_time(
    at: &Option<AtModifier>,
    offset: i64,
    ts: i64,
    query_start: i64,
    query_end: i64,
) -> i64 {
    let base = match at {
        None => ts,
        Some(AtModifier::Start) => query_start,
        Some(AtModifier::End) => query_end,
        Some(AtModifier::At(t)) => system_time_ms(*t),
    };
    base.saturating_sub(offset)
}

/// Returns the labels without `__name__` (filtering the sorted labels
/// keeps them sorted; no builder, which costs a map per call).
pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    Labels::from_sorted_unchecked(
        l.iter()
            .filter(|x| x.name != METRIC_NAME)
            .cloned()
            .collect(),
    )
}

pub(crate) fn execution(msg: impl Into<String>) -> Error {
    Error::Execution(msg.into())
}

impl<'a> Evaluator<'a> {
    /// The evaluation's step timestamps.
    fn steps(&self) -> impl Iterator<Item = i64> {
        let (start, end, step) = (self.start, self.end, self.interval);
        (0..)
            .map_while(move |i: i64| i.checked_mul(step).and_then(|d| start.checked_add(d)))
            .take_while(move |&t| t <= end)
    }

    fn step_count(&self) -> usize {
        ((self.end - self.start) / self.interval + 1).max(0) as usize
    }

    /// Returns the time a selector with `at` and `offset` reads at when
    /// evaluated at `ts`.
    fn ref_time(&self, at: &Option<AtModifier>, offset: i64, ts: i64) -> i64 {
        reference_time(at, offset, ts, self.query_start, self.query_end)
    }

    fn eval(&self, expr: &Expr) -> Result<Value> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(vec![n.val; self.step_count()])),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Value::Scalar(v) => Ok(Value::Scalar(v.into_iter().map(|x| -x).collect())),
                Value::Vector(mut series) => {
                    for s in &mut series {
                        s.labels = drop_metric_name(&s.labels);
                        for p in &mut s.points {
                            // 2.42 negates the float value only: a
                            // histogram point keeps its histogram.
                            p.v = -p.v;
                        }
                    }
                    Ok(Value::Vector(series))
                }
                other => Err(Error::BadData(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    type_name(&other)
                ))),
            },
            Expr::VectorSelector(vs) => self.vector_selector(vs),
            Expr::MatrixSelector(ms) => {
                if self.start != self.end {
                    return Err(Error::BadData(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
                let (series, window) = self.range_source_selector(ms)?;
                Ok(self.matrix_at_start(series, &window))
            }
            Expr::Subquery(sq) => {
                let (series, window) = self.range_source_subquery(sq)?;
                Ok(self.matrix_at_start(series, &window))
            }
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Call(c) => self.call(c),
            Expr::Extension(_) => Err(Error::BadData("unsupported expression".into())),
        }
    }

    /// The points of a range argument in its window at the (only) step.
    fn matrix_at_start(&self, series: Vec<Series>, window: &Window) -> Value {
        let out = series
            .into_iter()
            .filter_map(|s| {
                let points = window.points(&s.points, self.start).to_vec();
                (!points.is_empty()).then_some(Series {
                    labels: s.labels,
                    points,
                })
            })
            .collect();
        Value::Matrix(out)
    }

    /// Reads the series a selector needs for reads at `[min_ref, max_ref]`
    /// looking back `lookback` milliseconds.
    fn select(
        &self,
        vs: &parser::VectorSelector,
        min_ref: i64,
        max_ref: i64,
        lookback: i64,
    ) -> Result<Vec<Series>> {
        let matchers = matchers(vs)?;
        let mint = min_ref.saturating_sub(lookback);
        Ok(self
            .src
            .select(&matchers, mint, max_ref)?
            .into_iter()
            .map(points_of)
            .collect())
    }

    /// The reference times of a selector over this evaluation's steps.
    fn ref_range(&self, at: &Option<AtModifier>, offset: i64) -> (i64, i64) {
        let a = self.ref_time(at, offset, self.start);
        let b = self.ref_time(at, offset, self.end);
        (a.min(b), a.max(b))
    }

    fn vector_selector(&self, vs: &parser::VectorSelector) -> Result<Value> {
        self.instant_selector(vs, |p| p.clone(), false)
    }

    /// Evaluates an instant selector: at each step, the point it sees
    /// (the last within the lookback, unless a stale marker) becomes
    /// `value(point)`; `timestamp(x)` reads the point's time this way,
    /// and drops the metric name.
    pub(crate) fn instant_selector(
        &self,
        vs: &parser::VectorSelector,
        value: impl Fn(&Point) -> Point,
        drop_name: bool,
    ) -> Result<Value> {
        let offset = offset_ms(&vs.offset);
        let (lo, hi) = self.ref_range(&vs.at, offset);
        let lookback = self.opts.lookback_ms;
        let mut out = Vec::new();
        let mut total = 0usize;
        for s in self.select(vs, lo, hi, lookback)? {
            self.check_deadline()?;
            let points: Vec<Point> = self
                .steps()
                .filter_map(|t| {
                    let r = self.ref_time(&vs.at, offset, t);
                    instant_point(&s.points, r, lookback).map(|p| Point { t, ..value(p) })
                })
                .collect();
            if !points.is_empty() {
                total += points.len();
                self.check_samples(total)?;
                let labels = if drop_name {
                    drop_metric_name(&s.labels)
                } else {
                    s.labels
                };
                out.push(Series { labels, points });
            }
        }
        Ok(Value::Vector(out))
    }

    /// Fails once the query's deadline has passed.
    fn check_deadline(&self) -> Result<()> {
        match self.opts.deadline {
            Some(d) if std::time::Instant::now() >= d => {
                Err(Error::QueryTimeout("expression evaluation"))
            }
            _ => Ok(()),
        }
    }

    fn check_samples(&self, n: usize) -> Result<()> {
        if n > self.opts.max_samples {
            return Err(Error::Execution(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The raw series of a range selector and its window.
    fn range_source_selector(&self, ms: &parser::MatrixSelector) -> Result<(Vec<Series>, Window)> {
        let vs = &ms.vs;
        let window = Window {
            range: millis(ms.range),
            offset: offset_ms(&vs.offset),
            at: vs.at.clone(),
            query_start: self.query_start,
            query_end: self.query_end,
        };
        let (lo, hi) = self.ref_range(&vs.at, window.offset);
        let series = self
            .select(vs, lo, hi, window.range)?
            .into_iter()
            .map(|s| {
                let mut points = s.points;
                points.retain(|p| !is_stale_marker(p.v));
                Series {
                    labels: s.labels,
                    points,
                }
            })
            .collect();
        Ok((series, window))
    }

    /// Evaluates a subquery over every step this evaluation needs; returns
    /// its series (points at the subquery's steps) and its window.
    fn range_source_subquery(&self, sq: &parser::SubqueryExpr) -> Result<(Vec<Series>, Window)> {
        let offset = offset_ms(&sq.offset);
        let range = millis(sq.range);
        let interval = sq
            .step
            .map(millis)
            .filter(|s| *s > 0)
            .unwrap_or(self.opts.default_subquery_step_ms);
        let (lo, hi) = self.ref_range(&sq.at, offset);
        let first = lo - range;
        // The first multiple of the interval at or after `first` (2.x's
        // windows are closed at both ends).
        let mut start = interval * first.div_euclid(interval);
        if start < first {
            start += interval;
        }
        let inner = Evaluator {
            start,
            end: hi,
            interval,
            ..*self
        };
        let series = match inner.eval(&sq.expr)? {
            Value::Vector(s) => s,
            Value::Scalar(v) => vec![Series {
                labels: Labels::new(),
                points: inner
                    .steps()
                    .zip(v)
                    .map(|(t, v)| Point::float(t, v))
                    .collect(),
            }],
            other => {
                return Err(Error::BadData(format!(
                    "subquery is only allowed on instant vector, got {} instead",
                    type_name(&other)
                )))
            }
        };
        let window = Window {
            range,
            offset,
            at: sq.at.clone(),
            query_start: self.query_start,
            query_end: self.query_end,
        };
        Ok((series, window))
    }

    /// Runs `f` at every step on the values of `args` at that step, and
    /// gathers its outputs into series (as Prometheus's `rangeEval`).
    /// Scalars become [`StepArg::Scalar`]; a result with only unlabelled
    /// scalars is returned by `f` as one element with empty labels.
    fn step_wise(
        &self,
        args: &[Value],
        mut f: impl FnMut(&[StepArg<'_>], i64) -> Result<StepOut>,
    ) -> Result<Vec<Series>> {
        // Per vector argument: per step, its (labels, value) pairs.
        let steps: Vec<i64> = self.steps().collect();
        type StepVectors<'v> = Vec<Vec<El<'v>>>;
        let per_step: Vec<Option<StepVectors<'_>>> = args
            .iter()
            .map(|a| match a {
                Value::Vector(series) => {
                    let mut v: StepVectors<'_> = vec![Vec::new(); steps.len()];
                    for s in series {
                        for p in &s.points {
                            let i = ((p.t - self.start) / self.interval) as usize;
                            if let Some(slot) = v.get_mut(i) {
                                slot.push((&s.labels, p.v, p.h.as_ref()));
                            }
                        }
                    }
                    Some(v)
                }
                _ => None,
            })
            .collect();
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut total = 0usize;
        let mut step_args: Vec<StepArg<'_>> = Vec::with_capacity(args.len());
        for (i, &t) in steps.iter().enumerate() {
            self.check_deadline()?;
            step_args.clear();
            for (a, pv) in args.iter().zip(&per_step) {
                step_args.push(match (a, pv) {
                    (Value::Scalar(v), _) => StepArg::Scalar(v[i]),
                    (Value::String(s), _) => StepArg::String(s),
                    (_, Some(pv)) => StepArg::Vector(&pv[i]),
                    (Value::Matrix(_), None) | (Value::Vector(_), None) => {
                        return Err(Error::BadData("unexpected range vector".into()))
                    }
                });
            }
            for (labels, v, h) in f(&step_args, t)? {
                let k = match index.get(&labels) {
                    Some(k) => *k,
                    None => {
                        index.insert(labels.clone(), out.len());
                        out.push(Series {
                            labels,
                            points: Vec::new(),
                        });
                        out.len() - 1
                    }
                };
                // A series holds one point per step: a second one at this
                // step means the step's vector repeats a label set.
                if out[k].points.last().is_some_and(|p| p.t == t) {
                    return Err(execution(
                        "vector cannot contain metrics with the same labelset",
                    ));
                }
                out[k].points.push(Point { t, v, h });
                total += 1;
            }
            self.check_samples(total)?;
        }
        Ok(out)
    }
}

/// The window of a range argument at an evaluation time: the points in
/// `[ref - range, ref]` (closed at both ends in Prometheus 2.x; 3.0 made it
/// left-open).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub range: i64,
    pub offset: i64,
    pub at: Option<AtModifier>,
    query_start: i64,
    query_end: i64,
}

impl Window {
    /// The reference time (window end) at evaluation time `ts`.
    pub fn end(&self, ts: i64) -> i64 {
        reference_time(&self.at, self.offset, ts, self.query_start, self.query_end)
    }

    pub fn points<'p>(&self, points: &'p [Point], ts: i64) -> &'p [Point] {
        let end = self.end(ts);
        let start = end.saturating_sub(self.range);
        let lo = points.partition_point(|p| p.t < start);
        let hi = points.partition_point(|p| p.t <= end);
        &points[lo.min(hi)..hi]
    }
}

/// Returns the value an instant selector sees at `ref_t` in `samples`
/// (sorted by time): the last sample in `[ref_t - lookback, ref_t]` (closed,
/// as in Prometheus 2.x), unless it is a stale marker.
pub fn instant_value(samples: &[Sample], ref_t: i64, lookback_ms: i64) -> Option<f64> {
    let end = samples.partition_point(|s| s.t <= ref_t);
    let last = *samples[..end].last()?;
    if last.t < ref_t.saturating_sub(lookback_ms) || is_stale_marker(last.v) {
        return None;
    }
    Some(last.v)
}

/// The matchers of a selector, its metric name first.
pub fn matchers(vs: &parser::VectorSelector) -> Result<Vec<Matcher>> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Error::BadData(format!(
            "unsupported expression: {vs} (\"or\" inside a selector)"
        )));
    }
    let mut m: Vec<Matcher> = vs
        .matchers
        .matchers
        .iter()
        .map(Matcher::from_promql)
        .collect();
    if let Some(name) = &vs.name {
        m.insert(0, Matcher::equal(METRIC_NAME, name));
    }
    index::check_selectable(&m).map_err(|e| Error::BadData(e.to_string()))?;
    Ok(m)
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Scalar(_) => "scalar",
        Value::Vector(_) => "instant vector",
        Value::Matrix(_) => "range vector",
        Value::String(_) => "string",
    }
}

#[cfg(test)]
mod tests;
