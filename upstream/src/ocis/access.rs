//! Groups and a space's grants (the libregraph `groups` and v1beta1
//! `permissions` calls): who may use a tenant's space.

use reqwest::Method;

use super::{
    not_found_as_none, segment, Call, Collection, Group, Invite, InviteBody, NewGroup, OcisClient,
    OcisError, Permission, Recipient, RolesBody,
};

impl OcisClient {
    /// A group by name or id; `None` when oCIS does not know it.
    pub async fn group(&self, name_or_id: &str) -> Result<Option<Group>, OcisError> {
        let path = format!("/graph/v1.0/groups/{}", segment(name_or_id));
        not_found_as_none(self.json(Call::new(Method::GET, path)).await)
    }

    /// Creates a group (needs the Admin role).
    pub async fn create_group(&self, display_name: &str) -> Result<Group, OcisError> {
        let call = Call::new(Method::POST, "/graph/v1.0/groups".into())
            .body(&NewGroup { display_name })?;
        self.json(call).await
    }

    /// Grants `role_id` on a space to a group.
    pub async fn invite_group(
        &self,
        drive_id: &str,
        group_id: &str,
        role_id: &str,
    ) -> Result<Invite, OcisError> {
        let body = InviteBody {
            recipients: [Recipient {
                object_id: group_id,
                kind: "group",
            }],
            roles: [role_id],
        };
        let path = format!("/graph/v1beta1/drives/{}/root/invite", segment(drive_id));
        let call = Call::new(Method::POST, path).body(&body)?;
        match self.json::<Collection<Permission>>(call).await {
            Ok(granted) => Ok(Invite::Granted(granted.value)),
            Err(e) if e.status() == Some(409) => Ok(Invite::AlreadyMember),
            Err(e) => Err(e),
        }
    }

    /// The grants on a space root.
    pub async fn permissions(&self, drive_id: &str) -> Result<Vec<Permission>, OcisError> {
        let path = format!(
            "/graph/v1beta1/drives/{}/root/permissions",
            segment(drive_id)
        );
        let list: Option<Collection<Permission>> = self.json(Call::new(Method::GET, path)).await?;
        Ok(list.map(|c| c.value).unwrap_or_default())
    }

    /// Sets the role of one grant.
    pub async fn set_permission_role(
        &self,
        drive_id: &str,
        permission_id: &str,
        role_id: &str,
    ) -> Result<Permission, OcisError> {
        let path = format!(
            "/graph/v1beta1/drives/{}/root/permissions/{}",
            segment(drive_id),
            segment(permission_id)
        );
        let call = Call::new(Method::PATCH, path).body(&RolesBody { roles: [role_id] })?;
        self.json(call).await
    }

    /// Deletes a group (needs the Admin role); `false` if oCIS did not
    /// know it. oCIS keeps a deleted group's grants on spaces, with its name,
    /// for a while.
    pub async fn delete_group(&self, id: &str) -> Result<bool, OcisError> {
        let path = format!("/graph/v1.0/groups/{}", segment(id));
        Ok(not_found_as_none(self.empty(Call::new(Method::DELETE, path)).await)?.is_some())
    }

    /// Removes one grant (e.g. `g:<group id>`) from a space.
    pub async fn remove_permission(
        &self,
        drive_id: &str,
        permission_id: &str,
    ) -> Result<(), OcisError> {
        let path = format!(
            "/graph/v1beta1/drives/{}/root/permissions/{}",
            segment(drive_id),
            segment(permission_id)
        );
        self.empty(Call::new(Method::DELETE, path)).await
    }
}
