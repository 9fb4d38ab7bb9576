//! The queue against a recording receiver: exactly once and in order
//! across an outage and `kill -9`, refusals and the disk bound counted,
//! shards for a slow endpoint, reload without a restart.

use std::collections::BTreeSet;
use std::time::Duration;

use scrapegrid_tests::remote_receiver::Receiver;
use scrapegrid_tests::{eventually, hold_for};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_sample_arrives_once_in_order_across_an_outage_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 50, batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 200ms",
    );
    let mut node = start_node(dir.path(), &config, &[]).await;
    let t0 = now_ms() / 1000 * 1000 - 1_800_000;
    let mut all = BTreeSet::new();
    let mut next = 0i64;
    let mut write_some = |n: usize| {
        let blocks: Vec<_> = (0..n)
            .map(|_| {
                let b = block("outage", 4, t0 + next * 10_000, 10);
                next += 1;
                b
            })
            .collect();
        for b in &blocks {
            all.extend(keys_of(b));
        }
        blocks
    };

    for b in write_some(3) {
        write(&node, b).await;
    }
    eventually(DEADLINE, || async {
        (rx.samples().len() == 120).then_some(())
    })
    .await
    .unwrap();
    let headers = rx.last_headers().unwrap();
    assert_eq!(headers["content-encoding"], "snappy");
    assert_eq!(headers["x-prometheus-remote-write-version"], "0.1.0");
    assert!(headers["user-agent"]
        .to_str()
        .unwrap()
        .starts_with("scrapegrid/"));

    // The receiver goes down; the node keeps storing and retrying.
    rx.set_status(503);
    let answered = rx.requests().1;
    for b in write_some(3) {
        write(&node, b).await;
    }
    eventually(DEADLINE, || async {
        (rx.requests().1 >= answered + 3).then_some(())
    })
    .await
    .unwrap();
    assert!(
        metric(
            &node,
            "scrapegrid_storage_remote_write_retried_samples_total"
        )
        .await
            > 0.0
    );

    // kill -9 with the queue full of unsent samples, then more writes.
    restart(dir.path(), &mut node).await;
    for b in write_some(3) {
        write(&node, b).await;
    }
    let answered = rx.requests().1;
    eventually(DEADLINE, || async {
        (rx.requests().1 > answered).then_some(())
    })
    .await
    .unwrap();
    rx.set_status(204);

    eventually(DEADLINE, || async {
        (rx.tally().0.len() == all.len()).then_some(())
    })
    .await
    .unwrap();
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (count, unordered) = rx.tally();
    let got: BTreeSet<_> = count.keys().cloned().collect();
    assert_eq!(got, all, "lost or unexpected samples");
    let twice: Vec<_> = count.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "samples sent twice: {twice:?}");
    assert!(unordered.is_empty(), "series out of order: {unordered:?}");
    assert_eq!(rx.samples().len(), 360);
}

/// A node that stops (SIGTERM) first sends what its queue holds, without
/// waiting for the requests to fill (`--remote-write.flush-deadline`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_sends_what_its_queue_holds() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    // Requests that would wait an hour to fill up.
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 10000, batch_send_deadline: 1h",
    );
    let mut node = start_node(dir.path(), &config, &[]).await;
    let t0 = now_ms() / 1000 * 1000 - 600_000;
    let b = block("flushed", 4, t0, 10);
    let all = keys_of(&b);
    write(&node, b).await;
    hold_for(
        Duration::from_secs(1),
        "the queue waiting for a full request",
    )
    .await;
    assert!(
        rx.samples().is_empty(),
        "nothing is sent before the request fills"
    );
    let started = std::time::Instant::now();
    let code =
        tokio::task::block_in_place(|| node.process.terminate(Duration::from_secs(30))).unwrap();
    assert_eq!(code, Some(0));
    let took = started.elapsed();
    let got: BTreeSet<_> = rx.tally().0.into_keys().collect();
    assert_eq!(got, all, "the queue was not flushed at shutdown");
    assert!(
        took < Duration::from_secs(10),
        "the flush waited for the request to fill: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_the_disk_bound_drop_samples_and_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 1000, batch_send_deadline: 50ms, min_backoff: 10ms, max_backoff: 50ms",
    );
    let node = start_node(
        dir.path(),
        &config,
        &["--remote-write.max-disk-usage-per-url", "2KB"],
    )
    .await;
    let t0 = now_ms() / 1000 * 1000 - 1_800_000;

    // A 400 is final: the samples are counted as failed, and the queue
    // moves on to what comes next.
    rx.set_status(400);
    write(&node, block("refused", 4, t0, 10)).await;
    eventually(DEADLINE, || async {
        let failed = metric(
            &node,
            "scrapegrid_storage_remote_write_failed_samples_total",
        )
        .await;
        (failed == 40.0).then_some(())
    })
    .await
    .unwrap();
    rx.set_status(204);
    let b = block("accepted", 4, t0, 10);
    let want = keys_of(&b);
    write(&node, b).await;
    eventually(DEADLINE, || async {
        (rx.samples().len() == 40).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(rx.tally().0.keys().cloned().collect::<BTreeSet<_>>(), want);

    // Down, with 20 writes of about 450 bytes waiting: past 2 KiB the
    // oldest are dropped and counted; the rest arrive.
    rx.set_status(503);
    let mut written = BTreeSet::new();
    for k in 0..20 {
        let b = block("bounded", 4, t0 + k * 10_000, 10);
        written.extend(keys_of(&b));
        write(&node, b).await;
    }
    eventually(DEADLINE, || async {
        let dropped = metric(
            &node,
            "scrapegrid_storage_remote_write_dropped_samples_total",
        )
        .await;
        (dropped > 0.0).then_some(())
    })
    .await
    .unwrap();
    rx.set_status(204);
    let arrived = |rx: &Receiver| -> BTreeSet<(String, i64)> {
        rx.tally()
            .0
            .into_keys()
            .filter(|(k, _)| k.contains("bounded"))
            .collect()
    };
    eventually(DEADLINE, || async {
        let dropped = metric(
            &node,
            "scrapegrid_storage_remote_write_dropped_samples_total",
        )
        .await;
        (arrived(&rx).len() as f64 + dropped == written.len() as f64).then_some(())
    })
    .await
    .unwrap();
    let got = arrived(&rx);
    assert!(got.is_subset(&written));
    // What arrived is the newest: every dropped sample is older.
    let oldest_arrived = got.iter().map(|(_, t)| *t).min().unwrap();
    let dropped_newest = written.difference(&got).map(|(_, t)| *t).max().unwrap();
    assert!(
        dropped_newest < oldest_arrived,
        "{dropped_newest} >= {oldest_arrived}"
    );
    let bytes = metric(&node, "scrapegrid_storage_remote_write_pending_bytes").await;
    assert!(bytes <= 2048.0, "{bytes} pending bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_more_shards_and_each_series_stays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    rx.set_delay(Duration::from_millis(40));
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 20, min_shards: 1, max_shards: 8, batch_send_deadline: 50ms",
    );
    let node = start_node(dir.path(), &config, &[]).await;
    let t0 = now_ms() / 1000 * 1000 - 3_600_000;
    let mut all = BTreeSet::new();
    // 60 writes of 16 series x 5 samples: 4,800 samples, 240 requests of
    // 20, 9.6 s one at a time.
    for k in 0..60 {
        let b = block("slow", 16, t0 + k * 5_000, 5);
        all.extend(keys_of(&b));
        write(&node, b).await;
    }
    let most = std::sync::Mutex::new(0.0f64);
    eventually(DEADLINE, || async {
        let shards = metric(&node, "scrapegrid_storage_remote_write_shards").await;
        let mut m = most.lock().unwrap();
        *m = m.max(shards);
        (rx.tally().0.len() == all.len()).then_some(())
    })
    .await
    .unwrap();
    let most_shards = *most.lock().unwrap();
    assert!(most_shards >= 4.0, "shards never grew past {most_shards}");
    let (count, unordered) = rx.tally();
    assert!(count.values().all(|&n| n == 1), "a sample arrived twice");
    assert!(unordered.is_empty(), "series out of order: {unordered:?}");
    // With the backlog gone the queue shrinks back.
    eventually(DEADLINE, || async {
        (metric(&node, "scrapegrid_storage_remote_write_shards").await < most_shards).then_some(())
    })
    .await
    .unwrap();
}

/// `remote_write` changes without a restart: SIGHUP moves the queue to a
/// new endpoint (which gets what is stored from then on; the old one gets
/// nothing more), and `POST /-/reload` of an invalid file answers 500 with
/// the file, field and reason and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_reloads_on_sighup_and_post() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Receiver::start().await.unwrap(),
        Receiver::start().await.unwrap(),
    );
    let queue = "batch_send_deadline: 50ms";
    let node = start_node(dir.path(), &recorder_config(&a.url, queue), &[]).await;
    let file = dir.path().join("storage.yml");
    let t0 = now_ms() / 1000 * 1000 - 600_000;
    write(&node, block("reload", 2, t0, 5)).await;
    eventually(DEADLINE, || async {
        (a.samples().len() == 10).then_some(())
    })
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let reload = |h: &reqwest::Client| h.post(format!("http://{}/-/reload", node.http)).send();
    let r = reload(&http).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("unchanged"));

    std::fs::write(
        &file,
        recorder_config(&b.url, queue).replace("name: recorder", "name: b"),
    )
    .unwrap();
    unsafe { libc::kill(node.process.pid(), libc::SIGHUP) };
    eventually(DEADLINE, || async {
        let text = reqwest::get(format!("http://{}/metrics", node.http))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("remote_name=\"b\"").then_some(())
    })
    .await
    .unwrap();
    write(&node, block("reload", 2, t0 + 10_000, 5)).await;
    eventually(DEADLINE, || async {
        (b.samples().len() == 10).then_some(())
    })
    .await
    .unwrap();
    assert!(
        b.samples().iter().all(|(_, t, _)| *t >= t0 + 10_000),
        "b got older samples"
    );
    assert_eq!(a.samples().len(), 10, "the removed endpoint got more");

    std::fs::write(&file, "remote_write:\n  - name: broken\n").unwrap();
    let r = reload(&http).await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("storage.yml")
            && text.contains("remote_write[0]")
            && text.contains("url for remote_write is empty"),
        "{text}"
    );
    write(&node, block("reload", 2, t0 + 20_000, 5)).await;
    eventually(DEADLINE, || async {
        (b.samples().len() == 20).then_some(())
    })
    .await
    .unwrap();
}
