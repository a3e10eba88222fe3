//! `GET /console/`: the operator console, a static page with vanilla
//! JavaScript (no build step) compiled into the binary from `api/console/`,
//! so the API process serves it with nothing else installed. The page
//! signs in itself (authorization code flow with PKCE against
//! `OIDC_ISSUER`, as the public client `CONSOLE_CLIENT_ID`; the token stays
//! in the tab's session storage) and then uses the same API as every other
//! client: the fleet view is fed by `GET /tenants?watch=true&view=fleet`,
//! a tenant's page by its own `GET /tenants?watch=true&slug=...`. The
//! script is a set of ES modules, one job each (see `app.js`).
//!
//! `GET /console/config.json` tells the page how to sign in: the issuer,
//! its authorization and token endpoints (from discovery), the client id,
//! whether a pasted token is allowed (the demo only) and the plan names.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::ApiContext;

const INDEX: &str = include_str!("../console/index.html");
/// The page's ES modules (`app.js` is the entry), served at `/console/{name}`.
const SCRIPTS: [(&str, &str); 9] = [
    ("app.js", include_str!("../console/app.js")),
    ("session.js", include_str!("../console/session.js")),
    ("dom.js", include_str!("../console/dom.js")),
    ("watch.js", include_str!("../console/watch.js")),
    ("fleet-store.js", include_str!("../console/fleet-store.js")),
    ("fleet.js", include_str!("../console/fleet.js")),
    ("tenant.js", include_str!("../console/tenant.js")),
    ("forms.js", include_str!("../console/forms.js")),
    ("create.js", include_str!("../console/create.js")),
];
const STYLE: &str = include_str!("../console/style.css");

/// Scripts and styles only from the API itself; the sign-in's token
/// request goes to the issuer, whose origin the browser must reach.
const CSP: &str = "default-src 'self'; connect-src *; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Routes of the console.
pub fn router() -> Router<ApiContext> {
    let scripts = SCRIPTS.iter().fold(Router::new(), |router, &(name, body)| {
        router.route(
            &format!("/console/{name}"),
            get(move || async move { asset(body, "text/javascript; charset=utf-8") }),
        )
    });
    scripts
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/console/config.json", get(config))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn config(State(ctx): State<ApiContext>) -> Response {
    let plans: Vec<&str> = ctx.config.plans.names().collect();
    let mut response = Json(json!({
        "issuer": ctx.verifier.issuer(),
        "clientId": ctx.config.console_client_id,
        "authorizationEndpoint": ctx.verifier.authorization_endpoint(),
        "tokenEndpoint": ctx.verifier.token_endpoint(),
        "tokenPaste": ctx.config.console_token_paste,
        "plans": plans,
        "defaultPlan": ctx.config.plans.default_plan(),
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
