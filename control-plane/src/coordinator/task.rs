//! The coordinator task: the thin shell around the pure [`State`]. It reads
//! the clock, turns events and discovery results into state inputs, runs
//! assignment rounds ([`State::plan`]), sends each member its message on
//! its stream, pushes owner changes to the persister, and records metrics.
//! A member whose stream is full or closed is dropped and the round is
//! planned again without it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use scrapegrid_proto::v1 as pb;

use super::state::{Now, State};
use super::{CoordinatorOptions, DrainRequest, Event, Outbound};
use crate::discovery::DiscoveredTargets;
use crate::ha::PersistQueue;
use crate::integrations::{Endpoints, EndpointsSender};
use crate::metrics;

/// The longest a round waits after the previous one.
const MAX_ROUND_WAIT: Duration = Duration::from_secs(1);

pub(super) struct Task {
    state: State,
    /// Each member's stream, with the session it belongs to.
    outboxes: HashMap<String, (u64, Outbound)>,
    persist: Option<PersistQueue>,
    /// Where the integrations' targets are published, and this control
    /// plane's own HTTP address.
    endpoints: (EndpointsSender, Option<String>),
}

impl Task {
    pub(super) fn new(
        state: State,
        persist: Option<PersistQueue>,
        endpoints: (EndpointsSender, Option<String>),
    ) -> Self {
        Task {
            state,
            outboxes: HashMap::new(),
            persist,
            endpoints,
        }
    }

    pub(super) async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut discovered: watch::Receiver<Arc<DiscoveredTargets>>,
        options: CoordinatorOptions,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After a (re)start, scrapers that still run their last assignment
        // rejoin within a moment; assigning before they are back would hand
        // every target to the first one and move them again.
        let grace_end = tokio::time::Instant::now() + options.startup_grace;
        // A round waits as long as the last one took (at most
        // `MAX_ROUND_WAIT`), so events that come during a long round (a
        // thousand scrapers rejoining a new leader of a million targets)
        // are taken in and planned in one round rather than one round
        // each: rounds take at most half the task's time. The bound keeps
        // a failover after a long first round from waiting as long (a
        // round that reads what changed takes well under it).
        let mut next_round = grace_end;
        let mut pending = false;
        loop {
            let waiting = tokio::time::Instant::now() < next_round;
            // Only what can change the assignment triggers a round;
            // heartbeats and views do not.
            let changed = tokio::select! {
                _ = tokio::time::sleep_until(next_round), if pending && waiting => false,
                _ = cancel.cancelled() => return,
                Some(event) = events.recv() => self.on_event(event),
                Ok(()) = discovered.changed() => {
                    let d = discovered.borrow_and_update().clone();
                    self.state.discovered(d);
                    true
                }
                _ = tick.tick() => self.state.expire(Now::read()),
            };
            self.prune_outboxes();
            // Membership changes only with what may change the assignment.
            if changed {
                self.publish_endpoints();
            }
            pending |= changed;
            // Before the first discovery result every owner would look gone.
            if pending && self.state.synced && tokio::time::Instant::now() >= next_round {
                let started = tokio::time::Instant::now();
                self.reconcile();
                self.publish_endpoints();
                pending = false;
                next_round = tokio::time::Instant::now() + started.elapsed().min(MAX_ROUND_WAIT);
            }
        }
    }

    /// Applies an event; returns whether the assignment may have changed.
    fn on_event(&mut self, event: Event) -> bool {
        let now = Now::read();
        match event {
            Event::Join { hello, session, tx } => {
                self.outboxes
                    .insert(hello.scraper_id.clone(), (session, tx));
                self.state.join(hello, session, now)
            }
            Event::Leave {
                scraper_id,
                session,
            } => self.state.leave(&scraper_id, session),
            Event::Drain {
                scraper_id,
                session,
            } => self.state.drain(&scraper_id, session),
            Event::Status {
                scraper_id,
                session,
                reports,
            } => {
                self.state.status(&scraper_id, session, reports, now);
                false
            }
            Event::View(reply) => {
                let _ = reply.send(self.state.view());
                false
            }
            Event::RequestDrain { scraper_id, reply } => {
                let _ = reply.send(self.tell_drain(&scraper_id));
                false
            }
            Event::Reload(config) => {
                self.state.reload(config);
                true
            }
        }
    }

    /// Sends `Drain` to a member. A member whose stream is full or closed
    /// is not told ([`DrainRequest::Busy`]; the next round's checks drop a
    /// closed one).
    fn tell_drain(&mut self, scraper_id: &str) -> DrainRequest {
        let Some((_, tx)) = self.outboxes.get(scraper_id) else {
            return DrainRequest::UnknownMember;
        };
        if !self.state.members.contains_key(scraper_id) {
            return DrainRequest::UnknownMember;
        }
        let msg = pb::ControlMessage {
            msg: Some(pb::control_message::Msg::Drain(pb::Drain {})),
        };
        if tx.try_send(Ok(msg)).is_err() {
            tracing::warn!(scraper = %scraper_id, "could not tell a scraper to drain: its stream is full or closed");
            return DrainRequest::Busy;
        }
        tracing::info!(scraper = %scraper_id, "told a scraper to drain");
        DrainRequest::Sent
    }

    /// Publishes this control plane and its members' HTTP addresses when
    /// they changed (the integrations' discovery reads them).
    fn publish_endpoints(&self) {
        let now = Endpoints {
            control_plane: self.endpoints.1.clone(),
            scrapers: self
                .state
                .members
                .iter()
                .filter(|(_, m)| !m.http_addr.is_empty())
                .map(|(id, m)| (id.clone(), m.http_addr.clone()))
                .collect(),
        };
        self.endpoints.0.send_if_modified(|e| {
            if **e == now {
                return false;
            }
            *e = Arc::new(now);
            true
        });
    }

    /// Closes the streams of sessions the state no longer has.
    fn prune_outboxes(&mut self) {
        let members = &self.state.members;
        self.outboxes
            .retain(|id, (session, _)| members.get(id).is_some_and(|m| m.session == *session));
    }

    /// Runs assignment rounds until every member took its message.
    fn reconcile(&mut self) {
        loop {
            let plan = self.state.plan(Now::read());
            for m in &plan.owners.moves {
                let kind = if m.handover { "handover" } else { "failover" };
                ::metrics::counter!(metrics::TARGET_MOVES, "kind" => kind).increment(1);
            }
            log_round(&plan.owners, self.state.members.len());
            self.state.apply(plan.owners);
            if let (Some(change), Some(p)) = (plan.persist, &self.persist) {
                p.push(change);
            }
            let mut failed = Vec::new();
            for (id, assignment) in plan.messages {
                let sent = self.outboxes.get(&id).is_some_and(|(_, tx)| {
                    let msg = pb::ControlMessage {
                        msg: Some(pb::control_message::Msg::Assignment(assignment.clone())),
                    };
                    tx.try_send(Ok(msg)).is_ok()
                });
                if sent {
                    self.state.delivered(&id, &assignment);
                } else {
                    failed.push(id);
                }
            }
            if failed.is_empty() {
                break;
            }
            for id in failed {
                tracing::warn!(scraper = %id, "scraper stream full or closed; removing");
                self.state.members.remove(&id);
            }
            self.prune_outboxes();
        }
        self.record_metrics();
    }

    fn record_metrics(&self) {
        let s = &self.state;
        ::metrics::gauge!(metrics::MEMBERS).set(s.members.len() as f64);
        for member in s.members.keys() {
            let targets = s.ledger.count(member);
            let series: u64 = s.ledger.of(member).filter_map(|t| s.weights.get(t)).sum();
            let member = member.to_string();
            ::metrics::gauge!(metrics::MEMBER_TARGETS, "member" => member.clone())
                .set(targets as f64);
            ::metrics::gauge!(metrics::MEMBER_SERIES, "member" => member).set(series as f64);
        }
        ::metrics::gauge!(metrics::TARGETS).set(s.targets.len() as f64);
        ::metrics::gauge!(metrics::DROPPED_TARGETS).set(s.dropped.len() as f64);
        ::metrics::gauge!(metrics::GENERATION).set(s.generation as f64);
        ::metrics::gauge!(metrics::UNASSIGNED_TARGETS).set(s.ledger.unowned().len() as f64);
    }
}

/// One line per round that gives targets owners: how many, how many of
/// them moved (handed over between live members, or failed over from a
/// gone one), over how many members, at which generation.
fn log_round(changes: &super::plan::OwnerChanges, members: usize) {
    if changes.set.is_empty() {
        return;
    }
    let handovers = changes.moves.iter().filter(|m| m.handover).count();
    tracing::info!(
        owned = changes.set.len(),
        moved = changes.moves.len(),
        handovers,
        failovers = changes.moves.len() - handovers,
        members,
        generation = changes.generation,
        "assigned targets"
    );
}
