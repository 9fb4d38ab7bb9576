//! The native-histogram part of the PromQL differential: a dataset of
//! native histogram series (remote-written, like [`super::Dataset`], to
//! Prometheus 2.42 with `--enable-feature=native-histograms` and to the
//! storage node) and the queries run against both.
//!
//! The series, 15 s apart over 50 minutes, cover what 2.42's arithmetic
//! distinguishes: integer histograms whose observations spread into new
//! buckets (new spans, gaps), negative buckets, a counter reset, a schema
//! that drops mid-way and a zero bucket that widens (so `rate` and `sum`
//! reconcile layouts), a float gauge histogram, a series that appears late
//! and goes stale, one that turns from floats into histograms, a native
//! histogram next to classic buckets of the same name and labels, and
//! histograms with all observations in the zero bucket or none at all.

use std::collections::BTreeMap;

use scrapegrid_common::xorshift::XorShift;
use scrapegrid_proto::prometheus as prom;

use super::{labels, Dataset, GenSeries, STALE_NAN, STEPS, STEP_MS};

/// Absolute bucket counts by index, per side: the state an instrumented
/// process keeps, turned into spans and deltas for each sample.
#[derive(Default, Clone)]
struct Counts {
    schema: i32,
    zero_threshold: f64,
    zero: u64,
    sum: f64,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
}

/// The index of the bucket of `v > 0` in `schema` (upper bounds inclusive).
fn bucket_index(v: f64, schema: i32) -> i32 {
    // The smallest i with base^i >= v, base = 2^(2^-schema).
    let l = v.log2() * 2f64.powi(schema);
    let mut i = l.ceil() as i32;
    // Guard the rounding at exact bounds.
    let bound = |i: i32| 2f64.powf(i as f64 / 2f64.powi(schema));
    while i > -2000 && bound(i - 1) >= v {
        i -= 1;
    }
    while bound(i) < v {
        i += 1;
    }
    i
}

impl Counts {
    fn new(schema: i32, zero_threshold: f64) -> Self {
        Self {
            schema,
            zero_threshold,
            ..Default::default()
        }
    }

    fn observe(&mut self, v: f64) {
        self.sum += v;
        if v.abs() <= self.zero_threshold {
            self.zero += 1;
        } else if v > 0.0 {
            *self
                .positive
                .entry(bucket_index(v, self.schema))
                .or_default() += 1;
        } else {
            *self
                .negative
                .entry(bucket_index(-v, self.schema))
                .or_default() += 1;
        }
    }

    fn count(&self) -> u64 {
        self.zero + self.positive.values().sum::<u64>() + self.negative.values().sum::<u64>()
    }

    /// Spans and absolute counts of one side; buckets in a span are
    /// consecutive (a gap of one empty bucket is kept as a zero, as
    /// client libraries do).
    fn side(m: &BTreeMap<i32, u64>) -> (Vec<prom::BucketSpan>, Vec<u64>) {
        let mut spans: Vec<prom::BucketSpan> = Vec::new();
        let mut counts = Vec::new();
        let mut last: Option<i32> = None;
        for (&i, &c) in m {
            match last {
                Some(l) if i - l <= 2 => {
                    counts.extend(std::iter::repeat_n(0, (i - l - 1) as usize));
                    spans.last_mut().unwrap().length += (i - l) as u32;
                }
                Some(l) => spans.push(prom::BucketSpan {
                    offset: i - l - 1,
                    length: 1,
                }),
                None => spans.push(prom::BucketSpan {
                    offset: i,
                    length: 1,
                }),
            }
            counts.push(c);
            last = Some(i);
        }
        (spans, counts)
    }

    fn deltas(counts: &[u64]) -> Vec<i64> {
        scrapegrid_common::histogram::deltas_of(counts.iter().map(|&c| c as i64))
    }

    /// The integer histogram message at `t`.
    fn int_histogram(&self, t: i64) -> prom::Histogram {
        let (ps, pc) = Self::side(&self.positive);
        let (ns, nc) = Self::side(&self.negative);
        prom::Histogram {
            count: Some(prom::histogram::Count::CountInt(self.count())),
            sum: self.sum,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: Some(prom::histogram::ZeroCount::ZeroCountInt(self.zero)),
            positive_spans: ps,
            positive_deltas: Self::deltas(&pc),
            negative_spans: ns,
            negative_deltas: Self::deltas(&nc),
            timestamp: t,
            ..Default::default()
        }
    }

    /// The float histogram message at `t`, every count scaled by `scale`.
    fn float_histogram(&self, t: i64, scale: f64, gauge: bool) -> prom::Histogram {
        let (ps, pc) = Self::side(&self.positive);
        let (ns, nc) = Self::side(&self.negative);
        let f = |c: Vec<u64>| c.into_iter().map(|c| c as f64 * scale).collect();
        prom::Histogram {
            count: Some(prom::histogram::Count::CountFloat(
                self.count() as f64 * scale,
            )),
            sum: self.sum * scale,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: Some(prom::histogram::ZeroCount::ZeroCountFloat(
                self.zero as f64 * scale,
            )),
            positive_spans: ps,
            positive_counts: f(pc),
            negative_spans: ns,
            negative_counts: f(nc),
            reset_hint: if gauge {
                prom::histogram::ResetHint::Gauge as i32
            } else {
                0
            },
            timestamp: t,
            ..Default::default()
        }
    }
}

/// A latency-like observation: log-normal-ish around `center`.
fn latency(r: &mut XorShift, center: f64) -> f64 {
    let u = (r.next_u64() % 10_000) as f64 / 10_000.0;
    center * (4.0 * u - 2.0).exp()
}

/// Generates the native dataset with step 0 at `t0` (ms).
pub fn generate(t0: i64) -> Dataset {
    let mut series = Vec::new();
    let mut rng = XorShift::new(0x5eed_4242);
    let at = |k: i64, jitter: i64| t0 + k * STEP_MS + jitter;
    let hist_series = |name: &str, pairs: &[(&str, &str)], histograms| GenSeries {
        labels: labels(name, pairs),
        samples: Vec::new(),
        histograms,
    };

    // i0: schema 3, positive buckets filling in, a reset at step 120.
    let mut c = Counts::new(3, 0.001);
    let mut hs = Vec::new();
    for k in 0..=STEPS {
        if k == 120 {
            c = Counts::new(3, 0.001);
        }
        for _ in 0..(3 + k % 5) {
            let v = latency(&mut rng, 0.2);
            c.observe(v);
        }
        if k % 17 == 0 {
            c.observe(0.0);
        }
        hs.push(c.int_histogram(at(k, 3)));
    }
    series.push(hist_series(
        "nh_latency_seconds",
        &[("job", "api"), ("instance", "i0")],
        hs,
    ));

    // i1: schema 0, negative and positive observations, a far bucket late.
    let mut c = Counts::new(0, 0.5);
    let mut hs = Vec::new();
    for k in 0..=STEPS {
        for j in 0..4 {
            let v = latency(&mut rng, 3.0);
            c.observe(if (k + j) % 3 == 0 { -v } else { v });
        }
        if k == 90 {
            c.observe(5000.0);
        }
        hs.push(c.int_histogram(at(k, 7)));
    }
    series.push(hist_series(
        "nh_latency_seconds",
        &[("job", "api"), ("instance", "i1")],
        hs,
    ));

    // i2: schema 2 dropping to 1 at step 100, zero bucket widening at 150.
    let mut c = Counts::new(2, 0.001);
    let mut obs: Vec<f64> = Vec::new();
    let mut hs = Vec::new();
    for k in 0..=STEPS {
        for _ in 0..3 {
            obs.push(latency(&mut rng, 0.05));
        }
        let (schema, zt) = match k {
            0..=99 => (2, 0.001),
            100..=149 => (1, 0.001),
            _ => (1, 0.02),
        };
        if schema != c.schema || zt != c.zero_threshold {
            // The process re-buckets everything it has seen.
            c = Counts::new(schema, zt);
            for &v in &obs {
                c.observe(v);
            }
        } else {
            for &v in &obs[obs.len() - 3..] {
                c.observe(v);
            }
        }
        hs.push(c.int_histogram(at(k, 11)));
    }
    series.push(hist_series(
        "nh_latency_seconds",
        &[("job", "batch"), ("instance", "i2")],
        hs,
    ));

    // A float gauge histogram that grows and shrinks.
    let mut base = Counts::new(1, 0.01);
    for _ in 0..40 {
        base.observe(latency(&mut rng, 1.0));
    }
    let hs = (0..=STEPS)
        .map(|k| {
            // Eighths keep every product exact, so the buckets add up to
            // the count exactly (2.42 refuses a count below their sum).
            let scale = 0.5 + ((k * 5) % 16) as f64 / 8.0;
            base.float_histogram(at(k, 5), scale, true)
        })
        .collect();
    series.push(hist_series("nh_queue_size", &[("job", "batch")], hs));

    // Appears at step 50, goes stale at step 140.
    let mut c = Counts::new(4, 0.001);
    let mut hs = Vec::new();
    for k in 50..140 {
        for _ in 0..2 {
            c.observe(latency(&mut rng, 0.01));
        }
        hs.push(c.int_histogram(at(k, 2)));
    }
    let mut late = hist_series("nh_late_seconds", &[("job", "api")], hs);
    late.samples.push((at(140, 2), f64::from_bits(STALE_NAN)));
    series.push(late);

    // Floats until step 100, histograms after.
    let mut c = Counts::new(0, 0.001);
    let mut mixed = hist_series("nh_mixed", &[("job", "api")], Vec::new());
    for k in 0..=STEPS {
        if k < 100 {
            mixed.samples.push((at(k, 4), k as f64));
        } else {
            c.observe(latency(&mut rng, 1.0));
            mixed.histograms.push(c.int_histogram(at(k, 4)));
        }
    }
    series.push(mixed);

    // A native histogram beside classic buckets of the same name and labels.
    let mut c = Counts::new(0, 0.001);
    let mut hs = Vec::new();
    for k in 0..=STEPS {
        c.observe(latency(&mut rng, 1.0));
        hs.push(c.int_histogram(at(k, 6)));
    }
    series.push(hist_series("nh_conflict", &[("job", "api")], hs));
    for (le, share) in [("0.5", 0.3), ("1", 0.6), ("+Inf", 1.0)] {
        series.push(GenSeries {
            labels: labels("nh_conflict", &[("job", "api"), ("le", le)]),
            samples: (0..=STEPS)
                .map(|k| (at(k, 6), (k as f64 * 4.0 * share).floor()))
                .collect(),
            histograms: Vec::new(),
        });
    }

    // Everything in the zero bucket; and no observations at all.
    let mut c = Counts::new(0, 0.001);
    let mut hs = Vec::new();
    for k in 0..=STEPS {
        c.observe(0.0);
        hs.push(c.int_histogram(at(k, 8)));
    }
    series.push(hist_series("nh_zero_only", &[("job", "api")], hs));
    let empty = Counts::new(0, 0.0);
    let hs = (0..=STEPS).map(|k| empty.int_histogram(at(k, 9))).collect();
    series.push(hist_series("nh_empty", &[("job", "api")], hs));

    Dataset { t0, series }
}

/// The queries over the native dataset.
pub fn corpus() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    let all = [
        "nh_latency_seconds",
        r#"nh_latency_seconds{instance="i1"}"#,
        r#"nh_latency_seconds{job="batch"}"#,
        "nh_queue_size",
        "nh_late_seconds",
        "nh_mixed",
        "nh_conflict",
        "nh_zero_only",
        "nh_empty",
    ];
    for s in all {
        q.push(s.to_string());
        q.push(format!("{s}[1m]"));
        for f in ["rate", "increase", "delta"] {
            for r in ["1m", "5m", "10m"] {
                q.push(format!("{f}({s}[{r}])"));
            }
        }
        for f in ["histogram_count", "histogram_sum"] {
            q.push(format!("{f}({s})"));
            q.push(format!("{f}(rate({s}[5m]))"));
        }
        for (lo, hi) in [
            ("0", "0.1"),
            ("-1", "1"),
            ("0.5", "0.25"),
            ("-Inf", "+Inf"),
            ("0", "+Inf"),
            ("-10", "0"),
            ("NaN", "1"),
            ("0.001", "0.002"),
        ] {
            q.push(format!("histogram_fraction({lo}, {hi}, {s})"));
        }
        q.push(format!("histogram_fraction(0.1, 1, rate({s}[5m]))"));
        for p in [
            "0", "0.01", "0.25", "0.5", "0.9", "0.99", "1", "-1", "2", "NaN",
        ] {
            q.push(format!("histogram_quantile({p}, {s})"));
        }
        q.push(format!("histogram_quantile(0.9, rate({s}[5m]))"));
        q.push(format!("sum({s})"));
        q.push(format!("sum(rate({s}[5m]))"));
        q.push(format!("histogram_quantile(0.5, sum(rate({s}[5m])))"));
        // Operations that read a histogram as its float value, 0.
        for e in [
            "count({s})",
            "avg({s})",
            "max({s})",
            "topk(1, {s})",
            "count_over_time({s}[5m])",
            "sum_over_time({s}[5m])",
            "last_over_time({s}[5m])",
            "resets({s}[5m])",
            "changes({s}[5m])",
            "irate({s}[5m])",
            "timestamp({s})",
            "abs({s})",
            "-{s}",
            "{s} * 2",
            "{s} > -1",
            "{s} + {s}",
            "{s} - {s}",
            "{s} and {s}",
            "{s} or vector(1)",
            "sort({s})",
            r#"label_replace({s}, "x", "$1", "job", "(.*)")"#,
            "{s} == bool 0",
        ] {
            q.push(e.replace("{s}", s));
        }
    }
    q.extend(
        [
            "sum by (job) (rate(nh_latency_seconds[5m]))",
            "sum without (instance) (nh_latency_seconds)",
            "histogram_quantile(0.99, sum by (job) (rate(nh_latency_seconds[5m])))",
            "histogram_quantile(0.5, sum by (job) (increase(nh_latency_seconds[10m])))",
            r#"sum({__name__=~"nh_latency_seconds|nh_mixed"})"#,
            r#"sum({__name__=~"nh_.*"})"#,
            r#"histogram_count(sum({__name__=~"nh_latency_seconds|nh_late_seconds"}))"#,
            "histogram_count(rate(nh_latency_seconds[5m])) / ignoring(instance) group_left sum(histogram_count(rate(nh_latency_seconds[5m])))",
            "histogram_sum(rate(nh_latency_seconds[5m])) / histogram_count(rate(nh_latency_seconds[5m]))",
            r#"nh_latency_seconds{instance="i0"} + ignoring(instance) nh_latency_seconds{instance="i1"}"#,
            r#"histogram_quantile(0.5, nh_latency_seconds{instance="i0"} + ignoring(instance) nh_latency_seconds{instance="i1"})"#,
            "rate(nh_latency_seconds[5m]) * 60",
            "max_over_time(histogram_count(nh_latency_seconds)[5m:1m])",
            "histogram_quantile(0.9, rate(nh_latency_seconds[5m] offset 10m))",
            "rate(nh_latency_seconds[5m:30s])",
            "sum(rate(nh_latency_seconds[1m])) by (job)",
            "absent(nh_latency_seconds)",
            // A histogram and a float matched: no result.
            r#"nh_conflict + ignoring(le) nh_conflict{le="1"}"#,
            r#"nh_conflict{le="1"} < ignoring(le) nh_conflict"#,
            r#"nh_conflict{le="1"} < bool ignoring(le) nh_conflict"#,
            "nh_mixed + nh_mixed",
            "nh_mixed / nh_mixed",
            r#"{__name__=~"nh_.*"}"#,
        ]
        .map(String::from),
    );
    q
}
