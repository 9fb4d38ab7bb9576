//! Parsing PromQL with `promql-parser` (the AST the engine evaluates),
//! refusing what Prometheus 2.42 does not know, and the selectors of a query.

use promql_parser::parser::{self, Expr};

use crate::error::{Error, Result};
use crate::index::Matcher;

/// The functions of Prometheus 2.42 (native-histogram ones included: they
/// find no native histograms here and return nothing).
pub const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// The aggregation operators of Prometheus 2.42.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
];

/// Parses `query` into promql-parser's AST, refusing what Prometheus 2.42
/// does not know (functions and aggregations added later).
pub fn parse(query: &str) -> Result<Expr> {
    register_2_42_functions();
    let ast = parser::parse(query).map_err(Error::BadData)?;
    check_known(&ast)?;
    Ok(ast)
}

/// Teaches the parser the 2.42 functions it no longer knows by their 2.42
/// name (`holt_winters`, `double_exponential_smoothing` since 3.0).
fn register_2_42_functions() {
    use parser::value::ValueType;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let holt_winters = parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        if let Err(error) = parser::register_extra_functions(vec![holt_winters]) {
            tracing::error!(%error, "cannot register holt_winters with the PromQL parser");
        }
    });
}

fn check_known(e: &Expr) -> Result<()> {
    match e {
        Expr::Call(c) => {
            if !FUNCTIONS.contains(&c.func.name) {
                return Err(Error::BadData(format!(
                    "parse error: unknown function with name {:?}",
                    c.func.name
                )));
            }
            c.args.args.iter().try_for_each(|a| check_known(a))
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !AGGREGATIONS.contains(&op.to_lowercase().as_str()) {
                return Err(Error::BadData(format!(
                    "parse error: unknown aggregation {op}"
                )));
            }
            check_known(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), check_known)
        }
        Expr::Unary(u) => check_known(&u.expr),
        Expr::Binary(b) => {
            check_known(&b.lhs)?;
            check_known(&b.rhs)
        }
        Expr::Paren(p) => check_known(&p.expr),
        Expr::Subquery(s) => check_known(&s.expr),
        _ => Ok(()),
    }
}

/// Parses a series selector as used by `match[]`: a vector selector
/// without modifiers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>> {
    match parse(s)? {
        Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => {
            super::engine::matchers(&vs)
        }
        _ => Err(Error::BadData(format!(
            "{s:?} is not a series selector (expected e.g. up{{job=\"x\"}})"
        ))),
    }
}

/// Parses a metric selector as Prometheus's `parser.ParseMetricSelector`
/// (`match_target`): like [`parse_selector`], but a selector whose
/// matchers all match the empty value (`{}`, `{job=""}`) is accepted and
/// selects everything, since that function skips the check the query
/// parser makes.
pub fn parse_metric_selector(s: &str) -> Result<Vec<Matcher>> {
    const SENTINEL: &str = "__scrapegrid_sentinel__";
    match parse_selector(s) {
        Err(Error::BadData(e)) if e.contains("at least one non-empty matcher") => {
            let Some(brace) = s.find('{') else {
                return Err(Error::BadData(e));
            };
            let with = format!("{}{{{SENTINEL}=\"x\",{}", &s[..brace], &s[brace + 1..]);
            let mut matchers = parse_selector(&with)?;
            matchers.retain(|m| m.name != SENTINEL);
            Ok(matchers)
        }
        other => other,
    }
}

/// Parses `query`, any PromQL expression, and returns the matchers of
/// every vector selector in it (those inside range selectors, function
/// calls, aggregations, operators and subqueries included), in order, as
/// Prometheus's `parser.ExtractSelectors`. Modifiers are ignored.
pub fn extract_selectors(query: &str) -> Result<Vec<Vec<Matcher>>> {
    let ast = parser::parse(query).map_err(Error::BadData)?;
    let mut out = Vec::new();
    collect_selectors(&ast, &mut out)?;
    Ok(out)
}

fn collect_selectors(e: &parser::Expr, out: &mut Vec<Vec<Matcher>>) -> Result<()> {
    use parser::Expr as E;
    match e {
        E::VectorSelector(vs) => out.push(super::engine::matchers(vs)?),
        E::MatrixSelector(ms) => out.push(super::engine::matchers(&ms.vs)?),
        E::Aggregate(a) => {
            collect_selectors(&a.expr, out)?;
            if let Some(param) = &a.param {
                collect_selectors(param, out)?;
            }
        }
        E::Unary(u) => collect_selectors(&u.expr, out)?,
        E::Binary(b) => {
            collect_selectors(&b.lhs, out)?;
            collect_selectors(&b.rhs, out)?;
        }
        E::Paren(p) => collect_selectors(&p.expr, out)?,
        E::Subquery(s) => collect_selectors(&s.expr, out)?,
        E::Call(c) => {
            for arg in &c.args.args {
                collect_selectors(arg, out)?;
            }
        }
        E::Extension(x) => {
            for child in x.expr.children() {
                collect_selectors(child, out)?;
            }
        }
        E::NumberLiteral(_) | E::StringLiteral(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_prometheus_2_42_does_not_know() {
        assert!(parse("rate(up[5m])").is_ok());
        assert!(parse("sum by (job) (up) / on() group_left count(up)").is_ok());
        match parse("sort_by_label(up, \"job\")") {
            Err(Error::BadData(msg)) => assert!(msg.contains("unknown function"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("up{"), Err(Error::BadData(_))));
        assert!(parse_selector("up[5m]").is_err());
        assert!(parse_selector("up offset 1m").is_err());
        assert_eq!(parse_selector(r#"{job="a"}"#).unwrap().len(), 1);
        assert!(parse_selector(r#"{job=""}"#).is_err(), "matches everything");
    }

    #[test]
    fn extracts_every_selector() {
        let names = |q: &str| -> Vec<Vec<String>> {
            extract_selectors(q)
                .unwrap()
                .iter()
                .map(|set| {
                    set.iter()
                        .map(|m| format!("{}:{}", m.name, m.matches("a")))
                        .collect()
                })
                .collect()
        };
        assert_eq!(names(r#"up{job="a"}"#), [["__name__:false", "job:true"]]);
        assert_eq!(
            names(r#"sum by (job) (rate(a[5m])) / on() group_left topk(scalar(b), -c offset 1m)"#),
            [["__name__:true"], ["__name__:false"], ["__name__:false"]],
            "range selectors, calls, aggregation params, unary and binary operators"
        );
        assert_eq!(names("max_over_time(a[10m:1m])").len(), 1, "subquery");
        assert!(names("1 + 2").is_empty());
        assert!(names(r#""s""#).is_empty());
        assert!(matches!(extract_selectors("up{"), Err(Error::BadData(_))));
        assert!(matches!(extract_selectors(""), Err(Error::BadData(_))));
    }
}
