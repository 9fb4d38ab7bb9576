//! `oauth2` in a job's `http_config`: tokens from the client-credentials
//! grant, fetched and kept as golang.org/x/oauth2 does.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::http_client::OAuth2;
use base64::Engine as _;

use super::auth::read_secret;
use super::tls::TlsClients;

/// The tokens of `oauth2` jobs, each kept until 10 s before it expires, as
/// golang.org/x/oauth2 keeps them.
#[derive(Default)]
pub struct OAuth2Tokens {
    /// Per config, the secret the token was granted for and the token: a
    /// lookup borrows the config (no clone on every scrape), and a rotated
    /// secret file fetches a new token.
    tokens: Mutex<HashMap<OAuth2, (String, KeptToken)>>,
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
        let kept = {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.get(o).and_then(|(granted_for, (value, expiry))| {
                let fresh = expiry.is_none_or(|e| std::time::Instant::now() + EXPIRY_DELTA < e);
                (fresh && *granted_for == secret).then(|| value.clone())
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
                    .insert(o.clone(), (secret, (value.clone(), expiry)));
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
