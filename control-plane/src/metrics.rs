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
/// Targets moved from one scraper to another.
pub const TARGET_MOVES: &str = "scrapegrid_control_target_moves_total";
/// file_sd files that could not be read or parsed.
pub const FILE_SD_READ_ERRORS: &str = "scrapegrid_control_file_sd_read_errors_total";

/// Describes every metric for the exposition's HELP lines.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    describe_gauge!(MEMBERS, "Live scraper members.");
    describe_gauge!(TARGETS, "Active targets after relabeling.");
    describe_gauge!(DROPPED_TARGETS, "Targets dropped by relabeling or invalid.");
    describe_gauge!(UNASSIGNED_TARGETS, "Active targets with no scraper.");
    describe_gauge!(GENERATION, "Current assignment generation.");
    describe_counter!(TARGET_MOVES, "Targets moved between scrapers.");
    describe_counter!(
        FILE_SD_READ_ERRORS,
        "file_sd files that failed to read or parse."
    );
}
