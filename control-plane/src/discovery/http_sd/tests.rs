//! http_sd tests: parsing, and the provider against a real axum server on
//! loopback whose answer the test changes between refreshes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;

use super::*;
use crate::discovery::test_support::{
    addresses, by_source, eventually, failures, local_metrics, next_update,
};
use scrapegrid_common::config::HttpAuth;

#[test]
fn content_types_as_prometheus_accepts_them() {
    for ok in [
        "application/json",
        " Application/JSON ",
        "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"",
    ] {
        assert!(is_json_content_type(ok), "{ok}");
    }
    for bad in [
        "",
        "text/plain",
        "application/jsonx",
        "application/json; charset=latin1",
        "application/json; foo=bar",
    ] {
        assert!(!is_json_content_type(bad), "{bad}");
    }
}

#[test]
fn parses_groups_with_url_label_and_sources() {
    let body =
        br#"[{"targets":["a:1","b:2"],"labels":{"env":"prod"},"extra":1},{"targets":null},{}]"#;
    let g = parse_groups("http://sd/x", body).unwrap();
    assert_eq!(g.len(), 3);
    assert_eq!(g[0].source, "http://sd/x:0");
    assert_eq!(addresses(&g[0]), ["a:1", "b:2"]);
    assert_eq!(g[0].labels.get("env"), Some("prod"));
    assert_eq!(g[2].labels.get(URL_LABEL), Some("http://sd/x"));
    assert!(g[1].targets.is_empty());
    assert!(parse_groups("u", b"[null]").is_err());
    assert!(parse_groups("u", br#"[{"labels":{"1x":"a"}}]"#).is_err());
    assert!(parse_groups("u", br#"[{"targets":[1]}]"#).is_err());
    assert!(parse_groups("u", br#"{"targets":[]}"#).is_err());
    assert!(parse_groups("u", b"[]").unwrap().is_empty());
}

/// What the test server answers, changed by the test between refreshes.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    delay: Duration,
}

#[derive(Clone)]
struct Server {
    reply: Arc<Mutex<Reply>>,
    /// Headers of every request with the right credentials.
    requests: Arc<Mutex<Vec<HeaderMap>>>,
    /// The `Authorization` value the server requires.
    authorization: &'static str,
}

impl Server {
    fn set(&self, f: impl FnOnce(&mut Reply)) {
        f(&mut self.reply.lock().unwrap());
    }

    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn serve(State(s): State<Server>, headers: HeaderMap) -> axum::response::Response {
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == s.authorization.as_bytes());
    if !authorized {
        return AxumStatus::UNAUTHORIZED.into_response();
    }
    s.requests.lock().unwrap().push(headers);
    let reply = s.reply.lock().unwrap().clone();
    tokio::time::sleep(reply.delay).await;
    let status = AxumStatus::from_u16(reply.status).unwrap();
    let content_type = [("content-type", reply.content_type)];
    if reply.body.len() < 1 << 20 {
        return (status, content_type, reply.body).into_response();
    }
    // Large bodies go chunked, without a Content-Length to check up front.
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = reply
        .body
        .into_bytes()
        .chunks(64 << 10)
        .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
        .collect();
    let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
    (status, content_type, body).into_response()
}

/// Starts the server on 127.0.0.1:0; returns it and the SD URL.
async fn start_server(authorization: &'static str, body: &str) -> (Server, String) {
    let server = Server {
        reply: Arc::new(Mutex::new(Reply {
            status: 200,
            content_type: "application/json",
            body: body.to_string(),
            delay: Duration::ZERO,
        })),
        requests: Arc::default(),
        authorization,
    };
    let app = axum::Router::new()
        .route("/sd", axum::routing::get(serve))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sd", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, url)
}

fn config(url: &str, auth: HttpAuth) -> HttpSdConfig {
    HttpSdConfig {
        tls: Default::default(),
        follow_redirects: true,
        enable_http2: true,
        proxy_url: None,
        url: url.to_string(),
        refresh_interval: Duration::from_millis(200),
        auth,
    }
}

const TWO_GROUPS: &str =
    r#"[{"targets":["a:1"],"labels":{"g":"0"}},{"targets":["b:1","b:2"],"labels":{"g":"1"}}]"#;

#[tokio::test]
async fn follows_the_endpoint_and_keeps_last_good_groups_on_errors() {
    let (metrics, _guard) = local_metrics();
    // "user:pass" in base64.
    let (server, url) = start_server("Basic dXNlcjpwYXNz", TWO_GROUPS).await;
    let basic = HttpAuth::Basic {
        username: "user".into(),
        password: "pass".into(),
    };
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    tokio::spawn(run(7, config(&url, basic), tx, cancel.clone()));

    // First send: every group, with its source and __meta_url.
    let first = next_update(&mut rx).await;
    assert_eq!(first.provider, 7);
    assert_eq!(first.groups.len(), 2);
    let g1 = by_source(&first.groups, &format!("{url}:1"));
    assert_eq!(addresses(g1), ["b:1", "b:2"]);
    assert_eq!(g1.labels.get("g"), Some("1"));
    assert_eq!(g1.labels.get(URL_LABEL), Some(url.as_str()));
    {
        let requests = server.requests.lock().unwrap();
        let h = &requests[0];
        assert_eq!(h["accept"], "application/json");
        assert_eq!(h[REFRESH_INTERVAL_HEADER], "0.2");
        assert!(h["user-agent"].to_str().unwrap().starts_with("scrapegrid/"));
    }

    // Fewer groups: the vanished source is sent empty, the unchanged one not at all.
    server.set(|r| r.body = r#"[{"targets":["a:1"],"labels":{"g":"0"}}]"#.into());
    let update = next_update(&mut rx).await;
    assert_eq!(
        update.groups,
        vec![TargetGroup {
            source: format!("{url}:1"),
            ..Default::default()
        }]
    );

    // A 500, then a wrong content type, then invalid JSON: nothing is sent,
    // each failure is counted.
    for (status, content_type, body) in [
        (500, "application/json", "[]"),
        (200, "text/plain", "[]"),
        (200, "application/json", "[{"),
    ] {
        let before = failures(&metrics, "http");
        server.set(|r| {
            r.status = status;
            r.content_type = content_type;
            r.body = body.into();
        });
        eventually("two more failed refreshes", || {
            failures(&metrics, "http") >= before + 2
        })
        .await;
        assert!(rx.try_recv().is_err(), "a failed refresh sent an update");
    }

    // Healthy again with a change: only the change arrives.
    server.set(|r| {
        r.status = 200;
        r.content_type = "application/json; charset=utf-8";
        r.body = r#"[{"targets":["a:2"],"labels":{"g":"0"}}]"#.into();
    });
    let update = next_update(&mut rx).await;
    assert_eq!(update.groups.len(), 1);
    assert_eq!(addresses(&update.groups[0]), ["a:2"]);
    cancel.cancel();
}

#[tokio::test]
async fn wrong_credentials_fail_and_authorization_scheme_is_sent() {
    let (metrics, _guard) = local_metrics();
    let (server, url) = start_server("Bearer s3cret", TWO_GROUPS).await;
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let wrong = HttpAuth::Basic {
        username: "user".into(),
        password: "nope".into(),
    };
    tokio::spawn(run(0, config(&url, wrong), tx.clone(), cancel.clone()));
    eventually("a refused refresh", || failures(&metrics, "http") >= 2).await;
    assert!(rx.try_recv().is_err());
    assert_eq!(server.requests(), 0);
    cancel.cancel();

    let cancel = CancellationToken::new();
    let bearer = HttpAuth::Authorization {
        scheme: "Bearer".into(),
        credentials: "s3cret".into(),
    };
    tokio::spawn(run(1, config(&url, bearer), tx, cancel.clone()));
    let update = next_update(&mut rx).await;
    assert_eq!((update.provider, update.groups.len()), (1, 2));
    cancel.cancel();
}

#[tokio::test]
async fn oversized_and_slow_answers_are_failures() {
    let (metrics, _guard) = local_metrics();
    let (server, url) = start_server("Bearer t", "[]").await;
    let huge = format!(
        "[{}]",
        vec![r#"{"targets":["x:1"]}"#; MAX_BODY_BYTES / 16].join(",")
    );
    assert!(huge.len() > MAX_BODY_BYTES);
    server.set(|r| r.body = huge);
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let auth = HttpAuth::Authorization {
        scheme: "Bearer".into(),
        credentials: "t".into(),
    };
    tokio::spawn(run(0, config(&url, auth), tx, cancel.clone()));
    eventually("oversized bodies refused", || {
        failures(&metrics, "http") >= 2
    })
    .await;
    assert!(rx.try_recv().is_err());

    // Slower than the refresh interval: the request times out.
    let before = failures(&metrics, "http");
    server.set(|r| {
        r.body = "[]".into();
        r.delay = Duration::from_millis(600);
    });
    eventually("slow answers time out", || {
        failures(&metrics, "http") >= before + 2
    })
    .await;
    assert!(rx.try_recv().is_err());

    server.set(|r| r.delay = Duration::ZERO);
    let first = next_update(&mut rx).await;
    assert!(first.groups.is_empty(), "first good answer, no groups");
    cancel.cancel();
}

#[tokio::test]
async fn oauth2_client_credentials_fetch_a_token_once() {
    let (server, url) = start_server("Bearer sd-token", TWO_GROUPS).await;
    let grants = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = grants.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let basic = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                seen.lock().unwrap().push(format!("{basic} {body}"));
                axum::Json(serde_json::json!({
                    "access_token": "sd-token", "token_type": "Bearer", "expires_in": 3600
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let auth = HttpAuth::OAuth2(Box::new(scrapegrid_common::config::http_client::OAuth2 {
        client_id: "sd".into(),
        client_secret: scrapegrid_common::config::http_client::Secret::Inline("s3cret".into()),
        scopes: vec!["read".into()],
        token_url,
        endpoint_params: Default::default(),
        tls: Default::default(),
        proxy_url: None,
    }));
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    tokio::spawn(run(3, config(&url, auth), tx, cancel.clone()));
    let update = next_update(&mut rx).await;
    assert_eq!((update.provider, update.groups.len()), (3, 2));
    // Several refreshes, one grant: the token is kept until near expiry.
    eventually("more refreshes", || server.requests() >= 3).await;
    let grants = grants.lock().unwrap().clone();
    // "sd:s3cret" in base64.
    assert_eq!(
        grants,
        ["Basic c2Q6czNjcmV0 grant_type=client_credentials&scope=read"]
    );
    cancel.cancel();
}
