//! The pod role: `pod_test.go`, and IPv6, init containers with ports,
//! phases, controllers and an unknown node.

use serde_json::{json, Value};

use super::node::make_node;
use super::{assert_groups, groups, ls, ls_all, store_of, tg, Pair};
use crate::discovery::kubernetes::roles::Role;
use crate::discovery::kubernetes::store::Kind;
use crate::discovery::TargetGroup;

/// `makeMultiPortPods`.
fn make_multi_port_pod() -> Value {
    json!({
        "metadata": {
            "name": "testpod",
            "namespace": "default",
            "labels": {"test/label": "testvalue"},
            "annotations": {"test/annotation": "testannotationvalue"},
            "uid": "abc123",
            "ownerReferences": [
                {"kind": "testcontrollerkind", "name": "testcontrollername", "controller": true},
            ],
        },
        "spec": {
            "nodeName": "testnode",
            "containers": [
                {
                    "name": "testcontainer0",
                    "image": "testcontainer0:latest",
                    "ports": [
                        {"name": "testport0", "protocol": "TCP", "containerPort": 9000},
                        {"name": "testport1", "protocol": "UDP", "containerPort": 9001},
                    ],
                },
                {"name": "testcontainer1", "image": "testcontainer1:latest"},
            ],
        },
        "status": {
            "podIP": "1.2.3.4",
            "hostIP": "2.3.4.5",
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "testcontainer0", "containerID": "docker://a1b2c3d4e5f6"},
                {"name": "testcontainer1", "containerID": "containerd://6f5e4d3c2b1a"},
            ],
        },
    })
}

/// `makePods`, in namespace `ns`.
pub(super) fn make_pod(ns: &str) -> Value {
    json!({
        "metadata": {"name": "testpod", "namespace": ns, "uid": "abc123"},
        "spec": {
            "nodeName": "testnode",
            "containers": [{
                "name": "testcontainer",
                "image": "testcontainer:latest",
                "ports": [{"name": "testport", "protocol": "TCP", "containerPort": 9000}],
            }],
        },
        "status": {
            "podIP": "1.2.3.4",
            "hostIP": "2.3.4.5",
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "testcontainer", "containerID": "docker://a1b2c3d4e5f6"}],
        },
    })
}

/// `makeInitContainerPods`.
fn make_init_container_pod() -> Value {
    json!({
        "metadata": {"name": "testpod", "namespace": "default", "uid": "abc123"},
        "spec": {
            "nodeName": "testnode",
            "containers": [{
                "name": "testcontainer",
                "image": "testcontainer:latest",
                "ports": [{"name": "testport", "protocol": "TCP", "containerPort": 9000}],
            }],
            "initContainers": [{"name": "initcontainer", "image": "initcontainer:latest"}],
        },
        "status": {
            "podIP": "1.2.3.4",
            "hostIP": "2.3.4.5",
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "testcontainer", "containerID": "docker://a1b2c3d4e5f6"}],
            "initContainerStatuses": [
                {"name": "initcontainer", "containerID": "containerd://6f5e4d3c2b1a"},
            ],
        },
    })
}

const TESTCONTAINER_TARGET: [Pair; 8] = [
    ("__address__", "1.2.3.4:9000"),
    ("__meta_kubernetes_pod_container_name", "testcontainer"),
    (
        "__meta_kubernetes_pod_container_image",
        "testcontainer:latest",
    ),
    ("__meta_kubernetes_pod_container_port_name", "testport"),
    ("__meta_kubernetes_pod_container_port_number", "9000"),
    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ("__meta_kubernetes_pod_container_init", "false"),
    (
        "__meta_kubernetes_pod_container_id",
        "docker://a1b2c3d4e5f6",
    ),
];

/// The group labels of `makePods` but the namespace.
const POD_LABELS: [Pair; 7] = [
    ("__meta_kubernetes_pod_name", "testpod"),
    ("__meta_kubernetes_pod_node_name", "testnode"),
    ("__meta_kubernetes_pod_ip", "1.2.3.4"),
    ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
    ("__meta_kubernetes_pod_ready", "true"),
    ("__meta_kubernetes_pod_phase", "Running"),
    ("__meta_kubernetes_pod_uid", "abc123"),
];

/// `expectedPodTargetGroups`, with `extra` group labels.
fn expected_pod_group(ns: &'static str, extra: &[Pair]) -> TargetGroup {
    tg(
        &format!("pod/{ns}/testpod"),
        vec![ls(&TESTCONTAINER_TARGET)],
        ls_all(&[&POD_LABELS, &[("__meta_kubernetes_namespace", ns)], extra]),
    )
}

#[test]
fn before_run_multi_port_pod() {
    let store = store_of(vec![(Kind::Pod, make_multi_port_pod())]);
    let want = tg(
        "pod/default/testpod",
        vec![
            ls(&[
                ("__address__", "1.2.3.4:9000"),
                ("__meta_kubernetes_pod_container_name", "testcontainer0"),
                (
                    "__meta_kubernetes_pod_container_image",
                    "testcontainer0:latest",
                ),
                ("__meta_kubernetes_pod_container_port_name", "testport0"),
                ("__meta_kubernetes_pod_container_port_number", "9000"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                ("__meta_kubernetes_pod_container_init", "false"),
                (
                    "__meta_kubernetes_pod_container_id",
                    "docker://a1b2c3d4e5f6",
                ),
            ]),
            ls(&[
                ("__address__", "1.2.3.4:9001"),
                ("__meta_kubernetes_pod_container_name", "testcontainer0"),
                (
                    "__meta_kubernetes_pod_container_image",
                    "testcontainer0:latest",
                ),
                ("__meta_kubernetes_pod_container_port_name", "testport1"),
                ("__meta_kubernetes_pod_container_port_number", "9001"),
                ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
                ("__meta_kubernetes_pod_container_init", "false"),
                (
                    "__meta_kubernetes_pod_container_id",
                    "docker://a1b2c3d4e5f6",
                ),
            ]),
            ls(&[
                ("__address__", "1.2.3.4"),
                ("__meta_kubernetes_pod_container_name", "testcontainer1"),
                (
                    "__meta_kubernetes_pod_container_image",
                    "testcontainer1:latest",
                ),
                ("__meta_kubernetes_pod_container_init", "false"),
                (
                    "__meta_kubernetes_pod_container_id",
                    "containerd://6f5e4d3c2b1a",
                ),
            ]),
        ],
        ls(&[
            ("__meta_kubernetes_pod_name", "testpod"),
            ("__meta_kubernetes_namespace", "default"),
            ("__meta_kubernetes_pod_label_test_label", "testvalue"),
            ("__meta_kubernetes_pod_labelpresent_test_label", "true"),
            (
                "__meta_kubernetes_pod_annotation_test_annotation",
                "testannotationvalue",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_test_annotation",
                "true",
            ),
            ("__meta_kubernetes_pod_node_name", "testnode"),
            ("__meta_kubernetes_pod_ip", "1.2.3.4"),
            ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
            ("__meta_kubernetes_pod_ready", "true"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_uid", "abc123"),
            (
                "__meta_kubernetes_pod_controller_kind",
                "testcontrollerkind",
            ),
            (
                "__meta_kubernetes_pod_controller_name",
                "testcontrollername",
            ),
        ]),
    );
    assert_groups(Role::Pod, &store, false, vec![want]);
}

#[test]
fn init_container_targets_follow_the_others() {
    let store = store_of(vec![(Kind::Pod, make_init_container_pod())]);
    let mut want = expected_pod_group(
        "default",
        &[
            ("__meta_kubernetes_pod_phase", "Pending"),
            ("__meta_kubernetes_pod_ready", "false"),
        ],
    );
    want.targets.push(ls(&[
        ("__address__", "1.2.3.4"),
        ("__meta_kubernetes_pod_container_name", "initcontainer"),
        (
            "__meta_kubernetes_pod_container_image",
            "initcontainer:latest",
        ),
        ("__meta_kubernetes_pod_container_init", "true"),
        (
            "__meta_kubernetes_pod_container_id",
            "containerd://6f5e4d3c2b1a",
        ),
    ]));
    assert_groups(Role::Pod, &store, false, vec![want]);
}

#[test]
fn add() {
    let store = store_of(vec![(Kind::Pod, make_pod("default"))]);
    assert_groups(
        Role::Pod,
        &store,
        false,
        vec![expected_pod_group("default", &[])],
    );
}

#[test]
fn delete_removes_the_group() {
    let pod = make_pod("default");
    let mut store = store_of(vec![(Kind::Pod, pod.clone())]);
    store.delete(Kind::Pod, &pod).expect("delete");
    assert_groups(Role::Pod, &store, false, vec![]);
}

#[test]
fn update() {
    let old = json!({
        "metadata": {"name": "testpod", "namespace": "default", "uid": "xyz321"},
        "spec": {
            "nodeName": "testnode",
            "containers": [{
                "name": "testcontainer",
                "image": "testcontainer:latest",
                "ports": [{"name": "testport", "protocol": "TCP", "containerPort": 9000}],
            }],
        },
        "status": {"podIP": "1.2.3.4", "hostIP": "2.3.4.5"},
    });
    let mut store = store_of(vec![(Kind::Pod, old)]);
    let before = groups(Role::Pod, &store, false);
    assert_eq!(
        before[0].labels.get("__meta_kubernetes_pod_ready"),
        Some("unknown")
    );
    assert_eq!(before[0].labels.get("__meta_kubernetes_pod_phase"), None);
    store
        .upsert(Kind::Pod, make_pod("default"))
        .expect("upsert");
    assert_groups(
        Role::Pod,
        &store,
        false,
        vec![expected_pod_group("default", &[])],
    );
}

#[test]
fn update_to_an_empty_pod_ip_leaves_only_the_source() {
    let mut store = store_of(vec![(Kind::Pod, make_pod("default"))]);
    let mut updated = make_pod("default");
    updated["status"]["podIP"] = json!("");
    store.upsert(Kind::Pod, updated).expect("upsert");
    assert_groups(
        Role::Pod,
        &store,
        false,
        vec![tg("pod/default/testpod", vec![], ls(&[]))],
    );
}

#[test]
fn namespaces() {
    let store = store_of(vec![
        (Kind::Pod, make_pod("ns1")),
        (Kind::Pod, make_pod("ns2")),
    ]);
    let want = vec![
        expected_pod_group("ns1", &[]),
        expected_pod_group("ns2", &[]),
    ];
    assert_groups(Role::Pod, &store, false, want);
}

#[test]
fn with_node_metadata() {
    let store = store_of(vec![
        (
            Kind::Node,
            make_node("testnode", "", "", json!({"l1": "v1"}), Value::Null),
        ),
        (Kind::Pod, make_pod("default")),
    ]);
    let want = expected_pod_group(
        "default",
        &[
            ("__meta_kubernetes_node_name", "testnode"),
            ("__meta_kubernetes_node_label_l1", "v1"),
            ("__meta_kubernetes_node_labelpresent_l1", "true"),
        ],
    );
    assert_groups(Role::Pod, &store, true, vec![want]);
    // Without attach_metadata.node the node is not looked at.
    assert_groups(
        Role::Pod,
        &store,
        false,
        vec![expected_pod_group("default", &[])],
    );
}

#[test]
fn with_node_metadata_update_node() {
    let mut store = store_of(vec![(
        Kind::Node,
        make_node("testnode", "", "", json!({"l1": "v1"}), Value::Null),
    )]);
    store
        .upsert(Kind::Pod, make_pod("default"))
        .expect("upsert pod");
    let updated = make_node("testnode", "", "", json!({"l2": "v2"}), Value::Null);
    store.upsert(Kind::Node, updated).expect("upsert node");
    let want = expected_pod_group(
        "default",
        &[
            ("__meta_kubernetes_node_name", "testnode"),
            ("__meta_kubernetes_node_label_l2", "v2"),
            ("__meta_kubernetes_node_labelpresent_l2", "true"),
        ],
    );
    assert_groups(Role::Pod, &store, true, vec![want]);
}

#[test]
fn unknown_node_adds_no_node_labels() {
    let store = store_of(vec![
        (
            Kind::Node,
            make_node("othernode", "", "", json!({"l1": "v1"}), Value::Null),
        ),
        (Kind::Pod, make_pod("default")),
    ]);
    assert_groups(
        Role::Pod,
        &store,
        true,
        vec![expected_pod_group("default", &[])],
    );
}

#[test]
fn ipv6_pod_addresses_are_bracketed_with_a_port_only() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 8080}]},
            {"name": "b"},
        ]},
        "status": {"podIP": "2001:db8::7"},
    });
    let store = store_of(vec![(Kind::Pod, pod)]);
    let want = tg(
        "pod/ns/p",
        vec![
            ls(&[
                ("__address__", "[2001:db8::7]:8080"),
                ("__meta_kubernetes_pod_container_name", "a"),
                ("__meta_kubernetes_pod_container_port_number", "8080"),
                ("__meta_kubernetes_pod_container_init", "false"),
            ]),
            ls(&[
                ("__address__", "2001:db8::7"),
                ("__meta_kubernetes_pod_container_name", "b"),
                ("__meta_kubernetes_pod_container_init", "false"),
            ]),
        ],
        ls(&[
            ("__meta_kubernetes_pod_name", "p"),
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_pod_ip", "2001:db8::7"),
            ("__meta_kubernetes_pod_ready", "unknown"),
        ]),
    );
    assert_groups(Role::Pod, &store, false, vec![want]);
}

#[test]
fn init_container_ports_are_targets_and_finished_pods_are_kept() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "ns", "ownerReferences": [
            {"kind": "ReplicaSet", "name": "not-the-controller", "controller": false},
            {"kind": "Job", "name": "j"},
            {"kind": "CronJob", "name": "c", "controller": true},
        ]},
        "spec": {
            "containers": [],
            "initContainers": [{"name": "init", "image": "i", "ports": [
                {"name": "p", "containerPort": 1, "protocol": "SCTP"},
            ]}],
        },
        "status": {"podIP": "10.0.0.1", "phase": "Succeeded", "conditions": [
            {"type": "ContainersReady", "status": "True"},
            {"type": "Ready", "status": "False"},
        ]},
    });
    let store = store_of(vec![(Kind::Pod, pod)]);
    let want = tg(
        "pod/ns/p",
        vec![ls(&[
            ("__address__", "10.0.0.1:1"),
            ("__meta_kubernetes_pod_container_name", "init"),
            ("__meta_kubernetes_pod_container_image", "i"),
            ("__meta_kubernetes_pod_container_port_name", "p"),
            ("__meta_kubernetes_pod_container_port_number", "1"),
            ("__meta_kubernetes_pod_container_port_protocol", "SCTP"),
            ("__meta_kubernetes_pod_container_init", "true"),
        ])],
        ls(&[
            ("__meta_kubernetes_pod_name", "p"),
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_pod_ip", "10.0.0.1"),
            ("__meta_kubernetes_pod_ready", "false"),
            ("__meta_kubernetes_pod_phase", "Succeeded"),
            ("__meta_kubernetes_pod_controller_kind", "CronJob"),
            ("__meta_kubernetes_pod_controller_name", "c"),
        ]),
    );
    assert_groups(Role::Pod, &store, false, vec![want]);
}

#[test]
fn pod_with_ip_and_no_containers_has_labels_and_no_targets() {
    let pod =
        json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"podIP": "10.0.0.1"}});
    let store = store_of(vec![(Kind::Pod, pod)]);
    let want = tg(
        "pod/ns/p",
        vec![],
        ls(&[
            ("__meta_kubernetes_pod_name", "p"),
            ("__meta_kubernetes_namespace", "ns"),
            ("__meta_kubernetes_pod_ip", "10.0.0.1"),
            ("__meta_kubernetes_pod_ready", "unknown"),
        ]),
    );
    assert_groups(Role::Pod, &store, false, vec![want]);
}
