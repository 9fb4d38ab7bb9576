//! Property tests: random families encoded with prost parse to exactly the
//! samples 2.42 yields for them; truncated bodies yield a prefix of those
//! entries, then an error; corrupted bodies and garbage never panic. A small
//! seeded generator keeps failures reproducible.

use super::*;
use scrapegrid_common::xorshift::XorShift as Rng;

/// Any f64, specials and odd NaNs included.
fn float(rng: &mut Rng) -> f64 {
    match rng.index(6) {
        0 => f64::from_bits(rng.next_u64()),
        1 => *rng.pick(&[
            0.0,
            -0.0,
            1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0,
        ]),
        2 => f64::from_bits(0x7ff0_0000_0000_0000 | (rng.next_u64() >> 12 | 1)),
        _ => (rng.next_u64() % 100_000) as f64 / 8.0,
    }
}

/// Bounds with Go's `formatOpenMetricsFloat` spelling.
const BOUNDS: &[(f64, &str)] = &[
    (-0.5, "-0.5"),
    (0.0, "0.0"),
    (1e-05, "1e-05"),
    (0.005, "0.005"),
    (0.25, "0.25"),
    (1.0, "1.0"),
    (2.5, "2.5"),
    (100.0, "100.0"),
    (123456.0, "123456.0"),
    (1e6, "1e+06"),
    (3.5e9, "3.5e+09"),
];
const VALUE_CHARS: &[&str] = &[
    "a", "\\", "\"", "\n", "}", "{", ",", "=", " ", "é", "\t", "#", "\r", "0", "✓", "\\n",
];
const LABEL_NAMES: &[&str] = &["a", "job", "_x", "instance", "le_x", "A9", "quantiles"];

/// One expected sample: labels, value bits, timestamp, exemplar.
type Want = (Labels, u64, Option<i64>, Option<WantExemplar>);

/// An exemplar with its value as bits, so that NaNs compare.
type WantExemplar = (Labels, u64, Option<i64>);

fn exemplar_bits(e: Exemplar) -> WantExemplar {
    (e.labels, wire_bits(e.value), e.timestamp_ms)
}

/// Returns the bits of `v` as it comes back from the wire: proto3 does not
/// encode a zero double, so -0.0 is read back as 0.0 (by Prometheus too).
fn wire_bits(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

/// Returns a random family and what 2.42 yields for it (samples only; HELP
/// and TYPE are checked by position).
fn random_family(rng: &mut Rng, index: usize) -> (pb::MetricFamily, Vec<Want>) {
    let types = [
        T::Counter,
        T::Gauge,
        T::Summary,
        T::Untyped,
        T::Histogram,
        T::GaugeHistogram,
    ];
    let ty = *rng.pick(&types);
    let name = format!("m{index}_{}:x", rng.index(1000));
    let mut metrics = Vec::new();
    let mut want = Vec::new();
    for _ in 0..rng.index(4) {
        let mut names: Vec<&str> = LABEL_NAMES.to_vec();
        let mut user = Vec::new();
        for _ in 0..rng.index(4) {
            let n = names.remove(rng.index(names.len()));
            let v: String = (0..rng.index(6)).map(|_| *rng.pick(VALUE_CHARS)).collect();
            user.push((n, v));
        }
        let ts = if rng.chance(50) {
            0
        } else {
            rng.next_u64() as i64
        };
        let want_ex = |e: &Option<Box<pb::Exemplar>>| {
            e.as_deref().map(|e| exemplar_bits(*convert_exemplar(e)))
        };
        let mut push =
            |suffix: &str, magic: Option<(&str, &str)>, v: f64, ex: Option<WantExemplar>| {
                let suffix = if ty == T::GaugeHistogram { "" } else { suffix };
                let metric_name = format!("{name}{suffix}");
                let l = user
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .chain([("__name__", metric_name.as_str())])
                    .chain(magic);
                want.push((
                    Labels::from_pairs(l),
                    wire_bits(v),
                    (ts != 0).then_some(ts),
                    ex,
                ));
            };
        let m = match ty {
            T::Counter | T::Gauge | T::Untyped => {
                let v = float(rng);
                let m = match ty {
                    T::Counter => counter(v, random_exemplar(rng)),
                    T::Gauge => gauge(v),
                    _ => untyped(v),
                };
                let e = m.counter.as_ref().and_then(|c| want_ex(&c.exemplar));
                push("", None, v, e);
                m
            }
            T::Summary => {
                let (count, sum) = (rng.next_u64() >> 12, float(rng));
                let qs: Vec<(f64, f64)> = (0..rng.index(4))
                    .map(|i| (BOUNDS[i * 2].0, float(rng)))
                    .collect();
                push("_count", None, count as f64, None);
                push("_sum", None, sum, None);
                for (i, (_, v)) in qs.iter().enumerate() {
                    push("", Some(("quantile", BOUNDS[i * 2].1)), *v, None);
                }
                summary(count, sum, &qs)
            }
            _ => {
                let (count, sum) = (rng.next_u64() >> 12, float(rng));
                let mut buckets = Vec::new();
                push("_count", None, count as f64, None);
                push("_sum", None, sum, None);
                let mut start = 0;
                for _ in 0..rng.index(5) {
                    start += 1 + rng.index(2);
                    let Some(&(bound, spelled)) = BOUNDS.get(start) else {
                        break;
                    };
                    let b = bucket(bound, rng.next_u64() >> 12, random_exemplar(rng));
                    push(
                        "_bucket",
                        Some(("le", spelled)),
                        b.cumulative_count as f64,
                        want_ex(&b.exemplar),
                    );
                    buckets.push(b);
                }
                let inf = bucket(f64::INFINITY, rng.next_u64() >> 12, random_exemplar(rng));
                let explicit = rng.chance(50);
                let inf_value = if explicit {
                    inf.cumulative_count
                } else {
                    count
                };
                let inf_ex = if explicit {
                    want_ex(&inf.exemplar)
                } else {
                    None
                };
                push("_bucket", Some(("le", "+Inf")), inf_value as f64, inf_ex);
                if explicit {
                    buckets.push(inf);
                    if rng.chance(30) {
                        buckets.push(bucket(1.0, 1, None)); // ignored after +Inf
                    }
                }
                hist_metric(histogram(count, sum, buckets))
            }
        };
        metrics.push(with(
            m,
            &user
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect::<Vec<_>>(),
            ts,
        ));
    }
    (
        family(&name, &format!("help {index} \\ \"x\"\n"), ty, metrics),
        want,
    )
}

fn random_exemplar(rng: &mut Rng) -> Option<Box<pb::Exemplar>> {
    if !rng.chance(40) {
        return None;
    }
    let ts = rng.chance(50).then(|| {
        (
            rng.next_u64() as i64 >> 20,
            (rng.next_u64() % 1_000_000_000) as i32,
        )
    });
    let id = format!("{:x}", rng.next_u64());
    Some(exemplar(
        &[("trace_id", id.as_str()), ("e", "")],
        float(rng),
        ts,
    ))
}

fn random_body(rng: &mut Rng) -> (Vec<u8>, Vec<pb::MetricFamily>, Vec<Want>) {
    let families: Vec<_> = (0..1 + rng.index(6))
        .map(|i| random_family(rng, i))
        .collect();
    let want = families
        .iter()
        .flat_map(|(_, w)| w.iter().cloned())
        .collect();
    let families: Vec<_> = families.into_iter().map(|(f, _)| f).collect();
    (encode(&families), families, want)
}

#[test]
fn random_families_parse_as_encoded() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..400 {
        let (body, families, want) = random_body(&mut rng);
        let (entries, err) = parse(&body);
        assert_eq!(err, None, "round {round}");
        let mut got = Vec::new();
        let mut meta = Vec::new();
        for e in &entries {
            match e {
                Entry::Sample(s) => {
                    assert!(matches!(s.series, Cow::Owned(_)));
                    let ex = s.exemplar.as_deref().cloned().map(exemplar_bits);
                    got.push((s.labels(), s.value.to_bits(), s.timestamp_ms, ex));
                }
                Entry::Help { name, help } => meta.push(format!("H {name} {help}")),
                Entry::Type { name, kind } => meta.push(format!("T {name} {}", kind.as_str())),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, want, "round {round}");
        let want_meta: Vec<String> = families
            .iter()
            .filter(|f| !f.metric.is_empty())
            .flat_map(|f| {
                let name = String::from_utf8_lossy(&f.name);
                let kind = [
                    "counter",
                    "gauge",
                    "summary",
                    "untyped",
                    "histogram",
                    "gaugehistogram",
                ][f.r#type as usize];
                [
                    format!("H {name} {}", String::from_utf8_lossy(&f.help)),
                    format!("T {name} {kind}"),
                ]
            })
            .collect();
        assert_eq!(meta, want_meta, "round {round}");
    }
}

#[test]
fn truncated_bodies_yield_a_prefix_then_fail() {
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    for round in 0..200 {
        let (body, families, _) = random_body(&mut rng);
        let full = render_all(&body);
        let mut boundaries = vec![0];
        for f in &families {
            boundaries.push(boundaries.last().unwrap() + f.encode_length_delimited_to_vec().len());
        }
        for _ in 0..20 {
            let cut = rng.index(body.len() + 1);
            let got = render_all(&body[..cut]);
            let (last, entries) = got
                .split_last()
                .map_or((None, &got[..]), |(l, e)| (Some(l), e));
            if boundaries.contains(&cut) {
                assert!(full.starts_with(&got), "round {round} cut {cut}");
            } else {
                let last = last.expect("a cut inside a family fails");
                assert!(
                    last.starts_with("E ") && last.contains("protobufparse: "),
                    "round {round} cut {cut}: {last}"
                );
                assert!(full.starts_with(entries), "round {round} cut {cut}");
            }
        }
    }
}

#[test]
fn corrupt_bodies_never_panic() {
    let mut rng = Rng::new(0xdead_beef_cafe_f00d);
    for _ in 0..300 {
        let (mut body, _, _) = random_body(&mut rng);
        for _ in 0..1 + rng.index(4) {
            let i = rng.index(body.len());
            body[i] = if rng.chance(50) {
                body[i] ^ (1 << rng.index(8))
            } else {
                rng.next_u64() as u8
            };
        }
        let (entries, _) = parse(&body);
        for e in &entries {
            if let Entry::Sample(s) = e {
                let name = s.labels().get("__name__").map(str::to_owned);
                assert!(
                    name.is_some_and(|n| s.series.starts_with(&n)),
                    "{}",
                    s.series
                );
            }
        }
    }
    for _ in 0..300 {
        let garbage: Vec<u8> = (0..rng.index(64)).map(|_| rng.next_u64() as u8).collect();
        let _ = parse(&garbage);
    }
}
