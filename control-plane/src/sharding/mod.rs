//! Sharding: which member scrapes which target.
//!
//! Rendezvous (highest random weight) hashing: every (target, member) pair
//! gets a score from a stable hash, and a target belongs to the member with
//! the highest score. When a member leaves only its targets move, each to its
//! runner-up; when a member joins it takes only the targets it now wins,
//! about 1/N of them. The result depends only on the target ids and member
//! ids, so every control plane computes the same assignment.
//!
//! [`bounded`] is what the coordinator uses: consistent hashing with bounded
//! load, weighted by series count and computed from the previous assignment
//! so that only targets that must move do. Its properties and measured
//! numbers are in `README.md` beside this file. The rendezvous functions
//! here are the stateless reference it is compared with.

pub mod bounded;

use std::collections::HashMap;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// A member as the sharder sees it: its id and a hash of it, computed once.
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

fn score(target_id: &str, member: &Member) -> u64 {
    xxh3_64_with_seed(target_id.as_bytes(), member.seed)
}

/// Returns the member that owns `target_id`, `None` when there are no members.
/// Ties (practically impossible) go to the smaller member id.
pub fn owner<'m>(target_id: &str, members: &'m [Member]) -> Option<&'m Member> {
    members.iter().max_by(|a, b| {
        score(target_id, a)
            .cmp(&score(target_id, b))
            .then(b.id.cmp(&a.id))
    })
}

/// Assigns every target to a member: target id -> member id.
pub fn assign<'t>(
    targets: impl IntoIterator<Item = &'t str>,
    members: &[Member],
) -> HashMap<String, String> {
    targets
        .into_iter()
        .filter_map(|t| owner(t, members).map(|m| (t.to_string(), m.id.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
