//! The ingress role (`ingress.go`): one group per ingress, source
//! `ingress/<ns>/<name>`, with one target per rule and path whose address is
//! the rule's host; the scheme is `https` when a TLS host (or `*.` wildcard)
//! matches the host.

use scrapegrid_common::{Labels, LabelsBuilder};

use super::{set_keyed, NAMESPACE_LABEL};
use crate::discovery::kubernetes::objects::{Ingress, IngressRule};
use crate::discovery::TargetGroup;

const INGRESS_NAME: &str = "__meta_kubernetes_ingress_name";
const CLASS_NAME: &str = "__meta_kubernetes_ingress_class_name";
const LABEL: &str = "__meta_kubernetes_ingress_label_";
const LABEL_PRESENT: &str = "__meta_kubernetes_ingress_labelpresent_";
const ANNOTATION: &str = "__meta_kubernetes_ingress_annotation_";
const ANNOTATION_PRESENT: &str = "__meta_kubernetes_ingress_annotationpresent_";
const SCHEME: &str = "__meta_kubernetes_ingress_scheme";
const HOST: &str = "__meta_kubernetes_ingress_host";
const PATH: &str = "__meta_kubernetes_ingress_path";

/// Returns the ingress's group. The class name comes from
/// `spec.ingressClassName` only: 2.42 does not read the older
/// `kubernetes.io/ingress.class` annotation (it shows as an annotation label).
pub(super) fn group(ingress: &Ingress) -> TargetGroup {
    let meta = &ingress.metadata;
    let mut labels = LabelsBuilder::new();
    labels.set(INGRESS_NAME, meta.name.as_str());
    labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
    if let Some(class) = &ingress.spec.ingress_class_name {
        labels.set(CLASS_NAME, class.as_str());
    }
    set_keyed(&mut labels, LABEL, LABEL_PRESENT, &meta.labels);
    set_keyed(
        &mut labels,
        ANNOTATION,
        ANNOTATION_PRESENT,
        &meta.annotations,
    );
    let tls_hosts: Vec<&str> = ingress
        .spec
        .tls
        .iter()
        .flat_map(|t| t.hosts.iter().map(String::as_str))
        .collect();
    TargetGroup {
        source: format!("ingress/{}/{}", meta.namespace, meta.name),
        targets: ingress
            .spec
            .rules
            .iter()
            .flat_map(|rule| rule_targets(rule, &tls_hosts))
            .collect(),
        labels: labels.labels(),
    }
}

/// Returns one target per path of the rule.
fn rule_targets(rule: &IngressRule, tls_hosts: &[&str]) -> Vec<Labels> {
    let https = tls_hosts
        .iter()
        .any(|pattern| matches_hostname_pattern(pattern, &rule.host));
    let scheme = if https { "https" } else { "http" };
    paths(rule)
        .into_iter()
        .map(|path| {
            Labels::from_pairs([
                ("__address__", rule.host.as_str()),
                (SCHEME, scheme),
                (HOST, rule.host.as_str()),
                (PATH, path),
            ])
        })
        .collect()
}

/// Returns the rule's paths, an empty one as `/`. A rule without `http`
/// has the one path `/`, but one with `http` and no paths has none (Go's
/// nil versus empty slice in `pathsFromIngressPaths`).
fn paths(rule: &IngressRule) -> Vec<&str> {
    match &rule.http {
        None => vec!["/"],
        Some(http) => http
            .paths
            .iter()
            .map(|p| {
                if p.path.is_empty() {
                    "/"
                } else {
                    p.path.as_str()
                }
            })
            .collect(),
    }
}

/// Returns whether `host` equals `pattern` or matches it as a wildcard:
/// a first label `*` stands for any one label of the host, the other labels
/// equal.
fn matches_hostname_pattern(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.split('.').collect();
    let host_parts: Vec<&str> = host.split('.').collect();
    pattern_parts.first() == Some(&"*")
        && pattern_parts.len() == host_parts.len()
        && pattern_parts[1..] == host_parts[1..]
}
