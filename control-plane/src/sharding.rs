//! Sharding: which member scrapes which target.
//!
//! Rendezvous (highest random weight) hashing: every (target, member) pair
//! gets a score from a stable hash, and a target belongs to the member with
//! the highest score. When a member leaves only its targets move, each to its
//! runner-up; when a member joins it takes only the targets it now wins,
//! about 1/N of them. The result depends only on the target ids and member
//! ids, so every control plane computes the same assignment.
//!
//! TODO(issue 5): bound the load (weighted by series count) and compute from
//! the previous assignment; the signature already takes what that needs.

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
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{:016x}", xxh3_64(&i.to_le_bytes())))
            .collect()
    }

    fn members(names: &[&str]) -> Vec<Member> {
        names.iter().map(|n| Member::new(*n)).collect()
    }

    #[test]
    fn no_members_no_owner() {
        assert!(owner("t", &[]).is_none());
        assert!(assign(["t"], &[]).is_empty());
    }

    #[test]
    fn leaving_member_moves_only_its_targets() {
        let targets = ids(5000);
        let before = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "c", "d"]),
        );
        let after = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "d"]),
        );
        for t in &targets {
            if before[t] != "c" {
                assert_eq!(before[t], after[t], "target {t} moved without need");
            } else {
                assert_ne!(after[t], "c");
            }
        }
    }

    #[test]
    fn joining_member_takes_about_its_share_and_only_that() {
        let targets = ids(10_000);
        let before = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "c"]),
        );
        let after = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "c", "d"]),
        );
        let moved: Vec<_> = targets.iter().filter(|t| before[*t] != after[*t]).collect();
        assert!(moved.iter().all(|t| after[*t] == "d"));
        let share = moved.len() as f64 / targets.len() as f64;
        assert!((0.22..0.28).contains(&share), "moved share {share}");
    }

    #[test]
    fn load_is_roughly_even() {
        let targets = ids(20_000);
        let m = members(&["s1", "s2", "s3", "s4", "s5"]);
        let a = assign(targets.iter().map(String::as_str), &m);
        for member in &m {
            let n = a.values().filter(|v| **v == member.id).count();
            assert!((3600..4400).contains(&n), "{} has {n}", member.id);
        }
    }
}
