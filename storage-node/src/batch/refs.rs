//! A stream's series references: what each stands for ([`StreamSeries`],
//! its labels and, once the writer stored or found the series, its id)
//! and the table of them ([`RefTable`]). A batch names its series by their
//! entries ([`SeriesRef`]): the writer takes the id an entry learnt, so it
//! looks nothing up for it, unless series were collected since it learnt
//! it (the writer's series epoch moved on, [`crate::writer`]'s `collect`),
//! then it finds or creates the series by the entry's labels again.
//! References are the scraper's series numbers, counted from 1, so the
//! table is an array indexed by reference (a scrape's series have
//! neighbouring numbers: resolving walks it in order), with a map for
//! references far past the number defined.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use scrapegrid_common::CompactLabels;

/// What a stream's reference stands for.
#[derive(Debug)]
pub struct StreamSeries {
    pub labels: Arc<CompactLabels>,
    /// The series id and the writer's series epoch it was learnt in, one
    /// word ([`ID_BITS`] of id, the epoch above), [`UNKNOWN_ID`] until a
    /// write that named the series succeeded ([`StreamSeries::learn`]).
    id: AtomicU64,
}

/// No series id yet.
const UNKNOWN_ID: u64 = u64::MAX;
/// Bits of a learnt word that hold the id; an id past them is not learnt
/// (its series is then found by labels each time: slower, still right).
const ID_BITS: u32 = 40;
/// The series epochs a learnt word tells apart ([`StreamSeries::id_at`]):
/// an entry last used 2^24 collections ago could be taken as current.
pub const EPOCH_MASK: u32 = (1 << (64 - ID_BITS)) - 1;

impl StreamSeries {
    pub fn new(labels: Arc<CompactLabels>) -> Arc<Self> {
        Arc::new(Self {
            labels,
            id: AtomicU64::new(UNKNOWN_ID),
        })
    }

    /// Notes the series id of these labels, once a write stored or found
    /// it in the writer's series `epoch`: right until series are collected.
    pub fn learn(&self, id: u64, epoch: u32) {
        let word = match id < 1 << ID_BITS {
            true => u64::from(epoch & EPOCH_MASK) << ID_BITS | id,
            false => UNKNOWN_ID,
        };
        self.id.store(word, Ordering::Release);
    }

    /// The id learnt in the writer's series `epoch`, if any: one learnt
    /// before a collection may name a series that is gone.
    pub fn id_at(&self, epoch: u32) -> Option<u64> {
        let word = self.id.load(Ordering::Acquire);
        (word != UNKNOWN_ID && (word >> ID_BITS) as u32 == epoch & EPOCH_MASK)
            .then_some(word & ((1 << ID_BITS) - 1))
    }
}

/// One series of a [`Batch`]: its stream's entry, whose id the writer
/// takes when it is current, else whose labels it finds or creates.
#[derive(Debug, Clone)]
pub struct SeriesRef(pub Arc<StreamSeries>);

impl SeriesRef {
    pub(super) fn of(entry: &Arc<StreamSeries>) -> Self {
        SeriesRef(entry.clone())
    }

    pub fn labels(&self) -> &Arc<CompactLabels> {
        &self.0.labels
    }
}

impl From<Arc<CompactLabels>> for SeriesRef {
    fn from(labels: Arc<CompactLabels>) -> Self {
        SeriesRef(StreamSeries::new(labels))
    }
}

impl PartialEq for SeriesRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.labels == other.0.labels
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
