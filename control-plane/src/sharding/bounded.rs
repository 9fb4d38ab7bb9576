//! Bounded-load sharding: consistent hashing with a capacity per member,
//! weighted by each target's series count, computed from the previous
//! assignment so that only targets that must move do.
//!
//! Every member owns [`VNODES`] points on a 64-bit hash ring; a target's
//! *home* is the owner of the first point clockwise from the target's hash,
//! and its *walk* is the ring read on from there. No member may carry more
//! than the capacity `⌊(1+ε)·W/N⌋`, where `W` is the total weight and `N` the
//! number of members. [`assign_bounded`] takes the targets in a canonical
//! order (heaviest first, then by hash, then by id) and runs three passes:
//!
//! 1. **Keep**: a target whose previous owner is still present stays there
//!    if it fits; targets on the arcs of a new member are kept last, so a
//!    member over the (new) capacity sheds those first.
//! 2. **Place** what must move (shed targets, targets of members that left,
//!    new targets): the first *new* member with room on the walk, else the
//!    first member with room, else (only possible when a target weighs about
//!    `ε·W/(N-1)` or more) the least loaded member, which keeps every load
//!    under `W/N + max weight`.
//! 3. **Arrivals**: a new member takes the targets on its arcs while it has
//!    room. This is how a joiner gets its share.
//!
//! On a join everything that moves goes to the joiner (while it has room), so
//! the moved load is at most its capacity `(1+ε)·W/(N+1)`; on a leave only
//! the leaver's targets move. Nothing ever moves back home or to rebalance.
//!
//! Decisions never depend on `HashMap` iteration order: members are sorted
//! by id and targets by the canonical order, so every control plane computes
//! the same result. `README.md` beside this file states the properties and
//! the measured numbers.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::Member;

/// Ring points per member. More points even out the arcs (the spread of a
/// member's home share is about `1/sqrt(VNODES)`), at the price of a larger
/// ring and a slightly slower lookup.
pub const VNODES: usize = 256;

/// The default slack over the mean load: max/mean at most 1.05.
pub const DEFAULT_EPSILON: f64 = 0.05;

/// Marks "no member" in per-target index vectors.
const NONE: u32 = u32::MAX;

/// Which member owns which target, with the member set and loads it was
/// computed for. Pass it back as `previous` to the next [`assign_bounded`].
#[derive(Clone, Debug, Default)]
pub struct Assignment {
    /// Member ids, sorted and deduplicated.
    members: Vec<String>,
    /// Target id -> index into `members`.
    owner: HashMap<String, u32, BuildHasherDefault<IdHasher>>,
    /// Sum of the (clamped) weights each member owns, by index.
    load: Vec<u64>,
    /// The capacity the assignment was computed with.
    capacity: u64,
}

impl Assignment {
    /// Rebuilds an assignment from `(target id, member id)` pairs, to pass
    /// as `previous` when the owners are kept elsewhere (the coordinator's
    /// table, or state restored after a leader change). Loads and capacity
    /// are not known and stay zero; [`assign_bounded`] reads neither.
    pub fn from_owners<'a>(owners: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let owners: Vec<(&str, &str)> = owners.into_iter().collect();
        let mut members: Vec<String> = owners.iter().map(|(_, m)| m.to_string()).collect();
        members.sort_unstable();
        members.dedup();
        let mut owner = HashMap::with_capacity_and_hasher(owners.len(), Default::default());
        for (t, m) in owners {
            if let Ok(i) = members.binary_search_by(|x| x.as_str().cmp(m)) {
                owner.insert(t.to_string(), i as u32);
            }
        }
        Self {
            load: vec![0; members.len()],
            members,
            owner,
            capacity: 0,
        }
    }

    /// Returns the member id that owns `target`, if any.
    pub fn owner(&self, target: &str) -> Option<&str> {
        self.owner
            .get(target)
            .map(|&i| self.members[i as usize].as_str())
    }

    /// Returns the member ids the assignment was computed for, sorted.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Returns the load (sum of weights) of `member`, `None` if not a member.
    pub fn load(&self, member: &str) -> Option<u64> {
        let i = self
            .members
            .binary_search_by(|m| m.as_str().cmp(member))
            .ok()?;
        Some(self.load[i])
    }

    /// Returns `(member id, load)` for every member, in member id order.
    pub fn loads(&self) -> impl Iterator<Item = (&str, u64)> {
        self.members
            .iter()
            .map(String::as_str)
            .zip(self.load.iter().copied())
    }

    /// Returns the per-member capacity used: `⌊(1+ε)·W/N⌋`.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Returns the number of assigned targets.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    /// Returns true when no target is assigned.
    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Returns `(target id, member id)` pairs in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.owner
            .iter()
            .map(|(t, &m)| (t.as_str(), self.members[m as usize].as_str()))
    }

    /// Returns the largest load divided by the mean load (1.0 when empty).
    pub fn max_over_mean(&self) -> f64 {
        let total: u64 = self.load.iter().sum();
        let max = self.load.iter().copied().max().unwrap_or(0);
        if total == 0 {
            return 1.0;
        }
        max as f64 * self.load.len() as f64 / total as f64
    }

    /// Returns the weight of the `targets` whose owner differs between `self`
    /// and `next` (targets absent from either side are not counted).
    pub fn moved_load(&self, next: &Assignment, targets: &[(&str, u64)]) -> u64 {
        targets
            .iter()
            .filter(|(t, _)| matches!((self.owner(t), next.owner(t)), (Some(a), Some(b)) if a != b))
            .map(|&(_, w)| w.max(1))
            .sum()
    }
}

/// Assigns `targets` (id, weight) to `members` with bounded load, moving as
/// little as possible from `previous` (use `Assignment::default()` the first
/// time).
///
/// A weight is the target's last series count; 0 (unknown) counts as 1.
/// Target ids are expected to be unique. `epsilon` is the allowed slack over
/// the mean load ([`DEFAULT_EPSILON`]). With no members, nothing is assigned.
pub fn assign_bounded(
    targets: &[(&str, u64)],
    members: &[Member],
    previous: &Assignment,
    epsilon: f64,
) -> Assignment {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted.dedup_by(|a, b| a.id == b.id);
    let n = sorted.len();
    let ids: Vec<String> = sorted.iter().map(|m| m.id.clone()).collect();
    if n == 0 || targets.is_empty() {
        return Assignment {
            load: vec![0; n],
            members: ids,
            ..Assignment::default()
        };
    }

    let ring = build_ring(&sorted);
    let ring_index = RingIndex::new(&ring);
    // A member is new when the previous assignment did not know it.
    let is_new: Vec<bool> = ids
        .iter()
        .map(|id| previous.members.binary_search(id).is_err())
        .collect();
    // Index in `previous.members` -> index in `ids`, or NONE if it left.
    let prev_to_cur: Vec<u32> = previous
        .members
        .iter()
        .map(|id| ids.binary_search(id).map_or(NONE, |i| i as u32))
        .collect();

    let weight: Vec<u64> = targets.iter().map(|&(_, w)| w.max(1)).collect();
    let hash: Vec<u64> = targets.iter().map(|(t, _)| xxh3_64(t.as_bytes())).collect();
    let start: Vec<u32> = hash.iter().map(|&h| ring_index.start(&ring, h)).collect();
    let prev: Vec<u32> = targets
        .iter()
        .map(|(t, _)| {
            previous
                .owner
                .get(*t)
                .map_or(NONE, |&i| prev_to_cur[i as usize])
        })
        .collect();

    let total: u64 = weight.iter().sum();
    let capacity = ((1.0 + epsilon) * total as f64 / n as f64).floor() as u64;

    // Canonical order: heaviest first (they are the hardest to fit, and a
    // member over capacity then sheds its lightest targets), then by hash.
    let mut order: Vec<(Reverse<u64>, u64, u32)> = (0..targets.len())
        .map(|i| (Reverse(weight[i]), hash[i], i as u32))
        .collect();
    order.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| targets[a.2 as usize].0.cmp(targets[b.2 as usize].0))
    });

    let mut owner = vec![NONE; targets.len()];
    let mut load = vec![0u64; n];
    let fits = |load: &[u64], m: u32, w: u64| load[m as usize] + w <= capacity;

    let home = |t: usize| ring[start[t] as usize].1;
    let any_new = is_new.iter().any(|&b| b);

    // 1. Keep: a target stays on its previous owner if it fits, targets on
    //    the arcs of a new member last (a member over capacity sheds those
    //    first: they have somewhere natural to go).
    // Without a joiner, what must move is only what a member cannot keep:
    // a member sheds once it is over the mean plus the heaviest target, not
    // at `cap`, so weights drifting between rounds (series counts change)
    // do not shuffle small fleets, where `cap` is a tight integer bound.
    let w_max = weight.iter().copied().max().unwrap_or(1);
    let keep_cap = if any_new {
        capacity
    } else {
        capacity.max(total.div_ceil(n as u64) + w_max)
    };
    for arc_pass in [false, true] {
        for &(_, _, t) in &order {
            let (t, p) = (t as usize, prev[t as usize]);
            if p != NONE
                && is_new[home(t) as usize] == arc_pass
                && load[p as usize] + weight[t] <= keep_cap
            {
                owner[t] = p;
                load[p as usize] += weight[t];
            }
        }
    }
    // 2. Place what must move (shed, orphaned or new): the first new member
    //    with room on the walk, else the first member with room, else the
    //    least loaded. `new_floor` is a lower bound on the least loaded new
    //    member's load (loads only grow here), so a fruitless walk over new
    //    members happens at most once per distinct weight.
    let mut new_floor = if any_new { 0 } else { u64::MAX };
    for &(_, _, t) in &order {
        let (t, w) = (t as usize, weight[t as usize]);
        if owner[t] != NONE {
            continue;
        }
        let s = start[t] as usize;
        let walk = || (0..ring.len()).map(|k| ring[(s + k) % ring.len()].1);
        let mut m = NONE;
        if new_floor.saturating_add(w) <= capacity {
            m = walk()
                .find(|&m| is_new[m as usize] && fits(&load, m, w))
                .unwrap_or(NONE);
            if m == NONE {
                new_floor = capacity - w + 1;
            }
        }
        if m == NONE {
            m = walk()
                .find(|&m| fits(&load, m, w))
                .unwrap_or_else(|| least_loaded(&load));
        }
        owner[t] = m;
        load[m as usize] += w;
    }
    // 3. Arrivals: a new member takes the targets on its arcs while it has
    //    room. This is how a joiner gets its share when nobody must shed.
    if any_new {
        for &(_, _, t) in &order {
            let (t, w) = (t as usize, weight[t as usize]);
            let (h, o) = (home(t), owner[t]);
            if is_new[h as usize] && o != h && fits(&load, h, w) {
                load[o as usize] -= w;
                owner[t] = h;
                load[h as usize] += w;
            }
        }
    }

    let mut map = HashMap::with_capacity_and_hasher(targets.len(), Default::default());
    for (&(t, _), &m) in targets.iter().zip(&owner) {
        map.insert(t.to_string(), m);
    }
    Assignment {
        members: ids,
        owner: map,
        load,
        capacity,
    }
}

/// Returns the ring: `VNODES` points per member, sorted by position (ties,
/// practically impossible, by member index).
fn build_ring(members: &[&Member]) -> Vec<(u64, u32)> {
    let mut ring = Vec::with_capacity(members.len() * VNODES);
    for (i, m) in members.iter().enumerate() {
        for v in 0..VNODES as u64 {
            ring.push((xxh3_64_with_seed(&v.to_le_bytes(), m.seed), i as u32));
        }
    }
    ring.sort_unstable();
    ring
}

/// Returns the index of the least loaded member (the smallest index on ties).
fn least_loaded(load: &[u64]) -> u32 {
    (0..load.len() as u32)
        .min_by_key(|&m| (load[m as usize], m))
        .unwrap_or(0)
}

/// Bits of a position that select a bucket of [`RingIndex`].
const INDEX_BITS: u32 = 16;

/// Where each `2^-INDEX_BITS` slice of the ring starts, so a lookup is a
/// table read and a short scan instead of a binary search over the whole
/// ring (which misses the cache at every step).
struct RingIndex(Vec<u32>);

impl RingIndex {
    fn new(ring: &[(u64, u32)]) -> Self {
        let buckets = 1usize << INDEX_BITS;
        let mut first = Vec::with_capacity(buckets + 1);
        let mut i = 0;
        for b in 0..buckets as u64 {
            while i < ring.len() && ring[i].0 >> (64 - INDEX_BITS) < b {
                i += 1;
            }
            first.push(i as u32);
        }
        first.push(ring.len() as u32);
        Self(first)
    }

    /// Returns the index of the first ring point at or after `h`, wrapping.
    fn start(&self, ring: &[(u64, u32)], h: u64) -> u32 {
        let b = (h >> (64 - INDEX_BITS)) as usize;
        let (lo, hi) = (self.0[b] as usize, self.0[b + 1] as usize);
        let i = lo + ring[lo..hi].partition_point(|&(p, _)| p < h);
        (i % ring.len()) as u32
    }
}

/// A `Hasher` for string keys: one-shot xxh3 over the bytes (the std
/// `SipHash` and the streaming xxh3 are several times slower on short ids).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u8(&mut self, i: u8) {
        // `str` hashes end with a 0xff byte; mix it in cheaply.
        self.0 = self.0.rotate_left(5) ^ u64::from(i);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
