//! Tests of Kubernetes discovery's pure part: the store's edits, and every
//! final-state case of Prometheus 2.42's `node_test.go`, `pod_test.go`,
//! `service_test.go`, `endpoints_test.go`, `endpointslice_test.go` and
//! `ingress_test.go` (objects fed through [`Store::upsert`], the role's
//! groups compared in full), one file per role, with edge cases of our own.
//!
//! Where a Go test expects a group with only its source after a delete, the
//! port expects no group: [`groups`] lists the groups that exist, and the
//! provider's diff sends the deletion. The `OwnNamespace` cases test which
//! namespaces the client watches, not the groups, and are not ported here.

mod endpoints;
mod endpointslice;
mod ingress;
mod node;
mod pod;
mod service;
mod store_edits;

use scrapegrid_common::Labels;
use serde_json::Value;

use super::roles::{groups, Role};
use super::store::{Kind, Store};
use crate::discovery::TargetGroup;

/// A label pair as the tests write them.
type Pair = (&'static str, &'static str);

/// Returns a store holding `objects`, upserted in order.
fn store_of(objects: Vec<(Kind, Value)>) -> Store {
    let mut store = Store::default();
    for (kind, object) in objects {
        store.upsert(kind, object).expect("test object decodes");
    }
    store
}

/// Returns the label set of `pairs` (an empty value means absent).
fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Returns the label set of all `parts` together.
fn ls_all(parts: &[&[Pair]]) -> Labels {
    ls(&parts.concat())
}

fn tg(source: &str, targets: Vec<Labels>, labels: Labels) -> TargetGroup {
    TargetGroup {
        source: source.to_string(),
        targets,
        labels,
    }
}

/// Asserts that the role yields exactly `want` from `store`, groups in
/// source order and targets in Prometheus's order.
#[track_caller]
fn assert_groups(role: Role, store: &Store, attach_node: bool, want: Vec<TargetGroup>) {
    let got = groups(role, store, attach_node);
    assert_eq!(got.len(), want.len(), "groups: {got:#?}");
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got.source, want.source);
        assert_eq!(got.labels, want.labels, "group labels of {}", want.source);
        assert_eq!(
            got.targets.len(),
            want.targets.len(),
            "targets of {}: {:#?}",
            want.source,
            got.targets
        );
        for (i, (g, w)) in got.targets.iter().zip(&want.targets).enumerate() {
            assert_eq!(g, w, "target {i} of {}", want.source);
        }
    }
}
