//! The simulated Authentik group table and its write rules.
//!
//! Groups are kept in one shape (a list of parents); the API layer renders
//! them as the ≥ 2025.12 `parents` shape or the legacy `parent` shape.
//! Writes are validated the way Authentik's `GroupSerializer` does (field
//! errors as `{"field": ["message"]}`), including the unique `name`.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use uuid::Uuid;

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

/// All groups, by pk.
#[derive(Default)]
pub struct GroupTable {
    groups: HashMap<Uuid, SimGroup>,
}

impl GroupTable {
    /// Groups ordered by name, as Authentik lists them.
    pub fn sorted(&self) -> Vec<&SimGroup> {
        let mut all: Vec<&SimGroup> = self.groups.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.pk.cmp(&b.pk)));
        all
    }

    pub fn get(&self, pk: Uuid) -> Option<&SimGroup> {
        self.groups.get(&pk)
    }

    /// Groups listing `pk` among their parents.
    pub fn children(&self, pk: Uuid) -> Vec<&SimGroup> {
        let mut children: Vec<&SimGroup> = self
            .groups
            .values()
            .filter(|g| g.parents.contains(&pk))
            .collect();
        children.sort_by(|a, b| a.name.cmp(&b.name));
        children
    }

    fn name_taken(&self, name: &str, except: Option<Uuid>) -> bool {
        self.groups
            .values()
            .any(|g| g.name == name && Some(g.pk) != except)
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
        let group = match target {
            Some(pk) => self.groups.get_mut(&pk).ok_or_else(FieldErrors::new)?,
            None => {
                let group = SimGroup::new(String::new());
                self.groups.entry(group.pk).or_insert(group)
            }
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
        Ok(group.clone())
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
        for group in self.groups.values_mut() {
            group.parents.retain(|p| *p != pk);
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
        self.groups.insert(group.pk, group.clone());
        Ok(group)
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
        if after.name != before.name && self.name_taken(&after.name, Some(pk)) {
            return Err(SimGroupError::DuplicateName(after.name));
        }
        self.groups.insert(pk, after.clone());
        Ok(after)
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
