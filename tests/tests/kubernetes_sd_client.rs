//! How `kubernetes_sd_configs` talks to the API server, over the fake one
//! ([`scrapegrid_tests::kube_api`]): a watch whose version expired (410
//! Gone) makes the control plane list again and it misses no change; a
//! `kubeconfig_file` with a `tokenFile` authenticates, and a rotated token
//! is used from the next request on.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use scrapegrid_tests::kube_api::KubeApi;
use scrapegrid_tests::{eventually, Cluster};

const DEADLINE: Duration = Duration::from_secs(20);

fn pod(name: &str, ip: &str) -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "a", "uid": format!("uid-{name}")},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "main", "image": "i", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]
        },
        "status": {"podIP": ip, "phase": "Running"}
    })
}

fn job(sd: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1h\nscrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs:\n      - role: pod\n{sd}"
    )
}

/// The sorted `__address__` of the job's active targets.
async fn addresses(cluster: &Cluster) -> Vec<String> {
    let Ok(targets) = cluster.targets().await else {
        return Vec::new();
    };
    let mut out: Vec<String> = targets["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["discoveredLabels"]["__address__"].as_str())
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

async fn wait_for(cluster: &Cluster, want: &[&str]) -> Result<()> {
    eventually(DEADLINE, || async {
        (addresses(cluster).await == want).then_some(())
    })
    .await
}

fn lists(kube: &KubeApi) -> usize {
    kube.requests()
        .iter()
        .filter(|r| r.starts_with("/api/v1/pods") && !r.contains("watch="))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_lists_again_and_misses_nothing() -> Result<()> {
    let kube = KubeApi::start().await?;
    kube.add(pod("p1", "10.0.0.1"))?;
    kube.add(pod("p2", "10.0.0.2"))?;
    let sd = format!("        api_server: {}\n", kube.url());
    let cluster = Cluster::builder().config(&job(&sd)).build().await?;
    wait_for(&cluster, &["10.0.0.1:8080", "10.0.0.2:8080"]).await?;
    assert_eq!(
        lists(&kube),
        1,
        "one list, then a watch: {:?}",
        kube.requests()
    );

    // Every watch expires: the control plane must list again, and the
    // change made right after must not be missed.
    kube.expire_watches()?;
    kube.add(pod("p3", "10.0.0.3"))?;
    wait_for(
        &cluster,
        &["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"],
    )
    .await?;
    assert_eq!(
        lists(&kube),
        2,
        "a second list after 410: {:?}",
        kube.requests()
    );

    // And it watches again from the new list.
    kube.delete("Pod", "a", "p1")?;
    wait_for(&cluster, &["10.0.0.2:8080", "10.0.0.3:8080"]).await?;
    assert_eq!(lists(&kube), 2, "a change is watched, not listed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubeconfig_token_file_is_read_for_every_request() -> Result<()> {
    let kube = KubeApi::start().await?;
    kube.add(pod("p1", "10.0.0.1"))?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("token"), "first-token\n")?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: fake\n    user: sd\nusers:\n- name: sd\n  user:\n    tokenFile: token\n",
            kube.url()
        ),
    )?;
    let sd = format!("        kubeconfig_file: {}\n", kubeconfig.display());
    let cluster = Cluster::builder().config(&job(&sd)).build().await?;
    wait_for(&cluster, &["10.0.0.1:8080"]).await?;
    let seen = kube.authorizations();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a == "Bearer first-token"),
        "{seen:?}"
    );

    // A rotated token: the next requests (a list after 410) carry it.
    std::fs::write(dir.path().join("token"), "second-token\n")?;
    kube.expire_watches()?;
    kube.add(pod("p2", "10.0.0.2"))?;
    wait_for(&cluster, &["10.0.0.1:8080", "10.0.0.2:8080"]).await?;
    let seen = kube.authorizations();
    assert_eq!(
        seen.last().map(String::as_str),
        Some("Bearer second-token"),
        "{seen:?}"
    );
    Ok(())
}
