//! Config errors that say where the problem is: the file, the place in the
//! document (with the job name of a `scrape_configs` entry), the reason, and
//! the line and column when known.
//!
//! YAML and type errors come from `yaml_serde`, whose message carries the
//! document path (`scrape_configs[1].scrape_interval`) and whose location is
//! exact; [`ConfigError::from_yaml`] takes them apart. Errors found after
//! parsing carry a path, and [`super::validate::locate`] finds its line.

use std::fmt;

/// Marker message of the deserializer that rejects Prometheus fields
/// scrapegrid does not implement; the field name comes from the path.
pub(super) const UNSUPPORTED_MARKER: &str = "scrapegrid-unsupported-field";

/// An invalid or unreadable `prometheus.yml`.
///
/// Displays as `<file>: <where>: <reason> at line L column C`, for example
/// `prometheus.yml: scrape_configs[1] (job "node"): unknown field
/// "scrape_intervl" at line 7 column 5`. The parts are available through
/// [`ConfigError::detail`] (or `Deref`); they are boxed to keep `Result`s small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(Box<ConfigErrorDetail>);

/// The parts of a [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrorDetail {
    /// The file name as given to the loader.
    pub file: String,
    /// Where in the document, such as `scrape_configs[1].relabel_configs[0]`;
    /// empty when the error concerns the whole file.
    pub path: String,
    /// The `job_name` of the scrape config the error is in, when known.
    pub job: Option<String>,
    pub reason: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl ConfigError {
    /// Returns the parts of the error.
    pub fn detail(&self) -> &ConfigErrorDetail {
        &self.0
    }
}

impl std::ops::Deref for ConfigError {
    type Target = ConfigErrorDetail;

    fn deref(&self) -> &ConfigErrorDetail {
        &self.0
    }
}

impl From<ConfigErrorDetail> for ConfigError {
    fn from(d: ConfigErrorDetail) -> Self {
        Self(Box::new(d))
    }
}

/// A specialized `Result` for config loading.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl ConfigError {
    /// Returns an error about the whole file.
    pub(super) fn whole_file(file: &str, reason: impl Into<String>) -> Self {
        ConfigErrorDetail {
            file: file.to_string(),
            path: String::new(),
            job: None,
            reason: reason.into(),
            line: None,
            column: None,
        }
        .into()
    }

    /// Converts a `yaml_serde` error, splitting its message into path and
    /// reason and rewording serde's messages where they help no one.
    pub(super) fn from_yaml(file: &str, err: &yaml_serde::Error) -> Self {
        let location = err.location();
        let mut text = err.to_string();
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = text.strip_suffix(&suffix) {
                text = stripped.to_string();
            }
        }
        let (mut path, mut reason) = split_path(&text);
        if reason == UNSUPPORTED_MARKER {
            let (parent, field) = match path.rfind('.') {
                Some(dot) => (path[..dot].to_string(), path[dot + 1..].to_string()),
                None => (String::new(), path.clone()),
            };
            reason = format!("{field:?} is a Prometheus field scrapegrid does not support yet");
            path = parent;
        } else if let Some(field) = unknown_field(&reason) {
            reason = format!("unknown field {field:?}");
        }
        ConfigErrorDetail {
            file: file.to_string(),
            path,
            job: None,
            reason,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
        }
        .into()
    }

    /// Returns the index of the `scrape_configs` entry the error is in.
    pub(super) fn job_index(&self) -> Option<usize> {
        let rest = self.path.strip_prefix("scrape_configs[")?;
        rest[..rest.find(']')?].parse().ok()
    }

    /// Records the name of the job the error is in.
    pub(super) fn set_job(&mut self, job: Option<String>) {
        self.0.job = job;
    }
}

/// Splits `path: reason` as `yaml_serde` writes it. A path is a top-level
/// key followed by `.key` and `[index]` segments, without spaces.
fn split_path(text: &str) -> (String, String) {
    const TOP: [&str; 9] = [
        "global",
        "scrape_configs",
        "scrape_config_files",
        "rule_files",
        "alerting",
        "remote_write",
        "remote_read",
        "storage",
        "tracing",
    ];
    if let Some((head, reason)) = text.split_once(": ") {
        let top = head.split(['.', '[']).next().unwrap_or("");
        if TOP.contains(&top) && !head.contains(' ') {
            return (head.to_string(), reason.to_string());
        }
    }
    (String::new(), text.to_string())
}

/// Returns the field name from serde's "unknown field `x`, expected ...".
fn unknown_field(reason: &str) -> Option<&str> {
    let rest = reason.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}

impl fmt::Display for ConfigErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.path.is_empty() {
            let job_entry = self
                .path
                .find(']')
                .filter(|_| self.path.starts_with("scrape_configs["));
            match job_entry {
                Some(end) => {
                    f.write_str(&self.path[..=end])?;
                    if let Some(job) = &self.job {
                        write!(f, " (job {job:?})")?;
                    }
                    let rest = self.path[end + 1..].trim_start_matches('.');
                    if !rest.is_empty() {
                        write!(f, ": {rest}")?;
                    }
                }
                None => f.write_str(&self.path)?,
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.reason)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}
