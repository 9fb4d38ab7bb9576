//! The HTTP clients of jobs with their own TLS settings, rebuilt when a
//! CA, certificate or key file changed; the rustls configuration they use,
//! and Go's texts for TLS errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::http_client::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::auth::go_open_error;

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
