//! The cluster's clock: the leading control plane's wall clock, as this
//! scraper estimates it from the time each assignment says it was sent
//! ([`observe`]). Slots, sample timestamps and handover times are all read
//! on it ([`now_ms`]), so two scrapers whose own clocks disagree (by more
//! than `--handover-lead`, even by more than an interval) still take a
//! moving target's slots in turn, once each, and stamp them in order; on
//! their own clocks one would start before the other stopped, or stamp its
//! samples seconds away from the other's.
//!
//! The estimate is the control plane's send time minus the local receive
//! time, which is short of the true offset by the message's transit. So a
//! larger reading replaces the estimate at once (less transit, or the
//! clocks moved apart), and a smaller one only when it is smaller by more
//! than [`SLACK_MS`] (the clocks moved back together; a slow delivery
//! alone should not shift every slot). The offset is exported as
//! `scrapegrid_scraper_clock_offset_seconds`, and one beyond a second is
//! logged: the host's clock wants fixing.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::metrics;

/// How much smaller than the estimate a reading must be to replace it.
pub const SLACK_MS: i64 = 100;

/// Offsets beyond this are logged as a warning.
const WARN_MS: i64 = 1000;

static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

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
    let next = estimate(current, reading);
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

/// The estimate after `reading`, from `current`.
fn estimate(current: i64, reading: i64) -> i64 {
    if reading > current || reading < current - SLACK_MS {
        reading
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_move_the_estimate_up_at_once_and_down_past_the_slack() {
        // Transit makes readings short of the offset: the larger wins.
        assert_eq!(estimate(0, -3), 0);
        assert_eq!(estimate(-3, 0), 0);
        assert_eq!(estimate(0, 2500), 2500);
        assert_eq!(estimate(2500, 2450), 2500, "a slow delivery");
        assert_eq!(estimate(2500, 2400), 2500, "at the slack");
        assert_eq!(estimate(2500, 2399), 2399, "the clocks moved back");
        assert_eq!(estimate(2500, -3000), -3000);
    }
}
