//! The fixture: one HTTP server on loopback that serves every case at
//! `/case/<name>` to both scrapers.
//!
//! It tells the two clients apart by their User-Agent (`Prometheus/...` or
//! `scrapegrid/...`) and counts scrapes per (case, client), so each client
//! sees the same sequence of bodies: scrape `k` of a client gets phase
//! `min(k / repeats, last)` of the case. It records the scrape headers each
//! client sent (Accept, Accept-Encoding, the timeout header) for comparison.
//! `/final/<name>` is where a case's redirect points; it is not counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::body::Body as HttpBody;
use axum::extract::Request;
use axum::http::{HeaderValue, Response, StatusCode};

use super::cases::{Body, Case, Ctx, Phase};

/// Which scraper sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Client {
    Prometheus,
    Scrapegrid,
    Other,
}

impl Client {
    fn from_user_agent(ua: &str) -> Client {
        if ua.starts_with("Prometheus/") {
            Client::Prometheus
        } else if ua.starts_with("scrapegrid/") {
            Client::Scrapegrid
        } else {
            Client::Other
        }
    }
}

/// Request headers recorded per client.
pub const RECORDED_HEADERS: [&str; 3] = [
    "accept",
    "accept-encoding",
    "x-prometheus-scrape-timeout-seconds",
];

#[derive(Default)]
struct Record {
    /// Scrapes per (case, client).
    counts: HashMap<(String, Client), u64>,
    /// Values seen per (client, case, header name); "<none>" when absent.
    headers: BTreeMap<(Client, String, &'static str), BTreeSet<String>>,
    /// User-Agents of requests from neither client.
    strangers: BTreeSet<String>,
}

struct State {
    cases: HashMap<&'static str, Arc<Case>>,
    record: Mutex<Record>,
}

/// The running fixture server; stops when dropped.
pub struct Fixture {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Fixture {
    /// Binds a loopback port and serves `cases`.
    pub async fn start(cases: &[Arc<Case>]) -> Result<Fixture> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let state = Arc::new(State {
            cases: cases.iter().map(|c| (c.name, c.clone())).collect(),
            record: Mutex::default(),
        });
        let s = state.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let s = s.clone();
            async move { serve(&s, req).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Fixture { addr, state, task })
    }

    /// How often `client` has scraped `case`.
    pub fn count(&self, case: &str, client: Client) -> u64 {
        let r = self.state.record.lock().unwrap();
        r.counts
            .get(&(case.to_string(), client))
            .copied()
            .unwrap_or(0)
    }

    /// The values of a recorded header that `client` sent to `case`.
    pub fn header_values(&self, client: Client, case: &str, header: &str) -> BTreeSet<String> {
        let r = self.state.record.lock().unwrap();
        r.headers
            .iter()
            .filter(|((c, n, h), _)| *c == client && n == case && *h == header)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    /// The values of a recorded header that `client` sent, over all cases.
    pub fn all_header_values(&self, client: Client, header: &str) -> BTreeSet<String> {
        let r = self.state.record.lock().unwrap();
        r.headers
            .iter()
            .filter(|((c, _, h), _)| *c == client && *h == header)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    /// User-Agents of requests that came from neither client.
    pub fn strangers(&self) -> BTreeSet<String> {
        self.state.record.lock().unwrap().strangers.clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(state: &State, req: Request) -> Response<HttpBody> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let ua = header(&req, "user-agent").unwrap_or_default();
    let client = Client::from_user_agent(&ua);
    let (kind, name) = match path.split('/').collect::<Vec<_>>()[..] {
        // More segments after the name are the case's own (a path that
        // tests escaping); the case sees them in `Ctx::path`.
        ["", kind @ ("case" | "final"), name, ..] => (kind, name),
        _ => return plain(StatusCode::NOT_FOUND, "no such path"),
    };
    let Some(case) = state.cases.get(name).cloned() else {
        return plain(StatusCode::NOT_FOUND, "no such case");
    };
    let phase: Phase = if kind == "final" {
        match &case.redirect_final {
            Some(p) => p.clone(),
            None => return plain(StatusCode::NOT_FOUND, "no final for this case"),
        }
    } else {
        let k = {
            let mut r = state.record.lock().unwrap();
            if client == Client::Other {
                r.strangers.insert(ua.clone());
            }
            for h in RECORDED_HEADERS {
                let v = header(&req, h).unwrap_or_else(|| "<none>".into());
                r.headers
                    .entry((client, name.to_string(), h))
                    .or_default()
                    .insert(v);
            }
            let c = r.counts.entry((name.to_string(), client)).or_default();
            *c += 1;
            *c - 1
        };
        case.phase_for(k).clone()
    };
    if phase.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(phase.delay_ms)).await;
    }
    let ctx = Ctx {
        now_ms: now_ms(),
        query,
        path: path.clone(),
    };
    let mut body = match &phase.body {
        Body::Bytes(b) => b.clone(),
        Body::Gen(f) => f(&ctx),
    };
    let mut resp = Response::builder().status(StatusCode::from_u16(phase.status).unwrap());
    if let Some(ct) = phase.content_type {
        resp = resp.header(
            "content-type",
            HeaderValue::from_bytes(ct.as_bytes()).unwrap(),
        );
    }
    if let Some(loc) = &phase.location {
        resp = resp.header("location", loc.as_str());
    }
    for (name, value) in &phase.headers {
        resp = resp.header(*name, *value);
    }
    if phase.gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).unwrap();
        body = enc.finish().unwrap();
        resp = resp.header("content-encoding", "gzip");
    }
    resp.body(HttpBody::from(body)).unwrap()
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn plain(status: StatusCode, text: &'static str) -> Response<HttpBody> {
    Response::builder()
        .status(status)
        .body(HttpBody::from(text))
        .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
