//! Parse benchmark (issue 3): MB/s, samples/s and ns/sample of the three
//! [`Parser`] formats on the same realistic 2,000-sample body.
//!
//! The body is generated in `parse/bodies.rs`, node_exporter /
//! client_golang shaped: Go and process metrics, a GC summary,
//! `node_cpu_seconds_total` per CPU and mode, network and disk counters,
//! filesystem gauges with escaped mount points, systemd units with `\x2d` in
//! their names, two request histograms with 10 buckets, an RPC summary,
//! label-heavy `kube_pod_info`-like series and `node_interrupts_total`. Each
//! metric is rendered three ways (`parse/render.rs`), as client_golang 1.14
//! writes them: text 0.0.4, OpenMetrics 1.0 (counter families without
//! `_total`, `# EOF`) and length-delimited protobuf `MetricFamily` messages
//! (no `+Inf` bucket, labels sorted).
//!
//! Per format it measures two paths, as a scrape uses the parser
//! (`src/scrape/state.rs`):
//! - steady state: iterate every entry and touch each sample's series text
//!   (the cache key) and value, as a scrape whose series are all cached;
//! - cold: the same plus [`Sample::labels`] for every sample, as a scrape
//!   whose series are all new.
//!
//! A format whose body fails to parse is reported as "not available".
//! Timing: a warm-up, then the median of [`RUNS`] runs of about
//! [`RUN_TARGET`] each, per parse.
//!
//! ```text
//! cargo bench -p scraper-node --bench parse
//! cargo bench -p scraper-node --bench parse -- --write-bodies DIR
//! ```
//!
//! `--write-bodies DIR` writes the bodies to `DIR/text`, `DIR/openmetrics`
//! and `DIR/protobuf`, lists in `DIR/available` the formats that parse to
//! the expected samples, and measures nothing (`bench/scrape-vs-prometheus.sh`
//! serves these bodies to Prometheus and scrapegrid).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use scraper_node::textparse::{Entry, Format, Parser, Sample};

#[path = "parse/bodies.rs"]
mod bodies;
#[path = "parse/render.rs"]
mod render;
use bodies::families;
use render::{render_openmetrics, render_protobuf, render_text};

/// Samples in the generated body.
const SAMPLES: usize = 2_000;
/// Timed runs per format and path; the median is reported.
const RUNS: usize = 31;
/// Wall time of one timed run (enough parses to fill it).
const RUN_TARGET: Duration = Duration::from_millis(20);
/// Warm-up before the timed runs of each format and path.
const WARMUP: Duration = Duration::from_millis(300);

fn main() {
    let families = families();
    let bodies = [
        ("text", Format::PrometheusText, render_text(&families)),
        (
            "openmetrics",
            Format::OpenMetrics,
            render_openmetrics(&families),
        ),
        ("protobuf", Format::Protobuf, render_protobuf(&families)),
    ];
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-bodies") {
        let dir = args.get(i + 1).expect("--write-bodies DIR");
        write_bodies(Path::new(dir), &bodies);
        return;
    }

    println!(
        "parse benchmark: one {SAMPLES}-sample body (node_exporter/client_golang shaped) \
         in three formats, median of {RUNS} runs"
    );
    println!("steady = iterate entries, touch series and value; cold = also Sample::labels()\n");
    println!(
        "{:<12} {:>8} {:>7} | {:>8} {:>11} {:>9} | {:>8} {:>11} {:>9}",
        "", "", "", "steady", "", "", "cold", "", ""
    );
    println!(
        "{:<12} {:>8} {:>7} | {:>8} {:>11} {:>9} | {:>8} {:>11} {:>9}",
        "format",
        "bytes",
        "samples",
        "MB/s",
        "samples/s",
        "ns/sample",
        "MB/s",
        "samples/s",
        "ns/sample"
    );
    for (name, format, body) in &bodies {
        let samples = match parse(*format, body, true) {
            Ok(n) => n,
            Err(e) => {
                println!("{name:<12} {:>8} not available ({e})", body.len());
                continue;
            }
        };
        let mut row = format!("{name:<12} {:>8} {samples:>7}", body.len());
        for cold in [false, true] {
            let per_parse = measure(*format, body, cold).as_secs_f64();
            let _ = write!(
                row,
                " | {:>8.1} {:>11.0} {:>9.1}",
                body.len() as f64 / per_parse / 1e6,
                samples as f64 / per_parse,
                per_parse * 1e9 / samples as f64,
            );
        }
        println!("{row}");
    }
}

/// Parses `body` once; returns the number of samples.
fn parse(format: Format, body: &[u8], cold: bool) -> Result<usize, String> {
    let mut parser = Parser::new(format, black_box(body));
    let mut samples = 0;
    while let Some(entry) = parser.next_entry().map_err(|e| e.to_string())? {
        if let Entry::Sample(s) = entry {
            touch(&s, cold);
            samples += 1;
        }
    }
    Ok(samples)
}

fn touch(s: &Sample<'_>, cold: bool) {
    black_box(s.series.as_ref());
    black_box(s.value);
    if cold {
        black_box(s.labels());
    }
}

/// Returns the median time of one parse.
fn measure(format: Format, body: &[u8], cold: bool) -> Duration {
    let start = Instant::now();
    let mut parses = 0u32;
    while start.elapsed() < WARMUP {
        let _ = black_box(parse(format, body, cold));
        parses += 1;
    }
    let per_parse = start.elapsed() / parses.max(1);
    let iters = (RUN_TARGET.as_nanos() / per_parse.as_nanos().max(1)).max(1) as u32;
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                let _ = black_box(parse(format, body, cold));
            }
            t.elapsed() / iters
        })
        .collect();
    runs.sort();
    runs[RUNS / 2]
}

fn write_bodies(dir: &Path, bodies: &[(&str, Format, Vec<u8>)]) {
    std::fs::create_dir_all(dir).expect("create the bodies directory");
    let mut available = String::new();
    for (name, format, body) in bodies {
        std::fs::write(dir.join(name), body).expect("write a body");
        match parse(*format, body, true) {
            Ok(n) if n == SAMPLES => available.push_str(&format!("{name}\n")),
            Ok(n) => eprintln!("{name}: {n} samples parsed, {SAMPLES} expected"),
            Err(e) => eprintln!("{name}: not available ({e})"),
        }
    }
    std::fs::write(dir.join("available"), available).expect("write the available list");
}
