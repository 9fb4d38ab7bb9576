//! Prometheus's exemplar rules as a table, and selection from a real
//! database.

use super::*;
use crate::db::DbBatch;
use crate::testutil::TestDb;

fn ex(trace: &str, value: f64, ts_ms: i64, has_ts: bool) -> Exemplar {
    Exemplar {
        labels: Labels::from_pairs([("trace_id", trace)]),
        value,
        ts_ms,
        has_ts,
    }
}

#[test]
fn check_follows_prometheus_validate_exemplar() {
    use Verdict::*;
    let newest = ex("a", 1.0, 1000, false);
    let newest_ts = ex("a", 1.0, 1000, true);
    let cases = [
        (None, ex("a", 1.0, 5, true), Append, "first of its series"),
        (
            Some(&newest),
            ex("a", 1.0, 2000, false),
            Duplicate,
            "no timestamp on either: the timestamp is ignored",
        ),
        (
            Some(&newest),
            ex("a", 1.0, 1000, false),
            Duplicate,
            "the same exemplar again",
        ),
        (
            Some(&newest_ts),
            ex("a", 1.0, 1000, true),
            Duplicate,
            "same explicit timestamp",
        ),
        (
            Some(&newest_ts),
            ex("a", 1.0, 2000, false),
            Append,
            "one side has a timestamp: compared, newer",
        ),
        (
            Some(&newest_ts),
            ex("a", 1.0, 2000, true),
            Append,
            "newer explicit timestamp",
        ),
        (
            Some(&newest),
            ex("b", 1.0, 1000, false),
            OutOfOrder,
            "other labels at the same timestamp",
        ),
        (Some(&newest), ex("a", 2.0, 999, true), OutOfOrder, "older"),
        (
            Some(&newest),
            ex("a", 2.0, 1001, false),
            Append,
            "other value, newer",
        ),
        (
            Some(&ex("a", f64::NAN, 1000, false)),
            ex("a", f64::NAN, 1000, false),
            OutOfOrder,
            "NaN is never equal (Go's ==)",
        ),
    ];
    for (newest, e, want, why) in cases {
        assert_eq!(check(newest, &e), want, "{why}");
    }
}

#[test]
fn label_set_length_counts_runes_of_names_and_values() {
    // "trace_id" is 8 runes.
    let at = |value_runes: usize, c: char| Exemplar {
        labels: Labels::from_pairs([("trace_id", c.to_string().repeat(value_runes))]),
        ..ex("", 1.0, 1, true)
    };
    assert_eq!(check(None, &at(120, 'x')), Verdict::Append, "128 runes");
    assert_eq!(check(None, &at(121, 'x')), Verdict::LabelsTooLong);
    // Two bytes per rune: 240 bytes, still 128 runes.
    assert_eq!(label_set_runes(&at(120, 'ü').labels), 128);
    assert_eq!(check(None, &at(120, 'ü')), Verdict::Append);
    // Checked before the duplicate test, as in Prometheus.
    let long = at(121, 'x');
    assert_eq!(check(Some(&long), &long), Verdict::LabelsTooLong);
    let many = Exemplar {
        labels: Labels::from_pairs((0..20).map(|i| (format!("l{i:02}"), "abcd".to_string()))),
        ..ex("", 1.0, 1, true)
    };
    assert_eq!(label_set_runes(&many.labels), 140);
    assert_eq!(check(None, &many), Verdict::LabelsTooLong);
}

#[test]
fn select_filters_by_matchers_and_time_and_sorts_by_series() {
    let t = TestDb::with_series(&[
        (&[("__name__", "b_total"), ("job", "x")], &[(1, 1.0)]),
        (&[("__name__", "a_bucket"), ("le", "1")], &[(1, 1.0)]),
        (&[("__name__", "c_total")], &[(1, 1.0)]),
        (&[("__name__", "a_bucket"), ("le", "+Inf")], &[(1, 1.0)]),
    ]);
    let db = &t.db;
    let mut wb = DbBatch::default();
    // Series 1: two exemplars, one with an old explicit timestamp.
    put(db, &mut wb, 1, 5_000, &ex("old", 0.5, 1_000, true));
    put(db, &mut wb, 1, 6_000, &ex("new", 1.5, 6_000, false));
    put(db, &mut wb, 2, 5_000, &ex("a1", 0.25, 5_000, false));
    put(db, &mut wb, 3, 5_000, &ex("c", 3.0, 5_000, false));
    put(db, &mut wb, 4, 5_000, &ex("inf", 9.0, 5_000, false));
    db.write_unsynced(wb).unwrap();

    let sets = |qs: &[&str]| -> Vec<Vec<Matcher>> {
        qs.iter()
            .flat_map(|q| crate::query::promql::extract_selectors(q).unwrap())
            .collect()
    };
    let all = select(db, &sets(&[r#"{__name__=~".+"}"#]), i64::MIN, i64::MAX).unwrap();
    let names: Vec<String> = all.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(
        names,
        [
            r#"{__name__="a_bucket", le="+Inf"}"#,
            r#"{__name__="a_bucket", le="1"}"#,
            r#"{__name__="b_total", job="x"}"#,
            r#"{__name__="c_total"}"#,
        ],
        "sorted by series labels"
    );
    assert_eq!(
        all[2].exemplars,
        [ex("old", 0.5, 1_000, true), ex("new", 1.5, 6_000, false)],
        "in arrival order, labels, value, timestamp and its origin kept"
    );

    // The time range applies to the exemplars' own timestamps, inclusive.
    let ranged = select(db, &sets(&["b_total"]), 1_000, 5_999).unwrap();
    assert_eq!(ranged.len(), 1);
    assert_eq!(ranged[0].exemplars, [ex("old", 0.5, 1_000, true)]);
    let ranged = select(db, &sets(&["b_total"]), 1_001, 5_999).unwrap();
    assert!(
        ranged.is_empty(),
        "a series without exemplars in range is left out"
    );

    // Several selectors: a series matching any of them.
    let either = select(db, &sets(&["c_total", r#"a_bucket{le="1"}"#]), 0, 10_000).unwrap();
    let names: Vec<String> = either.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(
        names,
        [
            r#"{__name__="a_bucket", le="1"}"#,
            r#"{__name__="c_total"}"#
        ]
    );
    assert!(select(db, &sets(&["nothing"]), 0, 10_000)
        .unwrap()
        .is_empty());
}
