//! The endpointslice role (`endpointslice.go`): one group per endpointslice,
//! source `endpointslice/<ns>/<name>`, with the labels of the service named
//! by its `kubernetes.io/service-name` label when that service exists; one
//! target per endpoint, port and address, with the pod's labels when the
//! endpoint points at a known pod; then one target per container port of
//! those pods that no slice port covered. Unset optional fields (port,
//! conditions, hostname, ...) give no label.

use scrapegrid_common::{Labels, LabelsBuilder};

use super::pod::{self, SeenPods};
use super::{join_host_port, node, service, set_keyed, uint_string, NAMESPACE_LABEL};
use crate::discovery::kubernetes::objects::{EndpointSlice, SliceEndpoint, SlicePort};
use crate::discovery::kubernetes::store::Store;
use crate::discovery::TargetGroup;

/// The label of an endpointslice that names its service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

const SLICE_NAME: &str = "__meta_kubernetes_endpointslice_name";
const ADDRESS_TYPE: &str = "__meta_kubernetes_endpointslice_address_type";
const PORT_NAME: &str = "__meta_kubernetes_endpointslice_port_name";
const PORT_PROTOCOL: &str = "__meta_kubernetes_endpointslice_port_protocol";
const PORT: &str = "__meta_kubernetes_endpointslice_port";
const PORT_APP_PROTOCOL: &str = "__meta_kubernetes_endpointslice_port_app_protocol";
const READY: &str = "__meta_kubernetes_endpointslice_endpoint_conditions_ready";
const SERVING: &str = "__meta_kubernetes_endpointslice_endpoint_conditions_serving";
const TERMINATING: &str = "__meta_kubernetes_endpointslice_endpoint_conditions_terminating";
const HOSTNAME: &str = "__meta_kubernetes_endpointslice_endpoint_hostname";
const TARGET_KIND: &str = "__meta_kubernetes_endpointslice_address_target_kind";
const TARGET_NAME: &str = "__meta_kubernetes_endpointslice_address_target_name";
const TOPOLOGY: &str = "__meta_kubernetes_endpointslice_endpoint_topology_";
const TOPOLOGY_PRESENT: &str = "__meta_kubernetes_endpointslice_endpoint_topology_present_";

/// What one group's targets share while they are built.
struct Context<'a> {
    store: &'a Store,
    attach_node: bool,
    seen: SeenPods<'a>,
}

/// Returns the endpointslice's group. 2.42 has no endpointslice label or
/// annotation labels, and no zone or node name label on targets.
pub(super) fn group(slice: &EndpointSlice, store: &Store, attach_node: bool) -> TargetGroup {
    let meta = &slice.metadata;
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
    labels.set(SLICE_NAME, meta.name.as_str());
    labels.set(ADDRESS_TYPE, slice.address_type.as_str());
    let svc = meta
        .labels
        .get(SERVICE_NAME_LABEL)
        .and_then(|name| store.service(&meta.namespace, name));
    if let Some(svc) = svc {
        service::set_service_labels(&mut labels, svc);
    }

    let mut cx = Context {
        store,
        attach_node,
        seen: SeenPods::default(),
    };
    let mut targets = Vec::new();
    for endpoint in &slice.endpoints {
        for port in &slice.ports {
            for addr in &endpoint.addresses {
                targets.push(target(&mut cx, addr, endpoint, port));
            }
        }
    }
    targets.extend(cx.seen.uncovered_port_targets());
    TargetGroup {
        source: format!("endpointslice/{}/{}", meta.namespace, meta.name),
        targets,
        labels: labels.labels(),
    }
}

/// Returns the target of one address of `endpoint` and one port: the bare
/// address when the port has no number (not bracketed, even for IPv6).
fn target(cx: &mut Context<'_>, addr: &str, endpoint: &SliceEndpoint, port: &SlicePort) -> Labels {
    let mut t = LabelsBuilder::new();
    match port.port {
        Some(number) => {
            let number = uint_string(number);
            t.set("__address__", join_host_port(addr, &number));
            t.set(PORT, number);
        }
        None => {
            t.set("__address__", addr);
        }
    }
    set_optional(&mut t, PORT_NAME, port.name.as_deref());
    set_optional(&mut t, PORT_PROTOCOL, port.protocol.as_deref());
    set_optional(&mut t, PORT_APP_PROTOCOL, port.app_protocol.as_deref());
    let conditions = &endpoint.conditions;
    set_optional(&mut t, READY, conditions.ready.map(bool_str));
    set_optional(&mut t, SERVING, conditions.serving.map(bool_str));
    set_optional(&mut t, TERMINATING, conditions.terminating.map(bool_str));
    set_optional(&mut t, HOSTNAME, endpoint.hostname.as_deref());
    if let Some(target_ref) = &endpoint.target_ref {
        t.set(TARGET_KIND, target_ref.kind.as_str());
        t.set(TARGET_NAME, target_ref.name.as_str());
    }
    set_keyed(
        &mut t,
        TOPOLOGY,
        TOPOLOGY_PRESENT,
        &endpoint.deprecated_topology,
    );
    if cx.attach_node {
        node::set_attached_labels(&mut t, cx.store, endpoint.node_name.as_deref());
    }
    if let Some(pod) = pod::resolve_ref(cx.store, endpoint.target_ref.as_ref()) {
        pod::set_pod_labels(&mut t, pod);
        if let Some(number) = port.port {
            pod::set_container_port_labels(&mut t, pod, number, None);
        }
        cx.seen.add(pod, port.port);
    }
    t.labels()
}

fn set_optional(t: &mut LabelsBuilder, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        t.set(name, value);
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
