//! The lookups of the group table, kept in step with it: the table calls
//! [`GroupIndex::add`] for every group it stores and [`GroupIndex::remove`]
//! for the version it replaces or deletes, so every index always describes
//! exactly the stored groups.
//!
//! - by name (exact; names are unique), and all names in listing order
//!   with rank access for offset pagination;
//! - by top-level string attribute (`attributes={"key": "value"}`, the
//!   filters the provisioner sends), as the names of the matching groups in
//!   listing order;
//! - by parent, for the `children` every rendered group carries.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use uuid::Uuid;

use super::model::SimGroup;
use crate::ranked::RankedSet;

#[derive(Default)]
pub struct GroupIndex {
    by_name: HashMap<String, Uuid>,
    /// Every name, in the order Authentik lists groups (`ordering = ["name"]`).
    names: RankedSet<String>,
    /// `key -> string value -> names of the groups with that attribute`.
    by_attribute: HashMap<String, HashMap<String, RankedSet<String>>>,
    /// `parent pk -> pks of the groups listing it among their parents`.
    children: HashMap<Uuid, BTreeSet<Uuid>>,
}

impl GroupIndex {
    pub fn add(&mut self, group: &SimGroup) {
        self.by_name.insert(group.name.clone(), group.pk);
        self.names.insert(group.name.clone());
        for (key, value) in string_attributes(group) {
            self.by_attribute
                .entry(key.clone())
                .or_default()
                .entry(value.to_owned())
                .or_default()
                .insert(group.name.clone());
        }
        for parent in &group.parents {
            self.children.entry(*parent).or_default().insert(group.pk);
        }
    }

    pub fn remove(&mut self, group: &SimGroup) {
        self.by_name.remove(&group.name);
        self.names.remove(&group.name);
        for (key, value) in string_attributes(group) {
            let Some(values) = self.by_attribute.get_mut(key) else {
                continue;
            };
            if let Some(names) = values.get_mut(value) {
                names.remove(&group.name);
                if names.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_attribute.remove(key);
            }
        }
        for parent in &group.parents {
            if let Some(children) = self.children.get_mut(parent) {
                children.remove(&group.pk);
                if children.is_empty() {
                    self.children.remove(parent);
                }
            }
        }
    }

    /// The pk of the group named exactly `name`.
    pub fn pk_named(&self, name: &str) -> Option<Uuid> {
        self.by_name.get(name).copied()
    }

    /// Every name, in listing order.
    pub fn names(&self) -> &RankedSet<String> {
        &self.names
    }

    /// Names of the groups whose attribute `key` is the string `value`
    /// (`None`: no such group).
    pub fn names_with(&self, key: &str, value: &str) -> Option<&RankedSet<String>> {
        self.by_attribute.get(key)?.get(value)
    }

    /// Pks of the groups listing `pk` among their parents.
    pub fn children(&self, pk: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.children.get(&pk).into_iter().flatten().copied()
    }
}

/// The top-level attributes of `group` whose value is a string.
fn string_attributes(group: &SimGroup) -> impl Iterator<Item = (&String, &str)> {
    group
        .attributes
        .iter()
        .filter_map(|(key, value)| match value {
            Value::String(value) => Some((key, value.as_str())),
            _ => None,
        })
}
