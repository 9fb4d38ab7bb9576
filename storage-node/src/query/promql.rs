//! Parsing PromQL (with `promql-parser`) into the expressions this version
//! evaluates. Anything else is refused as `bad_data`.

use std::time::{Duration, SystemTime};

use promql_parser::parser::{self, AtModifier, Offset};

use crate::error::{Error, Result};
use crate::index::{self, Matcher};

/// An expression this version evaluates.
#[derive(Debug, Clone)]
pub enum Expr {
    /// An instant vector selector.
    Vector(Selector),
    /// A range vector selector; the range in milliseconds.
    Matrix(Selector, i64),
    Number(f64),
    String(String),
}

/// The `@` modifier of a selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `@ start()`: the start of the query range.
    Start,
    /// `@ end()`: the end of the query range.
    End,
    /// A fixed time in milliseconds.
    Ms(i64),
}

/// A series selector with its modifiers.
#[derive(Debug, Clone)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
    /// `offset` in milliseconds; negative for a negative offset.
    pub offset_ms: i64,
    pub at: Option<At>,
}

impl Selector {
    /// Returns the time the selector reads at when the query evaluates at
    /// `t` within the range [`start`, `end`].
    pub fn ref_time(&self, t: i64, start: i64, end: i64) -> i64 {
        let base = match self.at {
            None => t,
            Some(At::Start) => start,
            Some(At::End) => end,
            Some(At::Ms(ms)) => ms,
        };
        base.saturating_sub(self.offset_ms)
    }
}

/// Parses `query`.
pub fn parse(query: &str) -> Result<Expr> {
    let ast = parser::parse(query).map_err(Error::BadData)?;
    convert(&ast)
}

/// Parses a series selector as used by `match[]`: a vector selector
/// without modifiers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>> {
    match parse(s)? {
        Expr::Vector(sel) if sel.offset_ms == 0 && sel.at.is_none() => Ok(sel.matchers),
        _ => Err(Error::BadData(format!(
            "{s:?} is not a series selector (expected e.g. up{{job=\"x\"}})"
        ))),
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
        E::VectorSelector(vs) => out.push(selector(vs)?.matchers),
        E::MatrixSelector(ms) => out.push(selector(&ms.vs)?.matchers),
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

fn convert(e: &parser::Expr) -> Result<Expr> {
    match e {
        parser::Expr::VectorSelector(vs) => Ok(Expr::Vector(selector(vs)?)),
        parser::Expr::MatrixSelector(ms) => Ok(Expr::Matrix(selector(&ms.vs)?, millis(ms.range))),
        parser::Expr::NumberLiteral(n) => Ok(Expr::Number(n.val)),
        parser::Expr::StringLiteral(s) => Ok(Expr::String(s.val.clone())),
        parser::Expr::Paren(p) => convert(&p.expr),
        other => Err(unsupported(other)),
    }
}

fn unsupported(e: &parser::Expr) -> Error {
    Error::BadData(format!("unsupported expression: {e}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn selector(vs: &parser::VectorSelector) -> Result<Selector> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Error::BadData(format!(
            "unsupported expression: {vs} (\"or\" inside a selector)"
        )));
    }
    let mut matchers: Vec<Matcher> = vs
        .matchers
        .matchers
        .iter()
        .map(Matcher::from_promql)
        .collect();
    if let Some(name) = &vs.name {
        matchers.insert(0, Matcher::equal(scrapegrid_common::METRIC_NAME, name));
    }
    index::check_selectable(&matchers).map_err(|e| Error::BadData(e.to_string()))?;
    let offset_ms = match &vs.offset {
        None => 0,
        Some(Offset::Pos(d)) => millis(*d),
        Some(Offset::Neg(d)) => -millis(*d),
    };
    let at = match &vs.at {
        None => None,
        Some(AtModifier::Start) => Some(At::Start),
        Some(AtModifier::End) => Some(At::End),
        Some(AtModifier::At(t)) => Some(At::Ms(system_time_ms(*t))),
    };
    Ok(Selector {
        matchers,
        offset_ms,
        at,
    })
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors_with_modifiers() {
        let Expr::Vector(sel) = parse(r#"up{job="a", env=~"p.*"} offset 1m"#).unwrap() else {
            panic!("not a vector selector");
        };
        assert_eq!(sel.matchers.len(), 3);
        assert_eq!(sel.matchers[0].name, "__name__");
        assert_eq!(sel.offset_ms, 60_000);
        assert_eq!(sel.ref_time(100_000, 0, 0), 40_000);

        let Expr::Matrix(sel, range) = parse("up[5m] @ 100").unwrap() else {
            panic!("not a matrix selector");
        };
        assert_eq!(range, 300_000);
        assert_eq!(sel.at, Some(At::Ms(100_000)));
        assert_eq!(sel.ref_time(5, 0, 0), 100_000);

        let Expr::Vector(sel) = parse("(up @ end() offset -30s)").unwrap() else {
            panic!("not a vector selector");
        };
        assert_eq!(sel.ref_time(1, 10, 20), 30_020);
        assert!(matches!(parse("1.5").unwrap(), Expr::Number(v) if v == 1.5));
        assert!(matches!(parse(r#""s""#).unwrap(), Expr::String(s) if s == "s"));
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for (q, want) in [
            ("rate(up[5m])", "unsupported expression: rate(up[5m])"),
            ("sum(up)", "unsupported expression: sum(up)"),
            ("up + 1", "unsupported expression: up + 1"),
        ] {
            match parse(q) {
                Err(Error::BadData(msg)) => assert_eq!(msg, want),
                other => panic!("{q}: {other:?}"),
            }
        }
        assert!(matches!(parse("up{"), Err(Error::BadData(_))));
        assert!(matches!(parse(r#"{job=""}"#), Err(Error::BadData(_))));
        assert!(parse_selector("up[5m]").is_err());
        assert_eq!(parse_selector(r#"{job="a"}"#).unwrap().len(), 1);
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
