//! `control-plane check-config`, the `promtool check config` of scrapegrid.

use std::process::Command;

use scrapegrid_tests::bin;

#[test]
fn check_config_prints_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    scrape_timeout: 20s\n    scrape_interval: 10s\n  - job_name: b\n    static_configs:\n      - targets: ['h:1']\n        labels: {'1x': y}\n  - job_name: a\n",
    )
    .unwrap();
    let out = Command::new(bin("control-plane"))
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failed.len(), 3, "{text}");
    assert!(
        failed[0].contains("bad.yml")
            && failed[0].contains("job \"a\"")
            && failed[0].contains("scrape_timeout"),
        "{text}"
    );
    assert!(
        failed[1].contains("job \"b\"") && failed[1].contains("1x"),
        "{text}"
    );
    assert!(failed[2].contains("multiple scrape configs"), "{text}");

    let good = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/local/prometheus.yml"
    );
    let out = Command::new(bin("control-plane"))
        .args(["check-config", good])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

#[test]
fn control_plane_refuses_to_start_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("prometheus.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    metrics_pth: /m\n",
    )
    .unwrap();
    let out = Command::new(bin("control-plane"))
        .arg("--config")
        .arg(&bad)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prometheus.yml") && err.contains("job \"a\"") && err.contains("metrics_pth"),
        "{err}"
    );
}
