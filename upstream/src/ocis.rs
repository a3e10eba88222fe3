//! Typed client of the oCIS libregraph API subset the provisioner uses:
//! project spaces (drives), groups, and group access to a space (v1beta1
//! invite/permissions), as `shared/upstream/ocis.md` describes the real
//! server.
//!
//! Every call carries a service-user bearer token from the shared
//! [`TokenSource`]; a 401 invalidates that token and the call is sent once
//! more with a fresh one.

use std::borrow::Cow;
use std::sync::Arc;

use dezky_core::http::{SendError, UpstreamGuard};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod access;

use crate::json_list::{self, ListError};
use crate::oidc_token::{truncate, TokenError, TokenSource};

/// Metrics label of oCIS calls.
const SYSTEM: &str = "ocis";

/// Built-in space role ids (the file/folder "Viewer"/"Editor" ids of the
/// spec's examples are rejected on a space).
pub mod roles {
    /// Manager: full control, may add members.
    pub const MANAGER: &str = "312c0871-5ef7-4b3a-85b6-0e4074c64049";
    /// Space Editor: read and write content.
    pub const SPACE_EDITOR: &str = "58c63c02-1d89-4572-916a-870abc5a1b7d";
    /// Space Viewer: read only.
    pub const SPACE_VIEWER: &str = "a8d5fe5e-96e3-418d-825b-534dbdf22b99";

    /// The id of a space role by name: `viewer`, `editor` or `manager`.
    pub fn by_name(name: &str) -> Option<&'static str> {
        match name {
            "viewer" => Some(SPACE_VIEWER),
            "editor" => Some(SPACE_EDITOR),
            "manager" => Some(MANAGER),
            _ => None,
        }
    }
}

/// Characters left alone in a path segment: RFC 3986 unreserved only, so
/// the `$` of drive ids is sent as `%24`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A failed oCIS call.
#[derive(Debug, thiserror::Error)]
pub enum OcisError {
    #[error("cannot get a service token: {0}")]
    Token(#[from] TokenError),
    #[error("oCIS unreachable: {0}")]
    Transport(#[source] SendError),
    /// Still 401 after renewing the token once.
    #[error("oCIS rejected the service token: {message}")]
    Unauthorized { message: String },
    /// A libregraph error answer (`{"error": {"code", "message"}}`).
    #[error("oCIS answered {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("oCIS sent an unusable answer: {0}")]
    InvalidResponse(String),
}

impl OcisError {
    /// The libregraph error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            OcisError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            OcisError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A space as oCIS returns it (fields the provisioner reads).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drive {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub drive_alias: Option<String>,
    #[serde(default)]
    pub drive_type: Option<String>,
    #[serde(default)]
    pub quota: Option<Quota>,
    #[serde(default)]
    pub root: Option<DriveRoot>,
}

impl Drive {
    /// Whether the space is disabled (`root.deleted.state == "trashed"`).
    pub fn is_trashed(&self) -> bool {
        self.root
            .as_ref()
            .and_then(|r| r.deleted.as_ref())
            .is_some_and(|d| d.state.as_deref() == Some("trashed"))
    }

    /// `quota.total` in bytes (0 = unlimited, also when absent).
    pub fn quota_total(&self) -> u64 {
        self.quota.as_ref().and_then(|q| q.total).unwrap_or(0)
    }
}

/// A listed space reduced to what finding one by `driveAlias` needs; a list
/// of 10,000 spaces is ~9 MB, and parsing every grant of every one of them
/// to read three fields dominated a pass that creates a space.
#[derive(Clone, Debug, PartialEq)]
pub struct DriveSummary {
    pub id: String,
    pub description: Option<String>,
    pub drive_alias: Option<String>,
}

/// A list entry's [`DriveSummary`] fields, borrowed from the list's bytes
/// (owned only where JSON escapes had to be decoded).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedDrive<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    drive_alias: Option<Cow<'a, str>>,
}

impl ListedDrive<'_> {
    fn into_summary(self) -> DriveSummary {
        DriveSummary {
            id: self.id.into_owned(),
            description: self.description.map(Cow::into_owned),
            drive_alias: self.drive_alias.map(Cow::into_owned),
        }
    }
}

/// A space's quota.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Quota {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub used: Option<u64>,
}

/// The root item of a space.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DriveRoot {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub deleted: Option<Deleted>,
    /// The space's grants, as the drive list carries them.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub permissions: Vec<Permission>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Deleted facet of a root item.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Deleted {
    #[serde(default)]
    pub state: Option<String>,
}

/// Body of a space creation (`driveType` is always `project`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDrive {
    pub name: String,
    pub description: String,
    pub quota: QuotaTotal,
    pub drive_alias: String,
    drive_type: &'static str,
}

impl NewDrive {
    /// A project space.
    pub fn project(name: String, description: String, quota_total: u64, alias: String) -> Self {
        NewDrive {
            name,
            description,
            quota: QuotaTotal { total: quota_total },
            drive_alias: alias,
            drive_type: "project",
        }
    }
}

/// The writable part of a quota.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuotaTotal {
    pub total: u64,
}

/// A PATCH of a space: only the fields that are set are sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DriveUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaTotal>,
}

impl DriveUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.quota.is_none()
    }
}

/// A group as oCIS knows it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// One grant on a space root (`g:<group id>` or `u:<user id>`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// `g:<group id>` / `u:<user id>`; empty in the v1.0 drive list's
    /// legacy grants, which carry none.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub granted_to_v2: Option<GrantedTo>,
}

impl Permission {
    /// The permission id oCIS gives a group grant.
    pub fn group_id(group_id: &str) -> String {
        format!("g:{group_id}")
    }

    /// Display name of the granted group, if this grants a group.
    pub fn group_name(&self) -> Option<&str> {
        self.granted_to_v2
            .as_ref()
            .and_then(|g| g.group.as_ref())
            .and_then(|g| g.display_name.as_deref())
    }
}

/// Recipient of a grant.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GrantedTo {
    #[serde(default)]
    pub group: Option<Identity>,
    #[serde(default)]
    pub user: Option<Identity>,
}

/// A user or group reference.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Result of an invitation.
#[derive(Clone, Debug, PartialEq)]
pub enum Invite {
    Granted(Vec<Permission>),
    /// 409: the recipient already has a grant (maybe with another role).
    AlreadyMember,
}

#[derive(Deserialize)]
struct Collection<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorMain,
}

#[derive(Deserialize)]
struct ErrorMain {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Serialize)]
struct InviteBody<'a> {
    recipients: [Recipient<'a>; 1],
    roles: [&'a str; 1],
}

#[derive(Serialize)]
struct Recipient<'a> {
    #[serde(rename = "objectId")]
    object_id: &'a str,
    #[serde(rename = "@libre.graph.recipient.type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct RolesBody<'a> {
    roles: [&'a str; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewGroup<'a> {
    display_name: &'a str,
}

/// One request, rebuilt for the retry after a 401.
struct Call<'a> {
    method: Method,
    path: String,
    query: &'a [(&'a str, &'a str)],
    header: Option<(&'static str, &'static str)>,
    body: Option<serde_json::Value>,
}

/// Client of one oCIS instance.
#[derive(Clone)]
pub struct OcisClient {
    http: reqwest::Client,
    /// The gate of every request (rate limit, pauses, breaker); unlimited by default.
    guard: Arc<UpstreamGuard>,
    /// `OCIS_API_URL` without a trailing slash; paths start with `/graph/`.
    base_url: String,
    tokens: Arc<TokenSource>,
}

impl OcisClient {
    /// A client of the oCIS at `base_url` (e.g. `https://cloud.example`),
    /// authenticating with tokens from `tokens`.
    pub fn new(http: reqwest::Client, base_url: &str, tokens: Arc<TokenSource>) -> Self {
        OcisClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            tokens,
            guard: Arc::new(UpstreamGuard::unlimited(SYSTEM)),
        }
    }

    /// Sends through `guard` (shared with every other client of this upstream).
    pub fn with_guard(mut self, guard: Arc<UpstreamGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// The OIDC client id of the service user this client acts as.
    pub fn service_client_id(&self) -> &str {
        self.tokens.client_id()
    }

    /// Fetches the service token now if none is held, so that what comes
    /// next (e.g. a timed list) does not include that fetch.
    pub async fn ensure_token(&self) -> Result<(), OcisError> {
        self.tokens.token().await?;
        Ok(())
    }

    /// The project spaces whose `driveAlias` is `wanted` (disabled ones
    /// included), reduced to [`DriveSummary`]. oCIS can only list every
    /// space; each entry is parsed in place (no copy of its strings) and
    /// only the wanted ones are kept, so a list of 10,000 spaces allocates
    /// for the handful a caller looks for, not for all of them.
    pub async fn project_drive_summaries_with_alias(
        &self,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<DriveSummary>, OcisError> {
        self.project_drives("/graph/v1.0/drives", |element| {
            let listed: ListedDrive = serde_json::from_slice(element)?;
            Ok(listed
                .drive_alias
                .as_deref()
                .is_some_and(&wanted)
                .then(|| listed.into_summary()))
        })
        .await
    }

    /// Every project space with its grants in `root.permissions` in the
    /// unified form the permissions API uses (permission ids, role ids,
    /// `grantedToV2`): the v1beta1 drive list. The v1.0 list carries the
    /// legacy form (`grantedToIdentities`, role names) instead. Each space
    /// goes to `keep` as soon as it is parsed; only what `keep` makes of it
    /// is retained.
    pub async fn map_project_drives_with_grants<U>(
        &self,
        mut keep: impl FnMut(Drive) -> U,
    ) -> Result<Vec<U>, OcisError> {
        self.project_drives("/graph/v1beta1/drives", |element| {
            Ok(Some(keep(serde_json::from_slice(element)?)))
        })
        .await
    }

    /// The project spaces at `path`, each element's JSON handed to `keep`
    /// as the body arrives; what it returns (if anything) is kept.
    async fn project_drives<U>(
        &self,
        path: &str,
        keep: impl FnMut(&[u8]) -> serde_json::Result<Option<U>>,
    ) -> Result<Vec<U>, OcisError> {
        let query = [("$filter", "driveType eq 'project'")];
        let call = Call::new(Method::GET, path.into()).query(&query);
        let response = self.send(&call).await?;
        json_list::collect(response, keep)
            .await
            .map_err(|error| match error {
                ListError::Transport(e) => OcisError::Transport(e.into()),
                ListError::Invalid(e) => {
                    OcisError::InvalidResponse(format!("{} {}: {e}", call.method, call.path))
                }
            })
    }

    /// A space by id; `None` when unknown or purged (404).
    pub async fn get_drive(&self, id: &str) -> Result<Option<Drive>, OcisError> {
        not_found_as_none(self.json(Call::new(Method::GET, drive_path(id))).await)
    }

    /// Creates a project space (not idempotent: look up first).
    pub async fn create_drive(&self, drive: &NewDrive) -> Result<Drive, OcisError> {
        let call = Call::new(Method::POST, "/graph/v1.0/drives".into()).body(drive)?;
        self.json(call).await
    }

    /// Changes the set fields of a space.
    pub async fn update_drive(&self, id: &str, update: &DriveUpdate) -> Result<Drive, OcisError> {
        let call = Call::new(Method::PATCH, drive_path(id)).body(update)?;
        self.json(call).await
    }

    /// Disables (trashes) a space.
    pub async fn disable_drive(&self, id: &str) -> Result<(), OcisError> {
        self.empty(Call::new(Method::DELETE, drive_path(id))).await
    }

    /// Re-enables a disabled space.
    pub async fn restore_drive(&self, id: &str) -> Result<Drive, OcisError> {
        let call = Call::new(Method::PATCH, drive_path(id))
            .header("Restore", "T")
            .body(&serde_json::json!({}))?;
        self.json(call).await
    }

    /// Deletes a disabled space for good.
    pub async fn purge_drive(&self, id: &str) -> Result<(), OcisError> {
        let call = Call::new(Method::DELETE, drive_path(id)).header("Purge", "T");
        self.empty(call).await
    }

    async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, OcisError> {
        let body = self
            .send(&call)
            .await?
            .bytes()
            .await
            .map_err(|e| OcisError::Transport(e.into()))?;
        // oCIS answers some empty results with no body at all: read it as `null`.
        let body: &[u8] = if body.trim_ascii().is_empty() {
            b"null"
        } else {
            &body
        };
        serde_json::from_slice(body)
            .map_err(|e| OcisError::InvalidResponse(format!("{} {}: {e}", call.method, call.path)))
    }

    async fn empty(&self, call: Call<'_>) -> Result<(), OcisError> {
        self.send(&call).await.map(drop)
    }

    /// Sends `call` with the current token, and once more with a fresh
    /// token after a 401. Non-2xx answers become [`OcisError`]s.
    async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response, OcisError> {
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await?;
            let mut request = self
                .http
                .request(
                    call.method.clone(),
                    format!("{}{}", self.base_url, call.path),
                )
                .bearer_auth(&token)
                .query(call.query);
            if let Some((name, value)) = call.header {
                request = request.header(name, value);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let response = self
                .guard
                .send(request)
                .await
                .map_err(OcisError::Transport)?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let text = response.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED {
                if !renewed {
                    self.tokens.invalidate(&token).await;
                    renewed = true;
                    continue;
                }
                return Err(OcisError::Unauthorized {
                    message: truncate(&text),
                });
            }
            return Err(api_error(status, &text));
        }
    }
}

impl std::fmt::Debug for OcisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcisClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl<'a> Call<'a> {
    fn new(method: Method, path: String) -> Self {
        Call {
            method,
            path,
            query: &[],
            header: None,
            body: None,
        }
    }

    fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }

    fn body(mut self, body: &impl Serialize) -> Result<Self, OcisError> {
        let value = serde_json::to_value(body)
            .map_err(|e| OcisError::InvalidResponse(format!("cannot encode request: {e}")))?;
        self.body = Some(value);
        Ok(self)
    }
}

/// Parses the libregraph error body, falling back to the raw text.
fn api_error(status: StatusCode, text: &str) -> OcisError {
    let (code, message) = match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (String::new(), truncate(text)),
    };
    OcisError::Api {
        status: status.as_u16(),
        code,
        message,
    }
}

fn not_found_as_none<T>(result: Result<T, OcisError>) -> Result<Option<T>, OcisError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

fn segment(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

fn drive_path(id: &str) -> String {
    format!("/graph/v1.0/drives/{}", segment(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_ids_are_percent_encoded_in_paths() {
        assert_eq!(
            drive_path("storage-users-1$0aa1-b"),
            "/graph/v1.0/drives/storage-users-1%240aa1-b"
        );
    }

    #[test]
    fn error_bodies_parse_into_code_and_message() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":"invalidRequest","message":"can't purge enabled space","innererror":{"date":"x","request-id":"y"}}}"#,
        );
        assert_eq!(e.code(), Some("invalidRequest"));
        assert!(e.to_string().contains("can't purge enabled space"));
        let e = api_error(StatusCode::BAD_GATEWAY, "upstream down");
        assert_eq!(e.status(), Some(502));
    }

    #[test]
    fn trashed_spaces_are_recognised() {
        let drive: Drive = serde_json::from_value(serde_json::json!({
            "id": "s$1", "name": "A", "root": {"id": "s$1!1", "deleted": {"state": "trashed"}}
        }))
        .expect("drive parses");
        assert!(drive.is_trashed());
        assert_eq!(drive.quota_total(), 0);
    }
}
