//! `scrape_config_files` (Prometheus 2.43+, so scrapegrid-only against the
//! 2.42 promtool) and [`check_file`] reporting every error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// A scratch directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("scrapegrid-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `text` to the relative path `rel`; returns the full path.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn job_names(c: &Config) -> Vec<&str> {
    c.scrape_configs
        .iter()
        .map(|j| j.job_name.as_str())
        .collect()
}

fn errors_of(path: &Path) -> Vec<String> {
    check_file(path).iter().map(ToString::to_string).collect()
}

#[test]
fn appends_the_jobs_of_included_files_in_glob_order() {
    let d = Dir::new("include-merge");
    let main = d.write(
        "prometheus.yml",
        "global: {scrape_interval: 5s}\n\
         scrape_config_files: [jobs/*.yml, 'more/d?r/[ab].yaml', other.yml, /nonexistent/x.yml]\n\
         scrape_configs:\n  - job_name: main\n",
    );
    d.write(
        "jobs/b.yml",
        "scrape_configs:\n  - job_name: b\n    file_sd_configs: [{files: [sd/*.json]}]\n",
    );
    d.write(
        "jobs/a.yml",
        "scrape_configs:\n  - job_name: a1\n  - job_name: a2\n    scrape_interval: 1m\n",
    );
    d.write("jobs/.hidden.yml", "scrape_configs: [{job_name: hidden}]\n");
    d.write("jobs/c.json", "not: [yaml\n");
    d.write("jobs/empty.yml", "# nothing yet\n");
    d.write(
        "more/dir/a.yaml",
        "scrape_configs: [{job_name: globbed-dir}]\n",
    );
    d.write(
        "more/dir/c.yaml",
        "scrape_configs: [{job_name: not-in-class}]\n",
    );
    d.write("other.yml", "scrape_configs: [{job_name: literal}]\n");

    let c = load_file(&main).unwrap_or_else(|e| panic!("{e}"));
    // Go's glob matches dot files with `*`; a literal that does not exist
    // matches nothing, as in Prometheus.
    assert_eq!(
        job_names(&c),
        ["main", "hidden", "a1", "a2", "b", "globbed-dir", "literal"]
    );
    let job = |n: &str| c.scrape_configs.iter().find(|j| j.job_name == n).unwrap();
    // The main file's global applies to included jobs.
    assert_eq!(job("a1").scrape_interval, Duration::from_secs(5));
    assert_eq!(job("a2").scrape_interval, Duration::from_secs(60));
    // Relative paths are resolved against the included file's directory.
    assert_eq!(
        job("b").file_sd_configs[0].files,
        vec![d.0.join("jobs").join("sd/*.json")]
    );
    assert!(check_file(&main).is_empty());

    // An absolute pattern, from text without a directory.
    let text = format!("scrape_config_files: ['{}/jobs/[a]*.yml']\n", d.0.display());
    let c = load_str(&text, "inline.yml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job_names(&c), ["a1", "a2"]);
}

#[test]
fn rejects_duplicate_job_names_across_files() {
    let d = Dir::new("include-dup");
    let main = d.write(
        "prometheus.yml",
        "scrape_config_files: [jobs/*.yml]\nscrape_configs:\n  - job_name: a\n",
    );
    let one = d.write(
        "jobs/1.yml",
        "scrape_configs:\n  - job_name: x\n  - job_name: a\n",
    );
    let two = d.write("jobs/2.yml", "scrape_configs:\n  - job_name: x\n");
    let errors = errors_of(&main);
    assert_eq!(
        errors,
        [
            format!(
                "{}: scrape_configs[1] (job \"a\"): job_name: found multiple scrape configs with job name \"a\", first found in {} at line 3 column 15",
                one.display(),
                main.display()
            ),
            format!(
                "{}: scrape_configs[0] (job \"x\"): job_name: found multiple scrape configs with job name \"x\", first found in {} at line 2 column 15",
                two.display(),
                one.display()
            ),
        ]
    );
    assert_eq!(load_file(&main).unwrap_err().to_string(), errors[0]);
}

#[test]
fn errors_in_an_included_file_name_that_file() {
    let d = Dir::new("include-errors");
    let main = d.write(
        "prometheus.yml",
        "global: {scrape_interval: 10s}\nscrape_config_files: [jobs/*.yml]\n",
    );
    let bad = d.write(
        "jobs/bad.yml",
        "scrape_configs:\n  - job_name: ok\n  - job_name: typo\n    scrape_intervl: 1s\n  \
         - job_name: slow\n    scrape_timeout: 11s\n",
    );
    let other = d.write("jobs/other.yml", "global: {scrape_interval: 1s}\n");
    let broken = d.write("jobs/zz.yml", "scrape_configs: [\n");
    let errors = errors_of(&main);
    let want = [
        format!(
            "{}: scrape_configs[1] (job \"typo\"): unknown field \"scrape_intervl\" at line 4 column 5",
            bad.display()
        ),
        // Timeouts are checked against the main file's global interval.
        format!(
            "{}: scrape_configs[2] (job \"slow\"): scrape_timeout: scrape timeout (11s) greater than scrape interval (10s) at line 6 column 21",
            bad.display()
        ),
        format!("{}: unknown field \"global\" at line 1 column 1", other.display()),
    ];
    assert_eq!(errors[..3], want, "{errors:#?}");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[3].starts_with(&format!("{}: ", broken.display())) && errors[3].contains("line 2"),
        "{}",
        errors[3]
    );
}

#[test]
fn checks_scrape_config_file_patterns() {
    let d = Dir::new("include-patterns");
    let main = d.write(
        "prometheus.yml",
        "scrape_config_files:\n  - 'jobs/*/x.yml'\n  - 'jobs/[.yml'\n  - jobs\n",
    );
    std::fs::create_dir_all(d.0.join("jobs")).unwrap();
    let errors = errors_of(&main);
    let m = main.display();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0],
        format!("{m}: scrape_config_files[0]: invalid scrape config file path \"jobs/*/x.yml\" at line 2 column 5")
    );
    assert_eq!(
        errors[1],
        format!("{m}: scrape_config_files[1]: error retrieving scrape config files for \"jobs/[.yml\": syntax error in pattern at line 3 column 5")
    );
    // A pattern naming a directory matches it, and reading it fails.
    assert!(
        errors[2].starts_with(&format!(
            "{}: cannot read scrape config file: ",
            d.0.join("jobs").display()
        )),
        "{}",
        errors[2]
    );
    let err = load_str("scrape_config_files: jobs\n", "p.yml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("p.yml: scrape_config_files: invalid type"),
        "{err}"
    );
}

#[test]
fn check_file_reports_every_error_of_every_job() {
    let d = Dir::new("check-all");
    let main = d.write(
        "prometheus.yml",
        r#"global:
  scrape_interval: 30s
  external_labels: {1bad: x}
scrape_config_files: [more.yml]
scrape_configs:
  - job_name: timeout
    scrape_interval: 5s
    scrape_timeout: 6s
    scheme: ftp
  - job_name: relabel
    relabel_configs:
      - {action: hashmod, source_labels: [a], target_label: b}
  - job_name: labels
    static_configs:
      - targets: ['x:1']
        labels: {0x: y}
  - job_name: dns
    dns_sd_configs:
      - names: [x]
        type: A
  - job_name: timeout
  - job_name: http
    http_sd_configs:
      - url: ftp://x/
  - job_name: fine
  - job_name: typo
    metrics_pth: /m
"#,
    );
    let more = d.write("more.yml", "scrape_configs:\n  - job_name: fine\n");
    let m = main.display();
    let want = [
        format!(r#"{m}: global.external_labels: "1bad" is not a valid label name at line 3"#),
        format!(
            r#"{m}: scrape_configs[0] (job "timeout"): scrape_timeout: scrape timeout (6s) greater than scrape interval (5s) at line 8"#
        ),
        format!(r#"{m}: scrape_configs[0] (job "timeout"): scheme: invalid scheme "ftp""#),
        format!(
            r#"{m}: scrape_configs[1] (job "relabel"): relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus at line 12"#
        ),
        format!(
            r#"{m}: scrape_configs[2] (job "labels"): static_configs[0].labels: "0x" is not a valid label name at line 16"#
        ),
        format!(
            r#"{m}: scrape_configs[3] (job "dns"): dns_sd_configs[0]: a port is required in DNS-SD configs for all record types except SRV at line 19"#
        ),
        format!(
            r#"{m}: scrape_configs[4] (job "timeout"): job_name: found multiple scrape configs with job name "timeout" at line 21"#
        ),
        format!(
            r#"{m}: scrape_configs[5] (job "http"): http_sd_configs[0]: URL scheme must be 'http' or 'https' at line 24"#
        ),
        format!(r#"{m}: scrape_configs[7] (job "typo"): unknown field "metrics_pth" at line 27"#),
        format!(
            r#"{}: scrape_configs[0] (job "fine"): job_name: found multiple scrape configs with job name "fine", first found in {m} at line 2"#,
            more.display()
        ),
    ];
    let errors = errors_of(&main);
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(&want) {
        assert!(got.starts_with(want.as_str()), "got:  {got}\nwant: {want}");
    }
    // load_file stops at the first of them.
    assert_eq!(load_file(&main).unwrap_err().to_string(), errors[0]);
}

#[test]
fn check_file_stops_a_file_only_at_a_yaml_syntax_error() {
    let d = Dir::new("check-syntax");
    let main = d.write(
        "p.yml",
        "scrape_configs:\n  - job_name: a\n   bad: indentation\n",
    );
    let errors = check_file(&main);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, Some(3));
    assert!(check_file(&d.0.join("missing.yml"))[0]
        .to_string()
        .contains("cannot read config file"));
    // A top-level mistake does not hide the jobs' mistakes.
    let main = d.write(
        "q.yml",
        "scrape_configs:\n  - job_name: a\n    scrape_timeout: 2m\nfoo: 1\nalerting: {}\n",
    );
    let errors: Vec<_> = check_file(&main).iter().map(|e| e.reason.clone()).collect();
    assert_eq!(
        errors,
        [
            "scrape timeout (2m) greater than scrape interval (1m)",
            "unknown field \"foo\""
        ]
    );
}

#[test]
fn load_str_without_directory_resolves_against_the_current_directory() {
    // Tests run in the crate directory; no file here matches.
    let c = load_str(
        "scrape_config_files: ['src/config/no-such-*.yml']\nscrape_configs: [{job_name: a}]\n",
        "p.yml",
    )
    .unwrap();
    assert_eq!(job_names(&c), ["a"]);
    // The crate's own Cargo.toml is found, and is not a scrape config file.
    let err = load_str("scrape_config_files: ['Cargo.tom?']\n", "p.yml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("Cargo.toml: "), "{err}");
}
