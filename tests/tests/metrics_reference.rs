//! The components' own metrics: one reference, conventions checked.
//!
//! The catalog is read from the three `metrics.rs` files (each metric's
//! name constant and its `describe_*!` call: type and help). Every name
//! constant must be described; the whole catalog, written as an
//! exposition, must pass `promtool check metrics` (Prometheus's naming
//! lint: `_total` on counters, base units, no type in the name, help on
//! every family); each component's live `/metrics` on a running cluster
//! must pass it too, and show only cataloged `scrapegrid_*` families with
//! the cataloged type and help. The README's table between its
//! `metrics-reference` markers must be the catalog (`UPDATE_REFERENCE=1`
//! rewrites it).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use regex::Regex;
use scrapegrid_tests::{eventually, Cluster, TargetServer};

const COMPONENTS: [(&str, &str); 3] = [
    ("control plane", "control-plane/src/metrics.rs"),
    ("scraper node", "scraper-node/src/metrics.rs"),
    ("storage node", "storage-node/src/metrics.rs"),
];
const START: &str = "<!-- metrics-reference:start -->\n";
const END: &str = "<!-- metrics-reference:end -->\n";

#[derive(Debug, Clone, PartialEq)]
struct Metric {
    kind: String,
    help: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One component's metrics by name, from its source.
fn catalog(source: &str) -> Result<BTreeMap<String, Metric>> {
    let consts = Regex::new(r#"pub const ([A-Z0-9_]+): &str =\s*"([^"]+)";"#)?;
    let describes = Regex::new(
        r#"describe_(counter|gauge|histogram)!\(\s*([A-Z0-9_]+),\s*(?:metrics::Unit::\w+,\s*)?"((?:[^"\\]|\\.)*)"\s*,?\s*\)"#,
    )?;
    let names: BTreeMap<&str, &str> = consts
        .captures_iter(source)
        .map(|c| (c.get(1).unwrap().as_str(), c.get(2).unwrap().as_str()))
        .collect();
    let mut out = BTreeMap::new();
    for c in describes.captures_iter(source) {
        let constant = &c[2];
        let name = names
            .get(constant)
            .with_context(|| format!("{constant} is described but not a name constant"))?;
        let metric = Metric {
            kind: c[1].to_string(),
            help: c[3].replace("\\\"", "\""),
        };
        out.insert(name.to_string(), metric);
    }
    for (constant, name) in &names {
        if name.starts_with("scrapegrid_") && !out.contains_key(*name) {
            bail!("{constant} ({name}) has no describe_*! call: its family would have no help");
        }
    }
    Ok(out)
}

/// `promtool check metrics` on `exposition`; its complaints.
fn promtool_lint(exposition: &str) -> Result<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("promtool (Debian's prometheus package) is needed")?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The catalog as an exposition with one sample per family.
fn exposition(metrics: &BTreeMap<String, Metric>) -> String {
    let mut out = String::new();
    for (name, m) in metrics {
        out.push_str(&format!(
            "# HELP {name} {}\n# TYPE {name} {}\n",
            m.help, m.kind
        ));
        if m.kind == "histogram" {
            out.push_str(&format!(
                "{name}_bucket{{le=\"+Inf\"}} 0\n{name}_sum 0\n{name}_count 0\n"
            ));
        } else {
            out.push_str(&format!("{name} 0\n"));
        }
    }
    out
}

/// The README table of every component.
fn table(all: &[(&str, BTreeMap<String, Metric>)]) -> String {
    let mut out = String::new();
    for (component, metrics) in all {
        out.push_str(&format!(
            "\n**{component}**\n\n| metric | type | help |\n|---|---|---|\n"
        ));
        for (name, m) in metrics {
            out.push_str(&format!("| `{name}` | {} | {} |\n", m.kind, m.help));
        }
    }
    out.push('\n');
    out
}

/// (TYPE, HELP) of each `scrapegrid_*` family of a live exposition.
fn live(text: &str) -> BTreeMap<String, (String, String)> {
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.into()).or_default().1 = help.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.into()).or_default().0 = kind.into();
        }
    }
    out.retain(|n, _| n.starts_with("scrapegrid_"));
    out
}

#[test]
fn the_catalog_follows_the_naming_conventions_and_is_the_readme_table() -> Result<()> {
    let mut all = Vec::new();
    for (component, file) in COMPONENTS {
        let source = std::fs::read_to_string(repo().join(file))?;
        let metrics = catalog(&source).with_context(|| file.to_string())?;
        assert!(metrics.len() > 5, "{file}: {metrics:?}");
        let complaints = promtool_lint(&exposition(&metrics))?;
        assert!(complaints.trim().is_empty(), "{file}:\n{complaints}");
        all.push((component, metrics));
    }
    let readme_path = repo().join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let (start, end) = match (readme.find(START), readme.find(END)) {
        (Some(s), Some(e)) if s < e => (s + START.len(), e),
        _ => bail!("README.md has no {START:?} ... {END:?} markers"),
    };
    let want = table(&all);
    if readme[start..end] != want {
        if std::env::var_os("UPDATE_REFERENCE").is_some() {
            let updated = format!("{}{want}{}", &readme[..start], &readme[end..]);
            std::fs::write(&readme_path, updated)?;
        } else {
            bail!("README.md's metrics reference is stale: run UPDATE_REFERENCE=1 cargo nextest run metrics_reference");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_components_live_metrics_are_cataloged_and_lint_clean() -> Result<()> {
    let target = TargetServer::start("# TYPE demo gauge\ndemo 1\n").await?;
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{}']\n",
        target.addr
    );
    let cluster = Cluster::builder().config(&config).build().await?;
    eventually(Duration::from_secs(30), || async {
        (cluster.query("demo").await.ok()?.len() == 1).then_some(())
    })
    .await?;
    let nodes = [
        ("control plane", &cluster.control_http),
        ("scraper node", &cluster.scrapers[0].1),
        ("storage node", &cluster.storage_http),
    ];
    for ((component, file), (_, addr)) in COMPONENTS.iter().zip(nodes) {
        let source = std::fs::read_to_string(repo().join(file))?;
        let metrics = catalog(&source)?;
        let text = cluster
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let complaints = promtool_lint(&text)?;
        assert!(complaints.trim().is_empty(), "{component}:\n{complaints}");
        let families = live(&text);
        assert!(families.len() > 3, "{component}: {text}");
        for (name, (kind, help)) in families {
            let m = metrics
                .get(&name)
                .with_context(|| format!("{component}: {name} is not in {file}"))?;
            let kind_ok = kind == m.kind || (m.kind == "histogram" && kind == "summary");
            assert!(
                kind_ok && help == m.help,
                "{component}: {name}: live {kind} {help:?}, cataloged {m:?}"
            );
        }
    }
    Ok(())
}
