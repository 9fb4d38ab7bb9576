//! The pod role (`pod.go`): one group per pod, source `pod/<ns>/<name>`, with
//! one target per container port, or one per container without ports
//! (address: the bare pod IP), init containers after the others; not
//! filtered by phase. Also the pod labels and the pods seen behind endpoints,
//! which the endpoints and endpointslice roles share.

use scrapegrid_common::{Labels, LabelsBuilder};

use super::{join_host_port, node, set_keyed, uint_string, NAMESPACE_LABEL};
use crate::discovery::kubernetes::objects::{Container, ContainerStatus, ObjectReference, Pod};
use crate::discovery::kubernetes::store::Store;
use crate::discovery::TargetGroup;

const POD_NAME: &str = "__meta_kubernetes_pod_name";
const POD_IP: &str = "__meta_kubernetes_pod_ip";
const READY: &str = "__meta_kubernetes_pod_ready";
const PHASE: &str = "__meta_kubernetes_pod_phase";
const NODE_NAME: &str = "__meta_kubernetes_pod_node_name";
const HOST_IP: &str = "__meta_kubernetes_pod_host_ip";
const UID: &str = "__meta_kubernetes_pod_uid";
const CONTROLLER_KIND: &str = "__meta_kubernetes_pod_controller_kind";
const CONTROLLER_NAME: &str = "__meta_kubernetes_pod_controller_name";
const LABEL: &str = "__meta_kubernetes_pod_label_";
const LABEL_PRESENT: &str = "__meta_kubernetes_pod_labelpresent_";
const ANNOTATION: &str = "__meta_kubernetes_pod_annotation_";
const ANNOTATION_PRESENT: &str = "__meta_kubernetes_pod_annotationpresent_";
const CONTAINER_NAME: &str = "__meta_kubernetes_pod_container_name";
const CONTAINER_ID: &str = "__meta_kubernetes_pod_container_id";
const CONTAINER_IMAGE: &str = "__meta_kubernetes_pod_container_image";
const CONTAINER_INIT: &str = "__meta_kubernetes_pod_container_init";
const PORT_NAME: &str = "__meta_kubernetes_pod_container_port_name";
const PORT_NUMBER: &str = "__meta_kubernetes_pod_container_port_number";
const PORT_PROTOCOL: &str = "__meta_kubernetes_pod_container_port_protocol";

/// Returns the pod's group: only its source while the pod has no IP
/// (starting or evicted), which deletes any earlier group of that pod.
pub(super) fn group(pod: &Pod, store: &Store, attach_node: bool) -> TargetGroup {
    let meta = &pod.metadata;
    let source = format!("pod/{}/{}", meta.namespace, meta.name);
    if pod.status.pod_ip.is_empty() {
        return TargetGroup {
            source,
            ..Default::default()
        };
    }
    let mut labels = LabelsBuilder::new();
    set_pod_labels(&mut labels, pod);
    labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
    if attach_node {
        node::set_attached_labels(&mut labels, store, Some(pod.spec.node_name.as_str()));
    }
    let spec = &pod.spec;
    let status = &pod.status;
    let regular = spec
        .containers
        .iter()
        .map(|c| (c, &status.container_statuses, false));
    let init = spec
        .init_containers
        .iter()
        .map(|c| (c, &status.init_container_statuses, true));
    let targets = regular
        .chain(init)
        .flat_map(|(c, statuses, is_init)| container_targets(pod, c, statuses, is_init))
        .collect();
    TargetGroup {
        source,
        targets,
        labels: labels.labels(),
    }
}

/// Returns one target per port of `c`, or one with the bare pod IP when it
/// has none.
fn container_targets(
    pod: &Pod,
    c: &Container,
    statuses: &[ContainerStatus],
    is_init: bool,
) -> Vec<Labels> {
    let mut b = LabelsBuilder::new();
    b.set(CONTAINER_NAME, c.name.as_str());
    b.set(CONTAINER_ID, container_id(statuses, &c.name));
    b.set(CONTAINER_IMAGE, c.image.as_str());
    b.set(CONTAINER_INIT, is_init.to_string());
    if c.ports.is_empty() {
        b.set("__address__", pod.status.pod_ip.as_str());
        return vec![b.labels()];
    }
    c.ports
        .iter()
        .map(|port| {
            let number = uint_string(port.container_port);
            let mut t = b.clone();
            t.set("__address__", join_host_port(&pod.status.pod_ip, &number));
            t.set(PORT_NUMBER, number);
            t.set(PORT_NAME, port.name.as_str());
            t.set(PORT_PROTOCOL, port.protocol.as_str());
            t.labels()
        })
        .collect()
}

/// Returns the container's ID from its status, or "" when it has none yet.
fn container_id<'a>(statuses: &'a [ContainerStatus], name: &str) -> &'a str {
    statuses
        .iter()
        .find(|s| s.name == name)
        .map_or("", |s| s.container_id.as_str())
}

/// Sets the labels of `podLabels`: name, IP, readiness, phase, node, host IP,
/// UID, controller, Kubernetes labels and annotations (not the namespace).
pub(super) fn set_pod_labels(b: &mut LabelsBuilder, pod: &Pod) {
    b.set(POD_NAME, pod.metadata.name.as_str());
    b.set(POD_IP, pod.status.pod_ip.as_str());
    b.set(READY, ready(pod));
    b.set(PHASE, pod.status.phase.as_str());
    b.set(NODE_NAME, pod.spec.node_name.as_str());
    b.set(HOST_IP, pod.status.host_ip.as_str());
    b.set(UID, pod.metadata.uid.as_str());
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .find(|r| r.controller == Some(true));
    if let Some(controller) = controller {
        b.set(CONTROLLER_KIND, controller.kind.as_str());
        b.set(CONTROLLER_NAME, controller.name.as_str());
    }
    set_keyed(b, LABEL, LABEL_PRESENT, &pod.metadata.labels);
    set_keyed(b, ANNOTATION, ANNOTATION_PRESENT, &pod.metadata.annotations);
}

/// Returns the status of the pod's `Ready` condition in lower case, or
/// `unknown` without one.
fn ready(pod: &Pod) -> String {
    pod.status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or_else(|| "unknown".to_string(), |c| c.status.to_lowercase())
}

/// Returns the pod an endpoint address points at: its target is a `Pod`
/// the store holds.
pub(super) fn resolve_ref<'a>(
    store: &'a Store,
    target: Option<&ObjectReference>,
) -> Option<&'a Pod> {
    let target = target.filter(|r| r.kind == "Pod")?;
    store.pod(&target.namespace, &target.name)
}

/// Sets the container labels of the container port numbered `port` on an
/// endpoint's target that points at `pod`. The last container with that
/// port wins (Prometheus stops at the first match only within a
/// container). The protocol is `endpoint_protocol` when given (the endpoints
/// role labels the endpoint port's protocol), else the container port's
/// (the endpointslice role). Init containers are not looked at.
pub(super) fn set_container_port_labels(
    b: &mut LabelsBuilder,
    pod: &Pod,
    port: i32,
    endpoint_protocol: Option<&str>,
) {
    for c in &pod.spec.containers {
        let Some(cport) = c.ports.iter().find(|p| p.container_port == port) else {
            continue;
        };
        b.set(CONTAINER_NAME, c.name.as_str());
        b.set(CONTAINER_IMAGE, c.image.as_str());
        b.set(PORT_NAME, cport.name.as_str());
        b.set(PORT_NUMBER, uint_string(port));
        b.set(
            PORT_PROTOCOL,
            endpoint_protocol.unwrap_or(cport.protocol.as_str()),
        );
    }
}

/// The pods an endpoints or endpointslice group's targets point at, in order
/// of first appearance, each with the port numbers that have a target.
#[derive(Default)]
pub(super) struct SeenPods<'a> {
    pods: Vec<(&'a Pod, Vec<i32>)>,
}

impl<'a> SeenPods<'a> {
    /// Records that a target for `pod` was made, on `port` if it has one.
    pub(super) fn add(&mut self, pod: &'a Pod, port: Option<i32>) {
        let index = match self.pods.iter().position(|(p, _)| same_pod(p, pod)) {
            Some(i) => i,
            None => {
                self.pods.push((pod, Vec::new()));
                self.pods.len() - 1
            }
        };
        self.pods[index].1.extend(port);
    }

    /// Returns a target for each container port of each pod seen that no
    /// endpoint port covered (init containers not included): the pod IP and
    /// that port, with the container and pod labels.
    pub(super) fn uncovered_port_targets(&self) -> Vec<Labels> {
        let mut targets = Vec::new();
        for (pod, covered) in &self.pods {
            for c in &pod.spec.containers {
                for cport in c
                    .ports
                    .iter()
                    .filter(|p| !covered.contains(&p.container_port))
                {
                    let number = uint_string(cport.container_port);
                    let mut b = LabelsBuilder::new();
                    b.set("__address__", join_host_port(&pod.status.pod_ip, &number));
                    b.set(CONTAINER_NAME, c.name.as_str());
                    b.set(CONTAINER_IMAGE, c.image.as_str());
                    b.set(PORT_NAME, cport.name.as_str());
                    b.set(PORT_NUMBER, number);
                    b.set(PORT_PROTOCOL, cport.protocol.as_str());
                    set_pod_labels(&mut b, pod);
                    targets.push(b.labels());
                }
            }
        }
        targets
    }
}

fn same_pod(a: &Pod, b: &Pod) -> bool {
    a.metadata.namespace == b.metadata.namespace && a.metadata.name == b.metadata.name
}
