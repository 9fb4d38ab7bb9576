//! One conformance suite for the control plane's HA backends (election and
//! persisted state), run against the in-memory backend and against a real
//! etcd on loopback. The etcd run adds what only a real etcd can show: a
//! leader that dies without resigning is replaced once its lease expires,
//! and an etcd killed with SIGKILL ends the leadership while it is down and
//! lets a candidate win, with the state intact, once it is back.
//!
//! Every wait has a deadline; "still waiting" is checked for a short while
//! where the property is that something does not happen.

use std::future::Future;
use std::time::{Duration, Instant};

use control_plane::ha::{
    Election, EtcdCandidate, EtcdOptions, HaError, Leadership, MemoryCluster, PersistedOwner,
    PersistedState, StateChange, StateStore,
};
use scrapegrid_tests::etcd::Etcd;

/// Deadline for what should happen at once (a campaign against a free seat,
/// a handover after resign, a save, a load).
const SOON: Duration = Duration::from_secs(5);

/// How long a blocked campaign is watched to still be blocked.
const STILL_BLOCKED: Duration = Duration::from_millis(500);

/// Deadline for a successor after the leader dies without resigning: the
/// issue's failover budget (the default etcd lease TTL is 2 s).
const FAILOVER: Duration = Duration::from_secs(5);

/// Candidates that share one election and one state; each case gets a fresh
/// backend.
trait Backend {
    type Candidate: Election + StateStore + 'static;
    fn candidate(&self) -> Self::Candidate;
}

struct Memory(MemoryCluster);

impl Backend for Memory {
    type Candidate = control_plane::ha::MemoryCandidate;
    fn candidate(&self) -> Self::Candidate {
        self.0.candidate()
    }
}

struct EtcdBackend(EtcdOptions);

impl Backend for EtcdBackend {
    type Candidate = EtcdCandidate;
    fn candidate(&self) -> Self::Candidate {
        EtcdCandidate::new(self.0.clone()).expect("valid etcd options")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_conforms() {
    conformance(|_case| Memory(MemoryCluster::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_backend_conforms() {
    let etcd = Etcd::start().await.expect("etcd starts");
    conformance(|case| EtcdBackend(etcd_options(&etcd, case))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_ends_leadership_and_state_survives() {
    let mut etcd = Etcd::start().await.expect("etcd starts");
    let backend = EtcdBackend(etcd_options(&etcd, "outage"));
    etcd_outage(&mut etcd, backend).await;
}

fn etcd_options(etcd: &Etcd, case: &str) -> EtcdOptions {
    EtcdOptions {
        endpoints: vec![etcd.endpoint()],
        prefix: format!("/conformance/{case}/"),
        ..EtcdOptions::default()
    }
}

/// Runs every case, each on a fresh backend from `backend(case name)`.
async fn conformance<B: Backend>(backend: impl Fn(&str) -> B) {
    single_candidate_wins(backend("single")).await;
    one_leader_among_two(backend("two")).await;
    terms_increase(backend("terms")).await;
    state_survives_leader_change(backend("state")).await;
    large_state_round_trips(backend("large")).await;
    load_reports_highest_generation(backend("generation")).await;
    deposed_leader_cannot_save(backend("deposed")).await;
    invalid_change_writes_nothing(backend("invalid")).await;
    dead_leader_is_replaced(backend("dies")).await;
}

async fn single_candidate_wins<B: Backend>(backend: B) {
    let a = backend.candidate();
    assert_eq!(a.leader().await.expect("leader"), None, "no leader yet");
    let l = lead(&a, "http://a").await;
    assert!(l.term > 0, "term {} must be positive", l.term);
    assert!(!l.lost.is_cancelled(), "fresh leadership already lost");
    assert_eq!(
        a.leader().await.expect("leader").as_deref(),
        Some("http://a")
    );
    assert_eq!(a.load().await.expect("load"), PersistedState::default());
}

async fn one_leader_among_two<B: Backend>(backend: B) {
    let (a, b) = (backend.candidate(), backend.candidate());
    let mut campaign_a = a.campaign("http://a");
    let mut campaign_b = b.campaign("http://b");
    let (winner, mut loser, leadership, winner_endpoint, loser_endpoint) =
        within(SOON, "one of two campaigns", async {
            tokio::select! {
                l = &mut campaign_a => (&a, campaign_b, l, "http://a", "http://b"),
                l = &mut campaign_b => (&b, campaign_a, l, "http://b", "http://a"),
            }
        })
        .await;
    let leadership = leadership.expect("campaign");
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut loser)
            .await
            .is_err(),
        "the second campaign must wait while {winner_endpoint} leads"
    );
    for who in [&a, &b] {
        assert_eq!(
            who.leader().await.expect("leader").as_deref(),
            Some(winner_endpoint),
            "both candidates see the winner"
        );
    }
    assert!(!leadership.lost.is_cancelled());
    winner.resign(&leadership).await.expect("resign");
    assert!(leadership.lost.is_cancelled(), "resign cancels lost");
    let next = within(SOON, "the waiting campaign after resign", loser)
        .await
        .expect("campaign");
    assert!(
        next.term > leadership.term,
        "term {} after {}",
        next.term,
        leadership.term
    );
    assert_eq!(
        a.leader().await.expect("leader").as_deref(),
        Some(loser_endpoint)
    );
}

async fn terms_increase<B: Backend>(backend: B) {
    let (a, b) = (backend.candidate(), backend.candidate());
    let mut last = 0;
    for round in 0..3 {
        for (who, endpoint) in [(&a, "http://a"), (&b, "http://b")] {
            let l = within(SOON, "campaign", who.campaign(endpoint))
                .await
                .expect("campaign");
            assert!(l.term > last, "round {round}: term {} after {last}", l.term);
            last = l.term;
            who.resign(&l).await.expect("resign");
        }
    }
    assert_eq!(a.leader().await.expect("leader"), None, "everyone resigned");
}

async fn state_survives_leader_change<B: Backend>(backend: B) {
    let (a, b) = (backend.candidate(), backend.candidate());
    let la = lead(&a, "http://a").await;
    save(
        &a,
        &la,
        change(
            10,
            &[("t1", "s0", 10), ("t2", "s1", 10), ("t3", "s0", 10)],
            &[],
        ),
    )
    .await;
    // Replaces t2's owner, removes t3.
    save(&a, &la, change(11, &[("t2", "s0", 11)], &["t3"])).await;
    let expected = state(11, &[("t1", "s0", 10), ("t2", "s0", 11)]);
    assert_eq!(
        a.load().await.expect("load"),
        expected,
        "the leader reads its own saves"
    );
    a.resign(&la).await.expect("resign");
    let lb = lead(&b, "http://b").await;
    assert_eq!(
        b.load().await.expect("load"),
        expected,
        "the next leader loads them"
    );
    // The new leader builds on them.
    save(&b, &lb, change(12, &[("t3", "s2", 12)], &["t1"])).await;
    assert_eq!(
        a.load().await.expect("load"),
        state(12, &[("t2", "s0", 11), ("t3", "s2", 12)])
    );
}

async fn large_state_round_trips<B: Backend>(backend: B) {
    let (a, b) = (backend.candidate(), backend.candidate());
    let la = lead(&a, "http://a").await;
    // More owners than one etcd transaction or one load page holds.
    let owners: Vec<PersistedOwner> = (0..12_345)
        .map(|i| owner(&format!("target-{i:05}"), &format!("scraper-{}", i % 7), 20))
        .collect();
    let change = StateChange {
        generation: 20,
        upserts: owners.clone(),
        removals: Vec::new(),
    };
    within(SOON * 4, "a large save", a.save(&la, change))
        .await
        .expect("save");
    let removals: Vec<String> = owners
        .iter()
        .step_by(2)
        .map(|o| o.target_id.clone())
        .collect();
    let change = StateChange {
        generation: 21,
        upserts: Vec::new(),
        removals,
    };
    within(SOON * 4, "a large removal", a.save(&la, change))
        .await
        .expect("save");
    a.resign(&la).await.expect("resign");
    let _lb = lead(&b, "http://b").await;
    let loaded = within(SOON, "a large load", b.load()).await.expect("load");
    let expected = PersistedState {
        generation: 21,
        owners: owners.into_iter().skip(1).step_by(2).collect(),
    };
    assert_eq!(loaded.owners.len(), 6_172);
    assert_eq!(loaded, expected);
}

async fn load_reports_highest_generation<B: Backend>(backend: B) {
    let a = backend.candidate();
    let l = lead(&a, "http://a").await;
    // As after a save cut short: an owner newer than the saved generation.
    save(&a, &l, change(5, &[("t1", "s0", 9), ("t2", "s1", 3)], &[])).await;
    let loaded = a.load().await.expect("load");
    assert_eq!(loaded.generation, 9, "the highest generation wins");
    assert_eq!(loaded.owners.len(), 2);
}

async fn deposed_leader_cannot_save<B: Backend>(backend: B) {
    let (a, b) = (backend.candidate(), backend.candidate());
    let la = lead(&a, "http://a").await;
    save(&a, &la, change(30, &[("t1", "s0", 30)], &[])).await;
    a.resign(&la).await.expect("resign");
    // Nobody leads: the old term cannot write.
    let refused = a.save(&la, change(31, &[("t1", "s9", 31)], &[])).await;
    assert!(
        matches!(refused, Err(HaError::NotLeader { .. })),
        "{refused:?}"
    );
    let lb = lead(&b, "http://b").await;
    // Another term leads: still refused, whichever handle saves.
    for who in [&a, &b] {
        let refused = who
            .save(&la, change(32, &[("t2", "s9", 32)], &["t1"]))
            .await;
        assert!(
            matches!(refused, Err(HaError::NotLeader { .. })),
            "{refused:?}"
        );
    }
    let expected = state(30, &[("t1", "s0", 30)]);
    assert_eq!(
        b.load().await.expect("load"),
        expected,
        "refused saves wrote nothing"
    );
    save(&b, &lb, change(33, &[("t2", "s1", 33)], &[])).await;
    assert_eq!(
        b.load().await.expect("load"),
        state(33, &[("t1", "s0", 30), ("t2", "s1", 33)])
    );
}

async fn invalid_change_writes_nothing<B: Backend>(backend: B) {
    let a = backend.candidate();
    let l = lead(&a, "http://a").await;
    save(&a, &l, change(40, &[("t1", "s0", 40)], &[])).await;
    for bad in [
        change(41, &[("t2", "s0", 41)], &["t2"]),
        change(41, &[("t2", "s0", 41), ("t2", "s1", 41)], &[]),
        change(41, &[("", "s0", 41)], &[]),
    ] {
        let refused = a.save(&l, bad.clone()).await;
        assert!(
            matches!(refused, Err(HaError::InvalidChange(_))),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(
        a.load().await.expect("load"),
        state(40, &[("t1", "s0", 40)])
    );
}

async fn dead_leader_is_replaced<B: Backend>(backend: B) {
    let (a, b) = (backend.candidate(), backend.candidate());
    let la = lead(&a, "http://a").await;
    let mut campaign_b = b.campaign("http://b");
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut campaign_b)
            .await
            .is_err(),
        "b must wait while a leads"
    );
    // The leader "dies": no resign, its keepalive just stops.
    let died = Instant::now();
    drop(a);
    let lb = within(FAILOVER, "failover after the leader died", campaign_b)
        .await
        .expect("campaign");
    eprintln!("failover took {:?}", died.elapsed());
    assert!(lb.term > la.term, "term {} after {}", lb.term, la.term);
    assert!(la.lost.is_cancelled(), "the dead leader's term is over");
    assert_eq!(
        b.leader().await.expect("leader").as_deref(),
        Some("http://b")
    );
}

/// etcd is killed while a leads and b campaigns: a's leadership ends while
/// etcd is down; after etcd is back one of them wins a later term and loads
/// the state a saved, and a's old term still cannot write.
async fn etcd_outage(etcd: &mut Etcd, backend: EtcdBackend) {
    let ttl = backend.0.lease_ttl;
    let (a, b) = (backend.candidate(), backend.candidate());
    let la = lead(&a, "http://a").await;
    let saved = state(50, &[("t1", "s0", 50), ("t2", "s1", 49)]);
    save(
        &a,
        &la,
        change(50, &[("t1", "s0", 50), ("t2", "s1", 49)], &[]),
    )
    .await;
    let mut campaign_b = b.campaign("http://b");
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut campaign_b)
            .await
            .is_err(),
        "b must wait while a leads"
    );
    assert!(!la.lost.is_cancelled(), "a leads while etcd is up");

    let killed = Instant::now();
    etcd.kill9();
    // At most a TTL after the last confirmed keepalive, which is at most a
    // TTL/3 old when etcd dies; one more second of slack.
    within(
        ttl + Duration::from_secs(1),
        "lost after etcd died",
        la.lost.cancelled(),
    )
    .await;
    eprintln!(
        "leadership lost {:?} after kill -9 of etcd",
        killed.elapsed()
    );
    assert!(a.leader().await.is_err(), "no answer while etcd is down");
    assert!(a.load().await.is_err(), "no state while etcd is down");
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut campaign_b)
            .await
            .is_err(),
        "nobody wins while etcd is down"
    );

    etcd.start_again().await.expect("etcd restarts");
    let restarted = Instant::now();
    let mut campaign_a = a.campaign("http://a");
    let (winner, leadership, endpoint) = within(SOON * 2, "a campaign after etcd is back", async {
        tokio::select! {
            l = &mut campaign_a => (&a as &dyn StateStore, l, "http://a"),
            l = &mut campaign_b => (&b as &dyn StateStore, l, "http://b"),
        }
    })
    .await;
    let leadership = leadership.expect("campaign");
    eprintln!(
        "{endpoint} won {:?} after etcd restarted",
        restarted.elapsed()
    );
    // a revokes the lease of the term it lost as soon as etcd answers, so
    // nobody waits for that lease to expire.
    assert!(
        restarted.elapsed() < ttl,
        "the election after etcd's return took {:?}, longer than the lease TTL",
        restarted.elapsed()
    );
    assert!(
        leadership.term > la.term,
        "term {} after {}",
        leadership.term,
        la.term
    );
    assert_eq!(a.leader().await.expect("leader").as_deref(), Some(endpoint));
    assert_eq!(
        winner.load().await.expect("load"),
        saved,
        "state survives the outage"
    );
    let refused = a.save(&la, change(51, &[("t3", "s9", 51)], &[])).await;
    assert!(
        matches!(refused, Err(HaError::NotLeader { .. })),
        "{refused:?}"
    );
    winner
        .save(&leadership, change(52, &[("t3", "s2", 52)], &[]))
        .await
        .expect("the new leader saves");
    assert_eq!(b.load().await.expect("load").generation, 52);
}

/// Campaigns and expects to win at once.
async fn lead<C: Election>(candidate: &C, endpoint: &str) -> Leadership {
    within(SOON, "campaign", candidate.campaign(endpoint))
        .await
        .expect("campaign")
}

async fn save<C: StateStore>(candidate: &C, leadership: &Leadership, change: StateChange) {
    within(SOON, "save", candidate.save(leadership, change))
        .await
        .expect("save");
}

/// Awaits `f`, failing the test if it takes longer than `deadline`.
async fn within<T>(deadline: Duration, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(deadline, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {deadline:?}"),
    }
}

fn owner(target_id: &str, member: &str, generation: u64) -> PersistedOwner {
    PersistedOwner {
        target_id: target_id.into(),
        member: member.into(),
        generation,
    }
}

fn change(generation: u64, upserts: &[(&str, &str, u64)], removals: &[&str]) -> StateChange {
    StateChange {
        generation,
        upserts: upserts.iter().map(|&(t, m, g)| owner(t, m, g)).collect(),
        removals: removals.iter().map(|r| r.to_string()).collect(),
    }
}

fn state(generation: u64, owners: &[(&str, &str, u64)]) -> PersistedState {
    PersistedState {
        generation,
        owners: owners.iter().map(|&(t, m, g)| owner(t, m, g)).collect(),
    }
}
