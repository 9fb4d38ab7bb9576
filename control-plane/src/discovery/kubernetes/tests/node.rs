//! The node role: `node_test.go`, the address priority and the node labels
//! `attach_metadata.node` adds.

use serde_json::{json, Value};

use super::{assert_groups, groups, ls, store_of, tg};
use crate::discovery::kubernetes::roles::Role;
use crate::discovery::kubernetes::store::Kind;

/// `makeNode`: one InternalIP address, kubelet on 10250.
pub(super) fn make_node(
    name: &str,
    address: &str,
    provider_id: &str,
    labels: Value,
    annotations: Value,
) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"providerID": provider_id},
        "status": {
            "addresses": [{"type": "InternalIP", "address": address}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    })
}

/// `makeEnumeratedNode`.
fn make_enumerated_node(i: usize) -> Value {
    make_node(
        &format!("test{i}"),
        "1.2.3.4",
        &format!("aws:///de-west-3a/i-{i}"),
        json!({}),
        json!({}),
    )
}

#[test]
fn before_run_gives_labels_annotations_and_the_kubelet_address() {
    let store = store_of(vec![(
        Kind::Node,
        make_node(
            "test",
            "1.2.3.4",
            "aws:///nl-north-7b/i-03149834983492827",
            json!({"test-label": "testvalue"}),
            json!({"test-annotation": "testannotationvalue"}),
        ),
    )]);
    let want = tg(
        "node/test",
        vec![ls(&[
            ("__address__", "1.2.3.4:10250"),
            ("instance", "test"),
            ("__meta_kubernetes_node_address_InternalIP", "1.2.3.4"),
        ])],
        ls(&[
            ("__meta_kubernetes_node_name", "test"),
            (
                "__meta_kubernetes_node_provider_id",
                "aws:///nl-north-7b/i-03149834983492827",
            ),
            ("__meta_kubernetes_node_label_test_label", "testvalue"),
            ("__meta_kubernetes_node_labelpresent_test_label", "true"),
            (
                "__meta_kubernetes_node_annotation_test_annotation",
                "testannotationvalue",
            ),
            (
                "__meta_kubernetes_node_annotationpresent_test_annotation",
                "true",
            ),
        ]),
    );
    assert_groups(Role::Node, &store, false, vec![want]);
}

#[test]
fn add() {
    let store = store_of(vec![(Kind::Node, make_enumerated_node(1))]);
    let want = tg(
        "node/test1",
        vec![ls(&[
            ("__address__", "1.2.3.4:10250"),
            ("instance", "test1"),
            ("__meta_kubernetes_node_address_InternalIP", "1.2.3.4"),
        ])],
        ls(&[
            ("__meta_kubernetes_node_name", "test1"),
            (
                "__meta_kubernetes_node_provider_id",
                "aws:///de-west-3a/i-1",
            ),
        ]),
    );
    assert_groups(Role::Node, &store, false, vec![want]);
}

#[test]
fn delete_removes_the_group() {
    let node = make_enumerated_node(0);
    let mut store = store_of(vec![(Kind::Node, node.clone())]);
    assert_eq!(groups(Role::Node, &store, false).len(), 1);
    store.delete(Kind::Node, &node).expect("delete");
    assert_groups(Role::Node, &store, false, vec![]);
}

#[test]
fn update_replaces_labels_and_provider_id() {
    let mut store = store_of(vec![(Kind::Node, make_enumerated_node(0))]);
    let updated = make_node(
        "test0",
        "1.2.3.4",
        "aws:///fr-south-1c/i-49508290343823952",
        json!({"Unschedulable": "true"}),
        json!({}),
    );
    store.upsert(Kind::Node, updated).expect("upsert");
    let want = tg(
        "node/test0",
        vec![ls(&[
            ("__address__", "1.2.3.4:10250"),
            ("instance", "test0"),
            ("__meta_kubernetes_node_address_InternalIP", "1.2.3.4"),
        ])],
        ls(&[
            ("__meta_kubernetes_node_label_Unschedulable", "true"),
            ("__meta_kubernetes_node_labelpresent_Unschedulable", "true"),
            ("__meta_kubernetes_node_name", "test0"),
            (
                "__meta_kubernetes_node_provider_id",
                "aws:///fr-south-1c/i-49508290343823952",
            ),
        ]),
    );
    assert_groups(Role::Node, &store, false, vec![want]);
}

#[test]
fn address_by_type_priority_with_the_first_address_of_each_type() {
    let node = json!({
        "metadata": {"name": "n"},
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "host-a"},
                {"type": "ExternalIP", "address": "2001:db8::1"},
                {"type": "ExternalIP", "address": "203.0.113.9"},
                {"type": "Hostname", "address": "host-b"},
                {"type": "Weird-Type", "address": "w"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}},
        },
    });
    let store = store_of(vec![(Kind::Node, node)]);
    let want = tg(
        "node/n",
        vec![ls(&[
            ("__address__", "[2001:db8::1]:10255"),
            ("instance", "n"),
            ("__meta_kubernetes_node_address_ExternalIP", "2001:db8::1"),
            ("__meta_kubernetes_node_address_Hostname", "host-a"),
            ("__meta_kubernetes_node_address_Weird_Type", "w"),
        ])],
        ls(&[("__meta_kubernetes_node_name", "n")]),
    );
    assert_groups(Role::Node, &store, false, vec![want]);
}

#[test]
fn legacy_host_ip_beats_hostname_and_internal_dns_beats_external_ip() {
    let node =
        |addresses: Value| json!({"metadata": {"name": "n"}, "status": {"addresses": addresses}});
    let address_of = |addresses: Value| {
        let store = store_of(vec![(Kind::Node, node(addresses))]);
        let got = groups(Role::Node, &store, false);
        got[0].targets[0].get("__address__").map(str::to_string)
    };
    let legacy = json!([
        {"type": "Hostname", "address": "h"},
        {"type": "LegacyHostIP", "address": "10.0.0.1"},
    ]);
    assert_eq!(address_of(legacy).as_deref(), Some("10.0.0.1:0"));
    let dns = json!([
        {"type": "ExternalIP", "address": "1.1.1.1"},
        {"type": "InternalDNS", "address": "n.internal"},
    ]);
    assert_eq!(address_of(dns).as_deref(), Some("n.internal:0"));
}

#[test]
fn node_without_a_known_address_type_yields_no_group() {
    let none = json!({"metadata": {"name": "n"}, "status": {"addresses": []}});
    let unknown = json!({
        "metadata": {"name": "m"},
        "status": {"addresses": [{"type": "Other", "address": "1.2.3.4"}]},
    });
    let store = store_of(vec![(Kind::Node, none), (Kind::Node, unknown)]);
    assert_groups(Role::Node, &store, false, vec![]);
}

#[test]
fn label_keys_are_sanitized_per_character() {
    let node = make_node(
        "n",
        "1.2.3.4",
        "",
        json!({"app.kubernetes.io/name": "x", "zé": "y"}),
        json!({}),
    );
    let store = store_of(vec![(Kind::Node, node)]);
    let got = groups(Role::Node, &store, false);
    let want = ls(&[
        ("__meta_kubernetes_node_name", "n"),
        ("__meta_kubernetes_node_label_app_kubernetes_io_name", "x"),
        (
            "__meta_kubernetes_node_labelpresent_app_kubernetes_io_name",
            "true",
        ),
        ("__meta_kubernetes_node_label_z_", "y"),
        ("__meta_kubernetes_node_labelpresent_z_", "true"),
    ]);
    assert_eq!(got[0].labels, want);
}
