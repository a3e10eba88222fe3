//! Who belongs to which tenant, stored where it scales. A user is a member
//! of a tenant when it is in their `tenantIds` (the `groups` claim synced by
//! `GET /users/me`, grants, records of the previous service) or when they
//! created it: the creator's membership is the tenant's own `createdBy`
//! (indexed), so creating, applying and deleting tenants never rewrites a
//! user document that grows with the fleet (which would slow every create
//! down and end at MongoDB's 16 MB document limit).
//!
//! The API still shows a user's `tenantIds` as every tenant they belong to:
//! [`shown`] adds the created ones to a user record on its way out, and
//! [`filter`] / [`tenant_ids`] give the same set to queries.

use std::collections::HashMap;

use dezky_core::model::User;
use dezky_core::Id;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use crate::error::{ApiError, ApiResult};
use crate::state::ApiContext;

/// The tenants (as a `tenants` filter) `user` belongs to; every tenant for
/// a platform admin.
pub fn filter(user: &User) -> Document {
    match user.platform_admin {
        true => Document::new(),
        false => doc! { "$or": [
            { "_id": { "$in": ids_bson(&user.tenant_ids) } },
            { "createdBy": user.id },
        ] },
    }
}

/// The ids of every tenant `user` belongs to (listed or created), sorted.
pub async fn tenant_ids(ctx: &ApiContext, user: &User) -> ApiResult<Vec<Id>> {
    let mut created = created_by(ctx, &[user.id]).await?;
    let mut ids = created.remove(&user.id).unwrap_or_default();
    ids.extend(&user.tenant_ids);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// `users` as the API shows them: a member's `tenantIds` with the tenants
/// they created (a platform admin's without: they see every tenant anyway).
pub async fn shown(ctx: &ApiContext, mut users: Vec<User>) -> ApiResult<Vec<User>> {
    let members: Vec<Id> = users
        .iter()
        .filter(|user| !user.platform_admin)
        .map(|user| user.id)
        .collect();
    if members.is_empty() {
        return Ok(users);
    }
    let mut created = created_by(ctx, &members).await?;
    for user in users.iter_mut().filter(|user| !user.platform_admin) {
        if let Some(ids) = created.remove(&user.id) {
            user.tenant_ids.extend(ids);
            user.tenant_ids.sort();
            user.tenant_ids.dedup();
        }
    }
    Ok(users)
}

/// One user as [`shown`].
pub async fn shown_one(ctx: &ApiContext, user: User) -> ApiResult<User> {
    shown(ctx, vec![user])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("a shown user went missing".into()))
}

/// The tenants each of `users` created.
async fn created_by(ctx: &ApiContext, users: &[Id]) -> ApiResult<HashMap<Id, Vec<Id>>> {
    let mut tenants = ctx
        .store
        .tenants
        .clone_with_type::<Document>()
        .find(doc! { "createdBy": { "$in": ids_bson(users) } })
        .projection(doc! { "_id": 1, "createdBy": 1 })
        .await?;
    let mut created: HashMap<Id, Vec<Id>> = HashMap::new();
    while let Some(tenant) = tenants.try_next().await? {
        if let (Ok(id), Ok(by)) = (
            tenant.get_object_id("_id"),
            tenant.get_object_id("createdBy"),
        ) {
            created.entry(Id(by)).or_default().push(Id(id));
        }
    }
    Ok(created)
}

/// `ids` as a BSON array for `$in`.
pub(crate) fn ids_bson(ids: &[Id]) -> Vec<mongodb::bson::Bson> {
    ids.iter().map(|id| id.0.into()).collect()
}
