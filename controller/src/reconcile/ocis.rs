//! The oCIS reconciler: one project space per tenant (DESIGN §7), and the
//! tenant's group holding the configured role on it.
//!
//! Invariants: a tenant never gets a second space (the space is found by
//! the stored drive id, then by its `driveAlias` `project/tenant-{slug}`,
//! before anything is created, so a crash between create and status write
//! is harmless); a converged tenant costs two reads (the space, its grants)
//! and no write on a direct pass, and none on a resync that the snapshot of
//! project spaces answers ([`resync`]); only the tenant group's grant is ever changed, never the
//! service user's own Manager grant.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dezky_core::model::{group_name, System, SystemState, Tenant};
use dezky_core::plans::PlanQuotas;
use dezky_upstream::ocis::{
    roles, Drive, DriveUpdate, NewDrive, OcisClient, OcisError, QuotaTotal,
};

use super::{Action, ActionKind, Mode, Outcome, Reconciler, SystemError};
use crate::snapshot::{Entry, Snapshot};

/// Prefix of the ownership marker in a space's description.
const MARKER_PREFIX: &str = "dezky tenant ";

/// Longest space name oCIS accepts.
const MAX_NAME_CHARS: usize = 255;

/// Characters oCIS refuses in a space name.
const FORBIDDEN: &[char] = &['/', '\\', '.', ':', '?', '*', '"', '>', '<', '|'];

/// What the oCIS reconciler does beyond the defaults of DESIGN §7.
#[derive(Clone, Debug)]
pub struct OcisSettings {
    /// Prefix of the tenant group's name (the Authentik group's), e.g. `tenant-`.
    pub group_prefix: String,
    /// Role id the tenant's group gets on its space (`OCIS_GROUP_ROLE`;
    /// default Space Editor, see [`roles::by_name`]).
    pub group_role_id: String,
    /// Create the tenant's group in oCIS when it does not exist yet
    /// (`OCIS_CREATE_GROUPS`; needs the oCIS Admin role), instead of waiting
    /// for oCIS to provision it on a member's first login.
    pub create_groups: bool,
    /// Purge a tenant's space after disabling it on deletion (`OCIS_PURGE_ON_DELETE`).
    pub purge_on_delete: bool,
    /// Space quota per plan (`PLAN_QUOTAS`).
    pub plan_quotas: PlanQuotas,
}

impl Default for OcisSettings {
    fn default() -> Self {
        OcisSettings {
            group_prefix: "tenant-".into(),
            group_role_id: roles::SPACE_EDITOR.into(),
            create_groups: false,
            purge_on_delete: false,
            plan_quotas: PlanQuotas::default(),
        }
    }
}

/// Reconciles `systems.ocis`.
pub struct OcisReconciler {
    client: Arc<OcisClient>,
    settings: OcisSettings,
    /// Every project space with its grants, for resyncs (see [`resync`]).
    snapshot: Arc<Snapshot>,
    /// Lists confirming a space is missing, shared by concurrent passes.
    drive_lists: DriveLists,
}

impl OcisReconciler {
    /// A reconciler talking to oCIS through `client`; resyncs use a snapshot
    /// listed at most every `snapshot_age`.
    pub fn new(client: Arc<OcisClient>, settings: OcisSettings, snapshot_age: Duration) -> Self {
        OcisReconciler {
            client,
            settings,
            snapshot: Arc::new(Snapshot::new("ocis", snapshot_age)),
            drive_lists: DriveLists::default(),
        }
    }

    fn pass<'a>(&'a self, tenant: &'a Tenant, mode: Mode) -> Pass<'a> {
        Pass {
            client: &self.client,
            settings: &self.settings,
            tenant,
            mode,
            actions: Vec::new(),
            converged: None,
            drive_lists: &self.drive_lists,
            passed_over: None,
        }
    }
}

/// The space a tenant should have.
struct Desired {
    name: String,
    description: String,
    alias: String,
    quota: u64,
    group: String,
}

impl Desired {
    fn of(tenant: &Tenant, settings: &OcisSettings) -> Result<Self, Failure> {
        let quota = settings
            .plan_quotas
            .quota(&tenant.plan)
            .ok_or_else(|| Failure::Plan(tenant.plan.clone()))?;
        Ok(Desired {
            name: space_name(&tenant.name, &tenant.slug),
            description: marker(&tenant.slug),
            alias: space_alias(&tenant.slug),
            quota,
            group: group_name(&settings.group_prefix, &tenant.slug),
        })
    }
}

/// The drive id the last pass recorded (`externalId`).
fn stored_drive_id(tenant: &Tenant) -> Option<&str> {
    tenant
        .system_status(System::Ocis)
        .and_then(|s| s.external_id.as_deref())
        .filter(|id| !id.is_empty())
}

/// The space's ownership marker.
fn marker(slug: &str) -> String {
    format!("{MARKER_PREFIX}{slug}")
}

/// `project/tenant-{slug}`.
fn space_alias(slug: &str) -> String {
    format!("{ALIAS_PREFIX}{slug}")
}

/// The slug a space alias names, if it is a tenant's.
fn space_slug(alias: &str) -> Option<&str> {
    alias.strip_prefix(ALIAS_PREFIX)
}

/// What [`space_alias`] puts before the slug.
const ALIAS_PREFIX: &str = "project/tenant-";

/// The tenant name as oCIS accepts it: forbidden characters become spaces,
/// whitespace runs collapse, trimmed, at most 255 characters; the slug if
/// nothing is left.
fn space_name(name: &str, slug: &str) -> String {
    let cleaned: String = name.replace(FORBIDDEN, " ");
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    let truncated: String = collapsed.chars().take(MAX_NAME_CHARS).collect();
    let trimmed = truncated.trim_end();
    if trimmed.is_empty() {
        slug.to_string()
    } else {
        trimmed.to_string()
    }
}

/// Why a pass failed, before it becomes a [`SystemError`].
enum Failure {
    Ocis(OcisError),
    /// The space found by alias is marked for another tenant.
    Conflict(String),
    /// The tenant's plan has no configured quota.
    Plan(String),
    /// oCIS hides the grants of space `drive` from the service user of
    /// `client`: it is not a member (oCIS answers 404 even to an Admin).
    NotSpaceMember {
        drive: String,
        client: String,
    },
}

impl From<OcisError> for Failure {
    fn from(e: OcisError) -> Self {
        Failure::Ocis(e)
    }
}

impl Failure {
    fn into_system_error(self, actions: Vec<Action>) -> SystemError {
        let mut error = match self {
            Failure::Conflict(message) => SystemError::conflict(message),
            // Like a conflict, only an operator can end it: no use retrying fast.
            Failure::NotSpaceMember { drive, client } => SystemError {
                conflict: true,
                ..SystemError::new(
                    "NotSpaceMember",
                    format!(
                        "the service user of OIDC client `{client}` is not a member of space \
                         {drive}, so oCIS hides its grants (404, even to an Admin): give that \
                         user (in Authentik `ak-<provider name>-client_credentials`) the Manager \
                         role on the space, then reconcile"
                    ),
                )
            },
            Failure::Plan(plan) => SystemError::new(
                "UnknownPlan",
                format!("plan `{plan}` has no quota in PLAN_QUOTAS"),
            ),
            Failure::Ocis(e) => {
                let reason = match &e {
                    OcisError::Token(t) if t.is_auth_failure() => "Unauthorized",
                    OcisError::Unauthorized { .. } => "Unauthorized",
                    OcisError::Api { status: 403, .. } => "Unauthorized",
                    OcisError::InvalidResponse(_) => "InvalidResponse",
                    _ => "UpstreamError",
                };
                SystemError::new(reason, e.to_string())
            }
        };
        error.actions = actions;
        error
    }
}

/// How a space was found.
enum Found {
    ById(Drive),
    ByAlias(Drive),
    /// No space to use; the id of a disabled space with the tenant's alias,
    /// if one was passed over (see [`Pass::find`]).
    Missing(Option<String>),
}

/// One pass over one tenant; collects the actions done (or planned).
struct Pass<'a> {
    client: &'a OcisClient,
    settings: &'a OcisSettings,
    tenant: &'a Tenant,
    mode: Mode,
    actions: Vec<Action>,
    /// The snapshot entry of the space as an applied pass left it.
    converged: Option<Entry>,
    /// Project-drive lists shared with concurrent passes.
    drive_lists: &'a DriveLists,
    /// A disabled space with the tenant's alias that [`Pass::find`] did not
    /// reuse (an earlier tenant's, with the same slug).
    passed_over: Option<String>,
}

impl Pass<'_> {
    fn object(&self) -> String {
        format!("space {}", space_alias(&self.tenant.slug))
    }

    /// The tenant group's name.
    fn group(&self) -> String {
        group_name(&self.settings.group_prefix, &self.tenant.slug)
    }

    /// The tenant's space: by stored id, else by alias in the project list
    /// (then read by id: the list keeps only ids, aliases and markers).
    async fn find(&self) -> Result<Found, Failure> {
        if let Some(id) = stored_drive_id(self.tenant) {
            if let Some(drive) = self.client.get_drive(id).await? {
                return Ok(Found::ById(drive));
            }
        }
        let alias = space_alias(&self.tenant.slug);
        let ours = marker(&self.tenant.slug);
        let listed = self.drive_lists.after(self.client, &alias).await?;
        let mut matches: Vec<_> = listed
            .iter()
            .filter(|d| d.drive_alias.as_deref() == Some(alias.as_str()))
            .collect();
        // Prefer the one carrying our marker if an operator made a twin.
        matches.sort_by_key(|d| d.description.as_deref() != Some(ours.as_str()));
        let mut passed_over = None;
        for listed in matches {
            // Purged since the list: missing now.
            let Some(drive) = self.client.get_drive(&listed.id).await? else {
                continue;
            };
            // A disabled space under the alias, and no id of our own: the
            // space of an earlier tenant with this slug (deleted, its space
            // disabled). Its files are not handed to a new tenant.
            if drive.is_trashed() {
                passed_over = Some(drive.id);
                continue;
            }
            return Ok(Found::ByAlias(drive));
        }
        Ok(Found::Missing(passed_over))
    }

    /// Rejects a space found by alias that is marked for another tenant.
    fn check_owner(&self, drive: &Drive) -> Result<(), Failure> {
        let foreign = drive
            .description
            .as_deref()
            .and_then(|d| d.strip_prefix(MARKER_PREFIX))
            .filter(|slug| *slug != self.tenant.slug);
        match foreign {
            Some(other) => Err(Failure::Conflict(format!(
                "space {} ({}) is marked for tenant {other}",
                drive.id, drive.name
            ))),
            None => Ok(()),
        }
    }

    async fn create(&mut self, desired: &Desired) -> Result<Option<Drive>, Failure> {
        self.actions.push(
            Action::new(ActionKind::Create, self.object())
                .field("name", serde_json::Value::Null, desired.name.clone())
                .field("quota", serde_json::Value::Null, desired.quota),
        );
        if !self.mode.may_write() {
            return Ok(None);
        }
        let new = NewDrive::project(
            desired.name.clone(),
            desired.description.clone(),
            desired.quota,
            desired.alias.clone(),
        );
        Ok(Some(self.client.create_drive(&new).await?))
    }

    async fn restore(&mut self, drive: Drive) -> Result<Drive, Failure> {
        self.actions
            .push(Action::new(ActionKind::Restore, self.object()));
        if !self.mode.may_write() {
            return Ok(drive);
        }
        Ok(self.client.restore_drive(&drive.id).await?)
    }

    /// One PATCH with the owned fields that differ. `adopting` records it
    /// as marking an unmarked space as ours.
    async fn update(
        &mut self,
        drive: &Drive,
        desired: &Desired,
        adopting: bool,
    ) -> Result<(), Failure> {
        let kind = if adopting {
            ActionKind::Adopt
        } else {
            ActionKind::Update
        };
        let mut action = Action::new(kind, self.object());
        let mut update = DriveUpdate::default();
        if drive.name != desired.name {
            action = action.field("name", drive.name.clone(), desired.name.clone());
            update.name = Some(desired.name.clone());
        }
        let description = drive.description.clone().unwrap_or_default();
        if description != desired.description {
            action = action.field("description", description, desired.description.clone());
            update.description = Some(desired.description.clone());
        }
        if drive.quota_total() != desired.quota {
            action = action.field("quota", drive.quota_total(), desired.quota);
            update.quota = Some(QuotaTotal {
                total: desired.quota,
            });
        }
        if update.is_empty() {
            return Ok(());
        }
        self.actions.push(action);
        if self.mode.may_write() {
            self.client.update_drive(&drive.id, &update).await?;
        }
        Ok(())
    }

    async fn reconcile(&mut self) -> Result<Outcome, Failure> {
        let desired = Desired::of(self.tenant, self.settings)?;
        // Without a stored space id the tenant is most likely new, and its
        // create check waits for a shared drive list: look its group up (and
        // create it if missing and allowed) meanwhile instead of after the
        // create of the space.
        let ahead = self.mode.may_write() && stored_drive_id(self.tenant).is_none();
        let (found, group) = tokio::join!(self.find(), async {
            if ahead {
                let first = self.tenant.first_pass_for(System::Ocis);
                let create = self.settings.create_groups;
                Some(group_ahead(self.client, &desired.group, create, first).await)
            } else {
                None
            }
        });
        let (drive, adopting, created) = match found? {
            Found::ById(drive) => (Some(drive), false, false),
            Found::ByAlias(drive) => {
                self.check_owner(&drive)?;
                let adopting = drive.description.as_deref() != Some(desired.description.as_str());
                (Some(drive), adopting, false)
            }
            Found::Missing(passed_over) => {
                self.passed_over = passed_over;
                (self.create(&desired).await?, false, true)
            }
        };
        let Some(mut drive) = drive else {
            return Ok(self.outcome(None, Access::Unknown));
        };
        let trashed = drive.is_trashed();
        if trashed {
            drive = self.restore(drive).await?;
        }
        self.update(&drive, &desired, adopting).await?;
        let access = if trashed && !self.mode.may_write() {
            Access::Unknown
        } else {
            self.ensure_access(&drive.id, &desired.group, created, group)
                .await?
        };
        if self.mode.may_write() && matches!(access, Access::Granted) {
            self.converged = Some(resync::converged(&drive.id, &desired));
        }
        Ok(self.outcome(Some(drive.id), access))
    }

    fn outcome(&mut self, drive_id: Option<String>, access: Access) -> Outcome {
        let actions = std::mem::take(&mut self.actions);
        let group = group_name(&self.settings.group_prefix, &self.tenant.slug);
        let (state, reason, message) = if !self.mode.may_write() && !actions.is_empty() {
            (
                SystemState::Pending,
                "ChangesPending".to_string(),
                format!("{} change(s) to apply (dry run)", actions.len()),
            )
        } else if let Access::WaitingForGroup = access {
            (
                SystemState::Pending,
                "WaitingForGroup".to_string(),
                format!(
                    "oCIS does not know group {group} yet (it appears on a member's first \
                     login, or enable OCIS_CREATE_GROUPS)"
                ),
            )
        } else {
            let reason = summary_reason(&actions, &self.object());
            let mut message = format!(
                "space {} with group {group}",
                space_alias(&self.tenant.slug)
            );
            if let Some(old) = &self.passed_over {
                message.push_str(&format!(
                    "; the disabled space {old} of an earlier tenant with this slug was left \
                     disabled, not reused"
                ));
            }
            (SystemState::Ok, reason.to_string(), message)
        };
        Outcome {
            state,
            reason,
            message,
            external_id: drive_id,
            actions,
            conflict: None,
        }
    }

    async fn cleanup(&mut self) -> Result<Outcome, Failure> {
        let drive = match self.find().await? {
            Found::ById(drive) => drive,
            Found::ByAlias(drive) => {
                self.check_owner(&drive)?;
                drive
            }
            Found::Missing(_) => {
                self.remove_group(&self.group()).await?;
                let actions = std::mem::take(&mut self.actions);
                return Ok(Outcome::ok("Deleted", "no space left").with_actions(actions));
            }
        };
        if !drive.is_trashed() {
            self.actions.push(Action::new(
                ActionKind::Delete,
                format!("disable {}", self.object()),
            ));
            if self.mode.may_write() {
                self.client.disable_drive(&drive.id).await?;
            }
        }
        if self.settings.purge_on_delete {
            self.actions.push(Action::new(
                ActionKind::Delete,
                format!("purge {}", self.object()),
            ));
            if self.mode.may_write() {
                self.client.purge_drive(&drive.id).await?;
            }
        }
        self.remove_group(&self.group()).await?;
        let actions = std::mem::take(&mut self.actions);
        if !self.mode.may_write() && !actions.is_empty() {
            let mut outcome = Outcome::ok("ChangesPending", "cleanup to apply (dry run)")
                .with_external_id(drive.id)
                .with_actions(actions);
            outcome.state = SystemState::Pending;
            return Ok(outcome);
        }
        let message = if self.settings.purge_on_delete {
            "space purged"
        } else {
            "space disabled (kept: OCIS_PURGE_ON_DELETE is off)"
        };
        Ok(Outcome::ok("Deleted", message)
            .with_external_id(drive.id)
            .with_actions(actions))
    }
}

/// The reason of a converged pass: the most significant action on `space`.
fn summary_reason(actions: &[Action], space: &str) -> &'static str {
    let has = |kind: ActionKind| actions.iter().any(|a| a.action == kind);
    if actions.is_empty() {
        "InSync"
    } else if actions
        .iter()
        .any(|a| a.action == ActionKind::Create && a.object == space)
    {
        "Created"
    } else if has(ActionKind::Restore) {
        "Restored"
    } else if has(ActionKind::Adopt) {
        "Adopted"
    } else {
        "Updated"
    }
}

#[async_trait]
impl Reconciler for OcisReconciler {
    fn system(&self) -> System {
        System::Ocis
    }

    async fn reconcile(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let mut pass = self.pass(tenant, mode);
        match pass.reconcile().await {
            Ok(outcome) => {
                if let Some(entry) = pass.converged.take() {
                    self.snapshot.put(entry);
                }
                Ok(outcome)
            }
            Err(failure) => Err(failure.into_system_error(pass.actions)),
        }
    }

    async fn resync(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        match self.answer_from_snapshot(tenant).await {
            Some(outcome) => Ok(outcome),
            None => self.reconcile(tenant, mode).await,
        }
    }

    async fn cleanup(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let mut pass = self.pass(tenant, mode);
        match pass.cleanup().await {
            Ok(outcome) => {
                if let (true, Some(id)) = (mode.may_write(), stored_drive_id(tenant)) {
                    self.snapshot.remove(id);
                }
                Ok(outcome)
            }
            Err(failure) => Err(failure.into_system_error(pass.actions)),
        }
    }
}

mod access;
mod drive_list;
mod resync;

use access::{group_ahead, Access};
use drive_list::DriveLists;

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod contract;
#[cfg(test)]
mod resync_tests;
#[cfg(test)]
mod tests;
