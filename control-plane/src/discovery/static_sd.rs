//! `static_configs`: one group per entry, sent once.

use scrapegrid_common::config::StaticConfig;
use scrapegrid_common::Labels;

use super::TargetGroup;

/// Returns the groups of a job's `static_configs`; the source is the index of
/// the entry, as in Prometheus.
pub fn groups(configs: &[StaticConfig]) -> Vec<TargetGroup> {
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| TargetGroup {
            source: i.to_string(),
            targets: c
                .targets
                .iter()
                .map(|t| Labels::from_pairs([("__address__", t.as_str())]))
                .collect(),
            labels: c.labels.clone(),
        })
        .collect()
}
