//! Table tests for the relabeling engine. Expected results follow
//! Prometheus's `model/relabel` behaviour (and its test suite's values, such
//! as hashmod("baz") % 1000 == 976).

use super::*;

/// A wire rule with Prometheus's defaults, adjusted by `f`.
fn rule(action: &str, f: impl FnOnce(&mut pb::RelabelRule)) -> pb::RelabelRule {
    let mut r = RelabelConfig::default().to_proto();
    r.action = action.to_string();
    f(&mut r);
    r
}

fn src(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn run(input: &[(&str, &str)], rules: Vec<pb::RelabelRule>) -> Option<Labels> {
    let rules: Vec<RelabelConfig> = rules
        .iter()
        .map(|r| RelabelConfig::from_proto(r).unwrap_or_else(|e| panic!("{r:?}: {e}")))
        .collect();
    process_labels(&labels(input), &rules)
}

#[test]
fn applies_each_action_like_prometheus() {
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        Vec<pb::RelabelRule>,
        Option<&'static [(&'static str, &'static str)]>,
    );
    let cases: Vec<Case> = vec![
        (
            "replace with capture",
            &[("a", "foo")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "f(.*)".into();
                r.target_label = "b".into();
                r.replacement = "ch${1}".into();
            })],
            Some(&[("a", "foo"), ("b", "choo")]),
        ),
        (
            "replace joins with separator, missing label is empty",
            &[("a", "foo"), ("c", "baz")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a", "b", "c"]);
                r.target_label = "d".into();
            })],
            Some(&[("a", "foo"), ("c", "baz"), ("d", "foo;;baz")]),
        ),
        (
            "replace without match leaves the set alone",
            &[("a", "foo")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "bar".into();
                r.target_label = "a".into();
                r.replacement = "x".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "regex is anchored",
            &[("a", "foo")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "o".into();
                r.target_label = "b".into();
                r.replacement = "x".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "empty result deletes the target",
            &[("a", "foo"), ("b", "bar")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.target_label = "b".into();
                r.replacement = "".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "missing source sets target from replacement without captures",
            &[("a", "foo")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["missing"]);
                r.target_label = "b".into();
                r.replacement = "static".into();
            })],
            Some(&[("a", "foo"), ("b", "static")]),
        ),
        (
            "missing source with $1 deletes target",
            &[("a", "foo"), ("b", "bar")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["missing"]);
                r.target_label = "b".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "$1x is the group named 1x, so empty",
            &[("a", "foo"), ("b", "bar")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.target_label = "b".into();
                r.replacement = "$1x".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "${1}suffix, $$ and a lone $",
            &[("a", "foo")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.target_label = "b".into();
                r.replacement = "${1}suffix $$1 $ ${} ${a-b}".into();
            })],
            Some(&[("a", "foo"), ("b", "foosuffix $1 $ ${} ${a-b}")]),
        ),
        (
            "named groups and leading-zero numbers",
            &[("a", "foo-bar")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "(?P<x>[a-z]+)-(.*)".into();
                r.target_label = "b".into();
                r.replacement = "$x|${2}|$01|$9|$nope".into();
            })],
            Some(&[("a", "foo-bar"), ("b", "foo|bar|||")]),
        ),
        (
            "target label expanded from captures",
            &[("a", "some-name")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "some-([^-]+)".into();
                r.target_label = "${1}_label".into();
                r.replacement = "v".into();
            })],
            Some(&[("a", "some-name"), ("name_label", "v")]),
        ),
        (
            "target label invalid after expansion is skipped",
            &[("a", "some-na-me")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "some-(.+)".into();
                r.target_label = "${1}".into();
                r.replacement = "v".into();
            })],
            Some(&[("a", "some-na-me")]),
        ),
        (
            "target label expanding to empty is skipped",
            &[("a", "x")],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "x(.*)".into();
                r.target_label = "${1}".into();
            })],
            Some(&[("a", "x")]),
        ),
        (
            "empty match of (.*) on empty source",
            &[],
            vec![rule("replace", |r| {
                r.source_labels = src(&["a"]);
                r.target_label = "b".into();
                r.replacement = "set-$1".into();
            })],
            Some(&[("b", "set-")]),
        ),
        (
            "keep keeps a match",
            &[("a", "foo")],
            vec![rule("keep", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "f.*".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "keep drops a miss",
            &[("a", "foo")],
            vec![rule("keep", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "b.*".into();
            })],
            None,
        ),
        (
            "keep of missing label against empty regex keeps",
            &[("a", "foo")],
            vec![rule("keep", |r| {
                r.source_labels = src(&["z"]);
                r.regex = "".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "drop drops a match",
            &[("a", "foo")],
            vec![rule("drop", |r| {
                r.source_labels = src(&["a"]);
                r.regex = ".*o.*".into();
            })],
            None,
        ),
        (
            "drop is anchored",
            &[("a", "foo")],
            vec![rule("drop", |r| {
                r.source_labels = src(&["a"]);
                r.regex = "f|o".into();
            })],
            Some(&[("a", "foo")]),
        ),
        (
            "keepequal keeps equal values",
            &[("__tmp_port", "1234"), ("__port1", "1234")],
            vec![rule("keepequal", |r| {
                r.source_labels = src(&["__tmp_port"]);
                r.target_label = "__port1".into();
            })],
            Some(&[("__port1", "1234"), ("__tmp_port", "1234")]),
        ),
        (
            "keepequal drops different values",
            &[("__tmp_port", "1234"), ("__port1", "5678")],
            vec![rule("keepequal", |r| {
                r.source_labels = src(&["__tmp_port"]);
                r.target_label = "__port1".into();
            })],
            None,
        ),
        (
            "dropequal drops equal values, missing equals empty",
            &[("a", "x")],
            vec![rule("dropequal", |r| {
                r.source_labels = src(&["m1"]);
                r.target_label = "m2".into();
            })],
            None,
        ),
        (
            "hashmod matches Prometheus",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule("hashmod", |r| {
                r.source_labels = src(&["c"]);
                r.target_label = "d".into();
                r.modulus = 1000;
            })],
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        ),
        (
            "labelmap copies matching names",
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            vec![rule("labelmap", |r| {
                r.regex = "(b.*)".into();
                r.replacement = "bar_${1}".into();
            })],
            Some(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz"),
            ]),
        ),
        (
            "labelmap strips a meta prefix, later name wins a collision",
            &[("__meta_x_a", "1"), ("__meta_y_a", "2")],
            vec![rule("labelmap", |r| {
                r.regex = "__meta_(?:x|y)_(.+)".into();
            })],
            Some(&[("__meta_x_a", "1"), ("__meta_y_a", "2"), ("a", "2")]),
        ),
        (
            "labeldrop drops matching names",
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            vec![rule("labeldrop", |r| r.regex = "b.*".into())],
            Some(&[("a", "foo")]),
        ),
        (
            "labelkeep keeps matching names",
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            vec![rule("labelkeep", |r| r.regex = "b.*".into())],
            Some(&[("b1", "bar"), ("b2", "baz")]),
        ),
        (
            "lowercase and uppercase",
            &[("foo", "bAr123Foo")],
            vec![
                rule("uppercase", |r| {
                    r.source_labels = src(&["foo"]);
                    r.target_label = "foo_upper".into();
                }),
                rule("lowercase", |r| {
                    r.source_labels = src(&["foo"]);
                    r.target_label = "foo_lower".into();
                }),
            ],
            Some(&[
                ("foo", "bAr123Foo"),
                ("foo_lower", "bar123foo"),
                ("foo_upper", "BAR123FOO"),
            ]),
        ),
        (
            "case mapping is per character, as in Go",
            &[("a", "ΟΔΟΣ straße")],
            vec![
                rule("lowercase", |r| {
                    r.source_labels = src(&["a"]);
                    r.target_label = "l".into();
                }),
                rule("uppercase", |r| {
                    r.source_labels = src(&["a"]);
                    r.target_label = "u".into();
                }),
            ],
            Some(&[
                ("a", "ΟΔΟΣ straße"),
                ("l", "οδοσ straße"),
                ("u", "ΟΔΟΣ STRAßE"),
            ]),
        ),
        (
            "lowercase of missing label deletes target",
            &[("t", "x")],
            vec![rule("lowercase", |r| {
                r.source_labels = src(&["m"]);
                r.target_label = "t".into();
            })],
            Some(&[]),
        ),
        (
            "rules apply in order and see earlier results",
            &[("__name__", "http_requests_total")],
            vec![
                rule("replace", |r| {
                    r.source_labels = src(&["__name__"]);
                    r.regex = "(.*)_total".into();
                    r.target_label = "__name__".into();
                }),
                rule("replace", |r| {
                    r.source_labels = src(&["__name__"]);
                    r.target_label = "seen".into();
                    r.replacement = "prefix_$1".into();
                }),
            ],
            Some(&[
                ("__name__", "http_requests"),
                ("seen", "prefix_http_requests"),
            ]),
        ),
        (
            "a later rule does not run after a drop",
            &[("a", "foo")],
            vec![
                rule("drop", |r| {
                    r.source_labels = src(&["a"]);
                    r.regex = "foo".into();
                }),
                rule("replace", |r| {
                    r.target_label = "b".into();
                    r.replacement = "x".into();
                }),
            ],
            None,
        ),
    ];
    for (name, input, rules, want) in cases {
        let got = run(input, rules);
        assert_eq!(got, want.map(labels), "{name}");
    }
}

#[test]
fn process_reports_drop_on_builder() {
    let rules = vec![RelabelConfig::from_proto(&rule("drop", |r| {
        r.source_labels = src(&["a"]);
        r.regex = "x".into();
    }))
    .unwrap()];
    let mut lb = labels(&[("a", "x")]).builder();
    assert!(!process(&mut lb, &rules));
    let mut lb = labels(&[("a", "y")]).builder();
    assert!(process(&mut lb, &rules));
    assert!(process(&mut lb, &[]));
}

#[test]
fn validates_like_prometheus() {
    let cases: Vec<(pb::RelabelRule, &str)> = vec![
        (rule("", |_| {}), "relabel action cannot be empty"),
        (rule("wat", |_| {}), r#"unknown relabel action "wat""#),
        (rule("replace", |_| {}), "relabel configuration for replace action requires 'target_label' value"),
        (rule("hashmod", |r| r.target_label = "d".into()), "relabel configuration for hashmod requires non-zero modulus"),
        (rule("hashmod", |r| { r.target_label = "$1".into(); r.modulus = 2; }), r#""$1" is invalid 'target_label' for hashmod action"#),
        (rule("lowercase", |_| {}), "relabel configuration for lowercase action requires 'target_label' value"),
        (rule("uppercase", |r| r.target_label = "a-b".into()), r#""a-b" is invalid 'target_label' for uppercase action"#),
        (rule("lowercase", |r| { r.target_label = "b".into(); r.replacement = "x".into(); }), "'replacement' can not be set for lowercase action"),
        (rule("keepequal", |r| { r.target_label = "b".into(); r.replacement = "x".into(); }), "'replacement' can not be set for keepequal action"),
        (rule("dropequal", |r| { r.target_label = "b".into(); r.regex = "x".into(); }), "dropequal action requires only 'source_labels' and 'target_label', and no other fields"),
        (rule("keepequal", |r| { r.target_label = "b".into(); r.separator = ",".into(); }), "keepequal action requires only"),
        (rule("replace", |r| r.target_label = "a-b".into()), r#""a-b" is invalid 'target_label' for replace action"#),
        (rule("replace", |r| r.target_label = "1${1}x".into()), r#""1${1}x" is invalid 'target_label' for replace action"#),
        (rule("replace", |r| { r.target_label = "b".into(); r.source_labels = src(&["1a"]); }), r#""1a" is not a valid label name"#),
        (rule("replace", |r| { r.target_label = "b".into(); r.regex = "(".into(); }), r#"invalid regex "(""#),
        (rule("labelmap", |r| r.replacement = "x-y".into()), r#""x-y" is invalid 'replacement' for labelmap action"#),
        (rule("labeldrop", |r| r.source_labels = src(&["a"])), "labeldrop action requires only 'regex', and no other fields"),
        (rule("labelkeep", |r| r.target_label = "a".into()), "labelkeep action requires only 'regex'"),
        (rule("labeldrop", |r| r.replacement = "x".into()), "labeldrop action requires only 'regex'"),
        (rule("labelkeep", |r| r.modulus = 3), "labelkeep action requires only 'regex'"),
    ];
    for (r, want) in cases {
        let err = RelabelConfig::from_proto(&r).expect_err(want).to_string();
        assert!(err.contains(want), "{r:?}: got {err:?}, want {want:?}");
    }
    let ok = [
        rule("replace", |r| r.target_label = "${1}x".into()),
        rule("Replace", |r| r.target_label = "b".into()),
        rule("drop", |r| r.target_label = "a-b".into()),
        rule("keep", |_| {}),
        rule("labelmap", |r| r.replacement = "${1}".into()),
        rule("labeldrop", |r| r.regex = "a".into()),
        rule("keepequal", |r| {
            r.source_labels = src(&["a"]);
            r.target_label = "b".into();
        }),
        rule("replace", |r| {
            r.target_label = "b".into();
            r.regex = "a{".into();
        }),
    ];
    for r in ok {
        RelabelConfig::from_proto(&r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    }
}

#[test]
fn proto_round_trips() {
    let r = rule("hashmod", |r| {
        r.source_labels = src(&["a", "b"]);
        r.separator = "".into();
        r.regex = "x(.*)".into();
        r.modulus = 7;
        r.target_label = "shard".into();
    });
    let c = RelabelConfig::from_proto(&r).unwrap();
    assert_eq!(c.regex.as_str(), "^(?:x(.*))$");
    assert_eq!(c.action, Action::HashMod);
    assert_eq!(c.to_proto(), r);
}
