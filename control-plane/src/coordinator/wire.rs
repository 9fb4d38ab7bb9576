//! The wire forms of a job's scrape settings and of a target.

use scrapegrid_common::config::http_client::{Auth, HttpClientConfig, Secret, TlsConfig};
use scrapegrid_common::config::ScrapeConfig;
use scrapegrid_proto::v1 as pb;

use crate::targets::ScrapeTarget;

/// Returns the wire form of a job's scrape settings.
pub(super) fn pool(sc: &ScrapeConfig) -> pb::ScrapePool {
    pb::ScrapePool {
        name: sc.job_name.clone(),
        scrape_interval_ms: sc.scrape_interval.as_millis() as u64,
        scrape_timeout_ms: sc.scrape_timeout.as_millis() as u64,
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        metric_relabel_rules: sc
            .metric_relabel_configs
            .iter()
            .map(|r| r.to_proto())
            .collect(),
        sample_limit: sc.sample_limit,
        label_limit: sc.label_limit,
        label_name_length_limit: sc.label_name_length_limit,
        label_value_length_limit: sc.label_value_length_limit,
        body_size_limit_bytes: sc.body_size_limit,
        track_timestamps_staleness: sc.track_timestamps_staleness,
        accept_header: scrapegrid_common::config::accept_header(
            &sc.scrape_protocols,
            sc.scrape_native_histograms,
        ),
        native_histograms: sc.scrape_native_histograms,
        http_client: Some(http_client(&sc.http_client)),
    }
}

/// Returns the wire form of a job's HTTP client: secret files as paths.
fn http_client(c: &HttpClientConfig) -> pb::HttpClient {
    let secret = |s: &Secret| pb::Secret {
        value: Some(match s {
            Secret::Inline(v) => pb::secret::Value::Inline(v.clone()),
            Secret::File(p) => pb::secret::Value::File(p.display().to_string()),
            Secret::Withheld(why) => pb::secret::Value::Withheld(why.clone()),
        }),
    };
    pb::HttpClient {
        auth: match &c.auth {
            Auth::None => None,
            Auth::Basic { username, password } => {
                Some(pb::http_client::Auth::BasicAuth(pb::BasicAuth {
                    username: username.clone(),
                    password: Some(secret(password)),
                }))
            }
            Auth::Authorization {
                scheme,
                credentials,
            } => Some(pb::http_client::Auth::Authorization(pb::Authorization {
                r#type: scheme.clone(),
                credentials: Some(secret(credentials)),
            })),
            Auth::OAuth2(o) => Some(pb::http_client::Auth::Oauth2(pb::OAuth2 {
                client_id: o.client_id.clone(),
                client_secret: Some(secret(&o.client_secret)),
                scopes: o.scopes.clone(),
                token_url: o.token_url.clone(),
                endpoint_params: o.endpoint_params.clone().into_iter().collect(),
                tls: Some(tls(&o.tls)),
                proxy_url: o.proxy_url.clone().unwrap_or_default(),
            })),
        },
        tls: Some(tls(&c.tls)),
        no_follow_redirects: !c.follow_redirects,
        no_http2: !c.enable_http2,
        proxy_url: c.proxy_url.clone().unwrap_or_default(),
    }
}

pub(super) fn to_proto(t: &ScrapeTarget, generation: u64) -> pb::Target {
    pb::Target {
        id: t.id.clone(),
        generation,
        pool: t.job.clone(),
        url: t.url.clone(),
        labels: t.labels.to_proto(),
        discovered_labels: t.discovered.to_proto(),
        scrape_interval_ms: t.interval.as_millis() as u64,
        scrape_timeout_ms: t.timeout.as_millis() as u64,
        start_at_ms: 0,
        await_handover: false,
        forced_error: t.forced_error.clone().unwrap_or_default(),
    }
}

/// Whether `sent` is `t`'s wire form at `generation` (without handover
/// fields), compared in place: a round checks every target, so it builds
/// nothing.
pub(super) fn is_sent_form(sent: &pb::Target, t: &ScrapeTarget, generation: u64) -> bool {
    let same_labels = |wire: &[pb::Label], labels: &scrapegrid_common::Labels| {
        wire.len() == labels.len()
            && wire
                .iter()
                .zip(labels.iter())
                .all(|(w, l)| w.name == l.name && w.value == l.value)
    };
    sent.id == t.id
        && sent.generation == generation
        && sent.pool == t.job
        && sent.url == t.url
        && sent.scrape_interval_ms == t.interval.as_millis() as u64
        && sent.scrape_timeout_ms == t.timeout.as_millis() as u64
        && sent.start_at_ms == 0
        && !sent.await_handover
        && sent.forced_error == t.forced_error.as_deref().unwrap_or_default()
        && same_labels(&sent.labels, &t.labels)
        && same_labels(&sent.discovered_labels, &t.discovered)
}

/// The wire form of a `tls_config`: files as paths.
fn tls(t: &TlsConfig) -> pb::TlsConfig {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    pb::TlsConfig {
        ca_file: path(&t.ca_file),
        cert_file: path(&t.cert_file),
        key_file: path(&t.key_file),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        min_version: t.min_version.map_or(0, u32::from),
    }
}
