//! `/api/v1/metadata` and `/api/v1/targets/metadata`, as Prometheus 2.42's
//! `metricMetadata` and `targetMetadata` answer them from the scrape caches
//! of its active targets; here from the [`crate::metadata::MetadataStore`] the scrapers fill.
//!
//! Prometheus walks its targets and metric names in Go map order, so with a
//! `limit` it returns an arbitrary subset; here targets are walked ordered
//! by their labels and metric names in sorted order, so the subset is
//! stable. The rules are Prometheus's: `limit` counts metric names in
//! `/api/v1/metadata`; in `/api/v1/targets/metadata` it is checked before
//! each target, whose whole list is then added (so the answer can hold more
//! than `limit` entries). A negative `limit` is no limit.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::response::Response;

use super::params::Params;
use super::{json, success, ApiError, ApiState};
use crate::index::Matcher;
use crate::metadata::MetricMetadata;
use crate::query::promql;

/// Parses `limit` as Go's `strconv.Atoi`; -1 when absent.
fn limit(p: &Params) -> Result<i64, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(-1),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::bad_data("limit must be a number")),
    }
}

/// Whether `limit` is reached at `len` entries.
fn reached(limit: i64, len: usize) -> bool {
    limit >= 0 && len as u64 >= limit as u64
}

/// Writes `"type":..,"help":..,"unit":..` (no braces).
fn write_fields(out: &mut String, m: &MetricMetadata) {
    out.push_str("\"type\":");
    json::write_str(out, &m.kind);
    out.push_str(",\"help\":");
    json::write_str(out, &m.help);
    out.push_str(",\"unit\":");
    json::write_str(out, &m.unit);
}

/// Handles `GET /api/v1/metadata`: per metric name, the distinct
/// (type, help, unit) of every target that has it.
pub async fn metric_metadata(
    State(state): State<ApiState>,
    p: Params,
) -> Result<Response, ApiError> {
    let limit = limit(&p)?;
    let metric = p.get("metric").unwrap_or("");
    let mut metrics: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    for t in state.metadata.targets() {
        for m in t.metrics.iter() {
            if !metric.is_empty() && m.metric != metric {
                continue;
            }
            metrics.entry(m.metric.clone()).or_default().insert((
                m.kind.clone(),
                m.help.clone(),
                m.unit.clone(),
            ));
        }
    }
    let mut out = String::from("{");
    for (i, (name, set)) in metrics.iter().enumerate() {
        if reached(limit, i) {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        json::write_str(&mut out, name);
        out.push_str(":[");
        for (j, (kind, help, unit)) in set.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('{');
            write_fields(
                &mut out,
                &MetricMetadata {
                    metric: String::new(),
                    kind: kind.clone(),
                    help: help.clone(),
                    unit: unit.clone(),
                },
            );
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    Ok(success(&out))
}

/// Handles `GET /api/v1/targets/metadata`: the metadata of each target
/// that `match_target` selects, all of it or that of `metric` (then
/// without the `metric` field, as Prometheus).
pub async fn target_metadata(
    State(state): State<ApiState>,
    p: Params,
) -> Result<Response, ApiError> {
    let limit = limit(&p)?;
    let matchers: Vec<Matcher> = match p.get("match_target") {
        None | Some("") => Vec::new(),
        Some(s) => promql::parse_metric_selector(s)
            .map_err(|e| ApiError::invalid_param("match_target", e))?,
    };
    let metric = p.get("metric").unwrap_or("");
    let mut out = String::from("[");
    let mut n = 0usize;
    for t in state.metadata.targets() {
        if reached(limit, n) {
            break;
        }
        if !matchers.iter().all(|m| m.matches_labels(&t.target)) {
            continue;
        }
        for m in t.metrics.iter() {
            if !metric.is_empty() && m.metric != metric {
                continue;
            }
            if n > 0 {
                out.push(',');
            }
            n += 1;
            out.push_str("{\"target\":");
            json::write_labels(&mut out, &t.target);
            if metric.is_empty() {
                out.push_str(",\"metric\":");
                json::write_str(&mut out, &m.metric);
            }
            out.push(',');
            write_fields(&mut out, m);
            out.push('}');
        }
    }
    out.push(']');
    Ok(success(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_go_atoi() {
        let p = |v: &str| Params(vec![("limit".into(), v.into())]);
        assert_eq!(limit(&p("3")).unwrap(), 3);
        assert_eq!(limit(&p("+3")).unwrap(), 3);
        assert_eq!(limit(&p("-1")).unwrap(), -1);
        assert_eq!(limit(&Params::default()).unwrap(), -1);
        for bad in ["x", "1.5", " 1", "99999999999999999999"] {
            assert!(limit(&p(bad)).is_err(), "{bad:?}");
        }
        assert!(reached(0, 0));
        assert!(!reached(-1, 1_000));
        assert!(reached(2, 2) && !reached(2, 1));
    }

    #[test]
    fn match_target_is_a_metric_selector_that_may_match_everything() {
        let n = |s: &str| promql::parse_metric_selector(s).map(|m| m.len());
        assert_eq!(n("{}").unwrap(), 0);
        assert_eq!(n(r#"{job=""}"#).unwrap(), 1);
        assert_eq!(n(r#"{job=~".*", instance!="a"}"#).unwrap(), 2);
        assert_eq!(n("up").unwrap(), 1);
        assert_eq!(n(r#"{job="a"}"#).unwrap(), 1);
        assert!(n("{job=").is_err());
        assert!(n("rate(up[5m])").is_err());
    }
}
