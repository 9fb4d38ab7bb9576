//! Followers answer the cluster's HTTP API by asking the leader: a request
//! to `/api/v1/targets` or `/api/v1/scrapegrid/{moves,dropped,drain}` on a
//! control plane that does not lead is sent on to the leader's HTTP
//! address (from the election's value, [`Advertised`]) with its method,
//! path, query, body and `Authorization` header, and the leader's answer
//! is returned as it is. So any control plane behind a load balancer
//! answers as the leader does. A forwarded request carries
//! [`FORWARDED_HEADER`] and is never forwarded again (two control planes
//! that each think the other leads, during a change of leader, answer for
//! themselves). Without a known leader HTTP address (no leader, or one
//! whose HTTP server uses TLS), or on a follower that serves HTTPS itself
//! (what it received is not sent on in the clear), the follower answers
//! for itself: no targets.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::coordinator::Coordinator;
use crate::ha::advertised::Advertised;
use crate::ha::Election;

/// Marks a request a follower forwarded.
pub const FORWARDED_HEADER: &str = "x-scrapegrid-forwarded";

/// The largest body forwarded either way.
const MAX_BODY: usize = 64 << 20;

#[derive(Clone)]
pub struct Forward {
    pub coordinator: Coordinator,
    pub election: Arc<dyn Election>,
    pub client: reqwest::Client,
    /// This control plane serves HTTPS: what it receives is not sent on in
    /// the clear (tokens included), so it forwards nothing.
    pub tls: bool,
}

impl Forward {
    pub fn new(coordinator: Coordinator, election: Arc<dyn Election>, tls: bool) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            coordinator,
            election,
            client,
            tls,
        }
    }

    /// The leader's HTTP base URL (as it advertises it), when this control
    /// plane does not lead and one is known.
    pub async fn leader_http(&self) -> Option<String> {
        if self.coordinator.is_leading() {
            return None;
        }
        let value = match self.election.leader().await {
            Ok(v) => v?,
            Err(error) => {
                tracing::debug!(%error, "leader unknown");
                return None;
            }
        };
        Advertised::decode(&value).http
    }

    /// Where to forward to: the leader over plain HTTP, from a plain-HTTP
    /// control plane only.
    async fn target(&self) -> Option<String> {
        if self.tls {
            return None;
        }
        self.leader_http()
            .await
            .filter(|h| h.starts_with("http://"))
    }
}

/// Middleware: forwards to the leader when this control plane does not lead.
pub async fn to_leader(State(f): State<Forward>, request: Request, next: Next) -> Response {
    if request.headers().contains_key(FORWARDED_HEADER) {
        return next.run(request).await;
    }
    let Some(base) = f.target().await else {
        return next.run(request).await;
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let method = request.method().clone();
    let auth = request.headers().get(header::AUTHORIZATION).cloned();
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("reading the body: {e}\n")).into_response()
        }
    };
    let mut forwarded = f
        .client
        .request(method, &url)
        .header(FORWARDED_HEADER, "1")
        .body(body);
    if let Some(auth) = auth {
        forwarded = forwarded.header(header::AUTHORIZATION, auth);
    }
    let answer = match forwarded.send().await {
        Ok(a) => a,
        Err(e) => {
            let why = scrapegrid_common::error_chain::error_chain(&e);
            tracing::warn!(%url, error = %why, "forwarding to the leader failed");
            return (
                StatusCode::BAD_GATEWAY,
                format!("this control plane does not lead, and the leader at {base} did not answer: {why}\n"),
            )
                .into_response();
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    if answer.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return (
            StatusCode::BAD_GATEWAY,
            format!("the leader's answer is larger than {MAX_BODY} bytes\n"),
        )
            .into_response();
    }
    let bytes = match answer.bytes().await {
        Ok(b) if b.len() <= MAX_BODY => b,
        Ok(_) => {
            let why = format!("the leader's answer is larger than {MAX_BODY} bytes\n");
            return (StatusCode::BAD_GATEWAY, why).into_response();
        }
        Err(e) => {
            let why = scrapegrid_common::error_chain::error_chain(&e);
            let why = format!("reading the leader's answer from {base}: {why}\n");
            return (StatusCode::BAD_GATEWAY, why).into_response();
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(ct) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert(FORWARDED_HEADER, HeaderValue::from_static("1"));
    response
}
