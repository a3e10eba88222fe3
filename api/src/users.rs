//! `/users`: platform users. `GET /users/me` is the one place where token
//! claims flow into MongoDB (email, name, tenant memberships from the
//! `groups` claim, platform admin); everywhere else the stored record rules.
//! A user's `tenantIds` are shown with the tenants they created (see
//! [`membership`]).
//! The rest is CRUD for platform admins; anyone may read their own record.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dezky_core::model::{group_name, Role, Subscription, Tenant, User};
use dezky_core::store::is_duplicate_key;
use dezky_core::{validate, Id, Timestamp};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{display_name, Actor, Claims, SignedIn};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::json::{ApiJson, JsonBody};
use crate::membership::{self, ids_bson};
use crate::pagination::{self, Order, Page, PageRequest};
use crate::state::ApiContext;
use crate::stored;
use crate::tenants::api_view;
use dezky_core::store::encode::to_bson;

/// Routes of this resource.
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/users/me", get(me))
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(read).patch(update).delete(remove))
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"authentikSubjectId": "8f14e45fceea167a5a36dedd4bea2543", "email": "ada@acme.example.com", "name": "Ada Lovelace", "role": "admin", "tenantIds": ["6650c0ffee0123456789abcd"]}))]
pub struct CreateUser {
    /// The user's `sub` in Authentik; unique.
    pub authentik_subject_id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// `member` (default) or `admin`.
    #[serde(default)]
    #[schema(value_type = Option<Role>)]
    pub role: Role,
    #[serde(default)]
    pub platform_admin: bool,
    #[serde(default)]
    pub tenant_ids: Vec<Id>,
}

/// Body of `PATCH /users/{id}`: only the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"platformAdmin": false, "tenantIds": []}))]
pub struct PatchUser {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub platform_admin: Option<bool>,
    pub tenant_ids: Option<Vec<Id>>,
}

/// `GET /users/me`: the caller after syncing their claims, with their tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub tenants: Vec<Tenant>,
    pub subscriptions: Vec<Subscription>,
}

fn validate_profile(email: &str, name: &str) -> ApiResult<()> {
    if !email.is_empty() {
        validate::email("email", email)?;
    }
    if !name.is_empty() {
        validate::name("name", name)?;
    }
    Ok(())
}

/// 400 naming the first id in `ids` that is no tenant.
async fn ensure_tenants_exist(ctx: &ApiContext, ids: &[Id]) -> ApiResult<()> {
    let found: Vec<Id> = ctx
        .store
        .tenants
        .distinct("_id", doc! { "_id": { "$in": ids_bson(ids) } })
        .await?
        .into_iter()
        .filter_map(|b| b.as_object_id().map(Id))
        .collect();
    match ids.iter().position(|id| !found.contains(id)) {
        Some(i) => Err(ApiError::invalid(
            format!("tenantIds[{i}]"),
            "unknown tenant",
        )),
        None => Ok(()),
    }
}

fn dedup(ids: &[Id]) -> Vec<Id> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

/// The user with this path id, if it parses and exists.
async fn find(ctx: &ApiContext, id: &str) -> ApiResult<User> {
    let id: Id = id.parse().map_err(|_| ApiError::not_found("user"))?;
    stored::find_one(&ctx.store.users, doc! { "_id": id }, None)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// The tenants a token's claims make the user a member of: those whose
/// group (`group_name(prefix, slug)`) is in `groups`. (Tenants the user
/// created are theirs through `createdBy`; see [`membership`].)
async fn claimed_tenants(ctx: &ApiContext, claims: &Claims) -> ApiResult<Vec<Id>> {
    let prefix = ctx.config.group_prefix.as_str();
    let candidates: Vec<&str> = claims
        .groups
        .iter()
        .filter_map(|g| g.strip_prefix(prefix))
        .collect();
    // Only the fields needed, so a tenant that does not decode fails no one.
    let tenants: Vec<Document> = ctx
        .store
        .tenants
        .clone_with_type::<Document>()
        .find(doc! { "slug": { "$in": candidates } })
        .projection(doc! { "slug": 1 })
        .await?
        .try_collect()
        .await?;
    let mut ids: Vec<Id> = tenants
        .iter()
        .filter(|t| {
            claims
                .groups
                .contains(&group_name(prefix, t.get_str("slug").unwrap_or_default()))
        })
        .filter_map(|t| t.get_object_id("_id").ok().map(Id))
        .collect();
    ids.sort();
    Ok(ids)
}

#[utoipa::path(get, path = "/users/me", tag = "users",
    responses((status = 200, description = "the caller after syncing the token's claims, with their tenants and subscriptions", body = Me)))]
async fn me(State(ctx): State<ApiContext>, SignedIn(claims): SignedIn) -> ApiResult<ApiJson<Me>> {
    let users = &ctx.store.users;
    let mut attempts = 0;
    let user = loop {
        attempts += 1;
        let existing =
            stored::find_one(users, doc! { "authentikSubjectId": &claims.sub }, None).await?;
        let id = existing.as_ref().map_or_else(Id::new, |u| u.id);
        // Grants (memberships and admin kept from the previous service)
        // stay whatever the token says.
        let platform_admin = claims.groups.contains(&ctx.config.platform_admin_group)
            || existing.as_ref().is_some_and(|u| u.granted_platform_admin);
        let mut tenant_ids = claimed_tenants(&ctx, &claims).await?;
        let granted = existing.as_ref().map(|u| u.granted_tenant_ids.as_slice());
        tenant_ids.extend(granted.unwrap_or_default());
        tenant_ids.sort();
        tenant_ids.dedup();
        let now = Timestamp::now();
        let mut set = doc! {
            "platformAdmin": platform_admin,
            "tenantIds": ids_bson(&tenant_ids),
            "updatedAt": now,
        };
        match (&claims.email, existing.as_ref()) {
            (Some(email), _) => set.insert("email", email),
            (None, None) => set.insert("email", ""),
            (None, Some(_)) => None,
        };
        let name = display_name(&claims);
        if !name.is_empty() || existing.is_none() {
            set.insert("name", name);
        }
        let result = users
            .clone_with_type::<RawDocumentBuf>()
            .find_one_and_update(
                doc! { "authentikSubjectId": &claims.sub },
                doc! {
                    "$set": set,
                    "$setOnInsert": { "_id": id, "role": "member", "createdAt": now },
                },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match result {
            Ok(Some(raw)) => {
                let user: User = stored::decoded(Some(raw))?
                    .ok_or_else(|| ApiError::Internal("upsert returned no user".into()))?;
                ctx.actors.forget(user.id);
                break user;
            }
            // A concurrent first call of the same user inserted it: sync again.
            Err(e) if is_duplicate_key(&e) && attempts < 3 => continue,
            Ok(None) => return Err(ApiError::Internal("upsert returned no user".into())),
            Err(e) => return Err(e.into()),
        }
    };
    let user = membership::shown_one(&ctx, user).await?;
    let ids = ids_bson(&user.tenant_ids);
    let tenants: Vec<Tenant> = stored::find_all(
        &ctx.store.tenants,
        doc! { "_id": { "$in": &ids } },
        Some(api_view()),
    )
    .await?;
    let subscriptions: Vec<Subscription> = stored::find_all(
        &ctx.store.subscriptions,
        doc! { "tenantId": { "$in": ids } },
        None,
    )
    .await?;
    Ok(ApiJson(Me {
        user,
        tenants,
        subscriptions,
    }))
}

#[utoipa::path(get, path = "/users", tag = "users",
    params(PageRequest),
    responses(
        (status = 200, description = "every user, oldest first", body = Page<User>),
        (status = 400, description = "bad `limit` or `cursor`", body = ErrorBody),
        (status = 403, description = "platform admins only", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    actor: Actor,
    page: PageRequest,
) -> ApiResult<ApiJson<Page<User>>> {
    actor.require_platform_admin()?;
    let all = Document::new();
    let page = pagination::list(&ctx.store.users, all, None, Order::OldestFirst, page).await?;
    Ok(ApiJson(Page {
        items: membership::shown(&ctx, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses(
        (status = 201, description = "the user", body = User),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 403, description = "platform admins only", body = ErrorBody),
        (status = 409, description = "`subject_taken`", body = ErrorBody)))]
async fn create(
    State(ctx): State<ApiContext>,
    actor: Actor,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<Response> {
    actor.require_platform_admin()?;
    let subject = body.authentik_subject_id.trim();
    if subject.is_empty() || subject.len() > 255 {
        return Err(ApiError::invalid(
            "authentikSubjectId",
            "must be 1 to 255 characters",
        ));
    }
    validate_profile(&body.email, &body.name)?;
    let tenant_ids = dedup(&body.tenant_ids);
    ensure_tenants_exist(&ctx, &tenant_ids).await?;
    let now = Timestamp::now();
    let user = User {
        email: body.email,
        name: body.name,
        role: body.role,
        platform_admin: body.platform_admin,
        tenant_ids,
        ..User::new(subject, now)
    };
    match ctx.store.users.insert_one(&user).await {
        Ok(_) => Ok((StatusCode::CREATED, ApiJson(user)).into_response()),
        Err(e) if is_duplicate_key(&e) => Err(ApiError::Conflict {
            code: ErrorCode::SubjectTaken,
            field: Some("authentikSubjectId".into()),
            message: "a user with this subject already exists".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/users/{id}", tag = "users",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the user (platform admins, or the user themself)", body = User),
        (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)))]
async fn read(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<User>> {
    let user = find(&ctx, &id).await?;
    if !actor.0.platform_admin && user.id != actor.0.id {
        return Err(ApiError::not_found("user"));
    }
    Ok(ApiJson(membership::shown_one(&ctx, user).await?))
}

#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = PatchUser,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the user", body = User),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 403, description = "platform admins only", body = ErrorBody),
        (status = 404, description = "unknown user", body = ErrorBody)))]
async fn update(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<PatchUser>,
) -> ApiResult<ApiJson<User>> {
    actor.require_platform_admin()?;
    let user = find(&ctx, &id).await?;
    validate_profile(
        patch.email.as_deref().unwrap_or_default(),
        patch.name.as_deref().unwrap_or_default(),
    )?;
    let mut set = doc! { "updatedAt": Timestamp::now() };
    if let Some(email) = patch.email {
        set.insert("email", email);
    }
    if let Some(name) = patch.name {
        set.insert("name", name);
    }
    if let Some(role) = patch.role {
        set.insert("role", to_bson(&role)?);
    }
    // A grant kept from the previous service ends with what revokes it.
    if let Some(admin) = patch.platform_admin {
        set.insert("platformAdmin", admin);
        if !admin && user.granted_platform_admin {
            set.insert("grantedPlatformAdmin", false);
        }
    }
    if let Some(ids) = patch.tenant_ids {
        let ids = dedup(&ids);
        ensure_tenants_exist(&ctx, &ids).await?;
        set.insert("tenantIds", ids_bson(&ids));
        if !user.granted_tenant_ids.is_empty() {
            let kept: Vec<Id> = user
                .granted_tenant_ids
                .iter()
                .copied()
                .filter(|id| ids.contains(id))
                .collect();
            set.insert("grantedTenantIds", ids_bson(&kept));
        }
    }
    let updated = ctx
        .store
        .users
        .clone_with_type::<RawDocumentBuf>()
        .find_one_and_update(doc! { "_id": user.id }, doc! { "$set": set })
        .return_document(ReturnDocument::After)
        .await?;
    ctx.actors.forget(user.id);
    let updated = stored::decoded(updated)?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ApiJson(membership::shown_one(&ctx, updated).await?))
}

#[utoipa::path(delete, path = "/users/{id}", tag = "users",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "platform admins only", body = ErrorBody),
        (status = 404, description = "unknown user", body = ErrorBody)))]
async fn remove(
    State(ctx): State<ApiContext>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_platform_admin()?;
    let user = find(&ctx, &id).await?;
    let result = ctx.store.users.delete_one(doc! { "_id": user.id }).await?;
    ctx.actors.forget(user.id);
    if result.deleted_count == 0 {
        return Err(ApiError::not_found("user"));
    }
    Ok(StatusCode::NO_CONTENT)
}
