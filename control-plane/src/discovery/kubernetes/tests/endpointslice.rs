//! The endpointslice role: `endpointslice_test.go`, and ports without a
//! number, the container port's protocol, FQDN slices, `v1beta1` topology
//! and unknown services and nodes.
//!
//! Go's `...Delete`, `...Update` and `...EmptyEndpoints` cases change a
//! `v1beta1` slice while the discovery watches `v1`, so the fake client
//! never shows the change and they expect the unchanged slice. The ports
//! here test what those cases mean to: the slice deleted, updated, emptied.

use serde_json::{json, Value};

use super::endpoints::{make_testpod, C1_LABELS, C2_LABELS, TESTPOD_LABELS};
use super::node::make_node;
use super::{assert_groups, ls, ls_all, store_of, tg, Pair};
use crate::discovery::kubernetes::roles::Role;
use crate::discovery::kubernetes::store::Kind;
use crate::discovery::TargetGroup;
use scrapegrid_common::Labels;

/// `makeEndpointSliceV1`, in namespace `ns`.
fn make_slice_v1(ns: &str) -> Value {
    json!({
        "metadata": {
            "name": "testendpoints",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": "testendpoints"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP", "appProtocol": "http"}],
        "endpoints": [
            {
                "addresses": ["1.2.3.4"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "hostname": "testendpoint1",
                "targetRef": {},
                "nodeName": "foobar",
                "deprecatedTopology": {"topology": "value"},
            },
            {
                "addresses": ["2.3.4.5"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
            },
            {
                "addresses": ["3.4.5.6"],
                "conditions": {"ready": false, "serving": true, "terminating": true},
            },
        ],
    })
}

/// `makeEndpointSliceV1beta1`: no app protocol nor topology, the first
/// endpoint without conditions.
fn make_slice_v1beta1() -> Value {
    json!({
        "metadata": {
            "name": "testendpoints",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "testendpoints"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["1.2.3.4"], "hostname": "testendpoint1"},
            {
                "addresses": ["2.3.4.5"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
            },
            {
                "addresses": ["3.4.5.6"],
                "conditions": {"ready": false, "serving": true, "terminating": true},
            },
        ],
    })
}

const PORT_9000: [Pair; 3] = [
    ("__meta_kubernetes_endpointslice_port", "9000"),
    ("__meta_kubernetes_endpointslice_port_name", "testport"),
    ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
];

const APP_PROTOCOL: [Pair; 1] = [("__meta_kubernetes_endpointslice_port_app_protocol", "http")];

/// The conditions `ready`, `serving`, `terminating`.
fn conditions(ready: &'static str, serving: &'static str, terminating: &'static str) -> [Pair; 3] {
    [
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
            ready,
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
            serving,
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
            terminating,
        ),
    ]
}

/// The targets of [`make_slice_v1`], with `first_extra` on the first.
fn slice_v1_targets(first_extra: &[Pair]) -> Vec<Labels> {
    vec![
        ls_all(&[
            &[
                ("__address__", "1.2.3.4:9000"),
                ("__meta_kubernetes_endpointslice_address_target_kind", ""),
                ("__meta_kubernetes_endpointslice_address_target_name", ""),
                (
                    "__meta_kubernetes_endpointslice_endpoint_hostname",
                    "testendpoint1",
                ),
                (
                    "__meta_kubernetes_endpointslice_endpoint_topology_present_topology",
                    "true",
                ),
                (
                    "__meta_kubernetes_endpointslice_endpoint_topology_topology",
                    "value",
                ),
            ],
            &conditions("true", "true", "false"),
            &PORT_9000,
            &APP_PROTOCOL,
            first_extra,
        ]),
        ls_all(&[
            &[("__address__", "2.3.4.5:9000")],
            &conditions("true", "true", "false"),
            &PORT_9000,
            &APP_PROTOCOL,
        ]),
        ls_all(&[
            &[("__address__", "3.4.5.6:9000")],
            &conditions("false", "true", "true"),
            &PORT_9000,
            &APP_PROTOCOL,
        ]),
    ]
}

/// The group labels of a slice `testendpoints` in `ns`, with `extra`.
fn slice_labels(ns: &'static str, extra: &[Pair]) -> Labels {
    ls_all(&[
        &[
            ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
            ("__meta_kubernetes_namespace", ns),
            ("__meta_kubernetes_endpointslice_name", "testendpoints"),
        ],
        extra,
    ])
}

fn slice_group(ns: &'static str, targets: Vec<Labels>, extra: &[Pair]) -> TargetGroup {
    tg(
        &format!("endpointslice/{ns}/testendpoints"),
        targets,
        slice_labels(ns, extra),
    )
}

/// The service `testendpoints` in `default` with label `app/name`.
fn make_app_service(labels: Value) -> Value {
    json!({"metadata": {"name": "testendpoints", "namespace": "default", "labels": labels}})
}

const APP_SERVICE_LABELS: [Pair; 3] = [
    ("__meta_kubernetes_service_label_app_name", "test"),
    ("__meta_kubernetes_service_labelpresent_app_name", "true"),
    ("__meta_kubernetes_service_name", "testendpoints"),
];

fn foobar_labels(az: &'static str) -> [Pair; 3] {
    [
        ("__meta_kubernetes_node_label_az", az),
        ("__meta_kubernetes_node_labelpresent_az", "true"),
        ("__meta_kubernetes_node_name", "foobar"),
    ]
}

#[test]
fn before_run() {
    let store = store_of(vec![(Kind::EndpointSlice, make_slice_v1("default"))]);
    let want = slice_group("default", slice_v1_targets(&[]), &[]);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn before_run_v1beta1() {
    let store = store_of(vec![(Kind::EndpointSlice, make_slice_v1beta1())]);
    let targets = vec![
        ls_all(&[
            &[
                ("__address__", "1.2.3.4:9000"),
                (
                    "__meta_kubernetes_endpointslice_endpoint_hostname",
                    "testendpoint1",
                ),
            ],
            &PORT_9000,
        ]),
        ls_all(&[
            &[("__address__", "2.3.4.5:9000")],
            &conditions("true", "true", "false"),
            &PORT_9000,
        ]),
        ls_all(&[
            &[("__address__", "3.4.5.6:9000")],
            &conditions("false", "true", "true"),
            &PORT_9000,
        ]),
    ];
    let want = slice_group("default", targets, &[]);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn add_with_pod_labels_and_uncovered_container_ports() {
    let slice = json!({
        "metadata": {"name": "testendpoints", "namespace": "default"},
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        "endpoints": [{
            "addresses": ["4.3.2.1"],
            "targetRef": {"kind": "Pod", "name": "testpod", "namespace": "default"},
            "conditions": {"ready": false},
        }],
    });
    let store = store_of(vec![
        (Kind::Pod, make_testpod("default", "1.2.3.4")),
        (Kind::EndpointSlice, slice),
    ]);
    let targets = vec![
        ls_all(&[
            &[
                ("__address__", "4.3.2.1:9000"),
                ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
                (
                    "__meta_kubernetes_endpointslice_address_target_name",
                    "testpod",
                ),
                (
                    "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
                    "false",
                ),
            ],
            &PORT_9000,
            &C1_LABELS,
            &TESTPOD_LABELS,
        ]),
        ls_all(&[
            &[("__address__", "1.2.3.4:9001")],
            &C2_LABELS,
            &TESTPOD_LABELS,
        ]),
    ];
    let want = slice_group("default", targets, &[]);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn delete_removes_the_group() {
    let mut store = store_of(vec![(Kind::EndpointSlice, make_slice_v1("default"))]);
    store
        .delete(Kind::EndpointSlice, &make_slice_v1("default"))
        .expect("delete");
    assert_groups(Role::EndpointSlice, &store, false, vec![]);
}

#[test]
fn update() {
    let mut store = store_of(vec![(Kind::EndpointSlice, make_slice_v1("default"))]);
    let updated = json!({
        "metadata": {"name": "testendpoints", "namespace": "default"},
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["1.2.3.4"], "hostname": "testendpoint1"},
            {"addresses": ["2.3.4.5"], "conditions": {"ready": true}},
        ],
    });
    store.upsert(Kind::EndpointSlice, updated).expect("upsert");
    let targets = vec![
        ls_all(&[
            &[
                ("__address__", "1.2.3.4:9000"),
                (
                    "__meta_kubernetes_endpointslice_endpoint_hostname",
                    "testendpoint1",
                ),
            ],
            &PORT_9000,
        ]),
        ls_all(&[
            &[
                ("__address__", "2.3.4.5:9000"),
                (
                    "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
                    "true",
                ),
            ],
            &PORT_9000,
        ]),
    ];
    let want = slice_group("default", targets, &[]);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn empty_endpoints_keep_the_group_labels() {
    let mut store = store_of(vec![(Kind::EndpointSlice, make_slice_v1("default"))]);
    let updated = json!({
        "metadata": {"name": "testendpoints", "namespace": "default"},
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        "endpoints": [],
    });
    store.upsert(Kind::EndpointSlice, updated).expect("upsert");
    let want = slice_group("default", vec![], &[]);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn with_service() {
    let store = store_of(vec![
        (Kind::EndpointSlice, make_slice_v1("default")),
        (Kind::Service, make_app_service(json!({"app/name": "test"}))),
    ]);
    let want = slice_group("default", slice_v1_targets(&[]), &APP_SERVICE_LABELS);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn with_service_update() {
    let mut store = store_of(vec![
        (Kind::EndpointSlice, make_slice_v1("default")),
        (Kind::Service, make_app_service(json!({"app/name": "test"}))),
    ]);
    let updated = make_app_service(json!({"app/name": "svc", "component": "testing"}));
    store.upsert(Kind::Service, updated).expect("upsert");
    let extra = [
        ("__meta_kubernetes_service_label_app_name", "svc"),
        ("__meta_kubernetes_service_label_component", "testing"),
        ("__meta_kubernetes_service_labelpresent_app_name", "true"),
        ("__meta_kubernetes_service_labelpresent_component", "true"),
        ("__meta_kubernetes_service_name", "testendpoints"),
    ];
    let want = slice_group("default", slice_v1_targets(&[]), &extra);
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}

#[test]
fn with_node_metadata() {
    let store = store_of(vec![
        (Kind::EndpointSlice, make_slice_v1("default")),
        (
            Kind::Node,
            make_node("foobar", "", "", json!({"az": "us-east1"}), Value::Null),
        ),
        (Kind::Service, make_app_service(json!({"app/name": "test"}))),
    ]);
    let targets = slice_v1_targets(&foobar_labels("us-east1"));
    let want = slice_group("default", targets, &APP_SERVICE_LABELS);
    assert_groups(Role::EndpointSlice, &store, true, vec![want]);
}

#[test]
fn with_updated_node_metadata() {
    let mut store = store_of(vec![
        (Kind::EndpointSlice, make_slice_v1("default")),
        (
            Kind::Node,
            make_node("foobar", "", "", json!({"az": "us-east1"}), Value::Null),
        ),
        (Kind::Service, make_app_service(json!({"app/name": "test"}))),
    ]);
    let updated = make_node("foobar", "", "", json!({"az": "us-central1"}), Value::Null);
    store.upsert(Kind::Node, updated).expect("upsert");
    let targets = slice_v1_targets(&foobar_labels("us-central1"));
    let want = slice_group("default", targets, &APP_SERVICE_LABELS);
    assert_groups(Role::EndpointSlice, &store, true, vec![want]);
}

#[test]
fn namespaces() {
    let ns2_slice = json!({
        "metadata": {"name": "testendpoints", "namespace": "ns2"},
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}],
        "endpoints": [{
            "addresses": ["4.3.2.1"],
            "targetRef": {"kind": "Pod", "name": "testpod", "namespace": "ns2"},
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
        (Kind::EndpointSlice, make_slice_v1("ns1")),
        (Kind::EndpointSlice, ns2_slice),
        (Kind::Service, ns1_service),
        (Kind::Pod, ns2_pod),
    ]);
    let ns1 = slice_group(
        "ns1",
        slice_v1_targets(&[]),
        &[
            ("__meta_kubernetes_service_label_app", "app1"),
            ("__meta_kubernetes_service_labelpresent_app", "true"),
            ("__meta_kubernetes_service_name", "testendpoints"),
        ],
    );
    let ns2_target = ls_all(&[
        &[
            ("__address__", "4.3.2.1:9000"),
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            (
                "__meta_kubernetes_endpointslice_address_target_name",
                "testpod",
            ),
        ],
        &PORT_9000,
        &C1_LABELS,
        &TESTPOD_LABELS,
        &[("__meta_kubernetes_pod_ip", "4.3.2.1")],
    ]);
    let ns2 = slice_group("ns2", vec![ns2_target], &[]);
    assert_groups(Role::EndpointSlice, &store, false, vec![ns1, ns2]);
}

/// A port without a number gives the bare address (IPv6 unbracketed) and
/// covers no container port; the container port's protocol labels the pod
/// target; a service-name label naming no known service and a node name
/// naming no known node add nothing.
#[test]
fn ports_without_numbers_and_container_protocols() {
    let pod = json!({
        "metadata": {"name": "q", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "ports": [
            {"name": "web", "containerPort": 80, "protocol": "TCP"},
            {"name": "admin", "containerPort": 81, "protocol": "TCP"},
        ]}]},
        "status": {"podIP": "10.1.1.1"},
    });
    let slice = json!({
        "metadata": {"name": "s", "namespace": "ns", "labels": {"kubernetes.io/service-name": "missing"}},
        "addressType": "IPv6",
        "ports": [{"protocol": "UDP"}, {"name": "dns", "port": 80, "protocol": "UDP"}],
        "endpoints": [{
            "addresses": ["2001:db8::3"],
            "targetRef": {"kind": "Pod", "name": "q", "namespace": "ns"},
            "nodeName": "n1",
            "zone": "z",
        }],
    });
    let store = store_of(vec![(Kind::Pod, pod), (Kind::EndpointSlice, slice)]);
    let pod_labels: [Pair; 3] = [
        ("__meta_kubernetes_pod_name", "q"),
        ("__meta_kubernetes_pod_ip", "10.1.1.1"),
        ("__meta_kubernetes_pod_ready", "unknown"),
    ];
    let target_ref: [Pair; 2] = [
        ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
        ("__meta_kubernetes_endpointslice_address_target_name", "q"),
    ];
    let targets = vec![
        ls_all(&[
            &[
                ("__address__", "2001:db8::3"),
                ("__meta_kubernetes_endpointslice_port_protocol", "UDP"),
            ],
            &target_ref,
            &pod_labels,
        ]),
        ls_all(&[
            &[
                ("__address__", "[2001:db8::3]:80"),
                ("__meta_kubernetes_endpointslice_port", "80"),
                ("__meta_kubernetes_endpointslice_port_name", "dns"),
                ("__meta_kubernetes_endpointslice_port_protocol", "UDP"),
                ("__meta_kubernetes_pod_container_name", "c"),
                ("__meta_kubernetes_pod_container_port_name", "web"),
                ("__meta_kubernetes_pod_container_port_number", "80"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ],
            &target_ref,
            &pod_labels,
        ]),
        ls_all(&[
            &[
                ("__address__", "10.1.1.1:81"),
                ("__meta_kubernetes_pod_container_name", "c"),
                ("__meta_kubernetes_pod_container_port_name", "admin"),
                ("__meta_kubernetes_pod_container_port_number", "81"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ],
            &pod_labels,
        ]),
    ];
    let want = tg(
        "endpointslice/ns/s",
        targets,
        ls(&[
            ("__meta_kubernetes_endpointslice_address_type", "IPv6"),
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_endpointslice_name", "s"),
        ]),
    );
    assert_groups(Role::EndpointSlice, &store, true, vec![want]);
}

/// Targets go endpoint by endpoint, then port by port, then address by
/// address; `v1beta1`'s `topology` reads as `deprecatedTopology`, its keys
/// sanitized.
#[test]
fn target_order_and_v1beta1_topology() {
    let slice = json!({
        "metadata": {"name": "t", "namespace": "ns"},
        "addressType": "FQDN",
        "ports": [{"port": 1}, {"port": 2}],
        "endpoints": [
            {"addresses": ["a.example", "b.example"], "topology": {"kubernetes.io/hostname": "h"}},
            {"addresses": ["c.example"]},
        ],
    });
    let store = store_of(vec![(Kind::EndpointSlice, slice)]);
    let topology: [Pair; 2] = [
        (
            "__meta_kubernetes_endpointslice_endpoint_topology_kubernetes_io_hostname",
            "h",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_topology_present_kubernetes_io_hostname",
            "true",
        ),
    ];
    let target = |address: &'static str, port: &'static str, extra: &[Pair]| {
        ls_all(&[
            &[
                ("__address__", address),
                ("__meta_kubernetes_endpointslice_port", port),
            ],
            extra,
        ])
    };
    let want = tg(
        "endpointslice/ns/t",
        vec![
            target("a.example:1", "1", &topology),
            target("b.example:1", "1", &topology),
            target("a.example:2", "2", &topology),
            target("b.example:2", "2", &topology),
            target("c.example:1", "1", &[]),
            target("c.example:2", "2", &[]),
        ],
        ls(&[
            ("__meta_kubernetes_endpointslice_address_type", "FQDN"),
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_endpointslice_name", "t"),
        ]),
    );
    assert_groups(Role::EndpointSlice, &store, false, vec![want]);
}
