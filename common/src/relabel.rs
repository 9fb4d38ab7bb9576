//! One relabeling engine for target relabeling (control plane) and metric
//! relabeling (scrapers), with Prometheus's semantics (`model/relabel`):
//! the same actions, defaults, validation and `$1`/`${name}` expansion, so a
//! `relabel_configs` block behaves here exactly as it does in Prometheus.
//!
//! Rules travel between planes as `RelabelRule` messages; [`RelabelConfig::from_proto`]
//! validates them once and compiles the regex, and [`process`] applies them.
//! Regexes are written in Go (RE2) syntax; [`compile_go_regex`] makes the few
//! RE2 constructs that Rust's `regex` reads differently mean what Go means.

use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::{Captures, Regex};
use scrapegrid_proto::v1 as pb;

use crate::labels::{is_valid_label_name, Labels, LabelsBuilder};

mod regex_compat;

pub use regex_compat::compile_go_regex;

/// The default separator between joined source label values.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default regex (unanchored, as written).
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default replacement.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A relabeling action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Returns the action's name as written in `prometheus.yml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name case-insensitively, as Prometheus does.
    pub fn parse(s: &str) -> Result<Self, RelabelError> {
        let all = [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ];
        let lower = s.to_lowercase();
        all.into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| RelabelError::UnknownAction(s.to_string()))
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a relabel rule was rejected; messages follow Prometheus's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("relabel action cannot be empty")]
    EmptyAction,
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    #[error("invalid regex {regex:?}: {reason}")]
    InvalidRegex { regex: String, reason: String },
    #[error("{0:?} is not a valid label name")]
    InvalidSourceLabel(String),
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("{label:?} is invalid 'target_label' for {action} action")]
    InvalidTargetLabel { label: String, action: Action },
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    InvalidReplacement { replacement: String, action: Action },
    #[error("{0} action requires only 'source_labels' and 'target_label', and no other fields")]
    OnlySourceAndTarget(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

/// A validated relabel rule with its regex compiled.
#[derive(Clone, Debug)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    /// The regex anchored as `^(?:...)$` and compiled.
    pub regex: Regex,
    /// The regex as written in the config, unanchored.
    pub regex_source: String,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    /// Returns Prometheus's defaults (action `replace`, separator `;`, regex
    /// `(.*)`, replacement `$1`). The empty target label makes it invalid
    /// for `replace` until one is set.
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: DEFAULT_COMPILED.clone(),
            regex_source: DEFAULT_REGEX.to_string(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

/// Compares everything but the compiled regex, which follows from
/// `regex_source`.
impl PartialEq for RelabelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.source_labels == other.source_labels
            && self.separator == other.separator
            && self.regex_source == other.regex_source
            && self.modulus == other.modulus
            && self.target_label == other.target_label
            && self.replacement == other.replacement
            && self.action == other.action
    }
}

static DEFAULT_COMPILED: LazyLock<Regex> =
    LazyLock::new(|| compile_go_regex(DEFAULT_REGEX).expect("the default relabel regex compiles"));

/// Prometheus's check for target labels that contain `$` templates.
static RELABEL_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[a-zA-Z0-9_]+\}|[a-zA-Z0-9_]+))+[a-zA-Z0-9_]*)+$")
        .expect("the relabel target pattern compiles")
});

/// Which fields of a rule were written explicitly. Prometheus tells "left
/// out" from "written with the default value" in two checks; a wire rule
/// cannot, so [`RelabelConfig::from_proto`] judges by value.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Explicit {
    pub source_labels: bool,
    pub regex: bool,
}

impl RelabelConfig {
    /// Validates a wire rule as Prometheus validates a `relabel_configs`
    /// entry and compiles its regex. Fields are taken as they are: defaults
    /// must already be filled in (see [`RelabelConfig::default`]).
    pub fn from_proto(r: &pb::RelabelRule) -> Result<Self, RelabelError> {
        let explicit = Explicit {
            source_labels: !r.source_labels.is_empty(),
            regex: r.regex != DEFAULT_REGEX,
        };
        if r.action.is_empty() {
            return Err(RelabelError::EmptyAction);
        }
        Self::validate(r, explicit)
    }

    /// Converts to the wire form; `from_proto(&c.to_proto())` gives `c` back.
    pub fn to_proto(&self) -> pb::RelabelRule {
        pb::RelabelRule {
            source_labels: self.source_labels.clone(),
            separator: self.separator.clone(),
            regex: self.regex_source.clone(),
            modulus: self.modulus,
            target_label: self.target_label.clone(),
            replacement: self.replacement.clone(),
            action: self.action.as_str().to_string(),
        }
    }

    /// Validates a rule whose defaults are filled in; `explicit` says which
    /// fields the user wrote, for the checks where Prometheus cares.
    pub(crate) fn validate(r: &pb::RelabelRule, explicit: Explicit) -> Result<Self, RelabelError> {
        use Action::*;
        let action = Action::parse(&r.action)?;
        for name in &r.source_labels {
            if !is_valid_label_name(name) {
                return Err(RelabelError::InvalidSourceLabel(name.clone()));
            }
        }
        let regex = compile_go_regex(&r.regex).map_err(|reason| RelabelError::InvalidRegex {
            regex: r.regex.clone(),
            reason,
        })?;
        let target = r.target_label.as_str();
        let invalid_target = || RelabelError::InvalidTargetLabel {
            label: target.to_string(),
            action,
        };
        if action == HashMod && r.modulus == 0 {
            return Err(RelabelError::ZeroModulus);
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(RelabelError::MissingTargetLabel(action));
        }
        if action == Replace {
            let ok = if target.contains('$') {
                RELABEL_TARGET.is_match(target)
            } else {
                is_valid_label_name(target)
            };
            if !ok {
                return Err(invalid_target());
            }
        }
        let simple_target = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
        if simple_target && !is_valid_label_name(target) {
            return Err(invalid_target());
        }
        if simple_target && r.replacement != DEFAULT_REPLACEMENT {
            return Err(RelabelError::ReplacementNotAllowed(action));
        }
        if action == LabelMap && !RELABEL_TARGET.is_match(&r.replacement) {
            return Err(RelabelError::InvalidReplacement {
                replacement: r.replacement.clone(),
                action,
            });
        }
        if action == HashMod && !is_valid_label_name(target) {
            return Err(invalid_target());
        }
        if matches!(action, KeepEqual | DropEqual)
            && (explicit.regex || r.modulus != 0 || r.separator != DEFAULT_SEPARATOR)
        {
            return Err(RelabelError::OnlySourceAndTarget(action));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (explicit.source_labels
                || !target.is_empty()
                || r.modulus != 0
                || r.separator != DEFAULT_SEPARATOR
                || r.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(RelabelError::OnlyRegex(action));
        }
        Ok(Self {
            source_labels: r.source_labels.clone(),
            separator: r.separator.clone(),
            regex,
            regex_source: r.regex.clone(),
            modulus: r.modulus,
            target_label: r.target_label.clone(),
            replacement: r.replacement.clone(),
            action,
        })
    }
}

/// Applies the rules in order to `lb`; returns false when a rule dropped the
/// set (`lb` is then left part-way relabeled and should be discarded).
pub fn process(lb: &mut LabelsBuilder, rules: &[RelabelConfig]) -> bool {
    dropping_rule(lb, rules).is_none()
}

/// Applies the rules in order to `lb`; returns the index of the rule that
/// dropped the set, `None` when none did (as [`process`], for saying why).
pub fn dropping_rule(lb: &mut LabelsBuilder, rules: &[RelabelConfig]) -> Option<usize> {
    rules.iter().position(|rule| !apply(lb, rule))
}

/// Relabels a set; returns `None` when a rule dropped it.
pub fn process_labels(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = labels.builder();
    process(&mut lb, rules).then(|| lb.labels())
}

/// Applies one rule; returns false when it drops the set.
fn apply(lb: &mut LabelsBuilder, rule: &RelabelConfig) -> bool {
    let val = rule
        .source_labels
        .iter()
        .map(|n| lb.get(n).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    let current = |lb: &LabelsBuilder, name: &str| lb.get(name).unwrap_or("").to_string();
    match rule.action {
        Action::Drop => return !rule.regex.is_match(&val),
        Action::Keep => return rule.regex.is_match(&val),
        Action::DropEqual => return current(lb, &rule.target_label) != val,
        Action::KeepEqual => return current(lb, &rule.target_label) == val,
        Action::Replace => {
            // No match: nothing changes.
            let Some(caps) = rule.regex.captures(&val) else {
                return true;
            };
            let target = expand(&caps, &rule.regex, &rule.target_label);
            if !is_valid_label_name(&target) {
                return true;
            }
            let value = expand(&caps, &rule.regex, &rule.replacement);
            // An empty value deletes the label (LabelsBuilder::set does).
            lb.set(target, value);
        }
        Action::Lowercase => {
            lb.set(rule.target_label.clone(), go_lowercase(&val));
        }
        Action::Uppercase => {
            lb.set(rule.target_label.clone(), go_uppercase(&val));
        }
        Action::HashMod => {
            let sum = Md5::digest(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&sum[8..]);
            let m = u64::from_be_bytes(tail) % rule.modulus;
            lb.set(rule.target_label.clone(), m.to_string());
        }
        Action::LabelMap => {
            // Rules see the set as it was when the rule started.
            for (name, value) in snapshot(lb) {
                if let Some(caps) = rule.regex.captures(&name) {
                    let new_name = expand(&caps, &rule.regex, &rule.replacement);
                    // Prometheus would set a label with an empty name; a
                    // label set here cannot hold one, so skip it.
                    if !new_name.is_empty() {
                        lb.set(new_name, value);
                    }
                }
            }
        }
        Action::LabelDrop => {
            lb.retain(|name, _| !rule.regex.is_match(name));
        }
        Action::LabelKeep => {
            lb.retain(|name, _| rule.regex.is_match(name));
        }
    }
    true
}

fn snapshot(lb: &LabelsBuilder) -> Vec<(String, String)> {
    lb.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Expands a Go regexp template (`$1`, `${1}`, `$name`, `${name}`, `$$`) as
/// Go's `Regexp.Expand` does: a name is the longest run of letters, digits
/// and `_`; a name that is all digits (without a leading zero) is a group
/// number; unknown or unmatched groups expand to nothing; a malformed
/// reference leaves the `$` as text.
fn expand(caps: &Captures<'_>, regex: &Regex, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        match parse_reference(&rest[1..]) {
            Some((name, after)) => {
                out.push_str(group(caps, regex, name));
                rest = after;
            }
            None => {
                out.push('$');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses the reference after a `$`: returns the name and the remaining text.
fn parse_reference(s: &str) -> Option<(&str, &str)> {
    let is_word = |c: char| c.is_alphabetic() || c.is_numeric() || c == '_';
    if let Some(inner) = s.strip_prefix('{') {
        let end = inner.find('}')?;
        let name = &inner[..end];
        if name.is_empty() || !name.chars().all(is_word) {
            return None;
        }
        return Some((name, &inner[end + 1..]));
    }
    let end = s.find(|c: char| !is_word(c)).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((&s[..end], &s[end..]))
}

fn group<'t>(caps: &Captures<'t>, regex: &Regex, name: &str) -> &'t str {
    let number =
        if name.bytes().all(|b| b.is_ascii_digit()) && !(name.len() > 1 && name.starts_with('0')) {
            name.parse::<usize>().ok()
        } else {
            None
        };
    let m = match number {
        Some(n) => caps.get(n),
        None => regex
            .capture_names()
            .flatten()
            .any(|n| n == name)
            .then(|| caps.name(name))
            .flatten(),
    };
    m.map_or("", |m| m.as_str())
}

/// Lowercases one character at a time, as Go's `strings.ToLower` does
/// (no context-dependent rules such as the final sigma).
fn go_lowercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut it = c.to_lowercase();
            // Only U+0130 lowercases to two characters; Go maps it to 'i'.
            it.next().unwrap_or(c)
        })
        .collect()
}

/// Uppercases one character at a time, as Go's `strings.ToUpper` does:
/// characters whose uppercase is several characters (`ß`) stay as they are.
fn go_uppercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut it = c.to_uppercase();
            match (it.next(), it.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
