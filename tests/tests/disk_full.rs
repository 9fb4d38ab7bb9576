//! The storage node's disk fills up (issue 17): its data directory is on a
//! 64 MiB tmpfs the test fills to the last byte while a scraper writes.
//! Writes are refused with "disk full" (below
//! `--storage.min-free-disk-space`), the scraper keeps its batches and the
//! targets are scraped on; once the test frees the space, ingest resumes by
//! itself and every value the targets served is stored, once, in order,
//! with no interval missing. Without the guard (`--storage.min-free-disk-space
//! 0`) the same run lost the storage node: RocksDB met ENOSPC writing its
//! log and aborted (in a release build the writer refuses every write after
//! a failed one, until a restart), so nothing was stored after the space
//! returned.

use std::time::Duration;

use anyhow::{Context, Result};

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::tmpfs::Tmpfs;
use scrapegrid_tests::{eventually, hold_for, metric_value};

const TARGETS: usize = 4;

/// Series each target serves besides its counter: enough that the writes
/// of a few seconds outgrow the room RocksDB set aside before the disk
/// filled (its write-ahead log file is preallocated).
const EXTRA_SERIES: usize = 3_000;

/// A fleet target's counter and gauge, and [`EXTRA_SERIES`] more gauges
/// whose values change every scrape.
fn body(i: usize) -> String {
    let mut b = counter_body(i);
    b.push_str("# TYPE fleet_extra gauge\n");
    for k in 0..EXTRA_SERIES {
        b.push_str(&format!("fleet_extra{{k=\"{k}\"}} {}\n", audit::REQUESTS));
    }
    b
}

/// Batches the storage node refused for want of space.
async fn refused(cluster: &HaCluster) -> Option<f64> {
    let name = "scrapegrid_storage_batches_refused_total{reason=\"disk_full\"}";
    metric_value(&cluster.http, &cluster.storage_http, name)
        .await
        .ok()
}

/// The newest stored value of every target's request counter, summed.
async fn stored(cluster: &HaCluster) -> Result<f64> {
    let series = audit::select(
        &cluster.storage_grpc,
        &[("__name__", "fleet_requests_total")],
        0,
        audit::now_ms() + 60_000,
    )
    .await?;
    Ok(series
        .iter()
        .map(|s| s.samples.iter().map(|(_, v)| *v).fold(0.0, f64::max))
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_and_loses_nothing_once_freed() -> Result<()> {
    // Dropped last: the processes using it go first.
    let disk = Tmpfs::mount("64m")?;
    let fleet = FleetServer::start(TARGETS, body).await?;
    let cluster = HaCluster::builder()
        .scrapers(1)
        .storage_data_dir(&disk.path().join("data"))
        .storage_args(&["--storage.min-free-disk-space", "16MB"])
        .build(&fleet)
        .await?;
    cluster.settled(TARGETS, &["scraper-0"]).await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let start_ms = audit::now_ms();

    let ballast = disk.fill("ballast")?;
    println!(
        "disk filled: {ballast} bytes of ballast, {} left",
        disk.available()?
    );
    let storage_log = || cluster.storage.as_ref().expect("running").log();
    eventually(Duration::from_secs(20), || async {
        (refused(&cluster).await? > 0.0).then_some(())
    })
    .await
    .with_context(|| format!("writes refused: {}", storage_log()))?;
    assert!(
        storage_log().contains("disk full"),
        "the storage node says why: {}",
        storage_log()
    );

    // While the disk is full nothing is stored, and the targets are
    // scraped on.
    let (stored_before, served_before) = (stored(&cluster).await?, fleet_served(&fleet));
    hold_for(Duration::from_secs(3), "the disk stays full").await;
    assert_eq!(stored(&cluster).await?, stored_before, "nothing stored");
    assert!(fleet_served(&fleet) >= served_before + 4 * TARGETS as u64);
    let available = metric_value(
        &cluster.http,
        &cluster.storage_http,
        "scrapegrid_storage_disk_available_bytes",
    )
    .await?;
    assert!(available < (16 << 20) as f64, "{available} bytes available");

    std::fs::remove_file(disk.path().join("ballast"))?;
    cluster
        .wait_counters_stored(&fleet, Duration::from_secs(30))
        .await
        .with_context(|| format!("every scrape stored once space returns: {}", storage_log()))?;
    let end_ms = audit::now_ms() - cluster.interval_ms;
    let a = cluster.audit(&fleet, Window { start_ms, end_ms }).await?;
    println!(
        "disk full: {a}; {} batches refused",
        refused(&cluster).await.unwrap_or(0.0)
    );
    a.assert_clean("disk full");
    drop(cluster);
    drop(disk);
    Ok(())
}

/// Requests every target received, summed.
fn fleet_served(fleet: &FleetServer) -> u64 {
    (0..fleet.len())
        .map(|i| fleet.requests(i).len() as u64)
        .sum()
}
