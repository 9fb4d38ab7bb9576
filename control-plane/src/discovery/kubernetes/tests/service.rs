//! The service role: `service_test.go`, and the labels of the other types.

use serde_json::{json, Value};

use super::{assert_groups, ls, store_of, tg};
use crate::discovery::kubernetes::roles::Role;
use crate::discovery::kubernetes::store::Kind;
use crate::discovery::TargetGroup;

/// `makeMultiPortService`.
fn make_multi_port_service() -> Value {
    json!({
        "metadata": {
            "name": "testservice",
            "namespace": "default",
            "labels": {"test-label": "testvalue"},
            "annotations": {"test-annotation": "testannotationvalue"},
        },
        "spec": {
            "ports": [
                {"name": "testport0", "protocol": "TCP", "port": 30900},
                {"name": "testport1", "protocol": "UDP", "port": 30901},
            ],
            "type": "ClusterIP",
            "clusterIP": "10.0.0.1",
        },
    })
}

/// `makeService`, in namespace `ns`.
fn make_service(ns: &str) -> Value {
    json!({
        "metadata": {"name": "testservice", "namespace": ns},
        "spec": {
            "ports": [{"name": "testport", "protocol": "TCP", "port": 30900}],
            "type": "ClusterIP",
            "clusterIP": "10.0.0.1",
        },
    })
}

/// `makeExternalService`.
fn make_external_service() -> Value {
    json!({
        "metadata": {"name": "testservice-external", "namespace": "default"},
        "spec": {
            "ports": [{"name": "testport", "protocol": "TCP", "port": 31900}],
            "type": "ExternalName",
            "externalName": "FooExternalName",
        },
    })
}

/// `makeLoadBalancerService`.
fn make_load_balancer_service() -> Value {
    json!({
        "metadata": {"name": "testservice-loadbalancer", "namespace": "default"},
        "spec": {
            "ports": [{"name": "testport", "protocol": "TCP", "port": 31900}],
            "type": "LoadBalancer",
            "loadBalancerIP": "127.0.0.1",
            "clusterIP": "10.0.0.1",
        },
    })
}

/// The group of `makeService` in `ns`.
fn expected_service_group(ns: &'static str) -> TargetGroup {
    let address = format!("testservice.{ns}.svc:30900");
    tg(
        &format!("svc/{ns}/testservice"),
        vec![ls(&[
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__address__", address.as_str()),
            ("__meta_kubernetes_service_type", "ClusterIP"),
            ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
            ("__meta_kubernetes_service_port_name", "testport"),
            ("__meta_kubernetes_service_port_number", "30900"),
        ])],
        ls(&[
            ("__meta_kubernetes_service_name", "testservice"),
            ("__meta_kubernetes_namespace", ns),
        ]),
    )
}

#[test]
fn add_cluster_ip_external_name_and_load_balancer() {
    let store = store_of(vec![
        (Kind::Service, make_service("default")),
        (Kind::Service, make_external_service()),
        (Kind::Service, make_load_balancer_service()),
    ]);
    let external = tg(
        "svc/default/testservice-external",
        vec![ls(&[
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__address__", "testservice-external.default.svc:31900"),
            ("__meta_kubernetes_service_type", "ExternalName"),
            ("__meta_kubernetes_service_port_name", "testport"),
            ("__meta_kubernetes_service_port_number", "31900"),
            ("__meta_kubernetes_service_external_name", "FooExternalName"),
        ])],
        ls(&[
            ("__meta_kubernetes_service_name", "testservice-external"),
            ("__meta_kubernetes_namespace", "default"),
        ]),
    );
    let load_balancer = tg(
        "svc/default/testservice-loadbalancer",
        vec![ls(&[
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__address__", "testservice-loadbalancer.default.svc:31900"),
            ("__meta_kubernetes_service_type", "LoadBalancer"),
            ("__meta_kubernetes_service_port_name", "testport"),
            ("__meta_kubernetes_service_port_number", "31900"),
            ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
            ("__meta_kubernetes_service_loadbalancer_ip", "127.0.0.1"),
        ])],
        ls(&[
            ("__meta_kubernetes_service_name", "testservice-loadbalancer"),
            ("__meta_kubernetes_namespace", "default"),
        ]),
    );
    let want = vec![expected_service_group("default"), external, load_balancer];
    assert_groups(Role::Service, &store, false, want);
}

#[test]
fn delete_removes_the_group() {
    let mut store = store_of(vec![(Kind::Service, make_service("default"))]);
    store
        .delete(Kind::Service, &make_service("default"))
        .expect("delete");
    assert_groups(Role::Service, &store, false, vec![]);
}

#[test]
fn update_to_multiple_ports() {
    let mut store = store_of(vec![(Kind::Service, make_service("default"))]);
    store
        .upsert(Kind::Service, make_multi_port_service())
        .expect("upsert");
    let want = tg(
        "svc/default/testservice",
        vec![
            ls(&[
                ("__meta_kubernetes_service_port_protocol", "TCP"),
                ("__address__", "testservice.default.svc:30900"),
                ("__meta_kubernetes_service_type", "ClusterIP"),
                ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                ("__meta_kubernetes_service_port_name", "testport0"),
                ("__meta_kubernetes_service_port_number", "30900"),
            ]),
            ls(&[
                ("__meta_kubernetes_service_port_protocol", "UDP"),
                ("__address__", "testservice.default.svc:30901"),
                ("__meta_kubernetes_service_type", "ClusterIP"),
                ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                ("__meta_kubernetes_service_port_name", "testport1"),
                ("__meta_kubernetes_service_port_number", "30901"),
            ]),
        ],
        ls(&[
            ("__meta_kubernetes_service_name", "testservice"),
            ("__meta_kubernetes_namespace", "default"),
            ("__meta_kubernetes_service_label_test_label", "testvalue"),
            ("__meta_kubernetes_service_labelpresent_test_label", "true"),
            (
                "__meta_kubernetes_service_annotation_test_annotation",
                "testannotationvalue",
            ),
            (
                "__meta_kubernetes_service_annotationpresent_test_annotation",
                "true",
            ),
        ]),
    );
    assert_groups(Role::Service, &store, false, vec![want]);
}

#[test]
fn namespaces() {
    let store = store_of(vec![
        (Kind::Service, make_service("ns1")),
        (Kind::Service, make_service("ns2")),
    ]);
    let want = vec![expected_service_group("ns1"), expected_service_group("ns2")];
    assert_groups(Role::Service, &store, false, want);
}

#[test]
fn all_namespaces() {
    let store = store_of(vec![
        (Kind::Service, make_service("own-ns")),
        (Kind::Service, make_service("non-own-ns")),
    ]);
    // In key order: "non-own-ns/..." sorts first.
    let want = vec![
        expected_service_group("non-own-ns"),
        expected_service_group("own-ns"),
    ];
    assert_groups(Role::Service, &store, false, want);
}

#[test]
fn node_port_has_a_cluster_ip_and_no_load_balancer_ip() {
    let svc = json!({
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {
            "ports": [{"port": 80}],
            "type": "NodePort",
            "clusterIP": "10.0.0.2",
            "loadBalancerIP": "192.0.2.1",
            "externalName": "ignored",
        },
    });
    let store = store_of(vec![(Kind::Service, svc)]);
    let want = tg(
        "svc/ns/s",
        vec![ls(&[
            ("__address__", "s.ns.svc:80"),
            ("__meta_kubernetes_service_type", "NodePort"),
            ("__meta_kubernetes_service_cluster_ip", "10.0.0.2"),
            ("__meta_kubernetes_service_port_number", "80"),
        ])],
        ls(&[
            ("__meta_kubernetes_service_name", "s"),
            ("__meta_kubernetes_namespace", "ns"),
        ]),
    );
    assert_groups(Role::Service, &store, false, vec![want]);
}

#[test]
fn service_without_ports_has_no_targets() {
    let svc = json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"clusterIP": "None"}});
    let store = store_of(vec![(Kind::Service, svc)]);
    let want = tg(
        "svc/ns/s",
        vec![],
        ls(&[
            ("__meta_kubernetes_service_name", "s"),
            ("__meta_kubernetes_namespace", "ns"),
        ]),
    );
    assert_groups(Role::Service, &store, false, vec![want]);
}
