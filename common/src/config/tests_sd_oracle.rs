//! `kubernetes_sd_configs` and `consul_sd_configs`: which configs load and
//! what the errors say.
//!
//! Debian's promtool is built without Kubernetes discovery, so the verdicts
//! in these tables were taken from promtool 2.42.0 built from
//! openshift/prometheus `release-4.13` (upstream 2.42.0 with its vendor
//! tree) outside the repository; `SCRAPEGRID_ORACLE_PROMTOOL=/path/to/promtool`
//! checks them against it again (`oracle_agrees_with_the_tables`).

use super::*;

const FILE: &str = "prometheus.yml";

fn job(sd: &str) -> String {
    format!("scrape_configs: [{{job_name: k, kubernetes_sd_configs: [{sd}]}}]")
}

fn consul_job(sd: &str) -> String {
    format!("scrape_configs: [{{job_name: c, consul_sd_configs: [{sd}]}}]")
}

/// Consul configs accepted by Prometheus 2.42 and by scrapegrid.
const CONSUL_ACCEPTED: &[&str] = &[
    "{}",
    "{server: '127.0.0.1:8500', services: [web, db], tags: [prod]}",
    "{server: 'consul:8501', scheme: https, tls_config: {insecure_skip_verify: true}, datacenter: dc2}",
    "{token: t, namespace: ns, partition: p, tag_separator: ';', allow_stale: false, refresh_interval: 10s}",
    "{username: u, password: p, node_meta: {rack: r1, zone: z}}",
    "{basic_auth: {username: u, password: p}}",
    "{bearer_token: t, proxy_url: 'http://proxy:3128/'}",
    "{authorization: {credentials: c}}",
    "{token: t, bearer_token: b}",
    "{oauth2: {client_id: a, client_secret_file: /s, token_url: 'http://t/'}}",
];

/// Consul configs both reject, and what scrapegrid's error must say.
const CONSUL_REJECTED: &[(&str, &str)] = &[
    ("{server: ''}", "consul SD configuration requires a server address"),
    ("{server: '  '}", "consul SD configuration requires a server address"),
    ("{username: u, basic_auth: {username: v}}", "at most one of consul SD configuration username and password and basic auth can be configured"),
    ("{password: p, basic_auth: {username: v}}", "at most one of consul SD configuration username and password and basic auth can be configured"),
    ("{token: t, authorization: {credentials: c}}", "at most one of consul SD token, authorization, or oauth2 can be configured"),
    ("{token: t, oauth2: {client_id: a, client_secret: s, token_url: 'http://t/'}}", "at most one of consul SD token, authorization, or oauth2 can be configured"),
    ("{role: x}", "role"),
    ("{username: u, bearer_token: t}", "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"),
    ("{services: web}", "web"),
    ("{tagz: [a]}", "tagz"),
    ("{refresh_interval: 1x}", "\"1x\""),
];

/// Accepted by Prometheus 2.42 and by scrapegrid.
const ACCEPTED: &[&str] = &[
    "{role: pod}",
    "{role: node, api_server: 'https://10.0.0.1:6443'}",
    "{role: service, api_server: 'http://127.0.0.1:8001/', namespaces: {names: [a, b]}}",
    "{role: endpoints, namespaces: {own_namespace: true}}",
    "{role: endpointslice, attach_metadata: {node: true}}",
    "{role: ingress, kubeconfig_file: kube.yml}",
    "{role: pod, api_server: 'https://k/', basic_auth: {username: u, password: p}}",
    "{role: pod, api_server: 'https://k/', bearer_token: t, tls_config: {insecure_skip_verify: true}}",
    "{role: pod, api_server: 'https://k/', authorization: {credentials: c}, proxy_url: 'http://p:3128/'}",
    "{role: pod, selectors: [{role: pod, label: 'app=web,tier!=db', field: 'spec.nodeName=n1'}]}",
    "{role: endpoints, selectors: [{role: pod, label: 'a'}, {role: service, label: '!b'}, {role: endpoints, field: 'metadata.name=x'}]}",
    "{role: endpointslice, selectors: [{role: endpointslice, label: 'x in (a, b)'}]}",
    "{role: node, selectors: [{role: node, label: 'kubernetes.io/os notin (windows)'}]}",
    "{role: pod, namespaces: {names: []}, selectors: []}",
    "{role: pod, attach_metadata: {node: false}}",
    "{role: pod, api_server: 'https://k/', oauth2: {client_id: a, client_secret: s, token_url: 'https://t/token', scopes: [x]}}",
];

/// Rejected by both, with what scrapegrid's error must say (the oracle's
/// words after the location).
const REJECTED: &[(&str, &str)] = &[
    ("{}", "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)"),
    ("{role: ''}", r#"unknown Kubernetes SD role """#),
    ("{role: pods}", r#"unknown Kubernetes SD role "pods""#),
    ("{role: Pod}", r#"unknown Kubernetes SD role "Pod""#),
    ("{role: pod, api_server: 'https://k/', kubeconfig_file: k.yml}", "cannot use 'kubeconfig_file' and 'api_server' simultaneously"),
    ("{role: pod, kubeconfig_file: k.yml, bearer_token: t}", "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"),
    ("{role: pod, bearer_token: t}", "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"),
    ("{role: pod, tls_config: {insecure_skip_verify: true}}", "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"),
    ("{role: pod, api_server: 'https://k/', namespaces: {own_namespace: true}}", "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"),
    ("{role: pod, kubeconfig_file: k.yml, namespaces: {own_namespace: true}}", "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously"),
    ("{role: pod, selectors: [{role: pod}, {role: pod}]}", "duplicated selector role: pod"),
    ("{role: pod, selectors: [{role: service}]}", "pod role supports only pod selectors"),
    ("{role: endpoints, selectors: [{role: node}]}", "endpoints role supports only pod, service, endpoints selectors"),
    ("{role: node, selectors: [{role: pod}]}", "node role supports only node selectors"),
    ("{role: pod, selectors: [{role: pod, label: 'a=b c'}]}", "found 'c', expected: ',' or 'end of string'"),
    ("{role: pod, selectors: [{role: pod, field: 'metadata.name'}]}", "invalid selector"),
    ("{role: pod, api_server: 'https://k/', bearer_token: t, bearer_token_file: f}", "at most one of bearer_token & bearer_token_file must be configured"),
    ("{role: pod, api_server: 'https://k/', basic_auth: {username: u}, authorization: {credentials: c}}", "at most one of basic_auth, oauth2 & authorization must be configured"),
    ("{role: pod, unknown_field: 1}", "unknown_field"),
    ("{role: pod, namespaces: {name: [a]}}", "name"),
];

#[test]
fn kubernetes_tables_accept_and_reject() {
    let mut failures = Vec::new();
    for sd in ACCEPTED {
        if let Err(e) = load_str(&job(sd), FILE) {
            failures.push(format!("{sd}\n rejected: {e}"));
        }
    }
    for (sd, want) in REJECTED {
        match load_str(&job(sd), FILE) {
            Ok(_) => failures.push(format!("{sd}\n accepted")),
            Err(e) => {
                let e = e.to_string();
                if !e.contains(want) || !e.contains("kubernetes_sd_configs[0]") {
                    failures.push(format!("{sd}\n got: {e}\nwant: {want}"));
                }
            }
        }
    }
    for sd in CONSUL_ACCEPTED {
        if let Err(e) = load_str(&consul_job(sd), FILE) {
            failures.push(format!("{sd}\n rejected: {e}"));
        }
    }
    for (sd, want) in CONSUL_REJECTED {
        match load_str(&consul_job(sd), FILE) {
            Ok(_) => failures.push(format!("{sd}\n accepted")),
            Err(e) => {
                let e = e.to_string();
                if !e.contains(want) || !e.contains("consul_sd_configs[0]") {
                    failures.push(format!("{sd}\n got: {e}\nwant: {want}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn consul_config_has_prometheus_defaults() {
    let config = load_str(&consul_job("{}"), FILE).unwrap();
    let c = &config.scrape_configs[0].consul_sd_configs[0];
    assert_eq!(c.server, "localhost:8500");
    assert_eq!(c.scheme, "http");
    assert_eq!(c.tag_separator, ",");
    assert!(c.allow_stale);
    assert_eq!(c.refresh_interval, std::time::Duration::from_secs(30));
    assert_eq!(c.auth, HttpAuth::None);
    let config = load_str(&consul_job("{username: u, password: p, token: t}"), FILE).unwrap();
    let c = &config.scrape_configs[0].consul_sd_configs[0];
    assert_eq!(
        c.auth,
        HttpAuth::Basic {
            username: "u".into(),
            password: "p".into()
        }
    );
    assert_eq!(c.token.0, "t");
    assert_eq!(format!("{:?}", c.token), "<secret>");
}

#[test]
fn kubernetes_config_is_read_into_its_parts() {
    let config = load_str(
        &job("{role: endpoints, api_server: 'https://k:6443/', bearer_token: t, follow_redirects: false, namespaces: {names: [a]}, selectors: [{role: pod, label: 'app=x', field: 'spec.nodeName=n'}], attach_metadata: {node: true}}"),
        FILE,
    )
    .unwrap();
    let sd = &config.scrape_configs[0].kubernetes_sd_configs[0];
    assert_eq!(sd.role, KubernetesRole::Endpoints);
    assert_eq!(sd.namespaces, vec!["a".to_string()]);
    assert!(sd.attach_node);
    assert_eq!(
        sd.selectors,
        vec![KubernetesSelector {
            role: KubernetesRole::Pod,
            label: "app=x".into(),
            field: "spec.nodeName=n".into()
        }]
    );
    match &sd.access {
        KubernetesAccess::ApiServer {
            url,
            auth,
            follow_redirects,
            ..
        } => {
            assert_eq!(url, "https://k:6443/");
            assert!(!follow_redirects);
            assert_eq!(
                *auth,
                HttpAuth::Authorization {
                    scheme: "Bearer".into(),
                    credentials: "t".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let config = load_file_text("{role: pod, kubeconfig_file: kube.yml}");
    let sd = &config.scrape_configs[0].kubernetes_sd_configs[0];
    assert_eq!(
        sd.access,
        KubernetesAccess::KubeConfig(std::path::PathBuf::from("/etc/prom/kube.yml"))
    );
    let config = load_str(&job("{role: pod}"), FILE).unwrap();
    assert_eq!(
        config.scrape_configs[0].kubernetes_sd_configs[0].access,
        KubernetesAccess::InCluster
    );
}

/// Loads a job as if from `/etc/prom/prometheus.yml`.
fn load_file_text(sd: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, job(sd)).unwrap();
    let mut config = load_file(&path).unwrap();
    // Point the kubeconfig at a stable directory for the comparison.
    for sc in &mut config.scrape_configs {
        for k in &mut sc.kubernetes_sd_configs {
            if let KubernetesAccess::KubeConfig(p) = &mut k.access {
                *p = std::path::Path::new("/etc/prom").join(p.strip_prefix(dir.path()).unwrap());
            }
        }
    }
    config
}

/// With `SCRAPEGRID_ORACLE_PROMTOOL` set, checks every row against a
/// promtool with Kubernetes discovery (see the module comment); without it,
/// checks that the tables are the ones recorded (a row added without a
/// verdict from the oracle fails here).
#[test]
fn oracle_agrees_with_the_tables() {
    const RECORDED_ROWS: usize = 16 + 20 + 10 + 11;
    assert_eq!(
        ACCEPTED.len() + REJECTED.len() + CONSUL_ACCEPTED.len() + CONSUL_REJECTED.len(),
        RECORDED_ROWS,
        "the tables changed: run this test with SCRAPEGRID_ORACLE_PROMTOOL set, then update RECORDED_ROWS"
    );
    let Ok(promtool) = std::env::var("SCRAPEGRID_ORACLE_PROMTOOL") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prometheus.yml");
    let check = |yaml: String| {
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new(&promtool)
            .args(["check", "config", "--syntax-only"])
            .arg(&path)
            .output()
            .expect("the oracle promtool runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
        )
    };
    let mut disagreements = Vec::new();
    let accepted = ACCEPTED.iter().map(|sd| job(sd));
    let rejected = REJECTED.iter().map(|(sd, want)| (job(sd), want));
    let consul_accepted = CONSUL_ACCEPTED.iter().map(|sd| consul_job(sd));
    let consul_rejected = CONSUL_REJECTED
        .iter()
        .map(|(sd, want)| (consul_job(sd), want));
    for sd in accepted.chain(consul_accepted) {
        let (ok, text) = check(sd.clone());
        if !ok {
            disagreements.push(format!("oracle rejects {sd}: {text}"));
        }
    }
    for (sd, want) in rejected.chain(consul_rejected) {
        let (ok, text) = check(sd.clone());
        if ok {
            disagreements.push(format!("oracle accepts {sd}"));
        } else if !text.contains(want) {
            disagreements.push(format!("oracle says for {sd}: {text}\n(table: {want})"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
