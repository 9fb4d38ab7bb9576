//! From the parsed document to a [`super::Config`]'s parts: Prometheus's defaults,
//! and the checks that span fields or entries (timeout against interval,
//! targets that look like URLs) or read files (credentials). Each check that
//! fails pushes an [`Invalid`] and the job is still built, so one pass finds
//! every problem. Errors carry a document path; the line is found afterwards
//! by [`locate`], which walks the YAML again to the deepest node of that path
//! that exists in the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::http_client::{self, http_client_config, RawAuth, RawHttpClient, RawTlsConfig};
use super::kubernetes::kubeconfig_path;
use super::raw::{RawGlobal, RawScrapeConfig, RelabelRuleYaml};
use super::SCRAPE_PROTOCOLS;
use super::{
    ConfigError, ConfigErrorDetail, ConsulSdConfig, DnsSdConfig, FileSdConfig, GlobalConfig,
    HttpAuth, HttpSdConfig, KubernetesAccess, KubernetesSdConfig, ScrapeConfig, StaticConfig,
    DEFAULT_CONSUL_SD_REFRESH_INTERVAL, DEFAULT_DNS_SD_REFRESH_INTERVAL,
    DEFAULT_EVALUATION_INTERVAL, DEFAULT_FILE_SD_REFRESH_INTERVAL,
    DEFAULT_HTTP_SD_REFRESH_INTERVAL, DEFAULT_SCRAPE_INTERVAL, DEFAULT_SCRAPE_TIMEOUT,
};
use crate::duration::format_duration;
use crate::labels::Labels;
use crate::relabel::RelabelConfig;

/// One step of a document path.
#[derive(Clone, Debug)]
pub(super) enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A validation error before it is located in the file.
#[derive(Debug)]
pub(super) struct Invalid {
    path: Vec<Seg>,
    reason: String,
}

impl Invalid {
    pub(super) fn new(path: &[Seg], reason: impl Into<String>) -> Self {
        Self {
            path: path.to_vec(),
            reason: reason.into(),
        }
    }

    /// Names the file and finds the line of the deepest part of the path
    /// that is written in `text`.
    pub(super) fn into_config_error(self, file: &str, text: &str) -> ConfigError {
        let location = (0..=self.path.len())
            .rev()
            .find_map(|n| locate(text, &self.path[..n]));
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) if path.is_empty() => path.push_str(k),
                Seg::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Seg::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        ConfigErrorDetail {
            file: file.to_string(),
            path,
            job: None,
            reason: self.reason,
            line: location.map(|l| l.0),
            column: location.map(|l| l.1),
        }
        .into()
    }
}

/// What validating one document needs besides the document.
pub(super) struct Context<'a> {
    /// The file name for warnings.
    pub file: &'a str,
    /// The directory relative paths are resolved against; `None` keeps
    /// `file_sd_configs` paths as written and reads credentials files
    /// relative to the current directory.
    pub dir: Option<&'a Path>,
    pub warnings: &'a mut Vec<String>,
    pub errors: Vec<Invalid>,
}

impl Context<'_> {
    pub(super) fn invalid(&mut self, path: &[Seg], reason: impl Into<String>) {
        self.errors.push(Invalid::new(path, reason));
    }
}

/// Returns the `global` section with defaults filled in.
pub(super) fn global(raw: RawGlobal, ctx: &mut Context) -> GlobalConfig {
    if raw.query_log_file.is_some() {
        ctx.warnings.push(format!(
            "{}: global.query_log_file: accepted but not acted on by scrapegrid",
            ctx.file
        ));
    }
    let scrape_interval = nonzero(raw.scrape_interval).unwrap_or(DEFAULT_SCRAPE_INTERVAL);
    let scrape_timeout = match nonzero(raw.scrape_timeout) {
        Some(t) if t > scrape_interval => {
            ctx.invalid(
                &[Seg::Key("global"), Seg::Key("scrape_timeout")],
                format!(
                    "global scrape timeout ({}) greater than scrape interval ({})",
                    format_duration(t),
                    format_duration(scrape_interval)
                ),
            );
            scrape_interval
        }
        Some(t) => t,
        None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
    };
    GlobalConfig {
        scrape_interval,
        scrape_timeout,
        evaluation_interval: nonzero(raw.evaluation_interval)
            .unwrap_or(DEFAULT_EVALUATION_INTERVAL),
        external_labels: Labels::from_pairs(raw.external_labels.unwrap_or_default().0),
        scrape_native_histograms: raw.scrape_native_histograms,
    }
}

/// Resolves the HTTP client settings of an SD config (credentials files read
/// now, TLS, proxy); a problem is reported at `at` and gives `None`.
fn sd_http_client(
    at: &[Seg],
    auth: RawAuth,
    tls: Option<RawTlsConfig>,
    proxy: Option<String>,
    ctx: &mut Context,
) -> Option<(HttpAuth, http_client::TlsConfig, Option<String>)> {
    let auth = match auth.resolve(ctx.dir) {
        Ok(auth) => auth,
        Err((file_field, reason)) => {
            let keys = file_field.iter().copied().map(Seg::Key);
            ctx.invalid(&[at.to_vec(), keys.collect()].concat(), reason);
            return None;
        }
    };
    let tls = match tls.map(|t| t.resolve(ctx.dir)).transpose() {
        Ok(tls) => tls.unwrap_or_default(),
        Err(reason) => {
            ctx.invalid(
                &[at.to_vec(), vec![Seg::Key("tls_config")]].concat(),
                reason,
            );
            return None;
        }
    };
    let proxy_url = match http_client::proxy_url(proxy) {
        Ok(p) => p,
        Err(reason) => {
            ctx.invalid(&[at.to_vec(), vec![Seg::Key("proxy_url")]].concat(), reason);
            return None;
        }
    };
    Some((auth, tls, proxy_url))
}

fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

/// Returns the job with defaults filled in; its problems go to `ctx.errors`.
pub(super) fn scrape_config(
    raw: RawScrapeConfig,
    global: &GlobalConfig,
    at: &[Seg],
    ctx: &mut Context,
) -> ScrapeConfig {
    let field = |name: &'static str| [at, &[Seg::Key(name)]].concat();
    let job_name = raw.job_name.unwrap_or_default();
    if job_name.is_empty() {
        ctx.invalid(&field("job_name"), "job_name is empty");
    }

    let scrape_interval = nonzero(raw.scrape_interval).unwrap_or(global.scrape_interval);
    let scrape_timeout = match nonzero(raw.scrape_timeout) {
        Some(t) if t > scrape_interval => {
            ctx.invalid(
                &field("scrape_timeout"),
                format!(
                    "scrape timeout ({}) greater than scrape interval ({})",
                    format_duration(t),
                    format_duration(scrape_interval)
                ),
            );
            scrape_interval
        }
        Some(t) => t,
        None => global.scrape_timeout.min(scrape_interval),
    };

    let scheme = raw.scheme.unwrap_or_else(|| "http".to_string());
    if scheme != "http" && scheme != "https" {
        ctx.invalid(
            &field("scheme"),
            format!("invalid scheme {scheme:?}: must be \"http\" or \"https\""),
        );
    }

    let relabel_configs = relabel_rules(
        raw.relabel_configs,
        &field("relabel_configs"),
        "target",
        ctx,
    );
    let metric_relabel_configs = relabel_rules(
        raw.metric_relabel_configs,
        &field("metric_relabel_configs"),
        "metric",
        ctx,
    );

    let mut static_configs = Vec::new();
    for (k, sc) in entries(raw.static_configs, &field("static_configs"), ctx) {
        // Prometheus checks addresses only when relabeling cannot fix them.
        if relabel_configs.is_empty() {
            for (t, target) in sc.targets.iter().enumerate() {
                let at = [
                    field("static_configs"),
                    vec![Seg::Index(k), Seg::Key("targets"), Seg::Index(t)],
                ]
                .concat();
                if target.is_empty() {
                    ctx.invalid(&at, "target address is empty");
                } else if target.contains('/') {
                    ctx.invalid(&at, format!("{target:?} is not a valid hostname"));
                }
            }
        }
        static_configs.push(StaticConfig {
            targets: sc.targets,
            labels: Labels::from_pairs(sc.labels.unwrap_or_default().0),
        });
    }

    let file_sd_configs = entries(raw.file_sd_configs, &field("file_sd_configs"), ctx)
        .map(|(_, f)| FileSdConfig {
            files: f
                .files
                .into_iter()
                .map(|f| match ctx.dir {
                    Some(dir) => dir.join(f),
                    None => PathBuf::from(f),
                })
                .collect(),
            // Prometheus would tick every 0s; take the default instead.
            refresh_interval: nonzero(f.refresh_interval)
                .unwrap_or(DEFAULT_FILE_SD_REFRESH_INTERVAL),
        })
        .collect();

    let mut http_sd_configs = Vec::new();
    for (k, h) in entries(raw.http_sd_configs, &field("http_sd_configs"), ctx) {
        let at = [field("http_sd_configs"), vec![Seg::Index(k)]].concat();
        let Some((auth, tls, proxy_url)) =
            sd_http_client(&at, h.auth, h.tls_config, h.proxy_url, ctx)
        else {
            continue;
        };
        http_sd_configs.push(HttpSdConfig {
            proxy_url,
            tls,
            follow_redirects: h.follow_redirects.unwrap_or(true),
            enable_http2: h.enable_http2.unwrap_or(true),
            url: h.url,
            refresh_interval: nonzero(h.refresh_interval)
                .unwrap_or(DEFAULT_HTTP_SD_REFRESH_INTERVAL),
            auth,
        });
    }

    let mut kubernetes_sd_configs = Vec::new();
    for (k, c) in entries(
        raw.kubernetes_sd_configs,
        &field("kubernetes_sd_configs"),
        ctx,
    ) {
        let at = [field("kubernetes_sd_configs"), vec![Seg::Index(k)]].concat();
        let access = match (c.api_server, c.kubeconfig_file) {
            (Some(url), _) => {
                let Some((auth, tls, proxy_url)) =
                    sd_http_client(&at, c.auth, c.tls_config, c.proxy_url, ctx)
                else {
                    continue;
                };
                KubernetesAccess::ApiServer {
                    url,
                    auth,
                    tls,
                    follow_redirects: c.follow_redirects.unwrap_or(true),
                    enable_http2: c.enable_http2.unwrap_or(true),
                    proxy_url,
                }
            }
            (None, Some(file)) => KubernetesAccess::KubeConfig(kubeconfig_path(ctx.dir, &file)),
            (None, None) => KubernetesAccess::InCluster,
        };
        kubernetes_sd_configs.push(KubernetesSdConfig {
            role: c.role,
            access,
            namespaces: c.namespaces,
            own_namespace: c.own_namespace,
            selectors: c.selectors,
            attach_node: c.attach_node,
        });
    }

    let mut consul_sd_configs = Vec::new();
    for (k, c) in entries(raw.consul_sd_configs, &field("consul_sd_configs"), ctx) {
        let at = [field("consul_sd_configs"), vec![Seg::Index(k)]].concat();
        let Some((auth, tls, proxy_url)) =
            sd_http_client(&at, c.auth, c.tls_config, c.proxy_url, ctx)
        else {
            continue;
        };
        consul_sd_configs.push(ConsulSdConfig {
            server: c.server,
            scheme: c.scheme,
            token: super::SecretString(c.token),
            datacenter: c.datacenter,
            namespace: c.namespace,
            partition: c.partition,
            tag_separator: c.tag_separator,
            allow_stale: c.allow_stale,
            refresh_interval: nonzero(c.refresh_interval)
                .unwrap_or(DEFAULT_CONSUL_SD_REFRESH_INTERVAL),
            services: c.services,
            tags: c.tags,
            node_meta: c.node_meta,
            auth,
            tls,
            follow_redirects: c.follow_redirects.unwrap_or(true),
            enable_http2: c.enable_http2.unwrap_or(true),
            proxy_url,
        });
    }

    let dns_sd_configs = entries(raw.dns_sd_configs, &field("dns_sd_configs"), ctx)
        .map(|(_, d)| DnsSdConfig {
            names: d.names,
            record_type: d.record_type,
            port: d.port,
            refresh_interval: nonzero(d.refresh_interval)
                .unwrap_or(DEFAULT_DNS_SD_REFRESH_INTERVAL),
        })
        .collect();

    if let Some(protocols) = &raw.scrape_protocols {
        if protocols.is_empty() {
            ctx.invalid(
                &field("scrape_protocols"),
                "scrape_protocols cannot be empty",
            );
        }
        let mut seen = BTreeSet::new();
        for (k, p) in protocols.iter().enumerate() {
            let at = [field("scrape_protocols"), vec![Seg::Index(k)]].concat();
            if !SCRAPE_PROTOCOLS.iter().any(|(name, _)| name == p) {
                let names: Vec<_> = SCRAPE_PROTOCOLS.iter().map(|(name, _)| *name).collect();
                ctx.invalid(
                    &at,
                    format!(
                        "unknown scrape protocol {p:?}, supported: {}",
                        names.join(", ")
                    ),
                );
            } else if !seen.insert(p.to_ascii_lowercase()) {
                ctx.invalid(
                    &at,
                    format!("duplicated protocol in scrape_protocols: {p:?}"),
                );
            }
        }
    }
    let http_client = http_client_config(
        RawHttpClient {
            basic_auth: raw.basic_auth,
            authorization: raw.authorization,
            oauth2: raw.oauth2,
            bearer_token: raw.bearer_token,
            bearer_token_file: raw.bearer_token_file,
            tls_config: raw.tls_config,
            proxy_url: raw.proxy_url,
            follow_redirects: raw.follow_redirects,
            enable_http2: raw.enable_http2,
        },
        at,
        ctx,
    );

    ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path: raw.metrics_path.unwrap_or_else(|| "/metrics".to_string()),
        scheme,
        params: raw.params.unwrap_or_default(),
        honor_labels: raw.honor_labels.unwrap_or(false),
        honor_timestamps: raw.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: raw.track_timestamps_staleness.unwrap_or(false),
        scrape_protocols: raw.scrape_protocols.clone().unwrap_or_default(),
        scrape_native_histograms: raw
            .scrape_native_histograms
            .or(global.scrape_native_histograms)
            .unwrap_or(false),
        static_configs,
        file_sd_configs,
        http_sd_configs,
        kubernetes_sd_configs,
        consul_sd_configs,
        dns_sd_configs,
        relabel_configs,
        metric_relabel_configs,
        sample_limit: raw.sample_limit.unwrap_or(0),
        target_limit: raw.target_limit.unwrap_or(0),
        label_limit: raw.label_limit.unwrap_or(0),
        label_name_length_limit: raw.label_name_length_limit.unwrap_or(0),
        label_value_length_limit: raw.label_value_length_limit.unwrap_or(0),
        body_size_limit: raw.body_size_limit.unwrap_or(0),
        http_client,
        integration: None,
    }
}

/// Returns the entries of an SD list with their indexes; a null entry is an
/// error, as in Prometheus (`empty or null section in file_sd_configs`).
fn entries<T>(
    list: Option<Vec<Option<T>>>,
    at: &[Seg],
    ctx: &mut Context,
) -> impl Iterator<Item = (usize, T)> {
    let list = list.unwrap_or_default();
    for (k, e) in list.iter().enumerate() {
        if e.is_none() {
            let Some(Seg::Key(name)) = at.last() else {
                unreachable!("an SD list is a field")
            };
            ctx.invalid(
                &[at, &[Seg::Index(k)]].concat(),
                format!("empty or null section in {name}"),
            );
        }
    }
    list.into_iter()
        .enumerate()
        .filter_map(|(k, e)| e.map(|e| (k, e)))
}

fn relabel_rules(
    rules: Option<Vec<Option<RelabelRuleYaml>>>,
    at: &[Seg],
    kind: &str,
    ctx: &mut Context,
) -> Vec<RelabelConfig> {
    let mut out = Vec::new();
    for (k, r) in rules.unwrap_or_default().into_iter().enumerate() {
        match r {
            Some(r) => out.push(r.0),
            None => ctx.invalid(
                &[at, &[Seg::Index(k)]].concat(),
                format!("empty or null {kind} relabeling rule in scrape config"),
            ),
        }
    }
    out
}

/// The failure [`Walk`] raises at the node it was sent to.
const LOCATE_MARKER: &str = "scrapegrid-locate-here";

/// Returns the 1-based line and column of the node at `path` in `text`, or
/// `None` when the path is not written there. It walks the document with a
/// deserializer that fails on purpose at the node, and reads the location
/// `yaml_serde` attaches to that failure.
fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let de = yaml_serde::Deserializer::from_str(text);
    match (Walk { path }).deserialize(de) {
        Err(e) if e.to_string().contains(LOCATE_MARKER) => {
            e.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

/// Walks to the node at `path`; fails there, or succeeds if it is absent.
struct Walk<'a> {
    path: &'a [Seg],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        match self.path.first() {
            None => d.deserialize_any(self),
            Some(Seg::Key(_)) => d.deserialize_map(self),
            Some(Seg::Index(_)) => d.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(LOCATE_MARKER)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(LOCATE_MARKER));
        };
        while let Some(key) = map.next_key::<yaml_serde::Value>()? {
            if key.as_str() == Some(want) {
                return map.next_value_seed(Walk { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(LOCATE_MARKER));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Walk { path: rest }).map(|_| ())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }
}
