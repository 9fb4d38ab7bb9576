//! The discovery manager: runs the providers of every job, keeps their latest
//! groups, and publishes the merged groups per job, throttled.
//!
//! Providers send into one bounded channel; when it is full a provider waits
//! (its next send carries everything that changed meanwhile). The merged view
//! is published on a `watch` channel at most once per `update_interval`
//! (Prometheus's `updatert`, 5 s by default), so a burst of provider updates
//! reaches sharding as one change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::Config;

use super::{file_sd, static_sd, ProviderUpdate, TargetGroup};

/// Every job's groups, as last published.
pub type DiscoveredTargets = BTreeMap<String, Vec<TargetGroup>>;

/// Groups per job and provider, keyed by source.
type Groups = HashMap<String, HashMap<usize, BTreeMap<String, TargetGroup>>>;

/// Handle to the running discovery manager.
pub struct DiscoveryManager {
    pub targets: watch::Receiver<Arc<DiscoveredTargets>>,
}

impl DiscoveryManager {
    /// Starts one provider per SD config of `config` and the merging task.
    pub fn start(config: &Config, update_interval: Duration, cancel: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel::<ProviderUpdate>(64);
        let mut providers = JoinSet::new();
        let mut jobs = Vec::new();
        for sc in &config.scrape_configs {
            jobs.push(sc.job_name.clone());
            let mut index = 0;
            if !sc.static_configs.is_empty() {
                let update = ProviderUpdate {
                    job: sc.job_name.clone(),
                    provider: index,
                    groups: static_sd::groups(&sc.static_configs),
                };
                let tx = tx.clone();
                providers.spawn(async move {
                    let _ = tx.send(update).await;
                });
                index += 1;
            }
            for fc in &sc.file_sd_configs {
                providers.spawn(file_sd::run(
                    sc.job_name.clone(),
                    index,
                    fc.clone(),
                    tx.clone(),
                    cancel.child_token(),
                ));
                index += 1;
            }
        }
        drop(tx);
        let (pub_tx, pub_rx) = watch::channel(Arc::new(DiscoveredTargets::new()));
        tokio::spawn(merge(jobs, rx, pub_tx, update_interval, cancel, providers));
        Self { targets: pub_rx }
    }
}

async fn merge(
    jobs: Vec<String>,
    mut rx: mpsc::Receiver<ProviderUpdate>,
    publish: watch::Sender<Arc<DiscoveredTargets>>,
    update_interval: Duration,
    cancel: CancellationToken,
    mut providers: JoinSet<()>,
) {
    let mut groups: Groups = jobs.iter().map(|j| (j.clone(), HashMap::new())).collect();
    let mut dirty = false;
    // Providers may all finish (static ones send once); buffered updates
    // must still be received, so track the end of the channel by `recv`.
    let mut open = true;
    let mut tick = tokio::time::interval(update_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            update = rx.recv(), if open => match update {
                Some(update) => {
                    apply(&mut groups, update);
                    dirty = true;
                }
                None => open = false,
            },
            _ = tick.tick() => {
                if dirty {
                    dirty = false;
                    publish.send_replace(Arc::new(flatten(&groups)));
                }
            }
        }
    }
    providers.shutdown().await;
}

/// Records a provider's update: a group with no targets deletes its source.
fn apply(groups: &mut Groups, update: ProviderUpdate) {
    let by_source = groups
        .entry(update.job)
        .or_default()
        .entry(update.provider)
        .or_default();
    for g in update.groups {
        if g.targets.is_empty() {
            by_source.remove(&g.source);
        } else {
            by_source.insert(g.source.clone(), g);
        }
    }
}

fn flatten(groups: &Groups) -> DiscoveredTargets {
    groups
        .iter()
        .map(|(job, providers)| {
            let mut ids: Vec<_> = providers.keys().copied().collect();
            ids.sort_unstable();
            let all = ids
                .iter()
                .flat_map(|id| providers[id].values().cloned())
                .collect();
            (job.clone(), all)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_common::Labels;

    fn group(source: &str, addrs: &[&str]) -> TargetGroup {
        TargetGroup {
            source: source.into(),
            targets: addrs
                .iter()
                .map(|a| Labels::from_pairs([("__address__", *a)]))
                .collect(),
            labels: Labels::new(),
        }
    }

    #[test]
    fn later_sends_replace_changed_groups_and_empty_groups_delete() {
        let mut g = Groups::new();
        let up = |provider, groups| ProviderUpdate {
            job: "j".into(),
            provider,
            groups,
        };
        apply(
            &mut g,
            up(0, vec![group("a", &["h:1"]), group("b", &["h:2"])]),
        );
        apply(&mut g, up(1, vec![group("a", &["h:9"])]));
        apply(&mut g, up(0, vec![group("b", &["h:3"])]));
        let flat = flatten(&g);
        let addrs: Vec<_> = flat["j"]
            .iter()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| t.get("__address__").unwrap().to_string())
            })
            .collect();
        assert_eq!(addrs, ["h:1", "h:3", "h:9"]);
        apply(&mut g, up(0, vec![group("a", &[])]));
        assert_eq!(flatten(&g)["j"].len(), 2);
    }

    #[tokio::test]
    async fn publishes_batched_updates() {
        let yaml = "scrape_configs:\n- job_name: j\n  static_configs:\n  - targets: ['h:1']\n";
        let config = scrapegrid_common::config::load_str(yaml, "t.yml").unwrap();
        let cancel = CancellationToken::new();
        let mut m = DiscoveryManager::start(&config, Duration::from_millis(20), cancel.clone());
        m.targets.changed().await.unwrap();
        assert_eq!(m.targets.borrow()["j"][0].targets.len(), 1);
        cancel.cancel();
    }
}
