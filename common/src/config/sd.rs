//! `http_sd_configs` and `dns_sd_configs` as serde reads them, with the
//! checks Prometheus makes while unmarshalling (so their errors carry a line),
//! and the resolution of HTTP credentials, which reads files.
//!
//! Prometheus 2.42 checks an HTTP SD URL with Go's `url.Parse`;
//! [`check_http_sd_url`] follows that parser's rules so the same URLs pass.
//! It does not check the HTTP client settings of an HTTP SD config (later
//! versions do, and 2.42 does for jobs); scrapegrid applies the job checks
//! there too rather than guess which of two credentials wins.

use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;

use super::http_client::{
    http_auth, RawAuth, RawAuthorization, RawBasicAuth, RawOAuth2, RawTlsConfig,
};
use super::raw::{CheckedMap, Unsupported};
use super::DnsRecordType;
use crate::duration::serde_duration_opt;

/// An `http_sd_configs` entry, checked; credentials files are not read yet.
#[derive(Debug)]
pub(super) struct RawHttpSdConfig {
    pub url: String,
    pub refresh_interval: Option<Duration>,
    pub auth: RawAuth,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub tls_config: Option<RawTlsConfig>,
    pub proxy_url: Option<String>,
}

/// Declares the raw fields of an SD config: its own, each `#[serde(default)]`,
/// then the HTTP client settings every HTTP-based SD config shares
/// (`basic_auth`, `authorization`, `bearer_token(_file)`, `follow_redirects`,
/// `enable_http2`, `oauth2`, `tls_config`, `proxy_url`;
/// `proxy_connect_header` is refused as not supported). The caller imports
/// `RawBasicAuth`, `RawAuthorization`, `RawOAuth2`, `RawTlsConfig` and
/// `Unsupported`.
macro_rules! raw_sd_fields {
    ($name:ident { $($(#[$m:meta])* $field:ident: $ty:ty,)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $(
                #[serde(default)]
                $(#[$m])*
                $field: $ty,
            )*
            #[serde(default)]
            basic_auth: Option<RawBasicAuth>,
            #[serde(default)]
            authorization: Option<RawAuthorization>,
            #[serde(default)]
            bearer_token: Option<String>,
            #[serde(default)]
            bearer_token_file: Option<String>,
            #[serde(default)]
            follow_redirects: Option<bool>,
            #[serde(default)]
            enable_http2: Option<bool>,
            #[serde(default)]
            oauth2: Option<RawOAuth2>,
            #[serde(default)]
            tls_config: Option<RawTlsConfig>,
            #[serde(default)]
            proxy_url: Option<String>,
            #[serde(default)]
            #[allow(dead_code)]
            proxy_connect_header: Option<Unsupported>,
        }
    };
}
pub(super) use raw_sd_fields;

raw_sd_fields!(RawHttpSdFields {
    url: Option<String>,
    #[serde(with = "serde_duration_opt")]
    refresh_interval: Option<Duration>,
});

impl<'de> Deserialize<'de> for RawHttpSdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(|raw: RawHttpSdFields| {
            let url = raw.url.unwrap_or_default();
            if url.is_empty() {
                return Err("URL is missing".to_string());
            }
            check_http_sd_url(&url)?;
            Ok(RawHttpSdConfig {
                url,
                refresh_interval: raw.refresh_interval,
                auth: http_auth(
                    raw.basic_auth,
                    raw.authorization,
                    raw.oauth2,
                    raw.bearer_token.filter(|t| !t.is_empty()),
                    raw.bearer_token_file.filter(|t| !t.is_empty()),
                )?,
                follow_redirects: raw.follow_redirects,
                enable_http2: raw.enable_http2,
                tls_config: raw.tls_config,
                proxy_url: raw.proxy_url,
            })
        }))
    }
}

/// Checks an HTTP SD URL as Prometheus 2.42 does: Go's `url.Parse` must
/// accept it, its scheme must be `http` or `https` (any case) and it must
/// name a host. Errors read like Go's (`parse "http://x y/": invalid
/// character " " in host name`).
pub(super) fn check_http_sd_url(raw: &str) -> Result<(), String> {
    let (url, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let go_err = |u: &str, e: String| format!("parse {u:?}: {e}");
    let (scheme, host) = go_parse(url).map_err(|e| go_err(url, e))?;
    if !fragment.is_empty() {
        unescape(fragment, false).map_err(|e| go_err(raw, e))?;
    }
    if scheme != "http" && scheme != "https" {
        return Err("URL scheme must be 'http' or 'https'".into());
    }
    if host.is_none_or(str::is_empty) {
        return Err("host is missing in URL".into());
    }
    Ok(())
}

/// Go's `url.parse(rawURL, false)`: returns the lowercased scheme and the
/// host, if the URL has an authority.
fn go_parse(url: &str) -> Result<(String, Option<&str>), String> {
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let (scheme, rest) = go_scheme(url)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = match rest.strip_suffix('?') {
        Some(r) if !r.contains('?') => r,
        _ => rest.split_once('?').map_or(rest, |(r, _)| r),
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URL such as `http:x`: no host.
            return Ok((scheme, None));
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut host = None;
    let mut path = rest;
    if let Some(after) = rest.strip_prefix("//").filter(|_| {
        // Go reads `///x` without a scheme as a path.
        !scheme.is_empty() || !rest.starts_with("///")
    }) {
        let (authority, p) = after.find('/').map_or((after, ""), |i| after.split_at(i));
        path = p;
        host = Some(go_authority(authority)?);
    }
    unescape(path, false)?;
    Ok((scheme, host))
}

/// Go's `getScheme`.
fn go_scheme(url: &str) -> Result<(&str, &str), String> {
    for (i, c) in url.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&url[..i], &url[i + 1..])),
            _ => return Ok(("", url)),
        }
    }
    Ok(("", url))
}

/// Go's `parseAuthority`: returns the host (with its port).
fn go_authority(authority: &str) -> Result<&str, String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let port_ok = |p: &str| {
        p.is_empty()
            || p.strip_prefix(':')
                .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
    };
    if host.starts_with('[') {
        let Some(end) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        if !port_ok(&host[end + 1..]) {
            return Err(format!("invalid port {:?} after host", &host[end + 1..]));
        }
    } else if let Some(i) = host.rfind(':') {
        if !port_ok(&host[i..]) {
            return Err(format!("invalid port {:?} after host", &host[i..]));
        }
    }
    unescape(host, true)?;
    if let Some(u) = userinfo {
        let valid = u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c));
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        unescape(u, false)?;
    }
    Ok(host)
}

/// Go's `unescape`, as far as it fails: bad `%` escapes anywhere, and in a
/// host the characters that must not appear there.
fn unescape(s: &str, host: bool) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
            if !hex(i + 1) || !hex(i + 2) {
                return Err(format!(
                    "invalid URL escape {:?}",
                    &s[i..(i + 3).min(s.len())]
                ));
            }
            // Go allows only %25 among the escapes of bytes below 0x80 in a host.
            if host && b[i + 1] < b'8' && &s[i..i + 3] != "%25" {
                return Err(format!("invalid URL escape {:?}", &s[i..i + 3]));
            }
            i += 3;
            continue;
        }
        let c = b[i];
        let host_ok =
            c >= 0x80 || c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c);
        if host && !host_ok {
            return Err(format!(
                "invalid character {:?} in host name",
                (c as char).to_string()
            ));
        }
        i += 1;
    }
    Ok(())
}

/// A `dns_sd_configs` entry, checked as Prometheus checks it.
#[derive(Debug)]
pub(super) struct RawDnsSdConfig {
    pub names: Vec<String>,
    pub record_type: DnsRecordType,
    /// Range-checked; 0 for SRV, whose port comes from the records.
    pub port: u16,
    pub refresh_interval: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDnsSdFields {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default, rename = "type")]
    record_type: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default, with = "serde_duration_opt")]
    refresh_interval: Option<Duration>,
}

impl<'de> Deserialize<'de> for RawDnsSdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::new(|raw: RawDnsSdFields| {
            let names = raw.names.unwrap_or_default();
            if names.is_empty() {
                return Err("DNS-SD config must contain at least one SRV record name".to_string());
            }
            let written = raw.record_type.unwrap_or_else(|| "SRV".to_string());
            let record_type = match written.to_ascii_uppercase().as_str() {
                "SRV" => DnsRecordType::Srv,
                "A" => DnsRecordType::A,
                "AAAA" => DnsRecordType::Aaaa,
                "MX" => DnsRecordType::Mx,
                _ => return Err(format!("invalid DNS-SD records type {written:?}")),
            };
            let port = match (record_type, raw.port.unwrap_or(0)) {
                // Prometheus ignores the port of SRV lookups.
                (DnsRecordType::Srv, _) => 0,
                (_, 0) => {
                    return Err(
                        "a port is required in DNS-SD configs for all record types except SRV"
                            .to_string(),
                    )
                }
                (_, p) => u16::try_from(p)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("port {p} is not between 1 and 65535"))?,
            };
            Ok(RawDnsSdConfig {
                names,
                record_type,
                port,
                refresh_interval: raw.refresh_interval,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::check_http_sd_url;

    /// Verdicts of Prometheus 2.42 (`promtool check config`) on these URLs.
    #[test]
    fn http_sd_urls_follow_go_url_parse() {
        for ok in [
            "http://x/sd",
            "HTTPS://x:8080/a?b=c#d",
            "http://u:p@x/",
            "http://[::1]:80/",
            "http://x",
            "http://x:/",
            "http://x/a%20b",
            "http://x/?q=%zz",
            "http://é.example/",
        ] {
            assert_eq!(check_http_sd_url(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            ("ftp://x/", "URL scheme must be 'http' or 'https'"),
            ("x/y", "URL scheme must be 'http' or 'https'"),
            ("http:///x", "host is missing in URL"),
            ("http:x", "host is missing in URL"),
            (
                "http://x:port/",
                r#"parse "http://x:port/": invalid port ":port" after host"#,
            ),
            (
                "http://x y/",
                r#"parse "http://x y/": invalid character " " in host name"#,
            ),
            (
                "http://x/%zz",
                r#"parse "http://x/%zz": invalid URL escape "%zz""#,
            ),
            ("http://x/#%z", r#"invalid URL escape "%z""#),
            ("http://[::1/", "missing ']' in host"),
            ("http://a b@x/", "net/url: invalid userinfo"),
            ("http://x/\n", "invalid control character"),
            (":x", "missing protocol scheme"),
            ("1a:b/c", "first path segment in URL cannot contain colon"),
        ] {
            let err = check_http_sd_url(bad).expect_err(bad);
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
