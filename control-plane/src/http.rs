//! The control plane's HTTP endpoints: `/metrics`, `/-/healthy`, `/-/ready`,
//! `POST /-/reload`, `/api/v1/targets` in Prometheus's JSON shape (plus
//! the owning scraper), and the cluster's own view:
//! `/api/v1/scrapegrid/cluster` (leader or not, generation, members with
//! their targets and series) and `/api/v1/scrapegrid/moves` (the latest
//! target moves), `/api/v1/scrapegrid/dropped` (dropped targets and why),
//! and `POST /api/v1/scrapegrid/drain?scraper=ID` (tell one scraper to
//! drain). A follower forwards the cluster-wide ones to the leader
//! ([`crate::forward`]); `/api/v1/scrapegrid/cluster` is each control
//! plane's own (a follower names the leader's address). The web UI
//! (`/targets`, `/service-discovery`, `/cluster`, from `ui/`) reads these.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use scrapegrid_common::duration::format_duration;
use scrapegrid_common::security::refuse_cross_site as cross_site;
use scrapegrid_common::web::{Page, Site};
use scrapegrid_common::Labels;

use crate::coordinator::{Coordinator, DrainRequest};
use crate::forward::Forward;
use crate::reload::Reloader;

/// The web UI (`/` leads to the first page).
static UI: Site = Site {
    node: "control plane",
    pages: &[
        Page {
            path: "/targets",
            title: "Targets",
            scripts: &[],
            body: include_str!("ui/targets.html"),
        },
        Page {
            path: "/service-discovery",
            title: "Service discovery",
            scripts: &[],
            body: include_str!("ui/service_discovery.html"),
        },
        Page {
            path: "/cluster",
            title: "Cluster",
            scripts: &[],
            body: include_str!("ui/cluster.html"),
        },
    ],
};

/// The control plane's HTTP endpoints; with `read_token`, the API and
/// `/-/reload` require it as a bearer token (`/metrics` and the health
/// endpoints stay open).
pub fn router(
    coordinator: Coordinator,
    reloader: Reloader,
    read_token: Option<scrapegrid_common::security::Token>,
    forward: Forward,
) -> Router {
    let metrics = scrapegrid_common::telemetry::metrics_handle();
    let auth = axum::middleware::from_fn_with_state(
        read_token,
        scrapegrid_common::security::require_bearer,
    );
    // The leader's view: a follower asks the leader ([`crate::forward`]).
    let cluster_wide = Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/scrapegrid/moves", get(moves))
        .route("/api/v1/scrapegrid/drain", post(drain))
        .route("/api/v1/scrapegrid/dropped", get(dropped))
        .route_layer(axum::middleware::from_fn_with_state(
            forward.clone(),
            crate::forward::to_leader,
        ))
        .route_layer(axum::middleware::from_fn(cross_site))
        .route_layer(auth.clone());
    // Each control plane's own.
    let own = Router::new()
        .route("/-/reload", post(reload).put(reload).with_state(reloader))
        .route(
            "/api/v1/scrapegrid/cluster",
            get(cluster).with_state(forward),
        )
        .route_layer(axum::middleware::from_fn(cross_site))
        .route_layer(auth);
    Router::new()
        .merge(cluster_wide)
        .merge(own)
        .merge(scrapegrid_common::web::router(&UI))
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
        .with_state(coordinator)
}

/// `POST /-/reload`: 200 when the new configuration is in force, 500 with the
/// error (file, job, field) when it was refused, as Prometheus answers.
async fn reload(State(r): State<Reloader>) -> (StatusCode, String) {
    match r.reload().await {
        Ok(_) => (StatusCode::OK, String::new()),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
    }
}

#[derive(Deserialize)]
struct DrainParams {
    scraper: Option<String>,
}

/// `POST /api/v1/scrapegrid/drain?scraper=ID`: 200 when the scraper was
/// told (it drains and exits, as on SIGTERM), 400 without `scraper`, 404
/// when no member has that id, 503 when its stream could not take the
/// message or on a control plane that does not lead.
async fn drain(
    State(c): State<Coordinator>,
    Query(p): Query<DrainParams>,
) -> (StatusCode, Json<Value>) {
    let error = |code: StatusCode, kind: &str, error: String| {
        let body = json!({"status": "error", "errorType": kind, "error": error});
        (code, Json(body))
    };
    let Some(id) = p.scraper.filter(|s| !s.is_empty()) else {
        let why = "missing parameter \"scraper\" (the scraper's --id)".to_string();
        return error(StatusCode::BAD_REQUEST, "bad_data", why);
    };
    match c.request_drain(&id).await {
        DrainRequest::Sent => (
            StatusCode::OK,
            Json(json!({"status": "success", "data": {"scraper": id}})),
        ),
        DrainRequest::UnknownMember => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no scraper {id:?} is a member"),
        ),
        DrainRequest::NotLeading => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this control plane does not lead; ask the leader".into(),
        ),
        DrainRequest::Busy => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("scraper {id:?} could not be told (its stream is full or closed); try again"),
        ),
    }
}

/// `GET /api/v1/scrapegrid/cluster`: this control plane's own answer (a
/// follower says so, with the leader's HTTP address when known).
async fn cluster(State(f): State<Forward>) -> Json<Value> {
    let Some(view) = f.coordinator.view().await else {
        let leader = f.leader_http().await;
        return Json(json!({"status": "success", "data": {"leader": false, "leaderHttp": leader}}));
    };
    let members: Vec<Value> = view
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "httpAddr": m.http_addr,
                "targets": m.targets,
                "series": m.series,
                "draining": m.draining,
            })
        })
        .collect();
    Json(json!({
        "status": "success",
        "data": {
            "leader": true,
            "generation": view.generation.to_string(),
            "targets": view.active.len(),
            "unassigned": view.active.iter().filter(|(_, o)| o.is_none()).count(),
            "members": members,
        }
    }))
}

/// `GET /api/v1/scrapegrid/moves`: the latest moves, oldest first.
async fn moves(State(c): State<Coordinator>) -> Json<Value> {
    let moves: Vec<Value> = c
        .view()
        .await
        .unwrap_or_default()
        .moves
        .iter()
        .map(|m| {
            json!({
                "target": m.target,
                "from": m.from,
                "to": m.to,
                "generation": m.generation.to_string(),
                "handover": m.handover,
                "at": rfc3339_ms(m.at_ms),
            })
        })
        .collect();
    Json(json!({"status": "success", "data": moves}))
}

#[derive(Deserialize)]
struct TargetsParams {
    state: Option<String>,
}

async fn targets(State(c): State<Coordinator>, Query(p): Query<TargetsParams>) -> Json<Value> {
    let view = c.view().await.unwrap_or_default();
    let state = p.state.unwrap_or_default().to_ascii_lowercase();
    // As Prometheus: "" and "any" show both, an unknown state neither.
    let show_active = matches!(state.as_str(), "" | "any" | "active");
    let show_dropped = matches!(state.as_str(), "" | "any" | "dropped");
    let mut active = Vec::new();
    if show_active {
        for (t, owner) in &view.active {
            let health = owner.as_ref().and_then(|o| o.health.as_ref());
            let (health_str, last_error, last_scrape, duration) = match health {
                Some(h) => (
                    h.health.as_str(),
                    h.last_error.clone(),
                    rfc3339_ms(h.last_scrape_ms),
                    h.last_scrape_duration_seconds,
                ),
                None => ("unknown", String::new(), "0001-01-01T00:00:00Z".into(), 0.0),
            };
            active.push(json!({
                "discoveredLabels": label_map(&t.discovered),
                "labels": label_map(&t.labels),
                "scrapePool": t.job,
                "scrapeUrl": t.url,
                "globalUrl": t.url,
                "lastError": last_error,
                "lastScrape": last_scrape,
                "lastScrapeDuration": duration,
                "health": health_str,
                "scrapeInterval": format_duration(t.interval),
                "scrapeTimeout": format_duration(t.timeout),
                "scraper": owner.as_ref().map(|o| o.scraper.clone()),
                "generation": owner.as_ref().map(|o| o.generation.to_string()),
            }));
        }
    }
    let dropped: Vec<Value> = if show_dropped {
        view.dropped
            .iter()
            // As Prometheus, an invalid target is only logged.
            .filter(|d| d.error.is_none())
            .map(|d| json!({ "discoveredLabels": label_map(&d.discovered) }))
            .collect()
    } else {
        Vec::new()
    };
    Json(json!({
        "status": "success",
        "data": { "activeTargets": active, "droppedTargets": dropped },
    }))
}

/// `GET /api/v1/scrapegrid/dropped`: every target discovery found and
/// this control plane does not scrape, with why (the relabeling rule that
/// dropped it, or what makes it invalid).
async fn dropped(State(c): State<Coordinator>) -> Json<Value> {
    let view = c.view().await.unwrap_or_default();
    let dropped: Vec<Value> = view
        .dropped
        .iter()
        .map(|d| {
            json!({
                "job": d.job,
                "discoveredLabels": label_map(&d.discovered),
                "reason": d.reason,
                "invalid": d.error.is_some(),
            })
        })
        .collect();
    Json(json!({"status": "success", "data": dropped}))
}

fn label_map(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|l| (l.name.clone(), Value::String(l.value.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Formats milliseconds since the epoch as RFC 3339 in UTC.
fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            super::rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
