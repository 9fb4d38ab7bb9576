//! The discovery manager: runs one provider per distinct SD config, keeps
//! their latest groups, and publishes the merged groups per job, throttled.
//!
//! A provider is identified by its [`ProviderKey`], the SD config itself, so
//! identical configs share one provider and a reload that leaves a config
//! unchanged leaves its provider running (with its groups). Providers send
//! into one bounded channel; when it is full a provider waits. The merged view
//! is published on a `watch` channel at most once per update interval
//! (Prometheus's `updatert`, 5 s by default), so a burst of provider updates
//! reaches sharding as one change. Updates from a provider that a reload
//! stopped are ignored.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::{
    Config, ConsulSdConfig, DnsSdConfig, FileSdConfig, HttpSdConfig, Integration,
    KubernetesSdConfig, StaticConfig,
};

use super::{
    consul_sd, dns_sd, file_sd, http_sd, kubernetes, static_sd, ProviderUpdate, TargetGroup,
};
use crate::metrics;

/// Every job's groups, as last published.
pub type DiscoveredTargets = BTreeMap<String, Vec<TargetGroup>>;

/// How discovery runs.
#[derive(Clone, Debug)]
pub struct DiscoveryOptions {
    /// Minimum time between two published results.
    pub update_interval: Duration,
    /// DNS server for dns_sd_configs; `None` means the first `nameserver` of
    /// `/etc/resolv.conf`, read at each refresh.
    pub dns_resolver: Option<SocketAddr>,
    /// Where the cluster's components are, for the integrations' targets.
    pub endpoints: watch::Receiver<Arc<crate::integrations::Endpoints>>,
}

/// Identity of a provider: the SD config it runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKey {
    Static(Vec<StaticConfig>),
    File(FileSdConfig),
    Http(HttpSdConfig),
    Dns(DnsSdConfig),
    Kubernetes(KubernetesSdConfig),
    Consul(ConsulSdConfig),
    /// An integration's job: targets from the cluster itself.
    Integration(Integration),
}

/// Returns the providers a job needs: its static configs (one provider),
/// then its file, http, dns, kubernetes and consul SD configs, each kind in config order. The
/// order only decides the order of the job's groups in the merged view.
pub fn provider_keys(sc: &scrapegrid_common::config::ScrapeConfig) -> Vec<ProviderKey> {
    let mut keys = Vec::new();
    if !sc.static_configs.is_empty() {
        keys.push(ProviderKey::Static(sc.static_configs.clone()));
    }
    keys.extend(sc.file_sd_configs.iter().cloned().map(ProviderKey::File));
    keys.extend(sc.http_sd_configs.iter().cloned().map(ProviderKey::Http));
    keys.extend(sc.dns_sd_configs.iter().cloned().map(ProviderKey::Dns));
    keys.extend(
        sc.kubernetes_sd_configs
            .iter()
            .cloned()
            .map(ProviderKey::Kubernetes),
    );
    keys.extend(
        sc.consul_sd_configs
            .iter()
            .cloned()
            .map(ProviderKey::Consul),
    );
    keys.extend(sc.integration.clone().map(ProviderKey::Integration));
    keys
}

/// Starts the provider for `key`.
fn spawn_provider(
    key: &ProviderKey,
    id: usize,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
    options: &DiscoveryOptions,
) {
    match key {
        ProviderKey::Static(configs) => {
            let update = ProviderUpdate {
                provider: id,
                groups: static_sd::groups(configs),
            };
            tokio::spawn(async move {
                let _ = tx.send(update).await;
            });
        }
        ProviderKey::File(c) => {
            tokio::spawn(file_sd::run(id, c.clone(), tx, cancel));
        }
        ProviderKey::Http(c) => {
            tokio::spawn(http_sd::run(id, c.clone(), tx, cancel));
        }
        ProviderKey::Dns(c) => {
            tokio::spawn(dns_sd::run(id, c.clone(), options.dns_resolver, tx, cancel));
        }
        ProviderKey::Kubernetes(c) => {
            tokio::spawn(kubernetes::run(id, c.clone(), tx, cancel));
        }
        ProviderKey::Consul(c) => {
            tokio::spawn(consul_sd::run(id, c.clone(), tx, cancel));
        }
        ProviderKey::Integration(i) => {
            let endpoints = options.endpoints.clone();
            tokio::spawn(crate::integrations::run(
                id,
                i.clone(),
                endpoints,
                tx,
                cancel,
            ));
        }
    }
}

/// Handle to the running discovery manager.
pub struct DiscoveryManager {
    pub targets: watch::Receiver<Arc<DiscoveredTargets>>,
    configs: mpsc::Sender<Arc<Config>>,
}

impl DiscoveryManager {
    /// Starts the manager with the providers of `config`.
    pub fn start(
        config: Arc<Config>,
        options: DiscoveryOptions,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<ProviderUpdate>(64);
        let (config_tx, config_rx) = mpsc::channel(4);
        let (pub_tx, pub_rx) = watch::channel(Arc::new(DiscoveredTargets::new()));
        let mut state = State {
            options,
            tx,
            providers: HashMap::new(),
            next_id: 0,
            jobs: BTreeMap::new(),
            groups: HashMap::new(),
            cancel: cancel.clone(),
        };
        state.apply_config(&config);
        tokio::spawn(state.run(rx, config_rx, pub_tx));
        Self {
            targets: pub_rx,
            configs: config_tx,
        }
    }

    /// Returns the channel that [`DiscoveryManager::apply_config`] uses.
    pub fn config_sender(&self) -> mpsc::Sender<Arc<Config>> {
        self.configs.clone()
    }

    /// Switches to the SD configs of `config`: unchanged providers keep
    /// running, new ones start, the rest stop and their groups go.
    pub async fn apply_config(&self, config: Arc<Config>) {
        // Fails only after shutdown.
        let _ = self.configs.send(config).await;
    }
}

struct Running {
    id: usize,
    cancel: CancellationToken,
}

struct State {
    options: DiscoveryOptions,
    tx: mpsc::Sender<ProviderUpdate>,
    providers: HashMap<ProviderKey, Running>,
    next_id: usize,
    /// Provider ids of each job, in config order.
    jobs: BTreeMap<String, Vec<usize>>,
    /// Latest groups per provider id, by source.
    groups: HashMap<usize, BTreeMap<String, TargetGroup>>,
    cancel: CancellationToken,
}

impl State {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<ProviderUpdate>,
        mut configs: mpsc::Receiver<Arc<Config>>,
        publish: watch::Sender<Arc<DiscoveredTargets>>,
    ) {
        // Publish the job list at once, even before any provider reports.
        let mut dirty = true;
        let mut tick = tokio::time::interval(self.options.update_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                Some(update) = rx.recv() => dirty |= self.apply_update(update),
                Some(config) = configs.recv() => {
                    self.apply_config(&config);
                    dirty = true;
                }
                _ = tick.tick() => {
                    if dirty {
                        dirty = false;
                        publish.send_replace(Arc::new(self.flatten()));
                    }
                }
            }
        }
    }

    fn apply_config(&mut self, config: &Config) {
        let mut wanted: HashMap<ProviderKey, usize> = HashMap::new();
        let mut jobs = BTreeMap::new();
        for sc in &config.scrape_configs {
            let mut ids = Vec::new();
            for key in provider_keys(sc) {
                let id = match (wanted.get(&key), self.providers.get(&key)) {
                    (Some(id), _) => *id,
                    (None, Some(running)) => running.id,
                    (None, None) => {
                        let id = self.next_id;
                        self.next_id += 1;
                        let cancel = self.cancel.child_token();
                        spawn_provider(&key, id, self.tx.clone(), cancel.clone(), &self.options);
                        self.providers.insert(key.clone(), Running { id, cancel });
                        id
                    }
                };
                wanted.insert(key, id);
                ids.push(id);
            }
            jobs.insert(sc.job_name.clone(), ids);
        }
        self.providers.retain(|key, running| {
            let keep = wanted.contains_key(key);
            if !keep {
                running.cancel.cancel();
            }
            keep
        });
        let live: Vec<usize> = self.providers.values().map(|r| r.id).collect();
        self.groups.retain(|id, _| live.contains(id));
        self.jobs = jobs;
        ::metrics::gauge!(metrics::SD_PROVIDERS).set(self.providers.len() as f64);
    }

    /// Records a provider's update; returns whether anything changed.
    fn apply_update(&mut self, update: ProviderUpdate) -> bool {
        if !self.providers.values().any(|r| r.id == update.provider) {
            return false;
        }
        let by_source = self.groups.entry(update.provider).or_default();
        for g in update.groups {
            if g.targets.is_empty() {
                by_source.remove(&g.source);
            } else {
                by_source.insert(g.source.clone(), g);
            }
        }
        true
    }

    fn flatten(&self) -> DiscoveredTargets {
        self.jobs
            .iter()
            .map(|(job, ids)| {
                let all = ids
                    .iter()
                    .filter_map(|id| self.groups.get(id))
                    .flat_map(|g| g.values().cloned())
                    .collect();
                (job.clone(), all)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_common::config::load_str;

    fn options() -> DiscoveryOptions {
        DiscoveryOptions {
            update_interval: Duration::from_millis(20),
            dns_resolver: None,
            endpoints: watch::channel(Default::default()).1,
        }
    }

    fn addrs(t: &DiscoveredTargets, job: &str) -> Vec<String> {
        t[job]
            .iter()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| t.get("__address__").unwrap().to_string())
            })
            .collect()
    }

    async fn next(m: &mut DiscoveryManager) -> Arc<DiscoveredTargets> {
        tokio::time::timeout(Duration::from_secs(5), m.targets.changed())
            .await
            .unwrap()
            .unwrap();
        m.targets.borrow_and_update().clone()
    }

    #[tokio::test]
    async fn identical_configs_share_a_provider_and_reload_keeps_unchanged_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), r#"[{"targets":["f:1"]}]"#).unwrap();
        let file_sd = format!(
            "    file_sd_configs:\n      - files: ['{}/*.json']\n",
            dir.path().display()
        );
        let yaml = format!(
            "scrape_configs:\n  - job_name: a\n{file_sd}  - job_name: b\n{file_sd}  - job_name: c\n    static_configs:\n      - targets: ['s:1']\n"
        );
        let config = Arc::new(load_str(&yaml, "t.yml").unwrap());
        let cancel = CancellationToken::new();
        let mut m = DiscoveryManager::start(config, options(), cancel.clone());
        let mut t = next(&mut m).await;
        while t.get("a").is_none_or(|g| g.is_empty()) || t["c"].is_empty() {
            t = next(&mut m).await;
        }
        assert_eq!(addrs(&t, "a"), ["f:1"]);
        assert_eq!(addrs(&t, "b"), ["f:1"]);
        assert_eq!(addrs(&t, "c"), ["s:1"]);

        // Reload: job c changes its static target, a and b keep their provider.
        let yaml2 = yaml.replace("s:1", "s:2");
        m.apply_config(Arc::new(load_str(&yaml2, "t.yml").unwrap()))
            .await;
        let mut t = next(&mut m).await;
        while addrs(&t, "c") != ["s:2"] {
            t = next(&mut m).await;
        }
        assert_eq!(
            addrs(&t, "a"),
            ["f:1"],
            "unchanged provider kept its groups"
        );
        cancel.cancel();
    }

    #[test]
    fn provider_keys_are_static_file_http_dns_kubernetes_consul() {
        let yaml = "scrape_configs:\n  - job_name: j\n    consul_sd_configs: [{}]\n    kubernetes_sd_configs: [{role: pod}]\n    dns_sd_configs:\n      - names: ['a.example']\n        type: A\n        port: 80\n    http_sd_configs:\n      - url: http://sd.example/x\n    file_sd_configs:\n      - files: ['x.json']\n    static_configs:\n      - targets: ['s:1']\n";
        let config = load_str(yaml, "t.yml").unwrap();
        let kinds: Vec<&str> = provider_keys(&config.scrape_configs[0])
            .iter()
            .map(|k| match k {
                ProviderKey::Static(_) => "static",
                ProviderKey::File(_) => "file",
                ProviderKey::Http(_) => "http",
                ProviderKey::Dns(_) => "dns",
                ProviderKey::Kubernetes(_) => "kubernetes",
                ProviderKey::Consul(_) => "consul",
                ProviderKey::Integration(_) => "integration",
            })
            .collect();
        assert_eq!(
            kinds,
            ["static", "file", "http", "dns", "kubernetes", "consul"]
        );
        let yaml = "integrations: {host: {enabled: true}}";
        let config = load_str(yaml, "t.yml").unwrap();
        assert_eq!(
            provider_keys(&config.scrape_configs[0]),
            [ProviderKey::Integration(Integration::Host)]
        );
    }

    #[tokio::test]
    async fn http_sd_targets_reach_their_job() {
        let app = axum::Router::new().route(
            "/sd",
            axum::routing::get(|| async {
                (
                    [("content-type", "application/json")],
                    r#"[{"targets":["h:9"]}]"#,
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sd", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let yaml = format!(
            "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: {url}\n        refresh_interval: 1s\n"
        );
        let config = Arc::new(load_str(&yaml, "t.yml").unwrap());
        let cancel = CancellationToken::new();
        let mut m = DiscoveryManager::start(config, options(), cancel.clone());
        let mut t = next(&mut m).await;
        while t.get("h").is_none_or(|g| g.is_empty()) {
            t = next(&mut m).await;
        }
        assert_eq!(addrs(&t, "h"), ["h:9"]);
        assert_eq!(t["h"][0].labels.get("__meta_url"), Some(url.as_str()));
        cancel.cancel();
    }

    #[tokio::test]
    async fn empty_groups_delete_their_source_and_stopped_providers_are_ignored() {
        let config = Arc::new(
            load_str(
                "scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['h:1']\n",
                "t.yml",
            )
            .unwrap(),
        );
        let cancel = CancellationToken::new();
        let (tx, _rx) = mpsc::channel(1);
        let mut s = State {
            options: options(),
            tx,
            providers: HashMap::new(),
            next_id: 0,
            jobs: BTreeMap::new(),
            groups: HashMap::new(),
            cancel: cancel.clone(),
        };
        s.apply_config(&config);
        let g = |src: &str, a: &[&str]| TargetGroup {
            source: src.into(),
            targets: a
                .iter()
                .map(|a| scrapegrid_common::Labels::from_pairs([("__address__", *a)]))
                .collect(),
            labels: Default::default(),
        };
        assert!(s.apply_update(ProviderUpdate {
            provider: 0,
            groups: vec![g("x", &["h:1"]), g("y", &["h:2"])]
        }));
        assert!(s.apply_update(ProviderUpdate {
            provider: 0,
            groups: vec![g("x", &[])]
        }));
        assert_eq!(addrs(&s.flatten(), "j"), ["h:2"]);
        assert!(!s.apply_update(ProviderUpdate {
            provider: 99,
            groups: vec![g("z", &["h:3"])]
        }));
        cancel.cancel();
    }
}
