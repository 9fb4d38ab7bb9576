//! An old owner's overrun (issue 17, found by the 30-minute chaos run): a
//! scraper paused past the membership timeout loses its targets to the
//! other scraper, whose link to the storage node is down, so its scrapes of
//! them wait in its outbox. The paused one resumes cut off from the control
//! plane: it never hears of the move and stores scrapes of its old targets
//! first. The storage node, which has not seen the new owner's generation
//! yet, cannot fence them. When the new owner's backlog arrives, its
//! scrapes of the slots the paused scraper missed are older than what is
//! stored: before, they were refused as out of order and the stored data
//! had a gap where neither was stored; now they are written out of order
//! (`scrapegrid_storage_samples_after_overrun_total`), the old owner is
//! fenced from the new owner's first scrape on, and no slot is missing.
//! (The slots both scraped before the fence are the partition's double
//! scrapes, as in `fenced.rs`; each keeps what was stored first.)

use std::time::Duration;

use anyhow::{Context, Result};

use scrapegrid_tests::audit::{self, FleetServer, Window};
use scrapegrid_tests::ha::{counter_body, HaCluster};
use scrapegrid_tests::{eventually, hold_for, metric_value};

const TARGETS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owners_backlog_behind_an_old_owners_overrun_is_stored() -> Result<()> {
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let cluster = HaCluster::builder()
        .partitionable()
        .scrapers(2)
        .membership_timeout("2s")
        .build(&fleet)
        .await?;
    cluster
        .settled(TARGETS, &["scraper-0", "scraper-1"])
        .await?;
    hold_for(Duration::from_secs(2), "steady scraping").await;
    let (old, new) = ("scraper-0", "scraper-1");
    let signal = |cluster: &HaCluster, sig: i32| {
        let s = cluster.scrapers.iter().find(|s| s.id == old);
        s.and_then(|s| s.process.as_ref())
            .expect("running")
            .signal(sig);
    };

    // The new owner cannot reach the storage node; the old one stops.
    cluster.partition_scraper_storage(new, true);
    signal(&cluster, libc::SIGSTOP);
    let moved = eventually(Duration::from_secs(20), || async {
        let o = cluster.owners(TARGETS).await?;
        o.values().all(|s| s == new).then_some(())
    })
    .await
    .context("the paused scraper's targets move");
    if moved.is_err() {
        signal(&cluster, libc::SIGCONT);
    }
    moved?;
    let start_ms = audit::now_ms() + cluster.interval_ms;
    hold_for(Duration::from_secs(3), "the new owner's scrapes wait").await;

    // The old owner resumes without a control plane and scrapes on.
    cluster.partition_scraper(old, true);
    signal(&cluster, libc::SIGCONT);
    hold_for(Duration::from_secs(2), "the old owner overruns").await;

    // The new owner's backlog arrives behind the overrun.
    cluster.partition_scraper_storage(new, false);
    let log = || cluster.scraper_log(old);
    eventually(Duration::from_secs(20), || async {
        log()
            .contains("the storage node fenced this target")
            .then_some(())
    })
    .await
    .with_context(|| format!("the old owner is fenced: {}", log()))?;
    hold_for(Duration::from_secs(2), "scraping after the fence").await;
    let end_ms = audit::now_ms() - cluster.interval_ms;
    cluster
        .wait_counters_stored(&fleet, Duration::from_secs(20))
        .await
        .context("every scrape stored")?;
    let overrun = metric_value(
        &cluster.http,
        &cluster.storage_http,
        "scrapegrid_storage_samples_after_overrun_total",
    )
    .await
    .unwrap_or(0.0);
    let a = cluster.audit(&fleet, Window { start_ms, end_ms }).await?;
    println!("overrun: {a}; {overrun} samples written behind the overrun");
    assert_eq!(a.stored.missed, 0, "no slot missing from storage: {a}");
    assert!(a.stored.stale.is_empty(), "no stale marker: {a}");
    // Stored in the order served, but for a slot both owners scraped
    // (before the fence) a few milliseconds apart: the two requests may
    // reach the target in the other order.
    let backwards: Vec<_> = a
        .steps
        .bad_steps
        .iter()
        .filter(|(t, from, to)| {
            to <= from
                && !a
                    .stored
                    .duplicate_pairs
                    .iter()
                    .any(|&(t1, t2)| *t == t1 || *t == t2)
        })
        .collect();
    assert!(
        backwards.is_empty(),
        "stored out of order: {backwards:?}: {a}"
    );
    assert_eq!(a.requests.missed, 0, "every slot scraped: {a}");
    assert!(
        a.steps.lost <= a.requests.duplicates as u64,
        "every value not stored was the second scrape of its slot: {a}"
    );
    assert!(overrun > 0.0, "the new owner wrote behind the overrun");
    cluster.partition_scraper(old, false);
    Ok(())
}
