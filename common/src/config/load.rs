//! Loading a config: the main file, then each file its `scrape_config_files`
//! patterns match (Prometheus 2.43+), whose jobs are appended in pattern
//! order and, within a pattern, in Go's glob order (sorted). Job names are
//! unique across all of them. Every error found is returned, those of each
//! file in document order, and the config built from what was valid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::parse::{self, JobEntry};
use super::validate::{self, Context, Seg};
use super::{glob, integrations, remote_write, Config, ConfigError, GlobalConfig, ScrapeConfig};

/// Loads `path` and the files it includes; relative paths are resolved
/// against the directory of the file they are written in.
pub(super) fn load_file(path: &Path) -> (Config, Vec<ConfigError>) {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let err = ConfigError::whole_file(&name, format!("cannot read config file: {e}"));
            return (empty(), vec![err]);
        }
    };
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    };
    load_text(&text, &name, Some(&dir))
}

/// Loads a main config file's text; `dir` as in [`Context::dir`].
pub(super) fn load_text(text: &str, file: &str, dir: Option<&Path>) -> (Config, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let Some(doc) = parse::main_document(text, file, &mut errors) else {
        return (empty(), errors);
    };
    let mut warnings: Vec<String> = doc
        .ignored_sections
        .iter()
        .map(|s| format!("{file}: {s}: accepted but not acted on by scrapegrid"))
        .collect();
    let mut ctx = Context {
        file,
        dir,
        warnings: &mut warnings,
        errors: Vec::new(),
    };
    let global = validate::global(doc.global, &mut ctx);
    let mut jobs = Jobs::default();
    jobs.add(doc.jobs, &global, &mut ctx, &mut errors, false);
    let integration_jobs = integrations::jobs(doc.integrations, &global, &mut ctx);
    let remote_write = remote_write::remote_write_section(doc.remote_write, &mut ctx, &mut errors);
    let included = included_files(&doc.scrape_config_files, &mut ctx);
    let invalid = std::mem::take(&mut ctx.errors);
    errors.extend(invalid.into_iter().map(|e| e.into_config_error(file, text)));
    finish_document(&mut errors, text);

    for path in included {
        let name = path.display().to_string();
        let mut file_errors = Vec::new();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(ConfigError::whole_file(
                    &name,
                    format!("cannot read scrape config file: {e}"),
                ));
                continue;
            }
        };
        if let Some(entries) = parse::jobs_document(&text, &name, &mut file_errors) {
            let mut ctx = Context {
                file: &name,
                dir: path.parent().filter(|d| !d.as_os_str().is_empty()),
                warnings: &mut warnings,
                errors: Vec::new(),
            };
            jobs.add(entries, &global, &mut ctx, &mut file_errors, true);
            let invalid = std::mem::take(&mut ctx.errors);
            file_errors.extend(
                invalid
                    .into_iter()
                    .map(|e| e.into_config_error(&name, &text)),
            );
        }
        finish_document(&mut file_errors, &text);
        errors.extend(file_errors);
    }

    // Integration jobs come last; their names are reserved.
    for job in integration_jobs {
        if let Some(other) = jobs.first_found.get(&job.job_name) {
            errors.push(ConfigError::whole_file(
                file,
                format!(
                    "integrations: the job name {:?} is reserved for the {} integration, \
                     but {other} has a scrape_configs entry with it",
                    job.job_name,
                    job.integration.as_ref().map_or("", |i| i.name()),
                ),
            ));
            continue;
        }
        jobs.list.push(job);
    }
    let mut unique: Vec<ConfigError> = Vec::with_capacity(errors.len());
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    let config = Config {
        global,
        scrape_configs: jobs.list,
        remote_write,
        warnings,
    };
    (config, unique)
}

fn empty() -> Config {
    Config {
        global: GlobalConfig::default(),
        scrape_configs: Vec::new(),
        remote_write: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The jobs loaded so far and the file each name was first found in.
#[derive(Default)]
struct Jobs {
    list: Vec<ScrapeConfig>,
    first_found: BTreeMap<String, String>,
}

impl Jobs {
    /// Validates and appends one document's jobs. For a file named by
    /// `scrape_config_files` (`included`), a duplicate's message says where
    /// the first one is, as Prometheus's does.
    fn add(
        &mut self,
        entries: Vec<JobEntry>,
        global: &GlobalConfig,
        ctx: &mut Context,
        parse_errors: &mut Vec<ConfigError>,
        included: bool,
    ) {
        for (i, entry) in entries.into_iter().enumerate() {
            let at = [Seg::Key("scrape_configs"), Seg::Index(i)];
            let raw = match entry {
                Ok(Some(raw)) => raw,
                Ok(None) => {
                    ctx.errors.push(validate::Invalid::new(
                        &at,
                        "empty or null scrape config section",
                    ));
                    continue;
                }
                Err(e) => {
                    parse_errors.push(e);
                    continue;
                }
            };
            let job = validate::scrape_config(raw, global, &at, ctx);
            if !job.job_name.is_empty() {
                if let Some(first) = self.first_found.get(&job.job_name) {
                    let mut reason = format!(
                        "found multiple scrape configs with job name {:?}",
                        job.job_name
                    );
                    if included {
                        reason.push_str(&format!(", first found in {first}"));
                    }
                    ctx.errors.push(validate::Invalid::new(
                        &[at[0].clone(), at[1].clone(), Seg::Key("job_name")],
                        reason,
                    ));
                } else {
                    self.first_found
                        .insert(job.job_name.clone(), ctx.file.to_string());
                }
            }
            self.list.push(job);
        }
    }
}

/// Expands `scrape_config_files`, relative patterns against `ctx.dir` (the
/// current directory without one), as Prometheus 2.43 does.
fn included_files(patterns: &[String], ctx: &mut Context) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let at = [Seg::Key("scrape_config_files"), Seg::Index(i)];
        // Prometheus's patRulePath: a `*` only in the last path element.
        if pattern
            .find('*')
            .is_some_and(|s| pattern[s..].contains('/'))
        {
            ctx.errors.push(validate::Invalid::new(
                &at,
                format!("invalid scrape config file path {pattern:?}"),
            ));
            continue;
        }
        let full = match ctx.dir {
            Some(dir) if Path::new(pattern).is_relative() => {
                dir.join(pattern).to_string_lossy().into_owned()
            }
            _ => pattern.clone(),
        };
        match glob::glob(&full) {
            Ok(found) => files.extend(found),
            Err(e) => ctx.errors.push(validate::Invalid::new(
                &at,
                format!("error retrieving scrape config files for {pattern:?}: {e}"),
            )),
        }
    }
    files
}

/// Puts one file's errors in document order (errors about the whole file
/// first) and names the job each is in.
fn finish_document(errors: &mut [ConfigError], text: &str) {
    if errors.is_empty() {
        return;
    }
    errors.sort_by_key(|e| (e.line, e.column));
    let doc: Option<yaml_serde::Value> = yaml_serde::from_str(text).ok();
    let job_name = |index: usize| -> Option<String> {
        let name = doc
            .as_ref()?
            .get("scrape_configs")?
            .get(index)?
            .get("job_name")?;
        match name {
            yaml_serde::Value::String(s) if !s.is_empty() => Some(s.clone()),
            yaml_serde::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    for e in errors {
        let job = e.job_index().and_then(job_name);
        e.set_job(job);
    }
}
