//! Property tests of `assign_bounded` over pseudo-random fleets: sizes from a
//! handful of members to hundreds, unit, uniform and Zipf-like weights.

use crate::sharding::bounded::{assign_bounded, Assignment, DEFAULT_EPSILON as EPS};
use crate::sharding::Member;
use scrapegrid_common::xorshift::XorShift as Rng;

#[derive(Clone, Copy, Debug)]
enum Weights {
    Unit,
    Uniform,
    /// Zipf-like: weight ~ 1/rank, capped to `cap`.
    Zipf {
        cap: u64,
    },
}

struct Fleet {
    ids: Vec<String>,
    weights: Vec<u64>,
    members: Vec<Member>,
}

impl Fleet {
    fn new(rng: &mut Rng, targets: usize, members: usize, weights: Weights) -> Self {
        let ids: Vec<String> = (0..targets)
            .map(|i| format!("job/{:x}/{i}", rng.next_u64()))
            .collect();
        let weights = (0..targets)
            .map(|_| match weights {
                Weights::Unit => 1,
                Weights::Uniform => 1 + rng.below(100),
                Weights::Zipf { cap } => (10_000 / (1 + rng.below(targets as u64))).clamp(1, cap),
            })
            .collect();
        let members = (0..members)
            .map(|i| Member::new(format!("scraper-{i}-{:x}", rng.next_u64())))
            .collect();
        Self {
            ids,
            weights,
            members,
        }
    }
    fn targets(&self) -> Vec<(&str, u64)> {
        self.ids
            .iter()
            .map(String::as_str)
            .zip(self.weights.iter().copied())
            .collect()
    }
    fn total(&self) -> u64 {
        self.weights.iter().sum()
    }
}

/// (targets, members, weights) for the general properties.
fn cases() -> Vec<(usize, usize, Weights)> {
    vec![
        (1_000, 3, Weights::Unit),
        (5_000, 10, Weights::Uniform),
        (20_000, 50, Weights::Unit),
        (20_000, 50, Weights::Zipf { cap: 100 }),
        (50_000, 200, Weights::Uniform),
        (30_000, 7, Weights::Zipf { cap: 1_000 }),
    ]
}

fn assert_valid(a: &Assignment, fleet: &Fleet, members: &[Member]) {
    assert_eq!(a.len(), fleet.ids.len());
    for id in &fleet.ids {
        let owner = a.owner(id).expect("every target is assigned");
        assert!(
            members.iter().any(|m| m.id == owner),
            "{id} on absent {owner}"
        );
    }
    let sum: u64 = a.loads().map(|(_, l)| l).sum();
    assert_eq!(sum, fleet.total());
}

/// Every target is owned by a present member, and with every weight under the
/// slack no load exceeds the capacity, i.e. max/mean <= 1 + epsilon.
#[test]
fn bounded_assigns_all_within_capacity() {
    let mut rng = Rng::new(0x5eed);
    for (t, n, w) in cases() {
        let fleet = Fleet::new(&mut rng, t, n, w);
        let a = assign_bounded(
            &fleet.targets(),
            &fleet.members,
            &Assignment::default(),
            EPS,
        );
        assert_valid(&a, &fleet, &fleet.members);
        let mean = fleet.total() as f64 / n as f64;
        assert!(a.capacity() as f64 <= (1.0 + EPS) * mean);
        assert!(a.loads().all(|(_, l)| l <= a.capacity()), "{t} {n} {w:?}");
        assert!(
            a.max_over_mean() <= 1.0 + EPS,
            "{t} {n} {w:?}: {}",
            a.max_over_mean()
        );
    }
}

/// A target heavier than the slack cannot always fit; it then goes to the
/// least loaded member, and every load stays under `W/N + max weight`.
#[test]
fn bounded_heavy_targets_stay_under_mean_plus_max_weight() {
    let mut rng = Rng::new(7);
    for n in [2, 5, 20] {
        let mut fleet = Fleet::new(&mut rng, 200, n, Weights::Uniform);
        fleet.weights[0] = fleet.total(); // half of everything
        fleet.weights[1] = fleet.total() / 4;
        let a = assign_bounded(
            &fleet.targets(),
            &fleet.members,
            &Assignment::default(),
            EPS,
        );
        assert_valid(&a, &fleet, &fleet.members);
        let bound = fleet.total() as f64 / n as f64 + fleet.weights[0] as f64;
        let cap = (a.capacity() as f64).max(bound);
        assert!(a.loads().all(|(_, l)| l as f64 <= cap), "n={n}");
        // The two heaviest never share a member.
        assert_ne!(a.owner(&fleet.ids[0]), a.owner(&fleet.ids[1]));
    }
}

/// Assigning again with the same inputs and the result as previous moves
/// nothing.
#[test]
fn bounded_is_idempotent() {
    let mut rng = Rng::new(11);
    for (t, n, w) in cases() {
        let fleet = Fleet::new(&mut rng, t, n, w);
        let targets = fleet.targets();
        let a = assign_bounded(&targets, &fleet.members, &Assignment::default(), EPS);
        let b = assign_bounded(&targets, &fleet.members, &a, EPS);
        assert_eq!(a.moved_load(&b, &targets), 0, "{t} {n} {w:?}");
        assert!(a.loads().eq(b.loads()));
    }
}

/// The order of members and targets in the input does not matter: every
/// control plane computes the same assignment.
#[test]
fn bounded_is_deterministic() {
    let mut rng = Rng::new(13);
    for (t, n, w) in cases() {
        let fleet = Fleet::new(&mut rng, t, n, w);
        let mut targets = fleet.targets();
        let a = assign_bounded(&targets, &fleet.members, &Assignment::default(), EPS);
        let mut members = fleet.members.clone();
        members.reverse();
        for i in (1..targets.len()).rev() {
            targets.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let b = assign_bounded(&targets, &members, &Assignment::default(), EPS);
        assert!(fleet.ids.iter().all(|id| a.owner(id) == b.owner(id)));
    }
}

/// One leave moves only the leaver's targets: at most its load, which was at
/// most the old capacity (1 + epsilon)·W/N.
#[test]
fn bounded_leave_moves_only_the_leavers_targets() {
    let mut rng = Rng::new(17);
    for (t, n, w) in cases() {
        let fleet = Fleet::new(&mut rng, t, n, w);
        let targets = fleet.targets();
        let before = assign_bounded(&targets, &fleet.members, &Assignment::default(), EPS);
        let leaver = rng.below(n as u64) as usize;
        let mut members = fleet.members.clone();
        let gone = members.remove(leaver);
        let after = assign_bounded(&targets, &members, &before, EPS);
        assert_valid(&after, &fleet, &members);
        for id in &fleet.ids {
            if before.owner(id) != Some(gone.id.as_str()) {
                assert_eq!(before.owner(id), after.owner(id), "{id} moved without need");
            }
        }
        let moved = before.moved_load(&after, &targets);
        assert_eq!(Some(moved), before.load(&gone.id));
        let share = moved as f64 / fleet.total() as f64 * n as f64;
        assert!(share <= 1.0 + EPS, "{t} {n} {w:?}: moved {share:.3}/N");
        assert!(after.max_over_mean() <= 1.0 + EPS);
    }
}

/// One join moves at most (1 + epsilon)/N of the load, almost all of it to
/// the new member, and the loads stay within the new capacity.
#[test]
fn bounded_join_moves_about_one_nth() {
    let mut rng = Rng::new(19);
    for (t, n, w) in cases() {
        let fleet = Fleet::new(&mut rng, t, n, w);
        let targets = fleet.targets();
        let before = assign_bounded(&targets, &fleet.members, &Assignment::default(), EPS);
        let mut members = fleet.members.clone();
        let joiner = Member::new("joiner");
        members.push(joiner.clone());
        let after = assign_bounded(&targets, &members, &before, EPS);
        assert_valid(&after, &fleet, &members);
        let moved = before.moved_load(&after, &targets);
        let share = moved as f64 / fleet.total() as f64 * n as f64;
        assert!(share <= 1.0 + EPS, "{t} {n} {w:?}: moved {share:.3}/N");
        let to_joiner = after.load(&joiner.id).unwrap();
        // The joiner takes at least half its fair share (its arcs vary by
        // about 1/sqrt(VNODES)), and most of what moves goes to it.
        assert!(to_joiner as f64 >= 0.5 * fleet.total() as f64 / (n + 1) as f64);
        assert!(to_joiner as f64 >= 0.9 * moved as f64, "{t} {n} {w:?}");
        assert!(after.max_over_mean() <= 1.0 + EPS);
    }
}

/// A random sequence of joins, leaves, new and removed targets and changed
/// weights keeps every target on a present member and every load within
/// capacity, and a member that stays keeps its targets unless it is over
/// capacity.
#[test]
fn bounded_survives_churn() {
    let mut rng = Rng::new(23);
    let fleet = Fleet::new(&mut rng, 10_000, 20, Weights::Uniform);
    let mut members = fleet.members.clone();
    let mut weights = fleet.weights.clone();
    let mut live: Vec<bool> = vec![true; fleet.ids.len()];
    let mut prev = Assignment::default();
    for step in 0..40 {
        match rng.below(4) {
            0 if members.len() > 2 => {
                members.remove(rng.below(members.len() as u64) as usize);
            }
            1 => members.push(Member::new(format!("new-{step}"))),
            2 => {
                for _ in 0..500 {
                    let i = rng.below(live.len() as u64) as usize;
                    live[i] = !live[i];
                }
            }
            _ => {
                for _ in 0..500 {
                    let i = rng.below(weights.len() as u64) as usize;
                    weights[i] = 1 + rng.below(100);
                }
            }
        }
        let targets: Vec<(&str, u64)> = (0..fleet.ids.len())
            .filter(|&i| live[i])
            .map(|i| (fleet.ids[i].as_str(), weights[i]))
            .collect();
        let next = assign_bounded(&targets, &members, &prev, EPS);
        assert_eq!(next.len(), targets.len());
        for &(id, _) in &targets {
            let owner = next.owner(id).unwrap();
            assert!(members.iter().any(|m| m.id == owner));
        }
        assert!(next.max_over_mean() <= 1.0 + EPS, "step {step}");
        prev = next;
    }
}

#[test]
fn bounded_without_members_or_targets_assigns_nothing() {
    let a = assign_bounded(&[("t", 1)], &[], &Assignment::default(), EPS);
    assert!(a.is_empty() && a.owner("t").is_none());
    let b = assign_bounded(&[], &[Member::new("m")], &a, EPS);
    assert!(b.is_empty());
    assert_eq!(b.load("m"), Some(0));
}
