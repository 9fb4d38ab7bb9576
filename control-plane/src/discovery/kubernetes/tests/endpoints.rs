//! The endpoints role: `endpoints_test.go`, and IPv6 addresses, the
//! protocol of pod targets, several pods, and unknown nodes and pods.

use serde_json::{json, Value};

use super::node::make_node;
use super::{assert_groups, ls, ls_all, store_of, tg, Pair};
use crate::discovery::kubernetes::roles::Role;
use crate::discovery::kubernetes::store::Kind;
use crate::discovery::TargetGroup;

/// `makeEndpoints`, in namespace `ns`.
fn make_endpoints(ns: &str) -> Value {
    json!({
        "metadata": {"name": "testendpoints", "namespace": ns},
        "subsets": [
            {
                "addresses": [{"ip": "1.2.3.4", "hostname": "testendpoint1", "nodeName": "foobar"}],
                "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
            },
            {
                "addresses": [{"ip": "2.3.4.5"}],
                "notReadyAddresses": [{"ip": "2.3.4.5"}],
                "ports": [{"name": "testport", "port": 9001, "protocol": "TCP"}],
            },
        ],
    })
}

/// The pod the `...Add` and `...Namespaces` tests point at: containers `c1`
/// (port 9000) and `c2` (port 9001), no phase nor conditions.
pub(super) fn make_testpod(ns: &str, pod_ip: &str) -> Value {
    json!({
        "metadata": {"name": "testpod", "namespace": ns, "uid": "deadbeef"},
        "spec": {
            "nodeName": "testnode",
            "containers": [
                {"name": "c1", "image": "c1:latest", "ports": [
                    {"name": "mainport", "containerPort": 9000, "protocol": "TCP"},
                ]},
                {"name": "c2", "image": "c2:latest", "ports": [
                    {"name": "sideport", "containerPort": 9001, "protocol": "TCP"},
                ]},
            ],
        },
        "status": {"hostIP": "2.3.4.5", "podIP": pod_ip},
    })
}

/// The pod labels of [`make_testpod`] with `pod_ip` 1.2.3.4.
pub(super) const TESTPOD_LABELS: [Pair; 7] = [
    ("__meta_kubernetes_pod_name", "testpod"),
    ("__meta_kubernetes_pod_ip", "1.2.3.4"),
    ("__meta_kubernetes_pod_ready", "unknown"),
    ("__meta_kubernetes_pod_phase", ""),
    ("__meta_kubernetes_pod_node_name", "testnode"),
    ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
    ("__meta_kubernetes_pod_uid", "deadbeef"),
];

/// The container labels of `c1`'s port 9000.
pub(super) const C1_LABELS: [Pair; 5] = [
    ("__meta_kubernetes_pod_container_name", "c1"),
    ("__meta_kubernetes_pod_container_image", "c1:latest"),
    ("__meta_kubernetes_pod_container_port_name", "mainport"),
    ("__meta_kubernetes_pod_container_port_number", "9000"),
    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
];

/// The container labels of `c2`'s port 9001.
pub(super) const C2_LABELS: [Pair; 5] = [
    ("__meta_kubernetes_pod_container_name", "c2"),
    ("__meta_kubernetes_pod_container_image", "c2:latest"),
    ("__meta_kubernetes_pod_container_port_name", "sideport"),
    ("__meta_kubernetes_pod_container_port_number", "9001"),
    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
];

const FIRST_TARGET: [Pair; 6] = [
    ("__address__", "1.2.3.4:9000"),
    ("__meta_kubernetes_endpoint_hostname", "testendpoint1"),
    ("__meta_kubernetes_endpoint_node_name", "foobar"),
    ("__meta_kubernetes_endpoint_port_name", "testport"),
    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
    ("__meta_kubernetes_endpoint_ready", "true"),
];

/// The node labels of `foobar` with `az`.
fn foobar_labels(az: &'static str) -> [Pair; 3] {
    [
        ("__meta_kubernetes_node_label_az", az),
        ("__meta_kubernetes_node_labelpresent_az", "true"),
        ("__meta_kubernetes_node_name", "foobar"),
    ]
}

/// The targets of [`make_endpoints`], with `first_extra` on the first.
fn endpoints_targets(first_extra: &[Pair]) -> Vec<scrapegrid_common::Labels> {
    let second = |ready: &'static str| {
        ls(&[
            ("__address__", "2.3.4.5:9001"),
            ("__meta_kubernetes_endpoint_port_name", "testport"),
            ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
            ("__meta_kubernetes_endpoint_ready", ready),
        ])
    };
    vec![
        ls_all(&[&FIRST_TARGET, first_extra]),
        second("true"),
        second("false"),
    ]
}

/// The group of [`make_endpoints`] in `ns`, with `extra` group labels.
fn endpoints_group(ns: &'static str, first_extra: &[Pair], extra: &[Pair]) -> TargetGroup {
    tg(
        &format!("endpoints/{ns}/testendpoints"),
        endpoints_targets(first_extra),
        ls_all(&[
            &[
                ("__meta_kubernetes_namespace", ns),
                ("__meta_kubernetes_endpoints_name", "testendpoints"),
            ],
            extra,
        ]),
    )
}

/// The service `testendpoints` with label `app/name`.
fn make_app_service(app_name: &str) -> Value {
    json!({"metadata": {
        "name": "testendpoints",
        "namespace": "default",
        "labels": {"app/name": app_name},
    }})
}

const APP_SERVICE_LABELS: [Pair; 3] = [
    ("__meta_kubernetes_service_label_app_name", "test"),
    ("__meta_kubernetes_service_labelpresent_app_name", "true"),
    ("__meta_kubernetes_service_name", "testendpoints"),
];

#[test]
fn before_run_ready_and_not_ready_addresses() {
    let store = store_of(vec![(Kind::Endpoints, make_endpoints("default"))]);
    assert_groups(
        Role::Endpoints,
        &store,
        false,
        vec![endpoints_group("default", &[], &[])],
    );
}

#[test]
fn add_with_pod_labels_and_uncovered_container_ports() {
    let endpoints = json!({
        "metadata": {"name": "testendpoints", "namespace": "default"},
        "subsets": [{
            "addresses": [{"ip": "4.3.2.1", "targetRef": {
                "kind": "Pod", "name": "testpod", "namespace": "default",
            }}],
            "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        }],
    });
    let store = store_of(vec![
        (Kind::Pod, make_testpod("default", "1.2.3.4")),
        (Kind::Endpoints, endpoints),
    ]);
    let want = tg(
        "endpoints/default/testendpoints",
        vec![
            ls_all(&[
                &[
                    ("__address__", "4.3.2.1:9000"),
                    ("__meta_kubernetes_endpoint_port_name", "testport"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "true"),
                    ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                    ("__meta_kubernetes_endpoint_address_target_name", "testpod"),
                ],
                &TESTPOD_LABELS,
                &C1_LABELS,
            ]),
            ls_all(&[
                &[("__address__", "1.2.3.4:9001")],
                &TESTPOD_LABELS,
                &C2_LABELS,
            ]),
        ],
        ls(&[
            ("__meta_kubernetes_endpoints_name", "testendpoints"),
            ("__meta_kubernetes_namespace", "default"),
        ]),
    );
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

#[test]
fn delete_removes_the_group() {
    let mut store = store_of(vec![(Kind::Endpoints, make_endpoints("default"))]);
    store
        .delete(Kind::Endpoints, &make_endpoints("default"))
        .expect("delete");
    assert_groups(Role::Endpoints, &store, false, vec![]);
}

#[test]
fn update() {
    let mut store = store_of(vec![(Kind::Endpoints, make_endpoints("default"))]);
    let updated = json!({
        "metadata": {"name": "testendpoints", "namespace": "default"},
        "subsets": [
            {"addresses": [{"ip": "1.2.3.4"}], "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}]},
            {"addresses": [{"ip": "2.3.4.5"}], "ports": [{"name": "testport", "port": 9001, "protocol": "TCP"}]},
        ],
    });
    store.upsert(Kind::Endpoints, updated).expect("upsert");
    let target = |address: &'static str| {
        ls(&[
            ("__address__", address),
            ("__meta_kubernetes_endpoint_port_name", "testport"),
            ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
            ("__meta_kubernetes_endpoint_ready", "true"),
        ])
    };
    let want = tg(
        "endpoints/default/testendpoints",
        vec![target("1.2.3.4:9000"), target("2.3.4.5:9001")],
        ls(&[
            ("__meta_kubernetes_namespace", "default"),
            ("__meta_kubernetes_endpoints_name", "testendpoints"),
        ]),
    );
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

#[test]
fn empty_subsets_keep_the_group_labels() {
    let mut store = store_of(vec![(Kind::Endpoints, make_endpoints("default"))]);
    let updated = json!({
        "metadata": {"name": "testendpoints", "namespace": "default"},
        "subsets": [],
    });
    store.upsert(Kind::Endpoints, updated).expect("upsert");
    let want = tg(
        "endpoints/default/testendpoints",
        vec![],
        ls(&[
            ("__meta_kubernetes_namespace", "default"),
            ("__meta_kubernetes_endpoints_name", "testendpoints"),
        ]),
    );
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

#[test]
fn with_service() {
    let store = store_of(vec![
        (Kind::Endpoints, make_endpoints("default")),
        (Kind::Service, make_app_service("test")),
    ]);
    let want = endpoints_group("default", &[], &APP_SERVICE_LABELS);
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

#[test]
fn with_service_update() {
    let mut store = store_of(vec![
        (Kind::Endpoints, make_endpoints("default")),
        (Kind::Service, make_app_service("test")),
    ]);
    let updated = json!({"metadata": {
        "name": "testendpoints",
        "namespace": "default",
        "labels": {"app/name": "svc", "component": "testing"},
    }});
    store.upsert(Kind::Service, updated).expect("upsert");
    let want = endpoints_group(
        "default",
        &[],
        &[
            ("__meta_kubernetes_service_label_app_name", "svc"),
            ("__meta_kubernetes_service_labelpresent_app_name", "true"),
            ("__meta_kubernetes_service_name", "testendpoints"),
            ("__meta_kubernetes_service_label_component", "testing"),
            ("__meta_kubernetes_service_labelpresent_component", "true"),
        ],
    );
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

#[test]
fn with_node_metadata() {
    let store = store_of(vec![
        (Kind::Endpoints, make_endpoints("default")),
        (Kind::Service, make_app_service("test")),
        (
            Kind::Node,
            make_node("foobar", "", "", json!({"az": "us-east1"}), Value::Null),
        ),
    ]);
    let want = endpoints_group("default", &foobar_labels("us-east1"), &APP_SERVICE_LABELS);
    assert_groups(Role::Endpoints, &store, true, vec![want]);
}

#[test]
fn with_updated_node_metadata() {
    let mut store = store_of(vec![
        (Kind::Endpoints, make_endpoints("default")),
        (
            Kind::Node,
            make_node("foobar", "", "", json!({"az": "us-east1"}), Value::Null),
        ),
        (Kind::Service, make_app_service("test")),
    ]);
    let updated = make_node("foobar", "", "", json!({"az": "eu-central1"}), Value::Null);
    store.upsert(Kind::Node, updated).expect("upsert");
    let want = endpoints_group(
        "default",
        &foobar_labels("eu-central1"),
        &APP_SERVICE_LABELS,
    );
    assert_groups(Role::Endpoints, &store, true, vec![want]);
}

#[test]
fn unknown_node_adds_no_node_labels() {
    let store = store_of(vec![
        (Kind::Endpoints, make_endpoints("default")),
        (
            Kind::Node,
            make_node("other", "", "", json!({"az": "us-east1"}), Value::Null),
        ),
    ]);
    assert_groups(
        Role::Endpoints,
        &store,
        true,
        vec![endpoints_group("default", &[], &[])],
    );
}

#[test]
fn namespaces() {
    let ns2_endpoints = json!({
        "metadata": {"name": "testendpoints", "namespace": "ns2"},
        "subsets": [{
            "addresses": [{"ip": "4.3.2.1", "targetRef": {
                "kind": "Pod", "name": "testpod", "namespace": "ns2",
            }}],
            "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        }],
    });
    let ns1_service = json!({"metadata": {
        "name": "testendpoints", "namespace": "ns1", "labels": {"app": "app1"},
    }});
    let mut ns2_pod = make_testpod("ns2", "4.3.2.1");
    ns2_pod["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .truncate(1);
    let store = store_of(vec![
        (Kind::Endpoints, make_endpoints("ns1")),
        (Kind::Endpoints, ns2_endpoints),
        (Kind::Service, ns1_service),
        (Kind::Pod, ns2_pod),
    ]);
    let ns1 = endpoints_group(
        "ns1",
        &[],
        &[
            ("__meta_kubernetes_service_label_app", "app1"),
            ("__meta_kubernetes_service_labelpresent_app", "true"),
            ("__meta_kubernetes_service_name", "testendpoints"),
        ],
    );
    let ns2 = tg(
        "endpoints/ns2/testendpoints",
        vec![ls_all(&[
            &[
                ("__address__", "4.3.2.1:9000"),
                ("__meta_kubernetes_endpoint_port_name", "testport"),
                ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                ("__meta_kubernetes_endpoint_ready", "true"),
                ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                ("__meta_kubernetes_endpoint_address_target_name", "testpod"),
            ],
            &TESTPOD_LABELS,
            &[("__meta_kubernetes_pod_ip", "4.3.2.1")],
            &C1_LABELS,
        ])],
        ls(&[
            ("__meta_kubernetes_namespace", "ns2"),
            ("__meta_kubernetes_endpoints_name", "testendpoints"),
        ]),
    );
    assert_groups(Role::Endpoints, &store, false, vec![ns1, ns2]);
}

#[test]
fn endpoints_labels_are_group_labels_and_annotations_are_not_read() {
    let endpoints = json!({
        "metadata": {
            "name": "e",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "x"},
            "annotations": {"a": "b"},
        },
    });
    let store = store_of(vec![(Kind::Endpoints, endpoints)]);
    let want = tg(
        "endpoints/ns/e",
        vec![],
        ls(&[
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_endpoints_name", "e"),
            (
                "__meta_kubernetes_endpoints_label_app_kubernetes_io_name",
                "x",
            ),
            (
                "__meta_kubernetes_endpoints_labelpresent_app_kubernetes_io_name",
                "true",
            ),
        ]),
    );
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

/// The endpoint port's protocol labels the pod container port (not the
/// container's own), the last container with the port wins, an IPv6
/// address is bracketed, a not-ready address to a pod counts as covering
/// its port, and a target to an unknown pod has no pod labels.
#[test]
fn pod_targets_edge_cases() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [
            {"name": "first", "ports": [{"name": "a", "containerPort": 53, "protocol": "TCP"}]},
            {"name": "second", "ports": [
                {"name": "b", "containerPort": 53, "protocol": "TCP"},
                {"name": "extra", "containerPort": 8080, "protocol": "TCP"},
            ]},
        ], "initContainers": [
            {"name": "init", "ports": [{"containerPort": 9999}]},
        ]},
        "status": {"podIP": "2001:db8::2"},
    });
    let endpoints = json!({
        "metadata": {"name": "e", "namespace": "ns"},
        "subsets": [{
            "notReadyAddresses": [
                {"ip": "2001:db8::2", "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}},
                {"ip": "10.0.0.9", "targetRef": {"kind": "Pod", "name": "gone", "namespace": "ns"}},
            ],
            "ports": [{"port": 53, "protocol": "UDP"}],
        }],
    });
    let store = store_of(vec![(Kind::Pod, pod), (Kind::Endpoints, endpoints)]);
    let pod_labels: [Pair; 3] = [
        ("__meta_kubernetes_pod_name", "p"),
        ("__meta_kubernetes_pod_ip", "2001:db8::2"),
        ("__meta_kubernetes_pod_ready", "unknown"),
    ];
    let want = tg(
        "endpoints/ns/e",
        vec![
            ls_all(&[
                &[
                    ("__address__", "[2001:db8::2]:53"),
                    ("__meta_kubernetes_endpoint_port_protocol", "UDP"),
                    ("__meta_kubernetes_endpoint_ready", "false"),
                    ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                    ("__meta_kubernetes_endpoint_address_target_name", "p"),
                    ("__meta_kubernetes_pod_container_name", "second"),
                    ("__meta_kubernetes_pod_container_port_name", "b"),
                    ("__meta_kubernetes_pod_container_port_number", "53"),
                    ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
                ],
                &pod_labels,
            ]),
            ls(&[
                ("__address__", "10.0.0.9:53"),
                ("__meta_kubernetes_endpoint_port_protocol", "UDP"),
                ("__meta_kubernetes_endpoint_ready", "false"),
                ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                ("__meta_kubernetes_endpoint_address_target_name", "gone"),
            ]),
            ls_all(&[
                &[
                    ("__address__", "[2001:db8::2]:8080"),
                    ("__meta_kubernetes_pod_container_name", "second"),
                    ("__meta_kubernetes_pod_container_port_name", "extra"),
                    ("__meta_kubernetes_pod_container_port_number", "8080"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                ],
                &pod_labels,
            ]),
        ],
        ls(&[
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_endpoints_name", "e"),
        ]),
    );
    assert_groups(Role::Endpoints, &store, false, vec![want]);
}

/// Uncovered ports come pod by pod in the order the pods first appear.
#[test]
fn uncovered_ports_follow_the_order_pods_appear_in() {
    let pod = |name: &str, ip: &str| {
        json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "ports": [
                {"containerPort": 80}, {"containerPort": 81},
            ]}]},
            "status": {"podIP": ip},
        })
    };
    let address = |name: &str, ip: &str| json!({"ip": ip, "targetRef": {"kind": "Pod", "name": name, "namespace": "ns"}});
    let endpoints = json!({
        "metadata": {"name": "e", "namespace": "ns"},
        "subsets": [{
            "addresses": [address("zz", "10.0.0.2"), address("aa", "10.0.0.1")],
            "ports": [{"port": 80}],
        }],
    });
    let store = store_of(vec![
        (Kind::Pod, pod("aa", "10.0.0.1")),
        (Kind::Pod, pod("zz", "10.0.0.2")),
        (Kind::Endpoints, endpoints),
    ]);
    let got = super::groups(Role::Endpoints, &store, false);
    let addresses: Vec<&str> = got[0]
        .targets
        .iter()
        .filter_map(|t| t.get("__address__"))
        .collect();
    assert_eq!(
        addresses,
        ["10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:81", "10.0.0.1:81"]
    );
}
