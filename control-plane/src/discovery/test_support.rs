//! Helpers for provider tests: deadline-based waits and the failure counter.
//!
//! Tests run on tokio's current-thread runtime, so a thread-local metrics
//! recorder sees every counter the provider task increments.

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::mpsc;

use super::{ProviderUpdate, TargetGroup};
use crate::metrics::SD_REFRESH_FAILURES;

/// How long a test waits for something that should happen.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Installs a recorder for this thread; keep the guard alive.
pub fn local_metrics() -> (PrometheusHandle, metrics::LocalRecorderGuard<'static>) {
    let recorder = Box::leak(Box::new(PrometheusBuilder::new().build_recorder()));
    let handle = recorder.handle();
    (handle, metrics::set_default_local_recorder(recorder))
}

/// Returns `scrapegrid_control_sd_refresh_failures_total{mechanism=...}`.
pub fn failures(handle: &PrometheusHandle, mechanism: &str) -> u64 {
    let prefix = format!("{SD_REFRESH_FAILURES}{{mechanism=\"{mechanism}\"}} ");
    handle
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

/// Waits until `cond` holds, polling; panics naming `what` at the deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Returns the provider's next update; panics at the deadline.
pub async fn next_update(rx: &mut mpsc::Receiver<ProviderUpdate>) -> ProviderUpdate {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("timed out waiting for a provider update")
        .expect("provider stopped")
}

/// Returns the group with `source`, panicking if absent.
pub fn by_source<'a>(groups: &'a [TargetGroup], source: &str) -> &'a TargetGroup {
    groups
        .iter()
        .find(|g| g.source == source)
        .unwrap_or_else(|| panic!("no group {source:?} in {groups:#?}"))
}

/// Returns the `__address__` of every target of a group.
pub fn addresses(group: &TargetGroup) -> Vec<&str> {
    group
        .targets
        .iter()
        .filter_map(|t| t.get("__address__"))
        .collect()
}
