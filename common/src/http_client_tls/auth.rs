//! Credentials of a job's `http_config`: the `Authorization` header, and
//! secrets read from their files per request, with Go's error texts.

use std::path::Path;

use crate::config::http_client::{Auth, Secret};
use base64::Engine as _;

/// The `Authorization` header of a request, files read now; `None` without
/// credentials. An `oauth2` token comes from
/// [`OAuth2Tokens`](super::OAuth2Tokens) instead.
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
pub(super) fn read_secret(secret: &Secret, what: &str) -> Result<String, String> {
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
pub(super) fn go_open_error(path: &Path, e: &std::io::Error) -> String {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {}: {reason}", path.display())
}
