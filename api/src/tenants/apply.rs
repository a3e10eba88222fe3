//! `PUT /tenants/{slug}`: apply. The body is the tenant's whole desired
//! spec; the tenant is created (201) or its desired fields are replaced
//! (200). Applying what is already recorded changes nothing and does not
//! bump `generation`, so a repository of manifests can be applied again and
//! again. Validation, conflicts and authorization are those of `POST`
//! (create) and `PATCH` (replace); fields the body leaves out take their
//! defaults (no domains, no billing info, `delete`, not paused), as a
//! replacement must.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use dezky_core::model::{BillingInfo, DeletionPolicy, Tenant};
use dezky_core::schema::Plan;
use dezky_core::{validate, Timestamp};
use mongodb::bson::doc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    api_view, concurrent_update, created_response, ensure_domains_free, if_match, insert_new,
    normalize_domains, not_admin, patch_once, slug_taken, tenant_response, validate_billing,
    validate_plan, PatchTenant, PATCH_ATTEMPTS,
};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::json::JsonBody;
use crate::state::ApiContext;

/// Body of `PUT /tenants/{slug}`: the whole desired spec (the slug is the path's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Inc", "plan": "team", "domains": ["acme.example.com"],
    "billingInfo": {"email": "billing@acme.example.com"}, "deletionPolicy": "delete", "paused": false}))]
pub struct ApplyTenant {
    /// 1..100 printable characters.
    pub name: String,
    #[schema(value_type = Plan)]
    pub plan: String,
    /// Mail domains; each belongs to at most one tenant. Absent = none.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Absent or `null` = none.
    #[serde(default)]
    pub billing_info: Option<BillingInfo>,
    /// `delete` (default) or `orphan`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Stop all upstream writes for this tenant (default `false`).
    #[serde(default)]
    pub paused: bool,
}

impl ApplyTenant {
    /// The spec as a PATCH that names every desired field.
    fn as_patch(&self) -> PatchTenant {
        PatchTenant {
            slug: None,
            name: Some(self.name.clone()),
            plan: Some(self.plan.clone()),
            domains: Some(self.domains.clone()),
            billing_info: Some(self.billing_info.clone()),
            deletion_policy: Some(self.deletion_policy),
            paused: Some(self.paused),
        }
    }
}

#[utoipa::path(put, path = "/tenants/{slug}", tag = "tenants", request_body = ApplyTenant,
    params(("slug" = String, Path), ("If-Match" = Option<String>, Header,
        description = "expected generation; any `If-Match` (also `*`) requires the tenant to exist")),
    responses(
        (status = 200, description = "replaced; generation+1 only if a desired field changed", body = Tenant,
            headers(("ETag" = String, description = "the generation, quoted"))),
        (status = 201, description = "created, `status.phase = pending`; the caller is a member", body = Tenant,
            headers(("ETag" = String, description = "the generation, quoted"), ("Location" = String))),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 403, description = "the tenant exists and the caller is a member but not its admin", body = ErrorBody),
        (status = 409, description = "`slug_taken` (another user's tenant), `domain_taken`, `tenant_deleting` or `concurrent_update`", body = ErrorBody),
        (status = 412, description = "`If-Match` names another generation, or the tenant does not exist", body = ErrorBody)))]
pub(crate) async fn apply(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<ApplyTenant>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    validate::slug(&slug)?;
    let domains = validated_domains(&ctx, &spec)?;
    let patch = spec.as_patch();
    for _ in 0..PATCH_ATTEMPTS {
        let existing = ctx
            .store
            .tenants
            .find_one(doc! { "slug": &slug })
            .projection(api_view())
            .await?;
        let Some(tenant) = existing else {
            if headers.contains_key(header::IF_MATCH) {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-Match requires an existing tenant; `{slug}` does not exist"
                )));
            }
            match create(&ctx, &actor, &slug, &spec, &domains).await {
                Ok(tenant) => return Ok(created_response(&tenant)),
                // Created concurrently: replace that one instead.
                Err(ApiError::Conflict {
                    code: ErrorCode::SlugTaken,
                    ..
                }) => continue,
                Err(e) => return Err(e),
            }
        };
        // Like POST, a slug someone else holds is taken (not hidden as 404:
        // the caller asked to create it).
        if !actor.can_see(&tenant) {
            return Err(slug_taken(&slug));
        }
        if !actor.can_administer(&tenant) {
            return Err(not_admin());
        }
        if let Some(tenant) = patch_once(&ctx, tenant, expected, &patch).await? {
            return Ok(tenant_response(StatusCode::OK, &tenant));
        }
    }
    Err(concurrent_update())
}

/// Checks every field of `spec` (as POST does); returns the normalised domains.
fn validated_domains(ctx: &ApiContext, spec: &ApplyTenant) -> ApiResult<Vec<String>> {
    validate::name("name", &spec.name)?;
    validate_plan(ctx, "plan", &spec.plan)?;
    let domains = normalize_domains(&spec.domains)?;
    validate_billing(spec.billing_info.as_ref())?;
    Ok(domains)
}

/// Inserts the tenant `slug` with `spec` (its domains already normalised).
async fn create(
    ctx: &ApiContext,
    actor: &Actor,
    slug: &str,
    spec: &ApplyTenant,
    domains: &[String],
) -> ApiResult<Tenant> {
    ensure_domains_free(ctx, domains, None).await?;
    let tenant = Tenant {
        domains: domains.to_vec(),
        billing_info: spec.billing_info.clone(),
        deletion_policy: spec.deletion_policy,
        paused: spec.paused,
        ..Tenant::new(slug, &spec.name, &spec.plan, Timestamp::now())
    };
    insert_new(ctx, actor, tenant).await
}
