//! `file_sd_configs`: target groups read from JSON or YAML files.
//!
//! The provider expands each pattern (a `*`/`?` glob in the file name part),
//! reads every matching file, and sends the groups whose content changed. A
//! group's source is `<path>:<index>`. Files are checked for changes (size and
//! mtime) every [`POLL_INTERVAL`] and re-read in full every `refresh_interval`.
//! A file that cannot be read or parsed keeps its last good groups and logs the
//! error; a file that disappears deletes its groups.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::glob::glob;
use scrapegrid_common::config::FileSdConfig;
use scrapegrid_common::labels::is_valid_label_name;
use scrapegrid_common::Labels;

use super::{push_changes, ProviderSender, ProviderUpdate, TargetGroup};
use crate::metrics;

/// How often files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One entry of a file_sd file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parses a file_sd file's content; YAML for `.yml`/`.yaml`, JSON otherwise.
pub fn parse_file(path: &Path, content: &str) -> Result<Vec<TargetGroup>, String> {
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    );
    let groups: Vec<FileGroup> = if is_yaml {
        yaml_serde::from_str(content).map_err(|e| e.to_string())?
    } else {
        serde_json::from_str(content).map_err(|e| e.to_string())?
    };
    let filepath = path.display().to_string();
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        for name in g.labels.keys() {
            if !is_valid_label_name(name) {
                return Err(format!("group {i}: invalid label name {name:?}"));
            }
        }
        let mut labels = g.labels;
        labels.insert("__meta_filepath".into(), filepath.clone());
        out.push(TargetGroup {
            source: format!("{filepath}:{i}"),
            targets: g
                .targets
                .iter()
                .map(|t| Labels::from_pairs([("__address__", t.as_str())]))
                .collect(),
            labels: Labels::from_pairs(labels),
        });
    }
    Ok(out)
}

/// Returns the files matching `pattern` as Go's `filepath.Glob` expands it
/// (Prometheus's file_sd does), in byte order; a bad pattern or an
/// unreadable directory matches nothing, and directories are skipped.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let Some(pattern) = pattern.to_str() else {
        return Vec::new();
    };
    glob(pattern)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.is_file())
        .collect()
}

/// What the provider remembers of one file.
struct FileState {
    stamp: (u64, SystemTime),
    groups: Vec<TargetGroup>,
}

/// Runs one file_sd provider until `cancel` fires.
pub async fn run(
    provider: usize,
    config: FileSdConfig,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
) {
    let mut files: HashMap<PathBuf, FileState> = HashMap::new();
    let mut last_full = Instant::now();
    let mut first = true;
    let mut sender = ProviderSender::new(provider, tx);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let full = first || last_full.elapsed() >= config.refresh_interval;
        first = false;
        if full {
            last_full = Instant::now();
        }
        let patterns = config.files.clone();
        let stamps: HashMap<PathBuf, (u64, SystemTime)> =
            files.iter().map(|(p, s)| (p.clone(), s.stamp)).collect();
        // File IO runs off the async threads.
        let Ok(scan) = tokio::task::spawn_blocking(move || scan(&patterns, &stamps, full)).await
        else {
            continue;
        };
        for (path, error) in &scan.failed {
            ::metrics::counter!(metrics::SD_REFRESH_FAILURES, "mechanism" => "file").increment(1);
            tracing::warn!(file = %path.display(), %error, "file_sd: keeping last good groups");
        }
        let mut changed = Vec::new();
        for ReadFile {
            path,
            stamp,
            groups,
        } in scan.read
        {
            let old = files.insert(
                path,
                FileState {
                    stamp,
                    groups: groups.clone(),
                },
            );
            let old_groups = old.map(|s| s.groups).unwrap_or_default();
            push_changes(&mut changed, &old_groups, &groups);
        }
        files.retain(|path, state| {
            if scan.present.contains(path) {
                return true;
            }
            push_changes(&mut changed, &state.groups, &[]);
            false
        });
        if !sender.send(changed).await {
            return;
        }
    }
}

struct Scan {
    /// Every file that currently matches a pattern.
    present: Vec<PathBuf>,
    /// Files that were (re-)read successfully.
    read: Vec<ReadFile>,
    /// Files that could not be read or parsed, with the error.
    failed: Vec<(PathBuf, String)>,
}

struct ReadFile {
    path: PathBuf,
    stamp: (u64, SystemTime),
    groups: Vec<TargetGroup>,
}

fn scan(patterns: &[PathBuf], stamps: &HashMap<PathBuf, (u64, SystemTime)>, full: bool) -> Scan {
    let mut present = Vec::new();
    let mut read = Vec::new();
    let mut failed = Vec::new();
    for pattern in patterns {
        for path in expand(pattern) {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            present.push(path.clone());
            let stamp = (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            );
            if !full && stamps.get(&path) == Some(&stamp) {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|c| parse_file(&path, &c));
            match parsed {
                Ok(groups) => read.push(ReadFile {
                    path,
                    stamp,
                    groups,
                }),
                Err(error) => failed.push((path, error)),
            }
        }
    }
    Scan {
        present,
        read,
        failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_patterns_as_go_filepath_glob() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.json", "b.json", "tg_1.yml", "tg_x.yml", "c.yml"] {
            std::fs::write(dir.path().join(f), "[]").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.json")).unwrap();
        let names = |pattern: &str| -> Vec<String> {
            expand(&dir.path().join(pattern))
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names("*.json"),
            ["a.json", "b.json"],
            "directories are skipped"
        );
        assert_eq!(names("tg_?.yml"), ["tg_1.yml", "tg_x.yml"]);
        assert_eq!(names("tg_[0-9].yml"), ["tg_1.yml"], "character classes");
        assert_eq!(names("[^a]*.json"), ["b.json"]);
        assert_eq!(names("c.yml"), ["c.yml"]);
        assert!(names("missing.yml").is_empty());
        assert!(names("[.json").is_empty(), "a bad pattern matches nothing");
    }

    #[test]
    fn parses_json_and_yaml_with_filepath_label() {
        let j = parse_file(
            Path::new("/x/a.json"),
            r#"[{"targets":["h:1","h:2"],"labels":{"env":"prod"}}]"#,
        )
        .unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].source, "/x/a.json:0");
        assert_eq!(j[0].targets.len(), 2);
        assert_eq!(j[0].labels.get("__meta_filepath"), Some("/x/a.json"));
        assert_eq!(j[0].labels.get("env"), Some("prod"));
        let y = parse_file(Path::new("b.yml"), "- targets: ['h:3']\n").unwrap();
        assert_eq!(y[0].targets[0].get("__address__"), Some("h:3"));
        assert!(parse_file(Path::new("c.json"), "[{\"targets\": 1}]").is_err());
        assert!(parse_file(Path::new("c.json"), r#"[{"labels":{"1x":"a"}}]"#).is_err());
    }

    #[test]
    fn push_changes_deletes_vanished_sources() {
        let g = |s: &str, n: usize| TargetGroup {
            source: s.into(),
            targets: (0..n)
                .map(|i| Labels::from_pairs([("__address__", format!("h:{i}"))]))
                .collect(),
            labels: Labels::new(),
        };
        let mut out = Vec::new();
        push_changes(&mut out, &[g("a", 1), g("b", 1)], &[g("a", 1)]);
        assert_eq!(
            out,
            vec![TargetGroup {
                source: "b".into(),
                ..Default::default()
            }]
        );
        out.clear();
        push_changes(&mut out, &[g("a", 1)], &[g("a", 2)]);
        assert_eq!(out, vec![g("a", 2)]);
    }

    /// A real provider over a real directory: glob, change, broken file
    /// (last good groups kept, failure counted), deletion.
    #[tokio::test]
    async fn provider_follows_files_and_keeps_last_good_groups() {
        use crate::discovery::test_support::{by_source, failures, local_metrics, next_update};
        let (metrics, _guard) = local_metrics();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yml");
        std::fs::write(&file, "- targets: ['h:1']\n").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "not matched").unwrap();
        let config = FileSdConfig {
            files: vec![dir.path().join("*.yml")],
            refresh_interval: Duration::from_secs(300),
        };
        let (tx, mut rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        tokio::spawn(run(7, config, tx, cancel.clone()));
        let first = next_update(&mut rx).await;
        assert_eq!(first.provider, 7);
        let source = format!("{}:0", file.display());
        assert_eq!(by_source(&first.groups, &source).targets.len(), 1);

        // A change (size differs) is picked up by the poll.
        std::fs::write(&file, "- targets: ['h:1', 'h:2']\n").unwrap();
        let update = next_update(&mut rx).await;
        assert_eq!(by_source(&update.groups, &source).targets.len(), 2);

        // A broken file keeps the last good groups: nothing is sent.
        std::fs::write(&file, "- targets: [unclosed\n").unwrap();
        crate::discovery::test_support::eventually("failure counted", || {
            failures(&metrics, "file") > 0
        })
        .await;
        assert!(rx.try_recv().is_err(), "a broken file sends nothing");

        // Removing the file deletes its groups.
        std::fs::remove_file(&file).unwrap();
        let update = next_update(&mut rx).await;
        assert!(by_source(&update.groups, &source).targets.is_empty());
        cancel.cancel();
    }
}
