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
//! Prometheus shows the metadata of active targets only. Here a target
//! whose scraper has no ingest stream left (it died, and the target left
//! discovery meanwhile) is forgotten [`ORPHAN_TTL`] after that scraper's
//! last stream ended; a scraper that reconnects keeps its targets'.
//!
//! Served as `/api/v1/metadata` and `/api/v1/targets/metadata`
//! (`http_api/metadata.rs`) and sent to `remote_write` endpoints
//! (`egress/metadata.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scrapegrid_common::Labels;
use scrapegrid_proto::v1 as pb;

/// How long the metadata of a target outlives the last stream of the
/// scraper that sent it, and how long a forgotten target's generation is
/// kept (so a late batch of an older generation does not bring it back).
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
    /// `None`: forgotten (the target left); kept for its generation.
    metadata: Option<TargetMetadata>,
    /// The scraper that sent it.
    scraper: Arc<str>,
    /// Since when it is forgotten, or orphaned (no stream of its scraper).
    since: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    targets: HashMap<String, Entry>,
    /// Open ingest streams per scraper id.
    streams: HashMap<Arc<str>, usize>,
}

/// Every target's metadata.
#[derive(Default)]
pub struct MetadataStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("targets", &self.lock().targets.len())
            .finish()
    }
}

impl MetadataStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the metadata a batch of `target_id` (of `generation`) from
    /// `scraper` carried.
    pub fn apply(
        &self,
        target_id: &str,
        generation: u64,
        scraper: &Arc<str>,
        m: pb::TargetMetadata,
    ) {
        let mut inner = self.lock();
        if inner
            .targets
            .get(target_id)
            .is_some_and(|e| e.generation > generation)
        {
            return;
        }
        let metadata = (!m.metrics.is_empty()).then(|| TargetMetadata {
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
        });
        let since = metadata.is_none().then(Instant::now);
        inner.targets.insert(
            target_id.to_string(),
            Entry {
                generation,
                metadata,
                scraper: scraper.clone(),
                since,
            },
        );
    }

    /// An ingest stream of `scraper` opened: its targets are its own again.
    pub fn stream_opened(&self, scraper: &Arc<str>) {
        let mut inner = self.lock();
        *inner.streams.entry(scraper.clone()).or_default() += 1;
        for e in inner.targets.values_mut() {
            if e.scraper == *scraper && e.metadata.is_some() {
                e.since = None;
            }
        }
    }

    /// An ingest stream of `scraper` ended: when it was its last, its
    /// targets are forgotten unless it (or another scraper) sends them
    /// within [`ORPHAN_TTL`].
    pub fn stream_ended(&self, scraper: &Arc<str>) {
        let mut inner = self.lock();
        let left = match inner.streams.get_mut(scraper) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        if left > 0 {
            return;
        }
        inner.streams.remove(scraper);
        let now = Instant::now();
        for e in inner.targets.values_mut() {
            if e.scraper == *scraper && e.since.is_none() {
                e.since = Some(now);
            }
        }
    }

    /// Every target's metadata, ordered by target labels.
    pub fn targets(&self) -> Vec<TargetMetadata> {
        let mut out: Vec<TargetMetadata> = {
            let mut inner = self.lock();
            inner
                .targets
                .retain(|_, e| e.since.is_none_or(|t| t.elapsed() < ORPHAN_TTL));
            inner
                .targets
                .values()
                .filter_map(|e| e.metadata.clone())
                .collect()
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

    fn scraper(id: &str) -> Arc<str> {
        id.into()
    }

    #[test]
    fn newest_generation_wins_and_empty_forgets() {
        let s = MetadataStore::default();
        let a = scraper("a");
        s.apply("t", 2, &a, md("b", &["x"]));
        s.apply("u", 1, &a, md("a", &["y"]));
        s.apply("t", 1, &a, md("b", &["old"]));
        assert_eq!(
            listed(&s),
            [
                ("a".into(), vec!["y".into()]),
                ("b".into(), vec!["x".into()])
            ],
            "ordered by target; an older generation changes nothing"
        );
        s.apply("t", 2, &a, md("b", &["x", "z"]));
        s.apply("u", 1, &a, md("a", &[]));
        assert_eq!(listed(&s), [("b".into(), vec!["x".into(), "z".into()])]);
        s.apply("u", 0, &a, md("a", &["late"]));
        assert_eq!(
            listed(&s).len(),
            1,
            "a forgotten target keeps its generation"
        );
    }

    #[test]
    fn a_scrapers_targets_outlive_its_streams_only_for_a_while() {
        let s = MetadataStore::default();
        let (a, b) = (scraper("a"), scraper("b"));
        s.stream_opened(&a);
        s.stream_opened(&a);
        s.stream_opened(&b);
        s.apply("t", 1, &a, md("t", &["x"]));
        s.apply("u", 1, &b, md("u", &["y"]));
        s.stream_ended(&a);
        s.stream_ended(&b);
        let aged = |s: &MetadataStore| {
            let past = Instant::now().checked_sub(ORPHAN_TTL).unwrap();
            for e in s.lock().targets.values_mut() {
                if let Some(t) = &mut e.since {
                    *t = past;
                }
            }
        };
        aged(&s);
        assert_eq!(
            listed(&s),
            [("t".into(), vec!["x".into()])],
            "a still has a stream; b has none"
        );
        // a reconnects before its last stream ends: still its own.
        s.stream_opened(&a);
        s.stream_ended(&a);
        s.stream_ended(&a);
        s.stream_opened(&a);
        aged(&s);
        assert_eq!(
            listed(&s).len(),
            1,
            "back with a new stream, nothing resent"
        );
    }
}
