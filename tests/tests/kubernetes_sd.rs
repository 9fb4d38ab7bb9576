//! `kubernetes_sd_configs` against Prometheus 2.42's kubernetes discovery:
//! every role (node, pod, service, endpoints, endpointslice, ingress), a
//! namespace list, label and field selectors and `attach_metadata`, over a
//! fake API server ([`scrapegrid_tests::kube_api`]) holding a wide corpus
//! of objects (`tests/data/kubernetes_sd/objects.json`), then after a set of
//! changes (`events.json`). Each job's discovered label sets, active and
//! dropped, must be exactly Prometheus's, and the API requests must carry
//! the selectors and namespaces.
//!
//! Debian's Prometheus is built without kubernetes discovery, so its
//! answers come from a separately built 2.42, the oracle: with
//! `SCRAPEGRID_K8S_ORACLE=/path/to/prometheus` the test runs it first and
//! records them in `tests/data/kubernetes_sd/expected.json`; every run
//! compares scrapegrid's control plane with that file. A missing file fails
//! the test (README.md in that directory says how to record it); it is
//! never skipped. The recording, the comparison and the diff are
//! [`scrapegrid_tests::sd_oracle`]'s, shared with the consul test.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;

use scrapegrid_tests::kube_api::KubeApi;
use scrapegrid_tests::sd_oracle::{SdComparison, SdJob};
use scrapegrid_tests::Cluster;

/// Names the Prometheus 2.42 binary that records `expected.json`.
const ORACLE_ENV: &str = "SCRAPEGRID_K8S_ORACLE";

/// How long scrapegrid may take to reach each answer.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(20);

/// The scrape jobs: each job's kubernetes SD entry besides `api_server`.
const JOBS: &[SdJob] = &[
    SdJob {
        name: "k8s-node",
        sd: "role: node",
        relabel: "",
    },
    SdJob {
        name: "k8s-pod",
        sd: "role: pod",
        relabel: DROP_FINISHED_PODS,
    },
    SdJob {
        name: "k8s-service",
        sd: "role: service",
        relabel: "",
    },
    SdJob {
        name: "k8s-endpoints",
        sd: "role: endpoints",
        relabel: "",
    },
    SdJob {
        name: "k8s-endpointslice",
        sd: "role: endpointslice",
        relabel: "",
    },
    SdJob {
        name: "k8s-ingress",
        sd: "role: ingress",
        relabel: "",
    },
    SdJob {
        name: "k8s-pod-namespaces",
        sd: "role: pod\nnamespaces:\n  names: [a, b]",
        relabel: "",
    },
    SdJob {
        name: "k8s-pod-selectors",
        sd: concat!(
            "role: pod\n",
            "selectors:\n",
            "  - role: pod\n",
            "    label: app=web\n",
            "    field: spec.nodeName=node-1",
        ),
        relabel: "",
    },
    SdJob {
        name: "k8s-pod-node-metadata",
        sd: "role: pod\nattach_metadata:\n  node: true",
        relabel: "",
    },
    SdJob {
        name: "k8s-endpoints-node-metadata",
        sd: "role: endpoints\nattach_metadata:\n  node: true",
        relabel: "",
    },
    SdJob {
        name: "k8s-endpointslice-node-metadata",
        sd: "role: endpointslice\nattach_metadata:\n  node: true",
        relabel: "",
    },
    SdJob {
        name: "k8s-endpoints-service-selector",
        sd: concat!(
            "role: endpoints\n",
            "selectors:\n",
            "  - role: service\n",
            "    label: team=payments",
        ),
        relabel: "",
    },
];

/// Every job's last rule. Prometheus keys its active targets by their
/// final labels and keeps the last discovered labels of targets that
/// collide; without this, targets sharing an address (a ready and a not
/// ready endpoint, ports 53/TCP and 53/UDP, containers without ports)
/// would collide, and which one shows would depend on Go's map order.
const UNIQUE_TARGETS: &str = "- action: labelmap\n  regex: __meta_kubernetes_(.+)";

/// Gives the pod job dropped targets too.
const DROP_FINISHED_PODS: &str =
    "- source_labels: [__meta_kubernetes_pod_phase]\n  regex: Succeeded|Failed\n  action: drop";

/// This test's comparison: its jobs, data and oracle.
fn comparison() -> SdComparison {
    SdComparison {
        discovery: "kubernetes",
        name: "kubernetes_sd",
        oracle_env: ORACLE_ENV,
        jobs: JOBS,
        labelmap_rule: UNIQUE_TARGETS,
        converge_deadline: CONVERGE_DEADLINE,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_sd_as_prometheus() -> Result<()> {
    let sd = comparison();
    let kube = KubeApi::start().await?;
    kube.load(&sd.data("objects.json"))?;
    let dir = tempfile::tempdir()?;
    let yaml = sd.prometheus_yml(&format!("api_server: {}", kube.url()));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let mut placeholders = vec![
        (kube.addr.to_string(), "{api_server}"),
        (dir.path().display().to_string(), "{dir}"),
    ];
    if let Some(oracle) = sd.oracle() {
        sd.record(
            &oracle,
            &config,
            &placeholders,
            || kube.apply_file(&sd.data("events.json")),
            || check_requests(&kube.requests(), "Prometheus"),
        )
        .await?;
        kube.clear()?;
        kube.load(&sd.data("objects.json"))?;
        kube.clear_requests();
    }
    let expected = sd.read_expected()?;

    let cluster = Cluster::builder().config(&yaml).build().await?;
    placeholders.push((cluster.dir.path().display().to_string(), "{dir}"));
    sd.converge(&cluster, &expected["initial"], &placeholders, "initial")
        .await;
    kube.apply_file(&sd.data("events.json"))?;
    sd.converge(
        &cluster,
        &expected["after_events"],
        &placeholders,
        "after_events",
    )
    .await;
    check_requests(&kube.requests(), "scrapegrid");
    Ok(())
}

/// Checks what a client asked the API server for: the selector job's list
/// and watch carry both its selectors, the service selector reaches the
/// services, and only the namespaced job lists by namespace, `a` and `b`.
fn check_requests(requests: &[String], who: &str) {
    let made = |path: &str, needle: &str, watch: bool| {
        requests
            .iter()
            .any(|r| path_of(r) == path && r.contains(needle) && is_watch(r) == watch)
    };
    let pod_requests: Vec<&String> = requests
        .iter()
        .filter(|r| path_of(r).ends_with("/pods"))
        .collect();
    for watch in [false, true] {
        let what = if watch { "watch" } else { "list" };
        assert!(
            made("/api/v1/pods", "labelSelector=app%3Dweb", watch),
            "{who} made no {what} of /api/v1/pods with labelSelector=app%3Dweb; \
             its pod requests: {pod_requests:#?}"
        );
        assert!(
            made("/api/v1/services", "labelSelector=team%3Dpayments", watch),
            "{who} made no {what} of /api/v1/services with labelSelector=team%3Dpayments"
        );
    }
    for r in pod_requests
        .iter()
        .filter(|r| r.contains("labelSelector=app%3Dweb"))
    {
        assert!(
            r.contains("fieldSelector=spec.nodeName%3Dnode-1"),
            "{who} sent the label selector without the field selector: {r}"
        );
    }
    let namespaced: BTreeSet<&str> = requests
        .iter()
        .map(|r| path_of(r))
        .filter(|p| p.contains("/namespaces/"))
        .collect();
    let want = BTreeSet::from(["/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods"]);
    assert_eq!(
        namespaced, want,
        "{who}: only the namespaced pod job reads by namespace, and only a and b"
    );
    for path in want {
        assert!(made(path, "", false), "{who} never listed {path}");
    }
}

/// The path of a logged request (`path?query`).
fn path_of(request: &str) -> &str {
    request.split('?').next().unwrap_or_default()
}

/// Whether a logged request is a watch.
fn is_watch(request: &str) -> bool {
    request
        .split(['?', '&'])
        .skip(1)
        .any(|p| p == "watch=true" || p == "watch=1")
}
