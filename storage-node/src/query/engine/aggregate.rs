//! Aggregations, as Prometheus 2.42: sum, avg, min, max, count, group,
//! stddev, stdvar, topk, bottomk, quantile and count_values, by or without
//! labels, step by step. Groups appear in the order of their first series;
//! the running mean of avg and the Welford updates of stddev/stdvar are
//! Prometheus's, so results agree to the last bit where the order does.

use std::collections::HashMap;

use promql_parser::parser::token;
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use scrapegrid_common::{Labels, METRIC_NAME};

use super::{execution, type_name, El, Evaluator, Hist, StepArg, StepOut, Value};
use crate::error::{Error, Result};
use scrapegrid_common::histogram::FloatHistogram;

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: u64,
    /// topk/bottomk/quantile: the members (labels, value).
    members: Vec<(Labels, f64)>,
    /// sum: whether floats and native histograms were summed (a group
    /// with both has no result, as in 2.42), and the histograms' sum.
    has_float: bool,
    has_histogram: bool,
    histogram: Option<FloatHistogram>,
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Display gives the shortest round-trip digits without an
        // exponent, as 'f' with precision -1 does.
        format!("{v}")
    }
}

/// Go's `%v` of a float64: the shortest representation, with an exponent
/// from 1e21 on (and below 1e-4).
fn go_v(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && a != 0.0 && !(1e-4..1e21).contains(&a) {
        let e = format!("{v:e}");
        match e.split_once('e') {
            Some((m, x)) if x.starts_with('-') => format!("{m}e-{:0>2}", &x[1..]),
            Some((m, x)) => format!("{m}e+{x:0>2}"),
            None => e,
        }
    } else {
        format_float(v)
    }
}

/// The φ-quantile of `values`, as Prometheus's `quantile`.
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Prometheus's value heap orders it.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

impl Evaluator<'_> {
    pub(super) fn aggregate(&self, a: &AggregateExpr) -> Result<Value> {
        let inner = self.eval(&a.expr)?;
        if !matches!(inner, Value::Vector(_)) {
            return Err(Error::BadData(format!(
                "expected type instant vector in aggregation expression, got {}",
                type_name(&inner)
            )));
        }
        let (without, mut grouping) = match &a.modifier {
            Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        grouping.sort();
        let op = a.op.id();
        let param = match a.param.as_deref() {
            None => None,
            Some(Expr::StringLiteral(s)) => Some(Value::String(s.val.clone())),
            Some(p) => Some(self.eval(p)?),
        };
        let mut args = Vec::new();
        if let Some(p) = param {
            args.push(p);
        }
        args.push(inner);
        let mut keys = GroupKeys::default();
        let out = self.step_wise(&args, |step, _| {
            let (param, vec) = match step {
                [StepArg::Vector(v)] => (None, *v),
                [p, StepArg::Vector(v)] => (Some(*p), *v),
                _ => return Err(Error::BadData("bad aggregation arguments".into())),
            };
            aggregation(op, &grouping, without, param, vec, &mut keys)
        })?;
        Ok(Value::Vector(out))
    }
}

/// The group of each input series, worked out once per series for all the
/// steps of a range query rather than at every step. A series is known by
/// the address of its labels, which stay put while the steps run.
#[derive(Default)]
struct GroupKeys {
    by_series: HashMap<*const Labels, usize>,
    by_labels: HashMap<Labels, usize>,
    /// The group labels of each key.
    labels: Vec<Labels>,
    /// Per key: its group at the current step (`usize::MAX`: none yet).
    slot: Vec<usize>,
    /// Keys whose slot the current step set.
    used: Vec<usize>,
}

impl GroupKeys {
    /// Returns the key of `metric`'s group.
    fn key(&mut self, metric: &Labels, grouping: &[String], without: bool) -> usize {
        if let Some(&k) = self.by_series.get(&(metric as *const Labels)) {
            return k;
        }
        let labels = group_labels(metric, grouping, without);
        let k = match self.by_labels.get(&labels) {
            Some(&k) => k,
            None => {
                self.by_labels.insert(labels.clone(), self.labels.len());
                self.labels.push(labels);
                self.slot.push(usize::MAX);
                self.labels.len() - 1
            }
        };
        self.by_series.insert(metric, k);
        k
    }

    /// Forgets the current step's groups.
    fn next_step(&mut self) {
        for k in self.used.drain(..) {
            self.slot[k] = usize::MAX;
        }
    }
}

/// The labels of a series' group: a filter of its sorted labels.
fn group_labels(metric: &Labels, grouping: &[String], without: bool) -> Labels {
    Labels::from_sorted_unchecked(
        metric
            .iter()
            .filter(|l| {
                let listed = grouping.contains(&l.name);
                if without {
                    !listed && l.name != METRIC_NAME
                } else {
                    listed
                }
            })
            .cloned()
            .collect(),
    )
}

fn aggregation(
    op: token::TokenId,
    grouping: &[String],
    without: bool,
    param: Option<StepArg<'_>>,
    vec: &[El<'_>],
    keys: &mut GroupKeys,
) -> Result<StepOut> {
    keys.next_step();
    let scalar = |p: Option<StepArg<'_>>| match p {
        Some(StepArg::Scalar(v)) => Ok(v),
        _ => Err(Error::BadData("expected a scalar parameter".into())),
    };
    let mut k: i64 = 0;
    if op == token::T_TOPK || op == token::T_BOTTOMK {
        let f = scalar(param)?;
        // Prometheus's convertibleToInt64 (NaN fails it).
        if !(-9_223_372_036_854_775_808.0..=9_223_372_036_854_774_784.0).contains(&f) {
            return Err(execution(format!(
                "Scalar value {} overflows int64",
                go_v(f)
            )));
        }
        k = f as i64;
        if k < 1 {
            return Ok(Vec::new());
        }
    }
    let q = if op == token::T_QUANTILE {
        scalar(param)?
    } else {
        0.0
    };
    let mut grouping: Vec<String> = grouping.to_vec();
    let mut value_label = String::new();
    if op == token::T_COUNT_VALUES {
        value_label = match param {
            Some(StepArg::String(s)) => s.to_string(),
            _ => {
                return Err(Error::BadData(
                    "count_values needs a string parameter".into(),
                ))
            }
        };
        if !scrapegrid_common::labels::is_valid_label_name(&value_label) {
            return Err(execution(format!("invalid label name {:?}", value_label)));
        }
        if !without {
            grouping.push(value_label.clone());
            grouping.sort();
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    // count_values groups by value too, so its groups change every step.
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for &(metric, v, h) in vec {
        let owned;
        let (metric, found, key) = if op == token::T_COUNT_VALUES {
            let mut b = metric.builder();
            b.set(value_label.clone(), format_float(v));
            owned = b.labels();
            let key = group_labels(&owned, &grouping, without);
            (&owned, index.get(&key).copied(), Err(key))
        } else {
            let k = keys.key(metric, &grouping, without);
            let slot = keys.slot[k];
            (metric, (slot != usize::MAX).then_some(slot), Ok(k))
        };
        let Some(gi) = found else {
            let labels = match key {
                Err(labels) => {
                    index.insert(labels.clone(), groups.len());
                    labels
                }
                Ok(k) => {
                    keys.slot[k] = groups.len();
                    keys.used.push(k);
                    keys.labels[k].clone()
                }
            };
            let mut g = Group {
                labels,
                value: v,
                mean: v,
                count: 1,
                members: Vec::new(),
                has_float: h.is_none(),
                has_histogram: false,
                histogram: None,
            };
            // 2.42 sums native histograms; every other aggregation reads a
            // histogram as its float value, 0.
            if let (Some(h), token::T_SUM) = (h, op) {
                g.histogram = Some((**h).clone());
                g.has_histogram = true;
            }
            match op {
                token::T_STDVAR | token::T_STDDEV => g.value = 0.0,
                token::T_TOPK | token::T_BOTTOMK | token::T_QUANTILE => {
                    g.members.push((metric.clone(), v))
                }
                token::T_GROUP => g.value = 1.0,
                _ => {}
            }
            groups.push(g);
            continue;
        };
        let g = &mut groups[gi];
        match op {
            token::T_SUM => match h {
                Some(h) => {
                    g.has_histogram = true;
                    if let Some(sum) = &mut g.histogram {
                        // The histogram added must have the higher schema.
                        if h.schema >= sum.schema {
                            sum.add(h);
                        } else {
                            let mut c = (**h).clone();
                            c.add(sum);
                            *sum = c;
                        }
                    }
                }
                None => {
                    g.has_float = true;
                    g.value += v;
                }
            },
            token::T_AVG => {
                g.count += 1;
                if g.mean.is_infinite() {
                    if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                let n = g.count as f64;
                g.mean += v / n - g.mean / n;
            }
            token::T_GROUP => {}
            token::T_MAX => {
                if g.value < v || g.value.is_nan() {
                    g.value = v;
                }
            }
            token::T_MIN => {
                if g.value > v || g.value.is_nan() {
                    g.value = v;
                }
            }
            token::T_COUNT | token::T_COUNT_VALUES => g.count += 1,
            token::T_STDVAR | token::T_STDDEV => {
                g.count += 1;
                let delta = v - g.mean;
                g.mean += delta / g.count as f64;
                g.value += delta * (v - g.mean);
            }
            token::T_TOPK | token::T_BOTTOMK | token::T_QUANTILE => {
                g.members.push((metric.clone(), v))
            }
            _ => return Err(Error::BadData("unsupported aggregation".into())),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let value = match op {
            token::T_AVG => g.mean,
            token::T_COUNT | token::T_COUNT_VALUES => g.count as f64,
            token::T_STDVAR => g.value / g.count as f64,
            token::T_STDDEV => (g.value / g.count as f64).sqrt(),
            token::T_TOPK | token::T_BOTTOMK => {
                out.extend(
                    select_k(
                        std::mem::take(&mut g.members),
                        k as usize,
                        op == token::T_TOPK,
                    )
                    .into_iter()
                    .map(|(l, v)| (l, v, None)),
                );
                continue;
            }
            token::T_QUANTILE => {
                let mut values: Vec<f64> = g.members.iter().map(|(_, v)| *v).collect();
                quantile(q, &mut values)
            }
            token::T_SUM if g.has_float && g.has_histogram => continue,
            _ => g.value,
        };
        let histogram = g.histogram.take().map(Hist::new);
        out.push((g.labels, value, histogram));
    }
    Ok(out)
}

/// A binary heap laid out exactly as Go's `container/heap` lays it out, so
/// that which of several equal values topk/bottomk keep, and the order it
/// returns them in, are Prometheus's.
struct GoHeap {
    items: Vec<(Labels, f64)>,
    /// topk: the smallest value on top (NaN below everything); bottomk: the
    /// largest (NaN above everything).
    top: bool,
}

impl GoHeap {
    /// `vectorByValueHeap.Less` (topk) or `vectorByReverseValueHeap.Less`.
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.items[i].1, self.items[j].1);
        if a.is_nan() {
            return true;
        }
        if self.top {
            a < b
        } else {
            a > b
        }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize, n: usize) {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.less(j2, j1) {
                j = j2;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }

    fn push(&mut self, x: (Labels, f64)) {
        self.items.push(x);
        let n = self.items.len();
        self.up(n - 1);
    }

    fn pop(&mut self) {
        let n = self.items.len() - 1;
        self.items.swap(0, n);
        self.down(0, n);
        self.items.pop();
    }

    /// `sort.Sort(sort.Reverse(heap))`: Go's insertion sort for up to 12
    /// elements (its pdqsort starts with it), stable otherwise.
    fn into_sorted(mut self) -> Vec<(Labels, f64)> {
        let n = self.items.len();
        if n <= 12 {
            for i in 1..n {
                let mut j = i;
                // Reverse: Less(j, j-1) is the heap's Less(j-1, j).
                while j > 0 && self.less(j - 1, j) {
                    self.items.swap(j, j - 1);
                    j -= 1;
                }
            }
            return self.items;
        }
        let top = self.top;
        let mut items = self.items;
        items.sort_by(|x, y| {
            let h = GoHeap {
                items: vec![x.clone(), y.clone()],
                top,
            };
            if h.less(1, 0) {
                std::cmp::Ordering::Less
            } else if h.less(0, 1) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        items
    }
}

/// topk (`top`) or bottomk of `members` in input order, as Prometheus's
/// aggregation selects them: a heap of at most `k`, replaced only by a
/// strictly better value (or when its worst is NaN).
fn select_k(members: Vec<(Labels, f64)>, k: usize, top: bool) -> Vec<(Labels, f64)> {
    let mut heap = GoHeap {
        items: Vec::with_capacity(k.min(members.len())),
        top,
    };
    for (labels, v) in members {
        if heap.items.is_empty() {
            heap.items.push((labels, v));
            continue;
        }
        let root = heap.items[0].1;
        let better = if top { root < v } else { root > v };
        if heap.items.len() < k || better || root.is_nan() {
            if heap.items.len() == k {
                if k == 1 {
                    heap.items[0] = (labels, v);
                    continue;
                }
                heap.pop();
            }
            heap.push((labels, v));
        }
    }
    if heap.items.len() > 1 {
        heap.into_sorted()
    } else {
        heap.items
    }
}
