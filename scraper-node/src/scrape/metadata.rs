//! A target's metric metadata, as Prometheus 2.42's scrape cache keeps it.
//!
//! Every `# TYPE`, `# HELP` and `# UNIT` line (and each protobuf family)
//! sets its field of the family's entry, creating the entry with type
//! `unknown` and empty help and unit, also in a scrape that then fails
//! (Prometheus does not roll metadata back). Each flush of the scrape cache
//! (after a successful scrape of a non-empty body, or a forced one) deletes
//! the entries not set
//! in the last 10 flushes, then counts one more flush: an entry outlives its
//! family by 10 successful scrapes.
//!
//! What the batches carry is a [`TargetMetadata`] snapshot, rebuilt only when
//! an entry was added, changed or deleted, so an unchanged target costs one
//! `Arc` clone per scrape and its metadata travels once per ingest stream.

use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use scrapegrid_common::Labels;

use crate::batch::{MetricMetadata, TargetMetadata};
use crate::textparse::MetricType;

/// Flushes an entry survives without being set (Prometheus's "keep metadata
/// around for 10 scrapes after its metric disappeared").
const KEEP_FLUSHES: u64 = 10;

struct Entry {
    kind: &'static str,
    help: Box<str>,
    unit: Box<str>,
    /// The flush count when the entry was last set.
    last_set: u64,
}

/// The metadata of one target.
pub struct MetadataCache {
    /// By family name, in the order first seen (so a snapshot lists them as
    /// the target exposes them).
    entries: IndexMap<Box<str>, Entry, FxBuildHasher>,
    /// Flushes so far (Prometheus's `scrapeCache.iter`).
    flushes: u64,
    changed: bool,
    snapshot: Arc<TargetMetadata>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self {
            entries: IndexMap::default(),
            flushes: 0,
            changed: false,
            snapshot: Arc::new(TargetMetadata::default()),
        }
    }
}

/// The type string Prometheus's metadata shows: `untyped` is `unknown`.
pub fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Untyped => "unknown",
        k => k.as_str(),
    }
}

impl MetadataCache {
    /// The entry of family `name` (created if new), marked as set now: one
    /// hash lookup for a family already known.
    fn entry(&mut self, name: &str) -> &mut Entry {
        let i = match self.entries.get_index_of(name) {
            Some(i) => i,
            None => {
                self.changed = true;
                let entry = Entry {
                    kind: "unknown",
                    help: "".into(),
                    unit: "".into(),
                    last_set: self.flushes,
                };
                self.entries.insert_full(name.into(), entry).0
            }
        };
        let e = &mut self.entries[i];
        e.last_set = self.flushes;
        e
    }

    /// `# TYPE name kind`.
    pub fn set_type(&mut self, name: &str, kind: MetricType) {
        let kind = type_name(kind);
        let e = self.entry(name);
        if e.kind != kind {
            e.kind = kind;
            self.changed = true;
        }
    }

    /// `# HELP name text`.
    pub fn set_help(&mut self, name: &str, help: &str) {
        let e = self.entry(name);
        if *e.help != *help {
            e.help = help.into();
            self.changed = true;
        }
    }

    /// `# UNIT name unit`.
    pub fn set_unit(&mut self, name: &str, unit: &str) {
        let e = self.entry(name);
        if *e.unit != *unit {
            e.unit = unit.into();
            self.changed = true;
        }
    }

    /// Number of entries (they count toward the forced flush of the scrape
    /// cache, as in Prometheus).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A flush of the scrape cache: deletes the entries not set for more
    /// than [`KEEP_FLUSHES`] flushes, then counts this one.
    pub fn flush(&mut self) {
        let now = self.flushes;
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.saturating_sub(e.last_set) <= KEEP_FLUSHES);
        if self.entries.len() != before {
            self.changed = true;
        }
        self.flushes += 1;
    }

    /// The current metadata for the batches, rebuilt when it changed.
    pub fn snapshot(&mut self, target: &Labels) -> Arc<TargetMetadata> {
        if self.changed {
            self.changed = false;
            self.snapshot = Arc::new(TargetMetadata::new(
                target.clone(),
                self.entries
                    .iter()
                    .map(|(name, e)| MetricMetadata {
                        metric: name.clone(),
                        kind: e.kind,
                        help: e.help.clone(),
                        unit: e.unit.clone(),
                    })
                    .collect(),
            ));
        }
        self.snapshot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(m: &TargetMetadata) -> Vec<String> {
        m.metrics
            .iter()
            .map(|e| format!("{} {} {:?} {:?}", e.metric, e.kind, e.help, e.unit))
            .collect()
    }

    #[test]
    fn fields_default_and_untyped_reads_unknown() {
        let mut c = MetadataCache::default();
        let t = Labels::from_pairs([("job", "j")]);
        c.set_help("a", "help of a");
        c.set_type("b", MetricType::Untyped);
        c.set_type("c", MetricType::Counter);
        c.set_unit("c", "seconds");
        let s = c.snapshot(&t);
        assert_eq!(
            names(&s),
            [
                r#"a unknown "help of a" """#,
                r#"b unknown "" """#,
                r#"c counter "" "seconds""#
            ]
        );
        assert_eq!(s.target_labels, t);
    }

    #[test]
    fn the_snapshot_is_rebuilt_only_on_a_change() {
        let mut c = MetadataCache::default();
        let t = Labels::default();
        c.set_type("a", MetricType::Gauge);
        let first = c.snapshot(&t);
        c.set_type("a", MetricType::Gauge);
        c.flush();
        assert!(Arc::ptr_eq(&first, &c.snapshot(&t)), "same metadata");
        c.set_help("a", "now with help");
        let second = c.snapshot(&t);
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(names(&second), [r#"a gauge "now with help" """#]);
    }

    #[test]
    fn an_entry_outlives_its_family_by_ten_flushes() {
        let mut c = MetadataCache::default();
        let t = Labels::default();
        c.set_type("gone", MetricType::Gauge);
        c.set_type("kept", MetricType::Gauge);
        c.flush();
        for _ in 0..10 {
            c.set_type("kept", MetricType::Gauge);
            c.flush();
            assert_eq!(c.snapshot(&t).metrics.len(), 2, "still kept");
        }
        c.set_type("kept", MetricType::Gauge);
        c.flush();
        assert_eq!(names(&c.snapshot(&t)), [r#"kept gauge "" """#]);
    }
}
