//! The targets the storage node fenced for this scraper, shared by the
//! ingest task, which records them from FENCED acks, and the scrape loops,
//! which check before each scrape.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The targets the storage node fenced for this scraper: a batch of the
/// target at that generation (or older) was refused because a newer
/// generation, another scraper's, is stored. A loop at such a generation
/// stops: the target has moved, though no control plane said so yet (this
/// scraper may not reach one). A later assignment of the target carries a
/// newer generation and runs again.
#[derive(Debug, Default)]
pub struct Fences {
    /// Target -> the highest generation fenced.
    fenced: Mutex<HashMap<String, u64>>,
    /// Whether any target was ever fenced: the loops' check takes no lock
    /// until one is.
    any: AtomicBool,
}

impl Fences {
    pub(super) fn fence(&self, target_id: &str, generation: u64) {
        if let Ok(mut f) = self.fenced.lock() {
            let g = f.entry(target_id.to_string()).or_default();
            *g = (*g).max(generation);
            self.any.store(true, Ordering::Release);
        }
    }

    /// Whether a loop of `target_id` at `generation` has been fenced.
    pub fn is_fenced(&self, target_id: &str, generation: u64) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .fenced
                .lock()
                .is_ok_and(|f| f.get(target_id).is_some_and(|&g| g >= generation))
    }
}

#[cfg(test)]
mod tests {
    use super::Fences;

    #[test]
    fn a_fence_stops_its_generation_and_older_only() {
        let f = Fences::default();
        assert!(!f.is_fenced("t", 1));
        f.fence("t", 5);
        f.fence("t", 3);
        assert!(f.is_fenced("t", 5) && f.is_fenced("t", 4));
        assert!(!f.is_fenced("t", 6), "a newer assignment runs");
        assert!(!f.is_fenced("u", 1));
    }
}
