//! The `prometheus.yml` document as serde reads it: every field optional so
//! defaults can depend on other fields, unknown fields rejected, and checks
//! that concern one value (a label name, a relabel rule, a file SD pattern)
//! done while parsing so their errors carry an exact line and column.
//!
//! Prometheus fields that scrapegrid does not implement are listed here too:
//! they fail with a message saying so, rather than "unknown field".

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use yaml_serde::Value;

pub(super) use super::consul::RawConsulSdConfig;
use super::error::UNSUPPORTED_MARKER;
use super::http_client::{RawAuthorization, RawBasicAuth, RawOAuth2, RawTlsConfig};
pub(super) use super::kubernetes::RawKubernetesSdConfig;
pub(super) use super::sd::{RawDnsSdConfig, RawHttpSdConfig};
use crate::duration::{serde_duration_opt, serde_size_opt};
use crate::relabel::{Explicit, RelabelConfig};
use scrapegrid_proto::v1 as pb;

/// The top level of a `prometheus.yml`. `G` and `J` are the types of
/// `global` and of a `scrape_configs` entry; [`super::parse`] reads a
/// skeleton with [`de::IgnoredAny`] there when it reads a document part by part.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig<
    G = RawGlobal,
    J = Option<RawScrapeConfig>,
    G2 = super::integrations::RawIntegrations,
> {
    #[serde(default)]
    pub global: Option<G>,
    #[serde(default)]
    pub scrape_configs: Option<Vec<J>>,
    /// Glob patterns of files holding more `scrape_configs` (Prometheus 2.43+).
    #[serde(default)]
    pub scrape_config_files: Option<Vec<String>>,
    /// Read entry by entry ([`super::parse`]); the storage node acts on it.
    #[serde(default)]
    #[allow(dead_code)]
    pub remote_write: Option<de::IgnoredAny>,
    /// scrapegrid's built-in integrations ([`super::integrations`]).
    #[serde(default)]
    pub integrations: Option<G2>,
    // Sections scrapegrid accepts without acting on them.
    #[serde(default)]
    pub rule_files: Option<Value>,
    #[serde(default)]
    pub alerting: Option<Value>,
    #[serde(default)]
    pub remote_read: Option<Value>,
    #[serde(default)]
    pub storage: Option<Value>,
    #[serde(default)]
    pub tracing: Option<Value>,
}

impl<G, J, G2> RawConfig<G, J, G2> {
    /// Returns the opaque top-level sections that are present.
    pub fn ignored_sections(&self) -> Vec<&'static str> {
        [
            ("rule_files", &self.rule_files),
            ("alerting", &self.alerting),
            ("remote_read", &self.remote_read),
            ("storage", &self.storage),
            ("tracing", &self.tracing),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(name, _)| name)
        .collect()
    }
}

/// A file named by `scrape_config_files`: only `scrape_configs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScrapeConfigFile<J = Option<RawScrapeConfig>> {
    #[serde(default)]
    pub scrape_configs: Option<Vec<J>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobal {
    #[serde(default, with = "serde_duration_opt")]
    pub scrape_interval: Option<Duration>,
    #[serde(default, with = "serde_duration_opt")]
    pub scrape_timeout: Option<Duration>,
    #[serde(default, with = "serde_duration_opt")]
    pub evaluation_interval: Option<Duration>,
    #[serde(default)]
    pub external_labels: Option<LabelMap>,
    #[serde(default)]
    pub query_log_file: Option<String>,
    #[serde(default)]
    pub scrape_native_histograms: Option<bool>,
}

/// Declares the scrape config struct with its supported fields and the
/// Prometheus 2.42 fields that are rejected as not supported yet.
macro_rules! raw_scrape_config {
    ($($unsupported:ident),* $(,)?) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawScrapeConfig {
            #[serde(default)]
            pub job_name: Option<String>,
            #[serde(default)]
            pub honor_labels: Option<bool>,
            #[serde(default)]
            pub honor_timestamps: Option<bool>,
            #[serde(default)]
            pub track_timestamps_staleness: Option<bool>,
            #[serde(default)]
            pub params: Option<BTreeMap<String, Vec<String>>>,
            #[serde(default, with = "serde_duration_opt")]
            pub scrape_interval: Option<Duration>,
            #[serde(default, with = "serde_duration_opt")]
            pub scrape_timeout: Option<Duration>,
            #[serde(default)]
            pub metrics_path: Option<String>,
            #[serde(default)]
            pub scheme: Option<String>,
            #[serde(default, with = "serde_size_opt")]
            pub body_size_limit: Option<u64>,
            #[serde(default)]
            pub sample_limit: Option<u64>,
            #[serde(default)]
            pub target_limit: Option<u64>,
            #[serde(default)]
            pub label_limit: Option<u64>,
            #[serde(default)]
            pub label_name_length_limit: Option<u64>,
            #[serde(default)]
            pub label_value_length_limit: Option<u64>,
            #[serde(default)]
            pub static_configs: Option<Vec<Option<RawStaticConfig>>>,
            #[serde(default)]
            pub file_sd_configs: Option<Vec<Option<RawFileSdConfig>>>,
            #[serde(default)]
            pub http_sd_configs: Option<Vec<Option<RawHttpSdConfig>>>,
            #[serde(default)]
            pub dns_sd_configs: Option<Vec<Option<RawDnsSdConfig>>>,
            #[serde(default)]
            pub kubernetes_sd_configs: Option<Vec<Option<RawKubernetesSdConfig>>>,
            #[serde(default)]
            pub consul_sd_configs: Option<Vec<Option<RawConsulSdConfig>>>,
            #[serde(default)]
            pub relabel_configs: Option<Vec<Option<RelabelRuleYaml>>>,
            #[serde(default)]
            pub metric_relabel_configs: Option<Vec<Option<RelabelRuleYaml>>>,
            #[serde(default)]
            pub follow_redirects: Option<bool>,
            #[serde(default)]
            pub enable_http2: Option<bool>,
            #[serde(default)]
            pub scrape_protocols: Option<Vec<String>>,
            #[serde(default)]
            pub scrape_native_histograms: Option<bool>,
            #[serde(default)]
            pub basic_auth: Option<RawBasicAuth>,
            #[serde(default)]
            pub authorization: Option<RawAuthorization>,
            #[serde(default)]
            pub bearer_token: Option<String>,
            #[serde(default)]
            pub bearer_token_file: Option<String>,
            #[serde(default)]
            pub tls_config: Option<RawTlsConfig>,
            #[serde(default)]
            pub proxy_url: Option<String>,
            #[serde(default)]
            pub oauth2: Option<RawOAuth2>,
            $(
                #[serde(default)]
                #[allow(dead_code)]
                pub $unsupported: Option<Unsupported>,
            )*
        }
    };
}

raw_scrape_config!(
    proxy_connect_header,
    // Service discovery mechanisms other than static and file.
    azure_sd_configs,
    digitalocean_sd_configs,
    docker_sd_configs,
    dockerswarm_sd_configs,
    ec2_sd_configs,
    eureka_sd_configs,
    gce_sd_configs,
    hetzner_sd_configs,
    ionos_sd_configs,
    kuma_sd_configs,
    lightsail_sd_configs,
    linode_sd_configs,
    marathon_sd_configs,
    nerve_sd_configs,
    openstack_sd_configs,
    ovhcloud_sd_configs,
    puppetdb_sd_configs,
    scaleway_sd_configs,
    serverset_sd_configs,
    triton_sd_configs,
    uyuni_sd_configs,
    vultr_sd_configs,
);

/// A Prometheus field scrapegrid does not implement: any non-null value is
/// an error (see [`UNSUPPORTED_MARKER`]).
#[derive(Debug)]
pub(super) struct Unsupported;

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnsupportedVisitor)
    }
}

struct UnsupportedVisitor;

impl<'de> de::Visitor<'de> for UnsupportedVisitor {
    type Value = Unsupported;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(UNSUPPORTED_MARKER)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Unsupported, A::Error> {
        Err(de::Error::custom(UNSUPPORTED_MARKER))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Unsupported, A::Error> {
        Err(de::Error::custom(UNSUPPORTED_MARKER))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Unsupported, E> {
        Err(E::custom(UNSUPPORTED_MARKER))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unsupported, E> {
        Err(E::custom(UNSUPPORTED_MARKER))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unsupported, E> {
        Err(E::custom(UNSUPPORTED_MARKER))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unsupported, E> {
        Err(E::custom(UNSUPPORTED_MARKER))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unsupported, E> {
        Err(E::custom(UNSUPPORTED_MARKER))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: Option<LabelMap>,
}

/// A file SD config, checked as Prometheus checks it.
#[derive(Debug)]
pub(super) struct RawFileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSdFields {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default, with = "serde_duration_opt")]
    refresh_interval: Option<Duration>,
}

impl<'de> Deserialize<'de> for RawFileSdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(|raw: RawFileSdFields| {
            if raw.files.is_empty() {
                return Err(
                    "file service discovery config must contain at least one path name".to_string(),
                );
            }
            if let Some(bad) = raw.files.iter().find(|f| !is_valid_file_sd_pattern(f)) {
                return Err(format!("path name {bad:?} is not valid for file discovery"));
            }
            Ok(RawFileSdConfig {
                files: raw.files,
                refresh_interval: raw.refresh_interval,
            })
        }))
    }
}

/// Deserializes a mapping as `R`, then checks and converts it with `F`
/// inside the visitor, so the deserializer attributes the check's error to
/// the mapping's own path and position rather than its parent's.
pub(super) struct CheckedMap<R, F>(F, PhantomData<fn() -> R>);

impl<R, F> CheckedMap<R, F> {
    pub(super) fn new(f: F) -> Self {
        Self(f, PhantomData)
    }
}

impl<'de, R, T, E, F> de::Visitor<'de> for CheckedMap<R, F>
where
    R: Deserialize<'de>,
    F: FnOnce(R) -> Result<T, E>,
    E: std::fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let raw = R::deserialize(de::value::MapAccessDeserializer::new(map))?;
        (self.0)(raw).map_err(de::Error::custom)
    }
}

/// Prometheus's file SD pattern: `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`,
/// a glob only in the last path element.
fn is_valid_file_sd_pattern(p: &str) -> bool {
    let exts = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"];
    let Some(stem) = exts.iter().find_map(|e| p.strip_suffix(e)) else {
        return false;
    };
    match stem.find('*') {
        None => true,
        Some(star) => !stem[star + 1..].contains('/'),
    }
}

/// A label map whose names are checked (`"1a" is not a valid label name`).
#[derive(Debug, Default)]
pub(super) struct LabelMap(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for LabelMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(|map: BTreeMap<String, String>| {
            match map.keys().find(|k| !crate::labels::is_valid_label_name(k)) {
                Some(bad) => Err(format!("{bad:?} is not a valid label name")),
                None => Ok(LabelMap(map)),
            }
        }))
    }
}

/// A `relabel_configs` entry: Prometheus's defaults filled in, then
/// validated by the relabel module.
#[derive(Debug)]
pub(super) struct RelabelRuleYaml(pub RelabelConfig);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabel {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Option<String>,
    /// `Some(None)` is an explicit null, which Prometheus reads as "".
    #[serde(default, deserialize_with = "present")]
    regex: Option<Option<String>>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for RelabelRuleYaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(|raw: RawRelabel| {
            let explicit = Explicit {
                source_labels: raw.source_labels.is_some(),
                regex: raw.regex.is_some(),
            };
            let defaults = RelabelConfig::default();
            let rule = pb::RelabelRule {
                source_labels: raw.source_labels.unwrap_or_default(),
                separator: raw.separator.unwrap_or(defaults.separator),
                regex: match raw.regex {
                    None => defaults.regex_source,
                    Some(r) => r.unwrap_or_default(),
                },
                modulus: raw.modulus.unwrap_or(0),
                target_label: raw.target_label.unwrap_or_default(),
                replacement: raw.replacement.unwrap_or(defaults.replacement),
                action: raw
                    .action
                    .unwrap_or_else(|| defaults.action.as_str().to_string()),
            };
            RelabelConfig::validate(&rule, explicit).map(RelabelRuleYaml)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_file_sd_pattern;

    #[test]
    fn file_sd_patterns_follow_prometheus() {
        for ok in [
            "a.json",
            "a/b.yml",
            "/x/*.yaml",
            "a/x*y.YML",
            "*.json",
            "dir.d/f.JSON",
            "a*b*.yml",
        ] {
            assert!(is_valid_file_sd_pattern(ok), "{ok}");
        }
        for bad in ["a.txt", "a/*/x.json", "*/x.yml", "json", "a.json.bak"] {
            assert!(!is_valid_file_sd_pattern(bad), "{bad}");
        }
    }
}
