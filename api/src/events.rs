//! `GET /tenants/{slug}/events`: a tenant's reconcile history as the
//! controller recorded it in `tenant_events`, newest first.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use mongodb::bson::doc;
use serde_json::Value;

use crate::auth::Actor;
use crate::error::ApiResult;
use crate::pagination::{self, Order, PageRequest};
use crate::state::ApiContext;
use crate::tenants::load_visible;

/// Routes of this resource.
pub fn router() -> Router<ApiContext> {
    Router::new().route("/tenants/{slug}/events", get(list))
}

#[utoipa::path(get, path = "/tenants/{slug}/events", tag = "tenants",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{items, nextCursor}` of events `{at, system, action, object, fields, message, generation}`, newest first"), (status = 404)))]
async fn list(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    page: PageRequest,
) -> ApiResult<Json<Value>> {
    let tenant = load_visible(&ctx, &actor, &slug).await?;
    pagination::list(
        &ctx.store.events,
        doc! { "tenantId": tenant.id },
        Order::NewestFirst,
        page,
    )
    .await
    .map(Json)
}
