//! From YAML text to the raw structs, keeping going past errors.
//!
//! A document that deserializes as a whole is read in one pass. One that
//! does not is read again part by part: a skeleton of the top level (unknown
//! sections), then `global`, `scrape_config_files` and each `scrape_configs`
//! entry on its own, each by a deserializer that walks to that node ([`at`]).
//! So an error in one job does not hide those in the next, and every error
//! keeps the path and position `yaml_serde` gives it. Text that is not YAML
//! at all stops at its syntax error.

use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::ConfigError;
use super::integrations::RawIntegrations;
use super::raw::{RawConfig, RawGlobal, RawScrapeConfig, RawScrapeConfigFile};
use super::remote_write::RawRemoteWriteConfig;
use super::validate::Seg;

/// A list entry: read (`None` for an empty entry) or its error.
pub(super) type Entry<T> = Result<Option<T>, ConfigError>;
/// A `scrape_configs` entry.
pub(super) type JobEntry = Entry<RawScrapeConfig>;

/// What could be read of one document.
#[derive(Debug, Default)]
pub(super) struct Document {
    pub global: RawGlobal,
    pub scrape_config_files: Vec<String>,
    pub ignored_sections: Vec<&'static str>,
    pub jobs: Vec<JobEntry>,
    /// Always read entry by entry.
    pub remote_write: Vec<Entry<RawRemoteWriteConfig>>,
    pub integrations: RawIntegrations,
}

/// Reads a main config file; `None` when it is not YAML. Errors are pushed
/// to `errors`, in document order as far as the parts allow.
pub(super) fn main_document(
    text: &str,
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Document> {
    let whole = match whole::<RawConfig>(text) {
        Ok(raw) => raw,
        Err(e) if !is_yaml(text) => {
            errors.push(ConfigError::from_yaml(file, &e));
            return None;
        }
        Err(_) => {
            let mut doc = Document::default();
            match whole::<RawConfig<IgnoredAny, IgnoredAny, IgnoredAny>>(text) {
                Ok(skeleton) => doc.ignored_sections = skeleton.ignored_sections(),
                Err(e) => errors.push(ConfigError::from_yaml(file, &e)),
            }
            doc.global = part(text, &[Seg::Key("global")], file, errors).unwrap_or_default();
            doc.scrape_config_files =
                part(text, &[Seg::Key("scrape_config_files")], file, errors).unwrap_or_default();
            doc.jobs = entries(text, "scrape_configs", file, errors);
            doc.remote_write = entries(text, "remote_write", file, errors);
            doc.integrations =
                part(text, &[Seg::Key("integrations")], file, errors).unwrap_or_default();
            return Some(doc);
        }
    };
    Some(Document {
        ignored_sections: whole.ignored_sections(),
        global: whole.global.unwrap_or_default(),
        scrape_config_files: whole.scrape_config_files.unwrap_or_default(),
        jobs: whole
            .scrape_configs
            .unwrap_or_default()
            .into_iter()
            .map(Ok)
            .collect(),
        remote_write: entries(text, "remote_write", file, errors),
        integrations: whole.integrations.unwrap_or_default(),
    })
}

/// Reads a file named by `scrape_config_files`: `scrape_configs` only.
pub(super) fn jobs_document(
    text: &str,
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<JobEntry>> {
    match whole::<RawScrapeConfigFile>(text) {
        Ok(raw) => Some(
            raw.scrape_configs
                .unwrap_or_default()
                .into_iter()
                .map(Ok)
                .collect(),
        ),
        Err(e) if !is_yaml(text) => {
            errors.push(ConfigError::from_yaml(file, &e));
            None
        }
        Err(_) => {
            if let Err(e) = whole::<RawScrapeConfigFile<IgnoredAny>>(text) {
                errors.push(ConfigError::from_yaml(file, &e));
            }
            Some(entries(text, "scrape_configs", file, errors))
        }
    }
}

/// Deserializes the whole text; an empty document is `T::default()`.
fn whole<T: DeserializeOwned + Default>(text: &str) -> Result<T, yaml_serde::Error> {
    if is_null(text) {
        return Ok(T::default());
    }
    yaml_serde::from_str(text)
}

fn is_yaml(text: &str) -> bool {
    yaml_serde::from_str::<yaml_serde::Value>(text).is_ok()
}

/// An empty file, or one with only comments: a valid, empty config.
fn is_null(text: &str) -> bool {
    yaml_serde::from_str::<yaml_serde::Value>(text).is_ok_and(|v| v.is_null())
}

/// Reads each entry of the list under the top-level `key` on its own.
fn entries<T: DeserializeOwned>(
    text: &str,
    key: &'static str,
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Entry<T>> {
    let key = Seg::Key(key);
    let count = part::<Vec<IgnoredAny>>(text, std::slice::from_ref(&key), file, errors)
        .map_or(0, |v| v.len());
    (0..count)
        .map(|i| {
            at(text, &[key.clone(), Seg::Index(i)]).map_err(|e| ConfigError::from_yaml(file, &e))
        })
        .collect()
}

/// Reads the node at `path`, pushing its error; `None` when it is absent,
/// null or broken.
fn part<T: DeserializeOwned>(
    text: &str,
    path: &[Seg],
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    at(text, path)
        .map_err(|e| errors.push(ConfigError::from_yaml(file, &e)))
        .ok()
        .flatten()
}

/// Deserializes the node at `path` of `text`: `None` when the path is not in
/// the document (or the node is null). Errors carry the full document path.
pub(super) fn at<T: DeserializeOwned>(
    text: &str,
    path: &[Seg],
) -> Result<Option<T>, yaml_serde::Error> {
    At::<T> {
        path,
        node: PhantomData,
    }
    .deserialize(yaml_serde::Deserializer::from_str(text))
}

/// Walks to a node and deserializes it there; the rest of every mapping and
/// sequence on the way is skipped (`yaml_serde` wants them consumed).
struct At<'a, T> {
    path: &'a [Seg],
    node: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for At<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        if self.path.is_empty() {
            Option::<T>::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for At<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        let mut seen = false;
        while let Some(key) = map.next_key::<yaml_serde::Value>()? {
            match self.path.split_first() {
                Some((Seg::Key(want), rest)) if !seen && key.as_str() == Some(want) => {
                    seen = true;
                    found = map.next_value_seed(At::<T> {
                        path: rest,
                        node: PhantomData,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        if let Some((Seg::Index(want), rest)) = self.path.split_first() {
            for _ in 0..*want {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(None);
                }
            }
            found = seq
                .next_element_seed(At::<T> {
                    path: rest,
                    node: PhantomData,
                })?
                .flatten();
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(found)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
}
