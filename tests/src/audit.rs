//! Audits scrape coverage: what the storage node holds and what the targets
//! saw, counted per series over a time window.
//!
//! [`select`] reads the raw samples of a selector from the storage node's
//! gRPC `Query.Select` (the same raw read as remote read: every stored sample,
//! stale markers included, nothing merged or looked back). [`coverage`] and
//! [`request_coverage`] are the judges: pure functions over timestamps with a
//! known interval, tested below on hand-made sequences. [`source`] holds
//! [`FleetServer`], one HTTP server that serves many targets and logs the
//! arrival of every request, so a slot scraped twice shows at the source even
//! when the storage node stores both scrapes under one timestamp.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result};
use scrapegrid_proto::is_stale_marker;
use scrapegrid_proto::v1 as pb;

mod source;

pub use source::{FleetServer, Request, REQUESTS};

/// A closed time range in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        self.start_ms <= t && t <= self.end_ms
    }
}

/// What an audit found in one series, or summed over several.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Series (or targets) audited.
    pub series: usize,
    /// Real samples (or requests) in the window; stale markers are not samples.
    pub samples: usize,
    /// Intervals without a sample: a gap of more than 1.5 intervals between
    /// consecutive samples counts `round(gap / interval) - 1`.
    pub missed: usize,
    /// Consecutive samples less than half an interval apart: one slot taken twice.
    pub duplicates: usize,
    /// Longest gap between consecutive samples, in milliseconds.
    pub max_gap_ms: i64,
    /// Timestamps of the stale markers in the window.
    pub stale: Vec<i64>,
    /// Each duplicate as the pair of timestamps that are too close.
    pub duplicate_pairs: Vec<(i64, i64)>,
    /// Each gap that counts missed intervals, as the timestamps around it.
    pub gap_pairs: Vec<(i64, i64)>,
}

impl Coverage {
    /// Adds the counts of `other` (one more series) to these.
    pub fn add(&mut self, other: &Coverage) {
        self.series += other.series;
        self.samples += other.samples;
        self.missed += other.missed;
        self.duplicates += other.duplicates;
        self.max_gap_ms = self.max_gap_ms.max(other.max_gap_ms);
        self.stale.extend_from_slice(&other.stale);
        self.duplicate_pairs
            .extend_from_slice(&other.duplicate_pairs);
        self.gap_pairs.extend_from_slice(&other.gap_pairs);
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "series {}, samples {}, missed {}, duplicates {}, stale {}, max gap {} ms",
            self.series,
            self.samples,
            self.missed,
            self.duplicates,
            self.stale.len(),
            self.max_gap_ms
        )
    }
}

/// Returns the coverage of one series' raw samples over `window`.
///
/// Stale markers (bit-exact, see [`is_stale_marker`]) are counted with
/// their timestamps and otherwise ignored: they are not scrapes. Gaps and
/// duplicates are judged between consecutive real samples, so pass samples
/// from a little before and after the window. A gap's missed intervals are
/// spread evenly over it, and each one, like each duplicate (by its later
/// sample), belongs to the window `[start, end)` it falls in: adjacent
/// windows never count the same one. `max_gap_ms` is the longest gap that
/// touches the window. An edge of the window with no sample beyond it counts
/// as a sample there: a series that stops (or starts) inside the window
/// shows the missing part as a gap.
pub fn coverage(samples: &[(i64, f64)], interval_ms: i64, window: Window) -> Coverage {
    let mut real: Vec<i64> = samples
        .iter()
        .filter(|(_, v)| !is_stale_marker(*v))
        .map(|(t, _)| *t)
        .collect();
    real.sort_unstable();
    let mut stale: Vec<i64> = samples
        .iter()
        .filter(|(t, v)| is_stale_marker(*v) && window.contains(*t))
        .map(|(t, _)| *t)
        .collect();
    stale.sort_unstable();
    let mut c = timing(&real, interval_ms, window);
    c.stale = stale;
    c
}

/// Returns the coverage of one target's request arrival times over `window`,
/// judged as [`coverage`] judges samples.
pub fn request_coverage(times_ms: &[i64], interval_ms: i64, window: Window) -> Coverage {
    let mut real = times_ms.to_vec();
    real.sort_unstable();
    timing(&real, interval_ms, window)
}

/// Counts gaps and duplicates in sorted timestamps.
fn timing(sorted: &[i64], interval_ms: i64, window: Window) -> Coverage {
    assert!(interval_ms > 0, "interval must be positive");
    let mut c = Coverage {
        series: 1,
        samples: sorted.iter().filter(|t| window.contains(**t)).count(),
        ..Coverage::default()
    };
    // (timestamp, is a real sample); the window's edges stand in for samples
    // that are missing beyond them.
    let mut points: Vec<(i64, bool)> = Vec::with_capacity(sorted.len() + 2);
    if sorted.first().is_none_or(|&t| t > window.start_ms) {
        points.push((window.start_ms, false));
    }
    points.extend(sorted.iter().map(|&t| (t, true)));
    if sorted.last().is_none_or(|&t| t < window.end_ms) {
        points.push((window.end_ms, false));
    }
    let owns = |t: i64| window.start_ms <= t && t < window.end_ms;
    for pair in points.windows(2) {
        let ((a, a_real), (b, b_real)) = (pair[0], pair[1]);
        if b < window.start_ms || a > window.end_ms {
            continue;
        }
        let gap = b - a;
        c.max_gap_ms = c.max_gap_ms.max(gap);
        if a_real && b_real && 2 * gap < interval_ms && owns(b) {
            c.duplicates += 1;
            c.duplicate_pairs.push((a, b));
        }
        if 2 * gap > 3 * interval_ms {
            let slots = (gap as f64 / interval_ms as f64).round() as i64 - 1;
            let inside = (1..=slots)
                .filter(|j| owns(a + j * gap / (slots + 1)))
                .count();
            if inside > 0 {
                c.missed += inside;
                c.gap_pairs.push((a, b));
            }
        }
    }
    c
}

/// What the stored values of a per-request counter (see
/// [`REQUESTS`]) say about the scrapes of one target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CounterSteps {
    /// Stored values (stale markers left out).
    pub samples: usize,
    /// Scrapes taken at the source but not stored: a step of `k > 1` counts
    /// `k - 1`.
    pub lost: u64,
    /// Steps of zero or less: a request stored twice or out of order.
    pub repeated: u64,
    /// Each step that is not exactly one, as (timestamp, from, to).
    pub bad_steps: Vec<(i64, f64, f64)>,
}

impl CounterSteps {
    pub fn add(&mut self, other: &CounterSteps) {
        self.samples += other.samples;
        self.lost += other.lost;
        self.repeated += other.repeated;
        self.bad_steps.extend_from_slice(&other.bad_steps);
    }
}

impl fmt::Display for CounterSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "counter samples {}, lost scrapes {}, repeated {}",
            self.samples, self.lost, self.repeated
        )?;
        if !self.bad_steps.is_empty() {
            let shown: Vec<_> = self.bad_steps.iter().take(8).collect();
            write!(f, ", bad steps (ts, from, to) {shown:?}")?;
        }
        Ok(())
    }
}

/// Judges the stored values of a per-request counter: every step between
/// consecutive stored values must be exactly one. Stale markers are skipped.
pub fn counter_steps(samples: &[(i64, f64)]) -> CounterSteps {
    let mut real: Vec<(i64, f64)> = samples
        .iter()
        .filter(|(_, v)| !is_stale_marker(*v))
        .copied()
        .collect();
    real.sort_by_key(|(t, _)| *t);
    let mut c = CounterSteps {
        samples: real.len(),
        ..CounterSteps::default()
    };
    for pair in real.windows(2) {
        let ((_, a), (t, b)) = (pair[0], pair[1]);
        let step = b - a;
        if step == 1.0 {
            continue;
        }
        if step > 1.0 {
            c.lost += (step - 1.0) as u64;
        } else {
            c.repeated += 1;
        }
        c.bad_steps.push((t, a, b));
    }
    c
}

/// Returns milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One stored series with its raw samples.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    pub labels: BTreeMap<String, String>,
    /// `(timestamp ms, value)` in time order, stale markers included.
    pub samples: Vec<(i64, f64)>,
}

impl RawSeries {
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Reads the raw samples in `[start_ms, end_ms]` of every series matching
/// all `equal` matchers (`name = value`) from the storage node's gRPC
/// `Query.Select` at `storage_grpc` (`host:port`).
pub async fn select(
    storage_grpc: &str,
    equal: &[(&str, &str)],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<RawSeries>> {
    let mut client = pb::query_client::QueryClient::connect(format!("http://{storage_grpc}"))
        .await
        .with_context(|| format!("connecting to the storage node at {storage_grpc}"))?;
    let matchers = equal
        .iter()
        .map(|(name, value)| pb::Matcher {
            r#type: pb::MatchType::Equal as i32,
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    let response = client
        .select(pb::SelectRequest {
            matchers,
            start_ms,
            end_ms,
        })
        .await
        .context("Query.Select")?
        .into_inner();
    Ok(response
        .series
        .into_iter()
        .map(|s| RawSeries {
            labels: s.labels.into_iter().map(|l| (l.name, l.value)).collect(),
            samples: s.timestamps_ms.into_iter().zip(s.values).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_proto::stale_marker;

    const I: i64 = 1000;

    fn w(start_ms: i64, end_ms: i64) -> Window {
        Window { start_ms, end_ms }
    }

    fn ones(ts: &[i64]) -> Vec<(i64, f64)> {
        ts.iter().map(|&t| (t, 1.0)).collect()
    }

    #[test]
    fn steady_series_has_no_gap_and_no_duplicate() {
        let ts: Vec<i64> = (0..=10).map(|k| 10_000 + k * I + k % 3).collect();
        let c = coverage(&ones(&ts), I, w(10_000, 20_000));
        assert_eq!(c.missed, 0, "{c:?}");
        assert_eq!(c.duplicates, 0, "{c:?}");
        assert!(c.stale.is_empty());
        assert_eq!(c.samples, 10, "the sample at 20_001 is past the window");
        assert!(c.max_gap_ms <= I + 2, "{c:?}");
    }

    #[test]
    fn a_gap_counts_the_missed_intervals() {
        // Slots 3, 4 and 5 are missing: a gap of 4 intervals, 3 missed.
        let ts = [0, 1000, 2000, 6000, 7000, 8000];
        let c = coverage(&ones(&ts), I, w(0, 8000));
        assert_eq!(c.missed, 3, "{c:?}");
        assert_eq!(c.gap_pairs, vec![(2000, 6000)]);
        assert_eq!(c.max_gap_ms, 4000);
        assert_eq!(c.duplicates, 0);
        // One slot missing, with jitter either way.
        for late in [1900, 2000, 2100, 2400] {
            let c = coverage(&ones(&[0, 1000, 1000 + late, 2000 + late]), I, w(0, 3000));
            assert_eq!(c.missed, 1, "gap {late}: {c:?}");
        }
    }

    #[test]
    fn jitter_below_one_and_a_half_intervals_is_not_a_gap() {
        let c = coverage(&ones(&[0, 1000, 2450, 3000, 4000]), I, w(0, 4000));
        assert_eq!(c.missed, 0, "{c:?}");
        assert_eq!(c.max_gap_ms, 1450);
        assert_eq!(c.duplicates, 0, "550 ms apart is not a duplicate");
    }

    #[test]
    fn a_slot_taken_twice_is_a_duplicate() {
        // Two scrapers took the slot at 3000, 40 ms apart.
        let ts = [0, 1000, 2000, 3000, 3040, 4000, 5000];
        let c = coverage(&ones(&ts), I, w(0, 5000));
        assert_eq!(c.duplicates, 1, "{c:?}");
        assert_eq!(c.duplicate_pairs, vec![(3000, 3040)]);
        assert_eq!(c.missed, 0);
        let c = request_coverage(&[5000, 3040, 0, 1000, 2000, 3000, 4000], I, w(0, 5000));
        assert_eq!(c.duplicates, 1, "unsorted request times: {c:?}");
    }

    #[test]
    fn stale_markers_are_counted_not_scraped() {
        let mut s = ones(&[0, 1000, 2000]);
        // An end-of-run marker 3 ms after the last scrape, then a later one.
        s.push((2003, stale_marker()));
        s.push((3000, stale_marker()));
        // A NaN that is not the stale marker is a real sample.
        s.push((4000, f64::NAN));
        let c = coverage(&s, I, w(0, 4000));
        assert_eq!(c.stale, vec![2003, 3000]);
        assert_eq!(c.duplicates, 0, "a marker is not a second scrape: {c:?}");
        assert_eq!(c.samples, 4);
        assert_eq!(c.max_gap_ms, 2000);
        assert_eq!(c.missed, 1);
        // Markers outside the window are not reported.
        assert!(coverage(&s, I, w(0, 1500)).stale.is_empty());
    }

    #[test]
    fn window_edges_stand_in_for_missing_samples() {
        // The series stops at 3000 and the window runs to 8000.
        let c = coverage(&ones(&[0, 1000, 2000, 3000]), I, w(0, 8000));
        assert_eq!(c.max_gap_ms, 5000);
        assert_eq!(c.missed, 4);
        assert_eq!(c.gap_pairs, vec![(3000, 8000)], "ends at the window's edge");
        // It starts late.
        let c = coverage(&ones(&[5000, 6000]), I, w(0, 6000));
        assert_eq!(c.missed, 4, "{c:?}");
        // Nothing at all.
        let c = coverage(&[], I, w(0, 10_000));
        assert_eq!((c.samples, c.missed, c.max_gap_ms), (0, 9, 10_000));
        // Samples beyond the window close its edges; gaps outside are ignored.
        let ts = [-9000, -500, 500, 1500, 2500, 9000];
        let c = coverage(&ones(&ts), I, w(0, 2000));
        assert_eq!((c.samples, c.missed, c.max_gap_ms), (2, 0, 1000), "{c:?}");
        // A gap that straddles an edge is the window's.
        let c = coverage(&ones(&[-500, 2500, 3500]), I, w(0, 3000));
        assert_eq!(c.missed, 2, "{c:?}");
    }

    #[test]
    fn adjacent_windows_never_count_the_same_miss_or_duplicate() {
        // The slot at about -500 is missed (the gap straddles 0), and the
        // one at 1500 is taken twice, right at the edge between the windows.
        let ts = [-2500, -1500, 500, 1500, 1510, 2500];
        let (before, after) = (w(-3000, 0), w(0, 1510));
        let b = coverage(&ones(&ts), I, before);
        let a = coverage(&ones(&ts), I, after);
        assert_eq!((b.missed, a.missed), (1, 0), "{b:?} {a:?}");
        assert_eq!(b.gap_pairs, vec![(-1500, 500)]);
        assert!(a.gap_pairs.is_empty());
        assert_eq!(a.max_gap_ms, 2000, "the straddling gap still touches it");
        let next = coverage(&ones(&ts), I, w(1510, 3000));
        assert_eq!((a.duplicates, next.duplicates), (0, 1), "{a:?} {next:?}");
    }

    #[test]
    fn counter_steps_count_lost_and_repeated_scrapes() {
        let c = counter_steps(&[(0, 1.0), (1000, 2.0), (2000, 3.0)]);
        assert_eq!((c.samples, c.lost, c.repeated), (3, 0, 0));
        // Requests 3 and 4 were taken but not stored; a marker is skipped.
        let c = counter_steps(&[
            (0, 1.0),
            (1000, 2.0),
            (1500, stale_marker()),
            (4000, 5.0),
            (5000, 6.0),
        ]);
        assert_eq!((c.lost, c.repeated), (2, 0), "{c}");
        assert_eq!(c.bad_steps, vec![(4000, 2.0, 5.0)]);
        // One request stored under two timestamps; unsorted input.
        let c = counter_steps(&[(2000, 2.0), (0, 1.0), (1000, 2.0)]);
        assert_eq!((c.lost, c.repeated), (0, 1), "{c}");
    }

    #[test]
    fn coverage_adds_up() {
        let mut total = Coverage::default();
        total.add(&coverage(&ones(&[0, 1000, 3000]), I, w(0, 3000)));
        total.add(&coverage(&ones(&[0, 10, 1000, 2000, 3000]), I, w(0, 3000)));
        assert_eq!(total.series, 2);
        assert_eq!(total.samples, 8);
        assert_eq!(total.missed, 1);
        assert_eq!(total.duplicates, 1);
        assert_eq!(total.max_gap_ms, 2000);
    }
}
