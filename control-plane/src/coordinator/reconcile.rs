//! Assignment rounds: recompute the owners ([`crate::sharding::bounded`]),
//! schedule handovers for moves between live members, and send each member
//! its snapshot or delta.

use std::collections::{BTreeMap, HashMap, HashSet};

use scrapegrid_common::clock::now_ms;
use scrapegrid_proto::v1 as pb;

use super::state::{MemberState, Owned, State, MOVES_KEPT};
use super::wire::to_proto;
use super::Move;
use crate::metrics;
use crate::sharding::bounded::{self, assign_bounded};
use crate::sharding::Member;

impl State {
    /// Recomputes the assignment and sends every member what changed for it.
    pub(super) fn reconcile(&mut self) {
        loop {
            let failed = self.reconcile_once();
            if failed.is_empty() {
                break;
            }
            for id in failed {
                tracing::warn!(scraper = %id, "scraper stream full or closed; removing");
                self.members.remove(&id);
            }
        }
        self.record_metrics();
    }

    /// One reconciliation round; returns members whose channel refused a send.
    fn reconcile_once(&mut self) -> Vec<String> {
        // Candidates: live members that are not draining, and restored
        // members presumed alive until they rejoin or time out.
        let candidates: Vec<Member> = self
            .members
            .iter()
            .filter(|(_, m)| !m.draining)
            .map(|(id, _)| Member::new(id.as_str()))
            .chain(self.presumed.keys().map(|id| Member::new(id.as_str())))
            .collect();
        let weighted: Vec<(&str, u64)> = self
            .targets
            .keys()
            .map(|t| (t.as_str(), self.weights.get(t).copied().unwrap_or(0)))
            .collect();
        let previous = bounded::Assignment::from_owners(
            self.owners
                .iter()
                .map(|(t, o)| (t.as_str(), o.member.as_str())),
        );
        let desired = assign_bounded(&weighted, &candidates, &previous, bounded::DEFAULT_EPSILON);
        let next_gen = self.generation + 1;
        let now = now_ms();
        let handover_at = now + self.handover_lead.as_millis() as i64;
        let mut adds: HashMap<String, Vec<pb::Target>> = HashMap::new();
        let mut removals: HashMap<String, Vec<pb::TargetRemoval>> = HashMap::new();
        let mut change = crate::ha::StateChange::default();

        // Targets that left discovery, or moved; a target with no candidate
        // to go to stays where it is, and so does one whose live owner would
        // hand it to a member that has not reconnected yet (presumed alive
        // after a leader change): a handover needs both ends connected.
        let mut leaving = Vec::new();
        let mut waiting = HashSet::new();
        for (tid, owned) in &self.owners {
            let draining = self.members.get(&owned.member).is_some_and(|m| m.draining);
            let (reason, stop_at) = match desired.owner(tid) {
                None if !self.targets.contains_key(tid) => (pb::RemovalReason::Gone, 0),
                // Nobody to take it over: a draining owner stops at once.
                None if draining => (pb::RemovalReason::Moved, 0),
                None => continue,
                Some(m) if m == owned.member => continue,
                Some(to) if self.members.contains_key(&owned.member) => {
                    if !self.members.contains_key(to) {
                        waiting.insert(tid.clone());
                        continue;
                    }
                    (pb::RemovalReason::Moved, handover_at)
                }
                // The old owner is gone: nobody to tell.
                Some(_) => {
                    leaving.push((tid.clone(), false));
                    continue;
                }
            };
            removals
                .entry(owned.member.clone())
                .or_default()
                .push(pb::TargetRemoval {
                    target_id: tid.clone(),
                    reason: reason as i32,
                    stop_at_ms: stop_at,
                });
            leaving.push((tid.clone(), stop_at > 0));
        }
        let mut handovers = HashSet::new();
        for (tid, handover) in leaving {
            let Some(old) = self.owners.remove(&tid) else {
                continue;
            };
            match desired.owner(&tid) {
                Some(to) => {
                    let kind = if handover { "handover" } else { "failover" };
                    ::metrics::counter!(metrics::TARGET_MOVES, "kind" => kind).increment(1);
                    if self.moves.len() == MOVES_KEPT {
                        self.moves.pop_front();
                    }
                    self.moves.push_back(Move {
                        target: tid.clone(),
                        from: old.member,
                        to: to.to_string(),
                        generation: next_gen,
                        handover,
                        at_ms: if handover { handover_at } else { now },
                    });
                    if handover {
                        handovers.insert(tid);
                    }
                }
                None => change.removals.push(tid),
            }
        }
        // Targets that are new, moved here, changed, or learnt back.
        for (tid, member) in desired.iter() {
            // A target waiting for its new owner stays with the old one.
            let member = match self.owners.get(tid) {
                Some(o) if waiting.contains(tid) => o.member.clone(),
                _ => member.to_string(),
            };
            let member = member.as_str();
            let target = &self.targets[tid];
            if let Some(o) = self.owners.get_mut(tid) {
                if o.sent.is_none() {
                    // Learnt back: keep its generation; a snapshot or this
                    // delta tells the member the current definition.
                    let msg = to_proto(target, o.generation);
                    o.sent = Some(msg.clone());
                    adds.entry(member.to_string()).or_default().push(msg);
                    continue;
                }
                if o.sent.as_ref() == Some(&to_proto(target, o.generation)) {
                    continue;
                }
            }
            let msg = to_proto(target, next_gen);
            self.owners.insert(
                tid.to_string(),
                Owned {
                    member: member.to_string(),
                    generation: next_gen,
                    sent: Some(msg.clone()),
                },
            );
            change.upserts.push(crate::ha::PersistedOwner {
                target_id: tid.to_string(),
                member: member.to_string(),
                generation: next_gen,
            });
            let mut out = msg;
            if handovers.contains(tid) {
                out.start_at_ms = handover_at;
                out.await_handover = true;
            }
            adds.entry(member.to_string()).or_default().push(out);
        }
        let changed = !change.upserts.is_empty() || !change.removals.is_empty();
        if changed {
            self.generation = next_gen;
            change.generation = next_gen;
            if let Some(p) = &self.persist {
                p.push(change);
            }
        }

        // Pools each member's targets use, to re-send those that changed.
        let mut pools_in_use: HashMap<String, HashSet<String>> = HashMap::new();
        for o in self.owners.values() {
            if let Some(sent) = &o.sent {
                pools_in_use
                    .entry(o.member.clone())
                    .or_default()
                    .insert(sent.pool.clone());
            }
        }
        let out = Outgoing {
            pools: &self.pools,
            generation: self.generation,
            storage_endpoint: &self.storage_endpoint,
        };
        let mut failed = Vec::new();
        for (id, m) in self.members.iter_mut() {
            let msg = if m.needs_snapshot {
                // This round's adds carry their handover times: a joiner's
                // first message is its snapshot.
                let mut handed: HashMap<String, pb::Target> = adds
                    .remove(id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.id.clone(), t))
                    .collect();
                let targets: Vec<pb::Target> = self
                    .owners
                    .iter()
                    .filter(|(_, o)| o.member == *id)
                    .filter_map(|(tid, o)| handed.remove(tid).or_else(|| o.sent.clone()))
                    .collect();
                m.pools_sent.clear();
                // A member that rejoins while its targets move away (a
                // drain across a leader change) hands them over too.
                let r = removals.remove(id).unwrap_or_default();
                Some(out.assignment(m, true, targets, r, HashSet::new()))
            } else {
                let a = adds.remove(id).unwrap_or_default();
                let r = removals.remove(id).unwrap_or_default();
                let changed_pools = pools_in_use.remove(id).unwrap_or_default();
                let changed_pools: HashSet<String> = changed_pools
                    .into_iter()
                    .filter(|p| m.pools_sent.get(p) != self.pools.get(p))
                    .collect();
                (!a.is_empty() || !r.is_empty() || !changed_pools.is_empty())
                    .then(|| out.assignment(m, false, a, r, changed_pools))
            };
            let Some(msg) = msg else { continue };
            let msg = pb::ControlMessage {
                msg: Some(pb::control_message::Msg::Assignment(msg)),
            };
            if m.tx.try_send(Ok(msg)).is_err() {
                failed.push(id.clone());
            } else {
                m.needs_snapshot = false;
            }
        }
        failed
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
        m: &mut MemberState,
        full: bool,
        targets: Vec<pb::Target>,
        removals: Vec<pb::TargetRemoval>,
        changed: HashSet<String>,
    ) -> pb::Assignment {
        let mut names: Vec<&String> = targets.iter().map(|t| &t.pool).collect();
        names.extend(changed.iter());
        let mut pools = Vec::new();
        for name in names {
            let Some(p) = self.pools.get(name) else {
                continue;
            };
            if m.pools_sent.get(name) != Some(p) {
                m.pools_sent.insert(name.clone(), p.clone());
                pools.push(p.clone());
            }
        }
        pb::Assignment {
            generation: self.generation,
            full,
            storage_endpoint: self.storage_endpoint.to_string(),
            pools,
            targets,
            removals,
        }
    }
}
