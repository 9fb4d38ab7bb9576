//! The control plane's own metrics, served on `/metrics`.

/// Live scraper members.
pub const MEMBERS: &str = "scrapegrid_control_members";
/// Active targets after relabeling.
pub const TARGETS: &str = "scrapegrid_control_targets";
/// Targets dropped by relabeling or invalid.
pub const DROPPED_TARGETS: &str = "scrapegrid_control_dropped_targets";
/// Active targets with no member to scrape them.
pub const UNASSIGNED_TARGETS: &str = "scrapegrid_control_unassigned_targets";
/// Current assignment generation.
pub const GENERATION: &str = "scrapegrid_control_generation";
/// Targets moved from one scraper to another, by `kind`: `handover` (both
/// live) or `failover` (the old owner was gone).
pub const TARGET_MOVES: &str = "scrapegrid_control_target_moves_total";
/// 1 while this control plane leads.
pub const LEADER: &str = "scrapegrid_control_leader";
/// Terms this control plane has led.
pub const LEADER_TERMS: &str = "scrapegrid_control_leader_terms_total";
/// Failed saves of the assignment (retried).
pub const PERSIST_FAILURES: &str = "scrapegrid_control_persist_failures_total";
/// Targets per member (label `member`).
pub const MEMBER_TARGETS: &str = "scrapegrid_control_member_targets";
/// Series per member: the sum of its targets' last series counts.
pub const MEMBER_SERIES: &str = "scrapegrid_control_member_series";
/// Discovery refreshes that failed (by `mechanism`: file, http, dns); the
/// provider keeps its last good groups.
pub const SD_REFRESH_FAILURES: &str = "scrapegrid_control_sd_refresh_failures_total";
/// Running discovery providers.
pub const SD_PROVIDERS: &str = "scrapegrid_control_sd_providers";

/// Whether the last configuration reload succeeded (1) or not (0).
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "scrapegrid_control_config_last_reload_successful";
/// Unix time of the last successful reload.
pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP: &str =
    "scrapegrid_control_config_last_reload_success_timestamp_seconds";
/// Reloads by result.
pub const CONFIG_RELOADS: &str = "scrapegrid_control_config_reloads_total";

/// Describes every metric for the exposition's HELP lines.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    describe_gauge!(MEMBERS, "Live scraper members.");
    describe_gauge!(TARGETS, "Active targets after relabeling.");
    describe_gauge!(DROPPED_TARGETS, "Targets dropped by relabeling or invalid.");
    describe_gauge!(UNASSIGNED_TARGETS, "Active targets with no scraper.");
    describe_gauge!(GENERATION, "Current assignment generation.");
    describe_counter!(TARGET_MOVES, "Targets moved between scrapers, by kind.");
    describe_gauge!(MEMBER_TARGETS, "Targets per member.");
    describe_gauge!(MEMBER_SERIES, "Series per member (last reported).");
    describe_gauge!(LEADER, "1 while this control plane leads.");
    describe_counter!(LEADER_TERMS, "Terms this control plane has led.");
    describe_counter!(PERSIST_FAILURES, "Failed saves of the assignment.");
    describe_counter!(
        SD_REFRESH_FAILURES,
        "Discovery refreshes that failed, by mechanism."
    );
    describe_gauge!(SD_PROVIDERS, "Running discovery providers.");
    describe_gauge!(
        CONFIG_LAST_RELOAD_SUCCESSFUL,
        "Whether the last reload succeeded."
    );
    describe_gauge!(
        CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
        "Unix time of the last successful reload."
    );
    describe_counter!(CONFIG_RELOADS, "Configuration reloads by result.");
}
