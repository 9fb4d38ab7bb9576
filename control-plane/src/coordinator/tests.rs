//! Assignment rounds of the coordinator's state, driven by events directly
//! (no task, no streams): what each member is sent when scrapers drain,
//! rejoin after a leader change, or have not reconnected yet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use scrapegrid_common::Labels;
use scrapegrid_proto::v1 as pb;

use super::state::State;
use super::{CoordinatorOptions, Event};
use crate::discovery::TargetGroup;
use crate::ha::{PersistedOwner, PersistedState};

type Inbox = mpsc::Receiver<Result<pb::ControlMessage, tonic::Status>>;

const TARGETS: usize = 6;

/// A leader's state for `TARGETS` static targets of one job, discovered,
/// restored from `restored` when given.
fn state(restored: Option<PersistedState>) -> State {
    let config =
        scrapegrid_common::config::load_str("scrape_configs:\n  - job_name: j\n", "test.yml")
            .expect("config");
    let options = CoordinatorOptions {
        storage_endpoint: "http://127.0.0.1:1".into(),
        membership_timeout: Duration::from_secs(15),
        startup_grace: Duration::ZERO,
        handover_lead: Duration::from_millis(500),
        restored,
        persist: None,
    };
    let mut s = State::new(Arc::new(config), &options);
    let group = TargetGroup {
        source: "static/0".into(),
        targets: (0..TARGETS)
            .map(|i| Labels::from_pairs([("__address__", format!("127.0.0.1:{}", 9000 + i))]))
            .collect(),
        labels: Labels::default(),
    };
    s.discovered = Arc::new(BTreeMap::from([("j".to_string(), vec![group])]));
    s.synced = true;
    s.rebuild_targets();
    assert_eq!(s.targets.len(), TARGETS);
    s
}

/// The ids of the state's targets.
fn target_ids(s: &State) -> Vec<String> {
    s.targets.keys().cloned().collect()
}

/// Persisted state in which `member` owns every target at `generation`.
fn all_owned_by(s: &State, member: &str, generation: u64) -> PersistedState {
    PersistedState {
        generation,
        owners: target_ids(s)
            .into_iter()
            .map(|target_id| PersistedOwner {
                target_id,
                member: member.into(),
                generation,
            })
            .collect(),
    }
}

/// A scraper opens its session; returns what it receives.
fn join(s: &mut State, id: &str, running: &[(String, u64)], draining: bool) -> Inbox {
    let (tx, rx) = mpsc::channel(64);
    let hello = pb::Hello {
        scraper_id: id.into(),
        running: running
            .iter()
            .map(|(t, g)| pb::RunningTarget {
                target_id: t.clone(),
                generation: *g,
            })
            .collect(),
        draining,
        ..Default::default()
    };
    s.on_event(Event::Join {
        hello,
        session: 1,
        tx,
    });
    rx
}

/// Every assignment waiting in `inbox`.
fn received(inbox: &mut Inbox) -> Vec<pb::Assignment> {
    let mut out = Vec::new();
    while let Ok(Ok(pb::ControlMessage {
        msg: Some(pb::control_message::Msg::Assignment(a)),
    })) = inbox.try_recv()
    {
        out.push(a);
    }
    out
}

fn ids(targets: &[pb::Target]) -> Vec<String> {
    let mut v: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    v.sort();
    v
}

#[test]
fn a_draining_scraper_that_rejoins_a_new_leader_hands_everything_over() {
    let s0 = state(None);
    let restored = all_owned_by(&s0, "a", 10);
    let mut s = state(Some(restored));
    let all: Vec<(String, u64)> = target_ids(&s).into_iter().map(|t| (t, 10)).collect();
    let mut b = join(&mut s, "b", &[], false);
    let mut a = join(&mut s, "a", &all, true);
    s.reconcile();

    let a_msgs = received(&mut a);
    assert_eq!(a_msgs.len(), 1, "{a_msgs:?}");
    let snapshot = &a_msgs[0];
    assert!(snapshot.full);
    assert!(
        snapshot.targets.is_empty(),
        "a draining member keeps nothing"
    );
    assert_eq!(
        snapshot.removals.len(),
        TARGETS,
        "the snapshot carries the handovers"
    );
    let stop_at = snapshot.removals[0].stop_at_ms;
    assert!(stop_at > 0);
    for r in &snapshot.removals {
        assert_eq!(r.reason, pb::RemovalReason::Moved as i32);
        assert_eq!(r.stop_at_ms, stop_at, "one handover time per round");
    }

    let b_msgs = received(&mut b);
    assert_eq!(b_msgs.len(), 1, "{b_msgs:?}");
    assert_eq!(ids(&b_msgs[0].targets), target_ids(&s));
    for t in &b_msgs[0].targets {
        assert_eq!(
            t.start_at_ms, stop_at,
            "the new owner starts at the handover"
        );
        assert!(t.await_handover);
        assert!(t.generation > 10);
    }
}

#[test]
fn a_live_owner_keeps_its_targets_until_their_new_owner_connects() {
    let s0 = state(None);
    // b is presumed alive (it owned a target under the previous leader) but
    // has not reconnected; a drains.
    let mut restored = all_owned_by(&s0, "a", 10);
    restored.owners[0].member = "b".into();
    let mut s = state(Some(restored));
    let b_target = target_ids(&s)[0].clone();
    let a_targets: Vec<(String, u64)> = target_ids(&s)
        .into_iter()
        .filter(|t| *t != b_target)
        .map(|t| (t, 10))
        .collect();
    let mut a = join(&mut s, "a", &a_targets, true);
    s.reconcile();
    let a_msgs = received(&mut a);
    assert_eq!(a_msgs.len(), 1, "{a_msgs:?}");
    let mut want: Vec<String> = a_targets.iter().map(|(t, _)| t.clone()).collect();
    want.sort();
    assert_eq!(
        ids(&a_msgs[0].targets),
        want,
        "a keeps scraping while nobody connected can take over"
    );
    assert!(a_msgs[0].removals.is_empty());
    let view = s.view();
    assert!(view.moves.is_empty(), "{:?}", view.moves);

    // b connects: now a hands everything over to it.
    let mut b = join(&mut s, "b", &[(b_target.clone(), 10)], false);
    s.reconcile();
    let a_msgs = received(&mut a);
    assert_eq!(a_msgs.len(), 1, "{a_msgs:?}");
    assert!(!a_msgs[0].full);
    assert_eq!(a_msgs[0].removals.len(), TARGETS - 1);
    assert!(a_msgs[0].removals.iter().all(|r| r.stop_at_ms > 0));
    let b_msgs = received(&mut b);
    let handed: Vec<&pb::Target> = b_msgs[0]
        .targets
        .iter()
        .filter(|t| t.await_handover)
        .collect();
    assert_eq!(handed.len(), TARGETS - 1);
    assert_eq!(ids(&b_msgs[0].targets), target_ids(&s));
}

#[test]
fn a_hello_that_says_draining_is_given_nothing() {
    let mut s = state(None);
    let mut a = join(&mut s, "a", &[], true);
    let mut b = join(&mut s, "b", &[], false);
    s.reconcile();
    let a_msgs = received(&mut a);
    assert!(a_msgs.iter().all(|m| m.targets.is_empty()), "{a_msgs:?}");
    let b_msgs = received(&mut b);
    assert_eq!(ids(&b_msgs[0].targets), target_ids(&s));
    assert!(s.view().members.iter().any(|m| m.id == "a" && m.draining));
}

#[test]
fn the_last_scraper_draining_stops_at_once() {
    let mut s = state(None);
    let mut a = join(&mut s, "a", &[], false);
    s.reconcile();
    assert_eq!(received(&mut a)[0].targets.len(), TARGETS);
    s.on_event(Event::Drain {
        scraper_id: "a".into(),
        session: 1,
    });
    s.reconcile();
    let a_msgs = received(&mut a);
    assert_eq!(a_msgs[0].removals.len(), TARGETS);
    assert!(
        a_msgs[0].removals.iter().all(|r| r.stop_at_ms == 0),
        "nobody to hand over to"
    );
}

#[test]
fn a_restored_owner_the_scraper_does_not_run_is_forgotten() {
    let s0 = state(None);
    let restored = all_owned_by(&s0, "a", 10);
    let mut s = state(Some(restored));
    let ids = target_ids(&s);
    // a handed ids[0] on before the previous leader could save that move.
    let still: Vec<(String, u64)> = ids[1..].iter().map(|t| (t.clone(), 10)).collect();
    let mut b = join(&mut s, "b", &[], false);
    let mut a = join(&mut s, "a", &still, true);
    s.reconcile();
    let a_msgs = received(&mut a);
    assert!(
        a_msgs[0].targets.iter().all(|t| t.id != ids[0]),
        "a draining scraper is not given back what it no longer runs"
    );
    assert!(a_msgs[0].removals.iter().all(|r| r.target_id != ids[0]));
    let b_msgs = received(&mut b);
    let first = b_msgs[0]
        .targets
        .iter()
        .find(|t| t.id == ids[0])
        .expect("the forgotten target goes to a live scraper");
    assert!(
        !first.await_handover,
        "nobody hands it over: it starts at once"
    );
}
