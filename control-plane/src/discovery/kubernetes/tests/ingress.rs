//! The ingress role: `ingress_test.go` (TLS none, all, mixed, wildcard;
//! its `v1beta1` cases decode the same JSON), and wildcard and path edge
//! cases.

use serde_json::{json, Value};

use super::{assert_groups, groups, ls, store_of, tg};
use crate::discovery::kubernetes::roles::Role;
use crate::discovery::kubernetes::store::Kind;
use crate::discovery::TargetGroup;
use scrapegrid_common::Labels;

#[derive(Clone, Copy)]
enum Tls {
    No,
    Yes,
    Mixed,
    Wildcard,
}

/// `makeIngress`, in namespace `ns`. The rule without paths has
/// `"paths": null`, as Go encodes a nil slice.
fn make_ingress(ns: &str, tls: Tls) -> Value {
    let tls = match tls {
        Tls::No => Value::Null,
        Tls::Yes => json!([{"hosts": ["example.com", "test.example.com"]}]),
        Tls::Mixed => json!([{"hosts": ["example.com"]}]),
        Tls::Wildcard => json!([{"hosts": ["*.example.com"]}]),
    };
    json!({
        "metadata": {
            "name": "testingress",
            "namespace": ns,
            "labels": {"test/label": "testvalue"},
            "annotations": {"test/annotation": "testannotationvalue"},
        },
        "spec": {
            "ingressClassName": "testclass",
            "tls": tls,
            "rules": [
                {"host": "example.com", "http": {"paths": [{"path": "/"}, {"path": "/foo"}]}},
                // No paths: no target.
                {"host": "nobackend.example.com", "http": {"paths": null}},
                {"host": "test.example.com", "http": {"paths": [{}]}},
            ],
        },
    })
}

/// `expectedTargetGroups`.
fn expected_group(ns: &'static str, tls: Tls) -> TargetGroup {
    let (scheme1, scheme2) = match tls {
        Tls::No => ("http", "http"),
        Tls::Yes => ("https", "https"),
        Tls::Mixed => ("https", "http"),
        Tls::Wildcard => ("http", "https"),
    };
    let target = |scheme: &str, host: &str, path: &str| {
        ls(&[
            ("__meta_kubernetes_ingress_scheme", scheme),
            ("__meta_kubernetes_ingress_host", host),
            ("__meta_kubernetes_ingress_path", path),
            ("__address__", host),
        ])
    };
    tg(
        &format!("ingress/{ns}/testingress"),
        vec![
            target(scheme1, "example.com", "/"),
            target(scheme1, "example.com", "/foo"),
            target(scheme2, "test.example.com", "/"),
        ],
        ls(&[
            ("__meta_kubernetes_ingress_name", "testingress"),
            ("__meta_kubernetes_namespace", ns),
            ("__meta_kubernetes_ingress_label_test_label", "testvalue"),
            ("__meta_kubernetes_ingress_labelpresent_test_label", "true"),
            (
                "__meta_kubernetes_ingress_annotation_test_annotation",
                "testannotationvalue",
            ),
            (
                "__meta_kubernetes_ingress_annotationpresent_test_annotation",
                "true",
            ),
            ("__meta_kubernetes_ingress_class_name", "testclass"),
        ]),
    )
}

#[test]
fn add_with_each_tls_mode() {
    for tls in [Tls::No, Tls::Yes, Tls::Mixed, Tls::Wildcard] {
        let store = store_of(vec![(Kind::Ingress, make_ingress("default", tls))]);
        assert_groups(
            Role::Ingress,
            &store,
            false,
            vec![expected_group("default", tls)],
        );
    }
}

#[test]
fn namespaces() {
    let store = store_of(vec![
        (Kind::Ingress, make_ingress("ns1", Tls::No)),
        (Kind::Ingress, make_ingress("ns2", Tls::No)),
    ]);
    let want = vec![
        expected_group("ns1", Tls::No),
        expected_group("ns2", Tls::No),
    ];
    assert_groups(Role::Ingress, &store, false, want);
}

#[test]
fn delete_removes_the_group() {
    let mut store = store_of(vec![(Kind::Ingress, make_ingress("default", Tls::No))]);
    store
        .delete(Kind::Ingress, &make_ingress("default", Tls::No))
        .expect("delete");
    assert_groups(Role::Ingress, &store, false, vec![]);
}

/// Returns `(scheme, path)` of each target of an ingress with `rules` and
/// TLS hosts `tls_hosts`.
fn schemes_and_paths(rules: Value, tls_hosts: Value) -> Vec<(String, String)> {
    let ingress = json!({
        "metadata": {"name": "i", "namespace": "ns"},
        "spec": {"tls": [{"hosts": tls_hosts}], "rules": rules},
    });
    let store = store_of(vec![(Kind::Ingress, ingress)]);
    let got = groups(Role::Ingress, &store, false);
    got[0].targets.iter().map(scheme_and_path).collect()
}

fn scheme_and_path(target: &Labels) -> (String, String) {
    let get = |name: &str| target.get(name).unwrap_or_default().to_string();
    (
        get("__meta_kubernetes_ingress_scheme"),
        get("__meta_kubernetes_ingress_path"),
    )
}

#[test]
fn wildcards_match_exactly_one_leading_label() {
    let rules = json!([
        {"host": "a.example.com"},
        {"host": "a.b.example.com"},
        {"host": "example.com"},
        {"host": "a.example.org"},
    ]);
    let got = schemes_and_paths(rules, json!(["*.example.com"]));
    let schemes: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(schemes, ["https", "http", "http", "http"]);

    // A lone `*` matches any one-label host.
    let got = schemes_and_paths(json!([{"host": "intranet"}, {"host": "a.b"}]), json!(["*"]));
    let schemes: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(schemes, ["https", "http"]);
}

#[test]
fn a_rule_without_http_has_path_slash_and_one_with_empty_paths_none() {
    let rules = json!([
        {"host": "a"},
        {"host": "b", "http": {}},
        {"host": "c", "http": {"paths": []}},
        {"host": "d", "http": {"paths": [{"path": ""}, {"path": "/x"}]}},
    ]);
    let got = schemes_and_paths(rules, json!([]));
    let paths: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, ["/", "/", "/x"]);
}

#[test]
fn class_name_comes_from_the_spec_only() {
    let ingress = json!({
        "metadata": {
            "name": "i",
            "namespace": "ns",
            "annotations": {"kubernetes.io/ingress.class": "nginx"},
        },
        "spec": {"rules": [{"host": "h"}]},
    });
    let store = store_of(vec![(Kind::Ingress, ingress)]);
    let want = tg(
        "ingress/ns/i",
        vec![ls(&[
            ("__address__", "h"),
            ("__meta_kubernetes_ingress_scheme", "http"),
            ("__meta_kubernetes_ingress_host", "h"),
            ("__meta_kubernetes_ingress_path", "/"),
        ])],
        ls(&[
            ("__meta_kubernetes_ingress_name", "i"),
            ("__meta_kubernetes_namespace", "ns"),
            (
                "__meta_kubernetes_ingress_annotation_kubernetes_io_ingress_class",
                "nginx",
            ),
            (
                "__meta_kubernetes_ingress_annotationpresent_kubernetes_io_ingress_class",
                "true",
            ),
        ]),
    );
    assert_groups(Role::Ingress, &store, false, vec![want]);
}
