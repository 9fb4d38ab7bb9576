//! The chaos run's checker: a pure function from what one target served,
//! what the storage node holds for it and the faults that touched it, to
//! counts of what went wrong. Tested below on hand-made sequences.
//!
//! Every successful response of a fleet target carries its number
//! ([`Request::value`]), so the samples the storage node must hold are known:
//! each value served once, stored once, in the order served. Only a fault
//! of a scraper that owned the target ([`ScraperFault`]: killed, paused or
//! cut off from the control planes) excuses anything, and only what that
//! scraper did: a value it was served and never delivered (a killed one
//! loses all it had not delivered, however old), a slot it scraped beside
//! the next owner, two values stored out of order because of that, and the
//! intervals and stale markers inside its window (widened by one interval
//! on each side), and the value of the other scrape of a slot it scraped
//! twice (the storage node keeps one of the two). A failing target excuses
//! its stale markers. A value stored twice is never excused.

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
    /// Faults of scrapers that owned the target at the time.
    pub faults: &'a [ScraperFault],
    /// When the target failed its requests.
    pub failing: &'a [Window],
}

/// A fault of a scraper that owned the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScraperFault {
    /// From the fault until its targets are owned elsewhere or it is back.
    pub window: Window,
    /// Every process the scraper ran as.
    pub pids: Vec<i32>,
    /// `kill -9`: what it had not delivered is gone, however old.
    pub killed: bool,
}

impl ScraperFault {
    fn covers(&self, at: i64, interval_ms: i64) -> bool {
        self.window.start_ms - interval_ms <= at && at <= self.window.end_ms + interval_ms
    }

    /// Whether this fault excuses what request `r` came to.
    fn excuses(&self, r: &Request, interval_ms: i64) -> bool {
        r.pid.is_some_and(|p| self.pids.contains(&p))
            && (self.covers(r.at_ms, interval_ms)
                || (self.killed && r.at_ms <= self.window.start_ms))
    }
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
    /// Requests whose sending process was not found (nothing excuses them).
    pub unattributed: usize,
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
        self.unattributed += other.unattributed;
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
             spurious stale markers {} (in fault windows {}); requests without a known sender {}",
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
            self.unattributed,
        )
    }
}

/// Judges one target over `window` (requests after its end are not judged;
/// stored samples around it close its gaps).
pub fn judge(t: &TargetRecord<'_>, interval_ms: i64, window: Window) -> Verdict {
    let by_request = |r: &Request| t.faults.iter().any(|f| f.excuses(r, interval_ms));
    let in_fault = |at: i64| t.faults.iter().any(|f| f.covers(at, interval_ms));
    let failing = |at: i64| {
        t.failing
            .iter()
            .any(|w| w.start_ms - interval_ms <= at && at <= w.end_ms + interval_ms)
    };
    let mut v = Verdict {
        targets: 1,
        unattributed: t.requests.iter().filter(|r| r.pid.is_none()).count(),
        ..Verdict::default()
    };
    let served: BTreeMap<u64, &Request> = t
        .requests
        .iter()
        .filter_map(|r| Some((r.value?, r)))
        .collect();

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
        let ((ta, a), (tb, b)) = (pair[0], pair[1]);
        if b >= a {
            continue;
        }
        // Two owners scraped one slot a few ms apart: their timestamps
        // may be in the other order than their requests.
        let excused = [a, b]
            .iter()
            .any(|x| served.get(x).is_some_and(|r| by_request(r)));
        if !excused {
            v.out_of_order += 1;
            v.details
                .push(format!("value {b} at {tb} stored after value {a} at {ta}"));
        }
    }
    // A slot scraped twice beside a faulted scraper: the storage node keeps
    // whichever of the two scrapes reached it first and refuses the other
    // (a duplicate or out-of-order sample), whoever sent it.
    let beside_a_fault = |r: &Request| {
        t.requests.iter().any(|o| {
            2 * (o.at_ms - r.at_ms).abs() < interval_ms && !std::ptr::eq(o, r) && by_request(o)
        })
    };
    for r in t.requests.iter().filter(|r| r.at_ms <= window.end_ms) {
        let Some(x) = r.value else { continue };
        v.served += 1;
        if copies.contains_key(&x) {
            v.stored += 1;
        } else if by_request(r) || beside_a_fault(r) {
            v.lost_excused += 1;
        } else {
            v.lost += 1;
            v.details.push(format!(
                "value {x} served at {} to pid {:?} never stored",
                r.at_ms, r.pid
            ));
        }
    }

    // Every interval has a stored `up` and a request; none has two requests.
    let up: Vec<i64> =
        t.up.iter()
            .filter(|(_, x)| !is_stale_marker(*x))
            .map(|(ts, _)| *ts)
            .collect();
    let requests: Vec<i64> = t.requests.iter().map(|r| r.at_ms).collect();
    // A stored slot is also excused when its scrape went to a faulted
    // scraper's process (a killed one's backlog, however old).
    let stored_excused = |at: i64| {
        in_fault(at)
            || t.requests
                .iter()
                .any(|r| 2 * (r.at_ms - at).abs() <= interval_ms && by_request(r))
    };
    for (times, what) in [(&up, "stored up"), (&requests, "requests")] {
        let excused: &dyn Fn(i64) -> bool = match what {
            "stored up" => &stored_excused,
            _ => &in_fault,
        };
        let (missed, in_faults, gaps) = missed_slots(times, interval_ms, window, excused);
        v.missed_excused += in_faults;
        match what {
            "stored up" => v.missed_stored += missed,
            _ => v.missed_requests += missed,
        }
        for (a, b) in gaps {
            v.details.push(format!(
                "{what}: gap from {a} to {b} outside the fault windows"
            ));
        }
    }
    let mut sorted: Vec<&Request> = t.requests.iter().collect();
    sorted.sort_by_key(|r| r.at_ms);
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if 2 * (b.at_ms - a.at_ms) < interval_ms && window.contains(b.at_ms) {
            if by_request(a) || by_request(b) {
                v.double_scrapes_excused += 1;
            } else {
                v.double_scrapes += 1;
                v.details.push(format!(
                    "requests at {} (pid {:?}) and {} (pid {:?})",
                    a.at_ms, a.pid, b.at_ms, b.pid
                ));
            }
        }
    }
    for &s in t.stale.iter().filter(|s| window.contains(**s)) {
        if failing(s) || in_fault(s) {
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

    /// Requests at `times` from pid 1 (pid 2 where the time is odd), served
    /// 1, 2, ... (none where the time is negative: failed).
    fn served(times: &[i64]) -> Vec<Request> {
        let mut n = 0;
        times
            .iter()
            .map(|&t| Request {
                at_ms: t.abs(),
                pid: Some(if t % 2 == 0 { 1 } else { 2 }),
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

    fn fault(start_ms: i64, end_ms: i64, pid: i32, killed: bool) -> ScraperFault {
        ScraperFault {
            window: w(start_ms, end_ms),
            pids: vec![pid],
            killed,
        }
    }

    struct Case<'a> {
        requests: &'a [Request],
        counter: &'a [(i64, f64)],
        up: &'a [(i64, f64)],
        stale: &'a [i64],
        faults: &'a [ScraperFault],
        failing: &'a [Window],
    }

    fn check(c: Case<'_>) -> Verdict {
        judge(
            &TargetRecord {
                requests: c.requests,
                counter: c.counter,
                up: c.up,
                stale: c.stale,
                faults: c.faults,
                failing: c.failing,
            },
            I,
            w(0, 5000),
        )
    }

    fn case<'a>(
        requests: &'a [Request],
        counter: &'a [(i64, f64)],
        up: &'a [(i64, f64)],
    ) -> Case<'a> {
        Case {
            requests,
            counter,
            up,
            stale: &[],
            faults: &[],
            failing: &[],
        }
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
        let v = check(case(&r, &c, &ups(&times)));
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!((v.served, v.stored, v.unattributed), (6, 6, 0));
    }

    #[test]
    fn a_lost_value_is_excused_only_by_a_fault_of_the_process_it_went_to() {
        let times = [0, 1000, 2000, 3000, 4000, 5000];
        let r = served(&times);
        let c = stored(&[(0, 1), (1000, 2), (3000, 4), (4000, 5), (5000, 6)]);
        let up = ups(&[0, 1000, 3000, 4000, 5000]);
        let v = check(case(&r, &c, &up));
        assert_eq!(
            (v.lost, v.missed_stored, v.missed_requests),
            (1, 1, 0),
            "{v}"
        );
        assert!(v
            .details
            .iter()
            .any(|d| d.contains("value 3 served at 2000")));
        // Value 3 went to pid 1; a fault of pid 1 around it excuses it.
        let faults = [fault(1800, 1900, 1, false)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &up)
        });
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!((v.lost_excused, v.missed_excused), (1, 1));
        // A fault of another process at the same time does not excuse the
        // loss (the gap, in its window, is excused).
        let faults = [fault(1800, 1900, 2, false)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &up)
        });
        assert_eq!((v.lost, v.missed_stored), (1, 0), "{v}");
        // Nor does one of pid 1 far away, unless it was a kill: a killed
        // scraper loses what it had not delivered, however old.
        let faults = [fault(4000, 4500, 1, false)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &up)
        });
        assert_eq!(v.lost, 1, "{v}");
        let faults = [fault(4000, 4500, 1, true)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &up)
        });
        assert_eq!((v.lost, v.lost_excused), (0, 1), "{v}");
        assert_eq!(v.missed_stored, 0, "its slot went with it: {v}");
    }

    #[test]
    fn duplicates_are_never_excused_and_disorder_only_beside_a_faulted_scraper() {
        let times = [0, 1000, 2000, 3000];
        let r = served(&times);
        let c = stored(&[(0, 1), (1000, 2), (1010, 2), (2000, 4), (2500, 3)]);
        let faults = [fault(0, 5000, 2, false)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &ups(&times))
        });
        assert_eq!((v.duplicated, v.out_of_order), (1, 1), "{v}");
        assert!(!v.is_clean());
        // Values 3 and 4 went to pid 1: a fault of pid 1 excuses their order.
        let faults = [fault(0, 5000, 1, false)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &ups(&times))
        });
        assert_eq!((v.duplicated, v.out_of_order), (1, 0), "{v}");
    }

    #[test]
    fn double_scrapes_need_a_faulted_sender_and_gaps_a_fault_window() {
        // Slot 2000 taken twice (by pid 1, then pid 2 at 2101); slot 4000 not at all.
        let r = served(&[0, 1000, 2000, 2101, 3000, 5000]);
        let c = stored(&[
            (0, 1),
            (1000, 2),
            (2000, 3),
            (2101, 4),
            (3000, 5),
            (5000, 6),
        ]);
        let up = ups(&[0, 1000, 2000, 3000, 4000, 5000]);
        let v = check(case(&r, &c, &up));
        assert_eq!((v.double_scrapes, v.missed_requests), (1, 1), "{v}");
        assert_eq!((v.lost, v.duplicated, v.missed_stored), (0, 0, 0));
        assert!(
            v.details.iter().any(|d| d.contains("pid Some(2)")),
            "{:?}",
            v.details
        );
        let faults = [fault(2000, 4000, 2, false)];
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &up)
        });
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!((v.double_scrapes_excused, v.missed_excused), (1, 1));
        // The slot's other scrape (pid 1's value 3) refused as a duplicate:
        // excused beside the fault, not without it.
        let c = stored(&[(0, 1), (1000, 2), (2101, 4), (3000, 5), (5000, 6)]);
        let v = check(Case {
            faults: &faults,
            ..case(&r, &c, &up)
        });
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!(v.lost_excused, 1);
        let v = check(case(&r, &c, &up));
        assert_eq!(v.lost, 1, "{v}");
    }

    #[test]
    fn a_failing_target_excuses_its_stale_markers_and_nothing_else() {
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
        let v = check(Case {
            stale: &[2000],
            ..case(&r, &c, &up)
        });
        assert_eq!(v.spurious_stale, 1, "{v}");
        assert_eq!((v.served, v.lost, v.missed_stored), (4, 0, 0), "{v}");
        let failing = [w(2000, 3000)];
        let v = check(Case {
            stale: &[2000],
            failing: &failing,
            ..case(&r, &c, &up)
        });
        assert!(v.is_clean(), "{v}: {:?}", v.details);
        assert_eq!(v.stale_excused, 1);
        // It excuses no gap.
        let up = ups(&[0, 1000, 4000, 5000]);
        let v = check(Case {
            stale: &[2000],
            failing: &failing,
            ..case(&r, &c, &up)
        });
        assert_eq!(v.missed_stored, 2, "{v}");
    }

    #[test]
    fn requests_without_a_sender_are_counted() {
        let mut r = served(&[0, 1000]);
        r[1].pid = None;
        let c = stored(&[(0, 1), (1000, 2)]);
        let v = check(case(&r, &c, &ups(&[0, 1000, 2000, 3000, 4000, 5000])));
        assert_eq!(v.unattributed, 1);
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
