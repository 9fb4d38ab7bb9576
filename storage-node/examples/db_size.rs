//! Measures a stopped storage node's data directory at rest, for
//! `bench/storage-vs-prometheus.sh`.
//!
//! Runs the compactor over everything older than two minutes before the newest
//! sample (what a running node would have compacted by then), flushes every
//! column family and forces a full RocksDB compaction (so deleted head keys no
//! longer count), then prints one line:
//! `samples=… series=… bytes_per_sample=… index_bytes_per_series=…`
//! where bytes per sample are the samples + chunks column families' SST bytes
//! over the samples stored, and index bytes per series are the series,
//! series_by_labels and postings column families' SST bytes over the series.
//!
//! ```text
//! db_size --data-dir DIR
//! ```

use std::path::PathBuf;

use storage_node::compactor::{compact_once, CompactorConfig};
use storage_node::db::Db;
use storage_node::keys;
use storage_node::samples::SampleReader;
use tokio_util::sync::CancellationToken;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = match (args.next().as_deref(), args.next()) {
        (Some("--data-dir"), Some(d)) => PathBuf::from(d),
        _ => panic!("usage: db_size --data-dir DIR"),
    };
    let db = Db::open(&dir).expect("open the data directory (is the node stopped?)");

    // Every series and its samples, counted through the public read path.
    let mut series = 0u64;
    let mut samples = 0u64;
    let mut newest = i64::MIN;
    {
        let reader = SampleReader::new(&db);
        let it = db
            .raw()
            .iterator_cf(db.cf(keys::CF_SERIES), rocksdb::IteratorMode::Start);
        for kv in it {
            let (k, _) = kv.expect("series key");
            let id = u64::from_be_bytes(k[..8].try_into().expect("series id key"));
            let s = reader.read(id, i64::MIN, i64::MAX).expect("read series");
            series += 1;
            samples += s.len() as u64;
            if let Some(last) = s.last() {
                newest = newest.max(last.t);
            }
        }
    }

    let config = CompactorConfig::default();
    let now = newest.saturating_add(config.head_window.as_millis() as i64);
    compact_once(&db, &config, now, &CancellationToken::new()).expect("compact");
    db.compact_fully().expect("compact fully");
    let sst = |cf| db.sst_bytes(cf).expect("sst size");
    let sample_bytes = sst(keys::CF_SAMPLES) + sst(keys::CF_CHUNKS);
    let index_bytes =
        sst(keys::CF_SERIES) + sst(keys::CF_SERIES_BY_LABELS) + sst(keys::CF_POSTINGS);
    println!(
        "samples={samples} series={series} bytes_per_sample={:.3} index_bytes_per_series={:.1}",
        sample_bytes as f64 / samples.max(1) as f64,
        index_bytes as f64 / series.max(1) as f64
    );
}
