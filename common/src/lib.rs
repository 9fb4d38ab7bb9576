//! What the control plane and the scraper nodes share.
//!
//! - [`labels`]: the label set type every plane uses.
//! - [`relabel`]: one relabeling engine for target relabeling (control plane)
//!   and metric relabeling (scrapers), with Prometheus's actions and defaults.
//! - [`config`]: the `prometheus.yml` model: serde structs that accept what
//!   Prometheus accepts, then `validate()` into a typed config whose errors name
//!   the file, the job and the field.
//! - [`duration`]: Prometheus duration syntax (`15s`, `1m30s`).
//! - [`clock`]: the wall clock in Unix milliseconds.
//! - [`go_quote`]: Go's `strconv.Quote`, for texts that must read as Prometheus's.
//! - [`telemetry`]: tracing and the `/metrics` recorder every binary installs.
//! - [`xorshift`]: a seeded generator for property tests, simulations and benchmarks.
//!
//! Data flows one way: the control plane loads [`config`], relabels targets
//! with [`relabel`], and ships each job's metric relabel rules to scrapers as
//! `RelabelRule` messages that scrapers turn back into [`relabel::RelabelConfig`].

pub mod clock;
pub mod config;
pub mod duration;
pub mod go_quote;
pub mod go_url;
pub mod labels;
pub mod relabel;
pub mod telemetry;
pub mod xorshift;

pub use go_quote::go_quote;
pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
