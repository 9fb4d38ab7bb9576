//! The `integrations` section (scrapegrid's own, after Grafana Agent's
//! integrations): built-in exporters the cluster turns on and scrapes by
//! itself. Each enabled integration becomes a job named
//! `integrations/<name>` whose targets the control plane discovers from
//! the cluster (no SD config), scraped like any job.
//!
//! ```yaml
//! integrations:
//!   self:                            # scrapegrid's own /metrics
//!     enabled: true
//!     scrape_interval: 15s           # default: global.scrape_interval
//!     scrape_timeout: 10s            # default: global.scrape_timeout
//!     storage_url: http://storage:9090   # the storage node's HTTP address
//!   host:                            # CPU, memory, disks, network of each scraper's host
//!     enabled: true
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::validate::{Context, Seg};
use super::{GlobalConfig, ScrapeConfig};
use crate::duration::{format_duration, serde_duration_opt};

/// The `integrations` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegrations {
    #[serde(default, rename = "self")]
    pub self_metrics: Option<RawIntegration>,
    #[serde(default)]
    pub host: Option<RawIntegration>,
}

/// One integration's settings as written; `storage_url` is `self`'s only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegration {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, with = "serde_duration_opt")]
    pub scrape_interval: Option<Duration>,
    #[serde(default, with = "serde_duration_opt")]
    pub scrape_timeout: Option<Duration>,
    #[serde(default)]
    pub storage_url: Option<String>,
}

/// Where an integration job's targets come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Integration {
    /// Every component's own `/metrics`: the leading control plane, each
    /// scraper, and the storage node at `storage_url` when given.
    SelfMetrics {
        /// `scheme://host:port`, validated.
        storage_url: Option<String>,
    },
    /// `/integrations/host/metrics` on each scraper: its host's CPU,
    /// memory, disks and network, with node_exporter's names.
    Host,
}

impl Integration {
    /// Its key in the `integrations` section.
    pub fn name(&self) -> &'static str {
        match self {
            Integration::SelfMetrics { .. } => "self",
            Integration::Host => "host",
        }
    }

    /// The job that scrapes it.
    pub fn job_name(&self) -> String {
        format!("integrations/{}", self.name())
    }
}

/// The jobs of the enabled integrations.
pub(super) fn jobs(
    raw: RawIntegrations,
    global: &GlobalConfig,
    ctx: &mut Context,
) -> Vec<ScrapeConfig> {
    let mut jobs = Vec::new();
    if let Some(s) = raw.self_metrics.filter(|s| s.enabled.unwrap_or(false)) {
        let storage_url = s.storage_url.and_then(|url| match storage_url(&url) {
            Ok(url) => Some(url),
            Err(why) => {
                let at = [
                    Seg::Key("integrations"),
                    Seg::Key("self"),
                    Seg::Key("storage_url"),
                ];
                ctx.invalid(&at, format!("{url:?}: {why}"));
                None
            }
        });
        let kind = Integration::SelfMetrics { storage_url };
        jobs.push(job(kind, s.scrape_interval, s.scrape_timeout, global, ctx));
    }
    if let Some(h) = raw.host.filter(|h| h.enabled.unwrap_or(false)) {
        if h.storage_url.is_some() {
            let at = [
                Seg::Key("integrations"),
                Seg::Key("host"),
                Seg::Key("storage_url"),
            ];
            ctx.invalid(&at, "only the self integration has a storage_url");
        }
        jobs.push(job(
            Integration::Host,
            h.scrape_interval,
            h.scrape_timeout,
            global,
            ctx,
        ));
    }
    jobs
}

fn job(
    kind: Integration,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    global: &GlobalConfig,
    ctx: &mut Context,
) -> ScrapeConfig {
    let scrape_interval = interval
        .filter(|d| !d.is_zero())
        .unwrap_or(global.scrape_interval);
    let mut scrape_timeout = timeout
        .filter(|d| !d.is_zero())
        .unwrap_or(global.scrape_timeout.min(scrape_interval));
    if scrape_timeout > scrape_interval {
        let at = [
            Seg::Key("integrations"),
            Seg::Key(kind.name()),
            Seg::Key("scrape_timeout"),
        ];
        ctx.invalid(
            &at,
            format!(
                "scrape timeout ({}) greater than scrape interval ({})",
                format_duration(scrape_timeout),
                format_duration(scrape_interval)
            ),
        );
        scrape_timeout = scrape_interval;
    }
    ScrapeConfig {
        job_name: kind.job_name(),
        scrape_interval,
        scrape_timeout,
        integration: Some(kind),
        ..ScrapeConfig::default()
    }
}

/// `scheme://host:port` of a storage node's HTTP address; no path.
fn storage_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not a URL: write http://host:port")?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("scheme {scheme:?}: use http or https"));
    }
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err("write http://host:port, without a path".into());
    }
    Ok(format!("{scheme}://{host}"))
}
