//! `kubernetes_sd_configs`: targets from the Kubernetes API, with the
//! groups and `__meta_kubernetes_*` labels Prometheus 2.42 builds.
//!
//! - [`access`]: where the API server is and how to authenticate (api_server
//!   with http_config, kubeconfig_file, in-cluster service account);
//! - [`client`]: list-then-watch of one kind in one namespace, relisting
//!   after `410 Gone` and failures;
//! - [`objects`]: the fields of the API objects that discovery reads;
//! - [`store`]: the objects as last seen, per kind;
//! - [`roles`]: the target groups of each role, computed from the store.
//!
//! [`run`] starts one watcher per (kind, namespace) that the role needs
//! (pods, services and endpoints for the endpoints role; nodes too with
//! `attach_metadata.node`), applies their changes to the store and, once
//! every watcher has listed once (Prometheus waits for its informers' caches
//! too), recomputes the role's groups at most every [`SETTLE`] and sends
//! those that changed.
//!
//! Why not kube-rs: discovery reads about sixty fields of six object kinds
//! through two requests (list and watch). kube-rs with k8s-openapi adds
//! about a million lines of generated types and a second HTTP stack
//! configuration to a two-core build, while the list/watch protocol here is
//! two hundred lines over the reqwest client, TLS cache and credentials the
//! scrape path already has (so `tls_config` and file rotation behave the
//! same for scrapes, HTTP SD and Kubernetes SD).

pub mod access;
pub mod client;
pub mod objects;
pub mod roles;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::{KubernetesRole, KubernetesSdConfig};

use super::{push_changes, ProviderSender, ProviderUpdate, TargetGroup};
use crate::metrics;
use client::{ApiClient, Change, Watch};
use store::{Kind, Store};

/// Changes arriving within this time of each other are applied together.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The kinds a role watches: its own, then those it joins with.
fn kinds(role: KubernetesRole, attach_node: bool) -> Vec<Kind> {
    let mut kinds = match role {
        KubernetesRole::Node => return vec![Kind::Node],
        KubernetesRole::Pod => vec![Kind::Pod],
        KubernetesRole::Service => vec![Kind::Service],
        KubernetesRole::Ingress => vec![Kind::Ingress],
        KubernetesRole::Endpoints => vec![Kind::Endpoints, Kind::Service, Kind::Pod],
        KubernetesRole::EndpointSlice => vec![Kind::EndpointSlice, Kind::Service, Kind::Pod],
    };
    if attach_node && role != KubernetesRole::Service && role != KubernetesRole::Ingress {
        kinds.push(Kind::Node);
    }
    kinds
}

/// The selector role that applies to a kind's lists and watches.
fn selector_role(kind: Kind) -> KubernetesRole {
    match kind {
        Kind::Node => KubernetesRole::Node,
        Kind::Pod => KubernetesRole::Pod,
        Kind::Service => KubernetesRole::Service,
        Kind::Endpoints => KubernetesRole::Endpoints,
        Kind::EndpointSlice => KubernetesRole::EndpointSlice,
        Kind::Ingress => KubernetesRole::Ingress,
    }
}

/// Every list-and-watch the config needs.
pub fn watches(config: &KubernetesSdConfig, own_namespace: Option<&str>) -> Vec<Watch> {
    let mut namespaces: Vec<Option<String>> = config.namespaces.iter().cloned().map(Some).collect();
    if config.own_namespace {
        if let Some(ns) = own_namespace {
            namespaces.push(Some(ns.to_string()));
        }
    }
    if namespaces.is_empty() {
        namespaces.push(None);
    }
    let mut out = Vec::new();
    for kind in kinds(config.role, config.attach_node) {
        let selector = config
            .selectors
            .iter()
            .find(|s| s.role == selector_role(kind));
        let per_namespace: Vec<Option<String>> = if kind == Kind::Node {
            vec![None]
        } else {
            namespaces.clone()
        };
        for namespace in per_namespace {
            out.push(Watch {
                kind,
                namespace,
                label_selector: selector.map(|s| s.label.clone()).unwrap_or_default(),
                field_selector: selector.map(|s| s.field.clone()).unwrap_or_default(),
            });
        }
    }
    out
}

/// Runs one Kubernetes SD provider until `cancel` fires.
pub async fn run(
    provider: usize,
    config: KubernetesSdConfig,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
) {
    let endpoint = match access::resolve(&config.access, config.own_namespace) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            ::metrics::counter!(metrics::SD_REFRESH_FAILURES, "mechanism" => "kubernetes")
                .increment(1);
            tracing::error!(role = config.role.as_str(), %error, "kubernetes_sd: cannot reach the API server, provider stopped");
            return;
        }
    };
    let watches = watches(&config, endpoint.own_namespace.as_deref());
    let client = Arc::new(ApiClient::new(endpoint));
    let (change_tx, mut changes) = mpsc::channel::<Change>(256);
    let watchers = cancel.child_token();
    let _stop_watchers = watchers.clone().drop_guard();
    for watch in &watches {
        tokio::spawn(client::watch_objects(
            client.clone(),
            watch.clone(),
            change_tx.clone(),
            watchers.clone(),
        ));
    }
    drop(change_tx);

    let mut store = Store::default();
    // Which watches have listed at least once.
    let mut listed = vec![false; watches.len()];
    let mut sender = ProviderSender::new(provider, tx);
    let mut last: Vec<TargetGroup> = Vec::new();
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return,
            change = changes.recv() => match change {
                Some(change) => change,
                None => return,
            },
        };
        apply(&mut store, &watches, &mut listed, first);
        // Take what else arrives while the burst lasts.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                change = changes.recv() => match change {
                    Some(change) => apply(&mut store, &watches, &mut listed, change),
                    None => break,
                },
            }
        }
        if !listed.iter().all(|l| *l) {
            continue;
        }
        let groups = roles::groups(config.role, &store, config.attach_node);
        let mut changed = Vec::new();
        push_changes(&mut changed, &last, &groups);
        last = groups;
        if !sender.send(changed).await {
            return;
        }
    }
}

/// Applies one watcher's change to the store.
fn apply(store: &mut Store, watches: &[Watch], listed: &mut [bool], change: Change) {
    let result = match change {
        Change::Replace {
            kind,
            namespace,
            items,
        } => {
            if let Some(i) = watches
                .iter()
                .position(|w| w.kind == kind && w.namespace == namespace)
            {
                listed[i] = true;
            }
            store.replace(kind, namespace.as_deref(), items)
        }
        Change::Upsert { kind, object } => store.upsert(kind, object),
        Change::Delete { kind, object } => store.delete(kind, &object),
    };
    if let Err(error) = result {
        tracing::warn!(%error, "kubernetes_sd: ignoring an object that cannot be read");
    }
}
