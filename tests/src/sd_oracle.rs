//! The differential harness of the service discovery tests
//! (`tests/tests/kubernetes_sd.rs`, `tests/tests/consul_sd.rs`): one
//! `prometheus.yml` is read by scrapegrid's control plane and by a
//! Prometheus 2.42 built with that discovery (the oracle, which Debian's
//! build is not), both against the same fake API, before and after one set
//! of changes.
//!
//! [`SdComparison`] describes one such test: its jobs ([`SdJob`]), from
//! which [`SdComparison::prometheus_yml`] writes the config, its data
//! directory (`tests/data/<name>/`) and the environment variable naming its
//! oracle. With the oracle named, [`SdComparison::record`] runs it, waits until
//! its targets settle at each stage ([`STAGES`]) and writes its answers to
//! `expected.json`. Every run then reads that file
//! ([`SdComparison::read_expected`]: a missing file fails the test, which
//! is never skipped) and waits until the control plane's targets are the
//! same ([`SdComparison::converge`]), or panics with a per-target [`diff`].
//!
//! An answer is a [`Snapshot`] of `/api/v1/targets?state=any`, the same
//! API on both sides.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

use crate::prometheus::Prometheus;
use crate::{get_data, Cluster};

/// The two answers recorded: before and after the changes.
pub const STAGES: [&str; 2] = ["initial", "after_events"];

/// Prometheus passes discovery results on at most every 5 s, and its scrape
/// manager applies them at most every 5 s: an answer unchanged for this
/// long is final.
const ORACLE_QUIET: Duration = Duration::from_secs(12);

/// How long the oracle may take to settle.
const ORACLE_DEADLINE: Duration = Duration::from_secs(120);

/// One target's discovered labels.
pub type LabelSet = BTreeMap<String, String>;

/// Per job, per state (`active`, `dropped`), the sorted label sets: what
/// the tests compare. Active targets give their final labels, dropped ones
/// their discovered labels: Prometheus 2.42 reports an active target's
/// discovered labels wrongly once relabeling added labels (the slice is
/// shared with the relabeled set, so `job` is overwritten by a mapped
/// label), while the final labels are right and, through every job's
/// `labelmap` rule of the discovery's `__meta_*` labels, carry those too.
pub type Snapshot = BTreeMap<String, BTreeMap<String, Vec<LabelSet>>>;

/// One scrape job of a comparison: its SD entry (besides what every job's
/// entry has) and relabel rules of its own.
pub struct SdJob {
    pub name: &'static str,
    pub sd: &'static str,
    pub relabel: &'static str,
}

/// One discovery's differential test.
pub struct SdComparison {
    /// The discovery as messages and its config key name it: `kubernetes`,
    /// `consul`.
    pub discovery: &'static str,
    /// The test's name: its module in `tests/tests/`, its data directory
    /// in `tests/data/`, and the filter that runs it.
    pub name: &'static str,
    /// The environment variable naming the oracle's binary.
    pub oracle_env: &'static str,
    /// The jobs of the `prometheus.yml`; each has targets in every answer.
    pub jobs: &'static [SdJob],
    /// Every job's last relabel rule: a `labelmap` of the discovery's
    /// `__meta_*` labels, which keeps targets that share an address
    /// distinct in Prometheus's active set (keyed by final labels) and puts
    /// every meta label into the final labels compared.
    pub labelmap_rule: &'static str,
    /// How long scrapegrid may take to reach each answer.
    pub converge_deadline: Duration,
}

impl SdComparison {
    /// Returns the prometheus.yml of both systems: per job, one
    /// `<discovery>_sd_configs` entry of the lines `common` (what reaches
    /// the fake API) and the job's own, then the job's rules and
    /// [`Self::labelmap_rule`]. Targets are never scraped in time to matter (1h).
    pub fn prometheus_yml(&self, common: &str) -> String {
        let mut yaml = String::from(
            "global:\n  scrape_interval: 1h\n  scrape_timeout: 10s\nscrape_configs:\n",
        );
        for job in self.jobs {
            yaml.push_str(&format!(
                "  - job_name: {}\n    {}_sd_configs:\n",
                job.name, self.discovery
            ));
            let mut entry = common.lines().chain(job.sd.lines());
            yaml.push_str(&format!("      - {}\n", entry.next().unwrap_or_default()));
            yaml.push_str(&indent(&entry.collect::<Vec<_>>().join("\n"), 8));
            // The job's own rules (drops) first: Prometheus 2.42 reports a
            // target's discovered labels wrongly once a rule added labels
            // (the slice is shared with the relabeled set), so a target
            // must be dropped before the labelmap adds any.
            yaml.push_str("    relabel_configs:\n");
            yaml.push_str(&indent(job.relabel, 6));
            yaml.push_str(&indent(self.labelmap_rule, 6));
        }
        yaml
    }

    /// The path of a file of the test's data directory.
    pub fn data(&self, file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(self.name)
            .join(file)
    }

    /// The oracle's binary, when the environment names one.
    pub fn oracle(&self) -> Option<PathBuf> {
        std::env::var_os(self.oracle_env).map(PathBuf::from)
    }

    /// Reads a `/api/v1/targets?state=any` answer. Every value has the
    /// `(text, placeholder)` substitutions applied, so that nothing depends
    /// on a port or a directory of this run. Jobs are read from each
    /// target's `job` label (Prometheus's dropped targets have no
    /// `scrapePool`).
    pub fn snapshot(&self, targets: &Value, placeholders: &[(String, &str)]) -> Snapshot {
        let mut snap: Snapshot = self
            .jobs
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

    /// Runs the oracle at `oracle` with `config` over the fake API as it
    /// is, then after `change`, and writes its answers to `expected.json`.
    /// `check_requests` runs after both answers: the request checks a test
    /// makes of scrapegrid hold for the real client too.
    pub async fn record(
        &self,
        oracle: &Path,
        config: &Path,
        placeholders: &[(String, &str)],
        change: impl FnOnce() -> Result<()>,
        check_requests: impl FnOnce(),
    ) -> Result<()> {
        let prometheus = Prometheus::start_binary(oracle, config, &[]).await?;
        let build = prometheus.get("/api/v1/status/buildinfo", &[]).await?;
        let version = build["version"].as_str().unwrap_or_default().to_string();
        ensure!(
            version.starts_with("2.42."),
            "{}={} is Prometheus {version:?}, not 2.42",
            self.oracle_env,
            oracle.display()
        );
        let initial = self.settle(&prometheus, placeholders, None).await;
        change()?;
        let after_events = self.settle(&prometheus, placeholders, Some(&initial)).await;
        check_requests();
        drop(prometheus);

        let out = self.data("expected.json");
        let answers = BTreeMap::from([(STAGES[0], &initial), (STAGES[1], &after_events)]);
        std::fs::write(&out, serde_json::to_string_pretty(&answers)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        println!(
            "recorded Prometheus {version}'s answers in {}\n  initial: {}\n  after_events: {}",
            out.display(),
            counts(&initial),
            counts(&after_events)
        );
        Ok(())
    }

    /// Waits until Prometheus's targets have stopped changing, every job
    /// has some, and they differ from `unlike` (the answer before the
    /// changes); returns them.
    async fn settle(
        &self,
        prometheus: &Prometheus,
        placeholders: &[(String, &str)],
        unlike: Option<&Snapshot>,
    ) -> Snapshot {
        let start = Instant::now();
        let mut stable: Option<(Snapshot, Instant)> = None;
        loop {
            if let Ok(targets) = prometheus.targets("any").await {
                let snap = self.snapshot(&targets, placeholders);
                if stable.as_ref().map(|(s, _)| s) != Some(&snap) {
                    stable = Some((snap, Instant::now()));
                }
            }
            if let Some((snap, since)) = &stable {
                let complete =
                    self.jobs.iter().all(|j| has_targets(snap, j.name)) && unlike != Some(snap);
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

    /// Reads the recorded answers (`expected.json`) and checks they fit
    /// the jobs of this test.
    pub fn read_expected(&self) -> Result<BTreeMap<String, Snapshot>> {
        let path = self.data("expected.json");
        let how = format!(
            "record it with a Prometheus 2.42 built with {} discovery \
             (tests/data/{}/README.md):\n  \
             {}=/path/to/prometheus cargo nextest run -p scrapegrid-tests {}",
            self.discovery, self.name, self.oracle_env, self.name
        );
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{} is missing: {how}", path.display())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let expected: BTreeMap<String, Snapshot> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let ours: BTreeSet<&str> = self.jobs.iter().map(|j| j.name).collect();
        for stage in STAGES {
            let snap = expected
                .get(stage)
                .ok_or_else(|| anyhow!("{} has no {stage:?} answer: {how}", path.display()))?;
            let jobs: BTreeSet<&str> = snap.keys().map(String::as_str).collect();
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
    /// panics with a per-target diff after the test's deadline.
    pub async fn converge(
        &self,
        cluster: &Cluster,
        want: &Snapshot,
        placeholders: &[(String, &str)],
        stage: &str,
    ) {
        let deadline = self.converge_deadline;
        let url = format!("http://{}/api/v1/targets?state=any", cluster.control_http);
        let start = Instant::now();
        let mut last = Err(anyhow!("no answer yet"));
        while start.elapsed() < deadline {
            last = get_data(&cluster.http, &url)
                .await
                .map(|targets| self.snapshot(&targets, placeholders));
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
            "{stage}: after {deadline:?}, scrapegrid's discovered targets still differ \
             from Prometheus 2.42's (-: only Prometheus, +: only scrapegrid)\n{report}"
        );
    }
}

/// `text` with every line indented by `width` spaces.
fn indent(text: &str, width: usize) -> String {
    text.lines()
        .map(|line| format!("{:width$}{line}\n", ""))
        .collect()
}

/// `job: active/dropped` counts, for messages.
pub fn counts(snap: &Snapshot) -> String {
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

/// Describes how `got` differs from `want`, per job and state: a target
/// only in one is paired with the most similar target only in the other
/// (same address, or half its labels alike) and their labels compared;
/// the rest are listed whole.
pub fn diff(want: &Snapshot, got: &Snapshot) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    const JOBS: &[SdJob] = &[
        SdJob {
            name: "a",
            sd: "role: pod\nnamespaces:\n  names: [x]",
            relabel: "- action: drop",
        },
        SdJob {
            name: "b",
            sd: "",
            relabel: "",
        },
    ];

    fn comparison() -> SdComparison {
        SdComparison {
            discovery: "test",
            name: "test_sd",
            oracle_env: "UNUSED",
            jobs: JOBS,
            labelmap_rule: "- action: labelmap\n  regex: __meta_test_(.+)",
            converge_deadline: Duration::from_secs(1),
        }
    }

    #[test]
    fn prometheus_yml_has_one_entry_per_job() {
        let yaml = comparison().prometheus_yml("server: 'h:1'\nrefresh_interval: 1s");
        let want = concat!(
            "global:\n  scrape_interval: 1h\n  scrape_timeout: 10s\nscrape_configs:\n",
            "  - job_name: a\n",
            "    test_sd_configs:\n",
            "      - server: 'h:1'\n",
            "        refresh_interval: 1s\n",
            "        role: pod\n",
            "        namespaces:\n",
            "          names: [x]\n",
            "    relabel_configs:\n",
            "      - action: drop\n",
            "      - action: labelmap\n",
            "        regex: __meta_test_(.+)\n",
            "  - job_name: b\n",
            "    test_sd_configs:\n",
            "      - server: 'h:1'\n",
            "        refresh_interval: 1s\n",
            "    relabel_configs:\n",
            "      - action: labelmap\n",
            "        regex: __meta_test_(.+)\n",
        );
        assert_eq!(yaml, want);
    }

    #[test]
    fn snapshots_group_by_job_and_state() {
        let targets = serde_json::json!({
            "activeTargets": [
                {"labels": {"job": "a", "instance": "127.0.0.1:9/x", "z": "1"}},
                {"labels": {"job": "a", "instance": "h:1"}},
            ],
            "droppedTargets": [
                {"discoveredLabels": {"job": "a", "__address__": "h:2"}},
            ],
        });
        let placeholders = [("127.0.0.1:9".to_string(), "{server}")];
        let snap = comparison().snapshot(&targets, &placeholders);
        assert_eq!(counts(&snap), "a: 2/1, b: 0/0");
        // Sorted after the substitution: "h:1" < "{server}/x".
        assert_eq!(snap["a"]["active"][0]["instance"], "h:1");
        assert_eq!(snap["a"]["active"][1]["instance"], "{server}/x");
        assert!(has_targets(&snap, "a") && !has_targets(&snap, "b"));
    }
}
