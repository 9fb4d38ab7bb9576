//! TLS and credentials of a job's `http_config` (scrapes, and HTTP SD's
//! TLS), as Prometheus 2.42's HTTP client applies them: the CA, client certificate and key files are
//! read at every scrape and the job's client is rebuilt when one changed
//! (Prometheus re-reads the CA per request and the client certificate per
//! handshake), `server_name` replaces the URL's host in verification,
//! `insecure_skip_verify` verifies nothing, and password or credentials
//! files are read per request, trimmed. Errors read as Go's do, so a
//! target's last error matches Prometheus's.
//!
//! - `auth`: the `Authorization` header of `basic_auth` and `authorization`
//!   ([`authorization`]), and secrets read from their files.
//! - `tls`: the per-job HTTP clients, rebuilt when a TLS file changed
//!   ([`TlsClients`]), their rustls configuration with the `server_name` and
//!   `insecure_skip_verify` verifiers, and Go's texts for TLS errors
//!   ([`go_tls_error`], [`as_rustls`]).
//! - `oauth2`: `oauth2` tokens from the client-credentials grant, kept until
//!   shortly before they expire ([`OAuth2Tokens`]), and the form encoding
//!   golang.org/x/oauth2 uses.

mod auth;
mod oauth2;
mod tls;

pub use auth::authorization;
pub use oauth2::OAuth2Tokens;
pub use tls::{as_rustls, go_tls_error, TlsClients};
