//! `GET /openapi.json`: the OpenAPI 3 document of this API, generated from
//! the handlers' `#[utoipa::path]` annotations and the request body types.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{events, ops, requests, subscriptions, tenants, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "dezky provisioner API", description = "Desired state of dezky tenants; errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."),
    paths(
        ops::healthz, ops::readyz, ops::metrics,
        tenants::create, tenants::list, tenants::read, tenants::update,
        tenants::request_deletion, requests::request_reconcile, requests::request_plan, events::list,
        users::me, users::list, users::create, users::read, users::update, users::remove,
        subscriptions::list, subscriptions::create, subscriptions::read,
        subscriptions::update, subscriptions::remove,
    ),
    components(schemas(
        tenants::CreateTenant, tenants::PatchTenant, users::CreateUser, users::PatchUser,
        subscriptions::CreateSubscription, subscriptions::PatchSubscription,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Declares the bearer-JWT scheme every non-ops route uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`.
pub fn router() -> Router {
    let document = document();
    Router::new().route("/openapi.json", get(move || async move { Json(document) }))
}
