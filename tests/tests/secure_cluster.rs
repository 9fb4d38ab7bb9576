//! A cluster no stranger can join: the components speak mutual TLS and
//! present tokens, with real processes and certificates made by `openssl`.
//! Trusted scrapers join and their samples are stored; a scraper without a
//! trusted certificate, or with a wrong join token, never becomes a member;
//! a writer without the write token and a reader without the read token are
//! refused by the storage node (gRPC and HTTP); and no token shows in any
//! log.

use std::time::Duration;

use anyhow::{Context, Result};
use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::ingest_client::IngestClient;
use tokio_stream::wrappers::ReceiverStream;

use scrapegrid_tests::tls_targets::Pki;
use scrapegrid_tests::{consistently, eventually, start_storage_with, Cluster, TargetServer};

const JOIN_TOKEN: &str = "j0in-t0ken-secret";
const WRITE_TOKEN: &str = "wr1te-t0ken-secret";
const READ_TOKEN: &str = "re4d-t0ken-secret";

/// The live members the control plane counts (`scrapegrid_control_members`).
async fn members(cluster: &Cluster) -> Option<f64> {
    let url = format!("http://{}/metrics", cluster.control_http);
    let text = cluster.http.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("scrapegrid_control_members "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_trusted_scrapers_join_and_write() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let file = |name: &str, content: &str| -> Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, content)?;
        Ok(path.display().to_string())
    };
    let join = file("join-token", JOIN_TOKEN)?;
    let write = file("write-token", WRITE_TOKEN)?;
    let read = file("read-token", READ_TOKEN)?;
    let wrong = file("wrong-token", "not-the-token")?;
    let p = |name: &str| pki.pem(name).display().to_string();
    let k = |name: &str| pki.key(name).display().to_string();
    let (ca, server_cert, server_key) = (p("ca"), p("server"), k("server"));
    let (client_cert, client_key) = (p("client"), k("client"));
    let server_tls = [
        "--grpc-tls-cert",
        &server_cert,
        "--grpc-tls-key",
        &server_key,
        "--grpc-client-ca",
        &ca,
    ];
    let storage: Vec<&str> = server_tls
        .iter()
        .copied()
        .chain(["--write-token-file", &write])
        .collect();
    let control: Vec<&str> = server_tls
        .iter()
        .copied()
        .chain(["--join-token-file", &join, "--read-token-file", &read])
        .collect();
    let scraper = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &client_cert,
        "--tls-key",
        &client_key,
        "--join-token-file",
        &join,
        "--write-token-file",
        &write,
    ];

    let target = TargetServer::start("# TYPE secure_metric gauge\nsecure_metric 7\n").await?;
    let yaml = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: secure\n    static_configs: [{{targets: ['{}']}}]\n",
        target.addr
    );
    let mut cluster = Cluster::builder()
        .config(&yaml)
        .grpc_tls()
        .extra_args(&storage, &control, &scraper)
        .build()
        .await?;

    // The trusted scraper joins, scrapes and writes over mutual TLS.
    let stored = eventually(Duration::from_secs(30), || async {
        let r = cluster.query("secure_metric").await.ok()?;
        (!r.is_empty()).then_some(r)
    })
    .await
    .context("samples of the trusted scraper are stored")?;
    assert_eq!(stored[0]["value"][1], "7");
    assert_eq!(members(&cluster).await, Some(1.0));
    // The control plane's API needs the read token; /metrics stays open.
    let targets = format!("http://{}/api/v1/targets", cluster.control_http);
    let code = |token: Option<&str>| {
        let mut request = cluster.http.get(&targets);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { anyhow::Ok(request.send().await?.status().as_u16()) }
    };
    assert_eq!(code(None).await?, 401);
    assert_eq!(code(Some(JOIN_TOKEN)).await?, 401);
    assert_eq!(code(Some(READ_TOKEN)).await?, 200);

    // Strangers: no client certificate; a certificate from another CA; the
    // right certificate with a wrong join token.
    let own = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (other_cert, other_key) = (p("untrusted"), k("untrusted"));
    cluster
        .add_scraper_with(
            "no-cert",
            &own(&["--tls-ca", &ca, "--join-token-file", &join]),
        )
        .await?;
    cluster
        .add_scraper_with(
            "other-ca",
            &own(&[
                "--tls-ca",
                &ca,
                "--tls-cert",
                &other_cert,
                "--tls-key",
                &other_key,
                "--join-token-file",
                &join,
            ]),
        )
        .await?;
    cluster
        .add_scraper_with(
            "wrong-token",
            &own(&[
                "--tls-ca",
                &ca,
                "--tls-cert",
                &client_cert,
                "--tls-key",
                &client_key,
                "--join-token-file",
                &wrong,
            ]),
        )
        .await?;
    consistently(
        Duration::from_secs(3),
        "only the trusted scraper is a member",
        || async { members(&cluster).await == Some(1.0) },
    )
    .await?;
    let log = |id: &str| {
        std::fs::read_to_string(cluster.dir.path().join(format!("{id}.log"))).unwrap_or_default()
    };
    assert!(
        log("wrong-token").contains("invalid token"),
        "{}",
        log("wrong-token")
    );
    for id in ["no-cert", "other-ca"] {
        assert!(
            log(id).contains("control plane session failed"),
            "{id}: {}",
            log(id)
        );
    }

    // A writer without the write token is refused; with it, welcomed (a
    // storage node with the token but without TLS, so a plain client can
    // try).
    let plain_dir = tempfile::tempdir()?;
    let plain = start_storage_with(
        plain_dir.path(),
        "storage-token",
        &["--write-token-file", &write, "--read-token-file", &read],
    )
    .await?;
    let write_stream = |token: Option<&str>| {
        let url = format!("http://{}", plain.grpc);
        let token = token.map(str::to_string);
        async move {
            let mut client = IngestClient::connect(url).await?;
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tx.send(pb::WriteRequest {
                msg: Some(pb::write_request::Msg::Hello(pb::WriteHello {
                    scraper_id: "writer".into(),
                    incarnation: 0,
                })),
            })
            .await?;
            let mut request = tonic::Request::new(ReceiverStream::new(rx));
            if let Some(t) = token {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {t}").parse()?);
            }
            let answer = client.write(request).await;
            drop(tx);
            anyhow::Ok(answer.map(|_| ()))
        }
    };
    let refused = write_stream(None)
        .await?
        .expect_err("a writer without a token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    let refused = write_stream(Some("nope"))
        .await?
        .expect_err("a wrong token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    write_stream(Some(WRITE_TOKEN))
        .await?
        .expect("the write token is accepted");

    // Reads over HTTP need the read token, remote writes the write token;
    // health and metrics stay open.
    let http = reqwest::Client::new();
    let status = |path: &str, token: Option<&str>, post: bool| {
        let url = format!("http://{}{path}", plain.http);
        let mut request = if post { http.post(url) } else { http.get(url) };
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { anyhow::Ok(request.send().await?.status().as_u16()) }
    };
    assert_eq!(status("/api/v1/query?query=up", None, false).await?, 401);
    assert_eq!(
        status("/api/v1/query?query=up", Some(WRITE_TOKEN), false).await?,
        401
    );
    assert_eq!(
        status("/api/v1/query?query=up", Some(READ_TOKEN), false).await?,
        200
    );
    assert_eq!(status("/api/v1/labels", None, false).await?, 401);
    assert_eq!(status("/api/v1/read", None, true).await?, 401);
    assert_eq!(status("/api/v1/write", None, true).await?, 401);
    assert_eq!(status("/api/v1/write", Some(READ_TOKEN), true).await?, 401);
    // Past the token check, an empty body is the handler's 400.
    assert_eq!(status("/api/v1/write", Some(WRITE_TOKEN), true).await?, 400);
    assert_eq!(status("/-/healthy", None, false).await?, 200);
    assert_eq!(status("/metrics", None, false).await?, 200);
    // And the gRPC Query service.
    let select = |token: Option<&str>| {
        let url = format!("http://{}", plain.grpc);
        let token = token.map(str::to_string);
        async move {
            let mut client = scrapegrid_proto::v1::query_client::QueryClient::connect(url).await?;
            let mut request = tonic::Request::new(pb::SelectRequest {
                matchers: vec![pb::Matcher {
                    r#type: pb::MatchType::Equal as i32,
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                start_ms: 0,
                end_ms: 1,
            });
            if let Some(t) = token {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {t}").parse()?);
            }
            anyhow::Ok(client.select(request).await.map(|_| ()))
        }
    };
    let refused = select(None)
        .await?
        .expect_err("a reader without a token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    select(Some(READ_TOKEN))
        .await?
        .expect("the read token is accepted");

    // No token in any log line.
    for entry in std::fs::read_dir(cluster.dir.path())?.chain(std::fs::read_dir(plain_dir.path())?)
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path)?;
            for token in [JOIN_TOKEN, WRITE_TOKEN, READ_TOKEN] {
                assert!(!text.contains(token), "{} holds a token", path.display());
            }
        }
    }
    Ok(())
}

/// The HTTP listener over TLS and mutual TLS (the storage node's; the
/// control plane and scrapers share the server code): an HTTPS client that
/// trusts the CA is answered, a plain HTTP client is not, and with a
/// client CA only a client with a certificate from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_listeners_speak_tls_and_mutual_tls() -> Result<()> {
    use scrapegrid_tests::{bin, Process, ANY_PORT};
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let p = |name: &str| pki.pem(name).display().to_string();
    let k = |name: &str| pki.key(name).display().to_string();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.pem("ca"))?)?;
    let identity = reqwest::Identity::from_pem(
        &[
            std::fs::read(pki.pem("client"))?,
            std::fs::read(pki.key("client"))?,
        ]
        .concat(),
    )?;
    // Every request has a deadline: a listener that stalls a handshake
    // fails the test with the node's log instead of hanging it.
    let client = |with_identity: bool| -> Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .add_root_certificate(ca.clone());
        if with_identity {
            b = b.identity(identity.clone());
        }
        Ok(b.build()?)
    };
    for mutual in [false, true] {
        let data = dir.path().join(format!("data-{mutual}"));
        let mut args: Vec<String> = [
            "--data-dir",
            &data.display().to_string(),
            "--grpc-addr",
            ANY_PORT,
            "--http-addr",
            ANY_PORT,
            "--http-tls-cert",
            &p("server"),
            "--http-tls-key",
            &k("server"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if mutual {
            args.extend(["--http-client-ca".to_string(), p("ca")]);
        }
        let mut node = Process::spawn(
            &format!("storage-{mutual}"),
            &bin("storage-node"),
            &args,
            dir.path(),
        )?;
        let http = node.listening("http").await?;
        let healthy = format!("https://{http}/-/healthy");
        let status = eventually(Duration::from_secs(20), || async {
            let r = client(mutual).ok()?.get(&healthy).send().await.ok()?;
            Some(r.status().as_u16())
        })
        .await?;
        assert_eq!(status, 200, "mutual: {mutual}");
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .get(format!("http://{http}/-/healthy"))
            .send()
            .await;
        assert!(
            plain.as_ref().is_err_and(|e| !e.is_timeout()),
            "plain HTTP is refused at once: {plain:?}"
        );
        if mutual {
            let anonymous = client(false)?.get(&healthy).send().await;
            assert!(
                anonymous.as_ref().is_err_and(|e| !e.is_timeout()),
                "a client without a certificate is refused at once: {anonymous:?}"
            );
        }
    }
    Ok(())
}
