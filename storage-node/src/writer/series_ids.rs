//! The writer's map from label sets to series ids, found first by the
//! address of the label set's `Arc`: an ingest stream's reference table
//! hands the writer the same `Arc` for a series in every batch, so a
//! lookup is one pointer hash instead of hashing and comparing the labels.
//!
//! The address index is sound because the map holds every `Arc` it indexes:
//! an address cannot be reused while its entry exists, and an entry's
//! address leaves the index when its `Arc` leaves the map. When the same
//! labels arrive in another `Arc` (a reconnected stream's new table, a
//! remote write), the lookup by labels finds them and the map keeps the
//! newer `Arc`, so that stream's next batches are found by address.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use scrapegrid_common::CompactLabels;

/// Labels -> series id; see the module doc.
#[derive(Debug, Default)]
pub(super) struct SeriesIds {
    by_labels: FxHashMap<Arc<CompactLabels>, u64>,
    by_address: FxHashMap<usize, u64>,
}

fn address(labels: &Arc<CompactLabels>) -> usize {
    Arc::as_ptr(labels) as usize
}

impl SeriesIds {
    /// Returns the id of `labels`, if known.
    pub(super) fn get(&mut self, labels: &Arc<CompactLabels>) -> Option<u64> {
        if let Some(&id) = self.by_address.get(&address(labels)) {
            return Some(id);
        }
        let &id = self.by_labels.get(labels)?;
        self.insert(labels.clone(), id);
        Some(id)
    }

    /// Records the id of `labels`, replacing the `Arc` it was known by.
    pub(super) fn insert(&mut self, labels: Arc<CompactLabels>, id: u64) {
        if let Some((old, _)) = self.by_labels.remove_entry(&labels) {
            self.by_address.remove(&address(&old));
        }
        self.by_address.insert(address(&labels), id);
        self.by_labels.insert(labels, id);
    }

    /// Forgets `labels` (a collected series).
    pub(super) fn remove(&mut self, labels: &CompactLabels) {
        if let Some((old, _)) = self.by_labels.remove_entry(labels) {
            self.by_address.remove(&address(&old));
        }
    }

    /// Returns how many series are known.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_common::Labels;

    #[test]
    fn found_by_address_then_by_labels_in_another_arc() {
        let mut ids = SeriesIds::default();
        let a = Arc::new(CompactLabels::from(Labels::from_pairs([("__name__", "m")])));
        assert_eq!(ids.get(&a), None);
        ids.insert(a.clone(), 7);
        assert_eq!(ids.get(&a), Some(7));
        // The same labels in a new Arc: found by labels, then kept.
        let b = Arc::new((*a).clone());
        assert_eq!(ids.get(&b), Some(7));
        assert_eq!((ids.len(), ids.by_address.len()), (1, 1));
        assert_eq!(ids.by_address.get(&address(&b)), Some(&7));
        // `a` is no longer held by the map: its address may be reused by
        // another label set without being found.
        drop(a);
        let c = Arc::new(CompactLabels::from(Labels::from_pairs([(
            "__name__", "other",
        )])));
        assert_eq!(ids.get(&c), None);
        ids.insert(c.clone(), 8);
        assert_eq!((ids.get(&b), ids.get(&c)), (Some(7), Some(8)));
    }
}
