//! Sharding: which member scrapes which target.
//!
//! [`bounded`] is what the coordinator uses: consistent hashing with bounded
//! load, weighted by series count and computed from the previous assignment
//! so that only targets that must move do. Its properties and measured
//! numbers are in `README.md` beside this file (with why a ring and not
//! rendezvous hashing). The result depends only on the target ids, member
//! ids and the previous assignment, so every control plane computes the
//! same one. This file holds [`Member`], a member as the sharder sees it;
//! `tests.rs` and `tests/bounded.rs` hold the property tests.

pub mod bounded;

use xxhash_rust::xxh3::xxh3_64;

/// A member as the sharder sees it: its id and a hash of it (the seed of
/// its virtual nodes), computed once.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    seed: u64,
}

impl Member {
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        let seed = xxh3_64(id.as_bytes());
        Self { id, seed }
    }
}

#[cfg(test)]
mod tests;
