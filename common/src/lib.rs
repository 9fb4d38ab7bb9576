//! What every scrapegrid crate shares: the control plane, the scraper nodes
//! and the storage node all build on it.
//!
//! - [`labels`]: the label set type every plane uses, and the one definition
//!   of a valid label name and metric name.
//! - [`relabel`]: one relabeling engine for target relabeling (control plane)
//!   and metric relabeling (scrapers), with Prometheus's actions and defaults.
//! - [`config`]: the `prometheus.yml` model: serde structs that accept what
//!   Prometheus accepts, then validated ([`config::load_file`],
//!   [`config::check_file`]) into a typed config whose errors name the file,
//!   the job and the field.
//! - [`duration`]: Prometheus duration syntax (`15s`, `1m30s`) and size
//!   syntax (`512MB`).
//! - [`error_chain`]: an error with its causes, as one line.
//! - [`exposition`]: floats and escapes of the text exposition format, as
//!   client_golang writes them.
//! - [`clock`]: the wall clock in Unix milliseconds.
//! - [`histogram`]: native histograms as Prometheus 2.42 defines them:
//!   validation, compaction, and the float arithmetic queries use.
//! - [`go_quote`]: Go's `strconv.Quote`, for texts that must read as Prometheus's.
//! - [`go_url`]: URLs escaped as Go's `net/url` writes them, for the scrape
//!   URL Prometheus builds from a target's labels.
//! - [`grpc_standard`]: the health and reflection services every gRPC
//!   server adds, so grpcurl and Kubernetes gRPC probes work.
//! - [`host_metrics`]: the `host` integration's exposition: CPU, memory,
//!   disks, filesystems and network from `/proc`, `/sys` and `statvfs`,
//!   with node_exporter 1.5's names.
//! - [`http_client_tls`]: a job's `http_config` as HTTP clients apply it
//!   (scrapes and HTTP SD): TLS with files re-read, credentials, Go's
//!   error texts.
//! - [`security`]: TLS and mutual TLS between components, and the join and
//!   write tokens.
//! - [`telemetry`]: tracing, the `/metrics` recorder and the signal handling
//!   every binary installs, and [`telemetry::announce`], the
//!   `listening <grpc|http> <addr>` line each node prints on stdout once bound.
//! - [`web`]: the web UI's shared stylesheet and scripts, and how a node
//!   serves its pages.
//! - [`xorshift`]: a seeded generator for property tests, simulations and benchmarks.
//!
//! Data flows one way: the control plane loads [`config`], relabels targets
//! with [`relabel`], and ships each job's metric relabel rules to scrapers as
//! `RelabelRule` messages that scrapers turn back into [`relabel::RelabelConfig`].

pub mod clock;
pub mod config;
pub mod duration;
pub mod error_chain;
pub mod exposition;
pub mod go_quote;
pub mod go_url;
pub mod grpc_standard;
pub mod histogram;
pub mod host_metrics;
pub mod http_client_tls;
pub mod labels;
pub mod relabel;
pub mod security;
pub mod telemetry;
pub mod web;
pub mod xorshift;

pub use go_quote::go_quote;
pub use labels::{CompactLabels, Label, Labels, LabelsBuilder, METRIC_NAME};
