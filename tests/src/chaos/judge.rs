//! The chaos run's checker: a pure function from what one target served,
//! what the storage node holds for it and the windows its faults excuse, to
//! counts of what went wrong. Tested below on hand-made sequences.
//!
//! Every successful response of a fleet target carries its number
//! ([`Request::value`]), so the samples the storage node must hold are known:
//! each value served once, stored once, in the order served. What a declared
//! fault may excuse is excused only inside its window (widened by one
//! interval on each side, for the scrape that straddles its edge): a lost
//! value, a missed interval, a slot scraped twice, a stale marker. A value
//! stored twice, or out of order, is never excused.

use std::collections::BTreeMap;
use std::fmt;

use scrapegrid_proto::is_stale_marker;

use crate::audit::{Request, Window};

/// What one target served and what is stored for it.
pub struct TargetRecord<'a> {
    /// Every request the target received.
    pub requests: &'a [Request],
    /// The stored per-request counter, `(timestamp, value)`, stale markers included.
    pub counter: &'a [(i64, f64)],
    /// The stored `up`, stale markers included.
    pub up: &'a [(i64, f64)],
    /// Timestamps of stale markers in every stored series of the target.
    pub stale: &'a [i64],
    /// The windows in which this target's faults excuse gaps and markers.
    pub excused: &'a [Window],
}

/// What the checker found, for one target or summed over many.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub targets: usize,
    /// Values served in the judged window: the samples that must be stored.
    pub served: usize,
    /// Values served and stored.
    pub stored: usize,
    /// Served, never stored, outside every excused window.
    pub lost: usize,
    /// Served, never stored, inside an excused window.
    pub lost_excused: usize,
    /// Extra copies of a value stored more than once.
    pub duplicated: usize,
    /// Stored values lower than the value stored before them in time.
    pub out_of_order: usize,
    /// Intervals without a stored `up` sample, outside excused windows.
    pub missed_stored: usize,
    /// Intervals in which the target received no request, outside excused windows.
    pub missed_requests: usize,
    pub missed_excused: usize,
    /// Two requests less than half an interval apart, outside excused windows.
    pub double_scrapes: usize,
    pub double_scrapes_excused: usize,
    /// Stale markers outside excused windows.
    pub spurious_stale: usize,
    pub stale_excused: usize,
    /// A line for each unexcused finding (target label first when summed).
    pub details: Vec<String>,
}

impl Verdict {
    /// Adds the counts of `other` (one more target, called `name`).
    pub fn add(&mut self, name: &str, other: &Verdict) {
        self.targets += other.targets;
        self.served += other.served;
        self.stored += other.stored;
        self.lost += other.lost;
        self.lost_excused += other.lost_excused;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.missed_stored += other.missed_stored;
        self.missed_requests += other.missed_requests;
        self.missed_excused += other.missed_excused;
        self.double_scrapes += other.double_scrapes;
        self.double_scrapes_excused += other.double_scrapes_excused;
        self.spurious_stale += other.spurious_stale;
        self.stale_excused += other.stale_excused;
        self.details
            .extend(other.details.iter().map(|d| format!("t={name}: {d}")));
    }

    /// Whether nothing unexcused was found.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.missed_stored == 0
            && self.missed_requests == 0
            && self.double_scrapes == 0
            && self.spurious_stale == 0
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "targets {}, samples served {}, stored {}; lost {} (in fault windows {}), \
             duplicated {}, out of order {}; intervals missed: stored {}, at the targets {} \
             (in fault windows {}); double scrapes {} (in fault windows {}); \
             spurious stale markers {} (in fault windows {})",
            self.targets,
            self.served,
            self.stored,
            self.lost,
            self.lost_excused,
            self.duplicated,
            self.out_of_order,
            self.missed_stored,
            self.missed_requests,
            self.missed_excused,
            self.double_scrapes,
            self.double_scrapes_excused,
            self.spurious_stale,
            self.stale_excused,
        )
    }
}

/// Judges one target over `window` (requests after its end are not judged;
/// stored samples around it close its gaps).
pub fn judge(t: &TargetRecord<'_>, interval_ms: i64, window: Window) -> Verdict {
    let excused = |at: i64| {
        t.excused
            .iter()
            .any(|w| w.start_ms - interval_ms <= at && at <= w.end_ms + interval_ms)
    };
    let mut v = Verdict {
        targets: 1,
        ..Verdict::default()
    };

    // Every value served must be stored exactly once, in order.
    let mut stored: Vec<(i64, u64)> = t
        .counter
        .iter()
        .filter(|(_, x)| !is_stale_marker(*x))
        .map(|&(ts, x)| (ts, x as u64))
        .collect();
    stored.sort_unstable();
    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, x) in &stored {
        *copies.entry(*x).or_default() += 1;
    }
    for (x, n) in &copies {
        if *n > 1 {
            v.duplicated += n - 1;
            v.details.push(format!("value {x} stored {n} times"));
        }
    }
    for pair in stored.windows(2) {
        if pair[1].1 < pair[0].1 {
            v.out_of_order += 1;
            v.details.push(format!(
                "value {} at {} stored after value {} at {}",
                pair[1].1, pair[1].0, pair[0].1, pair[0].0
            ));
        }
    }
    for r in t.requests.iter().filter(|r| r.at_ms <= window.end_ms) {
        let Some(x) = r.value else { continue };
        v.served += 1;
        if copies.contains_key(&x) {
            v.stored += 1;
        } else if excused(r.at_ms) {
            v.lost_excused += 1;
        } else {
            v.lost += 1;
            v.details
                .push(format!("value {x} served at {} never stored", r.at_ms));
        }
    }

    // Every interval has a stored `up` and a request; none has two requests.
    let up: Vec<i64> =
        t.up.iter()
            .filter(|(_, x)| !is_stale_marker(*x))
            .map(|(ts, _)| *ts)
            .collect();
    let requests: Vec<i64> = t.requests.iter().map(|r| r.at_ms).collect();
    for (times, what, count) in [(&up, "stored up", 0), (&requests, "requests", 1)] {
        let (missed, in_faults, gaps) = missed_slots(times, interval_ms, window, &excused);
        v.missed_excused += in_faults;
        match count {
            0 => v.missed_stored += missed,
            _ => v.missed_requests += missed,
        }
        for (a, b) in gaps {
            v.details.push(format!(
                "{what}: gap from {a} to {b} outside the fault windows"
            ));
        }
    }
    let mut sorted = requests.clone();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if 2 * (b - a) < interval_ms && window.contains(b) {
            if excused(b) {
                v.double_scrapes_excused += 1;
            } else {
                v.double_scrapes += 1;
                v.details.push(format!("requests at {a} and {b}"));
            }
        }
    }
    for &s in t.stale.iter().filter(|s| window.contains(**s)) {
        if excused(s) {
            v.stale_excused += 1;
        } else {
            v.spurious_stale += 1;
            v.details.push(format!("stale marker at {s}"));
        }
    }
    v
}

/// Counts the intervals without a time in `sorted` (a gap over 1.5
/// intervals misses `round(gap / interval) - 1`, each placed evenly in it)
/// that fall in `window`: (not excused, excused, the gaps with unexcused
/// ones). Edges of the window with no time beyond them count as times.
fn missed_slots(
    sorted: &[i64],
    interval_ms: i64,
    window: Window,
    excused: &dyn Fn(i64) -> bool,
) -> (usize, usize, Vec<(i64, i64)>) {
    let mut points = Vec::with_capacity(sorted.len() + 2);
    if sorted.first().is_none_or(|&t| t > window.start_ms) {
        points.push(window.start_ms);
    }
    points.extend_from_slice(sorted);
    if sorted.last().is_none_or(|&t| t < window.end_ms) {
        points.push(window.end_ms);
    }
    points.sort_unstable();
    let (mut missed, mut in_faults, mut gaps) = (0, 0, Vec::new());
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let gap = b - a;
        if 2 * gap <= 3 * interval_ms {
            continue;
        }
        let slots = (gap as f64 / interval_ms as f64).round() as i64 - 1;
        let mut unexcused = 0;
        for j in 1..=slots {
            let at = a + j * gap / (slots + 1);
            if !(window.start_ms <= at && at < window.end_ms) {
                continue;
            }
            match excused(at) {
                true => in_faults += 1,
                false => unexcused += 1,
            }
        }
        if unexcused > 0 {
            missed += unexcused;
            gaps.push((a, b));
        }
    }
    (missed, in_faults, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_proto::stale_marker;

    const I: i64 = 1000;

    fn w(start_ms: i64, end_ms: i64) -> Window {
        Window { start_ms, end_ms }
    }

    /// Requests at `times`, served 1, 2, ... (None where the time is negative: failed).
    fn served(times: &[i64]) -> Vec<Request> {
        let mut n = 0;
        times
            .iter()
            .map(|&t| Request {
                at_ms: t.abs(),
                pid: Some(1),
                value: (t >= 0).then(|| {
                    n += 1;
                    n
                }),
            })
            .collect()
    }

    fn stored(pairs: &[(i64, u64)]) -> Vec<(i64, f64)> {
        pairs.iter().map(|&(t, x)| (t, x as f64)).collect()
    }

    fn ups(times: &[i64]) -> Vec<(i64, f64)> {
        times.iter().map(|&t| (t, 1.0)).collect()
    }

    fn check(
        requests: &[Request],
        counter: &[(i64, f64)],
        up: &[(i64, f64)],
        stale: &[i64],
        excused: &[Window],
    ) -> Verdict {
        judge(
            &TargetRecord {
                requests,
                counter,
                up,
                stale,
                excused,
            },
            I,
            w(0, 5000),
        )
    }

    #[test]
    fn every_value_stored_once_is_clean() {
        let times = [0, 1000, 2000, 3000, 4000, 5000];
        let r = served(&times);
        let c = stored(&[
            (0, 1),
            (1000, 2),
            (2000, 3),
            (3000, 4),
            (4000, 5),
            (5000, 6),
        ]);
        let v = check(&r, &c, &ups(&times), &[], &[]);
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!((v.served, v.stored), (6, 6));
    }

    #[test]
    fn a_value_never_stored_is_lost_unless_a_fault_excuses_it() {
        let times = [0, 1000, 2000, 3000, 4000, 5000];
        let r = served(&times);
        let c = stored(&[(0, 1), (1000, 2), (3000, 4), (4000, 5), (5000, 6)]);
        let up = ups(&[0, 1000, 3000, 4000, 5000]);
        let v = check(&r, &c, &up, &[], &[]);
        assert_eq!(
            (v.lost, v.missed_stored, v.missed_requests),
            (1, 1, 0),
            "{v}"
        );
        assert!(v
            .details
            .iter()
            .any(|d| d.contains("value 3 served at 2000")));
        // A fault from 1800 to 1900 excuses it (its window widens by an interval).
        let v = check(&r, &c, &up, &[], &[w(1800, 1900)]);
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!((v.lost_excused, v.missed_excused), (1, 1));
        // One far away does not.
        let v = check(&r, &c, &up, &[], &[w(4000, 4500)]);
        assert_eq!(v.lost, 1, "{v}");
    }

    #[test]
    fn duplicates_and_disorder_are_never_excused() {
        let times = [0, 1000, 2000, 3000];
        let r = served(&times);
        let c = stored(&[(0, 1), (1000, 2), (1010, 2), (2000, 4), (2500, 3)]);
        let all = [w(0, 5000)];
        let v = check(&r, &c, &ups(&times), &[], &all);
        assert_eq!((v.duplicated, v.out_of_order), (1, 1), "{v}");
        assert!(!v.is_clean());
    }

    #[test]
    fn double_scrapes_and_gaps_at_the_target() {
        // Slot 2000 taken twice; slot 4000 not at all.
        let r = served(&[0, 1000, 2000, 2100, 3000, 5000]);
        let c = stored(&[
            (0, 1),
            (1000, 2),
            (2000, 3),
            (2100, 4),
            (3000, 5),
            (5000, 6),
        ]);
        let up = ups(&[0, 1000, 2000, 3000, 4000, 5000]);
        let v = check(&r, &c, &up, &[], &[]);
        assert_eq!((v.double_scrapes, v.missed_requests), (1, 1), "{v}");
        assert_eq!((v.lost, v.duplicated, v.missed_stored), (0, 0, 0));
        let v = check(&r, &c, &up, &[], &[w(2000, 4000)]);
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!((v.double_scrapes_excused, v.missed_excused), (1, 1));
    }

    #[test]
    fn failed_requests_serve_nothing_and_markers_need_a_fault() {
        // The target failed at 2000 and 3000: up is still stored, the
        // counter goes stale, the values go on from 3.
        let r = served(&[0, 1000, -2000, -3000, 4000, 5000]);
        assert_eq!(r[4].value, Some(3));
        let c = vec![
            (0, 1.0),
            (1000, 2.0),
            (2000, stale_marker()),
            (4000, 3.0),
            (5000, 4.0),
        ];
        let up = ups(&[0, 1000, 2000, 3000, 4000, 5000]);
        let v = check(&r, &c, &up, &[2000], &[]);
        assert_eq!(v.spurious_stale, 1, "{v}");
        assert_eq!((v.served, v.lost, v.missed_stored), (4, 0, 0), "{v}");
        let v = check(&r, &c, &up, &[2000], &[w(2000, 3000)]);
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!(v.stale_excused, 1);
    }

    #[test]
    fn verdicts_add_up_with_names() {
        let mut total = Verdict::default();
        let one = Verdict {
            targets: 1,
            lost: 2,
            details: vec!["x".into()],
            ..Verdict::default()
        };
        total.add("3", &one);
        total.add("4", &one);
        assert_eq!((total.targets, total.lost), (2, 4));
        assert_eq!(total.details, vec!["t=3: x", "t=4: x"]);
        assert!(!total.is_clean());
    }
}
