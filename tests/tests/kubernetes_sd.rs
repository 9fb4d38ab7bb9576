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
//! never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

use scrapegrid_tests::kube_api::KubeApi;
use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::{get_data, Cluster};

/// Names the Prometheus 2.42 binary that records `expected.json`.
const ORACLE_ENV: &str = "SCRAPEGRID_K8S_ORACLE";

/// The two answers recorded: before and after `events.json`.
const STAGES: [&str; 2] = ["initial", "after_events"];

/// How long scrapegrid may take to reach each answer.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(20);

/// Prometheus passes discovery results on at most every 5 s, and its scrape
/// manager applies them at most every 5 s: an answer unchanged for this
/// long is final.
const ORACLE_QUIET: Duration = Duration::from_secs(12);

/// How long the oracle may take to settle.
const ORACLE_DEADLINE: Duration = Duration::from_secs(120);

/// One scrape job: its kubernetes SD entry (besides `api_server`) and
/// relabel rules of its own.
struct Job {
    name: &'static str,
    sd: &'static str,
    relabel: &'static str,
}

const JOBS: &[Job] = &[
    Job {
        name: "k8s-node",
        sd: "role: node",
        relabel: "",
    },
    Job {
        name: "k8s-pod",
        sd: "role: pod",
        relabel: DROP_FINISHED_PODS,
    },
    Job {
        name: "k8s-service",
        sd: "role: service",
        relabel: "",
    },
    Job {
        name: "k8s-endpoints",
        sd: "role: endpoints",
        relabel: "",
    },
    Job {
        name: "k8s-endpointslice",
        sd: "role: endpointslice",
        relabel: "",
    },
    Job {
        name: "k8s-ingress",
        sd: "role: ingress",
        relabel: "",
    },
    Job {
        name: "k8s-pod-namespaces",
        sd: "role: pod\nnamespaces:\n  names: [a, b]",
        relabel: "",
    },
    Job {
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
    Job {
        name: "k8s-pod-node-metadata",
        sd: "role: pod\nattach_metadata:\n  node: true",
        relabel: "",
    },
    Job {
        name: "k8s-endpoints-node-metadata",
        sd: "role: endpoints\nattach_metadata:\n  node: true",
        relabel: "",
    },
    Job {
        name: "k8s-endpointslice-node-metadata",
        sd: "role: endpointslice\nattach_metadata:\n  node: true",
        relabel: "",
    },
    Job {
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

/// Every job's first rule. Prometheus keys its active targets by their
/// final labels and keeps the last discovered labels of targets that
/// collide; without this, targets sharing an address (a ready and a not
/// ready endpoint, ports 53/TCP and 53/UDP, containers without ports)
/// would collide, and which one shows would depend on Go's map order.
const UNIQUE_TARGETS: &str = "- action: labelmap\n  regex: __meta_kubernetes_(.+)";

/// Gives the pod job dropped targets too.
const DROP_FINISHED_PODS: &str =
    "- source_labels: [__meta_kubernetes_pod_phase]\n  regex: Succeeded|Failed\n  action: drop";

/// Returns the prometheus.yml of both systems: every job reads the fake
/// API server; targets are never scraped in time to matter (1h).
fn prometheus_yml(api_server: &str) -> String {
    let mut yaml =
        String::from("global:\n  scrape_interval: 1h\n  scrape_timeout: 10s\nscrape_configs:\n");
    for job in JOBS {
        yaml.push_str(&format!(
            "  - job_name: {}\n    kubernetes_sd_configs:\n      - api_server: {api_server}\n",
            job.name
        ));
        yaml.push_str(&indent(job.sd, 8));
        yaml.push_str("    relabel_configs:\n");
        yaml.push_str(&indent(UNIQUE_TARGETS, 6));
        yaml.push_str(&indent(job.relabel, 6));
    }
    yaml
}

fn indent(text: &str, width: usize) -> String {
    text.lines()
        .map(|line| format!("{:width$}{line}\n", ""))
        .collect()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/kubernetes_sd")
        .join(name)
}

/// One target's discovered labels.
type LabelSet = BTreeMap<String, String>;

/// Per job, per state (`active`, `dropped`), the sorted label sets: what
/// the test compares. Active targets give their final labels, dropped ones
/// their discovered labels: Prometheus 2.42 reports an active target's
/// discovered labels wrongly once relabeling added labels (the slice is
/// shared with the relabeled set, so `job` is overwritten by a mapped
/// label), while the final labels are right and, through every job's
/// `labelmap` rule, carry every `__meta_kubernetes_*` label too.
type Snapshot = BTreeMap<String, BTreeMap<String, Vec<LabelSet>>>;

/// Reads a `/api/v1/targets?state=any` answer. Every value has the
/// `(text, placeholder)` substitutions applied, so that nothing depends on
/// a port or a directory of this run. Jobs are read from each target's
/// `job` label (Prometheus's dropped targets have no `scrapePool`).
fn snapshot(targets: &Value, placeholders: &[(String, &str)]) -> Snapshot {
    let mut snap: Snapshot = JOBS
        .iter()
        .map(|job| {
            let states: BTreeMap<String, Vec<LabelSet>> = ["active", "dropped"]
                .into_iter()
                .map(|s| (s.to_string(), Vec::new()))
                .collect();
            (job.name.to_string(), states)
        })
        .collect();
    for (state, key, field) in [
        ("active", "activeTargets", "labels"),
        ("dropped", "droppedTargets", "discoveredLabels"),
    ] {
        for target in targets[key].as_array().into_iter().flatten() {
            let labels: LabelSet = target[field]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    let mut value = value.as_str().unwrap_or_default().to_string();
                    for (text, placeholder) in placeholders {
                        value = value.replace(text.as_str(), placeholder);
                    }
                    (name.clone(), value)
                })
                .collect();
            let job = labels.get("job").cloned().unwrap_or_default();
            snap.entry(job)
                .or_default()
                .entry(state.to_string())
                .or_default()
                .push(labels);
        }
    }
    snap.values_mut()
        .flat_map(|states| states.values_mut())
        .for_each(|targets| targets.sort());
    snap
}

/// `job: active/dropped` counts, for messages.
fn counts(snap: &Snapshot) -> String {
    snap.iter()
        .map(|(job, states)| {
            let n = |s: &str| states.get(s).map_or(0, Vec::len);
            format!("{job}: {}/{}", n("active"), n("dropped"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn has_targets(snap: &Snapshot, job: &str) -> bool {
    snap.get(job)
        .is_some_and(|states| states.values().any(|t| !t.is_empty()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_sd_as_prometheus() -> Result<()> {
    let kube = KubeApi::start().await?;
    kube.load(&data("objects.json"))?;
    let dir = tempfile::tempdir()?;
    let yaml = prometheus_yml(&kube.url());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let mut placeholders = vec![
        (kube.addr.to_string(), "{api_server}"),
        (dir.path().display().to_string(), "{dir}"),
    ];
    let expected_path = data("expected.json");
    if let Some(oracle) = std::env::var_os(ORACLE_ENV) {
        record(
            &kube,
            Path::new(&oracle),
            &config,
            &placeholders,
            &expected_path,
        )
        .await?;
        kube.clear()?;
        kube.load(&data("objects.json"))?;
        kube.clear_requests();
    }
    let expected = read_expected(&expected_path)?;

    let cluster = Cluster::builder().config(&yaml).build().await?;
    placeholders.push((cluster.dir.path().display().to_string(), "{dir}"));
    converge(&cluster, &expected["initial"], &placeholders, "initial").await;
    kube.apply_file(&data("events.json"))?;
    converge(
        &cluster,
        &expected["after_events"],
        &placeholders,
        "after_events",
    )
    .await;
    check_requests(&kube.requests(), "scrapegrid");
    Ok(())
}

/// Runs the oracle over the fixture and its changes and writes its
/// answers to `out`.
async fn record(
    kube: &KubeApi,
    oracle: &Path,
    config: &Path,
    placeholders: &[(String, &str)],
    out: &Path,
) -> Result<()> {
    let prometheus = Prometheus::start_binary(oracle, config, &[]).await?;
    let build = prometheus.get("/api/v1/status/buildinfo", &[]).await?;
    let version = build["version"].as_str().unwrap_or_default().to_string();
    ensure!(
        version.starts_with("2.42."),
        "{ORACLE_ENV}={} is Prometheus {version:?}, not 2.42",
        oracle.display()
    );
    let initial = settle(&prometheus, placeholders, None).await;
    kube.apply_file(&data("events.json"))?;
    let after_events = settle(&prometheus, placeholders, Some(&initial)).await;
    // The request checks hold for the real client too.
    check_requests(&kube.requests(), "Prometheus");
    drop(prometheus);

    let answers = BTreeMap::from([(STAGES[0], &initial), (STAGES[1], &after_events)]);
    std::fs::write(out, serde_json::to_string_pretty(&answers)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "recorded Prometheus {version}'s answers in {}\n  initial: {}\n  after_events: {}",
        out.display(),
        counts(&initial),
        counts(&after_events)
    );
    Ok(())
}

/// Waits until Prometheus's targets have stopped changing, every job has
/// some, and they differ from `unlike` (the answer before the changes);
/// returns them.
async fn settle(
    prometheus: &Prometheus,
    placeholders: &[(String, &str)],
    unlike: Option<&Snapshot>,
) -> Snapshot {
    let start = Instant::now();
    let mut stable: Option<(Snapshot, Instant)> = None;
    loop {
        if let Ok(targets) = prometheus.targets("any").await {
            let snap = snapshot(&targets, placeholders);
            if stable.as_ref().map(|(s, _)| s) != Some(&snap) {
                stable = Some((snap, Instant::now()));
            }
        }
        if let Some((snap, since)) = &stable {
            let complete = JOBS.iter().all(|j| has_targets(snap, j.name)) && unlike != Some(snap);
            if complete && since.elapsed() >= ORACLE_QUIET {
                return snap.clone();
            }
        }
        if start.elapsed() > ORACLE_DEADLINE {
            let last = stable.as_ref().map(|(s, _)| counts(s));
            panic!(
                "Prometheus's targets did not settle within {ORACLE_DEADLINE:?} \
                 (active/dropped per job): {last:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads the recorded answers and checks they fit the jobs of this test.
fn read_expected(path: &Path) -> Result<BTreeMap<String, Snapshot>> {
    let how = format!(
        "record it with a Prometheus 2.42 built with kubernetes discovery \
         (tests/data/kubernetes_sd/README.md):\n  \
         {ORACLE_ENV}=/path/to/prometheus cargo nextest run -p scrapegrid-tests kubernetes_sd"
    );
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{} is missing: {how}", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let expected: BTreeMap<String, Snapshot> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for stage in STAGES {
        let snap = expected
            .get(stage)
            .ok_or_else(|| anyhow!("{} has no {stage:?} answer: {how}", path.display()))?;
        let jobs: BTreeSet<&str> = snap.keys().map(String::as_str).collect();
        let ours: BTreeSet<&str> = JOBS.iter().map(|j| j.name).collect();
        ensure!(
            jobs == ours && ours.iter().all(|j| has_targets(snap, j)),
            "{} was recorded for other jobs or fixtures ({stage}: {}): {how}",
            path.display(),
            counts(snap)
        );
    }
    Ok(expected)
}

/// Waits until scrapegrid's control plane discovers exactly `want`;
/// panics with a per-target diff after [`CONVERGE_DEADLINE`].
async fn converge(
    cluster: &Cluster,
    want: &Snapshot,
    placeholders: &[(String, &str)],
    stage: &str,
) {
    let url = format!("http://{}/api/v1/targets?state=any", cluster.control_http);
    let start = Instant::now();
    let mut last = Err(anyhow!("no answer yet"));
    while start.elapsed() < CONVERGE_DEADLINE {
        last = get_data(&cluster.http, &url)
            .await
            .map(|targets| snapshot(&targets, placeholders));
        if last.as_ref().is_ok_and(|got| got == want) {
            println!(
                "{stage}: scrapegrid discovers what Prometheus 2.42 does ({})",
                counts(want)
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = match &last {
        Ok(got) => diff(want, got),
        Err(e) => format!("the control plane's targets API failed: {e:#}"),
    };
    panic!(
        "{stage}: after {CONVERGE_DEADLINE:?}, scrapegrid's discovered targets still differ \
         from Prometheus 2.42's (-: only Prometheus, +: only scrapegrid)\n{report}"
    );
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

/// Describes how `got` differs from `want`, per job and state: a target
/// only in one is paired with the most similar target only in the other
/// (same address, or half its labels alike) and their labels compared;
/// the rest are listed whole.
fn diff(want: &Snapshot, got: &Snapshot) -> String {
    let mut out = Vec::new();
    let (no_states, no_targets) = (BTreeMap::new(), Vec::new());
    let jobs: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    for job in jobs {
        let w = want.get(job).unwrap_or(&no_states);
        let g = got.get(job).unwrap_or(&no_states);
        let states: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
        for state in states {
            let (wt, gt) = (
                w.get(state).unwrap_or(&no_targets),
                g.get(state).unwrap_or(&no_targets),
            );
            let (missing, extra) = multiset_difference(wt, gt);
            if missing.is_empty() && extra.is_empty() {
                continue;
            }
            out.push(format!(
                "job {job} ({state}): Prometheus {} targets, scrapegrid {}",
                wt.len(),
                gt.len()
            ));
            let mut extra: Vec<Option<&LabelSet>> = extra.into_iter().map(Some).collect();
            for m in missing {
                let similar = extra
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| e.map(|e| (i, e, alike(m, e))))
                    .filter(|(_, e, n)| {
                        e.get("__address__") == m.get("__address__")
                            || 2 * n >= m.len().max(e.len())
                    })
                    .max_by_key(|(_, _, n)| *n);
                match similar {
                    Some((i, e, _)) => {
                        extra[i] = None;
                        out.push(format!("  target {}:", address(m)));
                        for (k, v) in m.iter().filter(|(k, v)| e.get(*k) != Some(*v)) {
                            out.push(format!("    - {k}={v:?}"));
                        }
                        for (k, v) in e.iter().filter(|(k, v)| m.get(*k) != Some(*v)) {
                            out.push(format!("    + {k}={v:?}"));
                        }
                    }
                    None => out.push(format!("  - target {} {}", address(m), show(m))),
                }
            }
            for e in extra.into_iter().flatten() {
                out.push(format!("  + target {} {}", address(e), show(e)));
            }
        }
    }
    out.join("\n")
}

/// The label sets only in `want` and only in `got` (both sorted), counting
/// repeats.
fn multiset_difference<'a>(
    want: &'a [LabelSet],
    got: &'a [LabelSet],
) -> (Vec<&'a LabelSet>, Vec<&'a LabelSet>) {
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(w), Some(g)) if w == g => {
                i += 1;
                j += 1;
            }
            (Some(w), Some(g)) if w < g => {
                missing.push(w);
                i += 1;
            }
            (Some(w), None) => {
                missing.push(w);
                i += 1;
            }
            (_, Some(g)) => {
                extra.push(g);
                j += 1;
            }
            (None, None) => unreachable!("the loop stops when both are done"),
        }
    }
    (missing, extra)
}

/// How many labels two sets share.
fn alike(a: &LabelSet, b: &LabelSet) -> usize {
    a.iter().filter(|(k, v)| b.get(*k) == Some(*v)).count()
}

fn address(labels: &LabelSet) -> &str {
    labels
        .get("__address__")
        .map_or("(no __address__)", String::as_str)
}

fn show(labels: &LabelSet) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[test]
fn differences_are_found_and_described() {
    let set = |pairs: &[(&str, &str)]| -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let a = set(&[
        ("__address__", "10.0.0.1:80"),
        ("job", "j"),
        ("ready", "true"),
    ]);
    let a_not_ready = set(&[
        ("__address__", "10.0.0.1:80"),
        ("job", "j"),
        ("ready", "false"),
    ]);
    let b = set(&[("__address__", "10.0.0.2:80"), ("job", "j")]);
    let c = set(&[("__address__", "other:1")]);
    let snap = |active: Vec<LabelSet>| -> Snapshot {
        let mut active = active;
        active.sort();
        BTreeMap::from([(
            "j".to_string(),
            BTreeMap::from([
                ("active".to_string(), active),
                ("dropped".to_string(), vec![]),
            ]),
        )])
    };
    let want = snap(vec![a.clone(), b.clone(), b.clone()]);
    assert_eq!(diff(&want, &want), "");
    // A changed label, a lost duplicate and an unexpected target.
    let got = snap(vec![a_not_ready, b, c]);
    let report = diff(&want, &got);
    for line in [
        "job j (active): Prometheus 3 targets, scrapegrid 3",
        "  target 10.0.0.1:80:",
        "    - ready=\"true\"",
        "    + ready=\"false\"",
        "  - target 10.0.0.2:80 {__address__=\"10.0.0.2:80\", job=\"j\"}",
        "  + target other:1 {__address__=\"other:1\"}",
    ] {
        assert!(
            report.lines().any(|l| l == line),
            "no line {line:?} in\n{report}"
        );
    }
    assert_ne!(want, got, "the comparison sees every label");
}
