//! The endpoints role (`endpoints.go`): one group per endpoints object,
//! source `endpoints/<ns>/<name>`, with the labels of the service of the
//! same name when it exists; one target per subset, port and address (ready
//! addresses, then not-ready ones), with the pod's labels when the address
//! points at a known pod; then one target per container port of those pods
//! that no endpoint port covered.

use scrapegrid_common::{Labels, LabelsBuilder};

use super::pod::{self, SeenPods};
use super::{join_host_port, node, service, set_keyed, uint_string, NAMESPACE_LABEL};
use crate::discovery::kubernetes::objects::{EndpointAddress, EndpointPort, Endpoints};
use crate::discovery::kubernetes::store::Store;
use crate::discovery::TargetGroup;

const ENDPOINTS_NAME: &str = "__meta_kubernetes_endpoints_name";
const LABEL: &str = "__meta_kubernetes_endpoints_label_";
const LABEL_PRESENT: &str = "__meta_kubernetes_endpoints_labelpresent_";
const NODE_NAME: &str = "__meta_kubernetes_endpoint_node_name";
const HOSTNAME: &str = "__meta_kubernetes_endpoint_hostname";
const READY: &str = "__meta_kubernetes_endpoint_ready";
const PORT_NAME: &str = "__meta_kubernetes_endpoint_port_name";
const PORT_PROTOCOL: &str = "__meta_kubernetes_endpoint_port_protocol";
const TARGET_KIND: &str = "__meta_kubernetes_endpoint_address_target_kind";
const TARGET_NAME: &str = "__meta_kubernetes_endpoint_address_target_name";

/// What one group's targets share while they are built.
struct Context<'a> {
    store: &'a Store,
    attach_node: bool,
    seen: SeenPods<'a>,
}

/// Returns the endpoints object's group. 2.42 has no endpoints annotation
/// labels, only `endpoints_label_*`.
pub(super) fn group(eps: &Endpoints, store: &Store, attach_node: bool) -> TargetGroup {
    let meta = &eps.metadata;
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
    labels.set(ENDPOINTS_NAME, meta.name.as_str());
    if let Some(svc) = store.service(&meta.namespace, &meta.name) {
        service::set_service_labels(&mut labels, svc);
    }
    set_keyed(&mut labels, LABEL, LABEL_PRESENT, &meta.labels);

    let mut cx = Context {
        store,
        attach_node,
        seen: SeenPods::default(),
    };
    let mut targets = Vec::new();
    for subset in &eps.subsets {
        for port in &subset.ports {
            // A not-ready address is a target of its own, even when the same
            // address is also ready.
            for addr in &subset.addresses {
                targets.push(target(&mut cx, addr, port, "true"));
            }
            for addr in &subset.not_ready_addresses {
                targets.push(target(&mut cx, addr, port, "false"));
            }
        }
    }
    targets.extend(cx.seen.uncovered_port_targets());
    TargetGroup {
        source: format!("endpoints/{}/{}", meta.namespace, meta.name),
        targets,
        labels: labels.labels(),
    }
}

/// Returns the target of one address and port.
fn target(
    cx: &mut Context<'_>,
    addr: &EndpointAddress,
    port: &EndpointPort,
    ready: &str,
) -> Labels {
    let mut t = LabelsBuilder::new();
    t.set(
        "__address__",
        join_host_port(&addr.ip, &uint_string(port.port)),
    );
    t.set(PORT_NAME, port.name.as_str());
    t.set(PORT_PROTOCOL, port.protocol.as_str());
    t.set(READY, ready);
    if let Some(target_ref) = &addr.target_ref {
        t.set(TARGET_KIND, target_ref.kind.as_str());
        t.set(TARGET_NAME, target_ref.name.as_str());
    }
    if let Some(node_name) = &addr.node_name {
        t.set(NODE_NAME, node_name.as_str());
    }
    t.set(HOSTNAME, addr.hostname.as_str());
    if cx.attach_node {
        node::set_attached_labels(&mut t, cx.store, addr.node_name.as_deref());
    }
    if let Some(pod) = pod::resolve_ref(cx.store, addr.target_ref.as_ref()) {
        pod::set_pod_labels(&mut t, pod);
        pod::set_container_port_labels(&mut t, pod, port.port, Some(port.protocol.as_str()));
        cx.seen.add(pod, Some(port.port));
    }
    t.labels()
}
