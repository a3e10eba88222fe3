//! The HTTP surface of the simulated groups API (`/api/v3/core/groups/`):
//! Bearer-token auth, JSON bodies and error bodies as Authentik (Django
//! REST framework) sends them, and both group shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::listing::{self, ListError};
use super::model::{GroupTable, SimGroup, WriteKind};

/// What the handlers share: the group table and the server's behaviour.
pub struct Shared {
    pub groups: Mutex<GroupTable>,
    /// The only API token accepted.
    pub api_token: String,
    /// Render and accept the pre-2025.12 `parent`/`parent_name` shape.
    pub legacy_parent_shape: bool,
    /// Send pagination numbers as JSON floats.
    pub float_pagination: bool,
}

impl Shared {
    pub fn groups(&self) -> MutexGuard<'_, GroupTable> {
        self.groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `/api/v3/core/groups/` routes, behind token auth.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v3/core/groups/", get(list).post(create))
        .route(
            "/api/v3/core/groups/{group_uuid}/",
            get(retrieve)
                .put(replace)
                .patch(partial_update)
                .delete(destroy),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            authenticate,
        ))
        .with_state(shared)
}

/// 404 for paths the simulator does not serve (Django's own 404 is HTML;
/// API clients only look at the status).
pub async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

async fn method_not_allowed(method: Method) -> Response {
    detail(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("Method \"{method}\" not allowed."),
    )
}

fn detail(status: StatusCode, message: &str) -> Response {
    ApiError::detail(status, message).into_response()
}

/// An error answer: status and JSON body.
struct ApiError(StatusCode, Value);

impl ApiError {
    /// DRF's `{"detail": "..."}` body.
    fn detail(status: StatusCode, message: &str) -> Self {
        ApiError(status, json!({ "detail": message }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// Authentik's token authentication: a bad or missing token is 403.
async fn authenticate(
    State(shared): State<Arc<Shared>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        return detail(
            StatusCode::FORBIDDEN,
            "Authentication credentials were not provided.",
        );
    };
    let mut parts = header.split_whitespace();
    let (Some(scheme), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
        return detail(StatusCode::FORBIDDEN, "Malformed header");
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return detail(
            StatusCode::FORBIDDEN,
            "Unsupported authentication type, denying request",
        );
    }
    if token != shared.api_token {
        return detail(StatusCode::FORBIDDEN, "Token invalid/expired");
    }
    next.run(request).await
}

/// The optional parts of a rendered group (`include_*` query flags).
struct Includes {
    users: bool,
    children: bool,
    parents: bool,
    inherited_roles: bool,
}

impl Includes {
    fn from_query(query: &HashMap<String, String>) -> Self {
        // Authentik compares `str(value).lower() == "true"`.
        let flag = |name: &str, default: bool| {
            query
                .get(name)
                .map_or(default, |v| v.eq_ignore_ascii_case("true"))
        };
        Includes {
            users: flag("include_users", true),
            children: flag("include_children", false),
            parents: flag("include_parents", false),
            inherited_roles: flag("include_inherited_roles", false),
        }
    }
}

fn related(group: &SimGroup) -> Value {
    json!({
        "pk": group.pk,
        "name": group.name,
        "is_superuser": group.is_superuser,
        "attributes": group.attributes,
        "group_uuid": group.pk,
    })
}

/// A group as the API returns it, in the configured shape.
fn render(shared: &Shared, table: &GroupTable, group: &SimGroup, includes: &Includes) -> Value {
    let children = table.children(group.pk);
    let children_ids: Vec<Uuid> = children.iter().map(|c| c.pk).collect();
    let children_obj = includes
        .children
        .then(|| children.iter().map(|c| related(c)).collect::<Vec<_>>());
    // The simulator has no users, so the expanded list is empty when asked for.
    let users_obj = includes.users.then(Vec::<Value>::new);
    let mut out = Map::new();
    out.insert("pk".into(), json!(group.pk));
    out.insert("num_pk".into(), json!(group.num_pk));
    out.insert("name".into(), json!(group.name));
    out.insert("is_superuser".into(), json!(group.is_superuser));
    if shared.legacy_parent_shape {
        let parent = group.parents.first().and_then(|pk| table.get(*pk));
        out.insert("parent".into(), json!(parent.map(|p| p.pk)));
        out.insert("parent_name".into(), json!(parent.map(|p| &p.name)));
    } else {
        let parents_obj = includes.parents.then(|| {
            group
                .parents
                .iter()
                .filter_map(|pk| table.get(*pk))
                .map(related)
                .collect::<Vec<_>>()
        });
        out.insert("parents".into(), json!(group.parents));
        out.insert("parents_obj".into(), json!(parents_obj));
    }
    out.insert("users".into(), json!(group.users));
    out.insert("users_obj".into(), json!(users_obj));
    out.insert("attributes".into(), Value::Object(group.attributes.clone()));
    out.insert("roles".into(), json!(group.roles));
    out.insert("roles_obj".into(), json!([]));
    if !shared.legacy_parent_shape {
        let inherited = includes.inherited_roles.then(Vec::<Value>::new);
        out.insert("inherited_roles_obj".into(), json!(inherited));
    }
    out.insert("children".into(), json!(children_ids));
    out.insert("children_obj".into(), json!(children_obj));
    Value::Object(out)
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let table = shared.groups();
    let page =
        listing::list(&table, &query, shared.float_pagination).map_err(|error| match error {
            ListError::BadRequest(body) => ApiError(StatusCode::BAD_REQUEST, body),
            ListError::InvalidPage => ApiError::detail(StatusCode::NOT_FOUND, "Invalid page."),
        })?;
    let includes = Includes::from_query(&query);
    let results: Vec<Value> = page
        .items
        .iter()
        .map(|g| render(&shared, &table, g, &includes))
        .collect();
    Ok(Json(json!({
        "pagination": page.pagination,
        "results": results,
        "autocomplete": {},
    }))
    .into_response())
}

/// The group a path names, or the 404 Authentik answers (also for a
/// malformed uuid).
fn existing<'a>(table: &'a GroupTable, raw: &str) -> Result<&'a SimGroup, ApiError> {
    Uuid::parse_str(raw)
        .ok()
        .and_then(|pk| table.get(pk))
        .ok_or_else(|| ApiError::detail(StatusCode::NOT_FOUND, "No Group matches the given query."))
}

async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let table = shared.groups();
    let group = existing(&table, &raw)?;
    let includes = Includes::from_query(&query);
    Ok(Json(render(&shared, &table, group, &includes)).into_response())
}

/// Parses a request body the way DRF's JSON parser does.
fn json_body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(ApiError::detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Unsupported media type \"{content_type}\" in request."),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::detail(StatusCode::BAD_REQUEST, &format!("JSON parse error - {e}")))
}

/// Runs one write and renders the result with `success` status.
fn write(
    shared: &Shared,
    target: Option<&str>,
    headers: &HeaderMap,
    bytes: &Bytes,
    kind: WriteKind,
    success: StatusCode,
) -> Result<Response, ApiError> {
    let mut table = shared.groups();
    let target = target
        .map(|raw| existing(&table, raw).map(|g| g.pk))
        .transpose()?;
    let body = json_body(headers, bytes)?;
    let group = table
        .write(target, &body, kind, shared.legacy_parent_shape)
        .map_err(|errors| ApiError(StatusCode::BAD_REQUEST, json!(errors)))?;
    let includes = Includes::from_query(&HashMap::new());
    Ok((success, Json(render(shared, &table, &group, &includes))).into_response())
}

async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = WriteKind::Create;
    write(&shared, None, &headers, &bytes, kind, StatusCode::CREATED)
}

async fn replace(
    State(shared): State<Arc<Shared>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = WriteKind::Replace;
    write(&shared, Some(&raw), &headers, &bytes, kind, StatusCode::OK)
}

async fn partial_update(
    State(shared): State<Arc<Shared>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = WriteKind::Patch;
    write(&shared, Some(&raw), &headers, &bytes, kind, StatusCode::OK)
}

async fn destroy(
    State(shared): State<Arc<Shared>>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut table = shared.groups();
    let pk = existing(&table, &raw)?.pk;
    table.remove(pk);
    Ok(StatusCode::NO_CONTENT)
}
