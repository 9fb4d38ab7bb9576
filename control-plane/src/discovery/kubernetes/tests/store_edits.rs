//! The store's edits (upsert, delete, replace), decoding as Go decodes
//! (nulls, missing fields, bad objects refused without a panic), and the
//! label name and address helpers.

use serde_json::json;

use super::{groups, ls, store_of};
use crate::discovery::kubernetes::roles::{join_host_port, sanitize_label_name, Role};
use crate::discovery::kubernetes::store::{Kind, Store};

fn pod(ns: &str, name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": ns}, "status": {"podIP": "10.0.0.1"}})
}

fn pod_sources(store: &Store) -> Vec<String> {
    groups(Role::Pod, store, false)
        .into_iter()
        .map(|g| g.source)
        .collect()
}

#[test]
fn upsert_replaces_the_object_with_the_same_namespace_and_name() {
    let mut store = store_of(vec![(Kind::Pod, pod("a", "p")), (Kind::Pod, pod("b", "p"))]);
    let mut changed = pod("a", "p");
    changed["status"]["podIP"] = json!("10.0.0.2");
    store.upsert(Kind::Pod, changed).expect("upsert");
    assert_eq!(store.len(Kind::Pod), 2);
    let got = groups(Role::Pod, &store, false);
    assert_eq!(
        got[0].labels.get("__meta_kubernetes_pod_ip"),
        Some("10.0.0.2")
    );
    assert_eq!(
        got[1].labels.get("__meta_kubernetes_pod_ip"),
        Some("10.0.0.1")
    );
}

#[test]
fn delete_uses_the_metadata_only_and_ignores_unknown_objects() {
    let mut store = store_of(vec![(Kind::Pod, pod("a", "p")), (Kind::Pod, pod("a", "q"))]);
    store
        .delete(
            Kind::Pod,
            &json!({"metadata": {"name": "p", "namespace": "a"}, "spec": 7}),
        )
        .expect("delete");
    store.delete(Kind::Pod, &pod("a", "nope")).expect("unknown");
    store.delete(Kind::Pod, &json!({})).expect("no metadata");
    store
        .delete(Kind::Service, &pod("a", "q"))
        .expect("other kind");
    assert_eq!(pod_sources(&store), ["pod/a/q"]);
    assert!(store
        .delete(Kind::Pod, &json!({"metadata": {"name": 1}}))
        .is_err());
}

#[test]
fn replace_in_one_namespace_keeps_the_others() {
    let mut store = store_of(vec![
        (Kind::Pod, pod("a", "old")),
        (Kind::Pod, pod("b", "kept")),
    ]);
    store
        .replace(
            Kind::Pod,
            Some("a"),
            vec![pod("a", "new1"), pod("a", "new2")],
        )
        .expect("replace");
    assert_eq!(
        pod_sources(&store),
        ["pod/a/new1", "pod/a/new2", "pod/b/kept"]
    );
    store
        .replace(Kind::Pod, None, vec![pod("c", "only")])
        .expect("replace all");
    assert_eq!(pod_sources(&store), ["pod/c/only"]);
}

#[test]
fn replace_skips_unreadable_items_and_applies_the_others() {
    let mut store = store_of(vec![(Kind::Pod, pod("a", "deleted"))]);
    let bad = json!({"metadata": {"name": "x", "namespace": "a"}, "status": {"podIP": 1}});
    let result = store.replace(
        Kind::Pod,
        Some("a"),
        vec![pod("a", "p"), bad, pod("a", "q")],
    );
    assert!(result.is_err());
    assert_eq!(pod_sources(&store), ["pod/a/p", "pod/a/q"]);
}

#[test]
fn nodes_are_keyed_by_name() {
    let node = |name: &str| json!({"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": "1.1.1.1"}]}});
    let mut store = store_of(vec![(Kind::Node, node("n1")), (Kind::Node, node("n2"))]);
    assert!(store.node("n1").is_some());
    store
        .replace(Kind::Node, None, vec![node("n3")])
        .expect("replace");
    assert!(store.node("n1").is_none());
    assert!(store.node("n3").is_some());
    store.delete(Kind::Node, &node("n3")).expect("delete");
    assert_eq!(store.len(Kind::Node), 0);
}

#[test]
fn unreadable_objects_are_errors_and_change_nothing() {
    let mut store = store_of(vec![(Kind::Pod, pod("a", "p"))]);
    let bad = [
        json!("not an object"),
        json!({"metadata": {"name": ["p"]}}),
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"ports": [{"containerPort": "80"}]}]}}),
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"ports": [{"containerPort": 1e10}]}]}}),
        json!({"metadata": {"name": "x"}, "status": {"conditions": {"type": "Ready"}}}),
    ];
    for object in bad {
        assert!(store.upsert(Kind::Pod, object).is_err());
    }
    assert_eq!(pod_sources(&store), ["pod/a/p"]);
    let slice = json!({"metadata": {"name": "s"}, "endpoints": [{"conditions": {"ready": "yes"}}]});
    assert!(store.upsert(Kind::EndpointSlice, slice).is_err());
    assert_eq!(store.len(Kind::EndpointSlice), 0);
}

/// A `null` reads as the zero value, as Go's decoder reads it: no label
/// for pointers (`Option`), `""` or empty for the rest; unknown fields are
/// ignored.
#[test]
fn nulls_and_unknown_fields_decode_as_go_decodes_them() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "labels": null,
            "creationTimestamp": null,
            "ownerReferences": [{"kind": "ReplicaSet", "name": "r", "controller": null}],
        },
        "spec": {"nodeName": null, "containers": [{"name": "c", "ports": null, "image": null}]},
        "status": {"podIP": "10.0.0.1", "conditions": null, "phase": null},
    });
    let slice = json!({
        "metadata": {"name": "s", "namespace": "ns"},
        "addressType": "IPv4",
        "ports": [{"port": 80, "name": null}],
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": null, "serving": false}, "hostname": null, "targetRef": null}],
    });
    let store = store_of(vec![(Kind::Pod, pod), (Kind::EndpointSlice, slice)]);
    let pods = groups(Role::Pod, &store, false);
    assert_eq!(
        pods[0].labels,
        ls(&[
            ("__meta_kubernetes_pod_name", "p"),
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_pod_ip", "10.0.0.1"),
            ("__meta_kubernetes_pod_ready", "unknown"),
        ])
    );
    assert_eq!(
        pods[0].targets,
        [ls(&[
            ("__address__", "10.0.0.1"),
            ("__meta_kubernetes_pod_container_name", "c"),
            ("__meta_kubernetes_pod_container_init", "false"),
        ])]
    );
    let slices = groups(Role::EndpointSlice, &store, false);
    assert_eq!(
        slices[0].targets,
        [ls(&[
            ("__address__", "10.0.0.1:80"),
            ("__meta_kubernetes_endpointslice_port", "80"),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
                "false"
            ),
        ])]
    );
}

#[test]
fn label_names_are_sanitized_per_character() {
    assert_eq!(
        sanitize_label_name("app.kubernetes.io/name"),
        "app_kubernetes_io_name"
    );
    assert_eq!(sanitize_label_name("a-b_C9"), "a_b_C9");
    assert_eq!(sanitize_label_name("zé€"), "z__");
    assert_eq!(sanitize_label_name(""), "");
}

#[test]
fn host_and_port_join_as_go_joins_them() {
    assert_eq!(join_host_port("1.2.3.4", "80"), "1.2.3.4:80");
    assert_eq!(join_host_port("::1", "80"), "[::1]:80");
    assert_eq!(join_host_port("fe80::1%eth0", "9"), "[fe80::1%eth0]:9");
    assert_eq!(join_host_port("", "80"), ":80");
    assert_eq!(join_host_port("a.b", ""), "a.b:");
}
