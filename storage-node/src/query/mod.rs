//! PromQL, as Prometheus 2.42 evaluates it.
//!
//! [`promql`] parses a query into promql-parser's AST; [`engine`] evaluates
//! it over the steps of a query, reading series through a
//! [`select::SeriesSource`] (the database, or a fixed set in tests); [`eval`]
//! shapes the result as the HTTP API returns it.

pub mod engine;
pub mod eval;
pub mod promql;
pub mod select;

pub use eval::{eval_instant, eval_range, Value, LOOKBACK_DELTA_MS};
pub use promql::parse;
pub use promql_parser::parser::Expr;
pub use select::{DbSource, Series, SeriesSource};

/// The Prometheus version whose PromQL and API semantics the storage node
/// follows (what `/api/v1/status/buildinfo` reports).
pub const PROMETHEUS_VERSION: &str = "2.42.0";
