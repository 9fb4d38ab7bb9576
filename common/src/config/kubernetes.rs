//! `kubernetes_sd_configs` as serde reads them, with the checks Prometheus
//! 2.42 makes while unmarshalling (`discovery/kubernetes.SDConfig`), in its
//! order and with its words, so the errors carry a line.
//!
//! Selectors are checked here with the grammar of Kubernetes' label and field
//! selectors (`key`, `!key`, `key=value`, `key==value`, `key!=value`,
//! `key in (a,b)`, `key notin (a,b)`; fields take only the three equality
//! forms), so a typo fails at load time instead of on every list request.

use std::path::PathBuf;

use serde::de::Deserializer;
use serde::Deserialize;

use super::http_client::{
    http_auth, RawAuth, RawAuthorization, RawBasicAuth, RawOAuth2, RawTlsConfig,
};
use super::raw::{CheckedMap, Unsupported};
use super::sd::{check_http_sd_url, raw_sd_fields};

/// What a `kubernetes_sd_configs` entry discovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KubernetesRole {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
}

impl KubernetesRole {
    /// The role as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            KubernetesRole::Node => "node",
            KubernetesRole::Pod => "pod",
            KubernetesRole::Service => "service",
            KubernetesRole::Endpoints => "endpoints",
            KubernetesRole::EndpointSlice => "endpointslice",
            KubernetesRole::Ingress => "ingress",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "node" => KubernetesRole::Node,
            "pod" => KubernetesRole::Pod,
            "service" => KubernetesRole::Service,
            "endpoints" => KubernetesRole::Endpoints,
            "endpointslice" => KubernetesRole::EndpointSlice,
            "ingress" => KubernetesRole::Ingress,
            _ => return None,
        })
    }

    /// The roles whose selectors this role's discovery applies (its own
    /// objects and those it joins with).
    fn allowed_selectors(self) -> &'static [&'static str] {
        match self {
            KubernetesRole::Pod => &["pod"],
            KubernetesRole::Service => &["service"],
            KubernetesRole::EndpointSlice => &["pod", "service", "endpointslice"],
            KubernetesRole::Endpoints => &["pod", "service", "endpoints"],
            KubernetesRole::Node => &["node"],
            KubernetesRole::Ingress => &["ingress"],
        }
    }
}

/// One `selectors` entry: the label and field selectors sent with every list
/// and watch of `role`'s objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KubernetesSelector {
    pub role: KubernetesRole,
    pub label: String,
    pub field: String,
}

/// A `kubernetes_sd_configs` entry, checked; files are not read yet.
#[derive(Debug)]
pub(super) struct RawKubernetesSdConfig {
    pub role: KubernetesRole,
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<String>,
    pub auth: RawAuth,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub tls_config: Option<RawTlsConfig>,
    pub proxy_url: Option<String>,
    pub namespaces: Vec<String>,
    pub own_namespace: bool,
    pub selectors: Vec<KubernetesSelector>,
    pub attach_node: bool,
}

raw_sd_fields!(RawKubernetesFields {
    role: Option<String>,
    api_server: Option<String>,
    kubeconfig_file: Option<String>,
    namespaces: Option<RawNamespaces>,
    selectors: Option<Vec<RawSelector>>,
    attach_metadata: Option<RawAttachMetadata>,
});

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNamespaces {
    #[serde(default)]
    own_namespace: bool,
    #[serde(default)]
    names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAttachMetadata {
    #[serde(default)]
    node: bool,
}

impl<'de> Deserialize<'de> for RawKubernetesSdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(check))
    }
}

/// Prometheus 2.42's `SDConfig.UnmarshalYAML`, check by check.
fn check(raw: RawKubernetesFields) -> Result<RawKubernetesSdConfig, String> {
    // An explicit empty role is refused by the role's own decoder first.
    let Some(role_text) = raw.role else {
        return Err(
            "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)".into(),
        );
    };
    let role = KubernetesRole::parse(&role_text)
        .ok_or_else(|| format!("unknown Kubernetes SD role {role_text:?}"))?;
    let custom_http = raw.basic_auth.is_some()
        || raw.authorization.is_some()
        || raw.oauth2.is_some()
        || raw.bearer_token.as_deref().is_some_and(|t| !t.is_empty())
        || raw
            .bearer_token_file
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        || raw.tls_config.is_some()
        || raw.proxy_url.as_deref().is_some_and(|p| !p.is_empty())
        || raw.follow_redirects == Some(false)
        || raw.enable_http2 == Some(false);
    let auth = http_auth(
        raw.basic_auth,
        raw.authorization,
        raw.oauth2,
        raw.bearer_token.filter(|t| !t.is_empty()),
        raw.bearer_token_file.filter(|t| !t.is_empty()),
    )?;
    let api_server = raw.api_server.filter(|s| !s.is_empty());
    let kubeconfig_file = raw.kubeconfig_file.filter(|s| !s.is_empty());
    if let Some(url) = &api_server {
        check_http_sd_url(url).map_err(|e| format!("api_server: {e}"))?;
    }
    let namespaces = raw.namespaces.unwrap_or_default();
    if api_server.is_some() && kubeconfig_file.is_some() {
        return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
    }
    if kubeconfig_file.is_some() && custom_http {
        return Err(
            "cannot use a custom HTTP client configuration together with 'kubeconfig_file'".into(),
        );
    }
    if api_server.is_none() && custom_http {
        return Err(
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
                .into(),
        );
    }
    if api_server.is_some() && namespaces.own_namespace {
        return Err("cannot use 'api_server' and 'namespaces.own_namespace' simultaneously".into());
    }
    if kubeconfig_file.is_some() && namespaces.own_namespace {
        return Err(
            "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously".into(),
        );
    }
    let selectors = selectors(role, raw.selectors.unwrap_or_default())?;
    Ok(RawKubernetesSdConfig {
        role,
        api_server,
        kubeconfig_file,
        auth,
        follow_redirects: raw.follow_redirects,
        enable_http2: raw.enable_http2,
        tls_config: raw.tls_config,
        proxy_url: raw.proxy_url,
        namespaces: namespaces.names.unwrap_or_default(),
        own_namespace: namespaces.own_namespace,
        selectors,
        attach_node: raw.attach_metadata.unwrap_or_default().node,
    })
}

/// Checks the `selectors` of a `role` config: one per role, only the roles
/// the discovery lists, and each selector well formed.
fn selectors(
    role: KubernetesRole,
    raw: Vec<RawSelector>,
) -> Result<Vec<KubernetesSelector>, String> {
    let mut out: Vec<KubernetesSelector> = Vec::new();
    for s in raw {
        let sel_role_text = s.role.unwrap_or_default();
        let allowed = role.allowed_selectors();
        let sel_role = KubernetesRole::parse(&sel_role_text);
        // Prometheus's Role type refuses an unknown role while decoding.
        let Some(sel_role) = sel_role else {
            return Err(format!("unknown Kubernetes SD role {sel_role_text:?}"));
        };
        if out.iter().any(|o| o.role == sel_role) {
            return Err(format!("duplicated selector role: {sel_role_text}"));
        }
        if !allowed.contains(&sel_role_text.as_str()) {
            return Err(format!(
                "{} role supports only {} selectors",
                role.as_str(),
                allowed.join(", ")
            ));
        }
        let field = s.field.unwrap_or_default();
        let label = s.label.unwrap_or_default();
        check_selector(&field, false)?;
        check_selector(&label, true)?;
        out.push(KubernetesSelector {
            role: sel_role,
            label,
            field,
        });
    }
    Ok(out)
}

/// Checks a label selector (`set_ops`: `in`, `notin`, `key`, `!key` too) or
/// a field selector.
pub fn check_selector(selector: &str, set_ops: bool) -> Result<(), String> {
    if selector.trim().is_empty() {
        return Ok(());
    }
    for term in split_terms(selector) {
        let term = term.trim();
        check_term(term, set_ops).map_err(|reason| {
            if set_ops {
                reason
            } else {
                format!("invalid selector: '{selector}'; can't understand '{term}'")
            }
        })?;
    }
    Ok(())
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

fn check_term(term: &str, set_ops: bool) -> Result<(), String> {
    if term.is_empty() {
        return Err("found '', expected: identifier".into());
    }
    for op in ["!=", "==", "="] {
        if let Some((key, value)) = term.split_once(op) {
            check_key(key.trim(), set_ops)?;
            let value = value.trim();
            if let Some((_, next)) = value.split_once(char::is_whitespace) {
                let next = next.split_whitespace().next().unwrap_or_default();
                return Err(format!("found '{next}', expected: ',' or 'end of string'"));
            }
            return if set_ops { check_value(value) } else { Ok(()) };
        }
    }
    if !set_ops {
        return Err("invalid selector".into());
    }
    if let Some(key) = term.strip_prefix('!') {
        return check_key(key.trim(), true);
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => check_key(key, true),
        [key, rest] => {
            let rest = rest.trim();
            let values = rest
                .strip_prefix("notin")
                .or_else(|| rest.strip_prefix("in"))
                .map(str::trim)
                .and_then(|v| v.strip_prefix('('))
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("found '{rest}', expected: in, notin, =, ==, !="))?;
            check_key(key, true)?;
            values.split(',').try_for_each(|v| check_value(v.trim()))
        }
        _ => Err("found '', expected: identifier".into()),
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters of alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric.
fn check_key(key: &str, strict: bool) -> Result<(), String> {
    if key.is_empty() {
        return Err("found '', expected: identifier".into());
    }
    if !strict {
        return Ok(());
    }
    let name = key.rsplit_once('/').map_or(key, |(_, n)| n);
    if !is_qualified_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value: {value:?}: a valid label must be an empty string or consist \
             of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character"
        ))
    }
}

fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// The kubeconfig path, relative to the config file's directory.
pub(super) fn kubeconfig_path(dir: Option<&std::path::Path>, file: &str) -> PathBuf {
    match dir {
        Some(dir) if std::path::Path::new(file).is_relative() => dir.join(file),
        _ => PathBuf::from(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_follow_the_kubernetes_grammar() {
        for ok in [
            "",
            "app=web",
            "app==web,tier!=db",
            "app in (a, b),!legacy",
            "app.kubernetes.io/name notin (x)",
            "env",
        ] {
            assert_eq!(check_selector(ok, true), Ok(()), "{ok}");
        }
        for bad in ["app=we b", "=x", "app in a", "-x=1", "a,,b"] {
            assert!(check_selector(bad, true).is_err(), "{bad}");
        }
        assert_eq!(
            check_selector("spec.nodeName=n1,metadata.name!=x", false),
            Ok(())
        );
        assert!(check_selector("metadata.name", false).is_err());
    }
}
