//! The chaos run (issue 17): a whole cluster (control planes on a real etcd,
//! scrapers, the storage node, all real processes, every link through a
//! [`crate::cut::Cut`]) scrapes a fleet of targets whose every sample is
//! known, while random faults overlap; then [`judge`] compares what the
//! storage node holds with what the targets served.
//!
//! [`plan`] draws the faults from a seed: when each starts, how long it
//! holds, what it hits. It is pure, so a seed replays the same plan;
//! [`run`] applies it to a live cluster, resolving "a scraper" or "the
//! leader" when each fault starts and skipping one that the cluster's state
//! makes meaningless (a second storage fault while one holds, the last two
//! scrapers), and declares the window of each fault that may excuse a gap
//! ([`run::Applied`]): a scraper killed, paused or cut off from the control
//! planes leaves its targets unscraped until the control plane hands them
//! to another, and loses what it had not delivered; a failing target writes
//! stale markers. Nothing else excuses anything: a storage node killed,
//! paused or cut off, a control plane or etcd killed, the leader paused
//! past its lease, a reload, a drain or a join must lose nothing, miss no
//! interval and double nothing. [`owners`] records who owned each target
//! when, through the run, for the checker; [`report`] prints the figures.

use std::time::Duration;

pub mod judge;
pub mod owners;
pub mod report;
pub mod run;

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `kill -9` of a scraper; it starts again (same id) when the fault ends.
    KillScraper,
    /// SIGSTOP of a scraper, SIGCONT when the fault ends.
    PauseScraper,
    /// Every link between a scraper and the control planes cut, then healed.
    PartitionScraper,
    /// SIGTERM of a scraper: it drains and exits (instant).
    DrainScraper,
    /// A scraper starts (a drained one again, or a new one; instant).
    JoinScraper,
    /// `kill -9` of the storage node, started again when the fault ends.
    KillStorage,
    /// SIGSTOP of the storage node.
    PauseStorage,
    /// Every link to the storage node's gRPC cut.
    PartitionStorage,
    /// `kill -9` of the leading control plane, started again at the end.
    KillLeader,
    /// `kill -9` of a control plane that follows.
    KillFollower,
    /// SIGSTOP of the leading control plane, past its etcd lease.
    PauseLeader,
    /// `kill -9` of etcd, started again at the end.
    KillEtcd,
    /// Every control plane reloads its configuration (instant).
    Reload,
    /// A target answers 503 until the fault ends.
    FlapTarget,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::KillScraper,
        Fault::PauseScraper,
        Fault::PartitionScraper,
        Fault::DrainScraper,
        Fault::JoinScraper,
        Fault::KillStorage,
        Fault::PauseStorage,
        Fault::PartitionStorage,
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::KillEtcd,
        Fault::Reload,
        Fault::FlapTarget,
    ];

    /// How long it holds, in ms: (shortest, longest). Pauses and partitions
    /// of a scraper or the leader outlast the membership timeout and the
    /// lease ([`run::MEMBERSHIP_TIMEOUT`], [`run::LEASE`]) so that they
    /// force a failover.
    fn hold_ms(self) -> (u64, u64) {
        match self {
            Fault::DrainScraper | Fault::JoinScraper | Fault::Reload => (0, 0),
            Fault::PauseScraper | Fault::PartitionScraper | Fault::PauseLeader => (4000, 7000),
            Fault::KillScraper
            | Fault::KillStorage
            | Fault::PauseStorage
            | Fault::PartitionStorage
            | Fault::KillLeader
            | Fault::KillFollower
            | Fault::KillEtcd
            | Fault::FlapTarget => (500, 4000),
        }
    }
}

/// One fault of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// From the start of the run.
    pub at: Duration,
    pub fault: Fault,
    pub hold: Duration,
    /// Chooses among the candidates (scrapers, targets) when it starts.
    pub pick: u64,
}

/// A small, seedable generator (SplitMix64): the same seed, the same plan.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Draws the faults of a run of `length` from `seed`: each starts a random
/// time (uniform, mean `mean_gap`) after the previous one starts, so they
/// overlap; every kind is equally likely, and each ends before `length`.
pub fn plan(seed: u64, length: Duration, mean_gap: Duration) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mean = (mean_gap.as_millis() as u64).max(1);
    let mut at = rng.between(mean / 2, mean);
    loop {
        let fault = Fault::ALL[rng.between(0, Fault::ALL.len() as u64 - 1) as usize];
        let (lo, hi) = fault.hold_ms();
        let hold = rng.between(lo, hi);
        let pick = rng.next_u64();
        if Duration::from_millis(at + hold) >= length {
            break;
        }
        steps.push(Step {
            at: Duration::from_millis(at),
            fault,
            hold: Duration::from_millis(hold),
            pick,
        });
        at += rng.between(0, 2 * mean);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_plan() {
        let a = plan(7, Duration::from_secs(120), Duration::from_secs(3));
        assert_eq!(a, plan(7, Duration::from_secs(120), Duration::from_secs(3)));
        assert_ne!(a, plan(8, Duration::from_secs(120), Duration::from_secs(3)));
    }

    #[test]
    fn plans_overlap_cover_every_fault_and_end_in_time() {
        let length = Duration::from_secs(600);
        let p = plan(1, length, Duration::from_secs(3));
        assert!(p.len() > 150, "{} steps", p.len());
        for f in Fault::ALL {
            assert!(p.iter().any(|s| s.fault == f), "{f:?} never drawn");
        }
        assert!(p.windows(2).all(|w| w[0].at <= w[1].at), "in order");
        assert!(p.iter().all(|s| s.at + s.hold < length));
        let overlapping = p
            .windows(2)
            .filter(|w| w[1].at < w[0].at + w[0].hold)
            .count();
        assert!(overlapping > p.len() / 5, "{overlapping} overlaps");
        for s in &p {
            let (lo, hi) = s.fault.hold_ms();
            let ms = s.hold.as_millis() as u64;
            assert!(lo <= ms && ms <= hi, "{s:?}");
        }
    }
}
