//! Targets behind TLS and credentials, for the `http_config` tests:
//! [`Pki`] makes certificates with the `openssl` command (a CA, an
//! untrusted CA, server certificates for loopback, an expired one, one for
//! another name, and a client certificate), and [`SecureTarget`] serves a
//! fixed exposition over HTTPS (optionally requiring a client certificate
//! from the CA) or plain HTTP, answering 401 unless the request carries the
//! expected `Authorization` header.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Certificates in a directory, by name: `<name>.pem` and `<name>.key`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Makes `ca` and `other-ca` (self-signed), and, signed by `ca`:
    /// `server` (valid for 127.0.0.1 and localhost), `localhost-only`,
    /// `expired` (for 127.0.0.1, its validity ended yesterday) and `client`.
    /// `untrusted` is for 127.0.0.1 but signed by `other-ca`.
    pub fn new(dir: &Path) -> Result<Self> {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.ca("ca")?;
        pki.ca("other-ca")?;
        pki.leaf("server", "ca", "IP:127.0.0.1,DNS:localhost", 30)?;
        pki.leaf("localhost-only", "ca", "DNS:localhost", 30)?;
        pki.leaf("expired", "ca", "IP:127.0.0.1", -1)?;
        pki.leaf("client", "ca", "DNS:scraper", 30)?;
        pki.leaf("untrusted", "other-ca", "IP:127.0.0.1", 30)?;
        Ok(pki)
    }

    pub fn pem(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    fn openssl(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .context("running openssl (Debian package openssl)")?;
        if !out.status.success() {
            bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn ca(&self, name: &str) -> Result<()> {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
        ])
    }

    fn leaf(&self, name: &str, ca: &str, san: &str, days: i32) -> Result<()> {
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ])?;
        std::fs::write(
            self.dir.join(format!("{name}.ext")),
            format!("subjectAltName={san}\n"),
        )?;
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            &days.to_string(),
            "-extfile",
            &format!("{name}.ext"),
        ])
    }
}

/// How a [`SecureTarget`] serves.
pub struct TargetTls {
    /// The server certificate's name in the [`Pki`].
    pub cert: String,
    /// Require a client certificate signed by the Pki's `ca`.
    pub require_client_cert: bool,
}

/// A loopback target serving `up_metric 1`; 401 without the expected
/// `Authorization` header (when one is set).
pub struct SecureTarget {
    pub addr: String,
    /// Requests answered 200.
    pub served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SecureTarget {
    /// Starts it: over TLS with `tls`, else plain HTTP.
    pub async fn start(
        pki: &Pki,
        tls: Option<TargetTls>,
        authorization: Option<String>,
    ) -> Result<Self> {
        let body = "# TYPE up_metric gauge\nup_metric 1\n";
        Self::serving(pki, tls, authorization, body, "text/plain; version=0.0.4").await
    }

    /// As [`Self::start`], answering `body` with `content_type` (an HTTP SD
    /// endpoint, say).
    pub async fn serving(
        pki: &Pki,
        tls: Option<TargetTls>,
        authorization: Option<String>,
        body: &str,
        content_type: &str,
    ) -> Result<Self> {
        let page: Arc<(String, String)> = Arc::new((body.to_string(), content_type.to_string()));
        let acceptor = match tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_config(
                pki, &t,
            )?))),
            None => None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, want, counter, page) = (
                    acceptor.clone(),
                    authorization.clone(),
                    counter.clone(),
                    page.clone(),
                );
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(stream) = a.accept(tcp).await {
                                serve(stream, want.as_deref(), &counter, &page).await;
                            }
                        }
                        None => serve(tcp, want.as_deref(), &counter, &page).await,
                    }
                });
            }
        });
        Ok(Self { addr, served, task })
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for SecureTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_config(pki: &Pki, t: &TargetTls) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_file_iter(pki.pem(&t.cert))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(pki.key(&t.cert))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if t.require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(pki.pem("ca"))? {
            roots.add(c?)?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(builder.with_single_cert(certs, key)?)
}

/// Answers one HTTP/1.1 request and closes.
async fn serve<S>(mut stream: S, want: Option<&str>, served: &AtomicU64, page: &(String, String))
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 << 10 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let got = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    let ok = match want {
        None => true,
        Some(w) => got.as_deref() == Some(w),
    };
    let response = if ok {
        served.fetch_add(1, Ordering::Relaxed);
        let (body, content_type) = page;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
