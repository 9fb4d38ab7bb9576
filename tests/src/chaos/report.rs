//! What a chaos run reports: its settings, the faults it applied (and
//! skipped), the drains, and the checker's verdict, printed whether it
//! passes or not; [`Report::timeline`] lists the faults for a failure.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::judge::Verdict;
use super::run::{Applied, Settings};
use super::Fault;

/// What a run did and found.
pub struct Report {
    pub settings: Settings,
    pub planned: usize,
    pub applied: Vec<Applied>,
    /// Faults the cluster's state made meaningless when their turn came.
    pub skipped: BTreeMap<Fault, usize>,
    pub verdict: Verdict,
    /// Each drained scraper's exit code and how long it took.
    pub drains: Vec<(String, Option<i32>, Duration)>,
    pub took: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "chaos seed {} ({} s of faults, one every {} ms on average, {} targets, {} scrapers at first, {} s in all)",
            s.seed,
            s.length.as_secs(),
            s.mean_gap.as_millis(),
            s.targets,
            s.scrapers,
            self.took.as_secs()
        )?;
        let mut by_kind: BTreeMap<Fault, usize> = BTreeMap::new();
        for a in &self.applied {
            *by_kind.entry(a.fault).or_default() += 1;
        }
        let overlapping = self
            .applied
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                self.applied[..*i]
                    .iter()
                    .any(|b| b.start_ms <= a.start_ms && a.start_ms <= b.end_ms)
            })
            .count();
        writeln!(
            f,
            "faults planned {}, applied {} ({} began while another held), skipped {:?}",
            self.planned,
            self.applied.len(),
            overlapping,
            self.skipped
        )?;
        writeln!(f, "applied by kind: {by_kind:?}")?;
        let slowest = self.drains.iter().map(|d| d.2).max().unwrap_or_default();
        writeln!(
            f,
            "drains {} (slowest {} ms), exit codes {:?}",
            self.drains.len(),
            slowest.as_millis(),
            self.drains.iter().map(|d| d.1).collect::<Vec<_>>()
        )?;
        write!(f, "verdict: {}", self.verdict)?;
        for d in self.verdict.details.iter().take(40) {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl Report {
    /// The applied faults, one per line, for a failure's message.
    pub fn timeline(&self, start_ms: i64) -> String {
        self.applied
            .iter()
            .map(|a| {
                format!(
                    "{:>8} ms to {:>8} ms  {:?} {}",
                    a.start_ms - start_ms,
                    a.end_ms - start_ms,
                    a.fault,
                    a.subject,
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
