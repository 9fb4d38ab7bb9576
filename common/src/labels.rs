//! Label sets: sorted, unique names, no empty values (an empty value means the
//! label is absent, as in Prometheus), and a builder to edit them; and the
//! one definition of a valid label name and metric name.

use std::collections::BTreeMap;
use std::fmt;

use scrapegrid_proto::v1 as pb;

mod compact;
pub use compact::CompactLabels;

/// The label that names a metric.
pub const METRIC_NAME: &str = "__name__";

/// Returns whether `c` may start a label name (`[a-zA-Z_]`).
pub fn is_label_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// Returns whether `c` may follow the start of a label name
/// (`[a-zA-Z0-9_]`).
pub fn is_label_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Returns whether `c` may start a metric name (`[a-zA-Z_:]`).
pub fn is_metric_name_start(c: u8) -> bool {
    is_label_name_start(c) || c == b':'
}

/// Returns whether `c` may follow the start of a metric name
/// (`[a-zA-Z0-9_:]`).
pub fn is_metric_name_char(c: u8) -> bool {
    is_label_name_char(c) || c == b':'
}

/// Returns whether `name` is a valid label name, as Prometheus 2.42 checks
/// it (`model.LabelName.IsValid`): `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    match name.as_bytes().split_first() {
        Some((&first, rest)) => {
            is_label_name_start(first) && rest.iter().all(|&c| is_label_name_char(c))
        }
        None => false,
    }
}

/// Returns whether `name` is a valid metric name, as Prometheus 2.42 checks
/// it (`model.IsValidMetricName`): `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    match name.as_bytes().split_first() {
        Some((&first, rest)) => {
            is_metric_name_start(first) && rest.iter().all(|&c| is_metric_name_char(c))
        }
        None => false,
    }
}

/// One label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A label set, sorted by name with unique names and no empty values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Returns the empty label set.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds a set from pairs: sorts them, drops empty values, and keeps the
    /// last value of a repeated name.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n, v);
        }
        b.labels()
    }

    /// Wraps labels that are already sorted by name, unique and non-empty.
    /// Callers that cannot promise that use [`Labels::from_pairs`].
    pub fn from_sorted_unchecked(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Self(labels)
    }

    /// Returns the value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Returns a builder seeded with this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            map: self
                .0
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
        }
    }

    /// Returns a stable 64-bit hash (xxh3) of the set; stable across
    /// processes and versions, so it may be persisted and sent on the wire.
    pub fn stable_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// Converts to wire labels.
    pub fn to_proto(&self) -> Vec<pb::Label> {
        self.0
            .iter()
            .map(|l| pb::Label {
                name: l.name.clone(),
                value: l.value.clone(),
            })
            .collect()
    }

    /// Converts from wire labels, normalising order, duplicates and empties.
    pub fn from_proto(labels: &[pb::Label]) -> Self {
        Self::from_pairs(labels.iter().map(|l| (l.name.clone(), l.value.clone())))
    }
}

impl fmt::Display for Labels {
    /// Formats as Prometheus does: `{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", l.name, crate::go_quote(&l.value))?;
        }
        f.write_str("}")
    }
}

/// A mutable label set; setting an empty value deletes the label.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    map: BTreeMap<String, String>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (name, value) = (name.into(), value.into());
        if value.is_empty() {
            self.map.remove(&name);
        } else {
            self.map.insert(name, value);
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.map.remove(name);
        self
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) -> &mut Self {
        self.map.retain(|n, v| keep(n, v));
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Returns the current set.
    pub fn labels(&self) -> Labels {
        Labels(
            self.map
                .iter()
                .map(|(n, v)| Label {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
        )
    }
}

/// Sorts `items` by the label set `labels` gives each, in the order of
/// `Labels`' `Ord` (name, then value, label by label), stably.
///
/// Faster than comparing `Labels` for large slices: each label set is
/// written once into one buffer in an encoding whose byte order is that
/// order (`0x00` escaped as `00 01`, each name and value ended by `00 00`),
/// so comparisons are `memcmp`s over adjacent memory instead of walks over
/// scattered strings.
pub fn sort_by_labels<T>(items: &mut Vec<T>, labels: impl Fn(&T) -> &Labels) {
    if items.len() < 2 {
        return;
    }
    let mut arena: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(items.len());
    for item in items.iter() {
        let start = arena.len();
        for l in labels(item).iter() {
            for part in [&l.name, &l.value] {
                for &b in part.as_bytes() {
                    arena.push(b);
                    if b == 0 {
                        arena.push(1);
                    }
                }
                arena.extend_from_slice(&[0, 0]);
            }
        }
        spans.push((start, arena.len()));
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (spans[a], spans[b]);
        arena[sa.0..sa.1].cmp(&arena[sb.0..sb.1])
    });
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_validity() {
        for ok in ["a", "_", "__name__", "a1", "A_b", "Z9"] {
            assert!(is_valid_label_name(ok), "{ok}");
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for ok in [":", "a:b", "_:1", "job:rate5m"] {
            assert!(!is_valid_label_name(ok), "{ok}");
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b", "9:", "a\0"] {
            assert!(!is_valid_label_name(bad), "{bad}");
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.to_string(), r#"{a="3", b="2"}"#);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn stable_hash_depends_on_names_and_values() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let b = Labels::from_pairs([("a", "12")]);
        let c = Labels::from_pairs([("b", "2"), ("a", "1")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(a.stable_hash(), c.stable_hash());
    }

    #[test]
    fn sort_by_labels_keeps_the_order_of_labels() {
        let words = ["", "a", "a\0", "a\0b", "a\u{1}", "ab", "b", "\0", "é", "z"];
        let mut sets = Vec::new();
        for (i, n) in words.iter().enumerate() {
            for (j, v) in words.iter().enumerate() {
                let name = format!("n{n}");
                let v2 = words[(i * 7 + j) % words.len()];
                sets.push(Labels::from_pairs([(name.as_str(), *v), ("x", v2)]));
                sets.push(Labels::from_pairs([(name.as_str(), *v)]));
            }
        }
        sets.push(Labels::new());
        let mut items: Vec<(usize, Labels)> = sets.into_iter().enumerate().rev().collect();
        let mut want = items.clone();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        sort_by_labels(&mut items, |i| &i.1);
        assert_eq!(items, want);
    }
}
