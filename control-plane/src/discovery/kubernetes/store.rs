//! The objects Kubernetes discovery has listed and watched, one map per
//! kind, as Prometheus 2.42 keeps them in its informers' stores.
//!
//! Objects are decoded ([`objects::decode`]) when they arrive and kept typed;
//! a map's key is `namespace/name`, or just `name` when the namespace is
//! empty (nodes), as client-go's `MetaNamespaceKeyFunc` makes it. The roles
//! read the store through the getters here.

use std::collections::BTreeMap;

use serde_json::Value;

use super::objects::{
    self, EndpointSlice, Endpoints, Ingress, Node, Object, ObjectMeta, Pod, Service,
};

/// A kind of object the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
}

/// Every object known, per kind, keyed by [`key`].
#[derive(Clone, Debug, Default)]
pub struct Store {
    nodes: BTreeMap<String, Node>,
    pods: BTreeMap<String, Pod>,
    services: BTreeMap<String, Service>,
    endpoints: BTreeMap<String, Endpoints>,
    endpoint_slices: BTreeMap<String, EndpointSlice>,
    ingresses: BTreeMap<String, Ingress>,
}

/// Returns the store key of an object: `namespace/name`, or `name` when the
/// namespace is empty.
pub fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

impl Store {
    /// Inserts or replaces one object from a watch ADDED/MODIFIED event (or a
    /// list item). An object that does not decode leaves the store unchanged.
    pub fn upsert(&mut self, kind: Kind, object: Value) -> Result<(), serde_json::Error> {
        self.map_mut(kind).upsert(object)
    }

    /// Removes the object named in `object` (its metadata) from a DELETED
    /// event; an object the store does not hold is no error.
    pub fn delete(&mut self, kind: Kind, object: &Value) -> Result<(), serde_json::Error> {
        let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
        let meta: ObjectMeta = if metadata.is_null() {
            ObjectMeta::default()
        } else {
            objects::decode(metadata)?
        };
        self.map_mut(kind)
            .remove_key(&key(&meta.namespace, &meta.name));
        Ok(())
    }

    /// Replaces every object of `kind` in `namespace` (None = all namespaces;
    /// nodes have none) with `items` (a fresh list after a relist). An item
    /// that does not decode is left out, the others still replace the old
    /// objects, and the first such error is returned: one unreadable object
    /// must not keep every deleted object of the list alive.
    pub fn replace(
        &mut self,
        kind: Kind,
        namespace: Option<&str>,
        items: Vec<Value>,
    ) -> Result<(), serde_json::Error> {
        self.map_mut(kind).replace(namespace, items)
    }

    /// Returns how many objects of `kind` the store holds.
    pub fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Node => self.nodes.len(),
            Kind::Pod => self.pods.len(),
            Kind::Service => self.services.len(),
            Kind::Endpoints => self.endpoints.len(),
            Kind::EndpointSlice => self.endpoint_slices.len(),
            Kind::Ingress => self.ingresses.len(),
        }
    }

    /// Returns the node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Returns the pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods.get(&key(namespace, name))
    }

    /// Returns the service `namespace/name`.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.get(&key(namespace, name))
    }

    /// Returns every node, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Returns every pod, by key.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values()
    }

    /// Returns every service, by key.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// Returns every endpoints object, by key.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoints> {
        self.endpoints.values()
    }

    /// Returns every endpointslice, by key.
    pub fn endpoint_slices(&self) -> impl Iterator<Item = &EndpointSlice> {
        self.endpoint_slices.values()
    }

    /// Returns every ingress, by key.
    pub fn ingresses(&self) -> impl Iterator<Item = &Ingress> {
        self.ingresses.values()
    }

    fn map_mut(&mut self, kind: Kind) -> &mut dyn ObjectMap {
        match kind {
            Kind::Node => &mut self.nodes,
            Kind::Pod => &mut self.pods,
            Kind::Service => &mut self.services,
            Kind::Endpoints => &mut self.endpoints,
            Kind::EndpointSlice => &mut self.endpoint_slices,
            Kind::Ingress => &mut self.ingresses,
        }
    }
}

/// The edits of one kind's map, whatever its object type.
trait ObjectMap {
    fn upsert(&mut self, object: Value) -> Result<(), serde_json::Error>;
    fn remove_key(&mut self, key: &str);
    fn replace(
        &mut self,
        namespace: Option<&str>,
        items: Vec<Value>,
    ) -> Result<(), serde_json::Error>;
}

impl<T: Object> ObjectMap for BTreeMap<String, T> {
    fn upsert(&mut self, object: Value) -> Result<(), serde_json::Error> {
        let object: T = objects::decode(object)?;
        self.insert(meta_key(object.meta()), object);
        Ok(())
    }

    fn remove_key(&mut self, key: &str) {
        self.remove(key);
    }

    fn replace(
        &mut self,
        namespace: Option<&str>,
        items: Vec<Value>,
    ) -> Result<(), serde_json::Error> {
        self.retain(|_, o| namespace.is_some_and(|ns| o.meta().namespace != ns));
        let mut first_error = None;
        for item in items {
            match objects::decode::<T>(item) {
                Ok(object) => {
                    self.insert(meta_key(object.meta()), object);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn meta_key(meta: &ObjectMeta) -> String {
    key(&meta.namespace, &meta.name)
}
