//! The cluster's clock: the leading control plane's wall clock, as this
//! scraper estimates it from the time each assignment says it was sent
//! ([`observe`]). Slots, sample timestamps and handover times are all read
//! on it ([`now_ms`]), so two scrapers whose own clocks disagree (by more
//! than `--handover-lead`, even by more than an interval) still take a
//! moving target's slots in turn, once each, and stamp them in order; on
//! their own clocks one would start before the other stopped, or stamp its
//! samples seconds away from the other's.
//!
//! A reading is the control plane's send time minus the local receive
//! time, short of the true offset by the message's transit (and by any
//! time it waited to be read). So the estimate is the largest of the last
//! [`READINGS`] readings: a slow delivery does not shift every slot, and
//! clocks that moved show once the older readings have gone. The offset is
//! exported as `scrapegrid_scraper_clock_offset_seconds`, and one beyond a
//! second is logged: the host's clock wants fixing.
//!
//! The offset changes only when assignments arrive, and follows the
//! leading control plane: control planes must agree on the time (NTP), or a
//! leader change steps every timestamp by their difference.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::metrics;

/// How many recent readings the estimate is the largest of.
pub const READINGS: usize = 8;

/// Offsets beyond this are logged as a warning.
const WARN_MS: i64 = 1000;

static OFFSET_MS: AtomicI64 = AtomicI64::new(0);
static RECENT: Mutex<VecDeque<i64>> = Mutex::new(VecDeque::new());

/// Milliseconds since the Unix epoch on the cluster's clock.
pub fn now_ms() -> i64 {
    scrapegrid_common::clock::now_ms() + OFFSET_MS.load(Ordering::Relaxed)
}

/// Takes a control plane's clock reading `sent_at_ms` (0 from a control
/// plane that sends none: nothing changes) from a message received now.
pub fn observe(sent_at_ms: i64) {
    if sent_at_ms <= 0 {
        return;
    }
    let reading = sent_at_ms - scrapegrid_common::clock::now_ms();
    let current = OFFSET_MS.load(Ordering::Relaxed);
    let next = {
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        estimate(&mut recent, reading)
    };
    if next != current {
        OFFSET_MS.store(next, Ordering::Relaxed);
        ::metrics::gauge!(metrics::CLOCK_OFFSET).set(next as f64 / 1000.0);
        if next.abs() > WARN_MS {
            tracing::warn!(
                offset_ms = next,
                "this host's clock is more than a second off the control plane's; slots and timestamps follow the control plane's"
            );
        }
    }
}

/// Adds `reading` to the recent ones; returns the estimate.
fn estimate(recent: &mut VecDeque<i64>, reading: i64) -> i64 {
    if recent.len() == READINGS {
        recent.pop_front();
    }
    recent.push_back(reading);
    recent.iter().copied().max().unwrap_or(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_largest_recent_reading() {
        let mut recent = VecDeque::new();
        // Transit makes readings short of the offset: the larger wins.
        assert_eq!(estimate(&mut recent, -3), -3);
        assert_eq!(estimate(&mut recent, 2500), 2500, "the clocks moved apart");
        assert_eq!(estimate(&mut recent, 2300), 2500, "a slow delivery");
        // The clocks moved back together: once the larger readings are
        // older than the last READINGS, the estimate follows.
        for k in 0..READINGS - 1 {
            assert!(estimate(&mut recent, 10) > 10, "reading {k}");
        }
        assert_eq!(estimate(&mut recent, 10), 10);
    }
}
