//! Resyncs of the oCIS reconciler answered from the snapshot of every
//! project space (one `GET /graph/v1beta1/drives?$filter=driveType eq
//! 'project'`, which carries each space's grants in `root.permissions` in
//! the unified form: permission ids, role ids, `grantedToV2`).
//!
//! The answer is "in sync" only when the listed space is the stored one,
//! enabled, marked, with the desired name and quota, and the tenant group
//! holds exactly the configured role; anything else runs the direct pass,
//! which reads the space and its grants before it writes.

use dezky_core::model::Tenant;
use dezky_upstream::ocis::{Drive, DriveRoot, GrantedTo, Identity, Permission, Quota};

use super::{stored_drive_id, Access, Desired, OcisReconciler, OcisSettings};
use crate::reconcile::{Mode, Outcome};
use crate::snapshot::Indexed;

impl Indexed for Drive {
    fn key(&self) -> String {
        self.id.clone()
    }

    /// A space belongs to the tenant its alias names.
    fn owner(&self) -> Option<String> {
        self.drive_alias.clone()
    }

    /// The fields the diff and [`granted`] read: users' grants, the root
    /// id and the drive type are dropped.
    fn compact(mut self) -> Self {
        self.drive_type = None;
        if let Some(root) = self.root.as_mut() {
            root.id = None;
            root.permissions.retain(|p| p.id.starts_with("g:"));
        }
        self
    }
}

impl OcisReconciler {
    /// The resync answer from the snapshot; `None` sends the pass upstream.
    pub(super) async fn answer_from_snapshot(&self, tenant: &Tenant) -> Option<Outcome> {
        let desired = Desired::of(tenant, &self.settings).ok()?;
        let drive = self
            .snapshot
            .lookup(
                || self.client.list_project_drives_with_grants(),
                |view| match view.owned_by(&desired.alias)[..] {
                    [drive] => Some(drive.clone()),
                    _ => None,
                },
            )
            .await??;
        if stored_drive_id(tenant) != Some(drive.id.as_str())
            || drive.is_trashed()
            || drive.description.as_deref() != Some(desired.description.as_str())
            || !granted(&drive, &desired.group, &self.settings.group_role_id)
        {
            return None;
        }
        // The direct pass's own diff, as a dry run: it writes nothing.
        let mut pass = self.pass(tenant, Mode::DryRun);
        pass.update(&drive, &desired, false).await.ok()?;
        pass.actions
            .is_empty()
            .then(|| pass.outcome(Some(drive.id), Access::Granted))
    }
}

/// Whether `group` holds exactly `role` on the space.
fn granted(drive: &Drive, group: &str, role: &str) -> bool {
    drive.root.as_ref().is_some_and(|root| {
        root.permissions
            .iter()
            .any(|p| p.id.starts_with("g:") && p.group_name() == Some(group) && p.roles == [role])
    })
}

/// The space as an applied pass left it, as far as [`granted`] and the
/// diff read it: desired fields, enabled, the group holding the role.
pub(super) fn converged(drive: Drive, desired: &Desired, settings: &OcisSettings) -> Drive {
    let root = drive.root.unwrap_or(DriveRoot {
        id: None,
        deleted: None,
        permissions: Vec::new(),
    });
    let mut permissions: Vec<Permission> = root
        .permissions
        .into_iter()
        .filter(|p| p.group_name() != Some(desired.group.as_str()))
        .collect();
    permissions.push(Permission {
        id: format!("g:{}", desired.group),
        roles: vec![settings.group_role_id.clone()],
        granted_to_v2: Some(GrantedTo {
            group: Some(Identity {
                id: desired.group.clone(),
                display_name: Some(desired.group.clone()),
            }),
            user: None,
        }),
    });
    Drive {
        name: desired.name.clone(),
        description: Some(desired.description.clone()),
        quota: Some(Quota {
            total: Some(desired.quota),
            used: drive.quota.and_then(|q| q.used),
        }),
        root: Some(DriveRoot {
            deleted: None,
            permissions,
            ..root
        }),
        ..drive
    }
}
