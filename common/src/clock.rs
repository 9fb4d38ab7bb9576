//! The wall clock as every plane stamps time: milliseconds since the Unix
//! epoch, the unit of sample timestamps, scrape slots and handover times.

use std::time::{SystemTime, UNIX_EPOCH};

/// Returns milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_2020() {
        assert!(super::now_ms() > 1_577_836_800_000);
    }
}
