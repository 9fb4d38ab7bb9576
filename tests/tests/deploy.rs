//! `deploy/` (issue 16): what the deployment files tell the binaries is
//! what the binaries accept.
//! - every YAML file parses (each document of a multi-document file);
//! - every container command that runs a scrapegrid binary (Kubernetes
//!   `command`/`args`, compose `command`) passes only flags that binary's
//!   `--help` lists, and so does every commented-out flag line (users
//!   uncomment them);
//! - every binary a container runs is one the image (`deploy/Dockerfile`)
//!   copies into `/usr/local/bin`, and its `CMD` runs one of them;
//! - every `prometheus.yml` under `deploy/` passes `control-plane
//!   check-config`;
//! - `kubectl kustomize` (Debian `kubernetes-client`, installed by
//!   `scripts/install-deps.sh`) renders the Kubernetes base offline, with
//!   the kinds the deployment needs. (Schema validation needs a cluster's
//!   OpenAPI document, so it is not done here.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use scrapegrid_tests::bin;
use serde::Deserialize;
use yaml_serde::Value;

const BINARIES: [&str; 3] = ["control-plane", "scraper-node", "storage-node"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every file under `dir` whose name ends with one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if exts
                .iter()
                .any(|e| path.to_string_lossy().ends_with(&format!(".{e}")))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// The flags a binary's `--help` lists.
fn help_flags(binary: &str) -> BTreeSet<String> {
    let out = Command::new(bin(binary)).arg("--help").output().unwrap();
    assert!(out.status.success(), "{binary} --help failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let flags: BTreeSet<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '<')
        .filter(|t| t.starts_with("--") && t.len() > 2)
        .map(|t| flag_name(t).to_string())
        .collect();
    assert!(flags.len() > 5, "{binary} --help lists {flags:?}");
    flags
}

/// `--name=value` and `--name` both name `--name`.
fn flag_name(token: &str) -> &str {
    let end = token[2..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
        .map_or(token.len(), |i| i + 2);
    &token[..end]
}

/// The command lines under `v` that run a scrapegrid binary: a mapping's
/// `command` (a list, or a string split at blanks) followed by its `args`.
fn commands(v: &Value, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Mapping(m) => {
            let words = |key: &str| -> Vec<String> {
                match m.get(key) {
                    Some(Value::Sequence(s)) => s
                        .iter()
                        .map(|w| match w {
                            Value::String(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .collect(),
                    Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                    _ => Vec::new(),
                }
            };
            let mut line = words("command");
            if line.first().is_some_and(|b| BINARIES.contains(&b.as_str())) {
                line.extend(words("args"));
                out.push(line);
            }
            for (_, child) in m {
                commands(child, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| commands(c, out)),
        Value::Tagged(t) => commands(&t.value, out),
        _ => {}
    }
}

#[test]
fn deployment_files_pass_only_flags_the_binaries_accept() {
    let help: BTreeMap<&str, BTreeSet<String>> =
        BINARIES.iter().map(|b| (*b, help_flags(b))).collect();
    let any: BTreeSet<&String> = help.values().flatten().collect();
    let yamls = files(&deploy_dir(), &["yml", "yaml"]);
    assert!(yamls.len() >= 8, "{yamls:?}");

    let mut checked = BTreeMap::<&str, usize>::new();
    for path in &yamls {
        let mut lines = Vec::new();
        for doc in documents(path) {
            commands(&doc, &mut lines);
        }
        for line in lines {
            let binary = BINARIES.iter().find(|b| **b == line[0]).unwrap();
            for word in line.iter().skip(1).filter(|w| w.starts_with("--")) {
                let flag = flag_name(word);
                assert!(
                    help[binary].contains(flag),
                    "{}: `{binary} {flag}` is not in `{binary} --help`",
                    path.display()
                );
                *checked.entry(binary).or_default() += 1;
            }
        }
        // Commented-out flags, left for users to turn on.
        for (n, l) in std::fs::read_to_string(path).unwrap().lines().enumerate() {
            let Some(rest) = l.trim_start().strip_prefix('#') else {
                continue;
            };
            let rest = rest.trim_start().trim_start_matches("- ").trim_start();
            if rest.starts_with("--") && !rest.contains(' ') {
                let flag = flag_name(rest);
                assert!(
                    any.contains(&flag.to_string()),
                    "{}:{}: commented flag {flag} is in no binary's --help",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    // Compose and Kubernetes both run every binary.
    for b in BINARIES {
        assert!(
            checked.get(b).copied().unwrap_or(0) >= 4,
            "{b}: {checked:?}"
        );
    }
}

#[test]
fn containers_run_binaries_the_image_holds() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let copied: BTreeSet<&str> = dockerfile
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("target/release/"))
        .collect();
    let want: BTreeSet<&str> = BINARIES.into_iter().chain(["scrapegridctl"]).collect();
    assert_eq!(copied, want, "the image copies {copied:?}");
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("a CMD line");
    let cmd: Vec<String> = serde_json::from_str(cmd).unwrap();
    assert!(copied.contains(cmd[0].as_str()), "CMD {cmd:?}");
    assert!(
        dockerfile.contains("USER 10001"),
        "the image runs as a non-root user"
    );

    let mut lines = Vec::new();
    for path in files(&deploy_dir(), &["yml", "yaml"]) {
        for doc in documents(&path) {
            commands(&doc, &mut lines);
        }
    }
    let run: BTreeSet<&str> = lines.iter().map(|l| l[0].as_str()).collect();
    assert_eq!(
        run,
        BINARIES.into_iter().collect(),
        "containers run {run:?}"
    );
}

#[test]
fn deployed_prometheus_configs_pass_check_config() {
    let configs: Vec<PathBuf> = files(&deploy_dir(), &["yml"])
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "prometheus.yml"))
        .collect();
    assert!(configs.len() >= 3, "{configs:?}");
    let out = Command::new(bin("control-plane"))
        .arg("check-config")
        .args(&configs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_renders_the_kubernetes_base() {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir().join("kubernetes"))
        .output()
        .expect("kubectl (Debian kubernetes-client) is missing: run scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut kinds = BTreeMap::<String, usize>::new();
    for doc in yaml_serde::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).unwrap();
        let kind = v["kind"].as_str().unwrap().to_string();
        assert!(v["metadata"]["name"].as_str().is_some(), "{v:?}");
        if kind != "Namespace" && !kind.starts_with("Cluster") {
            assert_eq!(
                v["metadata"]["namespace"].as_str(),
                Some("scrapegrid"),
                "{v:?}"
            );
        }
        *kinds.entry(kind).or_default() += 1;
    }
    for want in [
        "Namespace",
        "ConfigMap",
        "Service",
        "Deployment",
        "StatefulSet",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    ] {
        assert!(kinds.contains_key(want), "no {want} in {kinds:?}");
    }
}
