//! Target construction: discovered groups -> relabeled scrape targets.
//!
//! Follows Prometheus's `PopulateLabels`: group labels under target labels,
//! then the job's defaults (`job`, `__scheme__`, `__metrics_path__`,
//! `__scrape_interval__`, `__scrape_timeout__`, `__param_<name>`), then
//! `relabel_configs`; a target without `__address__` is an error, a missing
//! port is filled in from the scheme, `instance` defaults to the address,
//! `__meta_*` labels go, and the final label set keeps no `__` labels. The
//! target id is a stable hash of the final labels and the scrape URL, so it is
//! the same on every control plane.

use std::collections::BTreeMap;
use std::time::Duration;

use scrapegrid_common::config::ScrapeConfig;
use scrapegrid_common::duration::{format_duration, parse_duration};
use scrapegrid_common::go_url;
use scrapegrid_common::relabel;
use scrapegrid_common::Labels;

use crate::discovery::TargetGroup;

/// A target that survived relabeling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub id: String,
    pub job: String,
    pub url: String,
    /// Final labels, none starting with `__`.
    pub labels: Labels,
    /// Labels before relabeling.
    pub discovered: Labels,
    pub interval: Duration,
    pub timeout: Duration,
    /// Set while the job is over its target_limit: every scrape fails with it.
    pub forced_error: Option<String>,
}

/// A target that relabeling dropped or that is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered: Labels,
    /// Why it is not scraped when it is invalid; `None` when relabeling dropped it.
    pub error: Option<String>,
    /// Why it is not scraped, for people: the error, or which
    /// `relabel_configs` rule dropped it.
    pub reason: String,
}

/// Builds the targets of one job from its discovered groups.
pub fn build(sc: &ScrapeConfig, groups: &[TargetGroup]) -> (Vec<ScrapeTarget>, Vec<DroppedTarget>) {
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for g in groups {
        for t in &g.targets {
            let mut lb = g.labels.builder();
            for l in t.iter() {
                lb.set(l.name.clone(), l.value.clone());
            }
            for (name, value) in defaults(sc) {
                if lb.get(&name).is_none() {
                    lb.set(name, value);
                }
            }
            let discovered = lb.labels();
            match populate(sc, discovered.clone()) {
                Ok(Ok(target)) => active.push(target),
                Ok(Err(rule)) => dropped.push(DroppedTarget {
                    job: sc.job_name.clone(),
                    discovered,
                    error: None,
                    reason: format!(
                        "relabel_configs[{rule}] (action: {}) dropped it",
                        sc.relabel_configs[rule].action.as_str()
                    ),
                }),
                Err(error) => {
                    tracing::warn!(job = %sc.job_name, labels = %discovered, %error, "invalid target");
                    dropped.push(DroppedTarget {
                        job: sc.job_name.clone(),
                        discovered,
                        reason: error.clone(),
                        error: Some(error),
                    })
                }
            }
        }
    }
    // Several groups may yield the same target; scrape it once.
    active.sort_by(|a, b| a.id.cmp(&b.id));
    active.dedup_by(|a, b| a.id == b.id);
    (active, dropped)
}

fn defaults(sc: &ScrapeConfig) -> Vec<(String, String)> {
    let mut d = vec![
        ("job".to_string(), sc.job_name.clone()),
        ("__scheme__".into(), sc.scheme.clone()),
        ("__metrics_path__".into(), sc.metrics_path.clone()),
        (
            "__scrape_interval__".into(),
            format_duration(sc.scrape_interval),
        ),
        (
            "__scrape_timeout__".into(),
            format_duration(sc.scrape_timeout),
        ),
    ];
    for (name, values) in &sc.params {
        if let Some(first) = values.first() {
            d.push((format!("__param_{name}"), first.clone()));
        }
    }
    d
}

/// Relabels one target; `Ok(Err(i))` when `relabel_configs[i]` drops it.
fn populate(sc: &ScrapeConfig, discovered: Labels) -> Result<Result<ScrapeTarget, usize>, String> {
    let mut lb = discovered.builder();
    if let Some(rule) = relabel::dropping_rule(&mut lb, &sc.relabel_configs) {
        return Ok(Err(rule));
    }
    let Some(addr) = lb.get("__address__").map(str::to_string) else {
        return Err("no address".into());
    };
    let scheme = lb.get("__scheme__").unwrap_or("http").to_string();
    let addr = match with_default_port(&addr, &scheme)? {
        Some(a) => {
            lb.set("__address__", a.clone());
            a
        }
        None => addr,
    };
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let interval = label_duration(
        lb.get("__scrape_interval__"),
        sc.scrape_interval,
        "interval",
    )?;
    let timeout = label_duration(lb.get("__scrape_timeout__"), sc.scrape_timeout, "timeout")?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            format_duration(timeout),
            format_duration(interval)
        ));
    }
    lb.retain(|name, _| !name.starts_with("__meta_"));
    if lb.get("instance").is_none() {
        lb.set("instance", addr.clone());
    }
    let url = scrape_url(&lb.labels(), sc);
    let labels = Labels::from_pairs(
        lb.iter()
            .filter(|(n, _)| !n.starts_with("__"))
            .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    let id = target_id(&labels, &url);
    Ok(Ok(ScrapeTarget {
        id,
        job: sc.job_name.clone(),
        url,
        labels,
        discovered,
        interval,
        timeout,
        forced_error: None,
    }))
}

fn label_duration(v: Option<&str>, default: Duration, what: &str) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|e| format!("error parsing scrape {what}: {e}")),
    }
}

/// Returns the address with the scheme's default port when Prometheus 2.42
/// adds one: when Go's `net.SplitHostPort` cannot split it but could once a
/// port is appended (so `host` and `[::1]` get one; `a:1`, `a:` and a bare
/// IPv6 address such as `fd00::1` are left as they are).
fn with_default_port(addr: &str, scheme: &str) -> Result<Option<String>, String> {
    if split_host_port(addr) || !split_host_port(&format!("{addr}:1234")) {
        return Ok(None);
    }
    let port = match scheme {
        "http" | "" => 80,
        "https" => 443,
        other => return Err(format!("invalid scheme: {other:?}")),
    };
    Ok(Some(format!("{addr}:{port}")))
}

/// Whether Go's `net.SplitHostPort` accepts `s`.
fn split_host_port(s: &str) -> bool {
    let Some(colon) = s.rfind(':') else {
        return false;
    };
    let host_end = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']').map(|e| e + 1) else {
            return false;
        };
        // The `]` must be right before the last colon.
        if end + 1 != colon {
            return false;
        }
        if s[1..].contains('[') || s[end + 1..].contains(']') {
            return false;
        }
        end
    } else {
        let host = &s[..colon];
        if host.contains(':') || host.contains('[') || host.contains(']') {
            return false;
        }
        colon
    };
    !s[host_end..].contains('[') && !s[host_end + 1..].contains(']')
}

/// Builds the scrape URL from `__scheme__`, `__address__`, `__metrics_path__`,
/// the job's params and `__param_<name>` labels (which override the first
/// value), as Prometheus's `Target.URL().String()` does: a missing label is
/// an empty part, escaped by Go's rules ([`go_url`]).
fn scrape_url(labels: &Labels, sc: &ScrapeConfig) -> String {
    let mut params: BTreeMap<String, Vec<String>> = sc.params.clone();
    for l in labels.iter() {
        if let Some(name) = l.name.strip_prefix("__param_") {
            let values = params.entry(name.to_string()).or_default();
            match values.first_mut() {
                Some(first) => *first = l.value.clone(),
                None => values.push(l.value.clone()),
            }
        }
    }
    go_url::url_string(
        labels.get("__scheme__").unwrap_or_default(),
        labels.get("__address__").unwrap_or_default(),
        labels.get("__metrics_path__").unwrap_or_default(),
        &go_url::encode_values(&params),
    )
}

/// Returns the stable id of a target: hex of xxh3 over its labels and URL.
pub fn target_id(labels: &Labels, url: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(url.as_bytes(), labels.stable_hash());
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrapegrid_common::config::load_str;

    fn job(yaml_tail: &str) -> ScrapeConfig {
        let yaml = format!("scrape_configs:\n- job_name: j\n{yaml_tail}");
        load_str(&yaml, "t.yml").unwrap().scrape_configs.remove(0)
    }

    fn group(addrs: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            source: "0".into(),
            targets: addrs
                .iter()
                .map(|a| Labels::from_pairs([("__address__", *a)]))
                .collect(),
            labels: Labels::from_pairs(labels.iter().copied()),
        }
    }

    #[test]
    fn defaults_port_instance_and_url() {
        let sc = job("  params:\n    module: [a b, c]\n");
        let (active, dropped) = build(
            &sc,
            &[group(&["h", "h2:9"], &[("__meta_x", "1"), ("env", "p")])],
        );
        assert!(dropped.is_empty());
        assert_eq!(active.len(), 2);
        let t = active
            .iter()
            .find(|t| t.labels.get("instance") == Some("h:80"))
            .unwrap();
        assert_eq!(t.url, "http://h:80/metrics?module=a+b&module=c");
        assert_eq!(
            t.labels.to_string(),
            r#"{env="p", instance="h:80", job="j"}"#
        );
        assert_eq!(t.discovered.get("__meta_x"), Some("1"));
        assert_eq!(t.discovered.get("__address__"), Some("h"));
        assert_eq!(t.interval, Duration::from_secs(60));
    }

    #[test]
    fn relabeling_drops_rewrites_and_params_override() {
        let sc = job(concat!(
            "  relabel_configs:\n",
            "  - source_labels: [env]\n    regex: dev\n    action: drop\n",
            "  - target_label: __param_target\n    source_labels: [__address__]\n",
            "  - target_label: __address__\n    replacement: probe:9115\n",
            "  - target_label: __scrape_interval__\n    replacement: 30s\n",
        ));
        let (active, dropped) = build(
            &sc,
            &[
                group(&["a:1"], &[("env", "prod")]),
                group(&["b:1"], &[("env", "dev")]),
            ],
        );
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].error, None);
        assert_eq!(
            dropped[0].reason,
            "relabel_configs[0] (action: drop) dropped it"
        );
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].url, "http://probe:9115/metrics?target=a%3A1");
        assert_eq!(active[0].labels.get("instance"), Some("probe:9115"));
        assert_eq!(active[0].interval, Duration::from_secs(30));
    }

    #[test]
    fn invalid_targets_are_dropped_with_an_error() {
        let sc = job("  relabel_configs:\n  - regex: __address__\n    action: labeldrop\n");
        let (active, dropped) = build(&sc, &[group(&["a:1"], &[])]);
        assert!(active.is_empty());
        assert_eq!(dropped[0].error.as_deref(), Some("no address"));
        assert_eq!(dropped[0].reason, "no address");
        let sc = job("");
        let (_, dropped) = build(&sc, &[group(&["a:1/x"], &[])]);
        assert!(dropped[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not a valid hostname"));
    }

    #[test]
    fn ports_and_ids() {
        for (addr, with_port) in [
            ("a:1", None),
            ("a:", None),
            ("[::1]:9", None),
            ("[::1]", Some("[::1]:80")),
            ("a", Some("a:80")),
            ("fd00::1", None),
            ("[::1", None),
            ("a]b", None),
        ] {
            assert_eq!(
                with_default_port(addr, "http").unwrap().as_deref(),
                with_port,
                "{addr}"
            );
        }
        let l = Labels::from_pairs([("job", "j")]);
        assert_eq!(target_id(&l, "http://a"), target_id(&l, "http://a"));
        assert_ne!(target_id(&l, "http://a"), target_id(&l, "http://b"));
        assert_eq!(target_id(&l, "http://a").len(), 16);
    }
}
