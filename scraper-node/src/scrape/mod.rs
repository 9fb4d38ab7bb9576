//! The scrape path of one target.
//!
//! - [`http_client`]: GET with Prometheus's headers, timeout, gzip, body limit.
//!   A job's `http_config` (credentials and TLS, files re-read per scrape)
//!   is applied with `scrapegrid_common::http_client_tls`.
//! - [`state`]: the pure step from a scrape result to one batch (parse, target
//!   labels, metric relabeling, limits, staleness, report series), with its
//!   series cache.
//! - [`metadata`]: HELP, TYPE and UNIT per metric family, kept as
//!   Prometheus's scrape cache keeps them.
//! - [`sample_labels`]: honor_labels and `exported_` renaming.
//! - [`scrape_loop`]: timing at a fixed per-target phase, and stop modes.
//! - [`handover`]: a new owner's read of its predecessor's series set,
//!   which never holds up a slot.

pub mod handover;
pub mod http_client;
pub mod metadata;
pub mod sample_labels;
pub mod scrape_loop;
pub mod state;
