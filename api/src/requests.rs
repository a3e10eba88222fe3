//! Requests the controller answers: a manual reconcile
//! (`POST /tenants/{slug}/reconcile`) and a dry-run plan
//! (`GET /tenants/{slug}/plan`).
//!
//! The API never calls upstreams: it records a fresh token on the tenant
//! (`reconcileRequest` / `planRequest`), which the controller's change
//! stream picks up ahead of other work, and the controller acknowledges it
//! in the tenant's status. With `?wait=` the API follows the tenant's
//! change stream until the answer is there or the wait runs out, so it
//! works when the API and the controller are separate processes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dezky_core::model::{ReconcileRequest, System, SystemPlan, Tenant};
use dezky_core::store::encode::to_bson;
use dezky_core::Timestamp;
use futures::StreamExt;
use mongodb::bson::doc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::state::ApiContext;
use crate::tenants::{load_visible, tenant_response};

/// The longest `?wait=` honoured; longer values are capped.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How long `GET /plan` waits by default for the controller's dry run.
pub const DEFAULT_PLAN_WAIT: Duration = Duration::from_secs(10);

/// Routes of this module.
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/tenants/{slug}/reconcile", post(request_reconcile))
        .route("/tenants/{slug}/plan", get(request_plan))
}

/// A recorded request the controller has not answered (yet).
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestToken {
    /// Acknowledged in `status.lastHandledReconcileToken` (reconcile).
    #[schema(example = "4b0e7a52-2f7c-4d2b-9a59-3c1f0f6f3e1a")]
    pub token: String,
}

/// The controller's dry run of a tenant: what each system would change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"slug": "acme", "generation": 3, "computedAt": "2026-05-01T12:00:00.000Z",
    "systems": {"authentik": {"actions": [{"action": "update", "object": "group tenant-acme",
        "fields": {"name": {"from": "acme-old", "to": "tenant-acme"}}}], "conflict": null},
        "stalwart": {"actions": [], "conflict": null}, "ocis": {"actions": [], "conflict": null}}}))]
pub struct PlanAnswer {
    #[schema(example = "acme")]
    pub slug: String,
    /// The generation the plan was computed for.
    pub generation: i64,
    pub computed_at: Timestamp,
    pub systems: BTreeMap<System, SystemPlan>,
}

/// `?wait=<humantime>`, capped at [`MAX_WAIT`]; `None` when absent.
pub struct Wait(Option<Duration>);

impl<S: Send + Sync> FromRequestParts<S> for Wait {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let Some(raw) = params.get("wait") else {
            return Ok(Wait(None));
        };
        let wait = humantime::parse_duration(raw).map_err(|e| {
            ApiError::invalid("wait", format!("`{raw}` is not a duration like `30s`: {e}"))
        })?;
        Ok(Wait(Some(wait.min(MAX_WAIT))))
    }
}

#[utoipa::path(post, path = "/tenants/{slug}/reconcile", tag = "tenants",
    params(("slug" = String, Path), ("wait" = Option<String>, Query, description = "e.g. `30s` (at most 60s): wait until the controller handled the request")),
    responses(
        (status = 202, description = "recorded (or the wait ran out); the controller acknowledges it in `status.lastHandledReconcileToken`", body = RequestToken),
        (status = 200, description = "with `?wait=`: the tenant after the controller handled the request", body = Tenant),
        (status = 400, description = "bad `wait`", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
pub(crate) async fn request_reconcile(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    Wait(wait): Wait,
) -> ApiResult<Response> {
    let tenant = load_visible(&ctx, &actor, &slug).await?;
    let token = uuid::Uuid::new_v4().to_string();
    let handled =
        |t: &Tenant| t.status.last_handled_reconcile_token.as_deref() == Some(token.as_str());
    let answer = record_and_wait(&ctx, &tenant, "reconcileRequest", &token, wait, handled).await?;
    Ok(match answer {
        Some(tenant) => tenant_response(StatusCode::OK, &tenant),
        None => (StatusCode::ACCEPTED, ApiJson(RequestToken { token })).into_response(),
    })
}

#[utoipa::path(get, path = "/tenants/{slug}/plan", tag = "tenants",
    params(("slug" = String, Path), ("wait" = Option<String>, Query, description = "how long to wait for the controller's dry run (default 10s, at most 60s)")),
    responses(
        (status = 200, description = "the dry run: what each system would change", body = PlanAnswer),
        (status = 202, description = "the dry run was requested but not answered in time", body = RequestToken),
        (status = 400, description = "bad `wait`", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
pub(crate) async fn request_plan(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    Wait(wait): Wait,
) -> ApiResult<Response> {
    let tenant = load_visible(&ctx, &actor, &slug).await?;
    let token = uuid::Uuid::new_v4().to_string();
    let answered = |t: &Tenant| t.status.plan.as_ref().is_some_and(|p| p.token == token);
    let wait = Some(wait.unwrap_or(DEFAULT_PLAN_WAIT));
    let answer = record_and_wait(&ctx, &tenant, "planRequest", &token, wait, answered).await?;
    let Some(plan) = answer.and_then(|t| t.status.plan) else {
        return Ok((StatusCode::ACCEPTED, ApiJson(RequestToken { token })).into_response());
    };
    let body = PlanAnswer {
        slug: tenant.slug,
        generation: plan.generation,
        computed_at: plan.computed_at,
        systems: plan.systems,
    };
    Ok(ApiJson(body).into_response())
}

/// Records `{token, requestedAt}` under `field` of `tenant` (and pins it in
/// the tenant cache), then (with a wait) follows the tenant until `answered`
/// holds. `Ok(None)`: not answered in time (or no wait asked).
async fn record_and_wait(
    ctx: &ApiContext,
    tenant: &Tenant,
    field: &str,
    token: &str,
    wait: Option<Duration>,
    answered: impl Fn(&Tenant) -> bool,
) -> ApiResult<Option<Tenant>> {
    let id = tenant.id;
    // Open the stream before writing, so the answer cannot slip past.
    let mut changes = match wait {
        Some(_) => Some(
            ctx.store
                .tenants
                .watch()
                .pipeline([doc! { "$match": { "documentKey._id": id } }])
                .full_document(mongodb::options::FullDocumentType::UpdateLookup)
                .await?,
        ),
        None => None,
    };
    let request = ReconcileRequest {
        token: token.to_string(),
        requested_at: Timestamp::now(),
    };
    let mut session = ctx.store.db.client().start_session().await?;
    let written = ctx
        .store
        .tenants
        .update_one(
            doc! { "_id": id },
            doc! { "$set": { field: to_bson(&request)? } },
        )
        .session(&mut session)
        .await?;
    if written.matched_count == 0 {
        return Err(ApiError::not_found("tenant"));
    }
    if written.modified_count > 0 {
        ctx.tenant_cache.pin(id, &tenant.slug, &session);
    }
    let (Some(wait), Some(stream)) = (wait, changes.as_mut()) else {
        return Ok(None);
    };
    let follow = async {
        while let Some(event) = stream.next().await {
            let event = event?;
            match event.full_document {
                Some(tenant) if answered(&tenant) => {
                    // The caller sees this state now; later reads must not
                    // show an older one from a tenant cache still behind.
                    ctx.tenant_cache
                        .pin_answered(id, &tenant.slug, event.cluster_time);
                    return Ok(Some(tenant));
                }
                // Deleted meanwhile: nothing more will come.
                None if event.operation_type
                    == mongodb::change_stream::event::OperationType::Delete =>
                {
                    return Ok(None)
                }
                _ => {}
            }
        }
        Ok::<_, ApiError>(None)
    };
    tokio::time::timeout(wait, follow).await.unwrap_or(Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_of(uri: &str) -> Result<Option<Duration>, ApiError> {
        let request = axum::http::Request::builder().uri(uri).body(()).unwrap();
        let (mut parts, ()) = request.into_parts();
        Wait::from_request_parts(&mut parts, &())
            .await
            .map(|Wait(w)| w)
    }

    #[tokio::test]
    async fn wait_is_a_capped_humantime_duration() {
        assert_eq!(wait_of("/x").await.unwrap(), None);
        assert_eq!(
            wait_of("/x?wait=30s").await.unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wait_of("/x?wait=1h").await.unwrap(), Some(MAX_WAIT));
        let err = wait_of("/x?wait=soon").await.unwrap_err();
        assert!(matches!(err, ApiError::Validation { field: Some(ref f), .. } if f == "wait"));
    }
}
