//! Target metadata: HELP, TYPE and UNIT per metric family and target, as
//! the scrapers' caches keep them (`scraper-node/src/scrape/metadata.rs`).
//!
//! A scraper sends a target's metadata whole with a batch when its ingest
//! stream has not carried that version yet: on the first batch of the target
//! on a stream and after each change. [`MetadataStore`] keeps the newest per
//! target, in memory: a restarted node gets everything again as the
//! scrapers reconnect. An older generation of the target (a previous owner
//! still sending) never replaces a newer one; empty metadata forgets the
//! target (it left discovery).
//!
//! Prometheus shows the metadata of active targets only. Here a target whose
//! stream ended without another stream taking it over (its scraper died and
//! the target left discovery meanwhile) is forgotten [`ORPHAN_TTL`] after
//! the stream ended; a reconnecting scraper sends it again first.
//!
//! Served as `/api/v1/metadata` and `/api/v1/targets/metadata`
//! (`http_api/metadata.rs`) and sent to `remote_write` endpoints
//! (`egress/metadata.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scrapegrid_common::Labels;
use scrapegrid_proto::v1 as pb;

/// How long the metadata of a target outlives the stream that sent it.
pub const ORPHAN_TTL: Duration = Duration::from_secs(300);

/// One metric family's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricMetadata {
    pub metric: String,
    /// Prometheus's type name (`counter`, ..., `unknown`).
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// The metadata of one target.
#[derive(Debug, Clone)]
pub struct TargetMetadata {
    pub target: Labels,
    pub metrics: Arc<[MetricMetadata]>,
}

struct Entry {
    generation: u64,
    metadata: TargetMetadata,
    /// The ingest stream that sent it.
    stream: u64,
    /// When that stream ended, if it did.
    orphaned: Option<Instant>,
}

/// Every target's metadata.
#[derive(Default)]
pub struct MetadataStore {
    targets: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("targets", &self.lock().len())
            .finish()
    }
}

impl MetadataStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the metadata a batch of `target_id` (of `generation`)
    /// carried on ingest stream `stream`.
    pub fn apply(&self, target_id: &str, generation: u64, stream: u64, m: pb::TargetMetadata) {
        let mut targets = self.lock();
        if targets
            .get(target_id)
            .is_some_and(|e| e.generation > generation)
        {
            return;
        }
        if m.metrics.is_empty() {
            targets.remove(target_id);
            return;
        }
        let metadata = TargetMetadata {
            target: Labels::from_proto(&m.target_labels),
            metrics: m
                .metrics
                .into_iter()
                .map(|e| MetricMetadata {
                    metric: e.metric,
                    kind: e.r#type,
                    help: e.help,
                    unit: e.unit,
                })
                .collect(),
        };
        targets.insert(
            target_id.to_string(),
            Entry {
                generation,
                metadata,
                stream,
                orphaned: None,
            },
        );
    }

    /// Ingest stream `stream` ended: its targets are forgotten unless
    /// another stream sends them within [`ORPHAN_TTL`].
    pub fn stream_ended(&self, stream: u64) {
        let now = Instant::now();
        for e in self.lock().values_mut() {
            if e.stream == stream {
                e.orphaned = Some(now);
            }
        }
    }

    /// Every target's metadata, ordered by target labels.
    pub fn targets(&self) -> Vec<TargetMetadata> {
        let mut out: Vec<TargetMetadata> = {
            let mut targets = self.lock();
            targets.retain(|_, e| e.orphaned.is_none_or(|t| t.elapsed() < ORPHAN_TTL));
            targets.values().map(|e| e.metadata.clone()).collect()
        };
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(job: &str, metrics: &[&str]) -> pb::TargetMetadata {
        pb::TargetMetadata {
            target_labels: Labels::from_pairs([("job", job)]).to_proto(),
            metrics: metrics
                .iter()
                .map(|m| pb::MetricMetadata {
                    metric: m.to_string(),
                    r#type: "gauge".into(),
                    help: String::new(),
                    unit: String::new(),
                })
                .collect(),
        }
    }

    fn listed(s: &MetadataStore) -> Vec<(String, Vec<String>)> {
        s.targets()
            .into_iter()
            .map(|t| {
                (
                    t.target.get("job").unwrap_or_default().to_string(),
                    t.metrics.iter().map(|m| m.metric.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn newest_generation_wins_and_empty_forgets() {
        let s = MetadataStore::default();
        s.apply("t", 2, 1, md("b", &["x"]));
        s.apply("u", 1, 1, md("a", &["y"]));
        s.apply("t", 1, 2, md("b", &["old"]));
        assert_eq!(
            listed(&s),
            [
                ("a".into(), vec!["y".into()]),
                ("b".into(), vec!["x".into()])
            ],
            "ordered by target; an older generation changes nothing"
        );
        s.apply("t", 2, 1, md("b", &["x", "z"]));
        s.apply("u", 1, 1, md("a", &[]));
        assert_eq!(listed(&s), [("b".into(), vec!["x".into(), "z".into()])]);
    }

    #[test]
    fn an_ended_stream_keeps_its_targets_until_resent() {
        let s = MetadataStore::default();
        s.apply("t", 1, 7, md("a", &["x"]));
        s.apply("u", 1, 7, md("b", &["y"]));
        s.stream_ended(7);
        assert_eq!(listed(&s).len(), 2, "kept for ORPHAN_TTL");
        // The scraper reconnected and sent `t` again; `u` left meanwhile.
        s.apply("t", 1, 9, md("a", &["x"]));
        let past = Instant::now().checked_sub(ORPHAN_TTL).unwrap();
        for e in s.lock().values_mut() {
            if let Some(o) = &mut e.orphaned {
                *o = past;
            }
        }
        assert_eq!(listed(&s), [("a".into(), vec!["x".into()])]);
    }
}
