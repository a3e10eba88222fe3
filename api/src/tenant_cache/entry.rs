//! One cached tenant: its API JSON and its [fleet row](crate::fleet::row),
//! each serialized once per change, and its `ETag`. A `GET` answers with a reference-counted copy of the bytes; a page
//! is the entries' bytes joined into the list shape. A stored document that
//! does not decode is cached as *broken*: `GET` answers its 500
//! `undecodable_document` error (naming the field), lists and watches skip it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dezky_core::model::Tenant;
use dezky_core::store::decode::decode;
use dezky_core::Id;
use mongodb::bson::RawDocument;

use crate::error::ApiError;
use crate::fleet::{FleetRow, Health};
use crate::json::{json_response, to_api_json};
use crate::tenants::etag;

/// A tenant as the API shows it, ready to send.
#[derive(Debug)]
pub struct CachedTenant {
    id: Id,
    /// The lookup key of `GET /tenants/{slug}`, shared with the slug index.
    slug: Arc<str>,
    /// Orders versions of the same tenant: a cached entry never goes back.
    generation: i64,
    /// Its creator, a member by that (`None` when broken).
    created_by: Option<Id>,
    /// Exactly what `ApiJson(&tenant)` writes.
    json: Bytes,
    /// The fleet row's JSON (empty when broken).
    row: Bytes,
    /// What the fleet summary counts (`None` when broken).
    health: Option<Health>,
    etag: Option<HeaderValue>,
    /// The stored document does not decode; `json` is its error body.
    broken: bool,
}

/// Why a stored tenant cannot be cached.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("cannot serialize tenant {id}: {source}")]
    Serialize {
        id: Id,
        #[source]
        source: serde_json::Error,
    },
}

impl CachedTenant {
    /// The entry of a stored tenant document (in the API view), broken if
    /// it does not decode (reported once here); `None` without an ObjectId
    /// `_id`, which no tenant lacks.
    pub fn stored(raw: &RawDocument) -> Result<Option<Self>, EntryError> {
        let error = match decode::<Tenant>(raw) {
            Ok(tenant) => return CachedTenant::new(tenant).map(Some),
            Err(error) => error,
        };
        let Ok(id) = raw.get_object_id("_id") else {
            error.report();
            return Ok(None);
        };
        error.report();
        let slug = error.slug.clone().unwrap_or_default();
        let generation = raw.get_i64("generation").unwrap_or_default();
        let (_, body) = ApiError::Undecodable(error).body();
        let json =
            to_api_json(&body).map_err(|source| EntryError::Serialize { id: Id(id), source })?;
        Ok(Some(CachedTenant {
            id: Id(id),
            slug: Arc::from(slug),
            generation,
            created_by: None,
            json: Bytes::from(json),
            row: Bytes::new(),
            health: None,
            etag: None,
            broken: true,
        }))
    }

    /// The entry of `tenant`, in the API view (`tenants::api_view`: without
    /// the dry-run request and answer, which only `/plan` serves).
    pub fn new(mut tenant: Tenant) -> Result<Self, EntryError> {
        tenant.plan_request = None;
        tenant.status.plan = None;
        tenant.pass_claims = 0;
        let serialize = |source| EntryError::Serialize {
            id: tenant.id,
            source,
        };
        let json = to_api_json(&tenant).map_err(serialize)?;
        let row = to_api_json(&FleetRow::of(&tenant)).map_err(serialize)?;
        let health = Health::of(&tenant);
        Ok(CachedTenant {
            id: tenant.id,
            etag: etag(tenant.generation),
            generation: tenant.generation,
            created_by: tenant.created_by,
            slug: Arc::from(tenant.slug),
            // An exact copy: the serializer's buffer starts at 1 KiB.
            json: Bytes::copy_from_slice(&json),
            row: Bytes::from(row),
            health: Some(health),
            broken: false,
        })
    }

    pub fn id(&self) -> Id {
        self.id
    }

    pub fn slug(&self) -> &Arc<str> {
        &self.slug
    }

    pub fn generation(&self) -> i64 {
        self.generation
    }

    pub fn created_by(&self) -> Option<Id> {
        self.created_by
    }

    /// Whether the stored document does not decode (its JSON is the error).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The JSON body.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The fleet row's JSON.
    pub fn row(&self) -> &[u8] {
        &self.row
    }

    /// What the fleet summary counts (`None` when broken).
    pub fn health(&self) -> Option<&Health> {
        self.health.as_ref()
    }

    /// Whether `other` shows the same fleet row (a change a fleet view
    /// does not show, such as a routine resync's timestamps).
    pub fn same_row(&self, other: &CachedTenant) -> bool {
        self.row == other.row
    }

    /// Whether `other` shows the same API JSON (a write that changed only
    /// fields the API view leaves out).
    pub fn same_json(&self, other: &CachedTenant) -> bool {
        self.json == other.json
    }

    /// The answer `tenants::tenant_response` gives for this tenant (a
    /// broken one: its 500).
    pub fn response(&self, status: StatusCode) -> Response {
        let status = match self.broken {
            true => StatusCode::INTERNAL_SERVER_ERROR,
            false => status,
        };
        let mut response = (status, json_response(self.json.clone())).into_response();
        if let Some(etag) = &self.etag {
            response.headers_mut().insert(header::ETAG, etag.clone());
        }
        response
    }
}

/// `{"items":[...],"nextCursor":...}` from entries, as `ApiJson(Page)` writes it.
pub fn page_body(items: &[impl AsRef<CachedTenant>], next_cursor: Option<&str>) -> Vec<u8> {
    let size: usize = items.iter().map(|t| t.as_ref().json.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 64);
    body.extend_from_slice(b"{\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&item.as_ref().json);
    }
    body.extend_from_slice(b"],\"nextCursor\":");
    match next_cursor {
        // A cursor is unpadded URL-safe base64: nothing to escape.
        Some(cursor) => {
            body.push(b'"');
            body.extend_from_slice(cursor.as_bytes());
            body.push(b'"');
        }
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    body
}

#[cfg(test)]
pub(crate) mod tests {
    use dezky_core::model::{ReconcileRequest, System, SystemState, SystemStatus, TenantPlan};
    use dezky_core::Timestamp;

    use super::*;
    use crate::pagination::{encode_cursor, Page};

    /// A tenant with every optional part filled in, including the parts the
    /// API view leaves out.
    pub(crate) fn full_tenant(slug: &str) -> Tenant {
        let now = Timestamp::now();
        let mut tenant = Tenant::new(slug, &format!("Tenant \"{slug}\" \u{e9}"), "team", now);
        tenant.domains = vec![format!("{slug}.test")];
        tenant.reconcile_request = Some(ReconcileRequest {
            token: "t".into(),
            requested_at: now,
        });
        tenant.plan_request = Some(ReconcileRequest {
            token: "p".into(),
            requested_at: now,
        });
        tenant.status.plan = Some(TenantPlan {
            token: "p".into(),
            generation: 1,
            computed_at: now,
            systems: Default::default(),
        });
        tenant.status.systems.insert(
            System::Authentik,
            SystemStatus {
                state: SystemState::Ok,
                reason: "Created".into(),
                last_transition_at: Some(now),
                ..SystemStatus::default()
            },
        );
        tenant
    }

    fn api_view(mut tenant: Tenant) -> Tenant {
        tenant.plan_request = None;
        tenant.status.plan = None;
        tenant
    }

    #[test]
    fn an_entry_is_the_api_json_of_the_api_view() {
        let tenant = full_tenant("acme");
        let entry = CachedTenant::new(tenant.clone()).unwrap();
        assert_eq!(&entry.json[..], to_api_json(&api_view(tenant)).unwrap());
        let text = std::str::from_utf8(&entry.json).unwrap();
        assert!(text.starts_with("{\"id\":"), "{text}");
        assert!(!text.contains("planRequest") && !text.contains("\"plan\":{"));
        assert_eq!(entry.etag.as_ref().unwrap(), "\"1\"");
    }

    #[test]
    fn a_page_is_byte_for_byte_what_the_mongodb_path_writes() {
        let tenants: Vec<Tenant> = ["a1", "b2", "c3"].map(full_tenant).to_vec();
        let entries: Vec<Arc<CachedTenant>> = tenants
            .iter()
            .map(|t| Arc::new(CachedTenant::new(t.clone()).unwrap()))
            .collect();
        let cursor = encode_cursor(tenants[2].id);
        for next in [None, Some(cursor)] {
            let expected = to_api_json(&Page {
                items: tenants.iter().cloned().map(api_view).collect(),
                next_cursor: next.clone(),
            })
            .unwrap();
            assert_eq!(page_body(&entries, next.as_deref()), expected);
        }
        let empty = to_api_json(&Page::<Tenant> {
            items: Vec::new(),
            next_cursor: None,
        })
        .unwrap();
        assert_eq!(page_body(&Vec::<Arc<CachedTenant>>::new(), None), empty);
    }
}
