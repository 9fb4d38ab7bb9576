//! Validated domain types for what the control plane assigns: a scrape pool's
//! settings and a target. Built once from the wire messages with `TryFrom`, so
//! the scrape path never sees a raw message.

use std::sync::Arc;
use std::time::Duration;

use scrapegrid_common::config::http_client::{Auth, HttpClientConfig, OAuth2, Secret, TlsConfig};
use scrapegrid_common::relabel::RelabelConfig;
use scrapegrid_common::Labels;
use scrapegrid_proto::v1 as pb;

/// A job's scrape settings.
#[derive(Debug)]
pub struct PoolConfig {
    pub name: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel: Vec<RelabelConfig>,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
    /// Whether native histograms are scraped (`scrape_native_histograms`).
    pub native_histograms: bool,
    /// The Accept header every scrape of the pool sends.
    pub accept_header: http::HeaderValue,
    /// How its scrapes authenticate and their TLS.
    pub http: HttpClientConfig,
    /// The message it was built from, to detect changes.
    pub source: pb::ScrapePool,
}

impl TryFrom<&pb::ScrapePool> for PoolConfig {
    type Error = String;

    fn try_from(p: &pb::ScrapePool) -> Result<Self, String> {
        let metric_relabel = p
            .metric_relabel_rules
            .iter()
            .map(RelabelConfig::from_proto)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("pool {:?}: metric relabel rule: {e}", p.name))?;
        Ok(Self {
            name: p.name.clone(),
            honor_labels: p.honor_labels,
            honor_timestamps: p.honor_timestamps,
            track_timestamps_staleness: p.track_timestamps_staleness,
            metric_relabel,
            sample_limit: p.sample_limit,
            label_limit: p.label_limit,
            label_name_length_limit: p.label_name_length_limit,
            label_value_length_limit: p.label_value_length_limit,
            body_size_limit: p.body_size_limit_bytes,
            native_histograms: p.native_histograms,
            accept_header: if p.accept_header.is_empty() {
                http::HeaderValue::from_static(scrapegrid_common::config::DEFAULT_ACCEPT_HEADER)
            } else {
                http::HeaderValue::from_str(&p.accept_header)
                    .map_err(|e| format!("pool {:?}: accept header: {e}", p.name))?
            },
            http: p.http_client.as_ref().map(http_client).unwrap_or_default(),
            source: p.clone(),
        })
    }
}

/// The domain form of a pool's HTTP client.
fn http_client(h: &pb::HttpClient) -> HttpClientConfig {
    let secret = |s: &Option<pb::Secret>| match s.as_ref().and_then(|s| s.value.as_ref()) {
        Some(pb::secret::Value::File(p)) => Secret::File(p.into()),
        Some(pb::secret::Value::Inline(v)) => Secret::Inline(v.clone()),
        Some(pb::secret::Value::Withheld(why)) => Secret::Withheld(why.clone()),
        None => Secret::Inline(String::new()),
    };
    let path = |p: &str| (!p.is_empty()).then(|| std::path::PathBuf::from(p));
    let tls = |t: &Option<pb::TlsConfig>| {
        t.as_ref()
            .map(|t| TlsConfig {
                ca_file: path(&t.ca_file),
                cert_file: path(&t.cert_file),
                key_file: path(&t.key_file),
                server_name: t.server_name.clone(),
                insecure_skip_verify: t.insecure_skip_verify,
                min_version: u16::try_from(t.min_version).ok().filter(|v| *v != 0),
            })
            .unwrap_or_default()
    };
    let auth = match &h.auth {
        None => Auth::None,
        Some(pb::http_client::Auth::BasicAuth(b)) => Auth::Basic {
            username: b.username.clone(),
            password: secret(&b.password),
        },
        Some(pb::http_client::Auth::Authorization(a)) => Auth::Authorization {
            scheme: a.r#type.clone(),
            credentials: secret(&a.credentials),
        },
        Some(pb::http_client::Auth::Oauth2(o)) => Auth::OAuth2(OAuth2 {
            client_id: o.client_id.clone(),
            client_secret: secret(&o.client_secret),
            scopes: o.scopes.clone(),
            token_url: o.token_url.clone(),
            endpoint_params: o.endpoint_params.clone().into_iter().collect(),
            tls: tls(&o.tls),
            proxy_url: (!o.proxy_url.is_empty()).then(|| o.proxy_url.clone()),
        }),
    };
    HttpClientConfig {
        auth,
        tls: tls(&h.tls),
        follow_redirects: !h.no_follow_redirects,
        enable_http2: !h.no_http2,
        proxy_url: (!h.proxy_url.is_empty()).then(|| h.proxy_url.clone()),
    }
}

/// One assigned target.
#[derive(Debug)]
pub struct TargetSpec {
    pub id: String,
    pub generation: u64,
    pub pool: Arc<PoolConfig>,
    pub url: String,
    pub labels: Labels,
    pub interval: Duration,
    pub timeout: Duration,
    /// Handover: the first scrape is at the first slot at or after this time
    /// (ms since the Unix epoch); 0 for the next slot.
    pub start_at_ms: i64,
    /// Whether the previous owner hands its series over through the storage
    /// node ([`crate::scrape::handover`]).
    pub await_handover: bool,
    /// Every scrape fails with this error, without a request (the job is
    /// over its target_limit).
    pub forced_error: Option<String>,
    /// The message it was built from without the handover fields, to detect
    /// changes of the definition ([`definition`]).
    pub source: pb::Target,
}

/// Returns `t` without its handover fields: what defines the target. A loop
/// is restarted only when this changes (a snapshot re-sends a target that
/// moved here without its handover time).
pub fn definition(t: &pb::Target) -> pb::Target {
    pb::Target {
        start_at_ms: 0,
        await_handover: false,
        ..t.clone()
    }
}

impl TargetSpec {
    pub fn from_proto(t: &pb::Target, pool: Arc<PoolConfig>) -> Result<Self, String> {
        if t.id.is_empty() {
            return Err("target without id".into());
        }
        if t.scrape_interval_ms == 0 {
            return Err(format!("target {}: zero scrape interval", t.id));
        }
        let interval = Duration::from_millis(t.scrape_interval_ms);
        let timeout = Duration::from_millis(t.scrape_timeout_ms.clamp(1, t.scrape_interval_ms));
        Ok(Self {
            id: t.id.clone(),
            generation: t.generation,
            pool,
            url: t.url.clone(),
            forced_error: (!t.forced_error.is_empty()).then(|| t.forced_error.clone()),
            labels: Labels::from_proto(&t.labels),
            interval,
            timeout,
            start_at_ms: t.start_at_ms,
            await_handover: t.await_handover,
            source: definition(t),
        })
    }
}
