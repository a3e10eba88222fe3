//! `GET /tenants/{slug}/events`: a tenant's reconcile history as the
//! controller recorded it in `tenant_events`, newest first.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use dezky_core::model::TenantEvent;
use mongodb::bson::doc;

use crate::auth::Actor;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::pagination::{self, Order, Page, PageRequest};
use crate::state::ApiContext;
use crate::tenants::load_visible;

/// Routes of this resource.
pub fn router() -> Router<ApiContext> {
    Router::new().route("/tenants/{slug}/events", get(list))
}

#[utoipa::path(get, path = "/tenants/{slug}/events", tag = "tenants",
    params(("slug" = String, Path), PageRequest),
    responses(
        (status = 200, description = "the tenant's reconcile history, newest first", body = Page<TenantEvent>),
        (status = 400, description = "bad `limit` or `cursor`", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    page: PageRequest,
) -> ApiResult<ApiJson<Page<TenantEvent>>> {
    let tenant = load_visible(&ctx, &actor, &slug).await?;
    pagination::list(
        &ctx.store.events,
        doc! { "tenantId": tenant.id },
        None,
        Order::NewestFirst,
        page,
    )
    .await
    .map(ApiJson)
}
