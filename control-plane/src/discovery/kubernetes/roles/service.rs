//! The service role (`service.go`): one group per service, source
//! `svc/<ns>/<name>`, with one target per port at
//! `<name>.<namespace>.svc:<port>`; and the service labels the endpoints and
//! endpointslice roles add to their groups.

use scrapegrid_common::LabelsBuilder;

use super::{join_host_port, set_keyed, NAMESPACE_LABEL};
use crate::discovery::kubernetes::objects::{Service, ServicePort};
use crate::discovery::TargetGroup;

const SERVICE_NAME: &str = "__meta_kubernetes_service_name";
const LABEL: &str = "__meta_kubernetes_service_label_";
const LABEL_PRESENT: &str = "__meta_kubernetes_service_labelpresent_";
const ANNOTATION: &str = "__meta_kubernetes_service_annotation_";
const ANNOTATION_PRESENT: &str = "__meta_kubernetes_service_annotationpresent_";
const PORT_NAME: &str = "__meta_kubernetes_service_port_name";
const PORT_NUMBER: &str = "__meta_kubernetes_service_port_number";
const PORT_PROTOCOL: &str = "__meta_kubernetes_service_port_protocol";
const CLUSTER_IP: &str = "__meta_kubernetes_service_cluster_ip";
const LOAD_BALANCER_IP: &str = "__meta_kubernetes_service_loadbalancer_ip";
const EXTERNAL_NAME: &str = "__meta_kubernetes_service_external_name";
const TYPE: &str = "__meta_kubernetes_service_type";

/// Returns the service's group.
pub(super) fn group(svc: &Service) -> TargetGroup {
    let mut labels = LabelsBuilder::new();
    set_service_labels(&mut labels, svc);
    TargetGroup {
        source: format!("svc/{}/{}", svc.metadata.namespace, svc.metadata.name),
        targets: svc
            .spec
            .ports
            .iter()
            .map(|p| port_target(svc, p).labels())
            .collect(),
        labels: labels.labels(),
    }
}

/// Returns the target of one port: the external name of an `ExternalName`
/// service, the cluster IP of any other, and the load balancer IP of a
/// `LoadBalancer` one.
fn port_target(svc: &Service, port: &ServicePort) -> LabelsBuilder {
    let meta = &svc.metadata;
    let spec = &svc.spec;
    let host = format!("{}.{}.svc", meta.name, meta.namespace);
    let number = port.port.to_string();
    let mut t = LabelsBuilder::new();
    t.set("__address__", join_host_port(&host, &number));
    t.set(PORT_NAME, port.name.as_str());
    t.set(PORT_NUMBER, number);
    t.set(PORT_PROTOCOL, port.protocol.as_str());
    t.set(TYPE, spec.type_.as_str());
    if spec.type_ == "ExternalName" {
        t.set(EXTERNAL_NAME, spec.external_name.as_str());
    } else {
        t.set(CLUSTER_IP, spec.cluster_ip.as_str());
    }
    if spec.type_ == "LoadBalancer" {
        t.set(LOAD_BALANCER_IP, spec.load_balancer_ip.as_str());
    }
    t
}

/// Sets the labels of `serviceLabels`: name, namespace, Kubernetes labels and
/// annotations.
pub(super) fn set_service_labels(b: &mut LabelsBuilder, svc: &Service) {
    b.set(SERVICE_NAME, svc.metadata.name.as_str());
    b.set(NAMESPACE_LABEL, svc.metadata.namespace.as_str());
    set_keyed(b, LABEL, LABEL_PRESENT, &svc.metadata.labels);
    set_keyed(b, ANNOTATION, ANNOTATION_PRESENT, &svc.metadata.annotations);
}
