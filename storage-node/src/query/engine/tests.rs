//! The engine on in-memory series: each function's and operator's edge
//! cases with values worked out by hand from Prometheus 2.42's definitions.

use scrapegrid_common::Labels;
use scrapegrid_proto::stale_marker;

use super::{evaluate, EngineOptions, Series, Value};
use crate::error::Error;
use crate::query::promql::parse;
use crate::query::select::Series as Stored;
use crate::samples::Sample;

const S: i64 = 1000;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn stored(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> Stored {
    Stored {
        labels: l(pairs),
        samples: points
            .iter()
            .map(|&(t, v)| Sample { t: t * S, v })
            .collect(),
        histograms: vec![],
    }
}

/// A counter every 15 s from 0 s, its values `0, 10, 20, ...` for api/a,
/// and one that resets for api/b; gauges; a classic histogram.
fn data() -> Vec<Stored> {
    let every15 =
        |f: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> { (0..=20).map(|i| (i * 15, f(i))).collect() };
    vec![
        stored(
            &[("__name__", "req_total"), ("job", "api"), ("instance", "a")],
            &every15(&|i| 10.0 * i as f64),
        ),
        stored(
            &[("__name__", "req_total"), ("job", "api"), ("instance", "b")],
            // 0, 5, 10, 15, 20, then a reset to 2, 7, ...
            &every15(&|i| {
                if i < 5 {
                    5.0 * i as f64
                } else {
                    2.0 + 5.0 * (i - 5) as f64
                }
            }),
        ),
        stored(
            &[("__name__", "temp"), ("job", "api"), ("instance", "a")],
            &every15(&|i| [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0][(i % 8) as usize]),
        ),
        stored(
            &[("__name__", "temp"), ("job", "db"), ("instance", "c")],
            &[(0, 10.0), (60, 20.0), (120, stale_marker())],
        ),
        stored(
            &[("__name__", "lat_bucket"), ("job", "api"), ("le", "0.1")],
            &[(60, 10.0)],
        ),
        stored(
            &[("__name__", "lat_bucket"), ("job", "api"), ("le", "0.5")],
            &[(60, 30.0)],
        ),
        stored(
            &[("__name__", "lat_bucket"), ("job", "api"), ("le", "1")],
            &[(60, 35.0)],
        ),
        stored(
            &[("__name__", "lat_bucket"), ("job", "api"), ("le", "+Inf")],
            &[(60, 40.0)],
        ),
    ]
}

fn instant(q: &str, t: i64) -> Result<Vec<(Labels, f64)>, Error> {
    let src = data();
    let expr = parse(q)?;
    match evaluate(&src, EngineOptions::default(), &expr, t * S, t * S, 1)? {
        Value::Vector(v) => Ok(v
            .into_iter()
            .map(|s: Series| (s.labels, s.points[0].v))
            .collect()),
        Value::Scalar(v) => Ok(vec![(Labels::new(), v[0])]),
        other => panic!("{q}: {other:?}"),
    }
}

fn one(q: &str, t: i64) -> f64 {
    let v = instant(q, t).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(v.len(), 1, "{q}: {v:?}");
    v[0].1
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0) || (a.is_nan() && b.is_nan())
}

#[test]
fn rate_and_increase_extrapolate_as_prometheus() {
    // Windows are [ref - range, ref], closed at both ends in 2.x: [0, 60]
    // sees 0..40 at 0..60 s, nothing to extrapolate.
    let q = r#"increase(req_total{instance="a"}[1m])"#;
    assert!(close(one(q, 60), 40.0), "{}", one(q, 60));
    assert!(close(
        one(r#"rate(req_total{instance="a"}[1m])"#, 60),
        40.0 / 60.0
    ));
    // A reset adds the value before it: b at [0, 120]: 0..20, 2..17.
    assert!(close(
        one(r#"increase(req_total{instance="b"}[2m])"#, 120),
        17.0 + 20.0
    ));
    // [40, 100] sees 45..90 s of b (15, 20, 2, 7): 7 - 15 + 20 = 12 over
    // 45 s; 5 s to the start and 10 s to the end are under 1.1 intervals,
    // and the zero point (45 * 15/12 s back) is further: 12 * 60/45.
    assert!(close(
        one(r#"increase(req_total{instance="b"}[1m])"#, 100),
        12.0 * 60.0 / 45.0
    ));
    // [3, 58] sees 15..45 s of a (10..30): 20 over 30 s; 12 s to the start
    // is under 16.5 but the zero point is 15 s back, so 12 s; 13 s to the
    // end: 20 * (30 + 12 + 13) / 30.
    assert!(close(
        one(r#"increase(req_total{instance="a"}[55s] offset 2s)"#, 60),
        20.0 * 55.0 / 30.0
    ));
    // delta does not treat drops as resets; idelta and irate use the last two.
    assert!(close(
        one(r#"delta(temp{instance="a"}[1m])"#, 60),
        5.0 - 3.0
    ));
    assert!(close(
        one(r#"irate(req_total{instance="b"}[1m])"#, 75),
        2.0 / 15.0
    ));
    assert!(close(one(r#"idelta(temp{instance="a"}[1m])"#, 60), 4.0));
    // One point is not enough.
    assert!(instant(r#"rate(req_total{instance="a"}[10s])"#, 60)
        .unwrap()
        .is_empty());
}

#[test]
fn over_time_functions() {
    let t = |f: &str| one(&format!(r#"{f}(temp{{instance="a"}}[1m])"#), 60);
    // [0, 60]: 3, 1, 4, 1, 5.
    assert_eq!(t("max_over_time"), 5.0);
    assert_eq!(t("min_over_time"), 1.0);
    assert_eq!(t("sum_over_time"), 14.0);
    assert_eq!(t("count_over_time"), 5.0);
    assert_eq!(t("avg_over_time"), 2.8);
    assert_eq!(t("last_over_time"), 5.0);
    assert_eq!(t("present_over_time"), 1.0);
    assert!(close(t("stdvar_over_time"), 2.56));
    assert!(close(t("stddev_over_time"), 2.56f64.sqrt()));
    assert_eq!(t("changes"), 4.0);
    assert_eq!(t("resets"), 2.0);
    assert_eq!(
        one(r#"quantile_over_time(0.5, temp{instance="a"}[1m])"#, 60),
        3.0
    );
    // last_over_time keeps the name; the others drop it.
    let v = instant(r#"last_over_time(temp{instance="a"}[1m])"#, 60).unwrap();
    assert_eq!(v[0].0.get("__name__"), Some("temp"));
    let v = instant(r#"max_over_time(temp{instance="a"}[1m])"#, 60).unwrap();
    assert_eq!(v[0].0.get("__name__"), None);
    // deriv of a line and predict_linear from it.
    assert!(close(
        one(r#"deriv(req_total{instance="a"}[1m])"#, 60),
        10.0 / 15.0
    ));
    assert!(close(
        one(r#"predict_linear(req_total{instance="a"}[1m], 60)"#, 60),
        80.0
    ));
}

#[test]
fn selectors_lookback_staleness_offset_and_at() {
    // temp{c}: 10 at 0, 20 at 60, stale at 120.
    let c = r#"temp{instance="c"}"#;
    assert_eq!(one(c, 100), 20.0);
    assert!(
        instant(c, 120).unwrap().is_empty(),
        "the stale marker ends it"
    );
    assert_eq!(one(&format!("{c} offset 1m"), 100), 10.0);
    assert_eq!(one(&format!("{c} @ 60"), 1000), 20.0);
    assert_eq!(one(&format!("{c} @ 60 offset 1m"), 1000), 10.0);
    assert!(
        instant(&format!("{c} @ 500"), 0).unwrap().is_empty(),
        "past the lookback"
    );
}

#[test]
fn aggregations() {
    let at = 60;
    let sum = instant("sum by (job) (temp)", at).unwrap();
    assert_eq!(
        sum,
        vec![(l(&[("job", "api")]), 5.0), (l(&[("job", "db")]), 20.0)]
    );
    assert_eq!(one("sum(temp)", at), 25.0);
    assert_eq!(one("avg(temp)", at), 12.5);
    assert_eq!(one("count(temp)", at), 2.0);
    assert_eq!(one("max(temp)", at), 20.0);
    assert_eq!(one("min(temp)", at), 5.0);
    assert_eq!(one("group(temp)", at), 1.0);
    assert_eq!(one("stdvar(temp)", at), 56.25);
    assert_eq!(one("stddev(temp)", at), 7.5);
    assert_eq!(one("quantile(0.5, temp)", at), 12.5);
    let w = instant("sum without (instance) (temp)", at).unwrap();
    assert_eq!(
        w,
        vec![(l(&[("job", "api")]), 5.0), (l(&[("job", "db")]), 20.0)]
    );
    let top = instant("topk(1, temp)", at).unwrap();
    assert_eq!(top[0].1, 20.0);
    assert_eq!(
        top[0].0.get("__name__"),
        Some("temp"),
        "topk keeps the series"
    );
    assert_eq!(instant("bottomk(1, temp)", at).unwrap()[0].1, 5.0);
    assert!(instant("topk(0, temp)", at).unwrap().is_empty());
    let cv = instant(r#"count_values("v", temp)"#, at).unwrap();
    assert_eq!(cv, vec![(l(&[("v", "5")]), 1.0), (l(&[("v", "20")]), 1.0)]);
}

#[test]
fn binary_operators_and_matching() {
    let at = 60;
    // Arithmetic drops the name; a comparison filters and keeps it.
    let v = instant("temp * 2", at).unwrap();
    assert_eq!(v[0], (l(&[("instance", "a"), ("job", "api")]), 10.0));
    let v = instant("temp > 6", at).unwrap();
    assert_eq!(
        v,
        vec![(
            l(&[("__name__", "temp"), ("instance", "c"), ("job", "db")]),
            20.0
        )]
    );
    let v = instant("temp > bool 6", at).unwrap();
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [0.0, 1.0]);
    assert_eq!(one("2 > bool 1", at), 1.0);
    assert_eq!(one("-2 ^ 2", at), -4.0, "unary minus binds looser than ^");
    assert_eq!(
        one("7 % -2", at),
        1.0,
        "Go's math.Mod keeps the dividend's sign"
    );
    // One-to-one on shared labels.
    let v = instant(r#"req_total / on(instance, job) temp"#, at).unwrap();
    assert_eq!(
        v,
        vec![(l(&[("instance", "a"), ("job", "api")]), 40.0 / 5.0)]
    );
    // Many-to-one needs group_left.
    let err = instant("req_total / on(job) group_left temp", at);
    assert!(err.is_ok(), "{err:?}");
    let err = instant("temp / on(job) req_total", at).unwrap_err();
    assert!(
        matches!(err, Error::Execution(ref m) if m.contains("many-to-many matching not allowed")),
        "{err}"
    );
    // Set operators keep the left side's labels.
    let v = instant(r#"temp and on(instance) req_total"#, at).unwrap();
    assert_eq!(v.len(), 1);
    let v = instant(r#"temp unless on(instance) req_total"#, at).unwrap();
    assert_eq!(v[0].0.get("instance"), Some("c"));
    let v = instant(r#"temp{job="db"} or req_total"#, at).unwrap();
    assert_eq!(v.len(), 3);
}

#[test]
fn histogram_quantile_on_classic_buckets() {
    // 40 observations: the median (rank 20) is in (0.1, 0.5] at 10/20 of it.
    assert!(close(
        one("histogram_quantile(0.5, lat_bucket)", 60),
        0.1 + 0.4 * 0.5
    ));
    // Rank 38 is in (1, +Inf]: the highest finite bound.
    assert_eq!(one("histogram_quantile(0.95, lat_bucket)", 60), 1.0);
    assert_eq!(
        one("histogram_quantile(-1, lat_bucket)", 60),
        f64::NEG_INFINITY
    );
}

#[test]
fn other_functions() {
    let at = 60;
    assert_eq!(one("vector(3)", at), 3.0);
    assert!(one("scalar(temp)", at).is_nan());
    assert_eq!(one("time()", at), 60.0);
    assert_eq!(one(r#"timestamp(temp{instance="c"})"#, 100), 60.0);
    assert_eq!(one(r#"absent(nope{job="x"})"#, at), 1.0);
    let v = instant(r#"absent(nope{job="x", a=~"y"})"#, at).unwrap();
    assert_eq!(v[0].0, l(&[("job", "x")]));
    assert!(instant("absent(temp)", at).unwrap().is_empty());
    assert_eq!(one("absent_over_time(nope[1m])", at), 1.0);
    assert_eq!(one(r#"clamp(temp{instance="c"}, 0, 15)"#, at), 15.0);
    assert_eq!(one(r#"round(temp{instance="c"} / 3, 0.5)"#, at), 6.5);
    let v = instant(
        r#"label_replace(temp{instance="c"}, "x", "$1-z", "job", "(d)b")"#,
        at,
    )
    .unwrap();
    assert_eq!(v[0].0.get("x"), Some("d-z"));
    let v = instant(
        r#"label_join(temp{instance="c"}, "x", ",", "job", "instance")"#,
        at,
    )
    .unwrap();
    assert_eq!(v[0].0.get("x"), Some("db,c"));
    assert_eq!(
        one("day_of_week(vector(86400 * 3))", at),
        0.0,
        "1970-01-04 was a Sunday"
    );
    assert_eq!(one("days_in_month(vector(86400 * 40))", at), 28.0);
    assert_eq!(one("year(vector(951782400))", at), 2000.0, "2000-02-29");
    assert_eq!(one("day_of_year(vector(951782400))", at), 60.0);
    let sorted = instant("sort_desc(temp)", at).unwrap();
    assert_eq!(sorted.iter().map(|x| x.1).collect::<Vec<_>>(), [20.0, 5.0]);
}

#[test]
fn subqueries_and_range_queries() {
    // max of the 1m rate over the last 2m, every 15 s.
    let v = one(
        r#"max_over_time(rate(req_total{instance="a"}[1m])[2m:15s])"#,
        120,
    );
    assert!(close(v, 40.0 / 60.0), "{v}");
    let src = data();
    let expr = parse(r#"temp{instance="c"}"#).unwrap();
    let Value::Vector(v) =
        evaluate(&src, EngineOptions::default(), &expr, 0, 150 * S, 30 * S).unwrap()
    else {
        panic!()
    };
    let got: Vec<(i64, f64)> = v[0].points.iter().map(|p| (p.t / S, p.v)).collect();
    assert_eq!(got, [(0, 10.0), (30, 10.0), (60, 20.0), (90, 20.0)]);
}

#[test]
fn errors_as_prometheus() {
    let err = instant("holt_winters(temp[1m], 2, 0.5)", 60).unwrap_err();
    assert!(
        matches!(err, Error::Execution(ref m) if m == "invalid smoothing factor. Expected: 0 < sf < 1, got: 2.000000"),
        "{err}"
    );
    let err = instant(r#"label_replace(temp, "x", "", "job", "(")"#, 60).unwrap_err();
    assert!(matches!(err, Error::Execution(_)), "{err}");
    let err = instant(
        r#"label_replace(req_total, "instance", "x", "job", ".*")"#,
        60,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Execution(ref m) if m.contains("same labelset")),
        "{err}"
    );
}

#[test]
fn subquery_windows_are_closed_at_both_ends() {
    let src = data();
    let expr = parse(r#"temp{instance="a"}[1m:15s]"#).unwrap();
    let Value::Matrix(m) =
        evaluate(&src, EngineOptions::default(), &expr, 120 * S, 120 * S, 1).unwrap()
    else {
        panic!()
    };
    let got: Vec<i64> = m[0].points.iter().map(|p| p.t / S).collect();
    assert_eq!(got, [60, 75, 90, 105, 120]);
}

#[test]
fn lookback_max_samples_and_deadline_options() {
    let src = data();
    let eval = |q: &str, opts: EngineOptions, start: i64, end: i64| {
        evaluate(&src, opts, &parse(q).unwrap(), start * S, end * S, 30 * S)
    };
    let short = EngineOptions {
        lookback_ms: 10 * S,
        ..EngineOptions::default()
    };
    // temp{c}'s sample at 60 s is 15 s old at 75 s: beyond a 10 s lookback.
    let Value::Vector(v) = eval(r#"temp{instance="c"}"#, short, 75, 75).unwrap() else {
        panic!()
    };
    assert!(v.is_empty(), "{v:?}");
    let Value::Vector(v) = eval(r#"temp{instance="c"}"#, EngineOptions::default(), 75, 75).unwrap()
    else {
        panic!()
    };
    assert_eq!(v.len(), 1);
    let few = EngineOptions {
        max_samples: 3,
        ..EngineOptions::default()
    };
    let err = eval("temp", few, 0, 150).unwrap_err();
    assert!(
        matches!(err, Error::Execution(ref m) if m == "query processing would load too many samples into memory in query execution"),
        "{err}"
    );
    let late = EngineOptions::default().with_timeout(std::time::Duration::ZERO);
    let err = eval("sum(temp)", late, 0, 150).unwrap_err();
    assert!(matches!(err, Error::QueryTimeout(_)), "{err}");
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
}

#[test]
fn nan_follows_go_math() {
    // Go's int64(NaN) is the smallest int64, and time.Unix wraps with it.
    assert_eq!(one("year(vector(0/0))", 60), 292_277_026_596.0);
    assert_eq!(one("day_of_month(vector(0/0))", 60), 4.0);
    // math.Max and math.Min propagate NaN; +Inf and -Inf win over it.
    assert!(one("clamp_min(vector(1), 0/0)", 60).is_nan());
    assert!(one("clamp_max(vector(0/0), 1)", 60).is_nan());
    assert_eq!(one("clamp_min(vector(0/0), 1/0)", 60), f64::INFINITY);
}
