//! The wire forms of a job's scrape settings and of a target.

use scrapegrid_common::config::ScrapeConfig;
use scrapegrid_proto::v1 as pb;

use crate::targets::ScrapeTarget;

/// Returns the wire form of a job's scrape settings.
pub(super) fn pool(sc: &ScrapeConfig) -> pb::ScrapePool {
    pb::ScrapePool {
        name: sc.job_name.clone(),
        scrape_interval_ms: sc.scrape_interval.as_millis() as u64,
        scrape_timeout_ms: sc.scrape_timeout.as_millis() as u64,
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        metric_relabel_rules: sc
            .metric_relabel_configs
            .iter()
            .map(|r| r.to_proto())
            .collect(),
        sample_limit: sc.sample_limit,
        label_limit: sc.label_limit,
        label_name_length_limit: sc.label_name_length_limit,
        label_value_length_limit: sc.label_value_length_limit,
        body_size_limit_bytes: sc.body_size_limit,
        track_timestamps_staleness: sc.track_timestamps_staleness,
        accept_header: scrapegrid_common::config::accept_header(&sc.scrape_protocols),
    }
}

pub(super) fn to_proto(t: &ScrapeTarget, generation: u64) -> pb::Target {
    pb::Target {
        id: t.id.clone(),
        generation,
        pool: t.job.clone(),
        url: t.url.clone(),
        labels: t.labels.to_proto(),
        discovered_labels: t.discovered.to_proto(),
        scrape_interval_ms: t.interval.as_millis() as u64,
        scrape_timeout_ms: t.timeout.as_millis() as u64,
        start_at_ms: 0,
        await_handover: false,
        forced_error: t.forced_error.clone().unwrap_or_default(),
    }
}
