//! A job's HTTP client settings (Prometheus's `HTTPClientConfig`, inlined
//! in a scrape config and in each `http_sd_configs` entry): how requests
//! authenticate and their TLS, as serde reads them, with the checks
//! Prometheus makes, and what they resolve to.
//!
//! A scrape job keeps secret files as paths (absolute, against the config
//! file's directory, as Prometheus's `SetDirectory`), which the scraper reads
//! at every scrape, so rotated tokens, passwords and certificates are picked
//! up without a reload; HTTP SD reads them when the config is loaded. An
//! inline secret never shows in `Debug` output.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::validate::{Context, Seg};
use super::HttpAuth;

/// A scrape job's HTTP client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpClientConfig {
    pub auth: Auth,
    pub tls: TlsConfig,
    /// Follow HTTP redirects (at most 10), as Prometheus does by default.
    pub follow_redirects: bool,
    /// Offer HTTP/2 over TLS (`enable_http2`, on by default); HTTP/1.1 only
    /// when off.
    pub enable_http2: bool,
    /// The HTTP proxy every request goes through; `None`: none (the
    /// environment's proxy variables are ignored, as in Prometheus 2.42).
    pub proxy_url: Option<String>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            tls: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
        }
    }
}

/// How a scrape authenticates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: Secret },
    /// `Authorization: <scheme> <credentials>`; `bearer_token*` are
    /// `Bearer`.
    Authorization { scheme: String, credentials: Secret },
    /// A token from an OAuth 2.0 client-credentials grant.
    OAuth2(OAuth2),
}

/// `oauth2`: the client-credentials grant Prometheus 2.42 makes
/// (golang.org/x/oauth2/clientcredentials): client id and secret in an HTTP
/// Basic header, `grant_type=client_credentials`, the scopes and endpoint
/// parameters in the form body; the token is kept until 10 s before it
/// expires.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OAuth2 {
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    pub token_url: String,
    pub endpoint_params: std::collections::BTreeMap<String, String>,
    /// TLS and proxy of the token requests.
    pub tls: TlsConfig,
    pub proxy_url: Option<String>,
}

/// A secret written inline, or the absolute path of the file holding it
/// (read at use, surrounding whitespace trimmed).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Secret {
    Inline(String),
    File(PathBuf),
    /// An inline secret the control plane would not send over an
    /// unencrypted link; the reason is the scrape error.
    Withheld(String),
}

impl std::fmt::Debug for Secret {
    /// Writes `<secret>` for an inline secret, as Prometheus shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("<secret>"),
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
            Secret::Withheld(why) => f.debug_tuple("Withheld").field(why).finish(),
        }
    }
}

/// Prometheus 2.42's `tls_config`: files only (inline `ca`, `cert` and
/// `key` came in later versions), each an absolute path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Expected server name; empty: the URL's host.
    pub server_name: String,
    pub insecure_skip_verify: bool,
    /// Go's number for the least version accepted (0x0301 TLS 1.0 to
    /// 0x0304 TLS 1.3); `None`: Go's client default, TLS 1.2.
    pub min_version: Option<u16>,
}

/// `oauth2` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_file: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    endpoint_params: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    tls_config: Option<RawTlsConfig>,
    #[serde(default)]
    proxy_url: Option<String>,
}

impl std::fmt::Debug for RawOAuth2 {
    /// Leaves the secret out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawOAuth2")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

/// `tls_config` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsConfig {
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: Option<bool>,
    #[serde(default)]
    min_version: Option<String>,
}

impl RawTlsConfig {
    /// Checks it as Prometheus does (the version name, a client certificate
    /// and key given together) and makes its paths absolute against `dir`.
    pub(super) fn resolve(self, dir: Option<&Path>) -> Result<TlsConfig, String> {
        let min_version = match self.min_version.as_deref() {
            None | Some("") => None,
            Some("TLS10") => Some(0x0301),
            Some("TLS11") => Some(0x0302),
            Some("TLS12") => Some(0x0303),
            Some("TLS13") => Some(0x0304),
            Some(other) => return Err(format!("unknown TLS version: {other}")),
        };
        let set = |s: Option<String>| s.filter(|s| !s.is_empty());
        let (cert, key) = (set(self.cert_file), set(self.key_file));
        match (&cert, &key) {
            (Some(c), None) => {
                return Err(format!(
                    "client cert file {c:?} specified without client key file"
                ))
            }
            (None, Some(k)) => {
                return Err(format!(
                    "client key file {k:?} specified without client cert file"
                ))
            }
            _ => {}
        }
        Ok(TlsConfig {
            ca_file: set(self.ca_file).map(|p| absolute(dir, &p)),
            cert_file: cert.map(|p| absolute(dir, &p)),
            key_file: key.map(|p| absolute(dir, &p)),
            server_name: self.server_name.unwrap_or_default(),
            insecure_skip_verify: self.insecure_skip_verify.unwrap_or(false),
            min_version,
        })
    }
}

/// Checks a `proxy_url`: a URL with an `http` or `https` scheme and a host.
pub(super) fn proxy_url(raw: Option<String>) -> Result<Option<String>, String> {
    let Some(raw) = raw.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&raw).map_err(|e| format!("parse {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "proxy_url {raw:?}: scrapegrid supports http:// and https:// proxies with a host"
        ));
    }
    Ok(Some(raw))
}

/// `path` against the config file's directory `dir` when relative.
fn absolute(dir: Option<&Path>, path: &str) -> PathBuf {
    match dir {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    }
}

/// HTTP credentials as written: a secret or the file that holds it.
#[derive(Debug)]
pub(super) enum RawAuth {
    None,
    OAuth2(Box<RawOAuth2>),
    Basic {
        username: String,
        password: RawSecret,
    },
    Authorization {
        scheme: String,
        credentials: RawSecret,
    },
}

/// A secret given inline or by file; `field` names the file field for errors.
#[derive(Debug)]
pub(super) enum RawSecret {
    Inline(String),
    File {
        field: &'static [&'static str],
        path: String,
    },
}

impl RawSecret {
    fn new(inline: Option<String>, file: Option<String>, field: &'static [&'static str]) -> Self {
        match file.filter(|f| !f.is_empty()) {
            Some(path) => RawSecret::File { field, path },
            None => RawSecret::Inline(inline.unwrap_or_default()),
        }
    }
}

impl RawAuth {
    /// Returns the scrape credentials: secret files as absolute paths
    /// against `dir`, read at every scrape; an error is oauth2's TLS or
    /// proxy.
    pub(super) fn paths(self, dir: Option<&Path>) -> Result<Auth, String> {
        let secret = |s: RawSecret| match s {
            RawSecret::Inline(s) => Secret::Inline(s),
            RawSecret::File { path, .. } => Secret::File(absolute(dir, &path)),
        };
        match self {
            RawAuth::None => Ok(Auth::None),
            RawAuth::OAuth2(o) => {
                let o = *o;
                let client_secret = secret(RawSecret::new(
                    o.client_secret,
                    o.client_secret_file,
                    &["oauth2", "client_secret_file"],
                ));
                Ok(Auth::OAuth2(OAuth2 {
                    client_id: o.client_id.unwrap_or_default(),
                    client_secret,
                    scopes: o.scopes.unwrap_or_default(),
                    token_url: o.token_url.unwrap_or_default(),
                    endpoint_params: o.endpoint_params.unwrap_or_default(),
                    tls: o
                        .tls_config
                        .map(|t| t.resolve(dir))
                        .transpose()?
                        .unwrap_or_default(),
                    proxy_url: proxy_url(o.proxy_url)?,
                }))
            }
            RawAuth::Basic { username, password } => Ok(Auth::Basic {
                username,
                password: secret(password),
            }),
            RawAuth::Authorization {
                scheme,
                credentials,
            } => Ok(Auth::Authorization {
                scheme,
                credentials: secret(credentials),
            }),
        }
    }

    /// Returns the credentials, reading secret files relative to `dir` (the
    /// config file's directory) with surrounding whitespace trimmed, as
    /// Prometheus does. An error names the file field and the reason.
    pub(super) fn resolve(
        self,
        dir: Option<&Path>,
    ) -> Result<HttpAuth, (&'static [&'static str], String)> {
        let read = |secret: RawSecret| match secret {
            RawSecret::Inline(s) => Ok(s),
            RawSecret::File { field, path } => {
                let full = match dir {
                    Some(dir) if Path::new(&path).is_relative() => dir.join(&path),
                    _ => Path::new(&path).to_path_buf(),
                };
                std::fs::read_to_string(&full)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| (field, format!("cannot read {}: {e}", full.display())))
            }
        };
        Ok(match self {
            RawAuth::None => HttpAuth::None,
            RawAuth::OAuth2(o) => match RawAuth::OAuth2(o).paths(dir) {
                Ok(Auth::OAuth2(o)) => HttpAuth::OAuth2(Box::new(o)),
                Ok(_) => unreachable!("oauth2 stays oauth2"),
                Err(reason) => return Err((&["oauth2"], reason)),
            },
            RawAuth::Basic { username, password } => HttpAuth::Basic {
                username,
                password: read(password)?,
            },
            RawAuth::Authorization {
                scheme,
                credentials,
            } => HttpAuth::Authorization {
                scheme,
                credentials: read(credentials)?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasicAuth {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<String>,
}

impl RawBasicAuth {
    /// Basic credentials given inline (Consul SD's `username`/`password`).
    pub(super) fn inline(username: String, password: String) -> Self {
        Self {
            username: Some(username),
            password: Some(password),
            password_file: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorization {
    #[serde(default, rename = "type")]
    scheme: Option<String>,
    #[serde(default)]
    credentials: Option<String>,
    #[serde(default)]
    credentials_file: Option<String>,
}

/// Prometheus's `HTTPClientConfig.Validate`: at most one way to
/// authenticate, `bearer_token*` read as `authorization` of type `Bearer`.
pub(super) fn http_auth(
    basic: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
    oauth2: Option<RawOAuth2>,
    bearer_token: Option<String>,
    bearer_token_file: Option<String>,
) -> Result<RawAuth, String> {
    let bearer = bearer_token.is_some() || bearer_token_file.is_some();
    if bearer_token.is_some() && bearer_token_file.is_some() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    if (basic.is_some() || oauth2.is_some()) && bearer {
        return Err(
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
                .into(),
        );
    }
    if let Some(b) = &basic {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        if set(&b.password) && set(&b.password_file) {
            return Err(
                "at most one of basic_auth password & password_file must be configured".into(),
            );
        }
    }
    if let Some(a) = authorization {
        if bearer {
            return Err(
                "authorization is not compatible with bearer_token & bearer_token_file".into(),
            );
        }
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        if set(&a.credentials) && set(&a.credentials_file) {
            return Err(
                "at most one of authorization credentials & credentials_file must be configured"
                    .into(),
            );
        }
        let scheme = match a.scheme.as_deref().map(str::trim) {
            None | Some("") => "Bearer".to_string(),
            Some(s) => s.to_string(),
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return Err(
                r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into(),
            );
        }
        if basic.is_some() || oauth2.is_some() {
            return Err(
                "at most one of basic_auth, oauth2 & authorization must be configured".into(),
            );
        }
        return Ok(RawAuth::Authorization {
            scheme,
            credentials: RawSecret::new(
                a.credentials,
                a.credentials_file,
                &["authorization", "credentials_file"],
            ),
        });
    }
    if basic.is_some() && oauth2.is_some() {
        return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
    }
    if let Some(o) = oauth2 {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        if !set(&o.client_id) {
            return Err("oauth2 client_id must be configured".into());
        }
        if !set(&o.client_secret) && !set(&o.client_secret_file) {
            return Err(
                "either oauth2 client_secret or client_secret_file must be configured".into(),
            );
        }
        if !set(&o.token_url) {
            return Err("oauth2 token_url must be configured".into());
        }
        if set(&o.client_secret) && set(&o.client_secret_file) {
            return Err(
                "at most one of oauth2 client_secret & client_secret_file must be configured"
                    .into(),
            );
        }
        return Ok(RawAuth::OAuth2(Box::new(o)));
    }
    if let Some(b) = basic {
        return Ok(RawAuth::Basic {
            username: b.username.unwrap_or_default(),
            password: RawSecret::new(
                b.password,
                b.password_file,
                &["basic_auth", "password_file"],
            ),
        });
    }
    if bearer {
        return Ok(RawAuth::Authorization {
            scheme: "Bearer".to_string(),
            credentials: RawSecret::new(bearer_token, bearer_token_file, &["bearer_token_file"]),
        });
    }
    Ok(RawAuth::None)
}

impl std::fmt::Debug for RawBasicAuth {
    /// Leaves the password out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBasicAuth")
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RawAuthorization {
    /// Leaves the credentials out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAuthorization")
            .field("type", &self.scheme)
            .field("credentials_file", &self.credentials_file)
            .finish_non_exhaustive()
    }
}

/// The HTTP client fields a scrape job and a `remote_write` entry both
/// inline (Prometheus's `HTTPClientConfig`), as read.
pub(super) struct RawHttpClient {
    pub basic_auth: Option<RawBasicAuth>,
    pub authorization: Option<RawAuthorization>,
    pub oauth2: Option<RawOAuth2>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<RawTlsConfig>,
    pub proxy_url: Option<String>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

/// Checks and resolves the HTTP client of the entry at `at`: at most one
/// way to authenticate, secret files kept as paths (against the config's
/// directory), the proxy URL and the TLS files. A problem is pushed to
/// `ctx` and that part left at its default.
pub(super) fn http_client_config(
    raw: RawHttpClient,
    at: &[Seg],
    ctx: &mut Context,
) -> HttpClientConfig {
    let field = |name: &'static str| [at, &[Seg::Key(name)]].concat();
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let auth = match http_auth(
        raw.basic_auth,
        raw.authorization,
        raw.oauth2,
        nonempty(raw.bearer_token),
        nonempty(raw.bearer_token_file),
    ) {
        Ok(auth) => match auth.paths(ctx.dir) {
            Ok(auth) => auth,
            Err(reason) => {
                ctx.invalid(&field("oauth2"), reason);
                Auth::None
            }
        },
        Err(reason) => {
            ctx.invalid(at, reason);
            Auth::None
        }
    };
    let proxy_url = proxy_url(raw.proxy_url).unwrap_or_else(|reason| {
        ctx.invalid(&field("proxy_url"), reason);
        None
    });
    let tls = match raw.tls_config.map(|t| t.resolve(ctx.dir)).transpose() {
        Ok(tls) => tls.unwrap_or_default(),
        Err(reason) => {
            ctx.invalid(&field("tls_config"), reason);
            TlsConfig::default()
        }
    };
    HttpClientConfig {
        auth,
        tls,
        follow_redirects: raw.follow_redirects.unwrap_or(true),
        enable_http2: raw.enable_http2.unwrap_or(true),
        proxy_url,
    }
}
