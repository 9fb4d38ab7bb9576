//! The gRPC `Query` service: converts requests, calls the index and sample
//! reads on the blocking pool, converts the answers back.
//!
//! A request whose `start_ms` and `end_ms` are both 0 (fields left unset)
//! means "no time restriction" for `LabelNames` and `LabelValues`.

use std::sync::Arc;

use scrapegrid_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::index::{check_selectable, Index, Matcher, TimeRange};
use crate::query::engine::{EngineOptions, Point};
use crate::query::{self, DbSource, SeriesSource, Value};
use scrapegrid_common::histogram;

/// The `Query` gRPC service.
#[derive(Debug, Clone)]
pub struct QueryService {
    db: Arc<Db>,
    /// PromQL options and the query timeout, as the HTTP API's.
    engine: EngineOptions,
    timeout: std::time::Duration,
}

impl QueryService {
    pub fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            engine: EngineOptions::default(),
            timeout: std::time::Duration::from_secs(120),
        }
    }

    /// Evaluates PromQL with `engine`, giving up after `timeout`.
    pub fn with_engine(mut self, engine: EngineOptions, timeout: std::time::Duration) -> Self {
        self.engine = engine;
        self.timeout = timeout;
        self
    }

    /// The gRPC service; with `token`, only readers presenting it are
    /// admitted.
    pub fn into_server(
        self,
        token: Option<scrapegrid_common::security::Token>,
    ) -> tonic::service::interceptor::InterceptedService<
        pb::query_server::QueryServer<Self>,
        impl tonic::service::Interceptor + Clone,
    > {
        tonic::service::interceptor::InterceptedService::new(
            pb::query_server::QueryServer::new(self),
            scrapegrid_common::security::require_token(token),
        )
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| Status::internal(format!("query task failed: {e}")))?
            .map_err(Status::from)
    }
}

fn matchers(ms: &[pb::Matcher]) -> Result<Vec<Matcher>> {
    ms.iter().map(Matcher::from_proto).collect()
}

fn range(start_ms: i64, end_ms: i64) -> Result<TimeRange> {
    if start_ms == 0 && end_ms == 0 {
        return Ok(TimeRange::ALL);
    }
    if end_ms < start_ms {
        return Err(Error::BadData("end_ms is before start_ms".into()));
    }
    Ok(TimeRange {
        start: start_ms,
        end: end_ms,
    })
}

/// The wire form of a query result.
fn query_result(value: Value) -> pb::QueryResult {
    let series = |labels: &scrapegrid_common::Labels, points: &[Point]| {
        let floats = || points.iter().filter(|p| p.h.is_none());
        pb::SeriesSamples {
            labels: labels.to_proto(),
            timestamps_ms: floats().map(|p| p.t).collect(),
            values: floats().map(|p| p.v).collect(),
            histograms: points
                .iter()
                .filter_map(|p| Some(histogram::float_to_pb(p.h.as_deref()?, p.t)))
                .collect(),
        }
    };
    match value {
        Value::Vector(v) => pb::QueryResult {
            result_type: "vector".into(),
            series: v
                .iter()
                .map(|(l, s)| series(l, std::slice::from_ref(s)))
                .collect(),
            ..Default::default()
        },
        Value::Matrix(m) => pb::QueryResult {
            result_type: "matrix".into(),
            series: m.iter().map(|(l, p)| series(l, p)).collect(),
            ..Default::default()
        },
        Value::Scalar(s) => pb::QueryResult {
            result_type: "scalar".into(),
            time_ms: s.t,
            scalar: s.v,
            ..Default::default()
        },
        Value::String(t, s) => pb::QueryResult {
            result_type: "string".into(),
            time_ms: t,
            string: s,
            ..Default::default()
        },
    }
}

#[tonic::async_trait]
impl pb::query_server::Query for QueryService {
    async fn instant(
        &self,
        request: Request<pb::InstantQueryRequest>,
    ) -> Result<Response<pb::QueryResult>, Status> {
        let req = request.into_inner();
        let expr = query::parse(&req.query)?;
        let opts = self.engine.with_timeout(self.timeout);
        let value = self
            .blocking(move |db| query::eval_instant(&DbSource::new(db), opts, &expr, req.time_ms))
            .await?;
        Ok(Response::new(query_result(value)))
    }

    async fn range(
        &self,
        request: Request<pb::RangeQueryRequest>,
    ) -> Result<Response<pb::QueryResult>, Status> {
        let req = request.into_inner();
        if req.end_ms < req.start_ms {
            return Err(Error::BadData("end_ms is before start_ms".into()).into());
        }
        if req.step_ms <= 0 {
            return Err(Error::BadData("step_ms must be positive".into()).into());
        }
        if (req.end_ms as i128 - req.start_ms as i128) / req.step_ms as i128
            > crate::http_api::MAX_POINTS_PER_SERIES as i128
        {
            return Err(Error::BadData("more than 11,000 steps".into()).into());
        }
        let expr = query::parse(&req.query)?;
        let opts = self.engine.with_timeout(self.timeout);
        let value = self
            .blocking(move |db| {
                query::eval_range(
                    &DbSource::new(db),
                    opts,
                    &expr,
                    req.start_ms,
                    req.end_ms,
                    req.step_ms,
                )
            })
            .await?;
        Ok(Response::new(query_result(value)))
    }

    async fn select(
        &self,
        request: Request<pb::SelectRequest>,
    ) -> Result<Response<pb::SelectResponse>, Status> {
        let req = request.into_inner();
        let ms = matchers(&req.matchers)?;
        check_selectable(&ms)?;
        if req.end_ms < req.start_ms {
            return Err(Error::BadData("end_ms is before start_ms".into()).into());
        }
        let series = self
            .blocking(move |db| select_series(db, &ms, req.start_ms, req.end_ms))
            .await?;
        Ok(Response::new(pb::SelectResponse { series }))
    }

    async fn label_names(
        &self,
        request: Request<pb::LabelNamesRequest>,
    ) -> Result<Response<pb::LabelNamesResponse>, Status> {
        let req = request.into_inner();
        let ms = matchers(&req.matchers)?;
        let range = range(req.start_ms, req.end_ms)?;
        let names = self
            .blocking(move |db| Index::at(db, &db.raw().snapshot()).label_names(&ms, range))
            .await?;
        Ok(Response::new(pb::LabelNamesResponse { names }))
    }

    async fn label_values(
        &self,
        request: Request<pb::LabelValuesRequest>,
    ) -> Result<Response<pb::LabelValuesResponse>, Status> {
        let req = request.into_inner();
        let ms = matchers(&req.matchers)?;
        let range = range(req.start_ms, req.end_ms)?;
        let name = req.name;
        let values = self
            .blocking(move |db| Index::at(db, &db.raw().snapshot()).label_values(&name, &ms, range))
            .await?;
        Ok(Response::new(pb::LabelValuesResponse { values }))
    }
}

/// The series matching `ms` with their samples in `[start_ms, end_ms]`,
/// read as HTTP reads them: the index and every series at one snapshot.
fn select_series(
    db: &Db,
    ms: &[Matcher],
    start_ms: i64,
    end_ms: i64,
) -> crate::error::Result<Vec<pb::SeriesSamples>> {
    Ok(DbSource::new(db)
        .select(ms, start_ms, end_ms)?
        .into_iter()
        .map(|s| pb::SeriesSamples {
            labels: s.labels.to_proto(),
            timestamps_ms: s.samples.iter().map(|p| p.t).collect(),
            values: s.samples.iter().map(|p| p.v).collect(),
            histograms: s.histograms.into_iter().map(|h| h.h).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests;
