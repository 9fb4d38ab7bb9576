//! Binary operators, as Prometheus 2.42: arithmetic, comparisons (filtering,
//! or 0/1 with `bool`), `atan2`, and the set operators `and`, `or`,
//! `unless`; between scalars, a vector and a scalar, or two vectors with
//! one-to-one, many-to-one (`group_left`) or one-to-many (`group_right`)
//! matching on (`on`) or ignoring (`ignoring`) labels.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use scrapegrid_common::{Labels, METRIC_NAME};

use super::{drop_metric_name, execution, type_name, El, Evaluator, Hist, StepArg, StepOut, Value};
use crate::error::{Error, Result};

/// How two vectors are matched.
struct Matching {
    card: Card,
    /// `on` (true) or `ignoring` (false) these labels.
    on: bool,
    labels: Vec<String>,
    /// `group_left`/`group_right` labels taken from the "one" side.
    include: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

fn matching(op: TokenType, m: &Option<BinModifier>) -> Matching {
    let mut out = Matching {
        card: if op.is_set_operator() {
            Card::ManyToMany
        } else {
            Card::OneToOne
        },
        on: false,
        labels: Vec::new(),
        include: Vec::new(),
    };
    if let Some(m) = m {
        match &m.card {
            VectorMatchCardinality::OneToOne => {}
            VectorMatchCardinality::ManyToMany => out.card = Card::ManyToMany,
            VectorMatchCardinality::ManyToOne(l) => {
                out.card = Card::ManyToOne;
                out.include = l.labels.clone();
            }
            VectorMatchCardinality::OneToMany(l) => {
                out.card = Card::OneToMany;
                out.include = l.labels.clone();
            }
        }
        if let Some(lm) = &m.matching {
            out.on = matches!(lm, LabelModifier::Include(_));
            out.labels = lm.labels().labels.clone();
        }
    }
    out
}

fn return_bool(m: &Option<BinModifier>) -> bool {
    m.as_ref().is_some_and(|m| m.return_bool)
}

/// Whether the operator's result drops the metric name (in 2.42 `atan2`
/// keeps it).
fn drops_name(op: TokenType) -> bool {
    matches!(
        op.id(),
        token::T_ADD | token::T_SUB | token::T_MUL | token::T_DIV | token::T_POW | token::T_MOD
    )
}

/// Applies an arithmetic or comparison operator: the value and whether a
/// comparison holds (always true for arithmetic).
fn elem(op: TokenType, l: f64, r: f64) -> (f64, bool) {
    match op.id() {
        token::T_ADD => (l + r, true),
        token::T_SUB => (l - r, true),
        token::T_MUL => (l * r, true),
        token::T_DIV => (l / r, true),
        token::T_POW => (l.powf(r), true),
        token::T_MOD => (go_mod(l, r), true),
        token::T_ATAN2 => (l.atan2(r), true),
        token::T_EQLC => (l, l == r),
        token::T_NEQ => (l, l != r),
        token::T_GTR => (l, l > r),
        token::T_LSS => (l, l < r),
        token::T_GTE => (l, l >= r),
        token::T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

/// Go's `math.Mod`: the sign of the dividend, NaN for a zero divisor.
fn go_mod(l: f64, r: f64) -> f64 {
    l % r
}

/// The matching signature of `l`: the listed labels with `on`, every label
/// but those and `__name__` otherwise.
fn signature(l: &Labels, m: &Matching) -> Vec<(String, String)> {
    l.iter()
        .filter(|lb| {
            if m.on {
                m.labels.contains(&lb.name)
            } else {
                lb.name != METRIC_NAME && !m.labels.contains(&lb.name)
            }
        })
        .map(|lb| (lb.name.to_string(), lb.value.to_string()))
        .collect()
}

fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|lb| format!("{}=\"{}\"", lb.name, lb.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn sig_string(sig: &[(String, String)]) -> String {
    let parts: Vec<String> = sig.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The labels of a vector-vector result.
fn result_labels(lhs: &Labels, rhs: &Labels, op: TokenType, m: &Matching) -> Labels {
    let mut b = lhs.builder();
    if drops_name(op) {
        b.del(METRIC_NAME);
    }
    if m.card == Card::OneToOne {
        if m.on {
            b.retain(|n, _| m.labels.iter().any(|k| k == n));
        } else {
            for n in &m.labels {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match rhs.get(n) {
            Some(v) if !v.is_empty() => {
                b.set(n.clone(), v.to_string());
            }
            _ => {
                b.del(n);
            }
        }
    }
    b.labels()
}

impl Evaluator<'_> {
    pub(super) fn binary(&self, e: &BinaryExpr) -> Result<Value> {
        let lhs = self.eval(&e.lhs)?;
        let rhs = self.eval(&e.rhs)?;
        let op = e.op;
        let bool_ = return_bool(&e.modifier);
        match (&lhs, &rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => Ok(Value::Scalar(
                l.iter()
                    .zip(r)
                    .map(|(&a, &b)| {
                        let (v, keep) = elem(op, a, b);
                        if op.is_comparison_operator() {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Value::Vector(_), Value::Scalar(_)) | (Value::Scalar(_), Value::Vector(_)) => {
                let swap = matches!(lhs, Value::Scalar(_));
                let out = self.step_wise(&[lhs.clone(), rhs.clone()], |args, _| {
                    let (vec, s) = match (args[0], args[1]) {
                        (StepArg::Vector(v), StepArg::Scalar(s)) => (v, s),
                        (StepArg::Scalar(s), StepArg::Vector(v)) => (v, s),
                        _ => unreachable!("a vector and a scalar"),
                    };
                    Ok(vector_scalar(op, vec, s, swap, bool_))
                })?;
                Ok(Value::Vector(out))
            }
            (Value::Vector(_), Value::Vector(_)) => {
                let m = matching(op, &e.modifier);
                let out = self.step_wise(&[lhs.clone(), rhs.clone()], |args, _| {
                    let (StepArg::Vector(l), StepArg::Vector(r)) = (args[0], args[1]) else {
                        unreachable!("two vectors")
                    };
                    match op.id() {
                        token::T_LAND => Ok(and(l, r, &m)),
                        token::T_LOR => Ok(or(l, r, &m)),
                        token::T_LUNLESS => Ok(unless(l, r, &m)),
                        _ => vector_vector(op, l, r, &m, bool_),
                    }
                })?;
                Ok(Value::Vector(out))
            }
            _ => Err(Error::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                type_name(&lhs),
                type_name(&rhs)
            ))),
        }
    }
}

/// An operation between each element of a vector and a scalar. As in
/// Prometheus 2.42, a histogram element computes with its float value (0)
/// and keeps its histogram when kept.
fn vector_scalar(op: TokenType, vec: &[El<'_>], s: f64, swap: bool, bool_: bool) -> StepOut {
    let mut out = Vec::with_capacity(vec.len());
    for &(labels, v, h) in vec {
        let (mut lv, mut rv) = (v, s);
        if swap {
            std::mem::swap(&mut lv, &mut rv);
        }
        let (mut value, mut keep) = elem(op, lv, rv);
        // The vector's value is kept, on either side of a comparison.
        if op.is_comparison_operator() && swap {
            value = rv;
        }
        if bool_ {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let l = if drops_name(op) || bool_ {
                drop_metric_name(labels)
            } else {
                labels.clone()
            };
            out.push((l, value, h.cloned()));
        }
    }
    out
}

/// Two histograms added (the only operation between vector elements 2.42
/// defines on histograms): into a copy of the one with the lower schema.
fn add_histograms(l: &Hist, r: &Hist) -> Hist {
    let (mut sum, other) = if r.schema >= l.schema {
        ((**l).clone(), r)
    } else {
        ((**r).clone(), l)
    };
    sum.add(other);
    Hist::new(sum)
}

fn vector_vector(
    op: TokenType,
    lhs: &[El<'_>],
    rhs: &[El<'_>],
    m: &Matching,
    bool_: bool,
) -> Result<StepOut> {
    // Nothing can match (and no many-to-many error is raised).
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    let mut right: HashMap<Vec<(String, String)>, El<'_>> = HashMap::new();
    for &(l, v, h) in rhs {
        let sig = signature(l, m);
        if let Some((dup, _, _)) = right.get(&sig) {
            let side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            return Err(execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                sig_string(&sig),
                labels_string(l),
                labels_string(dup)
            )));
        }
        right.insert(sig, (l, v, h));
    }
    let mut matched: HashMap<Vec<(String, String)>, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for &(l, lv, lh) in lhs {
        let sig = signature(l, m);
        let Some(&(r, rv, rh)) = right.get(&sig) else {
            continue;
        };
        let ((vl, hl), (vr, hr)) = if m.card == Card::OneToMany {
            ((rv, rh), (lv, lh))
        } else {
            ((lv, lh), (rv, rh))
        };
        let (mut value, keep) = elem(op, vl, vr);
        let histogram = match (op.id(), hl, hr) {
            (token::T_ADD, Some(hl), Some(hr)) => {
                value = 0.0;
                Some(add_histograms(hl, hr))
            }
            _ => None,
        };
        if bool_ {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_labels(l, r, op, m);
        if bool_ {
            metric = drop_metric_name(&metric);
        }
        let entry = matched.entry(sig);
        match m.card {
            Card::OneToOne => {
                if let std::collections::hash_map::Entry::Occupied(_) = entry {
                    return Err(execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                entry.or_default();
            }
            _ => {
                if !entry.or_default().insert(metric.clone()) {
                    return Err(execution(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
        }
        // Only pairs of the same kind give a result (the match still
        // counts above, for the matching errors).
        if hl.is_some() == hr.is_some() {
            out.push((metric, value, histogram));
        }
    }
    Ok(out)
}

fn and(lhs: &[El<'_>], rhs: &[El<'_>], m: &Matching) -> StepOut {
    if lhs.is_empty() || rhs.is_empty() {
        return Vec::new();
    }
    let right: HashSet<Vec<(String, String)>> = rhs.iter().map(|e| signature(e.0, m)).collect();
    lhs.iter()
        .filter(|e| right.contains(&signature(e.0, m)))
        .map(owned)
        .collect()
}

fn or(lhs: &[El<'_>], rhs: &[El<'_>], m: &Matching) -> StepOut {
    let left: HashSet<Vec<(String, String)>> = lhs.iter().map(|e| signature(e.0, m)).collect();
    let mut out: StepOut = lhs.iter().map(owned).collect();
    out.extend(
        rhs.iter()
            .filter(|e| lhs.is_empty() || !left.contains(&signature(e.0, m)))
            .map(owned),
    );
    out
}

fn unless(lhs: &[El<'_>], rhs: &[El<'_>], m: &Matching) -> StepOut {
    let right: HashSet<Vec<(String, String)>> = rhs.iter().map(|e| signature(e.0, m)).collect();
    lhs.iter()
        .filter(|e| !right.contains(&signature(e.0, m)))
        .map(owned)
        .collect()
}

/// An element kept whole (set operations keep histograms).
fn owned(e: &El<'_>) -> (Labels, f64, Option<Hist>) {
    (e.0.clone(), e.1, e.2.cloned())
}
