//! The node role (`node.go`): one group per node, source `node/<name>`, with
//! one target at the node's preferred address and the kubelet port; and the
//! node labels `attach_metadata.node` adds to the other roles.

use std::collections::BTreeMap;

use scrapegrid_common::LabelsBuilder;

use super::{join_host_port, sanitize_label_name, set_keyed};
use crate::discovery::kubernetes::objects::Node;
use crate::discovery::kubernetes::store::Store;
use crate::discovery::TargetGroup;

const NODE_NAME: &str = "__meta_kubernetes_node_name";
const PROVIDER_ID: &str = "__meta_kubernetes_node_provider_id";
const LABEL: &str = "__meta_kubernetes_node_label_";
const LABEL_PRESENT: &str = "__meta_kubernetes_node_labelpresent_";
const ANNOTATION: &str = "__meta_kubernetes_node_annotation_";
const ANNOTATION_PRESENT: &str = "__meta_kubernetes_node_annotationpresent_";
const ADDRESS: &str = "__meta_kubernetes_node_address_";

/// The address types a node's target address is taken from, best first
/// (`nodeAddress`, from Kubernetes' `pkg/util/node`).
const ADDRESS_PRIORITY: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// Returns the node's group, or None when it has no address of a known type
/// (Prometheus then logs a warning and sends nothing).
pub(super) fn group(node: &Node) -> Option<TargetGroup> {
    let first_by_type = first_address_by_type(node);
    let address = ADDRESS_PRIORITY.iter().find_map(|t| first_by_type.get(t))?;
    let port = node
        .status
        .daemon_endpoints
        .kubelet_endpoint
        .port
        .to_string();
    let mut target = LabelsBuilder::new();
    target.set("__address__", join_host_port(address, &port));
    target.set("instance", node.metadata.name.as_str());
    for (type_, address) in &first_by_type {
        target.set(sanitize_label_name(&format!("{ADDRESS}{type_}")), *address);
    }
    let mut labels = LabelsBuilder::new();
    labels.set(NODE_NAME, node.metadata.name.as_str());
    labels.set(PROVIDER_ID, node.spec.provider_id.as_str());
    set_keyed(&mut labels, LABEL, LABEL_PRESENT, &node.metadata.labels);
    set_keyed(
        &mut labels,
        ANNOTATION,
        ANNOTATION_PRESENT,
        &node.metadata.annotations,
    );
    Some(TargetGroup {
        source: format!("node/{}", node.metadata.name),
        targets: vec![target.labels()],
        labels: labels.labels(),
    })
}

/// Returns the first address of each type, empty ones included.
fn first_address_by_type(node: &Node) -> BTreeMap<&str, &str> {
    let mut first = BTreeMap::new();
    for a in &node.status.addresses {
        first.entry(a.type_.as_str()).or_insert(a.address.as_str());
    }
    first
}

/// Adds the labels `attach_metadata.node` gives (`addNodeLabels`): the node
/// name and the node's Kubernetes labels, not its annotations nor provider
/// id; nothing when `node_name` is None or names a node the store lacks.
pub(super) fn set_attached_labels(b: &mut LabelsBuilder, store: &Store, node_name: Option<&str>) {
    let Some(node) = node_name.and_then(|name| store.node(name)) else {
        return;
    };
    b.set(NODE_NAME, node.metadata.name.as_str());
    set_keyed(b, LABEL, LABEL_PRESENT, &node.metadata.labels);
}
