//! `consul_sd_configs` against Prometheus 2.42's consul discovery: every
//! service (through the catalog), a list of services (watched directly),
//! tags, services with tags, `node_meta`, a configured `datacenter`, a
//! `tag_separator` and a `token`, over a fake Consul agent
//! ([`scrapegrid_tests::consul_api`]) holding a wide set of service
//! instances (`tests/data/consul_sd/instances.json`), then after a set of
//! changes (`events.json`). Each job's discovered label sets, active and
//! dropped, must be exactly Prometheus's, and the agent's requests must
//! carry the token, `stale`, `wait`, blocking indexes, `node-meta`, `dc`
//! and `tag` where Prometheus sends them.
//!
//! Debian's Prometheus is built without consul discovery, so its answers
//! come from a separately built 2.42, the oracle: with
//! `SCRAPEGRID_CONSUL_ORACLE=/path/to/prometheus` the test runs it first
//! and records them in `tests/data/consul_sd/expected.json`; every run
//! compares scrapegrid's control plane with that file. A missing file fails
//! the test (README.md in that directory says how to record it); it is
//! never skipped. The recording, the comparison and the diff are
//! [`scrapegrid_tests::sd_oracle`]'s, as for the kubernetes test.

use std::time::Duration;

use anyhow::Result;

use scrapegrid_tests::consul_api::ConsulApi;
use scrapegrid_tests::sd_oracle::{SdComparison, SdJob};
use scrapegrid_tests::Cluster;

/// Names the Prometheus 2.42 binary that records `expected.json`.
const ORACLE_ENV: &str = "SCRAPEGRID_CONSUL_ORACLE";

/// How long scrapegrid may take to reach each answer: every watcher waits
/// `refresh_interval` (1 s) after each answer, and a change ends the
/// blocking queries at once (the fake raises its index).
const CONVERGE_DEADLINE: Duration = Duration::from_secs(30);

/// The scrape jobs: each job's consul SD entry besides `server` and
/// `refresh_interval`.
const JOBS: &[SdJob] = &[
    SdJob {
        name: "consul-all",
        sd: "",
        relabel: "",
    },
    SdJob {
        name: "consul-services",
        sd: "services: [web]",
        relabel: "",
    },
    SdJob {
        name: "consul-tags",
        sd: "tags: [prod]",
        relabel: "",
    },
    SdJob {
        name: "consul-services-and-tags",
        sd: "services: [web]\ntags: [canary]",
        relabel: "",
    },
    SdJob {
        name: "consul-node-meta",
        sd: "node_meta:\n  rack: r1",
        relabel: "",
    },
    SdJob {
        name: "consul-datacenter",
        sd: "datacenter: dc2",
        relabel: "",
    },
    SdJob {
        name: "consul-tag-separator",
        sd: "tag_separator: ';'",
        relabel: "",
    },
    SdJob {
        name: "consul-token",
        sd: "services: [db, api]\ntoken: sekret",
        relabel: "",
    },
    SdJob {
        name: "consul-drop-critical",
        sd: "",
        relabel: DROP_CRITICAL,
    },
];

/// Every job's last rule. Prometheus keys its active targets by their
/// final labels and keeps the last discovered labels of targets that
/// collide; instances on one node share `__meta_consul_address` and the
/// node's labels, so this rule puts every `__meta_consul_*` label,
/// `service_id` included, into the final labels.
const UNIQUE_TARGETS: &str = "- action: labelmap\n  regex: __meta_consul_(.+)";

/// Gives a job dropped targets too.
const DROP_CRITICAL: &str =
    "- source_labels: [__meta_consul_health]\n  regex: critical\n  action: drop";

/// This test's comparison: its jobs, data and oracle.
fn comparison() -> SdComparison {
    SdComparison {
        discovery: "consul",
        name: "consul_sd",
        oracle_env: ORACLE_ENV,
        jobs: JOBS,
        labelmap_rule: UNIQUE_TARGETS,
        converge_deadline: CONVERGE_DEADLINE,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_sd_as_prometheus() -> Result<()> {
    let sd = comparison();
    let consul = ConsulApi::start().await?;
    consul.load(&sd.data("instances.json"))?;
    let dir = tempfile::tempdir()?;
    let server = consul.addr.to_string();
    let yaml = sd.prometheus_yml(&format!("server: '{server}'\nrefresh_interval: 1s"));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let mut placeholders = vec![
        (server, "{server}"),
        (dir.path().display().to_string(), "{dir}"),
    ];
    if let Some(oracle) = sd.oracle() {
        sd.record(
            &oracle,
            &config,
            &placeholders,
            || consul.apply_file(&sd.data("events.json")),
            || check_requests(&consul.requests(), "Prometheus"),
        )
        .await?;
        // The same agent (its port is in the config), as it started.
        consul.load(&sd.data("instances.json"))?;
    }
    let expected = sd.read_expected()?;

    // The oracle's requests stay in the log (the fake cannot clear it);
    // scrapegrid's are the ones after them.
    let seen = consul.requests().len();
    let cluster = Cluster::builder().config(&yaml).build().await?;
    placeholders.push((cluster.dir.path().display().to_string(), "{dir}"));
    sd.converge(&cluster, &expected["initial"], &placeholders, "initial")
        .await;
    consul.apply_file(&sd.data("events.json"))?;
    sd.converge(
        &cluster,
        &expected["after_events"],
        &placeholders,
        "after_events",
    )
    .await;
    check_requests(&consul.requests()[seen..], "scrapegrid");
    Ok(())
}

const AGENT_SELF: &str = "/v1/agent/self";
const CATALOG: &str = "/v1/catalog/services";
const HEALTH_WEB: &str = "/v1/health/service/web";

/// Checks what a client asked the agent for: every catalog and health
/// query is a stale read with a `wait`, and later ones block on an index;
/// only the token job sends the token, to the agent and its own two
/// services (watched without the catalog); every `node-meta` is
/// `rack:r1`, on the catalog and the services; `dc` is only ever `dc2`,
/// and the job that sets it never asks the agent for its datacenter;
/// `tag=canary` goes only to `web`, and no tag goes to the catalog.
fn check_requests(requests: &[String], who: &str) {
    let requests: Vec<Request> = requests.iter().map(|r| Request::parse(r)).collect();
    let queries: Vec<&Request> = requests
        .iter()
        .filter(|r| r.path == CATALOG || r.path.starts_with("/v1/health/service/"))
        .collect();
    for r in &queries {
        assert!(
            r.param("stale").is_some() && r.param("wait").is_some(),
            "{who} queried without stale or wait: {}",
            r.logged
        );
    }
    for path in [CATALOG, HEALTH_WEB] {
        assert!(
            queries
                .iter()
                .any(|r| r.path == path && r.param("index").is_some_and(|i| i != "0")),
            "{who} made no blocking query (with an index) of {path}: {:#?}",
            logged(&queries)
        );
    }
    assert!(
        requests.iter().any(|r| r.path == AGENT_SELF),
        "{who} never asked the agent for its datacenter"
    );

    let with_token: Vec<&Request> = requests.iter().filter(|r| r.token.is_some()).collect();
    let token_paths = [
        AGENT_SELF,
        "/v1/health/service/db",
        "/v1/health/service/api",
    ];
    for r in &with_token {
        assert!(
            r.token == Some("sekret") && token_paths.contains(&r.path),
            "{who}: only the token job sends a token, sekret, and only to the agent \
             and its services db and api: {}",
            r.logged
        );
    }
    for path in &token_paths[1..] {
        assert!(
            with_token.iter().any(|r| r.path == *path),
            "{who} never queried {path} with the token; requests with one: {:#?}",
            logged(&with_token)
        );
    }

    let with_meta: Vec<&Request> = requests
        .iter()
        .filter(|r| r.param("node-meta").is_some())
        .collect();
    for r in &with_meta {
        assert!(
            r.values("node-meta")
                .iter()
                .all(|v| v.replace("%3A", ":").replace("%3a", ":") == "rack:r1"),
            "{who} sent a node-meta other than rack:r1: {}",
            r.logged
        );
    }
    for path in [CATALOG, HEALTH_WEB] {
        assert!(
            with_meta.iter().any(|r| r.path == path),
            "{who} never queried {path} with node-meta=rack:r1; requests with a node-meta: {:#?}",
            logged(&with_meta)
        );
    }

    let with_dc: Vec<&Request> = requests
        .iter()
        .filter(|r| r.param("dc").is_some())
        .collect();
    for r in &with_dc {
        assert!(
            r.values("dc") == ["dc2"] && r.path != AGENT_SELF,
            "{who}: only the datacenter job sends dc, dc2, and it does not ask the agent: {}",
            r.logged
        );
    }
    assert!(
        with_dc.iter().any(|r| r.path == CATALOG),
        "{who} never read the catalog with dc=dc2"
    );

    for r in requests.iter().filter(|r| r.param("tag").is_some()) {
        let tags = r.values("tag");
        assert!(
            r.path.starts_with("/v1/health/service/")
                && (tags == ["prod"] || (tags == ["canary"] && r.path == HEALTH_WEB)),
            "{who}: tags go to health queries only, canary only to web: {}",
            r.logged
        );
    }
    for (tag, path) in [("canary", HEALTH_WEB), ("prod", "/v1/health/service/db")] {
        assert!(
            queries
                .iter()
                .any(|r| r.path == path && r.values("tag") == [tag]),
            "{who} never queried {path} with tag={tag}"
        );
    }
}

/// The requests as logged, for messages.
fn logged<'a>(requests: &[&Request<'a>]) -> Vec<&'a str> {
    requests.iter().map(|r| r.logged).collect()
}

/// One request as the fake agent logs it: `path?query`, then
/// ` token=<X-Consul-Token>` when one was sent.
struct Request<'a> {
    logged: &'a str,
    path: &'a str,
    /// The query's parameters as sent, not decoded.
    params: Vec<(&'a str, &'a str)>,
    token: Option<&'a str>,
}

impl<'a> Request<'a> {
    fn parse(logged: &'a str) -> Self {
        let (rest, token) = match logged.split_once(" token=") {
            Some((rest, token)) => (rest, Some(token)),
            None => (logged, None),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        Self {
            logged,
            path,
            params,
            token,
        }
    }

    /// The first value of a parameter (`""` for `stale` or `stale=`).
    fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }

    /// Every value of a parameter, in order.
    fn values(&self, name: &str) -> Vec<&'a str> {
        self.params
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .collect()
    }
}

#[test]
fn logged_requests_are_parsed() {
    let r = Request::parse("/v1/health/service/db?stale=&wait=120000ms&tag=a&tag=b token=t");
    assert_eq!(r.path, "/v1/health/service/db");
    assert_eq!(r.token, Some("t"));
    assert_eq!(r.param("stale"), Some(""));
    assert_eq!(r.param("wait"), Some("120000ms"));
    assert_eq!(r.values("tag"), ["a", "b"]);
    assert_eq!(r.param("index"), None);
    let r = Request::parse("/v1/agent/self");
    assert_eq!(
        (r.path, r.token, r.params.len()),
        ("/v1/agent/self", None, 0)
    );
}
