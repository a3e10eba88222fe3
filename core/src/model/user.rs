//! A platform user, synced from Authentik tokens by `GET /users/me`.

use serde::{Deserialize, Serialize};

use super::Extra;
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
    /// Tenants the user is a member of other than as their creator (the
    /// `groups` claim, grants). Creators are members through the tenant's
    /// `createdBy`, so creating tenants never grows this document; the API
    /// shows both here.
    #[serde(default)]
    pub tenant_ids: Vec<Id>,
    /// Memberships granted other than by the token (by the previous
    /// service, kept by the migration): `GET /users/me` keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_tenant_ids: Vec<Id>,
    /// Platform admin by grant of the previous service, whatever the token's
    /// groups say: `GET /users/me` keeps it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub granted_platform_admin: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Stored fields this service does not model (read-only; see [`Extra`]).
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl User {
    /// A new member with only a subject: no profile, no tenants, no grants.
    pub fn new(subject: &str, now: Timestamp) -> Self {
        User {
            id: Id::new(),
            authentik_subject_id: subject.to_string(),
            email: String::new(),
            name: String::new(),
            role: Role::Member,
            platform_admin: false,
            tenant_ids: Vec::new(),
            granted_tenant_ids: Vec::new(),
            granted_platform_admin: false,
            created_at: now,
            updated_at: now,
            extra: Extra::default(),
        }
    }

    /// Whether the user belongs to the tenant `id` created by `created_by`:
    /// listed in `tenantIds`, or its creator.
    pub fn is_member(&self, id: Id, created_by: Option<Id>) -> bool {
        created_by == Some(self.id) || self.tenant_ids.contains(&id)
    }

    /// Whether the user may see the tenant (platform admins see every tenant).
    pub fn can_see(&self, id: Id, created_by: Option<Id>) -> bool {
        self.platform_admin || self.is_member(id, created_by)
    }

    /// Whether the user may change or delete the tenant: a platform admin,
    /// its creator, or a member whose role is `admin`.
    pub fn can_administer(&self, id: Id, created_by: Option<Id>) -> bool {
        self.platform_admin
            || created_by == Some(self.id)
            || (self.role == Role::Admin && self.tenant_ids.contains(&id))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creator_and_a_listed_member_belong_and_only_admins_and_creators_administer() {
        let now = Timestamp::now();
        let (tenant, other) = (Id::new(), Id::new());
        let member = User {
            tenant_ids: vec![tenant],
            ..User::new("member", now)
        };
        let creator = User::new("creator", now);
        let by_creator = Some(creator.id);
        assert!(member.can_see(tenant, by_creator) && !member.can_see(other, by_creator));
        assert!(creator.can_see(tenant, by_creator) && !creator.can_see(tenant, None));
        assert!(!member.can_administer(tenant, by_creator));
        assert!(creator.can_administer(tenant, by_creator));
        let tenant_admin = User {
            role: Role::Admin,
            ..member.clone()
        };
        assert!(
            tenant_admin.can_administer(tenant, None) && !tenant_admin.can_administer(other, None)
        );
        let platform = User {
            platform_admin: true,
            ..User::new("root", now)
        };
        assert!(platform.can_see(other, None) && platform.can_administer(other, None));
    }
}
