//! The ledger: what an assignment round needs to know about the owners
//! without reading every target. Each member's targets, the weight each
//! member carries, the targets nobody owns and the owned ones that left
//! discovery, kept in step with the state's owners, targets and weights by
//! [`State`]'s `set_owner`, `remove_owner`, `set_weight` and `set_targets`
//! (the only ways they change), so a round costs what changed, not every
//! target (issue 17: at 1,000,000 targets a round that read them all took
//! seconds).
//!
//! Weights are the assignment's ([`crate::sharding::bounded`]): a target's
//! last series count, or, when no member reported one yet, the mean of the
//! reported ones (at least 1). The ledger keeps the reported part (sums and
//! how many) so every load and the total follow from the mean at once.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::state::State;
use crate::sharding::bounded::Fleet;

/// A member's part of the weights: over the present targets it owns, the
/// sum of the reported series counts and how many have none reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Carried {
    reported: u64,
    unreported: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Ledger {
    /// Each member's targets (also those gone from discovery), as in the
    /// state's owners; a member that owns nothing has no entry.
    of: HashMap<String, HashSet<String>>,
    /// Each member's weights, over its present targets.
    carried: HashMap<String, Carried>,
    /// Present targets without an owner.
    unowned: HashSet<String>,
    /// Owned targets that left discovery.
    gone: HashSet<String>,
    /// The reported weights of present targets: how many of each, their
    /// sum, and how many present targets there are.
    reported: BTreeMap<u64, u64>,
    reported_sum: u64,
    reported_count: u64,
    present: u64,
}

impl Ledger {
    /// The weight of a target with no reported series count.
    pub(super) fn unreported_weight(&self) -> u64 {
        self.reported_sum
            .checked_div(self.reported_count)
            .unwrap_or(0)
            .max(1)
    }

    /// The weight of every present target.
    pub(super) fn total(&self) -> u64 {
        self.reported_sum + (self.present - self.reported_count) * self.unreported_weight()
    }

    /// The heaviest present target's weight.
    pub(super) fn heaviest(&self) -> u64 {
        let reported = self.reported.keys().next_back().copied().unwrap_or(0);
        if self.reported_count < self.present {
            reported.max(self.unreported_weight())
        } else {
            reported.max(1)
        }
    }

    /// The weight `member` carries (its present targets').
    pub(super) fn load(&self, member: &str) -> u64 {
        self.carried
            .get(member)
            .map_or(0, |c| c.reported + c.unreported * self.unreported_weight())
    }

    /// `member`'s targets, present or gone.
    pub(super) fn of(&self, member: &str) -> impl Iterator<Item = &String> {
        self.of.get(member).into_iter().flatten()
    }

    /// How many targets `member` owns, present or gone.
    pub(super) fn count(&self, member: &str) -> usize {
        self.of.get(member).map_or(0, HashSet::len)
    }

    pub(super) fn unowned(&self) -> &HashSet<String> {
        &self.unowned
    }

    pub(super) fn gone(&self) -> &HashSet<String> {
        &self.gone
    }

    /// `target` (present or not, weighing `w`) is now `member`'s.
    fn link(&mut self, member: &str, target: &str, present: bool, w: Option<u64>) {
        // Looked up before it is created: an id is allocated once.
        match self.of.get_mut(member) {
            Some(set) => set.insert(target.to_string()),
            None => self
                .of
                .entry(member.to_string())
                .or_default()
                .insert(target.to_string()),
        };
        if present {
            self.unowned.remove(target);
            self.carry(member, w, true);
        } else {
            self.gone.insert(target.to_string());
        }
    }

    /// `target` is no longer `member`'s.
    fn unlink(&mut self, member: &str, target: &str, present: bool, w: Option<u64>) {
        if let Some(set) = self.of.get_mut(member) {
            set.remove(target);
            if set.is_empty() {
                self.of.remove(member);
            }
        }
        if present {
            self.unowned.insert(target.to_string());
            self.carry(member, w, false);
        } else {
            self.gone.remove(target);
        }
    }

    /// A present target's reported weight, counted or not.
    fn count_weight(&mut self, w: Option<u64>, add: bool) {
        let Some(w) = w else { return };
        if add {
            *self.reported.entry(w).or_default() += 1;
            self.reported_sum += w;
            self.reported_count += 1;
        } else {
            if let Some(n) = self.reported.get_mut(&w) {
                *n -= 1;
                if *n == 0 {
                    self.reported.remove(&w);
                }
            }
            self.reported_sum -= w;
            self.reported_count -= 1;
        }
    }

    /// `target`, owned by `owner` and weighing `w`, joins (`present`) or
    /// leaves discovery.
    fn presence(&mut self, target: &str, owner: Option<&str>, w: Option<u64>, present: bool) {
        self.count_weight(w, present);
        if present {
            self.present += 1;
        } else {
            self.present -= 1;
        }
        match owner {
            Some(m) => {
                // Between the present and gone halves of its owner's.
                self.carry(m, w, present);
                if present {
                    self.gone.remove(target);
                } else {
                    self.gone.insert(target.to_string());
                }
            }
            None if present => {
                self.unowned.insert(target.to_string());
            }
            None => {
                self.unowned.remove(target);
            }
        }
    }

    /// Adds (or takes) a present target weighing `w` to what `member` carries.
    fn carry(&mut self, member: &str, w: Option<u64>, add: bool) {
        // Looked up before it is created: an id is allocated once.
        if !self.carried.contains_key(member) {
            self.carried.insert(member.to_string(), Carried::default());
        }
        let Some(c) = self.carried.get_mut(member) else {
            return;
        };
        match (w, add) {
            (Some(w), true) => c.reported += w,
            (None, true) => c.unreported += 1,
            (Some(w), false) => c.reported -= w,
            (None, false) => c.unreported -= 1,
        }
        if *c == Carried::default() {
            self.carried.remove(member);
        }
    }

    /// A present target's weight changes from `old` to `new`.
    fn reweigh(&mut self, owner: Option<&str>, old: Option<u64>, new: Option<u64>) {
        self.count_weight(old, false);
        self.count_weight(new, true);
        if let Some(m) = owner {
            self.carry(m, new, true);
            self.carry(m, old, false);
        }
    }

    /// The ledger of `state`, counted from scratch (what the kept one must
    /// equal; the tests check it after every step).
    #[cfg(test)]
    pub(super) fn count_from(state: &State) -> Ledger {
        let mut l = Ledger::default();
        for t in state.targets.keys() {
            l.presence(t, None, state.weights.get(t).copied(), true);
        }
        for (t, o) in &state.owners {
            let present = state.targets.contains_key(t);
            l.link(&o.member, t, present, state.weights.get(t).copied());
        }
        l
    }
}

impl State {
    /// Whether `target` is in discovery, read from the ledger's sets (an
    /// owned target is present unless gone, an unowned one if unowned)
    /// rather than the ordered map of targets.
    pub(super) fn present(&self, target: &str) -> bool {
        if self.owners.contains_key(target) {
            !self.ledger.gone.contains(target)
        } else {
            self.ledger.unowned.contains(target)
        }
    }

    /// Makes `owned` the owner of `target`.
    pub(super) fn set_owner(&mut self, target: String, owned: super::state::Owned) {
        let present = self.present(&target);
        let w = self.weights.get(&target).copied();
        if let Some(old) = self.owners.get(&target) {
            if old.member != owned.member {
                let member = old.member.clone();
                self.ledger.unlink(&member, &target, present, w);
                self.ledger.link(&owned.member, &target, present, w);
            }
        } else {
            self.ledger.link(&owned.member, &target, present, w);
        }
        self.owners.insert(target, owned);
    }

    /// Takes `target`'s owner away.
    pub(super) fn remove_owner(&mut self, target: &str) -> Option<super::state::Owned> {
        let present = self.present(target);
        let old = self.owners.remove(target)?;
        let w = self.weights.get(target).copied();
        self.ledger.unlink(&old.member, target, present, w);
        Some(old)
    }

    /// Records `target`'s series count (0, unknown, is not recorded: the
    /// assignment counts every weight as at least 1).
    pub(super) fn set_weight(&mut self, target: &str, w: u64) {
        if w == 0 {
            return;
        }
        let present = self.present(target);
        let old = self.weights.insert(target.to_string(), w);
        if present && old != Some(w) {
            let owner = self.owners.get(target).map(|o| o.member.as_str());
            self.ledger.reweigh(owner, old, Some(w));
        }
    }

    /// Puts `targets` in place of the present ones; returns the ids that
    /// came, went or changed.
    pub(super) fn set_targets(
        &mut self,
        targets: BTreeMap<String, crate::targets::ScrapeTarget>,
    ) -> Vec<String> {
        let old = std::mem::replace(&mut self.targets, targets);
        let mut changed = Vec::new();
        for (t, before) in &old {
            match self.targets.get(t) {
                Some(now) if now == before => {}
                Some(_) => changed.push(t.clone()),
                None => {
                    let owner = self.owners.get(t).map(|o| o.member.as_str());
                    let w = self.weights.get(t).copied();
                    self.ledger.presence(t, owner, w, false);
                    changed.push(t.clone());
                }
            }
        }
        for t in self.targets.keys() {
            if !old.contains_key(t) {
                let owner = self.owners.get(t).map(|o| o.member.as_str());
                let w = self.weights.get(t).copied();
                self.ledger.presence(t, owner, w, true);
                changed.push(t.clone());
            }
        }
        changed
    }
}

impl Fleet for State {
    fn total(&self) -> u64 {
        self.ledger.total()
    }

    fn heaviest(&self) -> u64 {
        self.ledger.heaviest()
    }

    fn weight(&self, target: &str) -> u64 {
        self.weights
            .get(target)
            .copied()
            .unwrap_or_else(|| self.ledger.unreported_weight())
    }

    fn owner(&self, target: &str) -> Option<&str> {
        self.owners.get(target).map(|o| o.member.as_str())
    }

    fn owns_any(&self, member: &str) -> bool {
        self.ledger.count(member) > 0
    }

    fn load(&self, member: &str) -> u64 {
        self.ledger.load(member)
    }

    fn targets_of(&self, member: &str) -> Vec<&str> {
        self.ledger
            .of(member)
            .filter(|t| !self.ledger.gone.contains(*t))
            .map(String::as_str)
            .collect()
    }

    fn orphans(&self, members: &[String]) -> Vec<&str> {
        let mut orphans: Vec<&str> = self.ledger.unowned.iter().map(String::as_str).collect();
        for m in self.ledger.of.keys() {
            if members.binary_search(m).is_err() {
                orphans.extend(self.targets_of(m));
            }
        }
        orphans
    }

    fn present(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.targets.keys().map(String::as_str))
    }
}
