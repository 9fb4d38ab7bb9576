//! Service discovery: providers and the manager that merges their output.
//!
//! Each distinct SD config runs one provider task ([`static_sd`],
//! [`file_sd`], [`http_sd`], [`kubernetes`], [`consul_sd`], [`dns_sd`], the last over the stub resolver in
//! [`dns_client`] and hickory-proto's codec in [`dns_wire`]); identical SD
//! configs, in one job or several, share it. A provider sends
//! [`ProviderUpdate`]s through its [`ProviderSender`]: its first send holds
//! every group it knows, later sends only groups that changed (worked out
//! by `push_changes`, here), and a group with no targets deletes its
//! `source`. The [`manager`] keeps the latest groups per (provider, source)
//! and, at most once per update interval, publishes the full set per job on a
//! `watch` channel that the coordinator reads. On a config reload it keeps the
//! providers whose SD config is unchanged and starts or stops only the rest.
//! `test_support` holds the waits the provider tests share.

pub mod consul_sd;
pub mod dns_client;
pub mod dns_sd;
pub mod dns_wire;
pub mod file_sd;
pub mod http_sd;
pub mod kubernetes;
pub mod manager;
pub mod static_sd;
#[cfg(test)]
mod test_support;

use std::time::Duration;

use scrapegrid_common::Labels;

/// Shortest refresh interval of the polling providers (http, dns): a
/// `refresh_interval` of 0, which Prometheus accepts and then cannot run
/// (its ticker panics), is raised to this instead of spinning.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// A group of targets sharing labels, keyed by a source unique in its provider.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TargetGroup {
    pub source: String,
    /// Each target's own labels; `__address__` at least.
    pub targets: Vec<Labels>,
    /// Labels common to every target of the group.
    pub labels: Labels,
}

/// What one provider sends: groups that are new or changed since its last send.
#[derive(Debug)]
pub struct ProviderUpdate {
    /// The provider's id, given by the manager when it started the provider.
    pub provider: usize,
    pub groups: Vec<TargetGroup>,
}

pub use manager::{DiscoveredTargets, DiscoveryManager, DiscoveryOptions};

/// A provider's side of the channel to the manager: sends the groups that
/// changed, and always something on the first send (the provider contract).
pub struct ProviderSender {
    provider: usize,
    tx: tokio::sync::mpsc::Sender<ProviderUpdate>,
    first: bool,
}

impl ProviderSender {
    pub fn new(provider: usize, tx: tokio::sync::mpsc::Sender<ProviderUpdate>) -> Self {
        Self {
            provider,
            tx,
            first: true,
        }
    }

    /// Sends `changed` if it is the first send or not empty; returns false
    /// when the manager is gone and the provider should stop.
    pub async fn send(&mut self, changed: Vec<TargetGroup>) -> bool {
        if !self.first && changed.is_empty() {
            return true;
        }
        self.first = false;
        let update = ProviderUpdate {
            provider: self.provider,
            groups: changed,
        };
        self.tx.send(update).await.is_ok()
    }
}

/// Appends to `out` the groups of `new` that differ from `old`, and an empty
/// group for each source of `old` that `new` no longer has.
pub(crate) fn push_changes(out: &mut Vec<TargetGroup>, old: &[TargetGroup], new: &[TargetGroup]) {
    for g in new {
        if !old.contains(g) {
            out.push(g.clone());
        }
    }
    for g in old {
        if !new.iter().any(|n| n.source == g.source) {
            out.push(TargetGroup {
                source: g.source.clone(),
                ..Default::default()
            });
        }
    }
}

/// Returns `name` with every character outside `[a-zA-Z0-9_]` replaced by
/// `_`, as Prometheus's `strutil.SanitizeLabelName` does (one `_` per
/// character, not per byte).
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Joins a host and a port as Go's `net.JoinHostPort`: a host with a `:` (an
/// IPv6 address) goes in brackets.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Adds an SD config's credentials to a request; an `oauth2` token comes
/// from `tokens` (kept until shortly before it expires, fetched otherwise).
pub(crate) async fn with_auth(
    request: reqwest::RequestBuilder,
    auth: &scrapegrid_common::config::HttpAuth,
    tokens: &scrapegrid_common::http_client_tls::OAuth2Tokens,
) -> Result<reqwest::RequestBuilder, String> {
    use scrapegrid_common::config::HttpAuth;
    Ok(match auth {
        HttpAuth::None => request,
        HttpAuth::Basic { username, password } => request.basic_auth(username, Some(password)),
        HttpAuth::Authorization {
            scheme,
            credentials,
        } => request.header(
            reqwest::header::AUTHORIZATION,
            format!("{scheme} {credentials}"),
        ),
        HttpAuth::OAuth2(o) => {
            let header = tokens
                .authorization(o, || {
                    reqwest::Client::builder()
                        .no_proxy()
                        .timeout(std::time::Duration::from_secs(30))
                })
                .await?;
            request.header(reqwest::header::AUTHORIZATION, header)
        }
    })
}

/// A failed request with every cause, for logs and errors.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    scrapegrid_common::error_chain::error_chain(e)
}

/// Reads a response body of at most `limit` bytes, chunk by chunk, so a
/// hostile server cannot make a provider hold more; `Ok(None)` when the
/// body is larger.
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
