//! Assignment rounds, pure: [`State::plan`] decides a round from the state
//! and the clock (the owners ([`crate::sharding::bounded`]), the handovers
//! for moves between live members, the message for each member, the
//! change to persist), [`State::apply`] makes its owner changes the state,
//! and [`State::delivered`] records a message the member was sent. The
//! task in [`super::task`] does the sending and persisting.

use std::collections::{BTreeMap, HashMap, HashSet};

use scrapegrid_proto::v1 as pb;

use super::state::{MemberState, Now, Owned, State, MOVES_KEPT};
use super::wire::{is_sent_form, to_proto};
use super::Move;
use crate::ha::{PersistedOwner, StateChange};
use crate::sharding::bounded;
use crate::sharding::Member;

/// What one round decides.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The owner changes, for [`State::apply`].
    pub(super) owners: OwnerChanges,
    /// What to persist for the next leader; `None` when no owner changed.
    pub(super) persist: Option<StateChange>,
    /// The message each member is sent this round, by member id; a member
    /// with nothing new gets none.
    pub(super) messages: BTreeMap<String, pb::Assignment>,
}

/// How a round changes the owners.
#[derive(Debug, Default)]
pub(super) struct OwnerChanges {
    /// The generation after the round (the old one if nothing changed).
    pub(super) generation: u64,
    /// Targets that lose their owner (before `set` is applied).
    pub(super) released: HashSet<String>,
    /// New or updated owners.
    pub(super) set: HashMap<String, Owned>,
    /// Targets changing owner, for the view and the metrics.
    pub(super) moves: Vec<Move>,
    /// Handovers whose time is to come, by target: from, to, when (set
    /// this round, or an earlier one a new owner takes up).
    pub(super) handovers: HashMap<String, (String, String, i64)>,
    /// Targets whose handover ended before its time (gone from discovery).
    pub(super) handovers_over: Vec<String>,
}

impl State {
    /// The members that may take targets: live members that are not
    /// draining, and restored members presumed alive until they rejoin or
    /// time out.
    fn candidates(&self) -> Vec<Member> {
        self.members
            .iter()
            .filter(|(_, m)| !m.draining)
            .map(|(id, _)| Member::new(id.as_str()))
            .chain(self.presumed.keys().map(|id| Member::new(id.as_str())))
            .collect()
    }

    /// Decides one assignment round at `now`, reading what may change:
    /// the owners that move ([`bounded::assign_changes`] over the
    /// ledger), the targets that left discovery, and those marked since
    /// the last round (new or changed definitions, owners learnt from a
    /// Hello; every target after a reload).
    pub(super) fn plan(&self, now: Now) -> Plan {
        let candidates = self.candidates();
        let changes = bounded::assign_changes(self, &candidates, bounded::DEFAULT_EPSILON);
        // Every target an owner or the assignment acts on is present or
        // gone: after a reload that is all of them (in order already).
        let gone = self.ledger.gone().iter().map(String::as_str);
        let scope: Vec<&str> = if self.recheck_all {
            self.targets
                .keys()
                .map(String::as_str)
                .chain(gone)
                .collect()
        } else {
            let mut scope: Vec<&str> = changes.keys().copied().chain(gone).collect();
            scope.extend(self.dirty.iter().map(String::as_str));
            scope.sort_unstable();
            scope.dedup();
            scope
        };
        let desired = |t: &str| match changes.get(t) {
            Some(to) => *to,
            None if self.present(t) => self.owners.get(t).map(|o| o.member.as_str()),
            None => None,
        };
        self.plan_over(now, &scope, &desired, self.recheck_all)
    }

    /// Decides a round as [`State::plan`] does, from every target's owner
    /// by [`bounded::assign_bounded`] over every target: what `plan` must
    /// equal (the tests compare them at every round).
    #[cfg(test)]
    pub(super) fn plan_reference(&self, now: Now) -> Plan {
        let candidates = self.candidates();
        // A target whose series count no member has reported yet (a new
        // one, or every target right after a leader change until the
        // statuses come in) weighs what the reported ones weigh on average:
        // taken as 0, the first member to report would look overloaded and
        // hand targets over for nothing.
        let (known, sum) = self
            .targets
            .keys()
            .filter_map(|t| self.weights.get(t))
            .fold((0u64, 0u64), |(n, sum), w| (n + 1, sum + w));
        let unknown = sum.checked_div(known).unwrap_or(0);
        let weighted: Vec<(&str, u64)> = self
            .targets
            .keys()
            .map(|t| (t.as_str(), self.weights.get(t).copied().unwrap_or(unknown)))
            .collect();
        let previous = bounded::Assignment::from_owners(
            self.owners
                .iter()
                .map(|(t, o)| (t.as_str(), o.member.as_str())),
        );
        let desired =
            bounded::assign_bounded(&weighted, &candidates, &previous, bounded::DEFAULT_EPSILON);
        let mut scope: Vec<&str> = self.owners.keys().map(String::as_str).collect();
        scope.extend(self.targets.keys().map(String::as_str));
        scope.sort_unstable();
        scope.dedup();
        self.plan_over(now, &scope, &|t| desired.owner(t), true)
    }

    /// Decides a round over the targets of `scope` (each once), each of which
    /// `desired` gives its owner after the round; every other target keeps
    /// its owner and definition. With `pools`, every member's pools are
    /// compared with the configuration's (after a reload).
    fn plan_over<'s>(
        &'s self,
        now: Now,
        scope: &[&'s str],
        desired: &dyn Fn(&str) -> Option<&'s str>,
        pools: bool,
    ) -> Plan {
        let next_gen = self.generation + 1;
        let handover_at = now.wall_ms + self.handover_lead.as_millis() as i64;
        let mut changes = OwnerChanges {
            generation: self.generation,
            ..Default::default()
        };
        let mut adds: HashMap<String, Vec<pb::Target>> = HashMap::new();
        let mut removals: HashMap<String, Vec<pb::TargetRemoval>> = HashMap::new();
        let mut persist = StateChange::default();

        // Targets that left discovery, or moved; a target with no candidate
        // to go to stays where it is, and so does one whose live owner would
        // hand it to a member that has not reconnected yet (presumed alive
        // after a leader change): a handover needs both ends connected.
        let mut waiting = HashSet::new();
        let mut handovers = HashMap::new();
        for &tid in scope {
            let Some(owned) = self.owners.get(tid) else {
                continue;
            };
            let draining = self.members.get(&owned.member).is_some_and(|m| m.draining);
            let (reason, stop_at) = match desired(tid) {
                None if !self.present(tid) => (pb::RemovalReason::Gone, 0),
                // Nobody to take it over: a draining owner stops at once.
                None if draining => (pb::RemovalReason::Moved, 0),
                None => continue,
                Some(m) if m == owned.member => continue,
                Some(to) if self.members.contains_key(&owned.member) => {
                    if !self.members.contains_key(to) {
                        waiting.insert(tid);
                        continue;
                    }
                    (pb::RemovalReason::Moved, handover_at)
                }
                // An owner presumed alive after a leader change is not
                // gone: moved now, its target would run twice until it
                // reconnects. It waits, as above, for a handover.
                Some(_) if self.presumed.contains_key(&owned.member) => {
                    waiting.insert(tid);
                    continue;
                }
                // The old owner is gone: nobody to tell.
                Some(_) => (pb::RemovalReason::Moved, -1),
            };
            if stop_at >= 0 {
                removals
                    .entry(owned.member.clone())
                    .or_default()
                    .push(pb::TargetRemoval {
                        target_id: tid.to_string(),
                        reason: reason as i32,
                        stop_at_ms: stop_at,
                    });
            }
            // Gone while a live member still hands it over to its owner:
            // that one stops too (back in discovery before the handover
            // time, its new owner would scrape it beside it).
            if reason == pb::RemovalReason::Gone {
                if let Some((from, _, _)) = self.handovers.get(tid).filter(|(from, _, at)| {
                    *at > now.wall_ms && *from != owned.member && self.members.contains_key(from)
                }) {
                    changes.handovers_over.push(tid.to_string());
                    removals
                        .entry(from.clone())
                        .or_default()
                        .push(pb::TargetRemoval {
                            target_id: tid.to_string(),
                            reason: reason as i32,
                            stop_at_ms: 0,
                        });
                }
            }
            changes.released.insert(tid.to_string());
            match desired(tid) {
                Some(to) => {
                    // A gone owner that was still to take the target over
                    // from a live one: the live one scrapes until the
                    // handover time, so the new owner takes it over then
                    // (starting now, both would scrape it until then).
                    let pending = self.handovers.get(tid).filter(|(from, was_to, at)| {
                        stop_at < 0
                            && *was_to == owned.member
                            && *at > now.wall_ms
                            && from != to
                            && self.members.contains_key(from)
                    });
                    let (from, at) = match pending {
                        Some((from, _, at)) => (from.clone(), Some(*at)),
                        None => (owned.member.clone(), (stop_at > 0).then_some(handover_at)),
                    };
                    if let Some(at) = at {
                        handovers.insert(tid, (from.clone(), at));
                    }
                    changes.moves.push(Move {
                        target: tid.to_string(),
                        from,
                        to: to.to_string(),
                        generation: next_gen,
                        handover: at.is_some(),
                        at_ms: at.unwrap_or(now.wall_ms),
                    });
                }
                None => persist.removals.push(tid.to_string()),
            }
        }

        // Targets that are new, moved, changed, or learnt back.
        for &tid in scope {
            let Some(member) = desired(tid) else {
                continue;
            };
            let current = self
                .owners
                .get(tid)
                .filter(|_| !changes.released.contains(tid));
            // A target waiting for its new owner stays with the old one.
            let member = match current {
                Some(o) if waiting.contains(tid) => o.member.as_str(),
                _ => member,
            };
            let target = &self.targets[tid];
            if current.is_none() && self.disowned.contains(tid) && !self.presumed.is_empty() {
                // Its saved owner was stale: a member not back yet may run it.
                continue;
            }
            if let Some(o) = current {
                if o.sent.is_none() && !self.members.contains_key(&o.member) {
                    // Presumed alive, not back yet: nothing reaches it, so
                    // nothing is confirmed; its Hello says what it runs.
                    continue;
                }
                if o.sent.is_none() {
                    // Learnt back: keep its generation; a snapshot or this
                    // delta tells the member the current definition. One
                    // the store lacks is saved.
                    if self.unsaved.contains(tid) {
                        persist.upserts.push(PersistedOwner {
                            target_id: tid.to_string(),
                            member: o.member.clone(),
                            generation: o.generation,
                        });
                    }
                    let msg = to_proto(target, o.generation);
                    let mut confirmed = o.clone();
                    confirmed.sent = Some(msg.clone());
                    changes.set.insert(tid.to_string(), confirmed);
                    adds.entry(o.member.clone()).or_default().push(msg);
                    continue;
                }
                if o.sent
                    .as_ref()
                    .is_some_and(|sent| is_sent_form(sent, target, o.generation))
                {
                    continue;
                }
            }
            let msg = to_proto(target, next_gen);
            changes.set.insert(
                tid.to_string(),
                Owned {
                    member: member.to_string(),
                    generation: next_gen,
                    sent: Some(msg.clone()),
                },
            );
            persist.upserts.push(PersistedOwner {
                target_id: tid.to_string(),
                member: member.to_string(),
                generation: next_gen,
            });
            let mut out = msg;
            // A handover still to come starts it then: one set this round;
            // one to this member set before (a changed definition re-sent);
            // or a live member that still hands it over (to a member that
            // left or stopped it since) while another takes it up.
            let pending = || {
                self.handovers
                    .get(tid)
                    .filter(|(from, to, at)| {
                        *at > now.wall_ms
                            && match current {
                                Some(_) => to == member,
                                None => from != member && self.members.contains_key(from),
                            }
                    })
                    .map(|(from, _, at)| (from.clone(), *at))
            };
            if let Some((from, at)) = handovers.get(tid).cloned().or_else(pending) {
                out.start_at_ms = at;
                out.await_handover = true;
                changes
                    .handovers
                    .insert(tid.to_string(), (from, member.to_string(), at));
            } else if self.settled_ms > now.wall_ms && current.is_none() {
                // A leader that just took over does not know the handovers
                // its predecessor set for the coming moment: an owner it
                // did not hear of may scrape until then. (With the default
                // startup grace, longer than the lead, that moment is past
                // before the first round.) Recorded as a handover from
                // nobody, so a snapshot re-sent until then starts it then.
                out.start_at_ms = self.settled_ms;
                changes.handovers.insert(
                    tid.to_string(),
                    (String::new(), member.to_string(), self.settled_ms),
                );
            }
            adds.entry(member.to_string()).or_default().push(out);
        }
        let persist = (!persist.upserts.is_empty() || !persist.removals.is_empty()).then(|| {
            changes.generation = next_gen;
            persist.generation = next_gen;
            persist
        });

        // After a reload, the pools each member's targets use after the
        // round, to re-send those that changed (pools change only then).
        let mut pools_in_use: HashMap<&str, HashSet<&str>> = HashMap::new();
        if pools {
            let after = self
                .owners
                .iter()
                .filter(|(t, _)| !changes.released.contains(*t) && !changes.set.contains_key(*t))
                .chain(changes.set.iter());
            for (_, o) in after {
                if let Some(sent) = &o.sent {
                    pools_in_use
                        .entry(o.member.as_str())
                        .or_default()
                        .insert(sent.pool.as_str());
                }
            }
        }
        let out = Outgoing {
            pools: &self.pools,
            generation: changes.generation,
            storage_endpoint: &self.storage_endpoint,
        };
        // Each snapshot's owners after the round: the member's targets
        // that stay, and those the round gives it.
        let mut owned_by: HashMap<&str, Vec<(&String, &Owned)>> = HashMap::new();
        for (id, m) in &self.members {
            if !m.needs_snapshot {
                continue;
            }
            let kept = self
                .ledger
                .of(id)
                .filter(|t| !changes.released.contains(*t) && !changes.set.contains_key(*t))
                .filter_map(|t| self.owners.get_key_value(t));
            let given = changes.set.iter().filter(|(_, o)| o.member == *id);
            owned_by.insert(id.as_str(), kept.chain(given).collect());
        }
        let mut messages = BTreeMap::new();
        for (id, m) in &self.members {
            let msg = if m.needs_snapshot {
                // This round's adds carry their handover times: a joiner's
                // first message is its snapshot.
                let mut handed: HashMap<String, pb::Target> = adds
                    .remove(id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.id.clone(), t))
                    .collect();
                let mut targets: Vec<pb::Target> = owned_by
                    .remove(id.as_str())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(tid, o)| {
                        handed.remove(tid).or_else(|| {
                            let mut t = o.sent.clone()?;
                            // A handover to it still to come (it restarted
                            // since): it starts then, not now.
                            if let Some((from, to, at)) = self.handovers.get(tid) {
                                if to == id && *at > now.wall_ms {
                                    t.start_at_ms = *at;
                                    t.await_handover = !from.is_empty();
                                }
                            }
                            Some(t)
                        })
                    })
                    .collect();
                targets.sort_by(|a, b| a.id.cmp(&b.id));
                // A member that rejoins while its targets move away (a
                // drain across a leader change) hands them over too.
                let r = removals.remove(id).unwrap_or_default();
                Some(out.assignment(m, true, targets, r, HashSet::new()))
            } else {
                let a = adds.remove(id).unwrap_or_default();
                let r = removals.remove(id).unwrap_or_default();
                let changed_pools: HashSet<&str> = pools_in_use
                    .remove(id.as_str())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| m.pools_sent.get(*p) != self.pools.get(*p))
                    .collect();
                (!a.is_empty() || !r.is_empty() || !changed_pools.is_empty())
                    .then(|| out.assignment(m, false, a, r, changed_pools))
            };
            if let Some(msg) = msg {
                messages.insert(id.clone(), msg);
            }
        }
        Plan {
            owners: changes,
            persist,
            messages,
        }
    }

    /// Makes a round's owner changes the state.
    pub(super) fn apply(&mut self, changes: OwnerChanges) {
        for tid in &changes.released {
            self.remove_owner(tid);
        }
        for tid in changes.set.keys() {
            self.unsaved.remove(tid);
            self.disowned.remove(tid);
        }
        for tid in &changes.released {
            self.unsaved.remove(tid);
        }
        for (tid, owned) in changes.set {
            self.set_owner(tid, owned);
        }
        self.generation = changes.generation;
        self.dirty.clear();
        self.recheck_all = false;
        // A handover's record stays until its time (`State::expire`), also
        // when its target is released: a live member hands it over until
        // then, whoever takes it up next.
        for tid in &changes.handovers_over {
            self.handovers.remove(tid);
        }
        self.handovers.extend(changes.handovers);
        for m in changes.moves {
            if self.moves.len() == MOVES_KEPT {
                self.moves.pop_front();
            }
            self.moves.push_back(m);
        }
    }

    /// Records that `member` was sent `msg`: the pools it now has, and that
    /// its snapshot is done.
    pub(super) fn delivered(&mut self, member: &str, msg: &pb::Assignment) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        if msg.full {
            m.pools_sent.clear();
        }
        for p in &msg.pools {
            m.pools_sent.insert(p.name.clone(), p.clone());
        }
        m.needs_snapshot = false;
    }
}

/// What every assignment message of one round shares.
struct Outgoing<'a> {
    pools: &'a BTreeMap<String, pb::ScrapePool>,
    generation: u64,
    storage_endpoint: &'a str,
}

impl Outgoing<'_> {
    /// Builds a member's assignment with every pool its new targets use
    /// that it lacks, and the `changed` pools whose definition it has old.
    fn assignment(
        &self,
        m: &MemberState,
        full: bool,
        targets: Vec<pb::Target>,
        removals: Vec<pb::TargetRemoval>,
        changed: HashSet<&str>,
    ) -> pb::Assignment {
        let mut names: Vec<&str> = targets.iter().map(|t| t.pool.as_str()).collect();
        names.extend(changed.iter().copied());
        let mut added = HashSet::new();
        let mut pools = Vec::new();
        for name in names {
            let Some(p) = self.pools.get(name) else {
                continue;
            };
            let has = !full && m.pools_sent.get(name) == Some(p);
            if !has && added.insert(name) {
                pools.push(p.clone());
            }
        }
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pb::Assignment {
            generation: self.generation,
            full,
            storage_endpoint: self.storage_endpoint.to_string(),
            pools,
            targets,
            removals,
            // Stamped as it leaves (`service::stamp`).
            sent_at_ms: 0,
        }
    }
}
