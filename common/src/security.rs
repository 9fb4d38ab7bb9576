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
