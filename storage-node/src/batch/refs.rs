//! A stream's series references: what each stands for ([`StreamSeries`],
//! its labels and, once the writer stored or found the series, its id)
//! and the table of them ([`RefTable`]). A batch names a series by id
//! ([`SeriesRef::Id`]) once its stream learned it, so the writer looks
//! nothing up for it. References are the scraper's series numbers, counted
//! from 1, so the table is an array indexed by reference (a scrape's series
//! have neighbouring numbers: resolving walks it in order), with a map for
//! references far past the number defined.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use scrapegrid_common::CompactLabels;

/// What a stream's reference stands for.
#[derive(Debug)]
pub struct StreamSeries {
    pub labels: Arc<CompactLabels>,
    /// The series id, [`UNKNOWN_ID`] until a write that named the series
    /// succeeded ([`StreamSeries::learn`]).
    id: AtomicU64,
}

/// No series id yet.
const UNKNOWN_ID: u64 = u64::MAX;

impl StreamSeries {
    pub fn new(labels: Arc<CompactLabels>) -> Arc<Self> {
        Arc::new(Self {
            labels,
            id: AtomicU64::new(UNKNOWN_ID),
        })
    }

    /// Notes the series id of these labels, once a write stored or found
    /// it (ids are never reused, so it stays right for the stream's life).
    pub fn learn(&self, id: u64) {
        self.id.store(id, Ordering::Release);
    }

    fn known_id(&self) -> Option<u64> {
        let id = self.id.load(Ordering::Acquire);
        (id != UNKNOWN_ID).then_some(id)
    }
}

/// One series of a [`Batch`].
#[derive(Debug, Clone)]
pub enum SeriesRef {
    /// A series the database holds, by id.
    Id(u64),
    /// A series by labels: the writer finds or creates it, and tells the
    /// entry its id.
    Labels(Arc<StreamSeries>),
}

impl SeriesRef {
    pub(super) fn of(entry: &Arc<StreamSeries>) -> Self {
        match entry.known_id() {
            Some(id) => SeriesRef::Id(id),
            None => SeriesRef::Labels(entry.clone()),
        }
    }
}

impl From<Arc<CompactLabels>> for SeriesRef {
    fn from(labels: Arc<CompactLabels>) -> Self {
        SeriesRef::Labels(StreamSeries::new(labels))
    }
}

impl PartialEq for SeriesRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SeriesRef::Id(a), SeriesRef::Id(b)) => a == b,
            (SeriesRef::Labels(a), SeriesRef::Labels(b)) => a.labels == b.labels,
            _ => false,
        }
    }
}

/// References below this many (or four times the number defined) are
/// kept in the array, the rest in the map.
pub(super) const DENSE_FLOOR: u64 = 1 << 16;

/// Stream-scoped series references.
#[derive(Debug, Default)]
pub struct RefTable {
    pub(super) dense: Vec<Option<Arc<StreamSeries>>>,
    sparse: FxHashMap<u64, Arc<StreamSeries>>,
    len: usize,
}

impl RefTable {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn get(&self, r: u64) -> Option<&Arc<StreamSeries>> {
        match usize::try_from(r).ok().and_then(|i| self.dense.get(i)) {
            Some(Some(e)) => Some(e),
            _ => self.sparse.get(&r),
        }
    }

    /// Binds `r` to `labels`, replacing what it stood for.
    pub(super) fn insert(&mut self, r: u64, labels: Arc<CompactLabels>) {
        let entry = StreamSeries::new(labels);
        let limit = (self.len as u64).saturating_mul(4).max(DENSE_FLOOR);
        if r < limit {
            let i = r as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            if self.dense[i].replace(entry).is_none() && self.sparse.remove(&r).is_none() {
                self.len += 1;
            }
        } else if self.sparse.insert(r, entry).is_none() {
            self.len += 1;
        }
    }
}
