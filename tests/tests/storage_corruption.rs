//! A corrupted database is reported, never silently ignored (issue 17): a
//! storage node that stored acked batches is stopped, a byte in the middle
//! of its RocksDB write-ahead log is flipped, and the node started again
//! must refuse to start with an error that names the corruption, instead
//! of replaying up to the damage and dropping every acked batch after it
//! (RocksDB's default point-in-time recovery). A WAL whose tail is merely
//! cut short, as a crash leaves it, still opens: the storage crash tests
//! cover that.

use std::time::Duration;

use anyhow::{Context, Result};
use scrapegrid_proto::v1 as pb;
use scrapegrid_tests::storage::{batch, series, Stream};
use scrapegrid_tests::{bin, start_storage, Process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_wal_stops_the_storage_node_with_the_reason() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut node = start_storage(dir.path(), "storage-node").await?;
    let (mut stream, _) = Stream::open_at(&format!("http://{}", node.grpc), "s").await;
    for seq in 1..=40u64 {
        let defs = if seq == 1 {
            vec![series(1, &[("__name__", "m"), ("job", "j")])]
        } else {
            vec![]
        };
        let ack = stream
            .send(batch(
                seq,
                1_000 * seq as i64,
                defs,
                vec![1],
                vec![seq as f64],
            ))
            .await;
        assert_eq!(ack.status, pb::AckStatus::Applied as i32);
    }
    drop(stream);
    let code = node.process.terminate(Duration::from_secs(30))?;
    assert_eq!(code, Some(0));

    // Flip a byte in the middle of the largest WAL file.
    let data = dir.path().join("data");
    let wal = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .context("a WAL file")?;
    let mut bytes = std::fs::read(&wal)?;
    assert!(
        bytes.len() > 1024,
        "{} is {} bytes",
        wal.display(),
        bytes.len()
    );
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&wal, &bytes)?;

    let mut again = Process::spawn(
        "storage-node-again",
        &bin("storage-node"),
        &node.args,
        dir.path(),
    )?;
    let code = again.wait_exit(Duration::from_secs(15))?;
    let log = again.log();
    assert_ne!(code, Some(0), "it must not start on a corrupted WAL: {log}");
    assert!(log.contains("Corruption"), "the reason: {log}");
    assert!(
        log.contains(&data.display().to_string()),
        "the data directory: {log}"
    );
    Ok(())
}
