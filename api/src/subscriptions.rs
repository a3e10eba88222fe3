//! `/subscriptions`: one billing subscription per tenant. Platform admins
//! manage them; members read their own tenants' subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dezky_core::model::{Subscription, SubscriptionStatus};
use dezky_core::store::is_duplicate_key;
use dezky_core::{Id, Timestamp};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::json::{present, render, JsonBody};
use crate::pagination::{self, Order, PageRequest};
use crate::state::ApiContext;
use dezky_core::store::encode::to_bson;

/// Routes of this resource.
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/subscriptions", get(list).post(create))
        .route(
            "/subscriptions/{id}",
            get(read).patch(update).delete(remove),
        )
}

/// Body of `POST /subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSubscription {
    /// The tenant; one subscription per tenant.
    #[schema(value_type = String)]
    pub tenant_id: Id,
    pub plan: String,
    /// `trialing` (default), `active`, `past_due` or `canceled`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub status: SubscriptionStatus,
    #[serde(default)]
    pub stripe_customer_id: Option<String>,
    #[serde(default)]
    pub stripe_subscription_id: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub current_period_end: Option<Timestamp>,
}

/// Body of `PATCH /subscriptions/{id}`; `null` clears an optional field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSubscription {
    pub plan: Option<String>,
    #[schema(value_type = Option<String>)]
    pub status: Option<SubscriptionStatus>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub stripe_customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub stripe_subscription_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub current_period_end: Option<Option<Timestamp>>,
}

fn validate_plan(ctx: &ApiContext, plan: &str) -> ApiResult<()> {
    if ctx.config.plans.contains(plan) {
        Ok(())
    } else {
        Err(ApiError::invalid("plan", format!("unknown plan `{plan}`")))
    }
}

fn validate_stripe_id(field: &str, value: Option<&str>) -> ApiResult<()> {
    match value {
        Some(v) if v.is_empty() || v.len() > 255 || v.chars().any(char::is_control) => Err(
            ApiError::invalid(field, "must be 1 to 255 printable characters"),
        ),
        _ => Ok(()),
    }
}

/// The subscription with this path id, if the actor may see it.
async fn find_visible(ctx: &ApiContext, actor: &Actor, id: &str) -> ApiResult<Subscription> {
    let id: Id = id
        .parse()
        .map_err(|_| ApiError::not_found("subscription"))?;
    ctx.store
        .subscriptions
        .find_one(doc! { "_id": id })
        .await?
        .filter(|s| actor.0.can_see(s.tenant_id))
        .ok_or_else(|| ApiError::not_found("subscription"))
}

#[utoipa::path(get, path = "/subscriptions", tag = "subscriptions",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{items, nextCursor}`: all (platform admin) or the caller's tenants'")))]
async fn list(
    State(ctx): State<ApiContext>,
    actor: Actor,
    page: PageRequest,
) -> ApiResult<Json<Value>> {
    let filter = if actor.0.platform_admin {
        Document::new()
    } else {
        let ids: Vec<Bson> = actor.0.tenant_ids.iter().copied().map(Bson::from).collect();
        doc! { "tenantId": { "$in": ids } }
    };
    pagination::list(&ctx.store.subscriptions, filter, Order::OldestFirst, page)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/subscriptions", tag = "subscriptions", request_body = CreateSubscription,
    responses((status = 201, description = "the subscription"), (status = 400), (status = 403), (status = 409)))]
async fn create(
    State(ctx): State<ApiContext>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateSubscription>,
) -> ApiResult<Response> {
    actor.require_platform_admin()?;
    validate_plan(&ctx, &body.plan)?;
    validate_stripe_id("stripeCustomerId", body.stripe_customer_id.as_deref())?;
    validate_stripe_id(
        "stripeSubscriptionId",
        body.stripe_subscription_id.as_deref(),
    )?;
    if ctx
        .store
        .tenants
        .find_one(doc! { "_id": body.tenant_id })
        .await?
        .is_none()
    {
        return Err(ApiError::invalid("tenantId", "unknown tenant"));
    }
    let now = Timestamp::now();
    let subscription = Subscription {
        id: Id::new(),
        tenant_id: body.tenant_id,
        plan: body.plan,
        status: body.status,
        stripe_customer_id: body.stripe_customer_id,
        stripe_subscription_id: body.stripe_subscription_id,
        current_period_end: body.current_period_end,
        created_at: now,
        updated_at: now,
    };
    match ctx.store.subscriptions.insert_one(&subscription).await {
        Ok(_) => Ok((StatusCode::CREATED, Json(render(&subscription))).into_response()),
        Err(e) if is_duplicate_key(&e) => Err(ApiError::Conflict {
            code: "subscription_exists",
            field: Some("tenantId".into()),
            message: "this tenant already has a subscription".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/subscriptions/{id}", tag = "subscriptions",
    responses((status = 200, description = "the subscription"), (status = 404)))]
async fn read(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    find_visible(&ctx, &actor, &id)
        .await
        .map(|s| Json(render(&s)))
}

#[utoipa::path(patch, path = "/subscriptions/{id}", tag = "subscriptions", request_body = PatchSubscription,
    responses((status = 200, description = "the subscription"), (status = 400), (status = 403), (status = 404)))]
async fn update(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<PatchSubscription>,
) -> ApiResult<Json<Value>> {
    let subscription = find_visible(&ctx, &actor, &id).await?;
    actor.require_platform_admin()?;
    let mut set = doc! { "updatedAt": Timestamp::now() };
    if let Some(plan) = patch.plan {
        validate_plan(&ctx, &plan)?;
        set.insert("plan", plan);
    }
    if let Some(status) = patch.status {
        set.insert("status", to_bson(&status)?);
    }
    if let Some(customer) = patch.stripe_customer_id {
        validate_stripe_id("stripeCustomerId", customer.as_deref())?;
        set.insert("stripeCustomerId", customer);
    }
    if let Some(stripe) = patch.stripe_subscription_id {
        validate_stripe_id("stripeSubscriptionId", stripe.as_deref())?;
        set.insert("stripeSubscriptionId", stripe);
    }
    if let Some(end) = patch.current_period_end {
        set.insert("currentPeriodEnd", end.map(Bson::from));
    }
    ctx.store
        .subscriptions
        .find_one_and_update(doc! { "_id": subscription.id }, doc! { "$set": set })
        .return_document(ReturnDocument::After)
        .await?
        .map(|s| Json(render(&s)))
        .ok_or_else(|| ApiError::not_found("subscription"))
}

#[utoipa::path(delete, path = "/subscriptions/{id}", tag = "subscriptions",
    responses((status = 204, description = "deleted"), (status = 403), (status = 404)))]
async fn remove(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let subscription = find_visible(&ctx, &actor, &id).await?;
    actor.require_platform_admin()?;
    ctx.store
        .subscriptions
        .delete_one(doc! { "_id": subscription.id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
