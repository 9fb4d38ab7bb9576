//! Table tests: each accepted config is one Prometheus 2.42 accepts
//! (checked with `promtool check config`), each rejected one is one it
//! rejects or one scrapegrid refuses on purpose, and every error names the
//! file, the job and the field.

use std::path::Path;
use std::time::Duration;

use super::*;

const FILE: &str = "prometheus.yml";

fn load(text: &str) -> Config {
    load_str(text, FILE).unwrap_or_else(|e| panic!("{text}\n=> {e}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Configs Prometheus 2.42 accepts and scrapegrid accepts too.
const ACCEPTED: &[&str] = &[
    "scrape_configs: [{job_name: a, oauth2: {client_id: a, client_secret: b, token_url: 'http://t/', scopes: [x], endpoint_params: {k: v}}}]",
    "scrape_configs: [{job_name: a, proxy_url: 'http://127.0.0.1:3128'}]",
    "scrape_configs: [{job_name: a, basic_auth: {username: u, password: p}}]",
    "scrape_configs: [{job_name: a, bearer_token: x}]",
    "scrape_configs: [{job_name: a, authorization: {type: Token, credentials: c}}]",
    "scrape_configs: [{job_name: a, scheme: https, tls_config: {ca_file: ca.pem, server_name: x, min_version: TLS12}}]",
    "scrape_configs: [{job_name: a, tls_config: {insecure_skip_verify: true, cert_file: c.pem, key_file: k.pem}}]",
    "global: {scrape_interval: 0}",
    "global: {query_log_file: q.log}",
    "scrape_configs: [{job_name: a, body_size_limit: 0}]",
    "scrape_configs: [{job_name: a, body_size_limit: 1.5MB}]",
    "scrape_configs: [{job_name: a, body_size_limit: -1KB}]",
    "scrape_configs: [{job_name: a, metrics_path: ''}]",
    "scrape_configs: [{job_name: a, params: {a: [b, c]}}]",
    "scrape_configs: [{job_name: a, static_configs: [{labels: {a: b}}]}]",
    "scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1'], labels: {a: ''}}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{source_labels: [a], target_label: b}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: Replace, target_label: b}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{target_label: '${1}x'}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{target_label: b, regex: null}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: keep}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: drop, target_label: a-b}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: labeldrop, regex: a, replacement: $1}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: labelkeep, regex: a, target_label: ''}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: keepequal, source_labels: [a], target_label: b, separator: ';'}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{action: labelmap, regex: 'a(.*)', replacement: '${1}'}]}]",
    "scrape_configs: [{job_name: a, relabel_configs: [{target_label: b, regex: 'a{'}]}]",
    // A URL-like target is fine when relabeling may rewrite it.
    "scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x/']}], relabel_configs: [{target_label: __address__, replacement: 'x:1'}]}]",
    "scrape_configs: [{job_name: a, file_sd_configs: [{files: ['a/*.json', 'b/x*y.yml']}]}]",
    "scrape_configs: [{job_name: a, follow_redirects: false, enable_http2: false}]",
    "remote_write: [{url: 'http://127.0.0.1:9/api/v1/write', name: a, remote_timeout: 10s, headers: {X-Scope-OrgID: t}, send_exemplars: true, send_native_histograms: true, queue_config: {capacity: 100, max_shards: 4, min_shards: 2, max_samples_per_send: 50, batch_send_deadline: 1s, min_backoff: 10ms, max_backoff: 1s, retry_on_http_429: true}, metadata_config: {send: false, send_interval: 30s, max_samples_per_send: 10}, write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]}]",
    "remote_write: [{url: 'http://x/'}, {url: 'http://y/'}, {url: 'ftp://z/'}]",
    "remote_write: [{url: 'https://x/', basic_auth: {username: u, password: p}, tls_config: {insecure_skip_verify: true}, proxy_url: 'http://127.0.0.1:3128', follow_redirects: false, enable_http2: false}]",
    "remote_write: [{url: 'https://x/', bearer_token: t, headers: {Transfer-Encoding: x}}]",
];

/// Rejected configs and what the error must say: (yaml, substrings).
const REJECTED: &[(&str, &[&str])] = &[
    (
        "scrape_configs:\n  - job_name: a\n  - job_name: node\n    scrape_intervl: 5s\n",
        &[r#"prometheus.yml: scrape_configs[1] (job "node"): unknown field "scrape_intervl" at line 4 column 5"#],
    ),
    ("foo: 1\n", &[r#"prometheus.yml: unknown field "foo" at line 1 column 1"#]),
    ("global:\n  sample_limit: 1\n", &[r#"prometheus.yml: global: unknown field "sample_limit" at line 2"#]),
    (
        "global:\n  scrape_interval: 1x\n",
        &[r#"prometheus.yml: global.scrape_interval: not a valid duration string: "1x""#, "line 2"],
    ),
    ("global:\n  scrape_interval: ''\n", &["global.scrape_interval: empty duration string"]),
    ("global:\n  scrape_interval: 300y\n", &["duration out of range"]),
    (
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
        &["prometheus.yml: global.scrape_timeout: global scrape timeout (6s) greater than scrape interval (5s) at line 3 column 19"],
    ),
    (
        "global:\n  external_labels:\n    1a: x\n",
        &[r#"prometheus.yml: global.external_labels: "1a" is not a valid label name at line 3"#],
    ),
    (
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
        &[r#"prometheus.yml: scrape_configs[0] (job "a"): scrape_timeout: scrape timeout (6s) greater than scrape interval (5s) at line 4 column 21"#],
    ),
    (
        "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n    scrape_timeout: 6s\n",
        &[r#"(job "a"): scrape_timeout: scrape timeout (6s) greater than scrape interval (5s) at line 5"#],
    ),
    (
        "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
        &[r#"prometheus.yml: scrape_configs[1] (job "a"): job_name: found multiple scrape configs with job name "a" at line 3 column 15"#],
    ),
    ("scrape_configs:\n  - job_name: ''\n", &["prometheus.yml: scrape_configs[0]: job_name: job_name is empty at line 2"]),
    ("scrape_configs:\n  - scrape_interval: 1s\n", &["scrape_configs[0]: job_name: job_name is empty at line 2 column 5"]),
    ("scrape_configs:\n  - \n", &["prometheus.yml: scrape_configs[0]: empty or null scrape config section"]),
    (
        "scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
        &[r#"prometheus.yml: scrape_configs[0] (job "a"): scheme: invalid scheme "ftp""#, "line 3 column 13"],
    ),
    (
        "scrape_configs:\n  - job_name: a\n    basic_auth:\n      password: x\n      password_file: f\n",
        &[r#"prometheus.yml: scrape_configs[0] (job "a"): at most one of basic_auth password & password_file must be configured"#],
    ),
    ("scrape_configs:\n  - job_name: a\n    bearer_token: x\n    basic_auth: {username: u}\n", &["at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"]),
    ("scrape_configs:\n  - job_name: a\n    authorization: {type: basic}\n", &[r#"authorization type cannot be set to "basic", use "basic_auth" instead"#]),
    (
        "scrape_configs:\n  - job_name: a\n    tls_config:\n      cert_file: c.pem\n",
        &[r#"(job "a"): tls_config: client cert file "c.pem" specified without client key file at line 4"#],
    ),
    ("scrape_configs:\n  - job_name: a\n    tls_config: {key_file: k.pem}\n", &[r#"client key file "k.pem" specified without client cert file"#]),
    ("scrape_configs:\n  - job_name: a\n    tls_config: {min_version: TLS9}\n", &["unknown TLS version: TLS9"]),
    ("scrape_configs:\n  - job_name: a\n    oauth2: {token_url: 'http://t/'}\n", &["oauth2 client_id must be configured"]),
    ("scrape_configs:\n  - job_name: a\n    oauth2: {client_id: a}\n", &["either oauth2 client_secret or client_secret_file must be configured"]),
    ("scrape_configs:\n  - job_name: a\n    oauth2: {client_id: a, client_secret: b, client_secret_file: f, token_url: 'http://t/'}\n", &["at most one of oauth2 client_secret & client_secret_file must be configured"]),
    ("scrape_configs:\n  - job_name: a\n    oauth2: {client_id: a, client_secret: b, token_url: 'http://t/'}\n    basic_auth: {username: u}\n", &["at most one of basic_auth, oauth2 & authorization must be configured"]),
    ("scrape_configs:\n  - job_name: a\n    oauth2: {client_id: a, client_secret: b, token_url: 'http://t/'}\n    bearer_token: t\n", &["at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"]),
    ("scrape_configs:\n  - job_name: a\n    tls_config: {ca: x}\n", &[r#"unknown field "ca""#]),
    ("scrape_configs:\n  - job_name: e\n    ec2_sd_configs: [{region: x}]\n", &[r#"(job "e"): "ec2_sd_configs" is a Prometheus field scrapegrid does not support yet"#]),
    ("scrape_configs:\n  - job_name: n\n    nerve_sd_configs: []\n", &[r#"(job "n"): "nerve_sd_configs" is a Prometheus field"#]),
    ("scrape_configs:\n  - job_name: t\n    proxy_url: '::'\n", &[r#"(job "t"): proxy_url: parse "::": "#]),
    ("scrape_configs:\n  - job_name: t\n    proxy_url: socks5://p:1\n", &["scrapegrid supports http:// and https:// proxies"]),
    ("scrape_configs:\n  - job_name: t\n    fallback_scrape_protocol: PrometheusText0.0.4\n", &[r#"(job "t"): unknown field "fallback_scrape_protocol""#]),
    ("scrape_configs:\n  - job_name: t\n    no_proxy: x\n", &[r#"unknown field "no_proxy""#]),
    (
        "scrape_configs:\n  - job_name: t\n    scrape_protocols: [PrometheusText0.0.4, Foo]\n",
        &[r#"(job "t"): scrape_protocols[1]: unknown scrape protocol "Foo""#, "line 3"],
    ),
    ("scrape_configs:\n  - job_name: a\n    sample_limit: -1\n", &[r#"(job "a"): sample_limit: invalid type: integer `-1`"#, "line 3"]),
    ("scrape_configs:\n  - job_name: a\n    params: {a: b}\n", &[r#"(job "a"): params.a: invalid type"#]),
    ("scrape_configs:\n  - job_name: a\n    honor_labels: maybe\n", &[r#"(job "a"): honor_labels: invalid type"#]),
    (
        "scrape_configs:\n  - job_name: a\n    body_size_limit: 100\n",
        &[r#"(job "a"): body_size_limit: not a valid size: "100" (unknown unit "")"#, "line 3"],
    ),
    ("scrape_configs:\n  - job_name: a\n    body_size_limit: 1kB\n", &[r#"unknown unit "kB""#]),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['http://x:80/']\n",
        &[r#"(job "a"): static_configs[0].targets[0]: "http://x:80/" is not a valid hostname at line 4 column 19"#],
    ),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['']\n",
        &[r#"(job "a"): static_configs[0].targets[0]: target address is empty"#],
    ),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1']\n        labels: {1a: b}\n",
        &[r#"(job "a"): static_configs[0].labels: "1a" is not a valid label name at line 5"#],
    ),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1']\n        foo: 1\n",
        &[r#"(job "a"): static_configs[0]: unknown field "foo" at line 5"#],
    ),
    ("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: []\n", &[r#"(job "a"): file_sd_configs[0]: file service discovery config must contain at least one path name"#]),
    ("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [a.txt]\n", &[r#"path name "a.txt" is not valid for file discovery"#, "line 4"]),
    ("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['a/*/x.json']\n", &[r#"path name "a/*/x.json" is not valid"#]),
    (
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - \n",
        &[r#"(job "a"): relabel_configs[0]: empty or null target relabeling rule in scrape config"#],
    ),
    (
        "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - source_labels: [a]\n",
        &[r#"(job "a"): metric_relabel_configs[0]: relabel configuration for replace action requires 'target_label' value at line 4"#],
    ),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}\n", &["keepequal action requires only 'source_labels' and 'target_label'"]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: labeldrop, regex: a, source_labels: []}\n", &["labeldrop action requires only 'regex', and no other fields"]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: lowercase, source_labels: [a], target_label: b, replacement: x}\n", &["'replacement' can not be set for lowercase action"]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: '', target_label: b}\n", &[r#"unknown relabel action """#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: foo, target_label: b}\n", &[r#"(job "a"): relabel_configs[0]: unknown relabel action "foo""#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {target_label: '1${1}x'}\n", &[r#""1${1}x" is invalid 'target_label' for replace action"#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {target_label: 'a-b'}\n", &[r#""a-b" is invalid 'target_label' for replace action"#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {source_labels: [1a], target_label: b}\n", &[r#""1a" is not a valid label name"#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {target_label: b, regex: '('}\n", &[r#"(job "a"): relabel_configs[0]: invalid regex "(""#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: labelmap, regex: a, replacement: x-y}\n", &[r#""x-y" is invalid 'replacement' for labelmap action"#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: hashmod, source_labels: [a], target_label: b}\n", &["relabel configuration for hashmod requires non-zero modulus"]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {source_labels: a, target_label: b}\n", &[r#"(job "a"): relabel_configs[0].source_labels: invalid type"#]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {target_label: b, modulus: -1}\n", &["relabel_configs[0].modulus: invalid type: integer `-1`"]),
    ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {target_label: b, foo: 1}\n", &[r#"(job "a"): relabel_configs[0]: unknown field "foo""#]),
    ("scrape_configs: [\n", &["prometheus.yml: ", "line 2"]),
    ("remote_write:\n  - name: a\n", &["prometheus.yml: remote_write[0]: url for remote_write is empty at line 2"]),
    (
        "remote_write:\n  - url: http://x\n    name: a\n  - url: http://y\n    name: a\n",
        &[r#"remote_write[1].name: found multiple remote write configs with job name "a" at line 5"#],
    ),
    (
        "remote_write:\n  - url: http://x\n    headers: {Host: y}\n",
        &["remote_write[0].headers: Host is a reserved header. It must not be changed at line 3"],
    ),
    (
        "remote_write:\n  - url: http://x\n    headers: {x-prometheus-remote-write-version: y}\n",
        &["x-prometheus-remote-write-version is a reserved header"],
    ),
    (
        "remote_write:\n  - url: http://x\n    headers: {authorization: y}\n",
        &["authorization header must be changed via the basic_auth, authorization, oauth2, or sigv4 parameter"],
    ),
    ("remote_write:\n  - null\n", &["remote_write[0]: empty or null remote write config section"]),
    (
        "remote_write:\n  - url: http://x\n    queue_config: {max_shard: 1}\n",
        &[r#"remote_write[0].queue_config: unknown field "max_shard""#],
    ),
    (
        "remote_write:\n  - url: http://x\n    sigv4: {region: r}\n",
        &[r#"remote_write[0]: "sigv4" is a Prometheus field scrapegrid does not support yet"#],
    ),
    (
        "remote_write:\n  - url: http://x\n    write_relabel_configs: [null]\n",
        &["remote_write[0].write_relabel_configs[0]: empty or null relabeling rule in remote write config"],
    ),
    (
        "remote_write:\n  - url: http://x\n    write_relabel_configs: [{action: replace}]\n",
        &["remote_write[0].write_relabel_configs[0]"],
    ),
    ("remote_write:\n  - url: http://x\n    remote_timeout: 1x\n", &["not a valid duration string"]),
    (
        "remote_write:\n  - url: http://x\n    bearer_token: a\n    bearer_token_file: b\n",
        &["remote_write[0]: at most one of bearer_token & bearer_token_file must be configured"],
    ),
    (
        "remote_write:\n  - url: http://x\n  - {url: http://y, urll: x}\n",
        &[r#"remote_write[1]: unknown field "urll""#],
    ),
];

#[test]
fn fills_in_prometheus_defaults() {
    let c = load("scrape_configs:\n  - job_name: a\n");
    assert_eq!(c.global, GlobalConfig::default());
    assert_eq!(c.global.scrape_interval, secs(60));
    assert_eq!(c.global.scrape_timeout, secs(10));
    assert_eq!(c.global.evaluation_interval, secs(60));
    let j = &c.scrape_configs[0];
    assert_eq!(j.job_name, "a");
    assert_eq!((j.scrape_interval, j.scrape_timeout), (secs(60), secs(10)));
    assert_eq!(
        (j.metrics_path.as_str(), j.scheme.as_str()),
        ("/metrics", "http")
    );
    assert!(j.honor_timestamps && !j.honor_labels && !j.track_timestamps_staleness);
    assert_eq!(j.body_size_limit, 0);
    assert!(c.warnings.is_empty());
    // An empty file is an empty config, as in Prometheus.
    assert!(load("").scrape_configs.is_empty());
    assert!(load("# nothing\n").scrape_configs.is_empty());
}

#[test]
fn derives_timeouts_like_prometheus() {
    // (yaml, job interval, job timeout, global timeout)
    let cases: &[(&str, Duration, Duration, Duration)] = &[
        ("global: {scrape_interval: 5s}\nscrape_configs: [{job_name: a}]", secs(5), secs(5), secs(5)),
        ("global: {scrape_interval: 5s, scrape_timeout: 4s}\nscrape_configs: [{job_name: a}]", secs(5), secs(4), secs(4)),
        ("scrape_configs: [{job_name: a, scrape_interval: 3s}]", secs(3), secs(3), secs(10)),
        ("scrape_configs: [{job_name: a, scrape_interval: 3w}]", secs(21 * 86400), secs(10), secs(10)),
        ("scrape_configs: [{job_name: a, scrape_interval: 30s, scrape_timeout: 30s}]", secs(30), secs(30), secs(10)),
        ("global: {scrape_timeout: 0s}\nscrape_configs: [{job_name: a, scrape_interval: 0s}]", secs(60), secs(10), secs(10)),
        ("global: {scrape_interval: 1h, scrape_timeout: 1h}\nscrape_configs: [{job_name: a, scrape_interval: 1m}]", secs(60), secs(60), secs(3600)),
    ];
    for (yaml, interval, timeout, global_timeout) in cases {
        let c = load(yaml);
        let j = &c.scrape_configs[0];
        assert_eq!(
            (j.scrape_interval, j.scrape_timeout),
            (*interval, *timeout),
            "{yaml}"
        );
        assert_eq!(c.global.scrape_timeout, *global_timeout, "{yaml}");
    }
}

#[test]
fn reads_every_supported_field() {
    let c = load(
        r#"
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels: {region: eu, replica: 1, empty: ""}
scrape_configs:
  - job_name: node
    honor_labels: true
    honor_timestamps: false
    track_timestamps_staleness: true
    params: {module: [a, b]}
    scrape_interval: 1m30s
    scrape_timeout: 500ms
    metrics_path: /probe
    scheme: https
    body_size_limit: 10MB
    sample_limit: 1000
    target_limit: 10
    label_limit: 30
    label_name_length_limit: 200
    label_value_length_limit: 300
    follow_redirects: true
    enable_http2: true
    static_configs:
      - targets: [a:9100, 'b:9100']
        labels: {env: prod}
      - targets: []
    file_sd_configs:
      - files: [targets/*.json, /abs/x.yml]
      - files: [t.yaml]
        refresh_interval: 30s
    relabel_configs:
      - source_labels: [__address__]
        target_label: instance
      - action: labelmap
        regex: __meta_(.+)
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
"#,
    );
    assert_eq!(
        c.global.external_labels.to_string(),
        r#"{region="eu", replica="1"}"#
    );
    assert_eq!(c.global.evaluation_interval, secs(30));
    let j = &c.scrape_configs[0];
    assert!(j.honor_labels && !j.honor_timestamps && j.track_timestamps_staleness);
    assert_eq!(j.params["module"], vec!["a", "b"]);
    assert_eq!(
        (j.scrape_interval, j.scrape_timeout),
        (secs(90), Duration::from_millis(500))
    );
    assert_eq!(
        (j.metrics_path.as_str(), j.scheme.as_str()),
        ("/probe", "https")
    );
    assert_eq!(j.body_size_limit, 10 << 20);
    assert_eq!(
        (
            j.sample_limit,
            j.target_limit,
            j.label_limit,
            j.label_name_length_limit,
            j.label_value_length_limit
        ),
        (1000, 10, 30, 200, 300)
    );
    assert_eq!(j.static_configs.len(), 2);
    assert_eq!(j.static_configs[0].targets, vec!["a:9100", "b:9100"]);
    assert_eq!(j.static_configs[0].labels.get("env"), Some("prod"));
    assert_eq!(
        j.file_sd_configs[0].files,
        vec![PathBuf::from("targets/*.json"), PathBuf::from("/abs/x.yml")]
    );
    assert_eq!(j.file_sd_configs[0].refresh_interval, secs(300));
    assert_eq!(j.file_sd_configs[1].refresh_interval, secs(30));
    assert_eq!(j.relabel_configs.len(), 2);
    assert_eq!(j.relabel_configs[0].replacement, "$1");
    assert_eq!(j.relabel_configs[0].separator, ";");
    assert_eq!(j.relabel_configs[0].regex_source, "(.*)");
    let rules = j.metric_relabel_rules_proto();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        (rules[0].action.as_str(), rules[0].regex.as_str()),
        ("drop", "go_.*")
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn accepts_what_prometheus_accepts() {
    for yaml in ACCEPTED {
        load(yaml);
    }
}

#[test]
fn rejects_with_file_job_field_and_line() {
    let mut failures = Vec::new();
    for (yaml, wants) in REJECTED {
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
        if !err.starts_with("prometheus.yml: ") || err.contains("expected one of") {
            failures.push(format!("{yaml}\n badly formed: {err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn warns_about_sections_it_does_not_act_on() {
    let c = load(
        "rule_files: [x.yml]\nalerting: {alertmanagers: []}\nremote_write: [{url: 'http://x'}]\n\
         remote_read: []\nstorage: {tsdb: {out_of_order_time_window: 1h}}\ntracing: {endpoint: 'x:1'}\n\
         global: {query_log_file: q}\n\
         scrape_configs: [{job_name: a, scrape_protocols: [PrometheusText0.0.4]}]\n",
    );
    let all = c.warnings.join("\n");
    for s in [
        "rule_files",
        "alerting",
        "remote_read",
        "storage",
        "tracing",
        "query_log_file",
    ] {
        assert!(all.contains(s), "{s} missing from {all}");
    }
    assert!(
        c.warnings.iter().all(|w| w.starts_with("prometheus.yml: ")),
        "{all}"
    );
    // The storage node acts on remote_write.
    assert!(!all.contains("remote_write"), "{all}");
    assert_eq!(c.remote_write.len(), 1);
}

/// The defaults Prometheus 2.42 fills in (its `/api/v1/status/config` for
/// `remote_write: [{url: ...}]`), and every field read.
#[test]
fn remote_write_defaults_and_fields() {
    let c = load("remote_write: [{url: 'http://127.0.0.1:9/w'}]");
    let rw = &c.remote_write[0];
    assert_eq!(rw.url, "http://127.0.0.1:9/w");
    assert_eq!(rw.remote_timeout, secs(30));
    assert_eq!(
        (rw.queue.capacity, rw.queue.max_shards, rw.queue.min_shards),
        (2500, 200, 1)
    );
    assert_eq!(rw.queue.max_samples_per_send, 500);
    assert_eq!(rw.queue.batch_send_deadline, secs(5));
    assert_eq!(rw.queue.min_backoff, Duration::from_millis(30));
    assert_eq!(rw.queue.max_backoff, secs(5));
    assert!(!rw.queue.retry_on_http_429);
    assert_eq!(
        (
            rw.metadata.send,
            rw.metadata.send_interval,
            rw.metadata.max_samples_per_send
        ),
        (true, secs(60), 500)
    );
    assert!(rw.http_client.follow_redirects && rw.http_client.enable_http2);
    assert!(!rw.send_exemplars && !rw.send_native_histograms);
    assert_eq!(rw.queue_name().len(), 6);
    let again =
        load("remote_write: [{url: 'http://127.0.0.1:9/w'}, {url: 'http://127.0.0.1:9/x'}]");
    assert_eq!(again.remote_write[0].queue_name(), rw.queue_name());
    assert_ne!(again.remote_write[1].queue_name(), rw.queue_name());

    let c = load(
        ACCEPTED
            .iter()
            .find(|y| y.contains("X-Scope-OrgID"))
            .unwrap(),
    );
    let rw = &c.remote_write[0];
    assert_eq!(rw.queue_name(), "a");
    assert_eq!(rw.remote_timeout, secs(10));
    assert_eq!(
        rw.headers.get("X-Scope-OrgID").map(String::as_str),
        Some("t")
    );
    assert!(rw.send_exemplars && rw.send_native_histograms);
    let q = &rw.queue;
    assert_eq!(
        (
            q.capacity,
            q.max_shards,
            q.min_shards,
            q.max_samples_per_send
        ),
        (100, 4, 2, 50)
    );
    assert_eq!(
        (q.batch_send_deadline, q.min_backoff, q.max_backoff),
        (secs(1), Duration::from_millis(10), secs(1))
    );
    assert!(q.retry_on_http_429);
    assert_eq!(
        (
            rw.metadata.send,
            rw.metadata.send_interval,
            rw.metadata.max_samples_per_send
        ),
        (false, secs(30), 10)
    );
    assert_eq!(rw.write_relabel_configs.len(), 1);
}

#[test]
fn load_file_resolves_file_sd_paths_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("scrapegrid-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.yml");
    std::fs::write(&path, "scrape_configs:\n  - job_name: f\n    file_sd_configs:\n      - files: [sd/*.json, /abs/t.yml]\n").unwrap();
    let c = load_file(&path).unwrap();
    let files = &c.scrape_configs[0].file_sd_configs[0].files;
    assert_eq!(files[0], dir.join("sd/*.json"));
    assert_eq!(files[1], PathBuf::from("/abs/t.yml"));

    std::fs::write(
        &path,
        "scrape_configs:\n  - job_name: f\n    scrape_intervl: 1s\n",
    )
    .unwrap();
    let err = load_file(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: scrape_configs[0] (job \"f\")",
            path.display()
        )),
        "{err}"
    );

    let missing = dir.join("missing.yml");
    let err = load_file(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: cannot read config file", missing.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every example config shipped in the repository loads.
#[test]
fn loads_every_example_config_under_deploy() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut stack = vec![deploy.clone()];
    let mut loaded = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml") && is_prometheus_config(&path) {
                load_file(&path).unwrap_or_else(|e| panic!("{e}"));
                loaded.push(path);
            }
        }
    }
    assert!(
        !loaded.is_empty(),
        "no prometheus config found under {}",
        deploy.display()
    );
}

/// Tells Prometheus configs from other YAML in `deploy/` (compose files,
/// Kubernetes manifests): they have a `scrape_configs` or `global` key.
fn is_prometheus_config(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(doc) = yaml_serde::from_str::<yaml_serde::Value>(&text) else {
        return false;
    };
    doc.get("scrape_configs").is_some() || doc.get("global").is_some()
}

/// Rejected configs that Prometheus 2.42 accepts: scrapegrid refuses them on
/// purpose (features it does not implement, or stricter checks).
const REJECTED_ONLY_BY_SCRAPEGRID: &[&str] = &[
    "sigv4",
    "scheme: ftp",
    "nerve_sd_configs",
    "ec2_sd_configs",
    "socks5://",
    "targets: ['']",
];

/// Checks the tables against the real Prometheus: every ACCEPTED config
/// passes `promtool check config`, every REJECTED one fails it unless listed
/// in REJECTED_ONLY_BY_SCRAPEGRID; the same for the discovery tables of
/// `tests_discovery`, whose scrapegrid-only rejections must pass promtool
/// (so the list of deviations stays true). `scrape_config_files` cases are
/// not here: 2.42 does not know the field. Needs `promtool` (Debian
/// `prometheus`, installed by scripts/install-deps.sh).
#[test]
fn tables_agree_with_promtool() {
    use super::tests_discovery::{SD_ACCEPTED, SD_REJECTED, SD_REJECTED_ONLY_BY_SCRAPEGRID};
    let dir = std::env::temp_dir().join(format!("scrapegrid-promtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let promtool_accepts = |yaml: &str| -> bool {
        let path = dir.join("prometheus.yml");
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new("promtool")
            .args(["check", "config", "--syntax-only"])
            .arg(&path)
            .output()
            .expect("promtool runs");
        out.status.success()
    };
    let mut disagreements = Vec::new();
    let accepted = ACCEPTED.iter().chain(SD_ACCEPTED);
    let ours_only = SD_REJECTED_ONLY_BY_SCRAPEGRID.iter().map(|(y, _)| y);
    for yaml in accepted.chain(ours_only) {
        if !promtool_accepts(yaml) {
            disagreements.push(format!("promtool rejects: {yaml}"));
        }
    }
    for (yaml, _) in REJECTED.iter().chain(SD_REJECTED) {
        // Debian's promtool lacks some discoveries; those are listed above.
        let ours_only = REJECTED_ONLY_BY_SCRAPEGRID.iter().any(|s| yaml.contains(s))
            && !SD_REJECTED.iter().any(|(y, _)| y == yaml);
        if !ours_only && promtool_accepts(yaml) {
            disagreements.push(format!("promtool accepts: {yaml}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn scrape_native_histograms_defaults_from_global() {
    let c = load(
        "global: {scrape_native_histograms: true}
scrape_configs:
  - job_name: a
  - job_name: b
    scrape_native_histograms: false
",
    );
    let jobs: Vec<bool> = c
        .scrape_configs
        .iter()
        .map(|j| j.scrape_native_histograms)
        .collect();
    assert_eq!(jobs, [true, false]);
    let c = load("scrape_configs: [{job_name: a}, {job_name: b, scrape_native_histograms: true}]");
    let jobs: Vec<bool> = c
        .scrape_configs
        .iter()
        .map(|j| j.scrape_native_histograms)
        .collect();
    assert_eq!(jobs, [false, true]);
}

#[test]
fn integrations_become_jobs_named_after_them() {
    let c = load(
        "global: {scrape_interval: 30s}\nscrape_configs: [{job_name: a}]\nintegrations:\n  self: {enabled: true, storage_url: 'http://127.0.0.1:9090/'}\n  host: {enabled: true, scrape_interval: 5s}\n",
    );
    let names: Vec<&str> = c
        .scrape_configs
        .iter()
        .map(|j| j.job_name.as_str())
        .collect();
    assert_eq!(names, ["a", "integrations/self", "integrations/host"]);
    let own = &c.scrape_configs[1];
    assert_eq!(
        own.integration,
        Some(Integration::SelfMetrics {
            storage_url: Some("http://127.0.0.1:9090".into())
        })
    );
    assert_eq!(
        (own.scrape_interval, own.scrape_timeout),
        (secs(30), secs(10))
    );
    let host = &c.scrape_configs[2];
    assert_eq!(host.integration, Some(Integration::Host));
    assert_eq!(
        (host.scrape_interval, host.scrape_timeout),
        (secs(5), secs(5))
    );
    // Off unless enabled.
    let c = load("integrations: {self: {storage_url: 'http://s:9090'}, host: {enabled: false}}");
    assert!(c.scrape_configs.is_empty());
}

#[test]
fn integration_errors_name_the_field() {
    for (yaml, want) in [
        (
            "integrations: {self: {enabled: true, storage_url: 'storage:9090'}}",
            "integrations.self.storage_url: \"storage:9090\": not a URL",
        ),
        (
            "integrations: {self: {enabled: true, storage_url: 'http://s:9090/api'}}",
            "without a path",
        ),
        (
            "integrations: {host: {enabled: true, scrape_interval: 5s, scrape_timeout: 10s}}",
            "integrations.host.scrape_timeout: scrape timeout (10s) greater than scrape interval (5s)",
        ),
        (
            "integrations: {host: {enabled: true, procfs: /proc}}",
            "unknown field `procfs`",
        ),
        (
            "integrations: {host: {enabled: true, storage_url: 'http://s:1'}}",
            "integrations.host.storage_url: only the self integration has a storage_url",
        ),
        (
            "integrations: {mysql: {enabled: true}}",
            "unknown field `mysql`",
        ),
        (
            "scrape_configs: [{job_name: integrations/host}]\nintegrations: {host: {enabled: true}}",
            "the job name \"integrations/host\" is reserved for the host integration",
        ),
    ] {
        let err = load_str(yaml, FILE).expect_err(yaml).to_string();
        assert!(err.starts_with("prometheus.yml"), "{yaml}: {err}");
        assert!(err.contains(want), "{yaml}\n got: {err}\nwant: {want}");
    }
}
