//! Where each series' chunks end: for every series, a timestamp at or after
//! the last sample of its newest chunk, kept in memory, so that a read
//! near the end of the series (every instant query, the last steps of a
//! range query) fetches that chunk by its key, or learns that no chunk
//! reaches its range, instead of seeking the `chunks` column family.
//!
//! The value of a series only rises, and it is at least the newest chunk's
//! last timestamp in any snapshot taken before it is read:
//! - **Writers** raise it ([`ChunkEnds::raise`]) under the database's write
//!   lock, before the write that adds the chunk is applied (as
//!   [`crate::head_bounds`] widens), so no snapshot holds a chunk past it.
//!   A chunk's key is its last timestamp, and a series' newest chunk only
//!   moves later (a reopened last chunk is rewritten under a later key, late
//!   samples merge into older chunks), so raising is all writers need.
//! - **Readers** may raise it to the newest chunk they saw in their own
//!   snapshot: every chunk written after that snapshot raised it already.
//! - **Retention** deletes chunks that older snapshots still hold, so it
//!   raises the value to the newest chunk it saw too (it cannot lower it);
//!   then the value may name a key that no longer exists, which a reader
//!   finds missing and falls back to seeking.
//!
//! `i64::MIN` is "not known yet" (a series no reader has read to its
//! newest chunk since the node started); readers then seek. 8 bytes per
//! series.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::series_slots::{slot, Segments, SEGMENT};

/// Not known: read by seeking.
pub const UNKNOWN: i64 = i64::MIN;

/// The chunk ends of every series. See the module doc.
#[derive(Default)]
pub struct ChunkEnds {
    segments: Segments<[AtomicI64]>,
}

impl std::fmt::Debug for ChunkEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkEnds").finish_non_exhaustive()
    }
}

/// The chunk ends as a reader sees them: one lookup per series without
/// locks. Take the view after the reader's snapshot.
pub struct EndsView {
    segments: Vec<Arc<[AtomicI64]>>,
}

impl EndsView {
    /// Returns series `id`'s value ([`UNKNOWN`] when there is none).
    pub fn get(&self, id: u64) -> i64 {
        let (seg, i) = slot(id);
        self.segments
            .get(seg)
            .map_or(UNKNOWN, |s| s[i].load(Ordering::Acquire))
    }
}

impl ChunkEnds {
    /// Returns the values as they are now.
    pub fn view(&self) -> EndsView {
        EndsView {
            segments: self.segments.list(),
        }
    }

    fn segment(&self, seg: usize) -> Arc<[AtomicI64]> {
        self.segments.get_or_add(seg, || {
            (0..SEGMENT).map(|_| AtomicI64::new(UNKNOWN)).collect()
        })
    }

    /// Raises series `id`'s value to `t`, the newest chunk's last
    /// timestamp in a reader's snapshot.
    pub fn saw_newest(&self, id: u64, t: i64) {
        self.raise(&[(id, t)]);
    }

    /// Raises the values to cover `written` chunks (series id, last
    /// timestamp). Called under the write lock, before they are written.
    pub fn raise(&self, written: &[(u64, i64)]) {
        let mut cached: Option<(usize, Arc<[AtomicI64]>)> = None;
        for &(id, t) in written {
            let (seg, i) = slot(id);
            let s = match &cached {
                Some((n, s)) if *n == seg => s,
                _ => &cached.insert((seg, self.segment(seg))).1,
            };
            s[i].fetch_max(t, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_only_rise_and_start_unknown() {
        let ends = ChunkEnds::default();
        assert_eq!(ends.view().get(5), UNKNOWN, "no segment yet");
        ends.raise(&[(5, 100), (5, 50), (9000, 7)]);
        let view = ends.view();
        assert_eq!(
            (view.get(5), view.get(9000), view.get(6)),
            (100, 7, UNKNOWN)
        );
        ends.saw_newest(5, 80);
        ends.saw_newest(6, 30);
        assert_eq!((view.get(5), view.get(6)), (100, 30), "views see raises");
        ends.saw_newest(1 << 20, 1);
        assert_eq!(view.get(1 << 20), UNKNOWN, "a view has the segments it had");
        assert_eq!(ends.view().get(1 << 20), 1);
    }
}
