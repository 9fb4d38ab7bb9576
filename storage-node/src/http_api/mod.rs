//! The Prometheus HTTP API (`/api/v1/query`, `query_range`, `series`,
//! `labels`, `label/<name>/values`, `query_exemplars` in [`exemplars`],
//! `metadata` and `targets/metadata` in [`metadata`]),
//! Prometheus remote write and read
//! (`/api/v1/write`, `/api/v1/read`, in [`remote`]),
//! `/api/v1/status/tsdb` ([`tsdb_status`]), plus `/metrics`, `/-/healthy`
//! and `/-/ready`, and the web UI's pages (`/graph`, `/tsdb-status`, from
//! `ui/`).
//!
//! Handlers parse parameters ([`params`]) on the async thread, then run the
//! query on the blocking pool under the query timeout, and encode the
//! answer with Prometheus's exact JSON shapes ([`json`]). Errors use
//! Prometheus's envelope and status codes: `bad_data` 400, `internal` 500, `timeout` and `unavailable` 503.

pub mod exemplars;
pub mod json;
pub mod metadata;
pub mod params;
pub mod remote;
pub mod tsdb_status;

use scrapegrid_common::security::Token;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use scrapegrid_common::clock::now_ms;
use scrapegrid_common::Labels;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::error::Error;
use crate::index::{Index, Matcher, TimeRange};
use crate::query::{self, promql, DbSource};
use crate::writer::WriterHandle;
use params::{parse_duration_ms, parse_time, Params, PROM_MAX_TIME_MS, PROM_MIN_TIME_MS};
use scrapegrid_common::labels::is_valid_label_name;

/// Points per series a range query may return at most, as in Prometheus.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub db: Arc<Db>,
    pub metrics: PrometheusHandle,
    /// Cancelled at shutdown: `/-/ready` then answers 503.
    pub shutdown: CancellationToken,
    pub query_timeout: Duration,
    /// How PromQL evaluates.
    pub engine: crate::query::engine::EngineOptions,
    /// Takes remote writes ([`remote`]).
    pub writer: WriterHandle,
    /// The bearer token queries and remote reads must present, if any.
    pub read_token: Option<Token>,
    /// The bearer token remote writes must present, if any.
    pub write_token: Option<Token>,
    /// Reloads `remote_write` (`POST /-/reload`).
    pub reloader: Arc<crate::egress::Reloader>,
    /// The targets' metadata ([`metadata`]).
    pub metadata: Arc<crate::metadata::MetadataStore>,
}

/// The web UI (`/` leads to the first page).
static UI: scrapegrid_common::web::Site = scrapegrid_common::web::Site {
    node: "storage node",
    pages: &[
        scrapegrid_common::web::Page {
            path: "/graph",
            title: "Graph",
            scripts: &["/ui/static/graph.js"],
            body: include_str!("../ui/graph.html"),
        },
        scrapegrid_common::web::Page {
            path: "/tsdb-status",
            title: "TSDB status",
            scripts: &[],
            body: include_str!("../ui/tsdb_status.html"),
        },
    ],
};

/// Returns the router of every HTTP endpoint.
pub fn router(state: ApiState) -> Router {
    let reads = Router::new()
        .route("/api/v1/query", get(instant_query).post(instant_query))
        .route("/api/v1/query_range", get(range_query).post(range_query))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(label_names).post(label_names))
        .route(
            "/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route(
            "/api/v1/query_exemplars",
            get(exemplars::query_exemplars).post(exemplars::query_exemplars),
        )
        .route("/api/v1/metadata", get(metadata::metric_metadata))
        .route("/api/v1/targets/metadata", get(metadata::target_metadata))
        .route("/api/v1/read", post(remote::read))
        .route("/api/v1/status/tsdb", get(tsdb_status::tsdb_status))
        .route_layer(axum::middleware::from_fn_with_state(
            state.read_token.clone(),
            scrapegrid_common::security::require_bearer,
        ));
    let writes = Router::new()
        .route("/api/v1/write", post(remote::write))
        .route_layer(axum::middleware::from_fn_with_state(
            state.write_token.clone(),
            scrapegrid_common::security::require_bearer,
        ));
    Router::new()
        .merge(reads)
        .merge(writes)
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route(
            "/-/reload",
            post(reload)
                .put(reload)
                .route_layer(axum::middleware::from_fn(
                    scrapegrid_common::security::refuse_cross_site,
                )),
        )
        .merge(scrapegrid_common::web::router(&UI))
        .route_layer(axum::middleware::from_fn(crate::metrics::track_http))
        .with_state(state)
}

/// An API error: Prometheus's `errorType` and message.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    BadData,
    /// The query failed while it ran (422, as Prometheus).
    Execution,
    Internal,
    Timeout,
    Unavailable,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadData,
            message: message.into(),
        }
    }

    fn invalid_param(name: &str, err: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {err}"))
    }

    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::BadData(_) | Error::InvalidMatchers(_) => ErrorKind::BadData,
            Error::Execution(_) => ErrorKind::Execution,
            Error::QueryTimeout(_) => ErrorKind::Timeout,
            Error::ShuttingDown | Error::WriterUnavailable(_) | Error::DiskFull(_) => {
                ErrorKind::Unavailable
            }
            Error::Storage(_)
            | Error::Open { .. }
            | Error::Corrupt { .. }
            | Error::Io(_)
            | Error::Transport(_)
            | Error::Tls(_)
            | Error::Superseded { .. } => ErrorKind::Internal,
        };
        Self::new(kind, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, name) = match self.kind {
            ErrorKind::BadData => (StatusCode::BAD_REQUEST, "bad_data"),
            ErrorKind::Execution => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ErrorKind::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self.message, "api request failed");
        }
        json_response(status, json::error(name, &self.message))
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn success(data: &str) -> Response {
    json_response(StatusCode::OK, json::success(data))
}

/// Runs `f` on the blocking pool under the query timeout.
async fn blocking<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = state.db.clone();
    let task = tokio::task::spawn_blocking(move || f(&db));
    match tokio::time::timeout(state.query_timeout, task).await {
        Ok(Ok(res)) => res,
        Ok(Err(join)) => Err(ApiError::new(
            ErrorKind::Internal,
            format!("query task failed: {join}"),
        )),
        Err(_) => Err(ApiError::new(
            ErrorKind::Timeout,
            "query timed out in query execution",
        )),
    }
}

/// Parses an optional time parameter.
fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| ApiError::invalid_param(name, e)),
    }
}

/// Parses `start` and `end` of the metadata endpoints; Prometheus's own
/// min/max times mean "unbounded".
fn metadata_range(p: &Params) -> Result<TimeRange, ApiError> {
    let start = time_param(p, "start", i64::MIN)?;
    let end = time_param(p, "end", i64::MAX)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    Ok(TimeRange {
        start: if start <= PROM_MIN_TIME_MS {
            i64::MIN
        } else {
            start
        },
        end: if end >= PROM_MAX_TIME_MS {
            i64::MAX
        } else {
            end
        },
    })
}

/// Parses every `match[]` parameter.
fn match_params(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .into_iter()
        .map(|s| promql::parse_selector(s).map_err(|e| ApiError::invalid_param("match[]", e)))
        .collect()
}

fn parse_query(p: &Params) -> Result<query::Expr, ApiError> {
    query::parse(p.get("query").unwrap_or("")).map_err(|e| ApiError::invalid_param("query", e))
}

async fn instant_query(State(state): State<ApiState>, p: Params) -> Result<Response, ApiError> {
    let t = time_param(&p, "time", now_ms())?;
    let expr = parse_query(&p)?;
    let opts = state.engine.with_timeout(state.query_timeout);
    let value = blocking(&state, move |db| {
        Ok(query::eval_instant(&DbSource::new(db), opts, &expr, t)?)
    })
    .await?;
    Ok(success(&json::query_data(&value)))
}

/// `/api/v1/status/buildinfo`, so that Grafana and other clients detect a
/// Prometheus API of the version whose semantics this one follows.
async fn buildinfo() -> Response {
    success(&format!(
        r#"{{"version":"{}","revision":"scrapegrid-{}","branch":"","buildUser":"","buildDate":"","goVersion":""}}"#,
        crate::query::PROMETHEUS_VERSION,
        env!("CARGO_PKG_VERSION")
    ))
}

async fn range_query(State(state): State<ApiState>, p: Params) -> Result<Response, ApiError> {
    let start = parse_time(p.get("start").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end =
        parse_time(p.get("end").unwrap_or("")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration_ms(p.get("step").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end as i128 - start as i128) / step as i128 > MAX_POINTS_PER_SERIES as i128 {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = parse_query(&p)?;
    let opts = state.engine.with_timeout(state.query_timeout);
    let value = blocking(&state, move |db| {
        match query::eval_range(&DbSource::new(db), opts, &expr, start, end, step) {
            // A result type a range query cannot have is a bad parameter;
            // anything else failed while it ran.
            Err(e @ crate::error::Error::BadData(_)) => Err(ApiError::invalid_param("query", e)),
            other => Ok(other?),
        }
    })
    .await?;
    Ok(success(&json::query_data(&value)))
}

async fn series(State(state): State<ApiState>, p: Params) -> Result<Response, ApiError> {
    let sets = match_params(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let range = metadata_range(&p)?;
    let found = blocking(&state, move |db| {
        let snap = db.raw().snapshot();
        let index = Index::at(db, &snap);
        let mut all = BTreeSet::<Labels>::new();
        for matchers in &sets {
            all.extend(
                index
                    .series_in_range(matchers, range)?
                    .into_iter()
                    .map(|(_, l)| l),
            );
        }
        Ok(all.into_iter().collect::<Vec<_>>())
    })
    .await?;
    Ok(success(&json::label_sets(&found)))
}

async fn label_names(State(state): State<ApiState>, p: Params) -> Result<Response, ApiError> {
    let sets = match_params(&p)?;
    let range = metadata_range(&p)?;
    let names = blocking(&state, move |db| {
        let snap = db.raw().snapshot();
        let index = Index::at(db, &snap);
        if sets.is_empty() {
            return Ok(index.label_names(&[], range)?);
        }
        let mut all = BTreeSet::new();
        for matchers in &sets {
            all.extend(index.label_names(matchers, range)?);
        }
        Ok(all.into_iter().collect())
    })
    .await?;
    Ok(success(&json::strings(&names)))
}

async fn label_values(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    if !is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = match_params(&p)?;
    let range = metadata_range(&p)?;
    let values = blocking(&state, move |db| {
        let snap = db.raw().snapshot();
        let index = Index::at(db, &snap);
        if sets.is_empty() {
            return Ok(index.label_values(&name, &[], range)?);
        }
        let mut all = BTreeSet::new();
        for matchers in &sets {
            all.extend(index.label_values(&name, matchers, range)?);
        }
        Ok(all.into_iter().collect())
    })
    .await?;
    Ok(success(&json::strings(&values)))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Reloads `remote_write` from the `--config` file, as Prometheus's
/// `/-/reload`: 200, or 500 with the error (the previous config stays).
async fn reload(State(state): State<ApiState>) -> (StatusCode, String) {
    match state.reloader.reload().await {
        Ok(done) => (StatusCode::OK, format!("{done}\n")),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
    }
}

async fn healthy() -> &'static str {
    "Storage node is Healthy.\n"
}

async fn ready(State(state): State<ApiState>) -> Response {
    if state.shutdown.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage node is shutting down.\n",
        )
            .into_response()
    } else {
        "Storage node is Ready.\n".into_response()
    }
}
