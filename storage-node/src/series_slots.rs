//! Per-series values kept in memory and indexed by series id: fixed-size
//! segments, added as ids grow, that readers look up without locks through
//! a copy of the segment list ([`Segments::list`]). [`crate::head_bounds`]
//! and [`crate::chunk_ends`] keep theirs here.

use std::sync::{Arc, RwLock};

/// Series per segment.
pub const SEGMENT: usize = 4096;

/// Returns the segment and the index in it of series `id`.
pub fn slot(id: u64) -> (usize, usize) {
    let id = usize::try_from(id).unwrap_or(usize::MAX);
    (id / SEGMENT, id % SEGMENT)
}

/// The segments, each an `Arc<T>` holding [`SEGMENT`] series' values.
pub struct Segments<T: ?Sized> {
    list: RwLock<Vec<Arc<T>>>,
}

impl<T: ?Sized> Default for Segments<T> {
    fn default() -> Self {
        Self {
            list: RwLock::new(Vec::new()),
        }
    }
}

impl<T: ?Sized> Segments<T> {
    /// Returns the segments as they are now: lookups through the copy take
    /// no lock, and see the values' later changes but not later segments.
    pub fn list(&self) -> Vec<Arc<T>> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `f` on the segments under the read lock (one lookup without
    /// copying the list).
    pub fn with<R>(&self, f: impl FnOnce(&[Arc<T>]) -> R) -> R {
        f(&self.list.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Returns segment `seg`, adding it (and any before it) with `make`
    /// when it does not exist yet.
    pub fn get_or_add(&self, seg: usize, make: impl Fn() -> Arc<T>) -> Arc<T> {
        if let Some(s) = self.list.read().unwrap_or_else(|p| p.into_inner()).get(seg) {
            return s.clone();
        }
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        while list.len() <= seg {
            list.push(make());
        }
        list[seg].clone()
    }
}
