//! `/tenants`: the desired state of every workspace. Handlers validate, write
//! MongoDB and answer from it; they never call an upstream system. Desired
//! fields change only here, and every real change bumps `generation` (the
//! `ETag`), which is what the controller reconciles to. `PUT` (apply, the
//! declarative form of create-or-replace) lives in [`apply`].
//!
//! Reads (`GET /tenants/{slug}`, `GET /tenants`) answer from the
//! [`TenantCache`](crate::tenant_cache) when it can tell, else from MongoDB.
//! Writes read the tenant from MongoDB (their `If-Match` and compare-and-set
//! need the current generation), and pin what they wrote in the cache before
//! answering, so the caller's next read shows it.

pub(crate) mod apply;
pub(crate) mod watch;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dezky_core::model::{BillingInfo, DeletionPolicy, Subscription, SubscriptionStatus, Tenant};
use dezky_core::schema::Plan;
use dezky_core::store::is_duplicate_key;
use dezky_core::{validate, Id, Timestamp};
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::options::ReturnDocument;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Actor, SignedIn};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::json::{json_response, present, ApiJson, JsonBody};
use crate::membership;
use crate::pagination::{self, Order, Page, PageRequest};
use crate::state::ApiContext;
use crate::stored;
use crate::tenant_cache::{Lookup, Scope};
use dezky_core::store::encode::to_bson;

/// Routes of this resource.
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/tenants", post(create).get(list))
        .route(
            "/tenants/{slug}",
            get(read)
                .put(apply::apply)
                .patch(update)
                .delete(request_deletion),
        )
}

/// Body of `POST /tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"slug": "acme", "name": "Acme Inc", "plan": "team", "domains": ["acme.example.com"], "billingInfo": {"email": "billing@acme.example.com"}}))]
pub struct CreateTenant {
    /// `^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`, unique, immutable.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    pub slug: String,
    /// 1..100 printable characters.
    pub name: String,
    #[schema(value_type = Plan)]
    pub plan: String,
    /// Mail domains; each belongs to at most one tenant.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub billing_info: Option<BillingInfo>,
    /// `delete` (default) or `orphan`.
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Body of `PATCH /tenants/{slug}`: only the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Corporation", "domains": ["acme.example.com", "shop.acme.example.com"]}))]
pub struct PatchTenant {
    /// Accepted only if equal to the current slug (slugs are immutable).
    pub slug: Option<String>,
    pub name: Option<String>,
    #[schema(value_type = Option<Plan>)]
    pub plan: Option<String>,
    pub domains: Option<Vec<String>>,
    /// `null` removes the billing info.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BillingInfo>)]
    pub billing_info: Option<Option<BillingInfo>>,
    pub deletion_policy: Option<DeletionPolicy>,
    /// Stop all upstream writes for this tenant.
    pub paused: Option<bool>,
}

/// Fields of a stored tenant that its API shape leaves out: the dry-run
/// request and answer, which only `GET /tenants/{slug}/plan` serves, and
/// the controller's `passClaims` bookkeeping.
pub(crate) fn api_view() -> Document {
    doc! { "planRequest": 0, "status.plan": 0, "passClaims": 0 }
}

/// The `ETag` of a tenant at `generation`: the generation, quoted.
pub(crate) fn etag(generation: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{generation}\"")).ok()
}

/// A tenant with its `ETag` (the generation) and the given status code.
pub(crate) fn tenant_response(status: StatusCode, tenant: &Tenant) -> Response {
    let mut response = (status, ApiJson(tenant)).into_response();
    if let Some(etag) = etag(tenant.generation) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// Validates, normalises and de-duplicates a domain list.
fn normalize_domains(domains: &[String]) -> ApiResult<Vec<String>> {
    let mut normalized: Vec<String> = Vec::with_capacity(domains.len());
    for (i, domain) in domains.iter().enumerate() {
        let domain = validate::domain(&format!("domains[{i}]"), domain)?;
        if !normalized.contains(&domain) {
            normalized.push(domain);
        }
    }
    Ok(normalized)
}

fn validate_billing(billing: Option<&BillingInfo>) -> ApiResult<()> {
    if let Some(email) = billing.and_then(|b| b.email.as_deref()) {
        validate::email("billingInfo.email", email)?;
    }
    Ok(())
}

fn validate_plan(ctx: &ApiContext, field: &str, plan: &str) -> ApiResult<()> {
    if ctx.config.plans.contains(plan) {
        Ok(())
    } else {
        let names: Vec<&str> = ctx.config.plans.names().collect();
        Err(ApiError::invalid(
            field,
            format!("unknown plan `{plan}`; valid plans: {}", names.join(", ")),
        ))
    }
}

/// 409 if another tenant already owns one of `domains`.
async fn ensure_domains_free(
    ctx: &ApiContext,
    domains: &[String],
    own: Option<Id>,
) -> ApiResult<()> {
    if domains.is_empty() {
        return Ok(());
    }
    let mut filter = doc! { "domains": { "$in": domains } };
    if let Some(own) = own {
        filter.insert("_id", doc! { "$ne": own });
    }
    let owner = ctx
        .store
        .tenants
        .clone_with_type::<Document>()
        .find_one(filter)
        .projection(doc! { "domains": 1 })
        .await?;
    if let Some(owner) = owner {
        let theirs = owner
            .get_array("domains")
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (i, taken) = domains
            .iter()
            .enumerate()
            .find(|(_, d)| theirs.iter().any(|t| t.as_str() == Some(d.as_str())))
            .unwrap_or((0, &domains[0]));
        return Err(domain_taken(Some(format!("domains[{i}]")), taken));
    }
    Ok(())
}

fn domain_taken(field: Option<String>, domain: &str) -> ApiError {
    ApiError::Conflict {
        code: ErrorCode::DomainTaken,
        field: Some(field.unwrap_or_else(|| "domains".into())),
        message: format!("domain `{domain}` belongs to another tenant"),
    }
}

/// The tenant `slug` if the actor may see it; 404 otherwise (also for
/// tenants that exist but are not theirs, so existence does not leak).
pub async fn load_visible(ctx: &ApiContext, actor: &Actor, slug: &str) -> ApiResult<Tenant> {
    load(ctx, slug)
        .await?
        .filter(|tenant| actor.can_see(tenant))
        .ok_or_else(|| ApiError::not_found("tenant"))
}

/// The tenant `slug` as the API shows it, whoever may see it.
async fn load(ctx: &ApiContext, slug: &str) -> ApiResult<Option<Tenant>> {
    stored::find_one(&ctx.store.tenants, doc! { "slug": slug }, Some(api_view())).await
}

async fn load_administered(ctx: &ApiContext, actor: &Actor, slug: &str) -> ApiResult<Tenant> {
    let tenant = load_visible(ctx, actor, slug).await?;
    if actor.can_administer(&tenant) {
        Ok(tenant)
    } else {
        Err(not_admin())
    }
}

fn not_admin() -> ApiError {
    ApiError::Forbidden("only a tenant admin or a platform admin may change this tenant".into())
}

/// The generation named by `If-Match` (`"3"`, `W/"3"` or `3`); `Ok(None)`
/// without the header or with `*`. A value naming no generation never matches.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    let generation = raw
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map_err(|_| {
            ApiError::PreconditionFailed(format!("If-Match `{raw}` names no generation"))
        })?;
    Ok(Some(generation))
}

fn stale(expected: i64, current: i64) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "If-Match names generation {expected}, the tenant is at generation {current}"
    ))
}

#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = CreateTenant,
    responses(
        (status = 201, description = "created, `status.phase = pending`; the caller is a member", body = Tenant,
            headers(("ETag" = String, description = "the generation, quoted"), ("Location" = String))),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 409, description = "`slug_taken` or `domain_taken`", body = ErrorBody)))]
async fn create(
    State(ctx): State<ApiContext>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateTenant>,
) -> ApiResult<Response> {
    validate::slug(&body.slug)?;
    validate::name("name", &body.name)?;
    validate_plan(&ctx, "plan", &body.plan)?;
    let domains = normalize_domains(&body.domains)?;
    validate_billing(body.billing_info.as_ref())?;
    if ctx
        .store
        .tenants
        .count_documents(doc! { "slug": &body.slug })
        .await?
        > 0
    {
        return Err(slug_taken(&body.slug));
    }
    ensure_domains_free(&ctx, &domains, None).await?;

    let tenant = Tenant {
        domains,
        billing_info: body.billing_info,
        deletion_policy: body.deletion_policy.unwrap_or_default(),
        ..Tenant::new(&body.slug, &body.name, &body.plan, Timestamp::now())
    };
    let tenant = insert_new(&ctx, &actor, tenant).await?;
    Ok(created_response(&tenant))
}

/// Inserts a validated new tenant created by `actor`, makes them a member and
/// gives the tenant its subscription. 409 `slug_taken` / `domain_taken` when
/// a concurrent writer won the unique index.
async fn insert_new(ctx: &ApiContext, actor: &Actor, tenant: Tenant) -> ApiResult<Tenant> {
    let tenant = Tenant {
        created_by: Some(actor.0.id),
        ..tenant
    };
    let mut session = ctx.store.db.client().start_session().await?;
    let inserted = ctx
        .store
        .tenants
        .insert_one(&tenant)
        .session(&mut session)
        .await;
    if let Err(e) = inserted {
        return Err(match (is_duplicate_key(&e), e.to_string()) {
            (true, message) if message.contains("slug") => slug_taken(&tenant.slug),
            (true, _) => domain_taken(None, &tenant.domains.join(", ")),
            (false, _) => e.into(),
        });
    }
    ctx.tenant_cache.pin(tenant.id, &tenant.slug, &session);
    // The creator is a member through `createdBy` (see `membership`): no
    // user document grows with the fleet.
    insert_subscription(ctx, &tenant).await?;
    Ok(tenant)
}

/// 201 with the tenant, its `ETag` and its `Location`.
fn created_response(tenant: &Tenant) -> Response {
    let mut response = tenant_response(StatusCode::CREATED, tenant);
    if let Ok(location) = HeaderValue::from_str(&format!("/tenants/{}", tenant.slug)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::Conflict {
        code: ErrorCode::SlugTaken,
        field: Some("slug".into()),
        message: format!("a tenant with slug `{slug}` already exists"),
    }
}

/// Every tenant starts with a `trialing` subscription on its plan.
pub(crate) async fn insert_subscription(ctx: &ApiContext, tenant: &Tenant) -> ApiResult<()> {
    let now = Timestamp::now();
    let subscription =
        Subscription::new(tenant.id, &tenant.plan, SubscriptionStatus::Trialing, now);
    match ctx.store.subscriptions.insert_one(&subscription).await {
        Err(e) if !is_duplicate_key(&e) => Err(e.into()),
        _ => Ok(()),
    }
}

#[utoipa::path(get, path = "/tenants", tag = "tenants",
    params(PageRequest,
        ("watch" = Option<bool>, Query, description = "`true`: answer with the Server-Sent Events stream described above instead of a page"),
        ("slug" = Option<String>, Query, description = "with `watch=true`: only this tenant"),
        ("view" = Option<String>, Query, description = "with `watch=true`: `full` (default) sends each tenant as `GET /tenants/{slug}` shows it; \
`fleet` sends its `FleetRow` instead, and no `modified` event for a change the row does not show (such as a routine resync's timestamps)"),
        ("Last-Event-ID" = Option<String>, Header, description = "with `watch=true`: resume after this event id")),
    responses(
        (status = 200, description = "tenants visible to the caller (platform admin: all), oldest first; \
with `watch=true` a `text/event-stream`:\n\n\
- a fresh start is `event: reset` (with an empty `id:`), one `event: added` per visible tenant (no `id`), then `event: synced` whose `id` marks that state;\n\
- then one `added`, `modified` or `deleted` event per change, each with an `id`, its `data` the tenant's JSON (for `deleted` its last state);\n\
- when the caller's memberships change, tenants that became visible arrive as `added`, those no longer visible as `deleted`; only the last event of such a batch has an `id`;\n\
- reconnecting with `Last-Event-ID` sends every event after it, or a fresh start when that position is no longer held (the last 4096 changes are) or the caller's visibility changed meanwhile;\n\
- a comment line (`:heartbeat`) every 15 s; the stream ends when the token expires, at shutdown, and when the client falls more than 1024 changes behind (reconnect with `Last-Event-ID`).",
            content((Page<Tenant> = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "bad `limit`, `cursor`, `watch`, `slug` or `view`", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    SignedIn(claims): SignedIn,
    query: watch::WatchQuery,
    headers: HeaderMap,
    page: PageRequest,
) -> ApiResult<Response> {
    let actor = Actor::of(&ctx, &claims).await?;
    if query.watch {
        return watch::watch(ctx, claims, actor, query, &headers).await;
    }
    let scope = Scope::of(&actor.0);
    if let Some(body) = ctx.tenant_cache.page(scope, page) {
        return Ok(json_response(body));
    }
    let filter = membership::filter(&actor.0);
    let view = Some(api_view());
    pagination::list(&ctx.store.tenants, filter, view, Order::OldestFirst, page)
        .await
        .map(|page| ApiJson(page).into_response())
}

#[utoipa::path(get, path = "/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "the tenant with status", body = Tenant,
            headers(("ETag" = String, description = "the generation, quoted"))),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
async fn read(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    match ctx.tenant_cache.get(&slug) {
        Lookup::Hit(tenant) if actor.0.can_see(tenant.id(), tenant.created_by()) => {
            Ok(tenant.response(StatusCode::OK))
        }
        Lookup::Hit(_) | Lookup::Absent => Err(ApiError::not_found("tenant")),
        Lookup::Unknown => {
            let tenant = load_visible(&ctx, &actor, &slug).await?;
            Ok(tenant_response(StatusCode::OK, &tenant))
        }
    }
}

/// What a PATCH writes: `$set` and `$unset` of the fields it really
/// changes, and the new domains if they change.
struct Changes {
    set: Document,
    unset: Document,
    domains: Option<Vec<String>>,
}

/// The changes `patch` really makes. Only modeled fields are written, one
/// by one: keys of `billingInfo` this service does not model (a VAT id the
/// previous service stored) survive every change of the modeled ones.
fn changes(ctx: &ApiContext, tenant: &Tenant, patch: &PatchTenant) -> ApiResult<Changes> {
    let mut set = Document::new();
    let mut unset = Document::new();
    let mut new_domains = None;
    if let Some(slug) = &patch.slug {
        if *slug != tenant.slug {
            return Err(ApiError::invalid("slug", "is immutable"));
        }
    }
    if let Some(name) = &patch.name {
        validate::name("name", name)?;
        if *name != tenant.name {
            set.insert("name", name);
        }
    }
    if let Some(plan) = &patch.plan {
        validate_plan(ctx, "plan", plan)?;
        if *plan != tenant.plan {
            set.insert("plan", plan);
        }
    }
    if let Some(domains) = &patch.domains {
        let domains = normalize_domains(domains)?;
        if domains != tenant.domains {
            set.insert("domains", &domains);
            new_domains = Some(domains);
        }
    }
    if let Some(billing) = &patch.billing_info {
        validate_billing(billing.as_ref())?;
        let email = billing.as_ref().and_then(|b| b.email.as_deref());
        match (email, tenant.billing_email(), &tenant.billing_info) {
            (wanted, stored, _) if wanted == stored => {}
            // A stored sub-document: change its modeled key only.
            (Some(email), _, Some(_)) => {
                set.insert("billingInfo.email", email);
            }
            (Some(_), _, None) => {
                set.insert("billingInfo", to_bson(billing)?);
            }
            // Keys this service does not model stay; without any, none is left.
            (None, _, _) if tenant.extra.get("billingInfo").is_some() => {
                unset.insert("billingInfo.email", "");
            }
            (None, _, _) => {
                set.insert("billingInfo", mongodb::bson::Bson::Null);
            }
        }
    }
    if let Some(policy) = patch.deletion_policy {
        if policy != tenant.deletion_policy {
            set.insert("deletionPolicy", to_bson(&policy)?);
        }
    }
    if let Some(paused) = patch.paused {
        if paused != tenant.paused {
            set.insert("paused", paused);
        }
    }
    Ok(Changes {
        set,
        unset,
        domains: new_domains,
    })
}

/// Attempts of an unconditional PATCH that lost a race with another writer.
const PATCH_ATTEMPTS: usize = 5;

#[utoipa::path(patch, path = "/tenants/{slug}", tag = "tenants", request_body = PatchTenant,
    params(("slug" = String, Path), ("If-Match" = Option<String>, Header, description = "expected generation")),
    responses(
        (status = 200, description = "the tenant; generation+1 if a desired field changed", body = Tenant,
            headers(("ETag" = String, description = "the generation, quoted"))),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 403, description = "not a tenant admin or platform admin", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody),
        (status = 409, description = "`domain_taken`, `tenant_deleting` or `concurrent_update`", body = ErrorBody),
        (status = 412, description = "`If-Match` names another generation", body = ErrorBody)))]
async fn update(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<PatchTenant>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    for _ in 0..PATCH_ATTEMPTS {
        let tenant = load_administered(&ctx, &actor, &slug).await?;
        if let Some(tenant) = patch_once(&ctx, tenant, expected, &patch).await? {
            return Ok(tenant_response(StatusCode::OK, &tenant));
        }
    }
    Err(concurrent_update())
}

/// One attempt to apply `patch` to `tenant` as read: 409 if it is being
/// deleted, 412 if `expected` names another generation, then a write
/// conditional on the generation read (bumping it) if a field really
/// changes. `Ok(None)`: another writer changed the tenant in between; read
/// it again and retry.
async fn patch_once(
    ctx: &ApiContext,
    tenant: Tenant,
    expected: Option<i64>,
    patch: &PatchTenant,
) -> ApiResult<Option<Tenant>> {
    if tenant.is_deleting() {
        return Err(ApiError::Conflict {
            code: ErrorCode::TenantDeleting,
            field: None,
            message: "the tenant is being deleted and can no longer change".into(),
        });
    }
    if let Some(expected) = expected.filter(|g| *g != tenant.generation) {
        return Err(stale(expected, tenant.generation));
    }
    let Changes {
        mut set,
        unset,
        domains: new_domains,
    } = changes(ctx, &tenant, patch)?;
    if set.is_empty() && unset.is_empty() {
        return Ok(Some(tenant));
    }
    if let Some(domains) = &new_domains {
        ensure_domains_free(ctx, domains, Some(tenant.id)).await?;
    }
    set.insert("updatedAt", Timestamp::now());
    let mut session = ctx.store.db.client().start_session().await?;
    let updated = ctx
        .store
        .tenants
        .clone_with_type::<RawDocumentBuf>()
        .find_one_and_update(
            doc! { "_id": tenant.id, "generation": tenant.generation, "deletionRequestedAt": null },
            patch_update(set, unset),
        )
        .return_document(ReturnDocument::After)
        .projection(api_view())
        .session(&mut session)
        .await;
    match updated.map(stored::decoded::<Tenant>) {
        Ok(Ok(Some(updated))) => {
            ctx.tenant_cache.pin(updated.id, &updated.slug, &session);
            Ok(Some(updated))
        }
        Ok(Err(e)) => Err(e),
        // Someone else changed the tenant in between: re-evaluate.
        Ok(Ok(None)) => Ok(None),
        Err(e) if is_duplicate_key(&e) => Err(domain_taken(
            None,
            &new_domains.unwrap_or_default().join(", "),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The update of a PATCH: its `$set` and `$unset`, and the generation bump.
/// A tenant whose generation is ahead of the one its status observed is
/// not converged to it, so its phase turns `pending` with the bump (the
/// controller's next pass sets the phase it observes).
fn patch_update(mut set: Document, unset: Document) -> Document {
    set.insert("status.phase", "pending");
    let mut update = doc! { "$set": set, "$inc": { "generation": 1 } };
    if !unset.is_empty() {
        update.insert("$unset", unset);
    }
    update
}

fn concurrent_update() -> ApiError {
    ApiError::Conflict {
        code: ErrorCode::ConcurrentUpdate,
        field: None,
        message: "the tenant kept changing while this update was applied; retry".into(),
    }
}

#[utoipa::path(delete, path = "/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path), ("If-Match" = Option<String>, Header, description = "expected generation")),
    responses(
        (status = 202, description = "the tenant, phase `deleting`; the controller cleans up, then it disappears", body = Tenant,
            headers(("ETag" = String, description = "the generation, quoted"))),
        (status = 403, description = "not a tenant admin or platform admin", body = ErrorBody),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody),
        (status = 412, description = "`If-Match` names another generation", body = ErrorBody)))]
async fn request_deletion(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let tenant = load_administered(&ctx, &actor, &slug).await?;
    if let Some(expected) = expected.filter(|g| *g != tenant.generation) {
        return Err(stale(expected, tenant.generation));
    }
    if tenant.is_deleting() {
        return Ok(tenant_response(StatusCode::ACCEPTED, &tenant));
    }
    let now = Timestamp::now();
    let mut filter = doc! { "_id": tenant.id, "deletionRequestedAt": null };
    if expected.is_some() {
        filter.insert("generation", tenant.generation);
    }
    let mut session = ctx.store.db.client().start_session().await?;
    let updated = ctx
        .store
        .tenants
        .clone_with_type::<RawDocumentBuf>()
        .find_one_and_update(
            filter,
            doc! {
                "$set": { "deletionRequestedAt": now, "status.phase": "deleting", "updatedAt": now },
                "$inc": { "generation": 1 },
            },
        )
        .return_document(ReturnDocument::After)
        .projection(api_view())
        .session(&mut session)
        .await?;
    match stored::decoded::<Tenant>(updated)? {
        Some(tenant) => {
            ctx.tenant_cache.pin(tenant.id, &tenant.slug, &session);
            Ok(tenant_response(StatusCode::ACCEPTED, &tenant))
        }
        None => {
            let current = load_visible(&ctx, &actor, &slug).await?;
            if current.is_deleting() {
                Ok(tenant_response(StatusCode::ACCEPTED, &current))
            } else {
                Err(stale(tenant.generation, current.generation))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn if_match_accepts_strong_weak_and_bare_generations() {
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&headers("*")).unwrap(), None);
        assert_eq!(if_match(&headers("\"3\"")).unwrap(), Some(3));
        assert_eq!(if_match(&headers("W/\"4\"")).unwrap(), Some(4));
        assert_eq!(if_match(&headers("5")).unwrap(), Some(5));
        assert!(matches!(
            if_match(&headers("\"abc\"")),
            Err(ApiError::PreconditionFailed(_))
        ));
    }

    #[test]
    fn domains_are_normalised_and_deduplicated() {
        let got =
            normalize_domains(&["Acme.TEST".into(), "acme.test".into(), "b.test".into()]).unwrap();
        assert_eq!(got, ["acme.test", "b.test"]);
        assert!(matches!(
            normalize_domains(&["ok.test".into(), "nope".into()]),
            Err(ApiError::Validation { field: Some(f), .. }) if f == "domains[1]"
        ));
    }
}
