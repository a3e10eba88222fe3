//! A simulator of the oCIS libregraph subset the provisioner uses (see
//! `shared/upstream/ocis.md`): project spaces, groups, and group access to
//! a space through the v1beta1 invite/permissions API, behind bearer JWTs
//! verified against an OIDC provider's JWKS.
//!
//! [`OcisSim`] is the handle: tests and the demo change spaces, groups and
//! grants out of band through it, as an oCIS administrator could.

mod auth;
mod model;
mod routes;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::endpoint::{self, Endpoint};
use crate::faults::Faults;
use crate::recording::Recorder;

pub use model::{SimDrive, SimPermission};

/// How an [`OcisSim`] authenticates and answers.
#[derive(Clone, Debug, Default)]
pub struct OcisSimOptions {
    /// JWKS the bearer tokens must verify against (the OIDC provider's,
    /// e.g. [`crate::oidc::OidcProvider::jwks_url`]).
    pub jwks_url: String,
    /// Required `iss` claim, if any.
    pub issuer: Option<String>,
    /// Answer an empty drive list with a `null` body, as some oCIS versions
    /// do, instead of `{"value": []}`.
    pub null_empty_list: bool,
}

/// State shared by the handlers and the handle.
#[derive(Clone)]
struct Shared {
    verifier: Arc<auth::JwksVerifier>,
    state: Arc<Mutex<model::State>>,
    /// `http://127.0.0.1:<port>`, for `webUrl`/`webDavUrl`.
    base_url: String,
    null_empty_list: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, model::State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running oCIS simulator on `127.0.0.1:<random port>`; the server stops
/// when the handle is dropped.
pub struct OcisSim {
    shared: Shared,
    endpoint: Endpoint,
}

impl OcisSim {
    /// Starts a simulator with no spaces and no groups on a free port.
    pub async fn start(options: OcisSimOptions) -> std::io::Result<Self> {
        Self::start_on(options, 0).await
    }

    /// Like [`OcisSim::start`], on `127.0.0.1:<port>` (0 = any free port).
    pub async fn start_on(options: OcisSimOptions, port: u16) -> std::io::Result<Self> {
        let listener = endpoint::bind(port).await?;
        let shared = Shared {
            verifier: Arc::new(auth::JwksVerifier::new(options.jwks_url, options.issuer)),
            state: Arc::default(),
            base_url: endpoint::url_of(&listener)?,
            null_empty_list: options.null_empty_list,
        };
        let app = routes::router(shared.clone()).layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::layer,
        ));
        Ok(OcisSim {
            endpoint: Endpoint::serve("oCIS", listener, app)?,
            shared,
        })
    }

    /// `http://127.0.0.1:<port>` (`OCIS_API_URL`; the API is under `/graph`).
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// The fault switchboard of this server.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// The latest requests received (for contract tests), including
    /// rejected ones, and counters of all of them.
    pub fn recorder(&self) -> &Recorder {
        self.endpoint.recorder()
    }

    /// Every space (disabled ones included), in creation order.
    pub fn drives(&self) -> Vec<SimDrive> {
        self.shared.state().drives().map(SimDrive::from).collect()
    }

    /// The spaces with this `driveAlias` (oCIS does not make it unique), in
    /// creation order.
    pub fn drives_with_alias(&self, alias: &str) -> Vec<SimDrive> {
        self.shared
            .state()
            .drives_with_alias(alias)
            .map(SimDrive::from)
            .collect()
    }

    /// One space by id.
    pub fn drive(&self, id: &str) -> Option<SimDrive> {
        self.shared.state().drive(id).map(SimDrive::from)
    }

    /// Renames a space; `false` if it does not exist.
    pub fn rename_drive(&self, id: &str, name: &str) -> bool {
        self.edit_drive(id, |d| d.name = name.to_string())
    }

    /// Changes a space's description; `false` if it does not exist.
    pub fn set_drive_description(&self, id: &str, description: &str) -> bool {
        self.edit_drive(id, |d| d.description = description.to_string())
    }

    /// Changes a space's quota (bytes, 0 = unlimited); `false` if it does not exist.
    pub fn set_drive_quota(&self, id: &str, total: u64) -> bool {
        self.edit_drive(id, |d| d.quota_total = total)
    }

    /// Disables (trashes) a space; `false` if it does not exist.
    pub fn disable_drive(&self, id: &str) -> bool {
        self.edit_drive(id, |d| d.trashed = true)
    }

    /// Removes a space for good, whatever its state; `false` if it did not exist.
    pub fn purge_drive(&self, id: &str) -> bool {
        self.shared.state().remove_drive(id)
    }

    /// Creates a group (as oCIS auto-provisioning would on a member's first
    /// login) and returns its id; an existing group's id if the name is taken.
    pub fn create_group(&self, name: &str) -> String {
        let mut state = self.shared.state();
        match state.group_by_name(name) {
            Some(group) => group.id.clone(),
            None => state.add_group(name),
        }
    }

    /// Deletes a group out of band; its grants stay on the spaces, with its
    /// name, as oCIS keeps them for a while. `false` if it did not exist.
    pub fn delete_group(&self, id: &str) -> bool {
        self.shared.state().remove_group(id)
    }

    /// The id of a group by name.
    pub fn group_id(&self, name: &str) -> Option<String> {
        self.shared
            .state()
            .group_by_name(name)
            .map(|g| g.id.clone())
    }

    /// The grants on a space root.
    pub fn permissions(&self, drive_id: &str) -> Vec<SimPermission> {
        self.shared
            .state()
            .drive(drive_id)
            .map(|d| d.permissions.iter().map(SimPermission::from).collect())
            .unwrap_or_default()
    }

    /// Sets the role of one grant (e.g. `g:<group id>`); `false` if absent.
    pub fn set_permission_role(&self, drive_id: &str, permission_id: &str, role: &str) -> bool {
        let mut state = self.shared.state();
        let Some(perm) = state
            .drive_mut(drive_id)
            .and_then(|d| d.permissions.iter_mut().find(|p| p.id == permission_id))
        else {
            return false;
        };
        perm.roles = vec![role.to_string()];
        true
    }

    /// Removes one grant; `false` if absent.
    pub fn remove_permission(&self, drive_id: &str, permission_id: &str) -> bool {
        let mut state = self.shared.state();
        let Some(drive) = state.drive_mut(drive_id) else {
            return false;
        };
        let before = drive.permissions.len();
        drive.permissions.retain(|p| p.id != permission_id);
        drive.permissions.len() != before
    }

    fn edit_drive(&self, id: &str, edit: impl FnOnce(&mut model::DriveRecord)) -> bool {
        let mut state = self.shared.state();
        match state.drive_mut(id) {
            Some(drive) => {
                edit(drive);
                drive.touch();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
