//! The scrape jobs of the shared `prometheus.yml`: cases are grouped by the
//! config they need, and [`config_yaml`] writes one file that both real
//! Prometheus 2.42 and scrapegrid load unchanged (so it uses no field 2.42
//! does not know, such as `scrape_protocols` or `track_timestamps_staleness`).
//!
//! Every case is one static target group at the fixture with
//! `__metrics_path__: /case/<name>` and (usually) `instance: <name>`, so
//! series and targets map back to their case. The `filesd` job reads its
//! targets from a file that the test rewrites to remove one.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use super::cases::{Address, Case};

/// A job of the shared config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Defaults: honor_labels false, honor_timestamps true, no limits.
    Plain,
    /// honor_labels: true.
    Honor,
    /// honor_timestamps: false.
    NoTime,
    /// metric_relabel_configs with every action.
    MetricRelabel,
    /// relabel_configs on target labels, and job params.
    TargetRelabel,
    /// sample_limit: 4, counted after a metric relabel drop.
    SampleLimit,
    /// label_limit: 5.
    LabelLimit,
    /// label_name_length_limit: 8.
    NameLenLimit,
    /// label_value_length_limit: 8.
    ValueLenLimit,
    /// body_size_limit: 1KB.
    BodySize,
    /// target_limit: 1 (with two targets).
    TargetLimit,
    /// file_sd_configs; one target is removed from the file.
    FileSd,
}

impl Job {
    pub const ALL: [Job; 12] = [
        Job::Plain,
        Job::Honor,
        Job::NoTime,
        Job::MetricRelabel,
        Job::TargetRelabel,
        Job::SampleLimit,
        Job::LabelLimit,
        Job::NameLenLimit,
        Job::ValueLenLimit,
        Job::BodySize,
        Job::TargetLimit,
        Job::FileSd,
    ];

    /// The job_name (short: label_value_length_limit applies to `job` too).
    pub fn name(self) -> &'static str {
        match self {
            Job::Plain => "plain",
            Job::Honor => "honor",
            Job::NoTime => "notime",
            Job::MetricRelabel => "mrelabel",
            Job::TargetRelabel => "trelabel",
            Job::SampleLimit => "slimit",
            Job::LabelLimit => "llimit",
            Job::NameLenLimit => "lnlen",
            Job::ValueLenLimit => "lvlen",
            Job::BodySize => "bodysize",
            Job::TargetLimit => "tlimit",
            Job::FileSd => "filesd",
        }
    }

    /// The job's settings, indented for a `scrape_configs` entry.
    fn settings(self) -> &'static str {
        match self {
            Job::Plain | Job::FileSd => "",
            Job::Honor => "    honor_labels: true\n",
            Job::NoTime => "    honor_timestamps: false\n",
            Job::MetricRelabel => METRIC_RELABEL,
            Job::TargetRelabel => TARGET_RELABEL,
            Job::SampleLimit => concat!(
                "    sample_limit: 4\n",
                "    metric_relabel_configs:\n",
                "      - source_labels: [__name__]\n",
                "        regex: 'sl_dropped_.*'\n",
                "        action: drop\n",
            ),
            Job::LabelLimit => "    label_limit: 5\n",
            Job::NameLenLimit => "    label_name_length_limit: 8\n",
            Job::ValueLenLimit => "    label_value_length_limit: 8\n",
            Job::BodySize => "    body_size_limit: 1KB\n",
            Job::TargetLimit => "    target_limit: 1\n",
        }
    }
}

/// Metric relabeling: one rule (or a few) per action, each scoped by metric
/// or label names so that it leaves the other cases' series alone.
const METRIC_RELABEL: &str = r#"    metric_relabel_configs:
      # mr_replace: two source labels, a custom separator, ${1}
      - source_labels: [__name__, a]
        separator: '|'
        regex: 'mr_replace\|(.*)'
        target_label: b
        replacement: 'x_${1}_y'
      # mr_expand: Go's expansion: $1x names group "1x" (empty), so e1 is deleted
      - source_labels: [__name__, a]
        regex: 'mr_expand;(?P<word>.*)'
        target_label: e1
        replacement: '$1x'
      - source_labels: [__name__, a]
        regex: 'mr_expand;(?P<word>.*)'
        target_label: e2
        replacement: '${1}x'
      - source_labels: [__name__, a]
        regex: 'mr_expand;(?P<word>.*)'
        target_label: e3
        replacement: '$word-$$-$2-${word}'
      - source_labels: [__name__, a]
        regex: 'mr_expand;(.*)'
        target_label: 'dyn_$1'
        replacement: 'v'
      # mr_default: regex (.*), replacement $1; an empty result deletes the target
      - source_labels: [dsrc]
        target_label: ddst
      # mr_anchored: regexes are anchored
      - source_labels: [__name__]
        regex: 'mr_anch'
        action: drop
      # mr_native_dropped: a native histogram dropped before it is appended
      - source_labels: [__name__]
        regex: 'mr_native_drop'
        action: drop
      - source_labels: [__name__]
        regex: 'anchored'
        target_label: touched
        replacement: 'yes'
      # mr_keep
      - source_labels: [k]
        regex: '|yes'
        action: keep
      # mr_drop, mr_drop_all
      - source_labels: [__name__]
        regex: 'mr_drop_.*'
        action: drop
      # mr_case_insensitive
      - source_labels: [__name__]
        regex: '(?i)MR_CI_DROP.*'
        action: drop
      # mr_keepequal
      - source_labels: [ke_a]
        target_label: ke_b
        action: keepequal
      # mr_dropequal
      - source_labels: [__name__, de_a]
        target_label: de_b
        action: dropequal
      # mr_hashmod: through a __tmp label, which metric relabeling does not drop by itself
      - source_labels: [__name__, hm]
        modulus: 1000
        target_label: __tmp_h
        action: hashmod
      - source_labels: [__name__, __tmp_h]
        regex: 'mr_hashmod;(.*)'
        target_label: bucket
      - regex: '__tmp_h'
        action: labeldrop
      # mr_labelmap
      - regex: 'lm_(.+)'
        replacement: 'mapped_$1'
        action: labelmap
      # mr_labeldrop
      - regex: 'ld_.*'
        action: labeldrop
      # mr_labelkeep: keeps every label name except z_*
      - regex: '[^z].*|z|z[^_].*'
        action: labelkeep
      # mr_case
      - source_labels: [lc]
        target_label: lc_out
        action: lowercase
      - source_labels: [uc]
        target_label: uc_out
        action: uppercase
      # mr_noname: an empty replacement deletes __name__
      - source_labels: [__name__]
        regex: 'mr_noname'
        target_label: __name__
        replacement: ''
      # mr_badtarget: a target label that expands to an invalid name
      - source_labels: [__name__, t]
        regex: 'mr_badtarget;(.*)'
        target_label: '${1}'
        replacement: 'set'
      # mr_rename: __name__ as target
      - source_labels: [__name__]
        regex: 'mr_rename_(.*)'
        target_label: __name__
        replacement: 'renamed_$1'
"#;

/// Target relabeling: every rule is scoped by the target's `rl` label (or a
/// `__meta_*` label only one target has).
const TARGET_RELABEL: &str = r#"    params:
      jp: ['a b']
    relabel_configs:
      - source_labels: [rl, __meta_real_address]
        regex: 'address;(.+)'
        target_label: __address__
      - source_labels: [rl]
        regex: path
        target_label: __metrics_path__
        replacement: /case/tr_path
      - source_labels: [rl]
        regex: pathesc
        target_label: __metrics_path__
        replacement: "/case/tr_path_escape/a b?c#d%e!'()*;x=$$&+,:@|^`{}[]\"<>é"
      - source_labels: [rl]
        regex: pathempty
        target_label: __metrics_path__
        replacement: ''
      - source_labels: [rl]
        regex: schemeupper
        target_label: __scheme__
        replacement: HTTP
      - source_labels: [rl]
        regex: schemeempty
        target_label: __scheme__
        replacement: ''
      - source_labels: [rl]
        regex: nopathslash
        target_label: __metrics_path__
        replacement: case/tr_path_no_slash
      - source_labels: [rl]
        regex: param
        target_label: __param_extra
        replacement: 'x&y=1 2'
      - source_labels: [rl]
        regex: paramesc
        target_label: __param_q
        replacement: "é*!'()~;/?:@$$,[]#%+ "
      - source_labels: [rl]
        regex: param
        target_label: __param_jp
        replacement: overridden
      - source_labels: [rl]
        regex: interval
        target_label: __scrape_interval__
        replacement: 2s
      - source_labels: [rl]
        regex: interval
        target_label: __scrape_timeout__
        replacement: 1500ms
      - source_labels: [rl]
        regex: badtimeout
        target_label: __scrape_timeout__
        replacement: 5s
      - source_labels: [rl]
        regex: badinterval
        target_label: __scrape_interval__
        replacement: soon
      - source_labels: [__meta_color]
        target_label: __tmp_color
      - source_labels: [__tmp_color]
        regex: '(.+)'
        target_label: color
        replacement: 'is_$1'
      - regex: '__meta_map_(.+)'
        action: labelmap
      - source_labels: [rl]
        regex: drop
        action: drop
      - source_labels: [__meta_keep]
        regex: '|yes'
        action: keep
      - source_labels: [rl, __meta_eq_a]
        target_label: __meta_eq_b
        action: dropequal
      - source_labels: [__meta_ke_a]
        target_label: __meta_ke_b
        action: keepequal
      - source_labels: [rl]
        regex: noaddr
        target_label: __address__
        replacement: ''
      - source_labels: [rl]
        regex: instance
        target_label: instance
        replacement: tr_instance_relabeled
      - source_labels: [rl]
        regex: https
        target_label: __scheme__
        replacement: https
      - source_labels: [rl]
        modulus: 7
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [rl, __tmp_hash]
        regex: 'hash;(.*)'
        target_label: shard
      - source_labels: [__meta_mixed]
        target_label: lower
        action: lowercase
      - source_labels: [__meta_mixed]
        target_label: upper
        action: uppercase
"#;

/// Returns the shared `prometheus.yml`.
pub fn config_yaml(cases: &[Arc<Case>], fixture: &str, closed: &str, file_sd: &Path) -> String {
    let mut y =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n");
    for job in Job::ALL {
        let _ = writeln!(y, "  - job_name: {}", job.name());
        y.push_str(job.settings());
        if job == Job::FileSd {
            let _ = writeln!(
                y,
                "    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s",
                file_sd.display()
            );
            continue;
        }
        y.push_str("    static_configs:\n");
        for c in cases.iter().filter(|c| c.job == job) {
            let address = match c.address {
                Address::Fixture => fixture,
                Address::Closed => closed,
                Address::Literal(a) => a,
            };
            let _ = writeln!(y, "      - targets: ['{address}']");
            y.push_str("        labels:\n");
            for (name, value) in target_labels(c) {
                let value = value.replace("FIXTURE", fixture).replace('\'', "''");
                let _ = writeln!(y, "          {name}: '{value}'");
            }
        }
    }
    y
}

/// The labels a case's target group carries.
pub fn target_labels(c: &Case) -> Vec<(&'static str, String)> {
    let mut labels = vec![("__metrics_path__", c.path())];
    if c.static_instance {
        labels.push(("instance", c.name.to_string()));
    }
    for (name, value) in &c.labels {
        labels.retain(|(n, _)| n != name);
        labels.push((name, value.clone()));
    }
    labels
}

/// The file SD content: the `filesd` job's cases, without the removed ones.
pub fn file_sd_json(cases: &[Arc<Case>], fixture: &str, removed: &[&str]) -> String {
    let groups: Vec<serde_json::Value> = cases
        .iter()
        .filter(|c| c.job == Job::FileSd && !removed.contains(&c.name))
        .map(|c| {
            let labels: serde_json::Map<String, serde_json::Value> = target_labels(c)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            serde_json::json!({"targets": [fixture], "labels": labels})
        })
        .collect();
    serde_json::to_string_pretty(&groups).unwrap()
}
