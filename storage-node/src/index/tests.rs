use super::*;
use crate::testutil::TestDb;

fn fixture() -> TestDb {
    TestDb::with_series(&[
        (
            &[("__name__", "up"), ("job", "a"), ("env", "prod")],
            &[(1000, 1.0)],
        ),
        (&[("__name__", "up"), ("job", "b")], &[(2000, 1.0)]),
        (
            &[("__name__", "up"), ("job", "c"), ("env", "dev")],
            &[(3000, 0.0)],
        ),
        (
            &[("__name__", "other"), ("job", "a"), ("v", "x\0y")],
            &[(4000, 5.0)],
        ),
        (&[("__name__", "other"), ("job", "a"), ("v", "x")], &[]),
    ])
}

fn ids(db: &Db, matchers: &[Matcher]) -> Vec<u64> {
    let mut ids: Vec<u64> = Index::new(db)
        .select(matchers)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

fn re(name: &str, re: &str) -> Matcher {
    Matcher::regex(name, re).unwrap()
}

fn nre(name: &str, re: &str) -> Matcher {
    Matcher::not_regex(name, re).unwrap()
}

#[test]
fn matcher_table() {
    let t = fixture();
    let up = || Matcher::equal("__name__", "up");
    let cases: Vec<(Vec<Matcher>, Vec<u64>)> = vec![
        (vec![up()], vec![1, 2, 3]),
        (vec![up(), Matcher::equal("env", "")], vec![2]),
        (vec![up(), Matcher::not_equal("env", "prod")], vec![2, 3]),
        (vec![up(), re("env", "prod|")], vec![1, 2]),
        (vec![up(), re("env", "pr.*")], vec![1]),
        (vec![up(), re("env", "p")], vec![]),
        (vec![up(), nre("env", "prod")], vec![2, 3]),
        (vec![re("job", "a|b")], vec![1, 2, 4, 5]),
        (vec![Matcher::not_equal("env", "")], vec![1, 3]),
        (vec![re("env", ".+")], vec![1, 3]),
        (vec![nre("env", "")], vec![1, 3]),
        (
            vec![re("__name__", "up|other"), Matcher::equal("job", "a")],
            vec![1, 4, 5],
        ),
        (vec![Matcher::equal("__name__", "nope")], vec![]),
        (
            vec![up(), Matcher::equal("job", "a"), Matcher::equal("job", "b")],
            vec![],
        ),
        (vec![Matcher::equal("v", "x")], vec![5]),
        (vec![Matcher::equal("v", "x\0y")], vec![4]),
        (
            vec![Matcher::equal("__name__", "other"), Matcher::equal("v", "")],
            vec![],
        ),
    ];
    for (matchers, want) in cases {
        assert_eq!(ids(&t.db, &matchers), want, "{matchers:?}");
    }
}

#[test]
fn matchers_that_only_match_empty_are_refused() {
    let t = fixture();
    let index = Index::new(&t.db);
    for matchers in [
        vec![],
        vec![Matcher::not_equal("job", "a")],
        vec![Matcher::equal("env", "")],
        vec![re("job", ".*")],
        vec![nre("job", "a")],
    ] {
        assert!(
            matches!(index.select(&matchers), Err(Error::InvalidMatchers(_))),
            "{matchers:?}"
        );
    }
    assert!(matches!(
        Matcher::regex("a", "("),
        Err(Error::InvalidMatchers(_))
    ));
}

#[test]
fn select_returns_series_sorted_by_labels() {
    let t = fixture();
    let got: Vec<Labels> = Index::new(&t.db)
        .select(&[re("job", ".+")])
        .unwrap()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].get("__name__"), Some("other"));
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
}

#[test]
fn label_names_and_values() {
    let t = fixture();
    let index = Index::new(&t.db);
    assert_eq!(
        index.label_names(&[], TimeRange::ALL).unwrap(),
        ["__name__", "env", "job", "v"]
    );
    assert_eq!(
        index.label_values("job", &[], TimeRange::ALL).unwrap(),
        ["a", "b", "c"]
    );
    assert_eq!(
        index.label_values("v", &[], TimeRange::ALL).unwrap(),
        ["x", "x\0y"]
    );
    assert!(index
        .label_values("nope", &[], TimeRange::ALL)
        .unwrap()
        .is_empty());
    // Restricted by matchers.
    let up = [Matcher::equal("__name__", "up")];
    assert_eq!(
        index.label_names(&up, TimeRange::ALL).unwrap(),
        ["__name__", "env", "job"]
    );
    assert_eq!(
        index.label_values("env", &up, TimeRange::ALL).unwrap(),
        ["dev", "prod"]
    );
    // Restricted by time: only series 2 and 3 have samples in [1500, 3000].
    let range = TimeRange {
        start: 1500,
        end: 3000,
    };
    assert_eq!(index.label_values("job", &[], range).unwrap(), ["b", "c"]);
    assert_eq!(
        index.label_names(&[], range).unwrap(),
        ["__name__", "env", "job"]
    );
    let in_range = index.series_in_range(&up, range).unwrap();
    // Sorted by labels: `env` sorts before `job`.
    assert_eq!(in_range.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 2]);
}

#[test]
fn stats_count_series_values_bytes_and_pairs() {
    let t = fixture();
    let s = Index::new(&t.db).stats().unwrap();
    let list = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    assert_eq!(s.num_series, 5);
    // __name__: up, other; job: a, b, c; env: prod, dev; v: "x\0y", "x".
    assert_eq!(s.num_label_pairs, 9);
    assert_eq!(s.series_by_metric, list(&[("up", 3), ("other", 2)]));
    assert_eq!(
        s.values_by_label,
        list(&[("job", 3), ("__name__", 2), ("env", 2), ("v", 2)])
    );
    assert_eq!(
        s.bytes_by_label,
        list(&[("__name__", 7), ("env", 7), ("v", 4), ("job", 3)])
    );
    assert_eq!(
        s.series_by_pair,
        list(&[
            ("__name__=up", 3),
            ("job=a", 3),
            ("__name__=other", 2),
            ("env=dev", 1),
            ("env=prod", 1),
            ("job=b", 1),
            ("job=c", 1),
            ("v=x", 1),
            ("v=x\0y", 1),
        ])
    );
}

#[test]
fn top_k_keeps_what_a_full_sort_keeps() {
    let mut rng = scrapegrid_common::xorshift::XorShift::new(7);
    for round in 0..200 {
        let n = rng.below(40) as usize;
        let entries: Vec<(String, u64)> = (0..n)
            .map(|i| (format!("n{}", (i * 7919 + round) % 97), rng.below(5)))
            .collect();
        let mut top = TopK::default();
        for (name, count) in &entries {
            top.offer(*count, || name.clone());
        }
        let mut want = entries.clone();
        want.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        want.truncate(STATS_TOP);
        assert_eq!(top.into_sorted(), want, "{entries:?}");
    }
}
