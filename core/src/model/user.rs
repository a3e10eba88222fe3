//! A platform user, synced from Authentik tokens by `GET /users/me`.

use serde::{Deserialize, Serialize};

use crate::{Id, Timestamp};

/// A user, as stored in `users`. Authorization is decided from this record only.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: Id,
    /// The token's `sub`; unique.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "8f14e45fceea167a5a36dedd4bea2543")
    )]
    pub authentik_subject_id: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "ada@acme.example.com"))]
    pub email: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "Ada Lovelace"))]
    pub name: String,
    /// Role inside the user's tenants: admins may change and delete them.
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub platform_admin: bool,
    /// Tenants the user is a member of.
    #[serde(default)]
    pub tenant_ids: Vec<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl User {
    /// Whether the user belongs to the tenant (platform admins see every tenant).
    pub fn can_see(&self, tenant: Id) -> bool {
        self.platform_admin || self.tenant_ids.contains(&tenant)
    }

    /// Whether the user may change or delete the tenant.
    pub fn can_administer(&self, tenant: Id) -> bool {
        self.platform_admin || (self.role == Role::Admin && self.tenant_ids.contains(&tenant))
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Member,
    Admin,
}
