//! Security between scrapegrid's components: TLS and mutual TLS on the gRPC
//! servers and clients, and the shared tokens that admit scrapers to the
//! control plane (`--join-token-file`), writers to the storage node
//! (`--write-token-file`) and readers of its data (`--read-token-file`). Everything is configured by flags; without them
//! the components talk plain gRPC, as the local demo on loopback does.
//!
//! A token travels as `authorization: Bearer <token>` metadata, is compared
//! in constant time, and never shows in `Debug` output or logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::response::IntoResponse;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// Reads a flag's file; the error names the flag and the reason.
fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// A gRPC server's TLS: its certificate and key, and, for mutual TLS, the
/// CA that client certificates must chain to.
#[derive(Clone, Debug, Default)]
pub struct ServerTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// The tonic configuration; `None` without a certificate (plain gRPC).
    /// A certificate without a key, or a client CA without a certificate,
    /// is an error.
    pub fn tonic(&self) -> Result<Option<ServerTlsConfig>, String> {
        let (cert, key) = match (&self.cert, &self.key) {
            (None, None) if self.client_ca.is_none() => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                return Err("--grpc-client-ca needs --grpc-tls-cert and --grpc-tls-key".into())
            }
            _ => return Err("--grpc-tls-cert and --grpc-tls-key go together".into()),
        };
        let identity =
            Identity::from_pem(read("--grpc-tls-cert", cert)?, read("--grpc-tls-key", key)?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read("--grpc-client-ca", ca)?));
        }
        Ok(Some(config))
    }
}

/// A shared secret, read from a file (surrounding whitespace trimmed).
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Token {
    /// Reads the token of `flag` from `path`; an empty file is an error.
    pub fn from_file(flag: &str, path: &Path) -> Result<Self, String> {
        let bytes = read(flag, path)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{flag} {}: not UTF-8", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{flag} {}: the file is empty", path.display()));
        }
        Ok(Token(token.into()))
    }

    /// A fresh random token (32 bytes from the system's random source, in
    /// hex), for a secret two parts of one process share.
    pub fn random() -> Result<Self, String> {
        use std::io::Read;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| format!("reading /dev/urandom: {e}"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Token(hex.into()))
    }

    /// Whether `presented` equals the token, in time independent of where
    /// they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let want = self.0.as_bytes();
        want.len() == presented.len()
            && want
                .iter()
                .zip(presented)
                .fold(0u8, |d, (a, b)| d | (a ^ b))
                == 0
    }
}

/// A tonic interceptor that admits only requests carrying `token` as a
/// bearer token; with `None` it admits everything.
pub fn require_token(
    token: Option<Token>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        let Some(token) = &token else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        match presented {
            Some(p) if token.matches(p) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid token")),
            None => Err(Status::unauthenticated("a bearer token is required")),
        }
    }
}

/// How a component reaches the others: the CA it trusts for `https://`
/// endpoints (the system's roots without one), its own certificate for
/// mutual TLS, and the token it presents.
#[derive(Clone, Debug, Default)]
pub struct ClientSecurity {
    ca: Option<Certificate>,
    identity: Option<Identity>,
    token: Option<Token>,
}

impl ClientSecurity {
    /// Reads the files of the client flags (`--tls-ca`, `--tls-cert`,
    /// `--tls-key`).
    pub fn new(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
        token: Option<Token>,
    ) -> Result<Self, String> {
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some(Identity::from_pem(
                read("--tls-cert", c)?,
                read("--tls-key", k)?,
            )),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        Ok(Self {
            ca: ca
                .map(|p| read("--tls-ca", p))
                .transpose()?
                .map(Certificate::from_pem),
            identity,
            token,
        })
    }

    /// The same, presenting `token` instead.
    pub fn with_token(&self, token: Option<Token>) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    /// An endpoint for `url`, with TLS when its scheme is `https`.
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, String> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("invalid endpoint {url:?}: {e}"))?;
        if !url.starts_with("https://") {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(ca.clone()),
            None => tls.with_webpki_roots(),
        };
        if let Some(identity) = &self.identity {
            tls = tls.identity(identity.clone());
        }
        endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS for {url:?}: {e}"))
    }

    /// Adds the token, if any, to a request's metadata.
    pub fn authorize<T>(&self, request: &mut Request<T>) {
        if let Some(token) = &self.token {
            if let Ok(mut value) =
                format!("Bearer {}", token.0).parse::<tonic::metadata::AsciiMetadataValue>()
            {
                value.set_sensitive(true);
                request.metadata_mut().insert("authorization", value);
            }
        }
    }
}

/// An HTTP listener's TLS: certificate, key and, for mutual TLS, the CA of
/// client certificates (`--http-tls-cert`, `--http-tls-key`,
/// `--http-client-ca`).
#[derive(Clone, Debug, Default)]
pub struct HttpTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

impl HttpTls {
    /// The rustls configuration; `None` without a certificate (plain HTTP).
    pub fn rustls(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (cert, key) = match (&self.cert, &self.key) {
            (None, None) if self.client_ca.is_none() => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                return Err("--http-client-ca needs --http-tls-cert and --http-tls-key".into())
            }
            _ => return Err("--http-tls-cert and --http-tls-key go together".into()),
        };
        let certs = CertificateDer::pem_slice_iter(&read("--http-tls-cert", cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--http-tls-cert {}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&read("--http-tls-key", key)?)
            .map_err(|e| format!("--http-tls-key {}: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(&read("--http-client-ca", ca)?) {
                    let c = c.map_err(|e| format!("--http-client-ca {}: {e}", ca.display()))?;
                    roots
                        .add(c)
                        .map_err(|e| format!("--http-client-ca {}: {e}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| format!("--http-client-ca {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("--http-tls-cert/--http-tls-key: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

/// Serves `app` on `listener` until `shutdown`: plain HTTP, or HTTPS with
/// `tls`. A connection whose handshake fails is closed and logged at debug.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::debug!(%error, "accepting an HTTPS connection failed");
                    continue;
                }
            },
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(error) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let served =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "HTTPS connection ended with an error");
            }
        });
    }
}

/// Refuses (403) a request that changes something (not GET or HEAD) when
/// a browser sent it from another site: its `Sec-Fetch-Site` is
/// `cross-site`, or its `Origin` names another host than `Host`. Without
/// a token, any page a user opens could otherwise POST a drain or a
/// reload. Clients that are not browsers send neither header.
pub async fn refuse_cross_site(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let foreign_origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|origin| {
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            Some(authority) != host
        });
    if cross_site || foreign_origin {
        return (
            axum::http::StatusCode::FORBIDDEN,
            "Forbidden: a request from another site\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Admits a request carrying the token as `Authorization: Bearer <token>`
/// (everything without a token); 401 otherwise.
pub async fn require_bearer(
    axum::extract::State(token): axum::extract::State<Option<Token>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    let admitted = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|p| token.matches(p));
    if admitted {
        next.run(request).await
    } else {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "Unauthorized\n",
        )
            .into_response()
    }
}
