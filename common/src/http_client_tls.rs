//! TLS and credentials of a job's `http_config` (scrapes, and HTTP SD's
//! TLS), as Prometheus 2.42's HTTP client applies them: the CA, client certificate and key files are
//! read at every scrape and the job's client is rebuilt when one changed
//! (Prometheus re-reads the CA per request and the client certificate per
//! handshake), `server_name` replaces the URL's host in verification,
//! `insecure_skip_verify` verifies nothing, and password or credentials
//! files are read per request, trimmed. Errors read as Go's do, so a
//! target's last error matches Prometheus's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::http_client::{Auth, OAuth2, Secret, TlsConfig};
use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The `Authorization` header of a request, files read now; `None` without
/// credentials. An `oauth2` token comes from [`OAuth2Tokens`] instead.
pub fn authorization(auth: &Auth) -> Result<Option<http::HeaderValue>, String> {
    let value = match auth {
        Auth::None | Auth::OAuth2(_) => return Ok(None),
        Auth::Basic { username, password } => {
            let password = read_secret(password, "basic auth password file")?;
            let pair = format!("{username}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Auth::Authorization {
            scheme,
            credentials,
        } => {
            let credentials = read_secret(credentials, "authorization credentials file")?;
            format!("{scheme} {credentials}")
        }
    };
    http::HeaderValue::from_str(&value)
        .map(|mut v| {
            v.set_sensitive(true);
            Some(v)
        })
        .map_err(|_| "net/http: invalid header field value for \"Authorization\"".to_string())
}

/// A secret's value: inline, or the file's content trimmed.
fn read_secret(secret: &Secret, what: &str) -> Result<String, String> {
    match secret {
        Secret::Inline(s) => Ok(s.clone()),
        Secret::Withheld(why) => Err(why.clone()),
        Secret::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                format!(
                    "unable to read {what} {}: {}",
                    path.display(),
                    go_open_error(path, &e)
                )
            }),
    }
}

/// Go's `os.Open` error text.
fn go_open_error(path: &Path, e: &std::io::Error) -> String {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {}: {reason}", path.display())
}

/// The contents of a config's files, as read for one scrape.
#[derive(PartialEq, Eq)]
struct Files {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

impl Files {
    fn read(tls: &TlsConfig) -> Result<Self, String> {
        let read = |p: &Option<std::path::PathBuf>, what: &str| {
            p.as_ref()
                .map(|p| {
                    std::fs::read(p)
                        .map_err(|e| format!("unable to read {what}: {}", go_open_error(p, &e)))
                })
                .transpose()
        };
        Ok(Files {
            ca: read(&tls.ca_file, "CA cert")?,
            cert: read(&tls.cert_file, "client cert")?,
            key: read(&tls.key_file, "client key")?,
        })
    }
}

/// The HTTP clients of jobs with their own settings (a `tls_config`, or
/// `follow_redirects: false`), each with the file contents it was built
/// from.
#[derive(Default)]
pub struct TlsClients {
    built: Mutex<HashMap<ClientKey, (Files, reqwest::Client)>>,
}

/// What makes two jobs' clients differ: TLS, following redirects, HTTP/2,
/// proxy.
type ClientKey = (TlsConfig, bool, bool, Option<String>);

impl TlsClients {
    /// Returns the client for `tls` that follows redirects (at most 10, as
    /// Go's client) or not, offers HTTP/2 over TLS or speaks HTTP/1.1 only,
    /// through `proxy_url` if any, built by `base`; rebuilt when a file's
    /// content changed since.
    pub fn client(
        &self,
        tls: &TlsConfig,
        follow_redirects: bool,
        http2: bool,
        proxy_url: Option<&str>,
        base: impl FnOnce() -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, String> {
        let files = Files::read(tls)?;
        let key = (
            tls.clone(),
            follow_redirects,
            http2,
            proxy_url.map(str::to_string),
        );
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((f, client)) = built.get(&key) {
            if *f == files {
                return Ok(client.clone());
            }
        }
        let policy = if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut builder = base().redirect(policy);
        if !http2 {
            builder = builder.http1_only();
        }
        if let Some(url) = proxy_url {
            let proxy = reqwest::Proxy::all(url).map_err(|e| format!("proxy_url {url:?}: {e}"))?;
            builder = builder.proxy(proxy);
        }
        if *tls != TlsConfig::default() {
            let mut config = client_config(tls, &files)?;
            // What Go's transport offers: h2 only when HTTP/2 is on.
            if http2 {
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            }
            builder = builder.use_preconfigured_tls(config);
        }
        let client = builder
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        built.insert(key, (files, client.clone()));
        Ok(client)
    }
}

/// The rustls configuration of `tls` with the file contents `files`.
fn client_config(tls: &TlsConfig, files: &Files) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        Some(v) if v >= 0x0304 => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(NoVerification(provider.clone()))
    } else {
        let mut roots = RootCertStore::empty();
        match (&files.ca, &tls.ca_file) {
            (Some(pem), Some(path)) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let added = cert.ok().and_then(|c| roots.add(c).ok());
                    if added.is_none() {
                        return Err(format!(
                            "unable to use specified CA cert {}",
                            path.display()
                        ));
                    }
                }
                if roots.is_empty() {
                    return Err(format!(
                        "unable to use specified CA cert {}",
                        path.display()
                    ));
                }
            }
            _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
        if tls.server_name.is_empty() {
            inner
        } else {
            let name = ServerName::try_from(tls.server_name.clone())
                .map_err(|e| format!("invalid server_name {:?}: {e}", tls.server_name))?;
            Arc::new(Renamed { inner, name })
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&files.cert, &files.key, &tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key), Some(cert_path), Some(key_path)) => {
            let unusable = |e: String| {
                format!(
                    "unable to use specified client cert ({}) & key ({}): {e}",
                    cert_path.display(),
                    key_path.display()
                )
            };
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unusable(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| unusable(e.to_string()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| unusable(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Verifies a server's certificate for `name` instead of the URL's host
/// (`server_name`).
#[derive(Debug)]
struct Renamed {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Renamed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate is accepted; handshake
/// signatures are still checked, as Go does.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Go's text for a TLS failure, when `e` is one: certificate verification
/// (`x509: ...`) and alerts from the server (`remote error: tls: ...`).
pub fn go_tls_error(e: &rustls::Error) -> Option<String> {
    use rustls::CertificateError as C;
    Some(match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
            C::NotValidForNameContext {
                expected,
                presented,
            } => {
                let expected = match expected {
                    ServerName::DnsName(d) => d.as_ref().to_string(),
                    ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
                    _ => String::new(),
                };
                let is_ip = expected.parse::<std::net::IpAddr>().is_ok();
                let ips: Vec<&String> = presented
                    .iter()
                    .filter(|p| p.parse::<std::net::IpAddr>().is_ok())
                    .collect();
                if is_ip && ips.is_empty() {
                    format!("x509: cannot validate certificate for {expected} because it doesn't contain any IP SANs")
                } else {
                    format!(
                        "x509: certificate is valid for {}, not {expected}",
                        presented.join(", ")
                    )
                }
            }
            C::NotValidForName => "x509: certificate is not valid for this name".into(),
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                "x509: certificate has expired or is not yet valid".into()
            }
            other => format!("x509: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => {
            let name = match alert {
                rustls::AlertDescription::CertificateRequired => "certificate required".into(),
                rustls::AlertDescription::BadCertificate => "bad certificate".into(),
                rustls::AlertDescription::UnknownCA => "unknown certificate authority".into(),
                rustls::AlertDescription::HandshakeFailure => "handshake failure".into(),
                rustls::AlertDescription::ProtocolVersion => {
                    "protocol version not supported".into()
                }
                other => format!("{other:?}").to_lowercase(),
            };
            format!("remote error: tls: {name}")
        }
        _ => return None,
    })
}

/// The rustls error `e` is, or holds: rustls errors arrive inside an
/// `io::Error` (whose `source` skips them) or a boxed error.
pub fn as_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io.get_ref().and_then(|inner| as_rustls(inner));
    }
    None
}

/// The tokens of `oauth2` jobs, each kept until 10 s before it expires, as
/// golang.org/x/oauth2 keeps them.
#[derive(Default)]
pub struct OAuth2Tokens {
    tokens: Mutex<HashMap<(OAuth2, String), KeptToken>>,
    clients: TlsClients,
}

/// A token's header value (`<type> <token>`) and when it expires.
type KeptToken = (String, Option<std::time::Instant>);

/// How long before its expiry a token is fetched again.
const EXPIRY_DELTA: std::time::Duration = std::time::Duration::from_secs(10);

impl OAuth2Tokens {
    /// The `Authorization` header for `o`: a kept token, or a new one from
    /// its token URL (requests built from `base`). Errors read as
    /// Prometheus's (`oauth2: cannot fetch token: 401 Unauthorized ...`).
    pub async fn authorization(
        &self,
        o: &OAuth2,
        base: impl FnOnce() -> reqwest::ClientBuilder,
    ) -> Result<http::HeaderValue, String> {
        let secret = read_secret(&o.client_secret, "oauth2 client secret file")?;
        let key = (o.clone(), secret.clone());
        let kept = {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.get(&key).and_then(|(value, expiry)| {
                let fresh = expiry.is_none_or(|e| std::time::Instant::now() + EXPIRY_DELTA < e);
                fresh.then(|| value.clone())
            })
        };
        let value = match kept {
            Some(v) => v,
            None => {
                let client =
                    self.clients
                        .client(&o.tls, true, true, o.proxy_url.as_deref(), base)?;
                let (value, expiry) = fetch_token(&client, o, &secret).await?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (value.clone(), expiry));
                value
            }
        };
        let mut header = http::HeaderValue::from_str(&value)
            .map_err(|_| "oauth2: the token is not a valid header value".to_string())?;
        header.set_sensitive(true);
        Ok(header)
    }
}

/// Makes the client-credentials grant; returns `<type> <token>` and when it
/// expires.
async fn fetch_token(
    client: &reqwest::Client,
    o: &OAuth2,
    secret: &str,
) -> Result<(String, Option<std::time::Instant>), String> {
    let mut form: Vec<(String, String)> = vec![("grant_type".into(), "client_credentials".into())];
    if !o.scopes.is_empty() {
        form.push(("scope".into(), o.scopes.join(" ")));
    }
    for (k, v) in &o.endpoint_params {
        form.push((k.clone(), v.clone()));
    }
    let escape = |s: &str| form_urlencoded_byte_serialize(s);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        escape(&o.client_id),
        escape(secret)
    ));
    let started = std::time::Instant::now();
    // As x/oauth2's auto-detection: the credentials in a Basic header
    // first, then, if that is refused, in the form body.
    let mut in_body = form.clone();
    in_body.push(("client_id".into(), o.client_id.clone()));
    in_body.push(("client_secret".into(), secret.to_string()));
    let mut answer = None;
    for (header, form) in [(Some(format!("Basic {basic}")), &form), (None, &in_body)] {
        let mut request = client.post(&o.token_url).form(form);
        if let Some(h) = header {
            request = request.header(http::header::AUTHORIZATION, h);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("oauth2: cannot fetch token: {e}"))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("oauth2: cannot fetch token: {e}"))?;
        let done = status.is_success();
        answer = Some((status, content_type, body));
        if done {
            break;
        }
    }
    let Some((status, content_type, body)) = answer else {
        unreachable!("two attempts were made")
    };
    if !status.is_success() {
        return Err(format!(
            "oauth2: cannot fetch token: {} {}\nResponse: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            String::from_utf8_lossy(&body)
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        token_type: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    // x/oauth2 reads a form-encoded answer for these types, JSON otherwise.
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let answer: Answer = if matches!(media, "application/x-www-form-urlencoded" | "text/plain") {
        let pairs: std::collections::HashMap<String, String> = String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect();
        Answer {
            access_token: pairs.get("access_token").cloned().unwrap_or_default(),
            token_type: pairs.get("token_type").cloned().unwrap_or_default(),
            expires_in: pairs
                .get("expires_in")
                .map(|v| serde_json::Value::String(v.clone())),
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| format!("oauth2: cannot parse json: {e}"))?
    };
    if answer.access_token.is_empty() {
        return Err("oauth2: server response missing access_token".into());
    }
    // x/oauth2's Token.Type(): a few types are spelled canonically.
    let kind = match answer.token_type.to_ascii_lowercase().as_str() {
        "" | "bearer" => "Bearer".to_string(),
        "mac" => "MAC".to_string(),
        "basic" => "Basic".to_string(),
        _ => answer.token_type.clone(),
    };
    let seconds = match answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let expiry = seconds
        .filter(|s| *s > 0)
        .map(|s| started + std::time::Duration::from_secs(s));
    Ok((format!("{kind} {}", answer.access_token), expiry))
}

/// Go's `url.QueryEscape`, as x/oauth2 escapes the client id and secret of
/// its Basic header.
fn form_urlencoded_byte_serialize(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `+` and `%XX` of a form-encoded value.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], decoded) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
