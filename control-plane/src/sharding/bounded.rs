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
    let items: Vec<Item> = targets
        .iter()
        .map(|&(t, w)| {
            let prev = previous
                .owner
                .get(t)
                .map_or(NONE, |&i| prev_to_cur[i as usize]);
            Item::new(t, w, prev, false, &ring, &ring_index)
        })
        .collect();
    let total: u64 = items.iter().map(|i| i.weight).sum();
    let w_max = items.iter().map(|i| i.weight).max().unwrap_or(1);
    let bounds = Bounds::new(total, w_max, n, epsilon, is_new.iter().any(|&b| b));
    let mut load = vec![0u64; n];
    let owner = passes(&items, &ring, &is_new, &mut load, &bounds);

    let mut map = HashMap::with_capacity_and_hasher(targets.len(), Default::default());
    for (&(t, _), &m) in targets.iter().zip(&owner) {
        map.insert(t.to_string(), m);
    }
    Assignment {
        members: ids,
        owner: map,
        load,
        capacity: bounds.capacity,
    }
}

/// What [`assign_changes`] reads of the current owners and weights, which
/// the caller keeps up to date as they change (the coordinator's ledger),
/// so that a round reads what may move, not every target.
pub trait Fleet {
    /// The weight of every present target, each at least 1.
    fn total(&self) -> u64;
    /// The heaviest present target's weight.
    fn heaviest(&self) -> u64;
    /// The weight of `target` (at least 1).
    fn weight(&self, target: &str) -> u64;
    /// The member that owns `target`, if any.
    fn owner(&self, target: &str) -> Option<&str>;
    /// Whether `member` owns any target (present or not).
    fn owns_any(&self, member: &str) -> bool;
    /// The weight of the present targets `member` owns.
    fn load(&self, member: &str) -> u64;
    /// The present targets `member` owns.
    fn targets_of(&self, member: &str) -> Vec<&str>;
    /// The present targets owned by none of `members`.
    fn orphans(&self, members: &[String]) -> Vec<&str>;
    /// Every present target.
    fn present(&self) -> Box<dyn Iterator<Item = &str> + '_>;
}

/// The owners that change when the targets of `fleet` are assigned to
/// `members`: exactly what [`assign_bounded`] would change, given every
/// present target with its weight and the current owners as `previous`,
/// but reading only what may move: the targets of members that are not in
/// `members` or own none, those of a member over the bound it may keep,
/// and (when a member joins) every target's hash to find the joiner's
/// arcs. Returns the targets whose owner changes, with the new owner (none
/// when there is no member to take it).
pub fn assign_changes<'a>(
    fleet: &'a impl Fleet,
    members: &'a [Member],
    epsilon: f64,
) -> Changes<'a> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted.dedup_by(|a, b| a.id == b.id);
    let n = sorted.len();
    let ids: Vec<String> = sorted.iter().map(|m| m.id.clone()).collect();
    let orphans = fleet.orphans(&ids);
    if n == 0 {
        return orphans.into_iter().map(|t| (t, None)).collect();
    }
    let ring = build_ring(&sorted);
    let ring_index = RingIndex::new(&ring);
    let is_new: Vec<bool> = ids.iter().map(|id| !fleet.owns_any(id)).collect();
    let any_new = is_new.iter().any(|&b| b);
    let index = |m: Option<&str>| {
        m.and_then(|m| ids.binary_search_by(|x| x.as_str().cmp(m)).ok())
            .map_or(NONE, |i| i as u32)
    };
    let bounds = Bounds::new(fleet.total(), fleet.heaviest(), n, epsilon, any_new);
    // A member whose targets all fit keeps them all (in the batch's keep
    // pass every partial sum of its loads is at most the whole); only the
    // targets of one over the bound are taken through the keep pass.
    let mut load = vec![0u64; n];
    let mut items: Vec<Item> = Vec::new();
    let mut seen: std::collections::HashSet<&str, BuildHasherDefault<IdHasher>> =
        Default::default();
    for (i, id) in ids.iter().enumerate() {
        let full = fleet.load(id);
        if full <= bounds.keep_cap {
            load[i] = full;
            continue;
        }
        for t in fleet.targets_of(id) {
            seen.insert(t);
            items.push(Item::new(
                t,
                fleet.weight(t),
                i as u32,
                false,
                &ring,
                &ring_index,
            ));
        }
    }
    for t in orphans {
        seen.insert(t);
        items.push(Item::new(
            t,
            fleet.weight(t),
            NONE,
            false,
            &ring,
            &ring_index,
        ));
    }
    // Arrivals read the joiner's arcs: every target whose home is new.
    if any_new {
        for t in fleet.present() {
            if seen.contains(t) {
                continue;
            }
            let h = xxh3_64(t.as_bytes());
            let home = ring[ring_index.start(&ring, h) as usize].1;
            if is_new[home as usize] {
                let owner = index(fleet.owner(t));
                items.push(Item::new(
                    t,
                    fleet.weight(t),
                    owner,
                    true,
                    &ring,
                    &ring_index,
                ));
            }
        }
    }
    let owner = passes(&items, &ring, &is_new, &mut load, &bounds);
    items
        .iter()
        .zip(owner)
        .filter(|(item, m)| item.prev != *m)
        .map(|(item, m)| (item.id, (m != NONE).then(|| sorted[m as usize].id.as_str())))
        .collect()
}

/// What [`assign_changes`] returns: by target, its new owner (none when
/// there is no member to take it).
pub type Changes<'a> = HashMap<&'a str, Option<&'a str>, BuildHasherDefault<IdHasher>>;

/// A target as the passes see it.
struct Item<'a> {
    id: &'a str,
    /// At least 1.
    weight: u64,
    hash: u64,
    /// Its home's index in the ring.
    start: u32,
    /// Its previous owner, or NONE.
    prev: u32,
    /// Already counted in its previous owner's load, which keeps it.
    kept: bool,
}

impl<'a> Item<'a> {
    fn new(
        id: &'a str,
        weight: u64,
        prev: u32,
        kept: bool,
        ring: &[(u64, u32)],
        ring_index: &RingIndex,
    ) -> Self {
        let hash = xxh3_64(id.as_bytes());
        Item {
            id,
            weight: weight.max(1),
            hash,
            start: ring_index.start(ring, hash),
            prev,
            kept,
        }
    }
}

/// The load bounds of one assignment.
struct Bounds {
    /// `⌊(1+ε)·W/N⌋`.
    capacity: u64,
    /// What a member may keep in the keep pass.
    keep_cap: u64,
    any_new: bool,
}

impl Bounds {
    fn new(total: u64, w_max: u64, n: usize, epsilon: f64, any_new: bool) -> Self {
        let capacity = ((1.0 + epsilon) * total as f64 / n as f64).floor() as u64;
        // Without a joiner, what must move is only what a member cannot
        // keep: a member sheds once it is over the mean plus the heaviest
        // target, not at `cap`, so weights drifting between rounds (series
        // counts change) do not shuffle small fleets, where `cap` is a
        // tight integer bound.
        let keep_cap = if any_new {
            capacity
        } else {
            capacity.max(total.div_ceil(n as u64) + w_max)
        };
        Bounds {
            capacity,
            keep_cap,
            any_new,
        }
    }
}

/// The three passes over `items`, with `load` holding what members keep
/// outside them; returns each item's owner (NONE only with no member).
fn passes(
    items: &[Item],
    ring: &[(u64, u32)],
    is_new: &[bool],
    load: &mut [u64],
    b: &Bounds,
) -> Vec<u32> {
    // Canonical order: heaviest first (they are the hardest to fit, and a
    // member over capacity then sheds its lightest targets), then by hash.
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    order.sort_unstable_by(|&x, &y| {
        let (x, y) = (&items[x as usize], &items[y as usize]);
        (Reverse(x.weight), x.hash, x.id).cmp(&(Reverse(y.weight), y.hash, y.id))
    });
    let capacity = b.capacity;
    let mut owner: Vec<u32> = items
        .iter()
        .map(|i| if i.kept { i.prev } else { NONE })
        .collect();
    let fits = |load: &[u64], m: u32, w: u64| load[m as usize] + w <= capacity;
    let home = |t: usize| ring[items[t].start as usize].1;

    // 1. Keep: a target stays on its previous owner if it fits, targets on
    //    the arcs of a new member last (a member over capacity sheds those
    //    first: they have somewhere natural to go).
    for arc_pass in [false, true] {
        for &t in &order {
            let (t, item) = (t as usize, &items[t as usize]);
            let p = item.prev;
            if !item.kept
                && p != NONE
                && is_new[home(t) as usize] == arc_pass
                && load[p as usize] + item.weight <= b.keep_cap
            {
                owner[t] = p;
                load[p as usize] += item.weight;
            }
        }
    }
    // 2. Place what must move (shed, orphaned or new): the first new member
    //    with room on the walk, else the first member with room, else the
    //    least loaded. `new_floor` is a lower bound on the least loaded new
    //    member's load (loads only grow here), so a fruitless walk over new
    //    members happens at most once per distinct weight.
    let mut new_floor = if b.any_new { 0 } else { u64::MAX };
    for &t in &order {
        let (t, w) = (t as usize, items[t as usize].weight);
        if owner[t] != NONE {
            continue;
        }
        let s = items[t].start as usize;
        let walk = || (0..ring.len()).map(|k| ring[(s + k) % ring.len()].1);
        let mut m = NONE;
        if new_floor.saturating_add(w) <= capacity {
            m = walk()
                .find(|&m| is_new[m as usize] && fits(load, m, w))
                .unwrap_or(NONE);
            if m == NONE {
                new_floor = capacity - w + 1;
            }
        }
        if m == NONE {
            m = walk()
                .find(|&m| fits(load, m, w))
                .unwrap_or_else(|| least_loaded(load));
        }
        owner[t] = m;
        load[m as usize] += w;
    }
    // 3. Arrivals: a new member takes the targets on its arcs while it has
    //    room. This is how a joiner gets its share when nobody must shed.
    if b.any_new {
        for &t in &order {
            let (t, w) = (t as usize, items[t as usize].weight);
            let (h, o) = (home(t), owner[t]);
            if is_new[h as usize] && o != h && fits(load, h, w) {
                load[o as usize] -= w;
                owner[t] = h;
                load[h as usize] += w;
            }
        }
    }
    owner
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
pub struct IdHasher(u64);

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
