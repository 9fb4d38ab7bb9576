//! `/api/v1/query_exemplars`, as Prometheus 2.42's `queryExemplars`: the
//! query is any PromQL expression; the exemplars of the series any of its
//! vector selectors selects, timestamped within `[start, end]` (both
//! optional, unbounded by default), grouped by series and sorted by series
//! labels. A query without a selector answers `null`.

use axum::extract::State;
use axum::response::Response;

use super::params::{parse_time, Params};
use super::{blocking, json, success, ApiError, ApiState};
use crate::exemplars;
use crate::query::promql;

/// Parses an optional time parameter with Prometheus's error text.
fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| {
            ApiError::invalid_param(name, format!("Invalid time value for '{name}': {e}"))
        }),
    }
}

/// Handles `GET|POST /api/v1/query_exemplars`.
pub async fn query_exemplars(
    State(state): State<ApiState>,
    p: Params,
) -> Result<Response, ApiError> {
    let start = time_param(&p, "start", i64::MIN)?;
    let end = time_param(&p, "end", i64::MAX)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let selectors = promql::extract_selectors(p.get("query").unwrap_or(""))?;
    if selectors.is_empty() {
        return Ok(success("null"));
    }
    let found = blocking(&state, move |db| {
        Ok(exemplars::select(db, &selectors, start, end)?)
    })
    .await?;
    Ok(success(&json::exemplar_results(&found)))
}
