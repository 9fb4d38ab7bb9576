//! Prints what native histogram samples cost at rest: it writes S series ×
//! N samples through the real writer (one batch per target scrape), each a
//! latency histogram of schema 3 whose observations spread over 20-40
//! buckets and grow every 15 s, compacts the `histograms` column family and
//! reads its SST size; then writes the same observations as classic
//! histograms (12 `le` buckets, `_sum`, `_count` as float series) for
//! comparison.
//!
//! Run with `cargo run --release -p storage-node --example histogram_disk_usage`.

use std::collections::BTreeMap;
use std::sync::Arc;

use scrapegrid_common::histogram;
use scrapegrid_common::xorshift::XorShift as Rng;
use scrapegrid_common::{CompactLabels, Labels};
use scrapegrid_proto::prometheus as rw;
use storage_node::batch::{Batch, BatchHistogram, Sample};
use storage_node::compactor::{compact_once, CompactorConfig};
use storage_node::db::Db;
use storage_node::{keys, writer};
use tokio_util::sync::CancellationToken;

const TARGETS: usize = 10;
const SERIES_PER_TARGET: usize = 10;
const SCRAPES: usize = 1000;
const INTERVAL_MS: i64 = 15_000;
const START_MS: i64 = 1_700_000_000_000;
const CLASSIC_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One series' observations so far.
#[derive(Default, Clone)]
struct State {
    buckets: BTreeMap<i32, i64>,
    zero: u64,
    count: u64,
    sum: f64,
    classic: [u64; 12],
}

impl State {
    fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        if v <= 1e-9 {
            self.zero += 1;
        } else {
            // Schema 3: 8 buckets per power of two.
            let i = (v.log2() * 8.0).ceil() as i32;
            *self.buckets.entry(i).or_default() += 1;
        }
        let k = CLASSIC_BOUNDS.iter().position(|&b| v <= b).unwrap_or(11);
        for c in &mut self.classic[k..] {
            *c += 1;
        }
    }

    fn histogram(&self, t: i64) -> rw::Histogram {
        let (spans, counts) = histogram::spans_of(self.buckets.iter().map(|(&i, &c)| (i, c)));
        let deltas = histogram::deltas_of(counts);
        rw::Histogram {
            count: Some(rw::histogram::Count::CountInt(self.count)),
            sum: self.sum,
            schema: 3,
            zero_threshold: 1e-9,
            zero_count: Some(rw::histogram::ZeroCount::ZeroCountInt(self.zero)),
            positive_spans: spans,
            positive_deltas: deltas,
            timestamp: t,
            ..Default::default()
        }
    }
}

fn latency(rng: &mut Rng) -> f64 {
    // Log-uniform over about 1 ms to 4 s.
    0.001 * (rng.unit() * 12.0).exp2()
}

struct Usage {
    samples: u64,
    sst: u64,
    payload: u64,
    buckets: u64,
}

async fn run(native: bool) -> Usage {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path()).expect("open"));
    let (w, thread) = writer::spawn(db.clone()).expect("writer");
    let mut rng = Rng::new(0x5151_4242);
    let mut states = vec![vec![State::default(); SERIES_PER_TARGET]; TARGETS];
    let labels = |t: usize, s: usize, suffix: &str, le: Option<String>| {
        let name = format!("http_request_duration_seconds{suffix}");
        let instance = format!("host-{t}:8080");
        let handler = format!("/api/{s}");
        let mut pairs = vec![
            ("__name__", name.as_str()),
            ("handler", handler.as_str()),
            ("instance", instance.as_str()),
            ("job", "api"),
        ];
        if let Some(le) = &le {
            pairs.push(("le", le.as_str()));
        }
        Arc::new(CompactLabels::from(Labels::from_pairs(pairs)))
    };
    let series: Vec<Vec<Arc<CompactLabels>>> = (0..TARGETS)
        .map(|t| {
            (0..SERIES_PER_TARGET)
                .flat_map(|s| {
                    if native {
                        vec![labels(t, s, "", None)]
                    } else {
                        let mut v: Vec<_> = CLASSIC_BOUNDS
                            .iter()
                            .map(|b| labels(t, s, "_bucket", Some(b.to_string())))
                            .collect();
                        v.push(labels(t, s, "_bucket", Some("+Inf".into())));
                        v.push(labels(t, s, "_sum", None));
                        v.push(labels(t, s, "_count", None));
                        v
                    }
                })
                .collect()
        })
        .collect();
    let (mut payload, mut buckets, mut samples) = (0u64, 0u64, 0u64);
    let scraper: Arc<str> = "histogram-disk-usage".into();
    let mut seq = 0;
    let mut pending = Vec::new();
    for i in 0..SCRAPES {
        for (target, state) in states.iter_mut().enumerate() {
            let t = START_MS + i as i64 * INTERVAL_MS + target as i64 * 1_301 + rng.below(5) as i64;
            let mut histograms = Vec::new();
            let mut floats = Vec::new();
            for (s, st) in state.iter_mut().enumerate() {
                for _ in 0..(5 + rng.below(20)) {
                    st.observe(latency(&mut rng));
                }
                if native {
                    let h = st.histogram(t);
                    payload += keys::encode_histogram_value(&h).len() as u64;
                    buckets += h.positive_deltas.len() as u64;
                    samples += 1;
                    histograms.push(BatchHistogram {
                        series: s as u32,
                        histogram: h,
                    });
                } else {
                    let base = (s * 14) as u32;
                    for (k, &c) in st.classic.iter().enumerate() {
                        floats.push(Sample {
                            series: base + k as u32,
                            ts_ms: t,
                            value: c as f64,
                        });
                    }
                    floats.push(Sample {
                        series: base + 12,
                        ts_ms: t,
                        value: st.sum,
                    });
                    floats.push(Sample {
                        series: base + 13,
                        ts_ms: t,
                        value: st.count as f64,
                    });
                    samples += 1;
                    buckets += 12;
                }
            }
            seq += 1;
            let batch = Batch {
                sequence: seq,
                target_id: format!("target-{target}"),
                target_generation: 1,
                timestamp_ms: t,
                series: series[target].iter().cloned().map(Into::into).collect(),
                samples: floats,
                handover: None,
                exemplars: Vec::new(),
                histograms,
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
        let now = START_MS + (SCRAPES as i64 + 1) * INTERVAL_MS + 2 * 3_600_000;
        compact_once(
            &db2,
            &CompactorConfig::default(),
            now,
            &CancellationToken::new(),
        )
        .expect("compact");
        db2.compact_fully().expect("compact fully");
    })
    .await
    .expect("compaction");
    let sst = |cf| db.sst_bytes(cf).expect("sst size");
    Usage {
        samples,
        sst: sst(keys::CF_HISTOGRAMS) + sst(keys::CF_SAMPLES) + sst(keys::CF_CHUNKS),
        payload,
        buckets,
    }
}

#[tokio::main]
async fn main() {
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>14} {:>14}",
        "kind", "samples", "SST bytes", "B/histogram", "B/bucket", "value B/hist"
    );
    for native in [true, false] {
        let u = run(native).await;
        println!(
            "{:>8} {:>10} {:>12} {:>14.2} {:>14.3} {:>14.2}",
            if native { "native" } else { "classic" },
            u.samples,
            u.sst,
            u.sst as f64 / u.samples as f64,
            u.sst as f64 / u.buckets as f64,
            u.payload as f64 / u.samples as f64,
        );
    }
}
