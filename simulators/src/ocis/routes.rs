//! The libregraph routes of the oCIS simulator, with oCIS's status codes and
//! `{"error": {"code", "message", "innererror"}}` bodies.
//!
//! Drives are listed under `/graph/v1.0/drives` and `/graph/v1beta1/drives`
//! (the same spaces; grants in `root.permissions` in each version's shape,
//! see [`Api`]), so a client sees every grant of every space in one call.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::model::{self, Api, DriveRecord, Grantee, PermissionRecord};
use super::Shared;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/graph/v1.0/drives", get(list_drives).post(create_drive))
        .route("/graph/v1beta1/drives", get(list_drives_beta))
        .route(
            "/graph/v1.0/drives/{id}",
            get(get_drive).patch(patch_drive).delete(delete_drive),
        )
        .route("/graph/v1.0/groups", post(create_group))
        .route(
            "/graph/v1.0/groups/{name_or_id}",
            get(get_group).delete(delete_group),
        )
        .route("/graph/v1beta1/drives/{id}/root/invite", post(invite))
        .route(
            "/graph/v1beta1/drives/{id}/root/permissions",
            get(list_permissions),
        )
        .route(
            "/graph/v1beta1/drives/{id}/root/permissions/{perm}",
            patch(patch_permission).delete(delete_permission),
        )
        .with_state(shared)
}

/// A libregraph error answer.
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphError {
    fn invalid(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::BAD_REQUEST,
            code: "invalidRequest",
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::NOT_FOUND,
            code: "itemNotFound",
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::CONFLICT,
            code: "nameAlreadyExists",
            message: message.into(),
        }
    }

    fn not_supported(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "notSupported",
            message: message.into(),
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "code": self.code,
            "message": self.message,
            "innererror": { "date": model::now(), "request-id": uuid::Uuid::new_v4().to_string() },
        }});
        (self.status, Json(body)).into_response()
    }
}

type Answer = Result<Response, GraphError>;

/// Parses a JSON object body, allowing only `allowed` top-level keys (oCIS
/// decodes strictly: an unknown field is a 400).
fn object_body(body: &Bytes, allowed: &[&str]) -> Result<Map<String, Value>, GraphError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GraphError::invalid(format!("invalid body schema definition: {e}")))?;
    let Value::Object(map) = value else {
        return Err(GraphError::invalid("invalid body schema definition"));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(GraphError::invalid(format!(
            "invalid body schema definition: unknown field \"{unknown}\""
        )));
    }
    Ok(map)
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<Option<String>, GraphError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::invalid(format!("{key} must be a string"))),
    }
}

fn quota_field(map: &Map<String, Value>) -> Result<Option<u64>, GraphError> {
    match map.get("quota") {
        None => Ok(None),
        Some(Value::Object(quota)) => match quota.get("total") {
            None => Ok(None),
            Some(total) => total
                .as_u64()
                .map(Some)
                .ok_or_else(|| GraphError::invalid("quota.total must be a non-negative integer")),
        },
        Some(_) => Err(GraphError::invalid("quota must be an object")),
    }
}

/// A header oCIS reads with Go's `strconv.ParseBool`.
fn flag(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True"))
}

/// The one `<field> eq '<value>'` term oCIS supports in `$filter`.
fn parse_filter(filter: &str) -> Result<(&str, &str), GraphError> {
    let unsupported = || GraphError::not_supported(format!("unsupported filter: {filter}"));
    let mut parts = filter.trim().splitn(3, ' ');
    let (Some(field), Some("eq"), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(unsupported());
    };
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .filter(|v| !v.contains('\''))
        .ok_or_else(unsupported)?;
    match field {
        "driveType" | "id" => Ok((field, value)),
        _ => Err(unsupported()),
    }
}

/// `GET /graph/v1.0/drives`: grants in the v1.0 shape.
async fn list_drives(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    drive_list(&shared, &query, Api::V1)
}

/// `GET /graph/v1beta1/drives`: grants as the permissions API shows them.
async fn list_drives_beta(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    drive_list(&shared, &query, Api::V1Beta1)
}

/// The spaces a `$filter` selects, in creation order (every space is a
/// project space; `id eq` is a lookup, not a scan).
fn drive_list(shared: &Shared, query: &HashMap<String, String>, api: Api) -> Answer {
    let filter = query.get("$filter").map(|f| parse_filter(f)).transpose()?;
    let mut state = shared.state();
    let drives = match filter {
        None | Some(("driveType", "project")) => state.rendered_drives(&shared.base_url, api),
        Some(("id", id)) => state
            .drive(id)
            .map(|d| d.to_json(&shared.base_url, api).to_string().into_bytes())
            .unwrap_or_default(),
        Some(_) => Vec::new(),
    };
    drop(state);
    if drives.is_empty() && shared.null_empty_list {
        return Ok(Json(Value::Null).into_response());
    }
    let mut body = Vec::with_capacity(drives.len() + 12);
    body.extend_from_slice(b"{\"value\":[");
    body.extend_from_slice(&drives);
    body.extend_from_slice(b"]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn create_drive(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Answer {
    let map = object_body(
        &body,
        &["name", "description", "quota", "driveAlias", "driveType"],
    )?;
    let name = string_field(&map, "name")?.unwrap_or_default();
    let name = model::check_space_name(&name).map_err(GraphError::invalid)?;
    match string_field(&map, "driveType")?.as_deref() {
        None | Some("project") => {}
        Some(other) => {
            return Err(GraphError::invalid(format!(
                "drives of type {other} cannot be created via this api"
            )))
        }
    }
    let drive = DriveRecord::new(
        name,
        string_field(&map, "description")?.unwrap_or_default(),
        string_field(&map, "driveAlias")?,
        quota_field(&map)?.unwrap_or(0),
        &caller,
    );
    let json = drive.to_json(&shared.base_url, Api::V1);
    shared.state().add_drive(drive);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

fn no_drive(id: &str) -> GraphError {
    GraphError::not_found(format!("drive {id} not found"))
}

async fn get_drive(State(shared): State<Shared>, Path(id): Path<String>) -> Answer {
    let state = shared.state();
    let drive = state.drive(&id).ok_or_else(|| no_drive(&id))?;
    Ok(Json(drive.to_json(&shared.base_url, Api::V1)).into_response())
}

async fn patch_drive(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let map = object_body(&body, &["name", "description", "quota"])?;
    let name = string_field(&map, "name")?
        .map(|n| model::check_space_name(&n).map_err(GraphError::invalid))
        .transpose()?;
    let description = string_field(&map, "description")?;
    let quota = quota_field(&map)?;
    let mut state = shared.state();
    let drive = state.drive_mut(&id).ok_or_else(|| no_drive(&id))?;
    if flag(&headers, "Restore") {
        drive.trashed = false;
    } else if drive.trashed {
        return Err(GraphError::invalid("space is disabled"));
    }
    if let Some(name) = name {
        drive.name = name;
    }
    if let Some(description) = description {
        drive.description = description;
    }
    if let Some(total) = quota {
        drive.quota_total = total;
    }
    drive.touch();
    Ok(Json(drive.to_json(&shared.base_url, Api::V1)).into_response())
}

async fn delete_drive(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let mut state = shared.state();
    let drive = state.drive_mut(&id).ok_or_else(|| no_drive(&id))?;
    if flag(&headers, "Purge") {
        if !drive.trashed {
            return Err(GraphError::invalid("can't purge enabled space"));
        }
        state.remove_drive(&id);
    } else if !drive.trashed {
        drive.trashed = true;
        drive.touch();
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_group(State(shared): State<Shared>, Path(name_or_id): Path<String>) -> Answer {
    let state = shared.state();
    let group = state
        .group(&name_or_id)
        .ok_or_else(|| GraphError::not_found(format!("group {name_or_id} not found")))?;
    Ok(Json(group.to_json()).into_response())
}

/// `DELETE /graph/v1.0/groups/{id}`: like oCIS, the group's grants stay on
/// the spaces, with its name, after it is gone.
async fn delete_group(State(shared): State<Shared>, Path(id): Path<String>) -> Answer {
    match shared.state().remove_group(&id) {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(GraphError::not_found(format!("group {id} not found"))),
    }
}

async fn create_group(State(shared): State<Shared>, body: Bytes) -> Answer {
    let map = object_body(&body, &["displayName", "description"])?;
    let name = string_field(&map, "displayName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| GraphError::invalid("missing required attribute: displayName"))?;
    let mut state = shared.state();
    if state.group_by_name(&name).is_some() {
        return Err(GraphError::conflict(format!(
            "a group named {name} already exists"
        )));
    }
    let id = state.add_group(&name);
    let group = state.group(&id).map(|g| g.to_json()).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

/// The space `id`, if `caller` may manage its members (oCIS hides spaces a
/// caller may not manage behind a 404).
fn managed_drive<'a>(
    state: &'a mut model::State,
    id: &str,
    caller: &Caller,
) -> Result<&'a mut DriveRecord, GraphError> {
    let drive = state.drive_mut(id).ok_or_else(|| no_drive(id))?;
    if !drive.is_manager(&caller.id) {
        return Err(no_drive(id));
    }
    if drive.trashed {
        return Err(GraphError::invalid("space is disabled"));
    }
    Ok(drive)
}

/// The `roles` of an invite or permission update: at most one space role.
fn role_field(map: &Map<String, Value>) -> Result<Option<String>, GraphError> {
    let roles = match map.get("roles") {
        None => return Ok(None),
        Some(Value::Array(roles)) => roles,
        Some(_) => return Err(GraphError::invalid("roles must be an array")),
    };
    let [role] = roles.as_slice() else {
        return Err(GraphError::invalid("exactly one role is supported"));
    };
    let role = role
        .as_str()
        .filter(|r| model::is_space_role(r))
        .ok_or_else(|| GraphError::invalid("role not applicable to this resource"))?;
    Ok(Some(role.to_string()))
}

async fn invite(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Answer {
    let map = object_body(&body, &["recipients", "roles", "expirationDateTime"])?;
    let role = role_field(&map)?
        .ok_or_else(|| GraphError::invalid("a role is required to share a space"))?;
    let recipient = match map.get("recipients") {
        Some(Value::Array(list)) if list.len() == 1 => &list[0],
        _ => return Err(GraphError::invalid("exactly one recipient is supported")),
    };
    let object_id = recipient
        .get("objectId")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::invalid("recipient objectId is required"))?;
    let kind = recipient
        .get("@libre.graph.recipient.type")
        .and_then(Value::as_str)
        .unwrap_or("user");
    if kind != "group" {
        return Err(GraphError::invalid(format!(
            "recipient {object_id} of type {kind} is unknown"
        )));
    }
    let mut state = shared.state();
    let group = state
        .group(object_id)
        .filter(|g| g.id == object_id)
        .map(|g| (g.id.clone(), g.name.clone()))
        .ok_or_else(|| GraphError::invalid(format!("group {object_id} not found")))?;
    let drive = managed_drive(&mut state, &id, &caller)?;
    let perm_id = format!("g:{}", group.0);
    if drive.permissions.iter().any(|p| p.id == perm_id) {
        return Err(GraphError::conflict(
            "error: already exists: grant already exists",
        ));
    }
    let permission = PermissionRecord {
        id: perm_id,
        roles: vec![role],
        grantee: Grantee::Group {
            id: group.0,
            name: group.1,
        },
    };
    let json = permission.to_json(Api::V1Beta1);
    drive.permissions.push(permission);
    drive.touch();
    Ok(Json(json!({ "value": [json] })).into_response())
}

async fn list_permissions(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> Answer {
    let mut state = shared.state();
    let drive = managed_drive(&mut state, &id, &caller)?;
    let value: Vec<Value> = drive
        .permissions
        .iter()
        .map(|p| p.to_json(Api::V1Beta1))
        .collect();
    Ok(Json(json!({
        "@libre.graph.permissions.roles.allowedValues": model::space_roles(),
        "value": value,
    }))
    .into_response())
}

async fn patch_permission(
    State(shared): State<Shared>,
    Path((id, perm)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Answer {
    let map = object_body(&body, &["roles", "expirationDateTime"])?;
    let role = role_field(&map)?;
    let mut state = shared.state();
    let drive = managed_drive(&mut state, &id, &caller)?;
    let permission = drive
        .permissions
        .iter_mut()
        .find(|p| p.id == perm)
        .ok_or_else(|| GraphError::not_found(format!("permission {perm} not found")))?;
    if let Some(role) = role {
        permission.roles = vec![role];
    }
    let json = permission.to_json(Api::V1Beta1);
    drive.touch();
    Ok(Json(json).into_response())
}

async fn delete_permission(
    State(shared): State<Shared>,
    Path((id, perm)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
) -> Answer {
    let mut state = shared.state();
    let drive = managed_drive(&mut state, &id, &caller)?;
    let before = drive.permissions.len();
    drive.permissions.retain(|p| p.id != perm);
    if drive.permissions.len() == before {
        return Err(GraphError::not_found(format!(
            "permission {perm} not found"
        )));
    }
    drive.touch();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_accepts_exactly_one_eq_on_drive_type_or_id() {
        assert_eq!(
            parse_filter("driveType eq 'project'").ok(),
            Some(("driveType", "project"))
        );
        assert_eq!(parse_filter("id eq 'a$b'").ok(), Some(("id", "a$b")));
        for bad in [
            "driveType eq 'project' and id eq 'x'",
            "name eq 'x'",
            "driveType ne 'project'",
            "driveType eq project",
            "",
        ] {
            let err = parse_filter(bad).err().map(|e| e.status);
            assert_eq!(err, Some(StatusCode::NOT_IMPLEMENTED), "{bad}");
        }
    }
}
