//! The simulated Authentik group table and its write rules.
//!
//! Groups are kept in one shape (a list of parents); the API layer renders
//! them as the ≥ 2025.12 `parents` shape or the legacy `parent` shape.
//! Writes are validated the way Authentik's `GroupSerializer` does (field
//! errors as `{"field": ["message"]}`), including the unique `name`.
//!
//! Every change replaces a whole group through [`GroupTable`]'s one store
//! step, which also updates the lookups in [`GroupIndex`]: finding a group
//! by name, by a string attribute or by parent never scans the table.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use uuid::Uuid;

use super::index::GroupIndex;
use crate::ranked::RankedSet;

/// One group as the simulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimGroup {
    /// The path key (`pk` / `group_uuid`).
    pub pk: Uuid,
    /// Derived from `pk` and, as in Authentik, not unique: never a key.
    pub num_pk: i64,
    pub name: String,
    pub is_superuser: bool,
    /// Parent groups (the legacy shape shows only the first).
    pub parents: Vec<Uuid>,
    pub users: Vec<i64>,
    /// Free JSON object, replaced whole by every write that sets it.
    pub attributes: Map<String, Value>,
    pub roles: Vec<Uuid>,
}

impl SimGroup {
    fn new(name: String) -> Self {
        let pk = Uuid::new_v4();
        SimGroup {
            pk,
            // 16 bits of the uuid: collisions happen, as with the real field.
            num_pk: i64::from((pk.as_u128() >> 112) as u16),
            name,
            is_superuser: false,
            parents: Vec::new(),
            users: Vec::new(),
            attributes: Map::new(),
            roles: Vec::new(),
        }
    }
}

/// Per-field validation messages, rendered as the 400 body.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// How a write request treats absent fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// `POST`: `name` required, defaults for the rest.
    Create,
    /// `PUT`: `name` required; omitted `users` and parents are wiped.
    Replace,
    /// `PATCH`: only the given fields change.
    Patch,
}

/// A validated write: `None` leaves a field as it is.
#[derive(Debug, Default)]
struct Changes {
    name: Option<String>,
    is_superuser: Option<bool>,
    parents: Option<Vec<Uuid>>,
    users: Option<Vec<i64>>,
    attributes: Option<Map<String, Value>>,
    roles: Option<Vec<Uuid>>,
}

/// Why an out-of-band mutation was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimGroupError {
    #[error("no group with pk {0}")]
    NotFound(Uuid),
    #[error("a group named {0:?} already exists")]
    DuplicateName(String),
}

/// All groups, by pk, and their lookups.
#[derive(Default)]
pub struct GroupTable {
    groups: HashMap<Uuid, SimGroup>,
    index: GroupIndex,
}

impl GroupTable {
    /// Groups ordered by name, as Authentik lists them.
    pub fn sorted(&self) -> Vec<&SimGroup> {
        self.in_order(self.index.names().iter()).collect()
    }

    /// The groups with these names, in the names' order.
    pub fn in_order<'a>(
        &'a self,
        names: impl Iterator<Item = &'a String> + 'a,
    ) -> impl Iterator<Item = &'a SimGroup> + 'a {
        names.filter_map(|name| self.named(name))
    }

    pub fn get(&self, pk: Uuid) -> Option<&SimGroup> {
        self.groups.get(&pk)
    }

    /// The group named exactly `name`.
    pub fn named(&self, name: &str) -> Option<&SimGroup> {
        self.index
            .pk_named(name)
            .and_then(|pk| self.groups.get(&pk))
    }

    /// Every name, in listing order (with rank access for pagination).
    pub fn names(&self) -> &RankedSet<String> {
        self.index.names()
    }

    /// Names of the groups whose top-level attribute `key` is the string
    /// `value`, in listing order (`None`: no such group).
    pub fn names_with_attribute(&self, key: &str, value: &str) -> Option<&RankedSet<String>> {
        self.index.names_with(key, value)
    }

    /// Groups listing `pk` among their parents, ordered by name.
    pub fn children(&self, pk: Uuid) -> Vec<&SimGroup> {
        let mut children: Vec<&SimGroup> = self
            .index
            .children(pk)
            .filter_map(|child| self.groups.get(&child))
            .collect();
        children.sort_by(|a, b| a.name.cmp(&b.name));
        children
    }

    fn name_taken(&self, name: &str, except: Option<Uuid>) -> bool {
        self.index
            .pk_named(name)
            .is_some_and(|pk| Some(pk) != except)
    }

    /// Stores `group` (new, or replacing the group with its pk) and keeps
    /// the index in step; the one place the table changes.
    fn store(&mut self, group: SimGroup) -> SimGroup {
        if let Some(old) = self.groups.get(&group.pk) {
            self.index.remove(old);
        }
        self.index.add(&group);
        self.groups.insert(group.pk, group.clone());
        group
    }

    /// Applies an API write (`body` as received) to a new group (`target`
    /// `None`) or an existing one.
    pub fn write(
        &mut self,
        target: Option<Uuid>,
        body: &Value,
        kind: WriteKind,
        legacy: bool,
    ) -> Result<SimGroup, FieldErrors> {
        let changes = self.validate(target, body, kind, legacy)?;
        let mut group = match target {
            Some(pk) => self.groups.get(&pk).cloned().ok_or_else(FieldErrors::new)?,
            None => SimGroup::new(String::new()),
        };
        if let Some(name) = changes.name {
            group.name = name;
        }
        if let Some(flag) = changes.is_superuser {
            group.is_superuser = flag;
        }
        if let Some(parents) = changes.parents {
            group.parents = parents;
        }
        if let Some(users) = changes.users {
            group.users = users;
        }
        if let Some(attributes) = changes.attributes {
            group.attributes = attributes;
        }
        if let Some(roles) = changes.roles {
            group.roles = roles;
        }
        Ok(self.store(group))
    }

    fn validate(
        &self,
        target: Option<Uuid>,
        body: &Value,
        kind: WriteKind,
        legacy: bool,
    ) -> Result<Changes, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(fields) = body.as_object() else {
            let got = json_type(body);
            errors.insert(
                "non_field_errors".into(),
                vec![format!(
                    "Invalid data. Expected a dictionary, but got {got}."
                )],
            );
            return Err(errors);
        };
        let mut changes = Changes::default();
        let mut fail = |field: &str, message: String| {
            errors.entry(field.to_owned()).or_default().push(message);
        };

        match fields.get("name") {
            None if kind != WriteKind::Patch => fail("name", "This field is required.".into()),
            None => {}
            Some(Value::String(name)) if name.trim().is_empty() => {
                fail("name", "This field may not be blank.".into())
            }
            Some(Value::String(name)) if self.name_taken(name, target) => {
                let message = if legacy {
                    "This field must be unique."
                } else {
                    "group with this name already exists."
                };
                fail("name", message.into())
            }
            Some(Value::String(name)) => changes.name = Some(name.clone()),
            Some(_) => fail("name", "Not a valid string.".into()),
        }

        match fields.get("is_superuser") {
            None => {}
            Some(Value::Bool(flag)) => changes.is_superuser = Some(*flag),
            Some(_) => fail("is_superuser", "Must be a valid boolean.".into()),
        }

        match fields.get("attributes") {
            None => {}
            Some(Value::Object(map)) => changes.attributes = Some(map.clone()),
            Some(_) => fail(
                "attributes",
                "Value must be a dictionary, and not have any duplicate keys.".into(),
            ),
        }

        let parents = if legacy {
            fields
                .get("parent")
                .map(|v| self.parse_legacy_parent(v, target))
        } else {
            fields.get("parents").map(|v| self.parse_parents(v, target))
        };
        let parent_field = if legacy { "parent" } else { "parents" };
        match parents {
            Some(Ok(parents)) => changes.parents = Some(parents),
            Some(Err(message)) => fail(parent_field, message),
            // A legacy `parent` is a nullable FK: left alone when absent.
            None if kind == WriteKind::Replace && !legacy => changes.parents = Some(Vec::new()),
            None => {}
        }

        // The simulator has no users and no roles: any pk is unknown.
        match fields.get("users") {
            None if kind == WriteKind::Replace => changes.users = Some(Vec::new()),
            None => {}
            Some(Value::Array(users)) => match users.first() {
                None => changes.users = Some(Vec::new()),
                Some(pk) => fail("users", unknown_pk(pk)),
            },
            Some(other) => fail("users", not_a_list(other)),
        }
        match fields.get("roles") {
            None => {}
            Some(Value::Array(roles)) => match roles.first() {
                None => changes.roles = Some(Vec::new()),
                Some(pk) => fail("roles", unknown_pk(pk)),
            },
            Some(other) => fail("roles", not_a_list(other)),
        }

        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }

    fn parse_parents(&self, value: &Value, target: Option<Uuid>) -> Result<Vec<Uuid>, String> {
        let Value::Array(items) = value else {
            return Err(not_a_list(value));
        };
        items
            .iter()
            .map(|item| self.parse_parent(item, target))
            .collect()
    }

    fn parse_legacy_parent(
        &self,
        value: &Value,
        target: Option<Uuid>,
    ) -> Result<Vec<Uuid>, String> {
        match value {
            Value::Null => Ok(Vec::new()),
            item => self.parse_parent(item, target).map(|pk| vec![pk]),
        }
    }

    fn parse_parent(&self, item: &Value, target: Option<Uuid>) -> Result<Uuid, String> {
        let pk = item
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .filter(|pk| self.groups.contains_key(pk))
            .ok_or_else(|| unknown_pk(item))?;
        if Some(pk) == target {
            return Err("Cannot set group as parent of itself.".into());
        }
        Ok(pk)
    }

    /// Removes a group (and drops it from its children's parents).
    pub fn remove(&mut self, pk: Uuid) -> Option<SimGroup> {
        let removed = self.groups.remove(&pk)?;
        self.index.remove(&removed);
        let children: Vec<Uuid> = self.index.children(pk).collect();
        for child in children {
            if let Some(mut group) = self.groups.get(&child).cloned() {
                group.parents.retain(|p| *p != pk);
                self.store(group);
            }
        }
        Some(removed)
    }

    /// Out-of-band create (as an operator would in the admin UI).
    pub fn insert(
        &mut self,
        name: &str,
        attributes: Map<String, Value>,
    ) -> Result<SimGroup, SimGroupError> {
        if self.name_taken(name, None) {
            return Err(SimGroupError::DuplicateName(name.to_owned()));
        }
        let mut group = SimGroup::new(name.to_owned());
        group.attributes = attributes;
        Ok(self.store(group))
    }

    /// Out-of-band change of one existing group.
    pub fn modify(
        &mut self,
        pk: Uuid,
        change: impl FnOnce(&mut SimGroup),
    ) -> Result<SimGroup, SimGroupError> {
        let before = self.groups.get(&pk).ok_or(SimGroupError::NotFound(pk))?;
        let mut after = before.clone();
        change(&mut after);
        // The pk is the key: a change of it is not a change of this group.
        after.pk = pk;
        if after.name != before.name && self.name_taken(&after.name, Some(pk)) {
            return Err(SimGroupError::DuplicateName(after.name));
        }
        Ok(self.store(after))
    }
}

fn unknown_pk(pk: &Value) -> String {
    let shown = match pk {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("Invalid pk \"{shown}\" - object does not exist.")
}

fn not_a_list(value: &Value) -> String {
    format!(
        "Expected a list of items but got type \"{}\".",
        json_type(value)
    )
}

/// Python's name of a JSON value's type, as DRF messages show it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_on_create_and_rename() {
        let mut table = GroupTable::default();
        let a = table
            .write(None, &json!({"name": "a"}), WriteKind::Create, false)
            .expect("create a");
        let dup = table.write(None, &json!({"name": "a"}), WriteKind::Create, false);
        assert_eq!(
            dup.expect_err("duplicate")["name"],
            vec!["group with this name already exists."]
        );
        table.insert("b", Map::new()).expect("create b");
        let rename = table.write(Some(a.pk), &json!({"name": "b"}), WriteKind::Patch, true);
        assert_eq!(
            rename.expect_err("rename onto b")["name"],
            vec!["This field must be unique."]
        );
        // Renaming a group to its own name is fine.
        table
            .write(Some(a.pk), &json!({"name": "a"}), WriteKind::Patch, false)
            .expect("same name");
    }

    #[test]
    fn indexes_follow_every_create_rename_update_and_delete() {
        let mut table = GroupTable::default();
        let tenant = |value: &str| {
            let mut attributes = Map::new();
            attributes.insert("tenant".into(), json!(value));
            attributes
        };
        let with = |table: &GroupTable, value: &str| -> Vec<String> {
            table
                .names_with_attribute("tenant", value)
                .map(|names| names.iter().cloned().collect())
                .unwrap_or_default()
        };
        let names = |groups: Vec<&SimGroup>| -> Vec<String> {
            groups.into_iter().map(|g| g.name.clone()).collect()
        };
        let parent = table.insert("parent", tenant("t1")).expect("parent");
        let child = table
            .write(
                None,
                &json!({"name": "child", "parents": [parent.pk.to_string()],
                        "attributes": {"tenant": "t1", "n": 1}}),
                WriteKind::Create,
                false,
            )
            .expect("child");
        assert_eq!(with(&table, "t1"), ["child", "parent"]);
        assert_eq!(names(table.children(parent.pk)), ["child"]);

        table
            .write(
                Some(child.pk),
                &json!({"name": "kid"}),
                WriteKind::Patch,
                false,
            )
            .expect("rename");
        assert!(table.named("child").is_none(), "old name is gone");
        assert_eq!(table.named("kid").map(|g| g.pk), Some(child.pk));
        assert_eq!(with(&table, "t1"), ["kid", "parent"]);
        assert_eq!(names(table.sorted()), ["kid", "parent"]);

        table
            .write(
                Some(child.pk),
                &json!({"attributes": {"tenant": "t2"}}),
                WriteKind::Patch,
                false,
            )
            .expect("new attributes");
        assert_eq!(
            (with(&table, "t1"), with(&table, "t2")),
            (vec!["parent".to_owned()], vec!["kid".to_owned()])
        );

        table
            .modify(parent.pk, |g| g.name = "root".into())
            .expect("out-of-band rename");
        assert!(table.named("parent").is_none());
        assert_eq!(with(&table, "t1"), ["root"]);
        assert_eq!(names(table.children(parent.pk)), ["kid"]);
        let reused = table
            .insert("parent", Map::new())
            .expect("a freed name is free");

        table.remove(parent.pk).expect("delete the parent");
        assert!(table.named("root").is_none());
        assert!(with(&table, "t1").is_empty());
        assert!(table.children(parent.pk).is_empty());
        assert_eq!(table.get(child.pk).map(|g| g.parents.clone()), Some(vec![]));

        table
            .modify(child.pk, |g| g.parents = vec![reused.pk])
            .expect("parents");
        assert_eq!(names(table.children(reused.pk)), ["kid"]);
        table
            .write(
                Some(child.pk),
                &json!({"name": "kid"}),
                WriteKind::Replace,
                false,
            )
            .expect("put wipes parents");
        assert!(table.children(reused.pk).is_empty());

        table.remove(child.pk).expect("delete the child");
        assert!(with(&table, "t2").is_empty());
        assert_eq!(names(table.sorted()), ["parent"]);
        assert_eq!(table.names().len(), 1);
    }

    #[test]
    fn put_wipes_users_and_parents_but_patch_keeps_them() {
        let mut table = GroupTable::default();
        let parent = table.insert("parent", Map::new()).expect("parent");
        let child = table
            .write(
                None,
                &json!({"name": "child", "parents": [parent.pk.to_string()]}),
                WriteKind::Create,
                false,
            )
            .expect("child");
        let patched = table
            .write(
                Some(child.pk),
                &json!({"attributes": {"k": 1}}),
                WriteKind::Patch,
                false,
            )
            .expect("patch");
        assert_eq!(patched.parents, vec![parent.pk]);
        let put = table
            .write(
                Some(child.pk),
                &json!({"name": "child"}),
                WriteKind::Replace,
                false,
            )
            .expect("put");
        assert!(put.parents.is_empty());
        assert_eq!(
            put.attributes, patched.attributes,
            "PUT without attributes keeps them"
        );
    }

    #[test]
    fn invalid_fields_are_reported_per_field() {
        let mut table = GroupTable::default();
        let errors = table
            .write(
                None,
                &json!({"name": "", "attributes": [], "users": [7], "parents": ["nope"]}),
                WriteKind::Create,
                false,
            )
            .expect_err("invalid");
        assert_eq!(errors["name"], vec!["This field may not be blank."]);
        assert!(errors.contains_key("attributes"));
        assert_eq!(
            errors["users"],
            vec!["Invalid pk \"7\" - object does not exist."]
        );
        assert!(errors.contains_key("parents"));
        assert!(table.sorted().is_empty(), "nothing was created");
    }
}
