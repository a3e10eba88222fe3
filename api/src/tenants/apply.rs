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
use dezky_core::model::{Tenant, TenantSpec};
use dezky_core::{validate, Timestamp};

use super::{
    concurrent_update, created_response, ensure_domains_free, if_match, insert_new, load,
    normalize_domains, not_admin, patch_once, slug_taken, tenant_response, validate_billing,
    validate_plan, PatchTenant, PATCH_ATTEMPTS,
};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::json::JsonBody;
use crate::state::ApiContext;

/// The spec as a PATCH that names every desired field.
fn as_patch(spec: &TenantSpec) -> PatchTenant {
    PatchTenant {
        slug: None,
        name: Some(spec.name.clone()),
        plan: Some(spec.plan.clone()),
        domains: Some(spec.domains.clone()),
        billing_info: Some(spec.billing_info.clone()),
        deletion_policy: Some(spec.deletion_policy),
        paused: Some(spec.paused),
    }
}

#[utoipa::path(put, path = "/tenants/{slug}", tag = "tenants", request_body = TenantSpec,
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
    JsonBody(spec): JsonBody<TenantSpec>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    validate::slug(&slug)?;
    let domains = validated_domains(&ctx, &spec)?;
    let patch = as_patch(&spec);
    for _ in 0..PATCH_ATTEMPTS {
        let Some(tenant) = load(&ctx, &slug).await? else {
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
fn validated_domains(ctx: &ApiContext, spec: &TenantSpec) -> ApiResult<Vec<String>> {
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
    spec: &TenantSpec,
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
