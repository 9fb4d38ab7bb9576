//! The cluster's clock: the leading control plane's wall clock, as this
//! scraper estimates it from the time each assignment, and each clock
//! reading a session carries every few seconds (`Clock`), says it was sent
//! ([`observe`]). Slots, sample timestamps and handover times are all read
//! on it ([`now_ms`]), so two scrapers whose own clocks disagree (by more
//! than `--handover-lead`, even by more than an interval) still take a
//! moving target's slots in turn, once each, and stamp them in order; on
//! their own clocks one would start before the other stopped, or stamp its
//! samples seconds away from the other's.
//!
//! The estimate is kept against this host's monotonic clock, not its wall
//! clock: the cluster's time is the monotonic time plus a base. So a step
//! of the host's wall clock (an NTP correction, an operator) moves nothing
//! here; before the first reading the base is the host's wall clock at
//! start. A reading is the control plane's send time minus the local
//! monotonic receive time, short of the true base by the message's transit
//! (and by any time it waited to be read). So the base is the largest of the
//! last [`READINGS`] readings: a slow delivery does not shift every slot,
//! and a monotonic clock that drifts from the control plane's shows once the
//! older readings have gone. The difference from the host's wall clock is
//! exported as `scrapegrid_scraper_clock_offset_seconds`, and one beyond a
//! second is logged: the host's clock wants fixing.
//!
//! The estimate follows the leading control plane: control planes must
//! agree on the time (NTP), or a leader change steps every timestamp by
//! their difference.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::metrics;

/// How many recent readings the estimate is the largest of.
pub const READINGS: usize = 8;

/// Offsets beyond this are logged as a warning.
const WARN_MS: i64 = 1000;

/// No base yet: the first [`now_ms`] takes the host's wall clock.
const UNSET: i64 = i64::MIN;

static BASE_MS: AtomicI64 = AtomicI64::new(UNSET);
static RECENT: Mutex<VecDeque<i64>> = Mutex::new(VecDeque::new());
static WARNED: AtomicBool = AtomicBool::new(false);

/// Milliseconds on this host's monotonic clock since its first use.
fn mono_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch on the cluster's clock.
pub fn now_ms() -> i64 {
    let mono = mono_ms();
    let mut base = BASE_MS.load(Ordering::Relaxed);
    if base == UNSET {
        let host = scrapegrid_common::clock::now_ms() - mono;
        base = match BASE_MS.compare_exchange(UNSET, host, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => host,
            Err(set) => set,
        };
    }
    mono + base
}

/// Takes a control plane's clock reading `sent_at_ms` (0 from a control
/// plane that sends none: nothing changes) from a message received now.
pub fn observe(sent_at_ms: i64) {
    if sent_at_ms <= 0 {
        return;
    }
    let reading = sent_at_ms - mono_ms();
    let base = {
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        estimate(&mut recent, reading)
    };
    BASE_MS.store(base, Ordering::Relaxed);
    let offset = now_ms() - scrapegrid_common::clock::now_ms();
    ::metrics::gauge!(metrics::CLOCK_OFFSET).set(offset as f64 / 1000.0);
    let off = offset.abs() > WARN_MS;
    if WARNED.swap(off, Ordering::Relaxed) != off && off {
        tracing::warn!(
            offset_ms = offset,
            "this host's clock is more than a second off the control plane's; slots and timestamps follow the control plane's"
        );
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
    fn the_cluster_clock_starts_on_the_host_clock_and_follows_readings() {
        let host = scrapegrid_common::clock::now_ms();
        assert!((now_ms() - host).abs() < 100);
        let a = now_ms();
        assert!(now_ms() >= a, "monotonic");
    }

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
