//! The fake API server's objects and their history of changes, each
//! stamped with the next value of one global resourceVersion, and what a
//! watch with a given [`Filter`] sees of that history.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::selector::{FieldRequirement, LabelRequirement};
use super::Kind;

/// How many changes are kept for watches; a watch from before the oldest
/// kept one gets 410 Gone ([`Store::compact`] forgets them all).
const HISTORY: usize = 10_000;

/// Where an object is kept: kind, namespace (empty for nodes), name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    kind: Kind,
    namespace: String,
    name: String,
}

impl Key {
    pub(super) fn new(kind: Kind, namespace: &str, name: &str) -> Key {
        Key {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub(super) fn of(object: &Value) -> Result<Key> {
        let kind_name = object["kind"].as_str().unwrap_or_default();
        let kind = Kind::from_name(kind_name)
            .with_context(|| format!("unsupported kind {kind_name:?} in {object}"))?;
        let meta = &object["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        let namespace = meta["namespace"].as_str().unwrap_or_default();
        if name.is_empty() {
            bail!("{kind_name} without metadata.name: {object}");
        }
        if kind.namespaced() == namespace.is_empty() {
            bail!("{kind_name} {name}: metadata.namespace is required for namespaced kinds only");
        }
        Ok(Key::new(kind, namespace, name))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.namespaced() {
            write!(f, "{} {}/{}", self.kind.name(), self.namespace, self.name)
        } else {
            write!(f, "{} {}", self.kind.name(), self.name)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Added,
    Modified,
    Deleted,
}

/// One change, as kept for watches.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    kind: Kind,
    op: Op,
    /// The object before the change (none for an addition).
    old: Option<Value>,
    /// The object after it; for a deletion, its last state with the
    /// deletion's resourceVersion.
    new: Value,
}

/// The objects and their history.
#[derive(Default)]
pub(super) struct Store {
    /// The global resourceVersion: that of the latest change.
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Changes up to this resourceVersion are forgotten.
    compacted: u64,
}

impl Store {
    pub(super) fn add(&mut self, mut object: Value) -> Result<()> {
        let key = Key::of(&object)?;
        if self.objects.contains_key(&key) {
            bail!("{key} already exists");
        }
        self.rv += 1;
        stamp(&mut object, key.kind, self.rv);
        self.objects.insert(key.clone(), object.clone());
        self.record(key.kind, Op::Added, None, object);
        Ok(())
    }

    pub(super) fn modify(&mut self, mut object: Value) -> Result<()> {
        let key = Key::of(&object)?;
        let Some(old) = self.objects.get(&key).cloned() else {
            bail!("{key} does not exist");
        };
        self.rv += 1;
        stamp(&mut object, key.kind, self.rv);
        self.objects.insert(key.clone(), object.clone());
        self.record(key.kind, Op::Modified, Some(old), object);
        Ok(())
    }

    pub(super) fn delete(&mut self, key: &Key) -> Result<()> {
        let Some(old) = self.objects.remove(key) else {
            bail!("{key} does not exist");
        };
        self.rv += 1;
        let mut last = old.clone();
        stamp(&mut last, key.kind, self.rv);
        self.record(key.kind, Op::Deleted, Some(old), last);
        Ok(())
    }

    /// Deletes every object, one change each.
    pub(super) fn clear(&mut self) -> Result<()> {
        let keys: Vec<Key> = self.objects.keys().cloned().collect();
        keys.iter().try_for_each(|k| self.delete(k))
    }

    /// Forgets the history: watches from before now get 410 Gone.
    pub(super) fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
    }

    /// Forgets the history and moves the version on without a change, so
    /// that every open watch, even one that has seen the latest change,
    /// gets 410 Gone and must list again (as after an API server's watch
    /// cache is reset).
    pub(super) fn expire(&mut self) {
        self.rv += 1;
        self.compact();
    }

    /// The resourceVersion of the latest change.
    pub(super) fn rv(&self) -> u64 {
        self.rv
    }

    fn record(&mut self, kind: Kind, op: Op, old: Option<Value>, new: Value) {
        self.history.push_back(Change {
            rv: self.rv,
            kind,
            op,
            old,
            new,
        });
        while self.history.len() > HISTORY {
            if let Some(gone) = self.history.pop_front() {
                self.compacted = gone.rv;
            }
        }
    }

    pub(super) fn list(&self, filter: &Filter) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, o)| k.kind == filter.kind && filter.matches(o))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// The watch events after resourceVersion `since` for `filter`, and
    /// the resourceVersion they bring the watch to; fails with the oldest
    /// resourceVersion one can watch from if `since` is older.
    pub(super) fn events_after(
        &self,
        since: u64,
        filter: &Filter,
    ) -> Result<(Vec<Value>, u64), u64> {
        if since < self.compacted {
            return Err(self.compacted);
        }
        let events = self
            .history
            .iter()
            .filter(|c| c.rv > since && c.kind == filter.kind)
            .filter_map(|c| watch_event(c, filter))
            .collect();
        Ok((events, self.rv.max(since)))
    }
}

/// Fills in `kind` and `apiVersion` and sets `metadata.resourceVersion`.
fn stamp(object: &mut Value, kind: Kind, rv: u64) {
    object["kind"] = json!(kind.name());
    object["apiVersion"] = json!(kind.api_version());
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
}

/// The event a watcher with `filter` sees for `change`, if any: a change
/// that makes an object match (stop matching) is an addition (deletion).
fn watch_event(change: &Change, filter: &Filter) -> Option<Value> {
    let was = change.old.as_ref().is_some_and(|o| filter.matches(o));
    let is = filter.matches(&change.new);
    let kind = match (change.op, was, is) {
        (Op::Added, _, true) => "ADDED",
        (Op::Modified, true, true) => "MODIFIED",
        (Op::Modified, false, true) => "ADDED",
        (Op::Modified, true, false) => "DELETED",
        (Op::Deleted, true, _) => "DELETED",
        _ => return None,
    };
    Some(json!({"type": kind, "object": change.new}))
}

/// What a list or watch asks for.
#[derive(Debug)]
pub(super) struct Filter {
    pub(super) kind: Kind,
    /// `None`: all namespaces.
    pub(super) namespace: Option<String>,
    pub(super) labels: Vec<LabelRequirement>,
    pub(super) fields: Vec<FieldRequirement>,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        if let Some(ns) = &self.namespace {
            if meta["namespace"].as_str() != Some(ns.as_str()) {
                return false;
            }
        }
        let labels = &meta["labels"];
        self.labels.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|r| r.matches(object))
    }
}

#[cfg(test)]
mod tests {
    use super::super::selector::parse_label_selector;
    use super::*;

    #[test]
    fn watches_see_objects_enter_and_leave_their_selection() {
        let mut store = Store::default();
        let pod = |labels: Value| {
            json!({
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "a", "labels": labels},
            })
        };
        store.add(pod(json!({"app": "db"}))).unwrap();
        store.modify(pod(json!({"app": "web"}))).unwrap();
        store.modify(pod(json!({"app": "web", "v": "2"}))).unwrap();
        store.modify(pod(json!({"app": "db"}))).unwrap();
        store.delete(&Key::of(&pod(json!({}))).unwrap()).unwrap();
        let filter = Filter {
            kind: Kind::Pod,
            namespace: Some("a".into()),
            labels: parse_label_selector("app=web").unwrap(),
            fields: Vec::new(),
        };
        let (events, rv) = store.events_after(0, &filter).unwrap();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
        assert_eq!(events[0]["object"]["metadata"]["resourceVersion"], "2");
        assert_eq!(rv, 5);
        let other_ns = Filter {
            namespace: Some("b".into()),
            ..filter
        };
        assert!(store.events_after(0, &other_ns).unwrap().0.is_empty());
        let all = Filter {
            kind: Kind::Pod,
            namespace: None,
            labels: Vec::new(),
            fields: Vec::new(),
        };
        let (events, _) = store.events_after(3, &all).unwrap();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["MODIFIED", "DELETED"]);
        store.compacted = 4;
        assert_eq!(
            store.events_after(3, &all).err(),
            Some(4),
            "410 Gone before the kept history"
        );
    }

    #[test]
    fn objects_need_a_known_kind_and_the_right_scope() {
        assert!(Key::of(&json!({"kind": "Node", "metadata": {"name": "n"}})).is_ok());
        assert!(
            Key::of(&json!({"kind": "Node", "metadata": {"name": "n", "namespace": "a"}})).is_err()
        );
        assert!(Key::of(&json!({"kind": "Pod", "metadata": {"name": "p"}})).is_err());
        assert!(
            Key::of(&json!({"kind": "Secret", "metadata": {"name": "s", "namespace": "a"}}))
                .is_err()
        );
    }
}
