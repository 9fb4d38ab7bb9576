//! A job's `http_config` (TLS and credentials) against real Prometheus 2.42:
//! both scrape the same loopback targets (HTTPS with a trusted, untrusted,
//! expired or misnamed certificate, one requiring a client certificate,
//! plain HTTP ones requiring basic auth or a token) with the same
//! `prometheus.yml`, and every job must come out with the same health and
//! the same class of error. Then a rotated token file is picked up without
//! a reload, and no inline secret shows in any log or API answer.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::tls_targets::{Pki, SecureTarget, TargetTls};
use scrapegrid_tests::{eventually, Cluster};

const PASSWORD: &str = "pa55word-xyz";
/// `Basic base64("user:pa55word-xyz")`.
const BASIC: &str = "Basic dXNlcjpwYTU1d29yZC14eXo=";
const TOKEN: &str = "t0ken-s3cret";

/// The class of a target's last error, the part both systems must agree on.
fn class(error: &str) -> String {
    let classes = [
        ("unknown authority", "unknown-ca"),
        ("doesn't contain any IP SANs", "no-ip-san"),
        ("certificate is valid for", "wrong-name"),
        ("expired or is not yet valid", "expired"),
        ("certificate required", "client-cert-required"),
        ("bad certificate", "client-cert-required"),
        // Before plain 401s: a token endpoint's refusal.
        ("oauth2: cannot fetch token: 401", "token-refused"),
        ("401 Unauthorized", "unauthorized"),
        ("303 See Other", "redirect-not-followed"),
        ("connection refused", "connection-refused"),
        (
            "unable to read basic auth password file",
            "unreadable-password-file",
        ),
    ];
    if error.is_empty() {
        return "ok".into();
    }
    classes
        .iter()
        .find(|(needle, _)| error.contains(needle))
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| error.to_string())
}

/// `(health, error class)` of each job's one target in a targets answer.
fn health(targets: &Value) -> BTreeMap<String, (String, String)> {
    targets["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let job = t["scrapePool"].as_str().unwrap_or_default().to_string();
            let health = t["health"].as_str().unwrap_or_default().to_string();
            let error = class(t["lastError"].as_str().unwrap_or_default());
            (job, (health, error))
        })
        .collect()
}

/// Waits until both Prometheus and the cluster have scraped every job of
/// `jobs`; returns each one's `(health, error class)` per job.
async fn settled(
    prometheus: &Prometheus,
    cluster: &Cluster,
    jobs: &[&str],
) -> Result<(
    BTreeMap<String, (String, String)>,
    BTreeMap<String, (String, String)>,
)> {
    let known = |h: &BTreeMap<String, (String, String)>| {
        jobs.iter()
            .all(|job| h.get(*job).is_some_and(|(health, _)| health != "unknown"))
    };
    eventually(Duration::from_secs(60), || async {
        let p = health(&prometheus.targets("active").await.ok()?);
        let s = health(&cluster.targets().await.ok()?);
        (known(&p) && known(&s)).then_some((p, s))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_credentials_as_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let file = |name: &str, content: &str| -> Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, content)?;
        Ok(path.display().to_string())
    };
    let password_file = file("password", &format!("{PASSWORD}\n"))?;
    let token_file = file("token", TOKEN)?;
    let rotated_file = file("rotated", "old-token")?;
    let missing_file = dir.path().join("missing").display().to_string();

    let tls = |cert: &str, require_client_cert| {
        Some(TargetTls {
            cert: cert.into(),
            require_client_cert,
        })
    };
    let server = SecureTarget::start(&pki, tls("server", false), None).await?;
    let localhost_only = SecureTarget::start(&pki, tls("localhost-only", false), None).await?;
    let expired = SecureTarget::start(&pki, tls("expired", false), None).await?;
    let untrusted = SecureTarget::start(&pki, tls("untrusted", false), None).await?;
    let mtls = SecureTarget::start(&pki, tls("server", true), None).await?;
    let basic = SecureTarget::start(&pki, None, Some(BASIC.into())).await?;
    let bearer = SecureTarget::start(&pki, None, Some(format!("Bearer {TOKEN}"))).await?;
    let custom = SecureTarget::start(&pki, None, Some("Token abc".into())).await?;
    // A target whose metrics path redirects (303) to the exposition.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect = listener.local_addr()?.to_string();
    let app = axum::Router::new()
        .route(
            "/old",
            axum::routing::get(|| async { axum::response::Redirect::to("/new") }),
        )
        .route(
            "/new",
            axum::routing::get(|| async {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    "redirected 1\n",
                )
            }),
        );
    let redirect_server = tokio::spawn(async move { axum::serve(listener, app).await });

    let ca = pki.pem("ca").display().to_string();
    let other_ca = pki.pem("other-ca").display().to_string();
    let (client_cert, client_key) = (
        pki.pem("client").display().to_string(),
        pki.key("client").display().to_string(),
    );
    // (job, target, settings): the settings are YAML lines of the job.
    let jobs: Vec<(&str, &str, String)> = vec![
        ("tls-right-ca", &server.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}}}")),
        ("tls-system-roots", &server.addr, "scheme: https".into()),
        ("tls-other-ca", &server.addr, format!("scheme: https\ntls_config: {{ca_file: {other_ca}}}")),
        ("tls-untrusted", &untrusted.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}}}")),
        ("tls-server-name", &localhost_only.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}, server_name: localhost}}")),
        ("tls-no-ip-san", &localhost_only.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}}}")),
        ("tls-wrong-server-name", &server.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}, server_name: other.example}}")),
        ("tls-expired", &expired.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}}}")),
        ("tls-insecure", &untrusted.addr, "scheme: https\ntls_config: {insecure_skip_verify: true}".into()),
        ("mtls-without-cert", &mtls.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}}}")),
        ("mtls-with-cert", &mtls.addr, format!("scheme: https\ntls_config: {{ca_file: {ca}, cert_file: {client_cert}, key_file: {client_key}}}")),
        ("basic-password-file", &basic.addr, format!("basic_auth: {{username: user, password_file: {password_file}}}")),
        ("basic-inline", &basic.addr, format!("basic_auth: {{username: user, password: {PASSWORD}}}")),
        ("basic-wrong", &basic.addr, "basic_auth: {username: user, password: nope}".into()),
        ("basic-missing-file", &basic.addr, format!("basic_auth: {{username: user, password_file: {missing_file}}}")),
        ("bearer-file", &bearer.addr, format!("bearer_token_file: {token_file}")),
        ("bearer-inline-wrong", &bearer.addr, "bearer_token: nope".into()),
        ("authorization-file", &bearer.addr, format!("authorization: {{credentials_file: {token_file}}}")),
        ("authorization-type", &custom.addr, "authorization: {type: Token, credentials: abc}".into()),
        ("bearer-rotated", &bearer.addr, format!("bearer_token_file: {rotated_file}")),
        ("redirect-followed", &redirect, "metrics_path: /old".into()),
        ("redirect-not-followed", &redirect, "metrics_path: /old\nfollow_redirects: false".into()),
    ];
    let mut yaml =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, target, settings) in &jobs {
        yaml.push_str(&format!("  - job_name: {job}\n"));
        for line in settings.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
        yaml.push_str(&format!(
            "    static_configs: [{{targets: ['{target}']}}]\n"
        ));
    }
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let prometheus = Prometheus::start(&config).await?;
    let cluster = Cluster::builder().config(&yaml).build().await?;

    let names: Vec<&str> = jobs.iter().map(|(job, _, _)| *job).collect();
    let (want, got) = settled(&prometheus, &cluster, &names).await?;
    let mut differences = Vec::new();
    for (job, _, _) in &jobs {
        let (p, s) = (&want[*job], &got[*job]);
        println!("{job:24} prometheus {p:?}  scrapegrid {s:?}");
        if p != s {
            differences.push(format!("{job}: prometheus {p:?}, scrapegrid {s:?}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // The cases are not all alike: each class shows up.
    let classes: std::collections::BTreeSet<&str> = got.values().map(|(_, c)| c.as_str()).collect();
    for c in [
        "ok",
        "unknown-ca",
        "no-ip-san",
        "wrong-name",
        "expired",
        "client-cert-required",
        "unauthorized",
    ] {
        assert!(classes.contains(c), "no job ended in {c}: {classes:?}");
    }

    // A rotated token file is read at the next scrape, by both.
    std::fs::write(dir.path().join("rotated"), TOKEN)?;
    eventually(Duration::from_secs(20), || async {
        let p = health(&prometheus.targets("active").await.ok()?);
        let s = health(&cluster.targets().await.ok()?);
        let up = |h: &BTreeMap<String, (String, String)>| {
            h.get("bearer-rotated")
                .is_some_and(|(health, _)| health == "up")
        };
        (up(&p) && up(&s)).then_some(())
    })
    .await
    .context("the rotated token is used without a reload")?;

    // No inline secret in an API answer or a log line.
    let answer = cluster.targets().await?.to_string();
    assert!(
        !answer.contains(PASSWORD),
        "the targets API shows a password"
    );
    for entry in std::fs::read_dir(cluster.dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let log = std::fs::read_to_string(&path)?;
            assert!(
                !log.contains(PASSWORD),
                "{} holds the password",
                path.display()
            );
            assert!(!log.contains(TOKEN), "{} holds the token", path.display());
        }
    }
    assert!(server.served() > 0 && mtls.served() > 0 && basic.served() > 0);
    redirect_server.abort();
    drop(prometheus);
    Ok(())
}

/// `http_sd_configs` with a `tls_config`, against real Prometheus 2.42: an
/// HTTPS SD endpoint read with the right CA, the wrong one, and without
/// verification; both must discover the same targets per job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_over_tls_as_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let groups = r#"[{"targets": ["127.0.0.1:9", "127.0.0.1:10"], "labels": {"team": "a"}}]"#;
    let tls = Some(TargetTls {
        cert: "server".into(),
        require_client_cert: false,
    });
    let sd = SecureTarget::serving(&pki, tls, None, groups, "application/json").await?;
    let ca = pki.pem("ca").display().to_string();
    let other_ca = pki.pem("other-ca").display().to_string();
    let url = format!("https://{}/sd", sd.addr);
    let jobs = [
        ("sd-right-ca", format!("{{ca_file: {ca}}}")),
        ("sd-other-ca", format!("{{ca_file: {other_ca}}}")),
        ("sd-insecure", "{insecure_skip_verify: true}".to_string()),
    ];
    let mut yaml =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, tls) in &jobs {
        yaml.push_str(&format!(
            "  - job_name: {job}\n    http_sd_configs:\n      - url: {url}\n        refresh_interval: 1s\n        tls_config: {tls}\n"
        ));
    }
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let prometheus = Prometheus::start(&config).await?;
    let cluster = Cluster::builder().config(&yaml).build().await?;
    let instances = |targets: &Value| -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in targets["activeTargets"].as_array().into_iter().flatten() {
            let job = t["scrapePool"].as_str().unwrap_or_default().to_string();
            let instance = t["labels"]["instance"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let team = t["labels"]["team"].as_str().unwrap_or_default();
            out.entry(job)
                .or_default()
                .push(format!("{instance} team={team}"));
        }
        out.values_mut().for_each(|v| v.sort());
        out
    };
    // Both have read the endpoint (the jobs that can) and settled.
    let (want, got) = eventually(Duration::from_secs(30), || async {
        let p = instances(&prometheus.targets("active").await.ok()?);
        let s = instances(&cluster.targets().await.ok()?);
        let ready = |m: &BTreeMap<String, Vec<String>>| {
            m.get("sd-right-ca").is_some_and(|v| v.len() == 2)
                && m.get("sd-insecure").is_some_and(|v| v.len() == 2)
        };
        (ready(&p) && ready(&s)).then_some((p, s))
    })
    .await?;
    println!("prometheus {want:?}\nscrapegrid {got:?}");
    assert_eq!(want, got);
    assert!(
        !got.contains_key("sd-other-ca"),
        "an untrusted endpoint gives no targets"
    );
    assert!(sd.served() > 0);
    drop(prometheus);
    Ok(())
}

/// `proxy_url` against real Prometheus 2.42: a job scraped through a
/// loopback forward proxy is up for both and the proxy saw both; a job whose
/// proxy is down is down for both with the same error class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_through_proxy_url_as_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = scrapegrid_tests::TargetServer::start("proxied_metric 1\n").await?;
    let proxy = scrapegrid_tests::proxy::Proxy::start().await?;
    let closed = scrapegrid_tests::free_addr();
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
         \x20 - job_name: proxied\n    proxy_url: http://{}\n    static_configs: [{{targets: ['{}']}}]\n\
         \x20 - job_name: proxy-down\n    proxy_url: http://{closed}\n    static_configs: [{{targets: ['{}']}}]\n",
        proxy.addr, target.addr, target.addr
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let prometheus = Prometheus::start(&config).await?;
    let cluster = Cluster::builder().config(&yaml).build().await?;
    let (want, got) = settled(&prometheus, &cluster, &["proxied", "proxy-down"]).await?;
    println!("prometheus {want:?}\nscrapegrid {got:?}");
    assert_eq!(want, got);
    assert_eq!(got["proxied"], ("up".to_string(), "ok".to_string()));
    let agents = proxy.user_agents();
    assert!(
        agents.iter().any(|a| a.starts_with("Prometheus/")),
        "{agents:?}"
    );
    assert!(
        agents.iter().any(|a| a.starts_with("scrapegrid/")),
        "{agents:?}"
    );
    drop(prometheus);
    Ok(())
}

/// `oauth2` (client credentials) against real Prometheus 2.42: a loopback
/// token endpoint that checks the client's Basic header and the grant, and
/// a target that wants the token it hands out; the right secret (inline or
/// by file) scrapes, a wrong one fails to fetch a token, for both alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_client_credentials_as_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let target = SecureTarget::start(&pki, None, Some("Bearer tok-123".into())).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let token_addr = listener.local_addr()?.to_string();
    let grants = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = grants.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let counter = counter.clone();
            async move {
                let basic = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                // `client:s3cret`.
                let ok = basic == "Basic Y2xpZW50OnMzY3JldA=="
                    && body.contains("grant_type=client_credentials")
                    && body.contains("scope=read");
                // RFC 6749 2.3.1: the credentials in a Basic header, or
                // in the body (golang.org/x/oauth2 tries both).
                let in_body = body.contains("client_id=client")
                    && body.contains("client_secret=s3cret")
                    && body.contains("grant_type=client_credentials")
                    && body.contains("scope=read");
                let json = [("content-type", "application/json")];
                if !ok && !in_body {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        json,
                        "{\"error\":\"invalid_client\"}".to_string(),
                    );
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (
                    axum::http::StatusCode::OK,
                    json,
                    r#"{"access_token":"tok-123","token_type":"bearer","expires_in":3600}"#
                        .to_string(),
                )
            }
        }),
    );
    let token_server = tokio::spawn(async move { axum::serve(listener, app).await });
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, "s3cret\n")?;
    let token_url = format!("http://{token_addr}/token");
    let jobs = [
        ("oauth2-inline", format!("{{client_id: client, client_secret: s3cret, scopes: [read], token_url: '{token_url}'}}")),
        ("oauth2-file", format!("{{client_id: client, client_secret_file: {}, scopes: [read], token_url: '{token_url}'}}", secret_file.display())),
        ("oauth2-wrong", format!("{{client_id: client, client_secret: nope, scopes: [read], token_url: '{token_url}'}}")),
    ];
    let mut yaml =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, oauth2) in &jobs {
        yaml.push_str(&format!(
            "  - job_name: {job}\n    oauth2: {oauth2}\n    static_configs: [{{targets: ['{}']}}]\n",
            target.addr
        ));
    }
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;
    let prometheus = Prometheus::start(&config).await?;
    let cluster = Cluster::builder().config(&yaml).build().await?;
    let names: Vec<&str> = jobs.iter().map(|(j, _)| *j).collect();
    let (want, got) = settled(&prometheus, &cluster, &names).await?;
    println!("prometheus {want:?}\nscrapegrid {got:?}");
    assert_eq!(want, got);
    assert_eq!(got["oauth2-inline"], ("up".to_string(), "ok".to_string()));
    assert_eq!(got["oauth2-wrong"].1, "token-refused");
    // Tokens are kept: far fewer grants than scrapes.
    assert!(target.served() > grants.load(std::sync::atomic::Ordering::Relaxed));
    token_server.abort();
    drop(prometheus);
    Ok(())
}
