//! `/subscriptions`: one billing subscription per tenant. Platform admins
//! manage them; members read their own tenants' subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dezky_core::model::{Subscription, SubscriptionStatus};
use dezky_core::schema::Plan;
use dezky_core::store::is_duplicate_key;
use dezky_core::{Id, Timestamp};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::ReturnDocument;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::json::{present, ApiJson, JsonBody};
use crate::membership;
use crate::pagination::{self, Order, Page, PageRequest};
use crate::state::ApiContext;
use crate::stored;
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
#[schema(example = json!({"tenantId": "6650c0ffee0123456789abcd", "plan": "team", "status": "active", "stripeCustomerId": "cus_Q1w2e3r4t5y6"}))]
pub struct CreateSubscription {
    /// The tenant; one subscription per tenant.
    pub tenant_id: Id,
    #[schema(value_type = Plan)]
    pub plan: String,
    /// `trialing` (default), `active`, `past_due` or `canceled`.
    #[serde(default)]
    #[schema(value_type = Option<SubscriptionStatus>)]
    pub status: SubscriptionStatus,
    #[serde(default)]
    pub stripe_customer_id: Option<String>,
    #[serde(default)]
    pub stripe_subscription_id: Option<String>,
    #[serde(default)]
    pub current_period_end: Option<Timestamp>,
}

/// Body of `PATCH /subscriptions/{id}`; `null` clears an optional field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"status": "past_due"}))]
pub struct PatchSubscription {
    #[schema(value_type = Option<Plan>)]
    pub plan: Option<String>,
    pub status: Option<SubscriptionStatus>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub stripe_customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub stripe_subscription_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Timestamp>)]
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
    let subscription: Subscription =
        stored::find_one(&ctx.store.subscriptions, doc! { "_id": id }, None)
            .await?
            .ok_or_else(|| ApiError::not_found("subscription"))?;
    if actor.0.platform_admin {
        return Ok(subscription);
    }
    let mine = doc! { "$and": [{ "_id": subscription.tenant_id }, membership::filter(&actor.0)] };
    match ctx.store.tenants.count_documents(mine).await? {
        0 => Err(ApiError::not_found("subscription")),
        _ => Ok(subscription),
    }
}

#[utoipa::path(get, path = "/subscriptions", tag = "subscriptions",
    params(PageRequest),
    responses(
        (status = 200, description = "all (platform admin) or those of the caller's tenants, oldest first", body = Page<Subscription>),
        (status = 400, description = "bad `limit` or `cursor`", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    actor: Actor,
    page: PageRequest,
) -> ApiResult<ApiJson<Page<Subscription>>> {
    let filter = if actor.0.platform_admin {
        Document::new()
    } else {
        let ids = membership::tenant_ids(&ctx, &actor.0).await?;
        doc! { "tenantId": { "$in": membership::ids_bson(&ids) } }
    };
    pagination::list(
        &ctx.store.subscriptions,
        filter,
        None,
        Order::OldestFirst,
        page,
    )
    .await
    .map(ApiJson)
}

#[utoipa::path(post, path = "/subscriptions", tag = "subscriptions", request_body = CreateSubscription,
    responses(
        (status = 201, description = "the subscription", body = Subscription),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 403, description = "platform admins only", body = ErrorBody),
        (status = 409, description = "`subscription_exists`", body = ErrorBody)))]
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
        stripe_customer_id: body.stripe_customer_id,
        stripe_subscription_id: body.stripe_subscription_id,
        current_period_end: body.current_period_end,
        ..Subscription::new(body.tenant_id, &body.plan, body.status, now)
    };
    match ctx.store.subscriptions.insert_one(&subscription).await {
        Ok(_) => Ok((StatusCode::CREATED, ApiJson(subscription)).into_response()),
        Err(e) if is_duplicate_key(&e) => Err(ApiError::Conflict {
            code: ErrorCode::SubscriptionExists,
            field: Some("tenantId".into()),
            message: "this tenant already has a subscription".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the subscription", body = Subscription),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
async fn read(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Subscription>> {
    find_visible(&ctx, &actor, &id).await.map(ApiJson)
}

#[utoipa::path(patch, path = "/subscriptions/{id}", tag = "subscriptions", request_body = PatchSubscription,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the subscription", body = Subscription),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 403, description = "platform admins only", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
async fn update(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<PatchSubscription>,
) -> ApiResult<ApiJson<Subscription>> {
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
    let updated = ctx
        .store
        .subscriptions
        .clone_with_type::<RawDocumentBuf>()
        .find_one_and_update(doc! { "_id": subscription.id }, doc! { "$set": set })
        .return_document(ReturnDocument::After)
        .await?;
    stored::decoded(updated)?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("subscription"))
}

#[utoipa::path(delete, path = "/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "platform admins only", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
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
