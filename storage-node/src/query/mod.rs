//! PromQL evaluation, as far as this version goes: instant and range vector
//! selectors (with `offset` and `@`), number and string literals.
//!
//! [`promql`] parses a query into an [`promql::Expr`]; [`eval`] evaluates it
//! at one instant or over a range of steps, reading series through a
//! [`select::SeriesSource`] (the database, or a fixed set in tests).

pub mod eval;
pub mod promql;
pub mod select;

pub use eval::{eval_instant, eval_range, Value, LOOKBACK_DELTA_MS};
pub use promql::{parse, Expr, Selector};
pub use select::{DbSource, Series, SeriesSource};
