//! The target groups of each Kubernetes discovery role, computed from the
//! objects in a [`Store`] exactly as Prometheus 2.42 builds them
//! (`discovery/kubernetes/{node,pod,service,endpoints,endpointslice,ingress}.go`):
//! the same sources, the same `__meta_kubernetes_*` labels on the group or on
//! each target, the same targets in the same order.
//!
//! One module per role; `pod` also holds the pod labels and the
//! "pods seen behind endpoints" logic that the endpoints and endpointslice
//! roles share, `service` the service labels they add to their groups and
//! `node` the node labels `attach_metadata.node` adds.
//!
//! [`groups`] recomputes every group from the current objects, where
//! Prometheus rebuilds one group per event. The results differ only where
//! Prometheus leaves a group stale: it does not rebuild an endpoints or
//! endpointslice group when one of its pods changes (only when the
//! endpoints, their service or, with `attach_metadata.node`, a node
//! changes), and it sends nothing for a node that has lost all its
//! addresses, keeping that node's previous group. Here both reflect the
//! current objects: the node's group is simply missing (which the
//! provider's diff turns into a deletion).
//!
//! Where Prometheus iterates a Go map (Kubernetes labels, annotations and
//! topology keys; the pods seen behind an endpoints object), the order
//! matters only when two keys sanitize to the same label name, or for the
//! order of the extra pod-port targets. Here keys go in sorted order (the
//! last of two colliding keys wins) and pods in order of first appearance.

mod endpoints;
mod endpointslice;
mod ingress;
mod node;
mod pod;
mod service;

use std::collections::BTreeMap;

use scrapegrid_common::LabelsBuilder;

use super::store::Store;
use crate::discovery::TargetGroup;

/// What a `kubernetes_sd_configs` entry discovers (`role:`).
pub use scrapegrid_common::config::KubernetesRole as Role;

/// The namespace of the object a group comes from, on every role but node.
pub const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";
/// The value of every `..._labelpresent_*`, `..._annotationpresent_*` and
/// `..._topology_present_*` label.
const PRESENT: &str = "true";

/// Returns every target group the role yields from the objects in `store`,
/// as Prometheus 2.42 builds them, ordered by the store's keys.
/// `attach_node` is `attach_metadata.node`: it adds the node labels of the
/// pod's node to pod groups, and of each address's node to endpoints and
/// endpointslice targets (none when the node is unknown).
///
/// A pod without an IP yields a group with only its source, as Prometheus
/// sends it; a node without a known address yields no group.
pub fn groups(role: Role, store: &Store, attach_node: bool) -> Vec<TargetGroup> {
    match role {
        Role::Node => store.nodes().filter_map(node::group).collect(),
        Role::Pod => store
            .pods()
            .map(|p| pod::group(p, store, attach_node))
            .collect(),
        Role::Service => store.services().map(service::group).collect(),
        Role::Endpoints => store
            .endpoints()
            .map(|e| endpoints::group(e, store, attach_node))
            .collect(),
        Role::EndpointSlice => store
            .endpoint_slices()
            .map(|e| endpointslice::group(e, store, attach_node))
            .collect(),
        Role::Ingress => store.ingresses().map(ingress::group).collect(),
    }
}

pub use crate::discovery::{join_host_port, sanitize_label_name};

/// Formats a port as Prometheus does with `strconv.FormatUint(uint64(p))`
/// (pods, endpoints, endpointslices): a negative port, which the API server
/// never accepts, would wrap around as in Go.
fn uint_string(port: i32) -> String {
    (i64::from(port) as u64).to_string()
}

/// Sets `<value_prefix><name>` to each value of `map` and
/// `<present_prefix><name>` to `true`, `name` being the sanitized key.
fn set_keyed(
    b: &mut LabelsBuilder,
    value_prefix: &str,
    present_prefix: &str,
    map: &BTreeMap<String, String>,
) {
    for (key, value) in map {
        let name = sanitize_label_name(key);
        b.set(format!("{value_prefix}{name}"), value.as_str());
        b.set(format!("{present_prefix}{name}"), PRESENT);
    }
}
