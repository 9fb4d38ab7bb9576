//! `consul_sd_configs` as serde reads them, with Prometheus 2.42's defaults
//! and checks (`discovery/consul.SDConfig`): `server` `localhost:8500`,
//! `scheme` `http`, `tag_separator` `,`, `allow_stale` true,
//! `refresh_interval` 30 s; `username`/`password` become basic auth and
//! `token` is sent as `X-Consul-Token`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;

use super::http_client::{
    http_auth, RawAuth, RawAuthorization, RawBasicAuth, RawOAuth2, RawTlsConfig,
};
use super::raw::{CheckedMap, Unsupported};
use super::sd::raw_sd_fields;
use crate::duration::serde_duration_opt;

/// A `consul_sd_configs` entry, checked; credentials files are not read yet.
#[derive(Debug)]
pub(super) struct RawConsulSdConfig {
    pub server: String,
    pub token: String,
    pub datacenter: String,
    pub namespace: String,
    pub partition: String,
    pub tag_separator: String,
    pub scheme: String,
    pub allow_stale: bool,
    pub refresh_interval: Option<Duration>,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub auth: RawAuth,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub tls_config: Option<RawTlsConfig>,
    pub proxy_url: Option<String>,
}

raw_sd_fields!(RawConsulFields {
    server: Option<String>,
    token: Option<String>,
    datacenter: Option<String>,
    namespace: Option<String>,
    partition: Option<String>,
    tag_separator: Option<String>,
    scheme: Option<String>,
    username: Option<String>,
    password: Option<String>,
    allow_stale: Option<bool>,
    #[serde(with = "serde_duration_opt")]
    refresh_interval: Option<Duration>,
    services: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    node_meta: Option<BTreeMap<String, String>>,
});

impl<'de> Deserialize<'de> for RawConsulSdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(check))
    }
}

/// Prometheus 2.42's `SDConfig.UnmarshalYAML`, check by check.
fn check(raw: RawConsulFields) -> Result<RawConsulSdConfig, String> {
    let server = raw.server.unwrap_or_else(|| "localhost:8500".into());
    if server.trim().is_empty() {
        return Err("consul SD configuration requires a server address".into());
    }
    let username = raw.username.unwrap_or_default();
    let password = raw.password.unwrap_or_default();
    let mut basic = raw.basic_auth;
    if !username.is_empty() || !password.is_empty() {
        if basic.is_some() {
            return Err("at most one of consul SD configuration username and password and basic auth can be configured".into());
        }
        basic = Some(RawBasicAuth::inline(username, password));
    }
    let token = raw.token.unwrap_or_default();
    if !token.is_empty() && (raw.authorization.is_some() || raw.oauth2.is_some()) {
        return Err(
            "at most one of consul SD token, authorization, or oauth2 can be configured".into(),
        );
    }
    let auth = http_auth(
        basic,
        raw.authorization,
        raw.oauth2,
        raw.bearer_token.filter(|t| !t.is_empty()),
        raw.bearer_token_file.filter(|t| !t.is_empty()),
    )?;
    Ok(RawConsulSdConfig {
        server,
        token,
        datacenter: raw.datacenter.unwrap_or_default(),
        namespace: raw.namespace.unwrap_or_default(),
        partition: raw.partition.unwrap_or_default(),
        tag_separator: raw.tag_separator.unwrap_or_else(|| ",".into()),
        scheme: raw.scheme.unwrap_or_else(|| "http".into()),
        allow_stale: raw.allow_stale.unwrap_or(true),
        refresh_interval: raw.refresh_interval,
        services: raw.services.unwrap_or_default(),
        tags: raw.tags.unwrap_or_default(),
        node_meta: raw.node_meta.unwrap_or_default(),
        auth,
        follow_redirects: raw.follow_redirects,
        enable_http2: raw.enable_http2,
        tls_config: raw.tls_config,
        proxy_url: raw.proxy_url,
    })
}
