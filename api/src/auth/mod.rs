//! Who is calling. [`SignedIn`] is a verified bearer token (its claims);
//! [`Actor`] is the caller's user record from MongoDB, which is where every
//! authorization decision comes from (DESIGN §4), through the [`actors`]
//! cache. A handler's signature shows which one it needs.

pub mod actors;
mod verifier;

use std::sync::Arc;

pub use verifier::{Claims, DiscoveryError, Verifier, LEEWAY_SECS, REFETCH_INTERVAL};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use dezky_core::model::{Tenant, User};
use dezky_core::store::is_duplicate_key;
use dezky_core::Timestamp;
use mongodb::bson::doc;

use crate::error::ApiError;
use crate::state::ApiContext;
use crate::stored;

/// A caller with a valid bearer token.
pub struct SignedIn(pub Arc<Claims>);

impl FromRequestParts<ApiContext> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        ctx.verifier
            .verify(token)
            .await
            .map(SignedIn)
            .map_err(ApiError::Unauthorized)
    }
}

/// The caller's user record (at most [`actors::MAX_AGE`] old). A first-time
/// caller gets a bare record (no tenants, no platform admin) until
/// `GET /users/me` syncs their claims.
pub struct Actor(pub Arc<User>);

impl FromRequestParts<ApiContext> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        let SignedIn(claims) = SignedIn::from_request_parts(parts, ctx).await?;
        Actor::of(ctx, &claims).await
    }
}

impl Actor {
    /// The user record of the caller with `claims` (created bare on first use).
    pub async fn of(ctx: &ApiContext, claims: &Claims) -> Result<Self, ApiError> {
        if let Some(user) = ctx.actors.get(&claims.sub) {
            return Ok(Actor(user));
        }
        let users = &ctx.store.users;
        let ticket = ctx.actors.ticket();
        if let Some(user) =
            stored::find_one(users, doc! { "authentikSubjectId": &claims.sub }, None).await?
        {
            let user = Arc::new(user);
            ctx.actors.store(ticket, user.clone());
            return Ok(Actor(user));
        }
        let now = Timestamp::now();
        let user = User {
            email: claims.email.clone().unwrap_or_default(),
            name: display_name(claims),
            ..User::new(&claims.sub, now)
        };
        match users.insert_one(&user).await {
            Ok(_) => Ok(Actor(Arc::new(user))),
            // Another request of the same caller created it first.
            Err(e) if is_duplicate_key(&e) => {
                stored::find_one(users, doc! { "authentikSubjectId": &claims.sub }, None)
                    .await?
                    .map(|user| Actor(Arc::new(user)))
                    .ok_or_else(|| ApiError::Internal("user vanished after a duplicate key".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Member of the tenant (listed, or its creator), or platform admin.
    pub fn can_see(&self, tenant: &Tenant) -> bool {
        self.0.can_see(tenant.id, tenant.created_by)
    }

    /// May change or delete the tenant: a platform admin, its creator, or a
    /// member who is an admin by role.
    pub fn can_administer(&self, tenant: &Tenant) -> bool {
        self.0.can_administer(tenant.id, tenant.created_by)
    }

    /// 403 unless a platform admin.
    pub fn require_platform_admin(&self) -> Result<(), ApiError> {
        if self.0.platform_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("platform admins only".into()))
        }
    }
}

/// `name`, else `preferred_username`, else empty.
pub fn display_name(claims: &Claims) -> String {
    claims
        .name
        .clone()
        .or_else(|| claims.preferred_username.clone())
        .unwrap_or_default()
}
