//! The tenant group's access to its space: the group found (or created)
//! by name, then its grant matched by the group's *id*. oCIS keeps a
//! deleted group's grant on a space, with its name, for a while (35–70 s
//! observed), so a grant matched by name would look in sync for a group
//! that is gone; a grant that carries the tenant group's name but not its
//! current id is a deleted group's, which the pass removes as drift.
//! With `OCIS_CREATE_GROUPS` the group is the service's own, and its
//! cleanup deletes it.

use dezky_upstream::ocis::{Group, Invite, OcisClient, OcisError, Permission};

use super::{Failure, Pass};
use crate::reconcile::{Action, ActionKind};

/// State of the tenant group's grant after a pass.
pub(super) enum Access {
    Granted,
    /// oCIS does not know the group (and creating it is disabled).
    WaitingForGroup,
    /// Dry run on a space that does not exist or is disabled, or whose
    /// group a real pass would create: nothing more to read.
    Unknown,
}

/// The tenant's group as a pass found it (or made it).
pub(super) enum GroupAhead {
    Found(Group),
    Created(Group),
    Missing,
}

/// Looks the group `name` up, and creates it if it is missing and `create`
/// allows: the lookup is a direct read, so the create cannot duplicate it.
/// On a tenant's `first` pass the create goes first (a group's name is its
/// LDAP RDN in oCIS, so a second one is refused: 409, or 400 from some
/// backends), and the lookup follows only a refusal.
pub(super) async fn group_ahead(
    client: &OcisClient,
    name: &str,
    create: bool,
    first: bool,
) -> Result<GroupAhead, OcisError> {
    if create && first {
        match client.create_group(name).await {
            Ok(made) => return Ok(GroupAhead::Created(made)),
            Err(OcisError::Api {
                status: 400 | 409, ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match client.group(name).await? {
        Some(group) => GroupAhead::Found(group),
        None if create => GroupAhead::Created(client.create_group(name).await?),
        None => GroupAhead::Missing,
    })
}

impl Pass<'_> {
    /// Gives the tenant's group the configured role on the space, and
    /// removes grants of a deleted group of the same name. A space this
    /// pass `created` has no group grant yet (its creator is its only
    /// member), so its grants are not read; a concurrent grant shows as
    /// 409. `ahead` is the group's lookup (and create) if the pass made it
    /// already, while its create check waited.
    pub(super) async fn ensure_access(
        &mut self,
        drive_id: &str,
        group: &str,
        created: bool,
        ahead: Option<Result<GroupAhead, OcisError>>,
    ) -> Result<Access, Failure> {
        let grants = if created {
            Vec::new()
        } else {
            self.grants(drive_id).await?
        };
        let create = self.settings.create_groups;
        let found = match ahead {
            Some(ahead) => ahead?,
            None => group_ahead(self.client, group, create && self.mode.may_write(), false).await?,
        };
        let group_id = match found {
            GroupAhead::Found(found) => Some(found.id),
            GroupAhead::Created(made) => {
                self.actions
                    .push(Action::new(ActionKind::Create, format!("group {group}")));
                Some(made.id)
            }
            // Only in a dry run: the plan shows the create.
            GroupAhead::Missing if create => {
                self.actions
                    .push(Action::new(ActionKind::Create, format!("group {group}")));
                None
            }
            GroupAhead::Missing => None,
        };
        let grant_id = group_id.as_deref().map(Permission::group_id);
        self.remove_stale(drive_id, group, &grants, grant_id.as_deref())
            .await?;
        let (Some(group_id), Some(grant_id)) = (group_id, grant_id) else {
            return Ok(if create {
                Access::Unknown
            } else {
                Access::WaitingForGroup
            });
        };
        if let Some(grant) = grants.iter().find(|p| p.id == grant_id) {
            self.fix_role(drive_id, group, grant).await?;
            return Ok(Access::Granted);
        }
        let role = self.settings.group_role_id.as_str();
        self.actions.push(
            Action::new(ActionKind::Create, format!("grant {group}")).field(
                "role",
                serde_json::Value::Null,
                role,
            ),
        );
        if !self.mode.may_write() {
            return Ok(Access::Granted);
        }
        if self.client.invite_group(drive_id, &group_id, role).await? == Invite::AlreadyMember {
            // Granted meanwhile (409): make sure it carries our role.
            let grants = self.grants(drive_id).await?;
            if let Some(grant) = grants.iter().find(|p| p.id == grant_id) {
                self.fix_role(drive_id, group, grant).await?;
            }
        }
        Ok(Access::Granted)
    }

    /// Removes the grants named `group` that are not `current` (the group's
    /// grant id, if it exists): they belong to a deleted group.
    async fn remove_stale(
        &mut self,
        drive_id: &str,
        group: &str,
        grants: &[Permission],
        current: Option<&str>,
    ) -> Result<(), Failure> {
        let stale = grants.iter().filter(|p| {
            p.id.starts_with("g:")
                && p.group_name() == Some(group)
                && Some(p.id.as_str()) != current
        });
        for grant in stale {
            self.actions.push(
                Action::new(
                    ActionKind::Delete,
                    format!("grant {group} of a deleted group"),
                )
                .field("grant", grant.id.clone(), serde_json::Value::Null),
            );
            if self.mode.may_write() {
                self.client.remove_permission(drive_id, &grant.id).await?;
            }
        }
        Ok(())
    }

    /// The grants on space `drive_id`; a 404 for a space that exists means
    /// the service user is not one of its members.
    async fn grants(&self, drive_id: &str) -> Result<Vec<Permission>, Failure> {
        match self.client.permissions(drive_id).await {
            Err(OcisError::Api { status: 404, .. }) => Err(Failure::NotSpaceMember {
                drive: drive_id.to_string(),
                client: self.client.service_client_id().to_string(),
            }),
            result => Ok(result?),
        }
    }

    /// PATCHes a group grant back to the configured role.
    async fn fix_role(
        &mut self,
        drive_id: &str,
        group: &str,
        grant: &Permission,
    ) -> Result<(), Failure> {
        let role = self.settings.group_role_id.as_str();
        if grant.roles.len() == 1 && grant.roles[0] == role {
            return Ok(());
        }
        self.actions.push(
            Action::new(ActionKind::Update, format!("grant {group}")).field(
                "role",
                grant.roles.join(","),
                role,
            ),
        );
        if self.mode.may_write() {
            self.client
                .set_permission_role(drive_id, &grant.id, role)
                .await?;
        }
        Ok(())
    }

    /// Deletes the tenant's group when the service creates groups
    /// (`OCIS_CREATE_GROUPS`): it is the service's own.
    pub(super) async fn remove_group(&mut self, group: &str) -> Result<(), Failure> {
        if !self.settings.create_groups {
            return Ok(());
        }
        let Some(found) = self.client.group(group).await? else {
            return Ok(());
        };
        self.actions
            .push(Action::new(ActionKind::Delete, format!("group {group}")));
        if self.mode.may_write() {
            self.client.delete_group(&found.id).await?;
        }
        Ok(())
    }
}
