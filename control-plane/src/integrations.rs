//! Integrations in the control plane (after Grafana Agent's integrations):
//! an enabled integration ([`Integration`], from the config's
//! `integrations` section) is a job `integrations/<name>` whose targets
//! come from where the cluster's own components are, not from an SD
//! config. Its discovery provider ([`run`]) watches the [`Endpoints`]
//! the coordinator publishes (the leading control plane's HTTP address and
//! each member's) and turns them into target groups ([`groups`]); from
//! there the job is relabeled, sharded and scraped like any other.
//!
//! - `self`: every component's own `/metrics`: the leading control plane,
//!   each scraper, and the storage node at `storage_url`. Labels:
//!   `component` (`control-plane`, `scraper`, `storage-node`) and, for a
//!   scraper, `scraper` (its id).
//! - `host`: `/integrations/host/metrics` on each scraper (served by the
//!   scraper node, [`scrapegrid_common::host_metrics`]): its host's CPU,
//!   memory, disks, filesystems and network with node_exporter's names.
//!   Label `scraper`.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::Integration;
use scrapegrid_common::Labels;

use crate::discovery::{push_changes, ProviderSender, ProviderUpdate, TargetGroup};

/// Where the scraper node serves the host integration.
pub const HOST_METRICS_PATH: &str = "/integrations/host/metrics";

/// Where the cluster's components answer HTTP, as the leader sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The leading control plane's HTTP address (`host:port`).
    pub control_plane: Option<String>,
    /// Each member: its id and HTTP address (`host:port`), by id.
    pub scrapers: Vec<(String, String)>,
}

/// The sending side, held by the coordinator.
pub type EndpointsSender = watch::Sender<Arc<Endpoints>>;

/// The groups of `integration` for `endpoints`: one per component kind.
pub fn groups(integration: &Integration, endpoints: &Endpoints) -> Vec<TargetGroup> {
    let target = |addr: &str, extra: &[(&str, &str)]| {
        let mut pairs = vec![("__address__".to_string(), addr.to_string())];
        pairs.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        Labels::from_pairs(pairs)
    };
    let scrapers = |path: Option<&str>| -> Vec<Labels> {
        endpoints
            .scrapers
            .iter()
            .map(|(id, addr)| {
                let mut extra = vec![("scraper", id.as_str())];
                if let Some(path) = path {
                    extra.push(("__metrics_path__", path));
                }
                target(addr, &extra)
            })
            .collect()
    };
    let group = |source: &str, targets: Vec<Labels>, component: Option<&str>| TargetGroup {
        source: format!("{}/{source}", integration.job_name()),
        targets,
        labels: Labels::from_pairs(component.map(|c| ("component".to_string(), c.to_string()))),
    };
    let mut out = Vec::new();
    match integration {
        Integration::SelfMetrics { storage_url } => {
            if let Some(addr) = &endpoints.control_plane {
                out.push(group(
                    "control-plane",
                    vec![target(addr, &[])],
                    Some("control-plane"),
                ));
            }
            out.push(group("scraper", scrapers(None), Some("scraper")));
            if let Some(url) = storage_url {
                let (scheme, host) = url.split_once("://").unwrap_or(("http", url));
                out.push(group(
                    "storage-node",
                    vec![target(host, &[("__scheme__", scheme)])],
                    Some("storage-node"),
                ));
            }
        }
        Integration::Host => out.push(group("host", scrapers(Some(HOST_METRICS_PATH)), None)),
    }
    out.retain(|g| !g.targets.is_empty());
    out
}

/// The discovery provider of one integration: sends its groups now and
/// whenever the endpoints change, until `cancel`.
pub async fn run(
    id: usize,
    integration: Integration,
    mut endpoints: watch::Receiver<Arc<Endpoints>>,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
) {
    let mut sender = ProviderSender::new(id, tx);
    let mut last: Vec<TargetGroup> = Vec::new();
    loop {
        let now = groups(&integration, &endpoints.borrow_and_update());
        let mut changed = Vec::new();
        push_changes(&mut changed, &last, &now);
        if !sender.send(changed).await {
            return;
        }
        last = now;
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = endpoints.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            control_plane: Some("10.0.0.1:9092".into()),
            scrapers: vec![
                ("a".into(), "10.0.0.2:9093".into()),
                ("b".into(), "10.0.0.3:9093".into()),
            ],
        }
    }

    #[test]
    fn self_scrapes_the_leader_each_scraper_and_the_storage_node() {
        let own = Integration::SelfMetrics {
            storage_url: Some("https://10.0.0.9:9090".into()),
        };
        let g = groups(&own, &endpoints());
        let by_source: Vec<(&str, String, Vec<String>)> = g
            .iter()
            .map(|g| {
                (
                    g.source.as_str(),
                    g.labels.to_string(),
                    g.targets.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(
            by_source,
            [
                (
                    "integrations/self/control-plane",
                    "{component=\"control-plane\"}".to_string(),
                    vec!["{__address__=\"10.0.0.1:9092\"}".to_string()]
                ),
                (
                    "integrations/self/scraper",
                    "{component=\"scraper\"}".to_string(),
                    vec![
                        "{__address__=\"10.0.0.2:9093\", scraper=\"a\"}".to_string(),
                        "{__address__=\"10.0.0.3:9093\", scraper=\"b\"}".to_string()
                    ]
                ),
                (
                    "integrations/self/storage-node",
                    "{component=\"storage-node\"}".to_string(),
                    vec!["{__address__=\"10.0.0.9:9090\", __scheme__=\"https\"}".to_string()]
                ),
            ]
        );
        // Without a storage URL or members, only what is known.
        let own = Integration::SelfMetrics { storage_url: None };
        let alone = Endpoints {
            control_plane: Some("x:1".into()),
            scrapers: vec![],
        };
        let g = groups(&own, &alone);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].source, "integrations/self/control-plane");
    }

    #[test]
    fn host_is_each_scrapers_host_metrics_path() {
        let g = groups(&Integration::Host, &endpoints());
        assert_eq!(g.len(), 1);
        assert!(g[0].labels.is_empty());
        assert_eq!(
            g[0].targets[1].to_string(),
            "{__address__=\"10.0.0.3:9093\", __metrics_path__=\"/integrations/host/metrics\", scraper=\"b\"}"
        );
        assert!(groups(&Integration::Host, &Endpoints::default()).is_empty());
    }

    #[tokio::test]
    async fn the_provider_follows_the_endpoints_and_deletes_gone_sources() {
        let (etx, erx) = watch::channel(Arc::new(endpoints()));
        let (tx, mut rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        tokio::spawn(run(7, Integration::Host, erx, tx, cancel.clone()));
        let first = rx.recv().await.unwrap();
        assert_eq!(first.provider, 7);
        assert_eq!(first.groups[0].targets.len(), 2);
        etx.send_replace(Arc::new(Endpoints::default()));
        let gone = rx.recv().await.unwrap();
        assert_eq!(gone.groups.len(), 1);
        assert!(gone.groups[0].targets.is_empty(), "an empty group deletes");
        cancel.cancel();
    }
}
