//! Prints how many bytes per sample [`storage_node::chunk`] takes for
//! synthetic series shaped like real scrapes: counters, gauges and histogram
//! buckets, scraped every 15s, with timestamps on the grid and with ±5ms of
//! scrape jitter, at 120 and 1000 samples per chunk.
//!
//! Run with `cargo run -p storage-node --example chunk_size`.

use scrapegrid_common::xorshift::XorShift as Rng;
use storage_node::chunk::{decode_all, ChunkEncoder};

const INTERVAL_MS: i64 = 15_000;
const START_MS: i64 = 1_700_000_000_000;

/// The value of sample `i` of a series, given the previous value.
type Shape = fn(&mut Rng, usize, f64) -> f64;

const SHAPES: &[(&str, Shape)] = &[
    ("counter, errors (+1 on a quarter of scrapes)", |r, _, v| {
        v + if r.range(0, 3) == 0 { 1.0 } else { 0.0 }
    }),
    ("counter, idle (+0..=1 per scrape)", |r, _, v| {
        v + r.range(0, 1) as f64
    }),
    ("counter, slow (+0..=3 per scrape)", |r, _, v| {
        v + r.range(0, 3) as f64
    }),
    ("counter, busy (+100..=300 per scrape)", |r, _, v| {
        v + r.range(100, 300) as f64
    }),
    ("counter, cpu seconds (+0.01..0.5)", |r, _, v| {
        v + (r.range(1, 50) as f64) / 100.0
    }),
    ("counter with a reset halfway", |r, i, v| {
        if i == 500 || i == 60 {
            0.0
        } else {
            v + r.range(0, 3) as f64
        }
    }),
    ("gauge, constant", |_, _, _| 1.0),
    ("gauge, memory bytes (4 KiB pages)", |r, _, v| {
        (v + (r.range(-64, 64) * 4096) as f64).max(0.0)
    }),
    ("gauge, temperature (random float)", |r, _, _| {
        20.0 + r.unit() * 5.0
    }),
    (
        "histogram bucket le=0.1 (90% of 0..=4/scrape)",
        |r, _, v| v + (r.range(0, 4) as f64 * 0.9).round(),
    ),
    ("histogram bucket le=+Inf (0..=4/scrape)", |r, _, v| {
        v + r.range(0, 4) as f64
    }),
    ("histogram bucket le=10 (rarely changes)", |r, _, v| {
        v + if r.range(0, 99) == 0 { 1.0 } else { 0.0 }
    }),
    ("histogram _sum (float seconds)", |r, _, v| {
        v + r.range(0, 4) as f64 * r.unit() * 0.2
    }),
];

fn bytes_per_sample(shape: Shape, samples: usize, jitter_ms: i64) -> f64 {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut enc = ChunkEncoder::new();
    let mut v = 1234.0;
    let mut expected = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = START_MS + i as i64 * INTERVAL_MS + rng.range(-jitter_ms, jitter_ms);
        v = shape(&mut rng, i, v);
        enc.append(t, v).expect("timestamps increase");
        expected.push((t, v));
    }
    let bytes = enc.finish();
    let decoded = decode_all(&bytes).expect("chunk decodes");
    let same = |(a, b): (&(i64, f64), &(i64, f64))| a.0 == b.0 && a.1.to_bits() == b.1.to_bits();
    assert!(decoded.len() == expected.len() && decoded.iter().zip(&expected).all(same));
    bytes.len() as f64 / samples as f64
}

fn main() {
    println!("bytes/sample, 15s interval; jitter is uniform in ±5ms around the grid");
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>9}",
        "series", "120", "120 ±5ms", "1000", "1000 ±5ms"
    );
    for (name, shape) in SHAPES {
        println!(
            "{:<48} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            bytes_per_sample(*shape, 120, 0),
            bytes_per_sample(*shape, 120, 5),
            bytes_per_sample(*shape, 1000, 0),
            bytes_per_sample(*shape, 1000, 5),
        );
    }
}
