//! Resyncs of the oCIS reconciler answered from the snapshot of every
//! project space (one `GET /graph/v1beta1/drives?$filter=driveType eq
//! 'project'`, which carries each space's grants in `root.permissions` in
//! the unified form: permission ids, role ids, `grantedToV2`).
//!
//! The answer is "in sync" only when the listed space is the stored one,
//! enabled, marked, with the desired name and quota, and the tenant group
//! holds exactly the configured role; anything else runs the direct pass,
//! which reads the space and its grants before it writes.

use dezky_core::model::{group_name, Tenant};
use dezky_upstream::ocis::Drive;

use super::{space_slug, stored_drive_id, Access, Desired, OcisReconciler};
use crate::reconcile::{Mode, Outcome};
use crate::snapshot::Entry;

/// What the snapshot compares of a space: name, description, quota total,
/// whether it is trashed, and whether the tenant's group holds exactly the
/// configured role.
type Fingerprint<'a> = (&'a str, &'a str, u64, bool, bool);

/// The snapshot entry of a listed space: keyed by its id, owned by its alias;
/// the tenant group is the one its alias names. Users' and other groups'
/// grants are not kept.
pub(super) fn entry(drive: &Drive, group_prefix: &str, role: &str) -> Entry {
    let alias = drive.drive_alias.as_deref();
    let granted = alias
        .and_then(space_slug)
        .is_some_and(|slug| granted(drive, &group_name(group_prefix, slug), role));
    let fingerprint: Fingerprint = (
        &drive.name,
        drive.description.as_deref().unwrap_or_default(),
        drive.quota_total(),
        drive.is_trashed(),
        granted,
    );
    Entry::new(&drive.id, alias, fingerprint)
}

/// The entry of the space `id` as an applied pass leaves it: the desired
/// fields, enabled, the group holding the role.
pub(super) fn converged(id: &str, desired: &Desired) -> Entry {
    let fingerprint: Fingerprint = (
        &desired.name,
        &desired.description,
        desired.quota,
        false,
        true,
    );
    Entry::new(id, Some(&desired.alias), fingerprint)
}

impl OcisReconciler {
    /// The resync answer from the snapshot: "in sync" only when the one space
    /// with the tenant's alias is the stored one, in its converged form;
    /// `None` sends the pass upstream.
    pub(super) async fn answer_from_snapshot(&self, tenant: &Tenant) -> Option<Outcome> {
        let desired = Desired::of(tenant, &self.settings).ok()?;
        let stored = stored_drive_id(tenant)?;
        let expected = converged(stored, &desired);
        let (prefix, role) = (
            self.settings.group_prefix.clone(),
            self.settings.group_role_id.clone(),
        );
        let in_sync = self
            .snapshot
            .lookup(
                || {
                    self.client
                        .map_project_drives_with_grants(move |drive| entry(&drive, &prefix, &role))
                },
                |view| view.holds_exactly(&desired.alias, &[expected]),
            )
            .await?;
        in_sync.then(|| {
            self.pass(tenant, Mode::DryRun)
                .outcome(Some(stored.to_owned()), Access::Granted)
        })
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
