//! The case table: every case with what it proves, grouped by the issue's
//! bullets. [`formats`] holds the exposition-format cases (text, OpenMetrics,
//! protobuf, Content-Type), [`scrape`] the scrape-semantics cases (labels,
//! relabeling, limits, failures, staleness). A case's `up(...)` is what
//! Prometheus 2.42 stores for `up`.

mod formats;
mod scrape;

use std::sync::Arc;

use super::cases::{finish, Case};

/// Returns every case.
pub fn all() -> Vec<Arc<Case>> {
    let mut v = Vec::new();
    v.extend(formats::text_format());
    v.extend(formats::openmetrics());
    v.extend(formats::protobuf());
    v.extend(formats::content_type());
    v.extend(scrape::labels());
    v.extend(scrape::metric_relabel());
    v.extend(scrape::target_relabel());
    v.extend(scrape::limits());
    v.extend(scrape::failures());
    v.extend(scrape::staleness());
    finish(v)
}
