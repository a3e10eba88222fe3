//! `GET /openapi.json`: the OpenAPI 3.1 document of this API, generated
//! from the handlers' `#[utoipa::path]` annotations and the schemas the
//! request, response and model types derive, so it follows the code. A few
//! facts hold for many routes at once and are added here instead of on
//! every handler:
//!
//! - stored documents are served with `id` for their `_id` (as
//!   [`crate::json::ApiJson`] writes them);
//! - `Plan` is the enum of the configured plans (`PLAN_QUOTAS`);
//! - every route with a token answers 401 without one and 503
//!   `database_unavailable` / 500 `internal`; every route with a body
//!   answers 413 and 415.
//!
//! The integration tests validate real responses of every route against
//! this document.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dezky_core::plans::PlanQuotas;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::{events, fleet, ops, requests, subscriptions, tenants, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "dezky provisioner API", description = "Desired state of dezky tenants, recorded in MongoDB and reconciled by the controller. Every error is an `ErrorBody`."),
    paths(
        ops::healthz, ops::readyz, ops::metrics, openapi_json,
        tenants::create, tenants::list, tenants::read, tenants::apply::apply, tenants::update,
        tenants::request_deletion, requests::request_reconcile, requests::request_plan, events::list,
        fleet::read_summary,
        users::me, users::list, users::create, users::read, users::update, users::remove,
        subscriptions::list, subscriptions::create, subscriptions::read,
        subscriptions::update, subscriptions::remove,
    ),
    components(schemas(ErrorBody, fleet::FleetRow)),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Responses shared by many routes: (status, component name, description).
const TOKEN_RESPONSES: [(&str, &str, &str); 3] = [
    (
        "401",
        "Unauthorized",
        "no valid bearer token (`unauthorized`)",
    ),
    (
        "500",
        "Internal",
        "a bug; details are in the log (`internal`)",
    ),
    (
        "503",
        "DatabaseUnavailable",
        "MongoDB is not reachable; answered within about 2 s (`database_unavailable`)",
    ),
];
const BODY_RESPONSES: [(&str, &str, &str); 2] = [
    (
        "413",
        "PayloadTooLarge",
        "the body is over 64 KiB (`payload_too_large`)",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "the body is not `application/json` (`unsupported_media_type`)",
    ),
];

/// The OpenAPI document (JSON), with `plans` as the valid plan names.
pub fn document(plans: &PlanQuotas) -> Value {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    let names: Vec<&str> = plans.names().collect();
    let plan = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.clone()))
        .description(Some("One of the configured plans (`PLAN_QUOTAS`)."))
        .examples(names.first().copied());
    components.schemas.insert("Plan".into(), plan.into());
    for (_, name, description) in TOKEN_RESPONSES.iter().chain(&BODY_RESPONSES) {
        let error = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        let response = ResponseBuilder::new()
            .description(*description)
            .content("application/json", error)
            .build();
        components
            .responses
            .insert(name.to_string(), response.into());
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared_responses(operation);
        }
    }
    let mut doc = serde_json::to_value(doc).unwrap_or(Value::Null);
    served_ids(&mut doc);
    doc
}

/// Renames every schema property `_id` to `id`, wherever the schema is
/// (components, or inlined as the items of a page).
fn served_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                if properties.contains_key("_id") {
                    // Rebuilt rather than removed and inserted, to keep the order.
                    *properties = std::mem::take(properties)
                        .into_iter()
                        .map(|(key, schema)| match key.as_str() {
                            "_id" => ("id".to_string(), schema),
                            _ => (key, schema),
                        })
                        .collect();
                    if let Some(Value::Array(required)) = map.get_mut("required") {
                        for name in required.iter_mut().filter(|n| *n == "_id") {
                            *name = Value::from("id");
                        }
                    }
                }
            }
            map.values_mut().for_each(served_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(served_ids),
        _ => {}
    }
}

/// Adds the responses of [`TOKEN_RESPONSES`] and [`BODY_RESPONSES`] that
/// apply to `operation`.
fn add_shared_responses(operation: &mut Operation) {
    let is_ops = operation
        .tags
        .as_ref()
        .is_some_and(|tags| tags.iter().any(|t| t == "ops"));
    let mut shared: Vec<&(&str, &str, &str)> = Vec::new();
    if !is_ops {
        shared.extend(&TOKEN_RESPONSES);
    }
    if operation.request_body.is_some() {
        shared.extend(&BODY_RESPONSES);
    }
    for (status, name, _) in shared {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| Ref::from_response_name(*name).into());
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "ops", security(),
    responses((status = 200, description = "this document", body = Object)))]
async fn openapi_json(State(Serialized(document)): State<Serialized>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

/// The document, serialized once at start.
#[derive(Clone)]
struct Serialized(Bytes);

/// `GET /openapi.json`, serving `document`.
pub fn router(document: Value) -> Router {
    let bytes = serde_json::to_vec_pretty(&document)
        .map(Bytes::from)
        .unwrap_or_default();
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .with_state(Serialized(bytes))
}
