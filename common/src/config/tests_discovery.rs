//! `http_sd_configs` and `dns_sd_configs`: tables checked against
//! Prometheus 2.42 by `tests::tables_agree_with_promtool`, defaults,
//! credentials, and where the errors point.

use std::time::Duration;

use super::*;

const FILE: &str = "prometheus.yml";

fn load(text: &str) -> Config {
    load_str(text, FILE).unwrap_or_else(|e| panic!("{text}\n=> {e}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// SD configs Prometheus 2.42 accepts and scrapegrid accepts too.
pub(super) const SD_ACCEPTED: &[&str] = &[
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/sd'}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'HTTPS://x:8443/sd?a=b#c', refresh_interval: 5m}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://u:p@[::1]:80/'}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', refresh_interval: 0s}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', basic_auth: {username: u, password: p}}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', basic_auth: {}}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', basic_auth: null, tls_config: null}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'https://x/', tls_config: {ca_file: ca.pem, server_name: x, insecure_skip_verify: false}}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'https://x/', tls_config: {}}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', proxy_url: 'http://p/'}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', authorization: {credentials: c}}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', authorization: {type: Token, credentials: c}}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', bearer_token: t}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', follow_redirects: false, enable_http2: false}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/'}, {url: 'http://y/'}], static_configs: [{targets: ['s:1']}]}]",
    "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', oauth2: {client_id: a, client_secret: s, token_url: 'http://t/'}}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [_x._tcp.example.org]}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], type: a, port: 1}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], type: AAAA, port: 9100, refresh_interval: 1m}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], type: mx, port: 25}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], type: srv, port: 80}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], type: SRV, port: 70000}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], refresh_interval: 0s}]}]",
    "scrape_configs: [{job_name: a, dns_sd_configs: [{names: ['']}]}]",
];

/// SD configs both reject, and what scrapegrid's error must say.
pub(super) const SD_REJECTED: &[(&str, &[&str])] = &[
    (
        "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - refresh_interval: 1m\n",
        &[r#"prometheus.yml: scrape_configs[0] (job "h"): http_sd_configs[0]: URL is missing at line 4"#],
    ),
    (
        "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: ftp://x/\n",
        &[r#"(job "h"): http_sd_configs[0]: URL scheme must be 'http' or 'https' at line 4"#],
    ),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'x/y'}]}]", &["URL scheme must be 'http' or 'https'"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http:///x'}]}]", &["http_sd_configs[0]: host is missing in URL"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http:x'}]}]", &["host is missing in URL"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x:port/'}]}]", &[r#"parse "http://x:port/": invalid port ":port" after host"#]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x y/'}]}]", &[r#"invalid character " " in host name"#]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/%zz'}]}]", &[r#"invalid URL escape "%zz""#]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', refresh_interval: 1x}]}]", &["http_sd_configs[0].refresh_interval: not a valid duration string"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', no_proxy: x}]}]", &[r#"(job "h"): http_sd_configs[0]: unknown field "no_proxy""#]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', basic_auth: {username_file: f}}]}]", &[r#"http_sd_configs[0].basic_auth: unknown field "username_file""#]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', authorization: {credential: c}}]}]", &[r#"http_sd_configs[0].authorization: unknown field "credential""#]),
    (
        "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      -\n",
        &[r#"(job "h"): http_sd_configs[0]: empty or null section in http_sd_configs"#],
    ),
    (
        "scrape_configs:\n  - job_name: d\n    dns_sd_configs:\n      - names: []\n",
        &[r#"prometheus.yml: scrape_configs[0] (job "d"): dns_sd_configs[0]: DNS-SD config must contain at least one SRV record name at line 4"#],
    ),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{type: A, port: 1}]}]", &["DNS-SD config must contain at least one SRV record name"]),
    (
        "scrape_configs:\n  - job_name: d\n    dns_sd_configs:\n      - names: [x]\n        type: A\n",
        &[r#"(job "d"): dns_sd_configs[0]: a port is required in DNS-SD configs for all record types except SRV at line 4"#],
    ),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], type: mx, port: 0}]}]", &["a port is required in DNS-SD configs"]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], type: NS, port: 1}]}]", &[r#"dns_sd_configs[0]: invalid DNS-SD records type "NS""#]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], type: '', port: 1}]}]", &[r#"invalid DNS-SD records type """#]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], type: ' A', port: 1}]}]", &[r#"invalid DNS-SD records type " A""#]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], port: '80'}]}]", &["dns_sd_configs[0].port: invalid type"]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: x}]}]", &["dns_sd_configs[0].names: invalid type"]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], foo: 1}]}]", &[r#"(job "d"): dns_sd_configs[0]: unknown field "foo""#]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [null]}]", &["dns_sd_configs[0]: empty or null section in dns_sd_configs"]),
    // Null entries of the older lists, which scrapegrid used to skip.
    ("scrape_configs: [{job_name: f, file_sd_configs: [null]}]", &[r#"(job "f"): file_sd_configs[0]: empty or null section in file_sd_configs"#]),
    ("scrape_configs: [{job_name: s, static_configs: [null]}]", &["static_configs[0]: empty or null section in static_configs"]),
];

/// SD configs Prometheus 2.42 accepts and scrapegrid rejects on purpose.
pub(super) const SD_REJECTED_ONLY_BY_SCRAPEGRID: &[(&str, &[&str])] = &[
    // Prometheus 2.42 fails at runtime (the HTTP client is not built);
    // scrapegrid refuses the config.
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'https://x/', tls_config: {cert_file: c.pem}}]}]", &[r#"http_sd_configs[0].tls_config: client cert file "c.pem" specified without client key file"#]),
    // HTTP client features scrapegrid does not implement yet.
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', proxy_connect_header: {a: [b]}}]}]", &[r#""proxy_connect_header" is a Prometheus field"#]),
    // 2.42 does not validate an HTTP SD's client settings (it does a job's,
    // and later versions do both); scrapegrid refuses ambiguous credentials.
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', basic_auth: {password: p, password_file: f}}]}]", &["http_sd_configs[0]: at most one of basic_auth password & password_file must be configured"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', authorization: {credentials: c, credentials_file: f}}]}]", &["at most one of authorization credentials & credentials_file must be configured"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', authorization: {type: Basic, credentials: c}}]}]", &[r#"authorization type cannot be set to "basic", use "basic_auth" instead"#]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', authorization: {}, basic_auth: {}}]}]", &["at most one of basic_auth, oauth2 & authorization must be configured"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', authorization: {}, bearer_token: t}]}]", &["authorization is not compatible with bearer_token & bearer_token_file"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', bearer_token: t, bearer_token_file: f}]}]", &["at most one of bearer_token & bearer_token_file must be configured"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', bearer_token: t, basic_auth: {}}]}]", &["at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"]),
    // Credentials files are read at load time; Prometheus reads them per request.
    (
        "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: http://x/\n        basic_auth:\n          password_file: /nonexistent/scrapegrid-pw\n",
        &[r#"(job "h"): http_sd_configs[0].basic_auth.password_file: cannot read /nonexistent/scrapegrid-pw: "#, "at line 6 column 26"],
    ),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', authorization: {credentials_file: /nonexistent/c}}]}]", &["http_sd_configs[0].authorization.credentials_file: cannot read /nonexistent/c"]),
    ("scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://x/', bearer_token_file: /nonexistent/t}]}]", &["http_sd_configs[0].bearer_token_file: cannot read /nonexistent/t"]),
    // A port outside 1..65535 for an A lookup: Go takes any non-zero int.
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], type: A, port: -1}]}]", &["dns_sd_configs[0]: port -1 is not between 1 and 65535"]),
    ("scrape_configs: [{job_name: d, dns_sd_configs: [{names: [x], type: A, port: 70000}]}]", &["port 70000 is not between 1 and 65535"]),
];

#[test]
fn sd_tables_accept_and_reject() {
    let mut failures = Vec::new();
    for yaml in SD_ACCEPTED {
        if let Err(e) = load_str(yaml, FILE) {
            failures.push(format!("{yaml}\n rejected: {e}"));
        }
    }
    for (yaml, wants) in SD_REJECTED.iter().chain(SD_REJECTED_ONLY_BY_SCRAPEGRID) {
        let err = match load_str(yaml, FILE) {
            Ok(_) => {
                failures.push(format!("{yaml}\n accepted"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        for want in *wants {
            if !err.contains(want) {
                failures.push(format!("{yaml}\n got: {err}\nwant: {want}"));
            }
        }
        if !err.starts_with("prometheus.yml: scrape_configs[0] (job ") {
            failures.push(format!("{yaml}\n badly formed: {err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn fills_in_sd_defaults() {
    let c = load(
        "scrape_configs:\n  - job_name: a\n    http_sd_configs: [{url: 'http://sd:8080/targets'}]\n    \
         dns_sd_configs:\n      - names: [_n._tcp.x]\n      - {names: [a, b], type: a, port: 9100, refresh_interval: 0s}\n      \
         - {names: [s], type: Srv, port: 80}\n      - {names: [m], type: mx, port: 25, refresh_interval: 2m}\n      \
         - {names: [q], type: aaaa, port: 1}\n",
    );
    let j = &c.scrape_configs[0];
    assert_eq!(
        j.http_sd_configs,
        vec![HttpSdConfig {
            tls: Default::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
            url: "http://sd:8080/targets".to_string(),
            refresh_interval: secs(60),
            auth: HttpAuth::None,
        }]
    );
    let dns: Vec<_> = j
        .dns_sd_configs
        .iter()
        .map(|d| (d.names.join(","), d.record_type, d.port, d.refresh_interval))
        .collect();
    assert_eq!(
        dns,
        vec![
            ("_n._tcp.x".to_string(), DnsRecordType::Srv, 0, secs(30)),
            ("a,b".to_string(), DnsRecordType::A, 9100, secs(30)),
            // Prometheus ignores the port of an SRV lookup.
            ("s".to_string(), DnsRecordType::Srv, 0, secs(30)),
            ("m".to_string(), DnsRecordType::Mx, 25, secs(120)),
            ("q".to_string(), DnsRecordType::Aaaa, 1, secs(30)),
        ]
    );
    assert_eq!(DnsRecordType::Aaaa.as_str(), "AAAA");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // An SD config alone makes a job with no static targets.
    assert!(j.static_configs.is_empty() && j.file_sd_configs.is_empty());
}

#[test]
fn reads_every_inline_credential_form() {
    let basic = |u: &str, p: &str| HttpAuth::Basic {
        username: u.to_string(),
        password: p.to_string(),
    };
    let authz = |s: &str, c: &str| HttpAuth::Authorization {
        scheme: s.to_string(),
        credentials: c.to_string(),
    };
    let cases = [
        ("basic_auth: {username: u, password: p}", basic("u", "p")),
        ("basic_auth: {username: u}", basic("u", "")),
        ("basic_auth: {}", basic("", "")),
        ("authorization: {credentials: c}", authz("Bearer", "c")),
        (
            "authorization: {type: '', credentials: c}",
            authz("Bearer", "c"),
        ),
        (
            "authorization: {type: ' Token ', credentials: c}",
            authz("Token", "c"),
        ),
        ("authorization: {}", authz("Bearer", "")),
        ("bearer_token: t", authz("Bearer", "t")),
        // Empty values count as not set, as in Prometheus.
        (
            "bearer_token: '', basic_auth: {username: u}",
            basic("u", ""),
        ),
        (
            "authorization: {credentials: c}, bearer_token_file: ''",
            authz("Bearer", "c"),
        ),
        ("basic_auth: null", HttpAuth::None),
    ];
    for (fields, want) in cases {
        let yaml = format!(
            "scrape_configs: [{{job_name: a, http_sd_configs: [{{url: 'http://x/', {fields}}}]}}]"
        );
        let c = load(&yaml);
        assert_eq!(
            c.scrape_configs[0].http_sd_configs[0].auth, want,
            "{fields}"
        );
    }
}

#[test]
fn reads_credentials_files_relative_to_the_config_file() {
    let dir = std::env::temp_dir().join(format!("scrapegrid-sd-creds-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/pw"), "  s3cret \n").unwrap();
    std::fs::write(dir.join("secrets/token"), "tok\n\n").unwrap();
    let abs = dir.join("secrets/token");
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      \
             - {{url: 'http://x/', basic_auth: {{username: u, password_file: secrets/pw}}}}\n      \
             - {{url: 'http://x/', basic_auth: {{password: '', password_file: secrets/pw}}}}\n      \
             - {{url: 'http://x/', authorization: {{type: Token, credentials_file: {abs}}}}}\n      \
             - {{url: 'http://x/', bearer_token_file: secrets/token}}\n",
            abs = abs.display()
        ),
    )
    .unwrap();
    let c = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let auths: Vec<_> = c.scrape_configs[0]
        .http_sd_configs
        .iter()
        .map(|h| h.auth.clone())
        .collect();
    assert_eq!(
        auths,
        vec![
            HttpAuth::Basic {
                username: "u".into(),
                password: "s3cret".into()
            },
            HttpAuth::Basic {
                username: "".into(),
                password: "s3cret".into()
            },
            HttpAuth::Authorization {
                scheme: "Token".into(),
                credentials: "tok".into()
            },
            HttpAuth::Authorization {
                scheme: "Bearer".into(),
                credentials: "tok".into()
            },
        ]
    );
    // Secrets stay out of logs.
    let debug = format!("{:?}", c.scrape_configs[0].http_sd_configs);
    assert!(
        !debug.contains("s3cret") && !debug.contains("tok\""),
        "{debug}"
    );
    assert!(debug.contains("<secret>"), "{debug}");

    // A missing file names the field, the file and the line.
    std::fs::remove_file(dir.join("secrets/pw")).unwrap();
    let err = load_file(&path).unwrap_err().to_string();
    let want = format!(
        "{}: scrape_configs[0] (job \"a\"): http_sd_configs[0].basic_auth.password_file: cannot read {}",
        path.display(),
        dir.join("secrets/pw").display()
    );
    assert!(err.starts_with(&want), "{err}\nwant: {want}");
    assert!(err.contains("at line 4"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_http_sd_client_settings() {
    let c = load(
        "scrape_configs: [{job_name: a, enable_http2: false, http_sd_configs: [{url: 'http://x/', follow_redirects: false, enable_http2: false}, {url: 'http://y/', follow_redirects: true}]}]",
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let h = &c.scrape_configs[0].http_sd_configs;
    assert!(!h[0].follow_redirects && h[1].follow_redirects);
    assert!(!h[0].enable_http2 && h[1].enable_http2);
    assert!(!c.scrape_configs[0].http_client.enable_http2);
}

#[test]
fn reload_compares_equal_sd_configs() {
    let yaml = "scrape_configs: [{job_name: a, http_sd_configs: [{url: 'http://x/', bearer_token: t}], dns_sd_configs: [{names: [x]}], relabel_configs: [{action: labelmap, regex: 'a(.*)'}]}]";
    assert_eq!(load(yaml), load(yaml));
    let changed = yaml.replace("bearer_token: t", "bearer_token: u");
    assert_ne!(load(yaml), load(&changed));
    let changed = yaml.replace("'a(.*)'", "'b(.*)'");
    assert_ne!(load(yaml), load(&changed));
}
