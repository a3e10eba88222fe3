//! The simulated oCIS data (spaces, grants, groups), the rules oCIS applies
//! to them, and their libregraph JSON shapes.
//!
//! [`State`] finds a space by id or by `driveAlias` and a group by id or by
//! name without scanning: it keeps lookups next to the records. A space's
//! id and alias are its keys, so they are private and never change. Each
//! space keeps its rendered JSON until it is next borrowed mutably, so a
//! list of every space copies bytes instead of rendering each one again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};

/// Space role ids oCIS accepts on a space root.
pub(crate) const MANAGER: &str = "312c0871-5ef7-4b3a-85b6-0e4074c64049";
pub(crate) const SPACE_EDITOR: &str = "58c63c02-1d89-4572-916a-870abc5a1b7d";
pub(crate) const SPACE_VIEWER: &str = "a8d5fe5e-96e3-418d-825b-534dbdf22b99";

/// Storage provider id prefixed to every drive id.
const STORAGE_ID: &str = "storage-users-1";

/// Characters oCIS refuses in a space name.
const FORBIDDEN: &[char] = &['/', '\\', '.', ':', '?', '*', '"', '>', '<', '|'];

/// Which flavour of libregraph a response is rendered in: oCIS answers
/// `/graph/v1.0/...` with the cs3 shape of a grant (`grantedToIdentities`,
/// legacy role names) and `/graph/v1beta1/...` with the unified one
/// (`grantedToV2`, role ids, a permission id); see `APIVersion` in oCIS's
/// `services/graph/pkg/service/v0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    V1,
    V1Beta1,
}

#[derive(Default)]
pub(crate) struct State {
    /// Creation number -> space: iterating gives creation order.
    drives: BTreeMap<u64, DriveRecord>,
    /// Drive id -> creation number.
    drive_numbers: HashMap<String, u64>,
    /// `driveAlias` -> creation numbers (oCIS does not make aliases unique).
    by_alias: HashMap<String, BTreeSet<u64>>,
    next_drive: u64,
    /// Group id -> group.
    groups: HashMap<String, GroupRecord>,
    /// Group name -> id (names are unique: a second create is a 409).
    group_ids: HashMap<String, String>,
}

pub(crate) struct DriveRecord {
    /// `storage-users-1$<space id>`.
    id: String,
    pub space_id: String,
    pub name: String,
    pub description: String,
    alias: Option<String>,
    pub quota_total: u64,
    pub trashed: bool,
    pub modified: String,
    /// Bumped on every change, for `root.eTag`.
    pub revision: u64,
    pub permissions: Vec<PermissionRecord>,
    /// [`DriveRecord::to_json`] per [`Api`], dropped by [`State::drive_mut`].
    rendered: [Option<Box<str>>; 2],
}

pub(crate) struct PermissionRecord {
    /// `g:<group id>` or `u:<user id>`.
    pub id: String,
    pub roles: Vec<String>,
    pub grantee: Grantee,
}

pub(crate) enum Grantee {
    User { id: String, name: String },
    Group { id: String, name: String },
}

pub(crate) struct GroupRecord {
    pub id: String,
    pub name: String,
}

/// A space as the handle reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDrive {
    pub id: String,
    pub name: String,
    pub description: String,
    pub drive_alias: Option<String>,
    pub quota_total: u64,
    /// Disabled (`root.deleted.state == "trashed"`).
    pub trashed: bool,
}

/// A grant as the handle reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPermission {
    /// `g:<group id>` or `u:<user id>`.
    pub id: String,
    pub roles: Vec<String>,
}

impl From<&DriveRecord> for SimDrive {
    fn from(d: &DriveRecord) -> Self {
        SimDrive {
            id: d.id.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            drive_alias: d.alias.clone(),
            quota_total: d.quota_total,
            trashed: d.trashed,
        }
    }
}

impl From<&PermissionRecord> for SimPermission {
    fn from(p: &PermissionRecord) -> Self {
        SimPermission {
            id: p.id.clone(),
            roles: p.roles.clone(),
        }
    }
}

impl State {
    /// Every space, in creation order.
    pub fn drives(&self) -> impl Iterator<Item = &DriveRecord> {
        self.drives.values()
    }

    pub fn drive(&self, id: &str) -> Option<&DriveRecord> {
        self.drives.get(self.drive_numbers.get(id)?)
    }

    /// A space to change: its rendered JSON is dropped.
    pub fn drive_mut(&mut self, id: &str) -> Option<&mut DriveRecord> {
        let drive = self.drives.get_mut(self.drive_numbers.get(id)?)?;
        drive.rendered = [None, None];
        Some(drive)
    }

    /// Every space as `api` renders it, in creation order, comma-separated
    /// (the inside of a JSON array); renders only spaces changed since.
    pub fn rendered_drives(&mut self, base_url: &str, api: Api) -> Vec<u8> {
        let slot = api as usize;
        let mut out = Vec::new();
        for (i, drive) in self.drives.values_mut().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if drive.rendered[slot].is_none() {
                drive.rendered[slot] = Some(drive.to_json(base_url, api).to_string().into());
            }
            out.extend_from_slice(
                drive.rendered[slot]
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        out
    }

    /// The spaces with this `driveAlias`, in creation order.
    pub fn drives_with_alias(&self, alias: &str) -> impl Iterator<Item = &DriveRecord> {
        self.by_alias
            .get(alias)
            .into_iter()
            .flatten()
            .filter_map(|number| self.drives.get(number))
    }

    pub fn add_drive(&mut self, drive: DriveRecord) {
        let number = self.next_drive;
        self.next_drive += 1;
        self.drive_numbers.insert(drive.id.clone(), number);
        if let Some(alias) = &drive.alias {
            self.by_alias
                .entry(alias.clone())
                .or_default()
                .insert(number);
        }
        self.drives.insert(number, drive);
    }

    /// Removes a space for good; `false` if there was none.
    pub fn remove_drive(&mut self, id: &str) -> bool {
        let Some(number) = self.drive_numbers.remove(id) else {
            return false;
        };
        let Some(drive) = self.drives.remove(&number) else {
            return false;
        };
        if let Some(alias) = &drive.alias {
            if let Some(numbers) = self.by_alias.get_mut(alias) {
                numbers.remove(&number);
                if numbers.is_empty() {
                    self.by_alias.remove(alias);
                }
            }
        }
        true
    }

    pub fn group_by_name(&self, name: &str) -> Option<&GroupRecord> {
        self.groups.get(self.group_ids.get(name)?)
    }

    /// A group by id, or else by name (as `GET /groups/{name-or-id}`).
    pub fn group(&self, name_or_id: &str) -> Option<&GroupRecord> {
        self.groups
            .get(name_or_id)
            .or_else(|| self.group_by_name(name_or_id))
    }

    /// Removes the group `id` (grants on spaces are left as they are);
    /// `false` if there is none.
    pub fn remove_group(&mut self, id: &str) -> bool {
        match self.groups.remove(id) {
            Some(group) => {
                self.group_ids.remove(&group.name);
                true
            }
            None => false,
        }
    }

    /// Adds a group and returns its id.
    pub fn add_group(&mut self, name: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.group_ids.insert(name.to_string(), id.clone());
        self.groups.insert(
            id.clone(),
            GroupRecord {
                id: id.clone(),
                name: name.to_string(),
            },
        );
        id
    }
}

impl DriveRecord {
    /// A new project space whose creator is its Manager.
    pub fn new(
        name: String,
        description: String,
        alias: Option<String>,
        quota_total: u64,
        creator: &super::auth::Caller,
    ) -> Self {
        let space_id = uuid::Uuid::new_v4().to_string();
        DriveRecord {
            id: format!("{STORAGE_ID}${space_id}"),
            space_id,
            name,
            description,
            alias,
            quota_total,
            trashed: false,
            modified: now(),
            revision: 1,
            rendered: [None, None],
            permissions: vec![PermissionRecord {
                id: format!("u:{}", creator.id),
                roles: vec![MANAGER.to_string()],
                grantee: Grantee::User {
                    id: creator.id.clone(),
                    name: creator.name.clone(),
                },
            }],
        }
    }

    /// Records a change.
    pub fn touch(&mut self) {
        self.modified = now();
        self.revision += 1;
    }

    /// Whether `user_id` holds the Manager role on this space.
    pub fn is_manager(&self, user_id: &str) -> bool {
        let id = format!("u:{user_id}");
        self.permissions
            .iter()
            .any(|p| p.id == id && p.roles.iter().any(|r| r == MANAGER))
    }

    /// The libregraph `drive` JSON; `root.permissions` holds every grant
    /// on the space, in the shape of `api`.
    pub fn to_json(&self, base_url: &str, api: Api) -> Value {
        let permissions: Vec<Value> = self.permissions.iter().map(|p| p.to_json(api)).collect();
        let mut root = json!({
            "id": format!("{}!{}", self.id, self.space_id),
            "eTag": format!("\"{}\"", self.revision),
            "permissions": permissions,
            "webDavUrl": format!("{base_url}/dav/spaces/{}", self.id.replace('$', "%24")),
        });
        if self.trashed {
            root["deleted"] = json!({ "state": "trashed" });
        }
        let remaining = if self.quota_total == 0 {
            u64::MAX / 2
        } else {
            self.quota_total
        };
        let mut drive = json!({
            "id": self.id,
            "name": self.name,
            "driveType": "project",
            "lastModifiedDateTime": self.modified,
            "owner": { "user": { "id": self.space_id, "displayName": "" } },
            "quota": { "total": self.quota_total, "used": 0, "remaining": remaining, "state": "normal" },
            "root": root,
            "webUrl": format!("{base_url}/f/{}", self.id.replace('$', "%24")),
            "special": [],
        });
        if !self.description.is_empty() {
            drive["description"] = json!(self.description);
        }
        if let Some(alias) = &self.alias {
            drive["driveAlias"] = json!(alias);
        }
        drive
    }
}

impl PermissionRecord {
    /// The libregraph `permission` JSON. In the v1.0 shape a grant has no
    /// id, its grantee is the one entry of `grantedToIdentities`, and its
    /// roles are legacy names (`roles` is absent when none has one).
    pub fn to_json(&self, api: Api) -> Value {
        let granted = match &self.grantee {
            Grantee::User { id, name } => json!({ "user": { "id": id, "displayName": name } }),
            Grantee::Group { id, name } => json!({ "group": { "id": id, "displayName": name } }),
        };
        match api {
            Api::V1Beta1 => json!({ "id": self.id, "roles": self.roles, "grantedToV2": granted }),
            Api::V1 => {
                let roles: Vec<&str> = self
                    .roles
                    .iter()
                    .filter_map(|role| legacy_role_name(role))
                    .collect();
                let mut permission = json!({ "grantedToIdentities": [granted] });
                if !roles.is_empty() {
                    permission["roles"] = json!(roles);
                }
                permission
            }
        }
    }
}

/// The name the v1.0 API gives a space role (oCIS's `unifiedrole`
/// `legacyNames`: the space viewer and editor keep their old v1 names).
fn legacy_role_name(role: &str) -> Option<&'static str> {
    match role {
        MANAGER => Some("manager"),
        SPACE_EDITOR => Some("editor"),
        SPACE_VIEWER => Some("viewer"),
        _ => None,
    }
}

impl GroupRecord {
    pub fn to_json(&self) -> Value {
        json!({ "id": self.id, "displayName": self.name, "groupTypes": [] })
    }
}

/// The role definitions listed with a space's permissions.
pub(crate) fn space_roles() -> Value {
    json!([
        { "id": SPACE_VIEWER, "displayName": "Can view", "description": "View and download.", "@libre.graph.weight": 1 },
        { "id": SPACE_EDITOR, "displayName": "Can edit", "description": "View, download, upload, edit, add and delete.", "@libre.graph.weight": 2 },
        { "id": MANAGER, "displayName": "Can manage", "description": "View, download, upload, edit, add, delete and manage members.", "@libre.graph.weight": 3 },
    ])
}

/// Whether `role` is a role oCIS accepts on a space root.
pub(crate) fn is_space_role(role: &str) -> bool {
    [MANAGER, SPACE_EDITOR, SPACE_VIEWER].contains(&role)
}

/// The trimmed space name, or why oCIS refuses it.
pub(crate) fn check_space_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("invalid spacename: spacename must not be empty".into());
    }
    if name.chars().count() > 255 {
        return Err("invalid spacename: spacename must be smaller than 255".into());
    }
    if name.contains(FORBIDDEN) {
        return Err(
            "invalid spacename: spacenames must not contain [/ \\ . : ? * \" > < |]".into(),
        );
    }
    Ok(name.to_string())
}

/// The current time as libregraph writes it.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
