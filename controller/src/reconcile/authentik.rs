//! Converges a tenant's Authentik group (DESIGN §7): one group named
//! `{prefix}{slug}` whose attributes carry the ownership marker
//! `dezky_tenant_slug`, `dezky_tenant_id` and `dezky_managed_by`.
//!
//! Invariants:
//! - A converged tenant costs one `GET` of the stored group and no write on
//!   a direct pass, and no request at all on a resync answered from the
//!   snapshot of every managed group (listed by the `dezky_managed_by`
//!   attribute, 500 groups a page). A resync that sees anything but "in
//!   sync" in the snapshot runs the direct pass, which reads before it writes.
//! - Drift in an owned field (the name, the three marker keys) is set back
//!   with one `PATCH` carrying only the differing fields; attribute keys we
//!   do not own survive (the server replaces `attributes` whole, so the
//!   patch sends the observed dict with our keys set).
//! - A group marked for another tenant is a conflict and is never written;
//!   an unmarked group with our name is adopted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dezky_core::model::{group_name, System, SystemState, Tenant};
use dezky_upstream::authentik::{AuthentikClient, AuthentikError, Group, GroupPatch, NewGroup};
use serde_json::{Map, Value};

use super::{Action, ActionKind, Mode, Outcome, Reconciler, SystemError};
use crate::snapshot::{Entry, Snapshot};

/// Attribute key holding the tenant slug.
pub const ATTR_TENANT_SLUG: &str = "dezky_tenant_slug";
/// Attribute key holding the tenant id: the ownership marker.
pub const ATTR_TENANT_ID: &str = "dezky_tenant_id";
/// Attribute key naming the manager.
pub const ATTR_MANAGED_BY: &str = "dezky_managed_by";
/// Value of [`ATTR_MANAGED_BY`].
pub const MANAGED_BY: &str = "dezky-provisioner";

/// Reconciles tenants' Authentik groups.
pub struct AuthentikReconciler {
    client: AuthentikClient,
    /// Group names are `{group_prefix}{slug}` (default `tenant-`).
    group_prefix: String,
    /// Every group carrying `dezky_managed_by`, for resyncs.
    snapshot: Arc<Snapshot>,
}

/// The snapshot entry of a group: keyed by its pk, owned by the tenant id
/// it is marked for, fingerprinted by what [`diff`] reads (the name and the
/// owned attribute keys); members, parents and foreign attributes are not
/// kept.
fn entry(group: &Group) -> Entry {
    let owned = [ATTR_TENANT_SLUG, ATTR_TENANT_ID, ATTR_MANAGED_BY]
        .map(|key| group.attributes.get(key).map(Value::to_string));
    let owner = group.attributes.get(ATTR_TENANT_ID).and_then(Value::as_str);
    Entry::new(&group.pk, owner, (&group.name, owned))
}

/// How the group was found; decides what an unmarked group means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FoundBy {
    /// The id stored in the status: we created or adopted it.
    StoredId,
    /// Its name: ours only if marked, adoptable if unmarked.
    Name,
    /// Its `dezky_tenant_id` attribute (renamed while the id was lost).
    Marker,
}

/// Whose a group is, according to its marker.
enum Owner {
    Us,
    Nobody,
    /// Marked for the tenant with this id.
    Other(String),
}

impl AuthentikReconciler {
    /// A reconciler sending through `client`, naming groups `{group_prefix}{slug}`;
    /// resyncs use a snapshot listed at most every `snapshot_age`.
    pub fn new(
        client: AuthentikClient,
        group_prefix: impl Into<String>,
        snapshot_age: Duration,
    ) -> Self {
        AuthentikReconciler {
            client,
            group_prefix: group_prefix.into(),
            snapshot: Arc::new(Snapshot::new("authentik", snapshot_age)),
        }
    }

    /// The resync answer from the snapshot, when it shows the tenant's group
    /// (at its stored id) in sync; `None` sends the pass upstream.
    async fn answer_from_snapshot(&self, tenant: &Tenant) -> Option<Outcome> {
        let tenant_id = tenant.id.to_string();
        let stored = tenant
            .system_status(System::Authentik)
            .and_then(|s| s.external_id.clone())?;
        let name = self.desired_name(tenant);
        let converged = entry(&Group {
            pk: stored.clone(),
            name: name.clone(),
            is_superuser: false,
            parents: Vec::new(),
            users: Vec::new(),
            attributes: owned_attributes(tenant).into_iter().collect(),
        });
        self.snapshot
            .lookup(
                || async {
                    let mut managed = Map::new();
                    managed.insert(ATTR_MANAGED_BY.into(), MANAGED_BY.into());
                    self.client
                        .map_groups_by_attributes(&managed, |group| entry(&group))
                        .await
                },
                |view| view.holds_exactly(&tenant_id, &[converged]),
            )
            .await?
            .then(|| in_sync(&name, stored))
    }

    fn desired_name(&self, tenant: &Tenant) -> String {
        group_name(&self.group_prefix, &tenant.slug)
    }

    /// Looks the group up by stored id, then by exact name, then by marker.
    /// Without a stored id (a new tenant, or its status was lost) both
    /// lookups are needed before anything is created, so they go out
    /// together; the name's answer wins.
    async fn find(&self, tenant: &Tenant) -> Result<Option<(Group, FoundBy)>, AuthentikError> {
        let stored = tenant
            .system_status(System::Authentik)
            .and_then(|s| s.external_id.as_deref())
            .filter(|id| !id.is_empty());
        if let Some(pk) = stored {
            if let Some(group) = self.client.get_group(pk).await? {
                return Ok(Some((group, FoundBy::StoredId)));
            }
        }
        let mut marker = Map::new();
        marker.insert(ATTR_TENANT_ID.into(), tenant.id.to_string().into());
        let name = self.desired_name(tenant);
        let (by_name, marked) = tokio::join!(
            self.client.find_group_by_name(&name),
            self.client.find_groups_by_attributes(&marker)
        );
        if let Some(group) = by_name? {
            return Ok(Some((group, FoundBy::Name)));
        }
        let marked = marked?;
        if marked.len() > 1 {
            tracing::warn!(
                tenant = %tenant.slug,
                groups = ?marked.iter().map(|g| &g.name).collect::<Vec<_>>(),
                "several Authentik groups carry this tenant's marker; managing the first"
            );
        }
        Ok(marked.into_iter().next().map(|g| (g, FoundBy::Marker)))
    }

    async fn converge(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let name = self.desired_name(tenant);
        let object = format!("group {name}");
        // The first pass that may create: no group of ours can exist yet, and
        // Authentik refuses a second group with the name, so the create goes
        // first (one request); a refusal sends the pass to the lookups.
        if mode.may_write() && tenant.first_pass_for(System::Authentik) {
            match self.client.create_group(&new_group(tenant, &name)).await {
                Ok(created) => return Ok(self.created(tenant, &name, object, created)),
                Err(AuthentikError::DuplicateName { .. }) => {}
                Err(e) => return Err(into_system_error(e)),
            }
        }
        let Some((group, found_by)) = self.find(tenant).await.map_err(into_system_error)? else {
            return self.create(tenant, mode, &name, object).await;
        };
        let adopting = match owner(&group, tenant) {
            Owner::Other(id) => {
                return Err(SystemError::conflict(format!(
                    "Authentik group {} ({}) belongs to another tenant (id {id}); \
                     it is left untouched",
                    group.name, group.pk
                )))
            }
            Owner::Nobody => found_by == FoundBy::Name,
            Owner::Us => false,
        };
        let (patch, changed) = diff(&group, &name, tenant);
        if patch.is_empty() {
            self.snapshot.put(entry(&group));
            return Ok(in_sync(&name, group.pk));
        }
        let kind = if adopting {
            ActionKind::Adopt
        } else {
            ActionKind::Update
        };
        let action = changed
            .into_iter()
            .fold(Action::new(kind, object), |action, (field, from, to)| {
                action.field(field, from, to)
            });
        if !mode.may_write() {
            return Ok(pending(Some(group.pk), action));
        }
        let updated = self
            .client
            .update_group(&group.pk, &patch)
            .await
            .map_err(into_system_error)?;
        self.snapshot.put(entry(&updated));
        let (reason, verb) = if adopting {
            ("Adopted", "adopted")
        } else {
            ("Updated", "corrected")
        };
        tracing::info!(
            tenant = %tenant.slug,
            group = %group.pk,
            fields = ?action.fields.keys().collect::<Vec<_>>(),
            "authentik group {verb}"
        );
        Ok(
            Outcome::ok(reason, format!("group {name} ({}) {verb}", group.pk))
                .with_external_id(group.pk)
                .with_actions(vec![action]),
        )
    }

    async fn create(
        &self,
        tenant: &Tenant,
        mode: Mode,
        name: &str,
        object: String,
    ) -> Result<Outcome, SystemError> {
        if !mode.may_write() {
            return Ok(pending(None, Action::new(ActionKind::Create, object)));
        }
        let created = self
            .client
            .create_group(&new_group(tenant, name))
            .await
            .map_err(into_system_error)?;
        Ok(self.created(tenant, name, object, created))
    }

    /// The outcome of a pass that created `created`.
    fn created(&self, tenant: &Tenant, name: &str, object: String, created: Group) -> Outcome {
        tracing::info!(tenant = %tenant.slug, group = %created.pk, "authentik group created");
        self.snapshot.put(entry(&created));
        Outcome::ok("Created", format!("group {name} ({}) created", created.pk))
            .with_external_id(created.pk)
            .with_actions(vec![Action::new(ActionKind::Create, object)])
    }

    async fn remove(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let found = self.find(tenant).await.map_err(into_system_error)?;
        let group = match found {
            Some((group, found_by)) => match owner(&group, tenant) {
                Owner::Us => group,
                Owner::Nobody if found_by == FoundBy::StoredId => group,
                // An unadopted or foreign group with our name is not ours to delete.
                Owner::Nobody | Owner::Other(_) => {
                    return Ok(Outcome::ok(
                        "Deleted",
                        format!(
                            "no group of this tenant left ({} is not ours and was kept)",
                            group.name
                        ),
                    ))
                }
            },
            None => return Ok(Outcome::ok("Deleted", "no group of this tenant left")),
        };
        let action = Action::new(ActionKind::Delete, format!("group {}", group.name));
        if !mode.may_write() {
            return Ok(pending(Some(group.pk), action));
        }
        let existed = self
            .client
            .delete_group(&group.pk)
            .await
            .map_err(into_system_error)?;
        self.snapshot.remove(&group.pk);
        let message = if existed {
            tracing::info!(tenant = %tenant.slug, group = %group.pk, "authentik group deleted");
            format!("group {} ({}) deleted", group.name, group.pk)
        } else {
            format!("group {} ({}) was already gone", group.name, group.pk)
        };
        let actions = if existed { vec![action] } else { Vec::new() };
        Ok(Outcome::ok("Deleted", message).with_actions(actions))
    }
}

#[async_trait]
impl Reconciler for AuthentikReconciler {
    fn system(&self) -> System {
        System::Authentik
    }

    async fn reconcile(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        self.converge(tenant, mode).await
    }

    async fn resync(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        match self.answer_from_snapshot(tenant).await {
            Some(outcome) => Ok(outcome),
            None => self.converge(tenant, mode).await,
        }
    }

    async fn cleanup(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        self.remove(tenant, mode).await
    }
}

/// The attribute keys we own and their desired values.
/// The tenant's group as created: its name and owned attributes.
fn new_group(tenant: &Tenant, name: &str) -> NewGroup {
    NewGroup {
        name: name.to_owned(),
        attributes: owned_attributes(tenant).into_iter().collect(),
    }
}

fn owned_attributes(tenant: &Tenant) -> [(String, Value); 3] {
    [
        (ATTR_TENANT_SLUG.into(), tenant.slug.clone().into()),
        (ATTR_TENANT_ID.into(), tenant.id.to_string().into()),
        (ATTR_MANAGED_BY.into(), MANAGED_BY.into()),
    ]
}

fn owner(group: &Group, tenant: &Tenant) -> Owner {
    match group.attributes.get(ATTR_TENANT_ID) {
        None | Some(Value::Null) => Owner::Nobody,
        Some(Value::String(id)) if *id == tenant.id.to_string() => Owner::Us,
        Some(Value::String(id)) => Owner::Other(id.clone()),
        Some(other) => Owner::Other(other.to_string()),
    }
}

/// The patch that sets every owned field back, and the changed fields as
/// (name, observed, desired).
fn diff(group: &Group, name: &str, tenant: &Tenant) -> (GroupPatch, Vec<(String, Value, Value)>) {
    let mut patch = GroupPatch::default();
    let mut changed = Vec::new();
    if group.name != name {
        patch.name = Some(name.to_owned());
        changed.push(("name".into(), group.name.clone().into(), name.into()));
    }
    let mut attributes = group.attributes.clone();
    for (key, want) in owned_attributes(tenant) {
        let have = group.attributes.get(&key).cloned().unwrap_or(Value::Null);
        if have != want {
            changed.push((format!("attributes.{key}"), have, want.clone()));
            attributes.insert(key, want);
        }
    }
    if attributes != group.attributes {
        patch.attributes = Some(attributes);
    }
    (patch, changed)
}

/// The outcome of a group that needs nothing.
fn in_sync(name: &str, pk: String) -> Outcome {
    Outcome::ok("InSync", format!("group {name} ({pk}) is in sync")).with_external_id(pk)
}

/// The dry-run outcome of a pass that has `action` to do.
fn pending(external_id: Option<String>, action: Action) -> Outcome {
    let verb = match action.action {
        ActionKind::Create => "create",
        ActionKind::Update => "update",
        ActionKind::Delete => "delete",
        ActionKind::Adopt => "adopt",
        ActionKind::Restore => "restore",
    };
    Outcome {
        state: SystemState::Pending,
        external_id,
        ..Outcome::ok(
            "ChangesPending",
            format!("dry run: would {verb} {}", action.object),
        )
        .with_actions(vec![action])
    }
}

/// Status reason and message of a failed call.
fn into_system_error(error: AuthentikError) -> SystemError {
    let reason = match &error {
        AuthentikError::Unauthorized { .. } | AuthentikError::Credential(_) => "Unauthorized",
        AuthentikError::DuplicateName { .. } => "Conflict",
        AuthentikError::BadResponse(_) => "InvalidResponse",
        AuthentikError::InvalidUrl { .. }
        | AuthentikError::NotFound { .. }
        | AuthentikError::Rejected { .. }
        | AuthentikError::Unavailable(_) => "UpstreamError",
    };
    let hint = match &error {
        AuthentikError::Unauthorized { .. } => "; check AUTHENTIK_TOKEN",
        AuthentikError::NotFound { .. } => "; it vanished during the pass, retrying",
        _ => "",
    };
    SystemError::new(reason, format!("{error}{hint}"))
}

#[cfg(test)]
mod resync_tests;
#[cfg(test)]
mod tests;
