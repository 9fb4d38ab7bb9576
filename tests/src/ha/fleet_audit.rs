//! Auditing an [`HaCluster`]'s fleet: waiting until every scrape is
//! stored, and judging stored `up`, the per-request counters and the
//! targets' request logs over a window ([`HaCluster::audit`]).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{HaCluster, JOB};
use crate::audit::{self, counter_steps, CounterSteps, Coverage, FleetServer, Window};
use crate::eventually;

impl HaCluster {
    /// Waits (up to `deadline`) until the storage node holds, for every
    /// target, a counter value at least the number of requests the target
    /// had received when this was called: everything scraped so far is
    /// stored.
    pub async fn wait_counters_stored(
        &self,
        fleet: &FleetServer,
        deadline: Duration,
    ) -> Result<()> {
        // The last value each target served (failed requests serve none).
        let want: Vec<u64> = (0..fleet.len())
            .map(|i| {
                fleet
                    .log(i)
                    .iter()
                    .filter_map(|r| r.value)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        eventually(deadline, || async {
            let series = self.select("fleet_requests_total", 0).await.ok()?;
            let stored: BTreeMap<String, f64> = series
                .iter()
                .map(|s| {
                    let last = s
                        .samples
                        .iter()
                        .filter(|(_, v)| !scrapegrid_proto::is_stale_marker(*v))
                        .map(|(_, v)| *v)
                        .fold(0.0, f64::max);
                    (s.label("t").to_string(), last)
                })
                .collect();
            want.iter()
                .enumerate()
                .all(|(i, n)| stored.get(&i.to_string()).is_some_and(|v| *v >= *n as f64))
                .then_some(())
        })
        .await
    }

    async fn select(&self, name: &str, start_ms: i64) -> Result<Vec<audit::RawSeries>> {
        audit::select(
            &self.storage_grpc,
            &[("__name__", name), ("job", JOB)],
            start_ms,
            audit::now_ms() + 60_000,
        )
        .await
    }

    /// Waits (up to `deadline`) until every scrape so far is stored, then
    /// audits the fleet from `start_ms` to an interval ago, prints the
    /// audit and asserts it is clean ([`Audit::assert_clean`]).
    pub async fn assert_clean_since(
        &self,
        fleet: &FleetServer,
        start_ms: i64,
        deadline: Duration,
        what: &str,
    ) -> Result<()> {
        let end_ms = audit::now_ms() - self.interval_ms;
        self.wait_counters_stored(fleet, deadline)
            .await
            .context("every scrape stored")?;
        let a = self.audit(fleet, Window { start_ms, end_ms }).await?;
        println!("{what}: {a}");
        a.assert_clean(what);
        Ok(())
    }

    /// Audits the fleet over `window`: the stored `up` samples, the stored
    /// per-request counter (every step exactly one, from the first stored
    /// value to the last), and every target's request log.
    pub async fn audit(&self, fleet: &FleetServer, window: Window) -> Result<Audit> {
        let interval = self.interval_ms;
        let up = self.select("up", window.start_ms - 2 * interval).await?;
        anyhow::ensure!(
            up.len() == fleet.len(),
            "{} up series of {}",
            up.len(),
            fleet.len()
        );
        let mut stored = Coverage::default();
        for s in &up {
            let samples: Vec<(i64, f64)> = s
                .samples
                .iter()
                .copied()
                .filter(|(t, _)| *t <= window.end_ms + 2 * interval)
                .collect();
            stored.add(&audit::coverage(&samples, interval, window));
        }
        let counters = self.select("fleet_requests_total", 0).await?;
        anyhow::ensure!(
            counters.len() == fleet.len(),
            "{} counter series of {}",
            counters.len(),
            fleet.len()
        );
        let mut steps = CounterSteps::default();
        for s in &counters {
            steps.add(&counter_steps(&s.samples));
        }
        let mut requests = Coverage::default();
        for i in 0..fleet.len() {
            requests.add(&audit::request_coverage(
                &fleet.requests(i),
                interval,
                window,
            ));
        }
        Ok(Audit {
            stored,
            steps,
            requests,
        })
    }
}

/// What [`HaCluster::audit`] found.
#[derive(Debug)]
pub struct Audit {
    /// Stored `up` over the window.
    pub stored: Coverage,
    /// The stored per-request counters over the whole run.
    pub steps: CounterSteps,
    /// The targets' request logs over the window.
    pub requests: Coverage,
}

impl std::fmt::Display for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stored up: {}; {}; requests: {}",
            self.stored, self.steps, self.requests
        )?;
        if !self.stored.gap_pairs.is_empty() {
            write!(f, "; stored gaps {:?}", self.stored.gap_pairs)?;
        }
        if !self.requests.gap_pairs.is_empty() {
            write!(f, "; request gaps {:?}", self.requests.gap_pairs)?;
        }
        Ok(())
    }
}

impl Audit {
    /// Asserts that nothing was lost, missed or doubled, and that no stale
    /// marker was written.
    pub fn assert_clean(&self, what: &str) {
        let a = self;
        assert_eq!(a.stored.missed, 0, "{what}: missed intervals: {a}");
        assert_eq!(a.stored.duplicates, 0, "{what}: stored duplicates: {a}");
        assert!(a.stored.stale.is_empty(), "{what}: stale markers: {a}");
        assert_eq!(a.steps.lost, 0, "{what}: scrapes lost: {a}");
        assert_eq!(a.steps.repeated, 0, "{what}: counter repeated: {a}");
        assert_eq!(a.requests.missed, 0, "{what}: slots not scraped: {a}");
        assert_eq!(a.requests.duplicates, 0, "{what}: slots scraped twice: {a}");
    }
}
