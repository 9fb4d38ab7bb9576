//! The scraper node's own metrics, served on `/metrics`.

/// Targets this scraper runs.
pub const TARGETS: &str = "scrapegrid_scraper_targets";
/// Scrape loops started (a new target, or a changed one restarted).
pub const LOOPS_STARTED: &str = "scrapegrid_scraper_loops_started_total";
/// Scrape loops stopped because the storage node fenced their target
/// (another scraper owns a newer generation).
pub const LOOPS_FENCED: &str = "scrapegrid_scraper_loops_fenced_total";
/// Scrapes by result (`success`, `failure`).
pub const SCRAPES: &str = "scrapegrid_scraper_scrapes_total";
/// Samples parsed from target responses.
pub const SAMPLES_SCRAPED: &str = "scrapegrid_scraper_samples_scraped_total";
/// Batches waiting for an ack from the storage node.
pub const BATCHES_PENDING: &str = "scrapegrid_scraper_batches_pending";
/// Batches dropped: the outbox was full (in memory with no spill
/// directory, or over `--outbox.max-disk-usage` on disk), or a spilled one
/// did not read back.
pub const BATCHES_DROPPED: &str = "scrapegrid_scraper_batches_dropped_total";
/// Batches the outbox wrote to disk because memory was full.
pub const BATCHES_SPILLED: &str = "scrapegrid_scraper_batches_spilled_total";
/// Bytes of spilled batches on disk.
pub const OUTBOX_DISK_BYTES: &str = "scrapegrid_scraper_outbox_disk_bytes";
/// Acks by status (`applied`, `duplicate`, `refused`).
pub const BATCHES_ACKED: &str = "scrapegrid_scraper_batches_acked_total";
/// Ingest stream failures.
pub const INGEST_RECONNECTS: &str = "scrapegrid_scraper_ingest_reconnects_total";
/// Ingest streams replaced because they defined many more series than are
/// live (series churn).
pub const INGEST_ROTATIONS: &str = "scrapegrid_scraper_ingest_rotations_total";
/// How far the control plane's clock is ahead of this host's (seconds;
/// negative when behind): slots and timestamps follow the control plane's.
pub const CLOCK_OFFSET: &str = "scrapegrid_scraper_clock_offset_seconds";

/// Handovers by outcome: `sent` (a moved target's series set handed on),
/// `taken` (a new owner took its predecessor's set before its first
/// commit), `late` (taken after it: the storage node or the predecessor's
/// stream was away at the handover), `missed` (none came: the predecessor
/// died before it handed over).
pub const HANDOVERS: &str = "scrapegrid_scraper_handovers_total";

/// Batches a drain gave up at its deadline, unacked by the storage node.
pub const DRAIN_BATCHES_ABANDONED: &str = "scrapegrid_scraper_drain_batches_abandoned_total";
/// Samples in those batches.
pub const DRAIN_SAMPLES_ABANDONED: &str = "scrapegrid_scraper_drain_samples_abandoned_total";
/// Targets a drain stopped at its deadline without a leader having moved
/// them to another scraper.
pub const DRAIN_TARGETS_ABANDONED: &str = "scrapegrid_scraper_drain_targets_abandoned_total";

/// Describes every metric for the exposition's HELP lines.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    describe_gauge!(TARGETS, "Targets this scraper runs.");
    describe_counter!(SCRAPES, "Scrapes by result.");
    describe_counter!(LOOPS_STARTED, "Scrape loops started.");
    describe_counter!(
        LOOPS_FENCED,
        "Scrape loops stopped because the storage node fenced their target."
    );
    describe_counter!(SAMPLES_SCRAPED, "Samples parsed from target responses.");
    describe_gauge!(BATCHES_PENDING, "Batches waiting for a storage ack.");
    describe_counter!(
        BATCHES_DROPPED,
        "Batches dropped: the outbox was full, or a spilled one did not read back."
    );
    describe_counter!(
        BATCHES_SPILLED,
        "Batches the outbox wrote to disk because memory was full."
    );
    describe_gauge!(OUTBOX_DISK_BYTES, "Bytes of spilled batches on disk.");
    ::metrics::gauge!(OUTBOX_DISK_BYTES).set(0.0);
    describe_counter!(
        BATCHES_ACKED,
        "Batches acked by the storage node, by status."
    );
    describe_counter!(INGEST_RECONNECTS, "Ingest stream failures.");
    describe_counter!(
        INGEST_ROTATIONS,
        "Ingest streams replaced because they defined many more series than are live."
    );
    describe_gauge!(
        CLOCK_OFFSET,
        "How far the control plane's clock is ahead of this host's, in seconds."
    );
    ::metrics::gauge!(CLOCK_OFFSET).set(0.0);
    describe_counter!(HANDOVERS, "Target handovers by outcome.");
    describe_counter!(
        DRAIN_BATCHES_ABANDONED,
        "Batches a drain gave up at its deadline, unacked."
    );
    describe_counter!(
        DRAIN_SAMPLES_ABANDONED,
        "Samples in batches a drain gave up at its deadline."
    );
    describe_counter!(
        DRAIN_TARGETS_ABANDONED,
        "Targets a drain stopped at its deadline without a handover."
    );
}
