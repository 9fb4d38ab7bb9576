//! Prints what samples and the series index cost at rest: it writes S series
//! × N samples through the real writer (one batch per target scrape, as a
//! scraper sends them), runs the compactor, compacts every column family
//! with RocksDB and reads the SST sizes.
//!
//! The series are shaped like a node exporter: CPU-seconds counters,
//! byte counters, idle error counters, gauges, and histogram buckets,
//! scraped every 15s with 0-4 ms of timestamp jitter per scrape, with a
//! stale marker now and then.
//!
//! Run with `cargo run --release -p storage-node --example disk_usage`.

use std::sync::Arc;
use std::time::Duration;

use scrapegrid_common::xorshift::XorShift as Rng;
use scrapegrid_common::{CompactLabels, Labels};
use storage_node::batch::{Batch, Sample};
use storage_node::compactor::{compact_once, CompactorConfig};
use storage_node::db::Db;
use storage_node::{keys, writer};
use tokio_util::sync::CancellationToken;

const TARGETS: usize = 10;
const SERIES_PER_TARGET: usize = 90;
const INTERVAL_MS: i64 = 15_000;
const START_MS: i64 = 1_700_000_000_000;

/// How a series moves from one scrape to the next.
#[derive(Clone, Copy)]
enum Shape {
    /// CPU seconds: +15s × utilisation, rounded to 10ms like /proc/stat.
    CpuSeconds(f64),
    /// Bytes: integer increments around a rate.
    Bytes(u64),
    /// Errors: rarely moves.
    Idle,
    /// Memory in bytes, moving by pages.
    MemoryGauge,
    /// Load average, two decimals.
    LoadGauge,
    /// A cumulative histogram bucket: its share of requests.
    Bucket(f64),
}

/// A metric name, its extra labels, and its shape.
type SeriesShape = (String, Vec<(&'static str, String)>, Shape);

fn shapes() -> Vec<SeriesShape> {
    let mut out = Vec::new();
    for cpu in 0..4 {
        for (mode, util) in [
            ("user", 0.2),
            ("system", 0.05),
            ("idle", 0.7),
            ("iowait", 0.01),
            ("irq", 0.001),
        ] {
            out.push((
                "node_cpu_seconds_total".into(),
                vec![("cpu", cpu.to_string()), ("mode", mode.to_string())],
                Shape::CpuSeconds(util),
            ));
        }
    }
    for dev in [
        "eth0", "eth1", "lo", "docker0", "veth1", "veth2", "veth3", "veth4", "veth5", "veth6",
    ] {
        for (name, rate) in [
            ("node_network_receive_bytes_total", 2_000_000),
            ("node_network_transmit_bytes_total", 500_000),
        ] {
            out.push((
                name.into(),
                vec![("device", dev.to_string())],
                Shape::Bytes(rate),
            ));
        }
    }
    for dev in [
        "eth0", "eth1", "lo", "docker0", "veth1", "veth2", "veth3", "veth4", "veth5", "veth6",
    ] {
        out.push((
            "node_network_receive_errs_total".into(),
            vec![("device", dev.to_string())],
            Shape::Idle,
        ));
    }
    for name in [
        "node_memory_Active_bytes",
        "node_memory_Cached_bytes",
        "node_memory_MemFree_bytes",
        "node_memory_Buffers_bytes",
        "node_memory_Dirty_bytes",
    ] {
        out.push((name.into(), vec![], Shape::MemoryGauge));
    }
    for name in [
        "node_load1",
        "node_load5",
        "node_load15",
        "node_procs_running",
        "node_entropy_available_bits",
    ] {
        out.push((name.into(), vec![], Shape::LoadGauge));
    }
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    let shares = [0.1, 0.3, 0.55, 0.75, 0.88, 0.95, 0.98, 0.995, 0.999, 1.0];
    for handler in ["/api", "/metrics", "/health"] {
        for (le, share) in les.iter().zip(shares) {
            out.push((
                "http_request_duration_seconds_bucket".into(),
                vec![("handler", handler.to_string()), ("le", le.to_string())],
                Shape::Bucket(share),
            ));
        }
    }
    assert_eq!(out.len(), SERIES_PER_TARGET);
    out
}

/// One run's numbers.
struct Usage {
    samples: u64,
    series: u64,
    head_bytes: u64,
    chunk_bytes: u64,
    chunk_payload: u64,
    index_bytes: u64,
}

async fn run(n: usize, chunk_target: usize, compact: bool) -> Usage {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path()).expect("open"));
    let (w, thread) = writer::spawn(db.clone()).expect("writer");
    let shapes = shapes();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut states: Vec<Vec<f64>> = vec![vec![0.0; SERIES_PER_TARGET]; TARGETS];
    let series: Vec<Vec<Arc<CompactLabels>>> = (0..TARGETS)
        .map(|t| {
            shapes
                .iter()
                .map(|(name, extra, _)| {
                    let instance = format!("host-{t}.example.org:9100");
                    let mut pairs: Vec<(&str, &str)> =
                        vec![("__name__", name), ("instance", &instance), ("job", "node")];
                    pairs.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                    Arc::new(CompactLabels::from(Labels::from_pairs(pairs)))
                })
                .collect()
        })
        .collect();
    let scraper: Arc<str> = "disk-usage".into();
    let mut seq = 0;
    let mut pending = Vec::new();
    for i in 0..n {
        for (target, state) in states.iter_mut().enumerate() {
            // Each target keeps its phase; each scrape a little jitter.
            let t = START_MS + i as i64 * INTERVAL_MS + target as i64 * 1_301 + rng.below(5) as i64;
            let requests = 50.0 + rng.below(100) as f64;
            let samples = shapes
                .iter()
                .enumerate()
                .map(|(j, (_, _, shape))| {
                    let v = &mut state[j];
                    *v = match *shape {
                        Shape::CpuSeconds(u) => {
                            ((*v + 15.0 * u * (0.5 + rng.unit())) * 100.0).round() / 100.0
                        }
                        Shape::Bytes(rate) => *v + (rate / 2 + rng.below(rate)) as f64 * 15.0,
                        Shape::Idle => *v + if rng.below(200) == 0 { 1.0 } else { 0.0 },
                        Shape::MemoryGauge => {
                            let base = if *v == 0.0 { 4e9 } else { *v };
                            base + (rng.below(2001) as f64 - 1000.0) * 4096.0
                        }
                        Shape::LoadGauge => (rng.unit() * 400.0).round() / 100.0,
                        Shape::Bucket(share) => *v + (requests * share).floor(),
                    };
                    // A target restart now and then: stale markers.
                    let value = if i % 500 == 499 && target == 0 {
                        scrapegrid_proto::stale_marker()
                    } else {
                        *v
                    };
                    Sample {
                        series: j as u32,
                        ts_ms: t,
                        value,
                    }
                })
                .collect();
            seq += 1;
            let batch = Batch {
                sequence: seq,
                target_id: format!("target-{target}"),
                target_generation: 1,
                timestamp_ms: t,
                series: series[target].iter().cloned().map(Into::into).collect(),
                samples,
                handover: None,
                exemplars: Vec::new(),
                histograms: Vec::new(),
            };
            pending.push(w.submit(scraper.clone(), batch).await.expect("submit"));
        }
        if pending.len() >= 512 {
            for rx in pending.drain(..) {
                rx.await.expect("ack").expect("applied");
            }
        }
    }
    for rx in pending.drain(..) {
        rx.await.expect("ack").expect("applied");
    }
    drop(w);
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        thread.join().expect("writer");
        if compact {
            let config = CompactorConfig {
                chunk_target,
                ..CompactorConfig::default()
            };
            let now = START_MS + (n as i64 + 1) * INTERVAL_MS + 2 * 3_600_000;
            compact_once(&db2, &config, now, &CancellationToken::new()).expect("compact");
        }
        db2.compact_fully().expect("compact fully");
    })
    .await
    .expect("compaction");

    let sst = |cf| db.sst_bytes(cf).expect("sst size");
    let chunk_payload = db
        .raw()
        .iterator_cf(db.cf(keys::CF_CHUNKS), rocksdb::IteratorMode::Start)
        .map(|kv| kv.expect("chunk").1.len() as u64)
        .sum();
    Usage {
        samples: (n * TARGETS * SERIES_PER_TARGET) as u64,
        series: (TARGETS * SERIES_PER_TARGET) as u64,
        head_bytes: sst(keys::CF_SAMPLES),
        chunk_bytes: sst(keys::CF_CHUNKS),
        chunk_payload,
        index_bytes: sst(keys::CF_SERIES) + sst(keys::CF_SERIES_BY_LABELS) + sst(keys::CF_POSTINGS),
    }
}

#[tokio::main]
async fn main() {
    println!(
        "{:>6} {:>7} {:>6} {:>12} {:>12} {:>12} {:>14} {:>14} {:>16}",
        "N",
        "target",
        "mode",
        "samples",
        "head SST",
        "chunks SST",
        "bytes/sample",
        "chunk value/s",
        "index B/series"
    );
    let runs = [
        (120, 120, false),
        (120, 120, true),
        (1000, 120, true),
        (1000, 240, true),
        (1000, 1000, true),
    ];
    for (n, target, compact) in runs {
        let u = run(n, target, compact).await;
        let per_sample = (u.head_bytes + u.chunk_bytes) as f64 / u.samples as f64;
        println!(
            "{:>6} {:>7} {:>6} {:>12} {:>12} {:>12} {:>14.3} {:>14.3} {:>16.1}",
            n,
            target,
            if compact { "chunks" } else { "head" },
            u.samples,
            u.head_bytes,
            u.chunk_bytes,
            per_sample,
            u.chunk_payload as f64 / u.samples as f64,
            u.index_bytes as f64 / u.series as f64,
        );
    }
    // Let RocksDB's background threads settle before exit.
    tokio::time::sleep(Duration::from_millis(10)).await;
}
