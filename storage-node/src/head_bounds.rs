//! Where each series' head starts: a lower bound, kept in memory, of the
//! timestamps of its samples in the `samples` column family.
//!
//! The compactor deletes head samples as it moves them into chunks, and
//! RocksDB keeps those deletions until its own compaction drops them. A read
//! that seeks a series' head at the start of its range steps over every
//! deleted key between there and the first live one: on a node at rest that
//! was most of a query's time. With the bound, readers seek at
//! `max(mint, bound)` and skip the head when the bound is past their range
//! (`i64::MAX`: no head samples at all).
//!
//! A reader reads the bound after taking its snapshot, so the bound must
//! never be above the oldest head sample *that snapshot* holds:
//! - **Widening.** Every write that appends head samples lowers the bounds
//!   of their series ([`HeadBounds::widen`]) inside the database's write
//!   lock, before the write is applied: no snapshot holds a sample its
//!   series' bound is above.
//! - **Narrowing.** A compaction, which reads a series' head under the
//!   write lock and deletes its samples up to a cut, may raise the bound to
//!   the first sample after the cut (`i64::MAX` when there is none), but
//!   only for snapshots taken after it. So it queues the narrowing tagged with a new epoch
//!   ([`HeadBounds::compacted`]); readers register their epoch before they
//!   take their snapshot ([`HeadBounds::register`]), and a narrowing applies
//!   ([`HeadBounds::apply_ready`]) once no reader of an older epoch remains.
//!   Samples written to the series between the compaction and the
//!   application are remembered apart (`recent`) and keep the bound down. A
//!   later compaction of the same series replaces its queued narrowing.
//! - Retention only deletes, so it leaves bounds lower than needed, which is
//!   safe; the compactor's next round finds the bound before its cut with
//!   nothing there and raises it.
//!
//! Widening, queueing and applying all run under the write lock of
//! [`crate::db::Db`] (their only caller), so they never interleave. Bounds are
//! built at open from one pass over the head ([`HeadBounds::load`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::series_slots::{slot, Segments, SEGMENT};

/// The bounds of [`SEGMENT`] consecutive series ids.
struct Segment {
    /// The lower bound of each series' head timestamps; `i64::MAX` when it
    /// has none.
    min: Box<[AtomicI64]>,
    /// The oldest sample written to each series since its last compaction
    /// (`i64::MAX` when none): what a queued narrowing must not pass.
    recent: Box<[AtomicI64]>,
}

impl Segment {
    fn new() -> Self {
        let fill = || (0..SEGMENT).map(|_| AtomicI64::new(i64::MAX)).collect();
        Self {
            min: fill(),
            recent: fill(),
        }
    }
}

/// The bound of series `id` in `segments` (`i64::MAX` past their end).
fn head_min_in(segments: &[Arc<Segment>], id: u64) -> i64 {
    let (seg, i) = slot(id);
    segments
        .get(seg)
        .map_or(i64::MAX, |s| s.min[i].load(Ordering::Acquire))
}

/// The head bounds of every series, and the readers and narrowings that
/// decide when a bound may rise. See the module doc.
#[derive(Default)]
pub struct HeadBounds {
    segments: Segments<Segment>,
    readers: Mutex<Readers>,
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for HeadBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadBounds").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Readers {
    /// The epoch a reader registering now gets.
    epoch: u64,
    /// Registered readers per epoch.
    active: BTreeMap<u64, usize>,
}

#[derive(Default)]
struct Pending {
    /// Per series: the epoch of the compaction that queued it and the bound
    /// it may rise to.
    narrow: HashMap<u64, (u64, i64)>,
    /// At most the smallest epoch in `narrow` (meaningless when it is
    /// empty): when every reader is newer, something may apply.
    oldest: u64,
}

/// A registered reader; deregisters on drop.
pub struct ReadGuard<'a> {
    bounds: &'a HeadBounds,
    epoch: u64,
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let mut readers = self.bounds.readers();
        if let Some(n) = readers.active.get_mut(&self.epoch) {
            *n -= 1;
            if *n == 0 {
                readers.active.remove(&self.epoch);
            }
        }
    }
}

/// The bounds as a reader sees them: one lookup per series without locks.
/// The values are live; take the view after the reader's snapshot (a series
/// created later is then absent, and has no samples in the snapshot).
pub struct BoundsView {
    segments: Vec<Arc<Segment>>,
}

impl BoundsView {
    /// Returns the lower bound of series `id`'s head timestamps (`i64::MAX`:
    /// no head samples). A series created after the view has none in the
    /// reader's snapshot, which is older than the view.
    pub fn head_min(&self, id: u64) -> i64 {
        head_min_in(&self.segments, id)
    }

    /// Returns the series whose bound is at or before `t`, with the bound,
    /// in id order.
    pub fn at_or_before(&self, t: i64) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.segments.iter().enumerate().flat_map(move |(seg, s)| {
            s.min.iter().enumerate().filter_map(move |(i, min)| {
                let min = min.load(Ordering::Acquire);
                (min <= t).then_some(((seg * SEGMENT + i) as u64, min))
            })
        })
    }
}

impl HeadBounds {
    /// Returns bounds from the head's oldest sample per series, as
    /// `oldest` yields them (series id, timestamp).
    pub fn load(oldest: impl IntoIterator<Item = (u64, i64)>) -> Self {
        let bounds = Self::default();
        bounds.widen(&oldest.into_iter().collect::<Vec<_>>());
        bounds
    }

    fn readers(&self) -> MutexGuard<'_, Readers> {
        // Counts only: a panic while holding the lock leaves nothing
        // half-changed that matters more than a missed deregistration.
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a reader; call before taking the snapshot whose reads use
    /// the bounds, and keep the guard while reading.
    pub fn register(&self) -> ReadGuard<'_> {
        let mut readers = self.readers();
        let epoch = readers.epoch;
        *readers.active.entry(epoch).or_default() += 1;
        ReadGuard {
            bounds: self,
            epoch,
        }
    }

    /// Returns the bounds as they are now.
    pub fn view(&self) -> BoundsView {
        BoundsView {
            segments: self.segments.list(),
        }
    }

    /// Returns the bound of series `id` (see [`BoundsView::head_min`]).
    pub fn head_min(&self, id: u64) -> i64 {
        self.segments.with(|segments| head_min_in(segments, id))
    }

    fn segment(&self, seg: usize) -> Arc<Segment> {
        self.segments.get_or_add(seg, || Arc::new(Segment::new()))
    }

    /// Lowers the bounds to cover `appended` head samples (series id,
    /// timestamp). Called under the write lock, before they are written.
    pub fn widen(&self, appended: &[(u64, i64)]) {
        let mut cached: Option<(usize, Arc<Segment>)> = None;
        for &(id, t) in appended {
            let (seg, i) = slot(id);
            let s = match &cached {
                Some((n, s)) if *n == seg => s,
                _ => &cached.insert((seg, self.segment(seg))).1,
            };
            s.min[i].fetch_min(t, Ordering::AcqRel);
            s.recent[i].fetch_min(t, Ordering::AcqRel);
        }
    }

    /// Queues the narrowings of a compaction that was just written: each
    /// (series id, t) says the series' head now starts at or after `t`.
    /// Called under the write lock, right after the write.
    pub fn compacted(&self, narrowed: &[(u64, i64)]) {
        if narrowed.is_empty() {
            return;
        }
        let epoch = self.new_epoch();
        let mut pending = self.pending();
        if pending.narrow.is_empty() {
            pending.oldest = epoch;
        }
        for &(id, bound) in narrowed {
            let (seg, i) = slot(id);
            self.segment(seg).recent[i].store(i64::MAX, Ordering::Release);
            pending.narrow.insert(id, (epoch, bound));
        }
    }

    /// Starts a new reader epoch and returns it: a reader registered from
    /// now on has at least this epoch. Called under the write lock, right
    /// after a write whose effect older readers may not see (a queued
    /// narrowing, or a chunk cut from [`crate::open_chunks`]).
    pub fn new_epoch(&self) -> u64 {
        let mut readers = self.readers();
        readers.epoch += 1;
        readers.epoch
    }

    /// Returns the oldest epoch a registered reader has (the current epoch
    /// when none is registered): what was tagged with an epoch at or below
    /// it is seen by every reader.
    pub fn safe_epoch(&self) -> u64 {
        let readers = self.readers();
        readers
            .active
            .keys()
            .next()
            .copied()
            .unwrap_or(readers.epoch)
    }

    /// Applies the queued narrowings that no registered reader can be
    /// misled by any more. Called under the write lock.
    pub fn apply_ready(&self) {
        let mut pending = self.pending();
        if pending.narrow.is_empty() {
            return;
        }
        // A narrowing of epoch e is safe once every reader has epoch >= e.
        let safe_below = self.safe_epoch();
        if pending.oldest > safe_below {
            return;
        }
        let segments = self.view().segments;
        let mut oldest = u64::MAX;
        pending.narrow.retain(|&id, &mut (epoch, bound)| {
            if epoch > safe_below {
                oldest = oldest.min(epoch);
                return true;
            }
            let (seg, i) = slot(id);
            if let Some(s) = segments.get(seg) {
                let recent = s.recent[i].load(Ordering::Acquire);
                s.min[i].store(bound.min(recent), Ordering::Release);
            }
            false
        });
        pending.oldest = oldest;
    }

    /// Returns the number of narrowings waiting for readers (for tests and
    /// diagnostics).
    pub fn pending_narrowings(&self) -> usize {
        self.pending().narrow.len()
    }
}

#[cfg(test)]
mod tests;
