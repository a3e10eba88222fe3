//! The conversions from the previous service's (NestJS + Mongoose) shapes,
//! schema 0, to this service's, schema 1. Each is computed from one
//! document as read and applied by one update guarded on the legacy shape,
//! so applying it twice, or from two processes, changes the document once.
//! Nothing is removed: the legacy string `status` is kept as
//! `legacyStatus`, every other legacy field stays where it is.

use mongodb::bson::{doc, Bson, Document};

use crate::model::{Phase, System, SystemState};
use crate::Timestamp;

/// What one document needs to reach schema 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// Matches the document only while it still has the legacy shape.
    pub filter: Document,
    /// The `$set` that converts it (top-level fields only).
    pub set: Document,
    /// One line per kind of change, for the report.
    pub changes: Vec<String>,
}

impl Conversion {
    /// `document` with the conversion applied, as it will be stored.
    pub fn applied_to(&self, document: &Document) -> Document {
        let mut converted = document.clone();
        for (key, value) in &self.set {
            converted.insert(key.clone(), value.clone());
        }
        converted
    }
}

/// Field names under which the previous service may have stored the id of
/// a tenant's upstream object, per system (first match wins). A string, or
/// for Stalwart also an array of strings (joined with commas).
pub const HANDLE_FIELDS: [(System, &[&str]); 3] = [
    (
        System::Authentik,
        &[
            "authentikGroupId",
            "authentikGroupPk",
            "authentikGroupUuid",
            "authentikGroup",
        ],
    ),
    (
        System::Stalwart,
        &[
            "stalwartDomainId",
            "stalwartDomainIds",
            "stalwartPrincipalId",
        ],
    ),
    (
        System::Ocis,
        &["ocisSpaceId", "ocisDriveId", "ocisSpace", "ocisDrive"],
    ),
];

/// The token of the reconcile request a migration records.
pub const MIGRATION_TOKEN: &str = "schema-migration";

/// Whether a tenant document has the previous service's shape.
pub fn is_legacy_tenant(document: &Document) -> bool {
    !document.contains_key("generation") || matches!(document.get("status"), Some(Bson::String(_)))
}

/// The conversion of a legacy tenant; `None` if it has this service's shape.
pub fn tenant(document: &Document, now: Timestamp) -> Option<Conversion> {
    if !is_legacy_tenant(document) {
        return None;
    }
    let id = document.get("_id")?.clone();
    let mut set = Document::new();
    let mut changes = Vec::new();
    let legacy_status = document.get_str("status").ok();
    if let Some(status) = legacy_status {
        set.insert("legacyStatus", status);
        changes.push(format!(
            "string `status` kept as `legacyStatus`; `status` built from `provisioningStatus` (legacy `{status}`)"
        ));
    } else if !document.contains_key("status") {
        changes.push("`status` built from `provisioningStatus`".to_string());
    }
    if !document.contains_key("generation") {
        set.insert("generation", 1_i64);
        changes.push("`generation` set to 1".to_string());
    }
    let status_is_legacy = legacy_status.is_some() || !document.contains_key("status");
    if status_is_legacy {
        let (status, handles) = status(document, legacy_status, now);
        set.insert("status", status);
        changes.extend(
            handles
                .into_iter()
                .map(|(system, field)| format!("{system} `externalId` from `{field}`")),
        );
    }
    if !document.contains_key("finalizers") {
        let all: Vec<&str> = System::ALL.iter().map(System::as_str).collect();
        set.insert("finalizers", &all);
        changes.push(format!("`finalizers` set to [{}]", all.join(", ")));
    }
    let defaults: [(&str, Bson); 3] = [
        ("deletionPolicy", Bson::String("delete".into())),
        ("paused", Bson::Boolean(false)),
        ("domains", Bson::Array(Vec::new())),
    ];
    for (field, value) in defaults {
        if !document.contains_key(field) {
            changes.push(format!("`{field}` set to {value}"));
            set.insert(field, value);
        }
    }
    timestamps(document, now, &mut set, &mut changes);
    // The controller's first pass comes at once, not at the next resync:
    // it confirms what the previous service recorded and adopts its objects.
    if !document.contains_key("reconcileRequest") {
        set.insert(
            "reconcileRequest",
            doc! { "token": MIGRATION_TOKEN, "requestedAt": now.to_bson() },
        );
        changes.push("a reconcile requested (the first pass adopts and confirms)".to_string());
    }
    let filter = doc! {
        "_id": id,
        "$or": [ { "generation": { "$exists": false } }, { "status": { "$type": "string" } } ],
    };
    Some(Conversion {
        filter,
        set,
        changes,
    })
}

/// `createdAt` (from the ObjectId's time) and `updatedAt`, where missing.
fn timestamps(document: &Document, now: Timestamp, set: &mut Document, changes: &mut Vec<String>) {
    let created = document
        .get_object_id("_id")
        .map(|oid| Timestamp::from_millis(oid.timestamp().timestamp_millis()))
        .unwrap_or(now);
    for (field, value) in [("createdAt", created), ("updatedAt", now)] {
        if !document.contains_key(field) {
            set.insert(field, value.to_bson());
            changes.push(format!("`{field}` set"));
        }
    }
}

/// The schema-1 `status` of a legacy tenant, and which legacy fields gave
/// the external ids. A system the previous service reported `ok` keeps
/// `ok` (reason `Migrated`) until the controller's first pass confirms it;
/// the phase is `active` only for a legacy `active` tenant whose systems
/// all settled (its `observedGeneration` is then 1, the generation given).
fn status(
    document: &Document,
    legacy_status: Option<&str>,
    now: Timestamp,
) -> (Document, Vec<(System, &'static str)>) {
    let states = document.get_document("provisioningStatus").ok();
    let errors = document.get_document("provisioningErrors").ok();
    let mut systems = Document::new();
    let mut handles = Vec::new();
    let mut settled = true;
    let mut failed = false;
    for (system, fields) in HANDLE_FIELDS {
        let name = system.as_str();
        let state = match states.and_then(|s| s.get_str(name).ok()) {
            Some("ok") => SystemState::Ok,
            Some("skipped") => SystemState::Skipped,
            Some("error") => SystemState::Error,
            _ => SystemState::Pending,
        };
        settled &= state.is_settled();
        failed |= state == SystemState::Error;
        let message = match state {
            SystemState::Error => errors
                .and_then(|e| e.get_str(name).ok())
                .unwrap_or("the previous service recorded an error")
                .to_string(),
            _ => format!(
                "`{}` as recorded by the previous service; confirmed by the first reconcile",
                state.as_str()
            ),
        };
        let mut entry = doc! {
            "state": state.as_str(),
            "reason": "Migrated",
            "message": message,
            "observedGeneration": 0_i64,
            "lastTransitionAt": now.to_bson(),
            "driftCorrections": 0_i64,
        };
        if let Some((field, id)) = fields
            .iter()
            .find_map(|f| handle(document, f).map(|id| (*f, id)))
        {
            entry.insert("externalId", id);
            handles.push((system, field));
        }
        systems.insert(name, entry);
    }
    let phase = match (legacy_status, settled, failed) {
        (Some("active"), true, _) => Phase::Active,
        (Some("active"), _, true) => Phase::Degraded,
        _ => Phase::Pending,
    };
    let observed = i64::from(phase == Phase::Active);
    let phase = match phase {
        Phase::Active => "active",
        Phase::Degraded => "degraded",
        _ => "pending",
    };
    let status = doc! {
        "phase": phase,
        "observedGeneration": observed,
        "systems": systems,
    };
    (status, handles)
}

/// A legacy handle: a non-empty string, or an array of them (comma-joined).
fn handle(document: &Document, field: &str) -> Option<String> {
    let id = match document.get(field)? {
        Bson::String(s) => s.trim().to_string(),
        Bson::ObjectId(oid) => oid.to_hex(),
        Bson::Array(items) => items
            .iter()
            .filter_map(|b| b.as_str())
            .collect::<Vec<_>>()
            .join(","),
        _ => return None,
    };
    (!id.is_empty()).then_some(id)
}

/// The conversion of a user the previous service wrote (it has Mongoose's
/// `__v`): its stored memberships and platform-admin flag become grants
/// that `GET /users/me` keeps, so it authorizes exactly as before.
pub fn user(document: &Document, now: Timestamp) -> Option<Conversion> {
    if !document.contains_key("__v") || document.contains_key("grantedTenantIds") {
        return None;
    }
    let id = document.get("_id")?.clone();
    let tenant_ids = match document.get("tenantIds") {
        Some(Bson::Array(ids)) => ids.clone(),
        _ => Vec::new(),
    };
    let admin = document.get_bool("platformAdmin").unwrap_or(false);
    let mut set = doc! { "grantedTenantIds": tenant_ids.clone() };
    let mut changes = vec![format!(
        "stored `tenantIds` kept as `grantedTenantIds` ({} memberships)",
        if tenant_ids.is_empty() { "no" } else { "with" }
    )];
    if !document.contains_key("tenantIds") {
        set.insert("tenantIds", Bson::Array(Vec::new()));
        changes.push("`tenantIds` set to []".to_string());
    }
    if admin {
        set.insert("grantedPlatformAdmin", true);
        changes.push("`platformAdmin` kept as `grantedPlatformAdmin`".to_string());
    }
    timestamps(document, now, &mut set, &mut changes);
    Some(Conversion {
        filter: doc! { "_id": id, "grantedTenantIds": { "$exists": false } },
        set,
        changes,
    })
}

/// The conversion of a subscription the previous service wrote: only
/// missing timestamps (its shape is this service's).
pub fn subscription(document: &Document, now: Timestamp) -> Option<Conversion> {
    let mut set = Document::new();
    let mut changes = Vec::new();
    timestamps(document, now, &mut set, &mut changes);
    if set.is_empty() {
        return None;
    }
    let id = document.get("_id")?.clone();
    let missing: Vec<Document> = set
        .keys()
        .map(|k| doc! { k.as_str(): { "$exists": false } })
        .collect();
    Some(Conversion {
        filter: doc! { "_id": id, "$or": missing },
        set,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{self, oid::ObjectId};

    use super::*;
    use crate::model::{Tenant, User};
    use crate::store::decode::decode;

    fn legacy_tenant(status: &str, states: Document) -> Document {
        doc! {
            "_id": ObjectId::new(), "slug": "acme", "name": "Acme", "status": status,
            "plan": "team", "domains": ["acme.test"],
            "billingInfo": { "email": "b@acme.test", "vatId": "DE123" },
            "authentikGroupId": "0c9a7c3e-5b1d-4c52-8d8e-1f2a3b4c5d6e",
            "provisioningStatus": states,
            "provisioningErrors": { "authentik": "timeout talking to authentik" },
            "createdAt": bson::DateTime::now(), "updatedAt": bson::DateTime::now(), "__v": 0,
        }
    }

    fn convert(document: &Document) -> (Conversion, Tenant) {
        let conversion = tenant(document, Timestamp::from_millis(5)).expect("legacy");
        let stored = conversion.applied_to(document);
        let raw = bson::RawDocumentBuf::from_document(&stored).unwrap();
        (conversion, decode(&raw).expect("decodes after conversion"))
    }

    #[test]
    fn an_active_legacy_tenant_converts_to_an_active_tenant_keeping_every_field() {
        let document = legacy_tenant(
            "active",
            doc! { "authentik": "ok", "stalwart": "skipped", "ocis": "skipped" },
        );
        let (conversion, tenant) = convert(&document);
        assert_eq!(tenant.generation, 1);
        assert_eq!(tenant.status.phase, Phase::Active);
        assert_eq!(tenant.status.observed_generation, 1);
        assert_eq!(tenant.finalizers, System::ALL);
        let authentik = tenant.system_status(System::Authentik).unwrap();
        assert_eq!(authentik.state, SystemState::Ok);
        assert_eq!(
            authentik.external_id.as_deref(),
            Some("0c9a7c3e-5b1d-4c52-8d8e-1f2a3b4c5d6e")
        );
        assert_eq!(tenant.extra.get("legacyStatus"), Some(&"active".into()));
        assert_eq!(
            tenant.extra.get("billingInfo"),
            Some(&serde_json::json!({"vatId": "DE123"}))
        );
        assert!(tenant.extra.get("provisioningStatus").is_some());
        assert!(conversion
            .changes
            .iter()
            .any(|c| c.contains("authentikGroupId")));
        for (key, _) in &document {
            assert!(
                conversion.applied_to(&document).contains_key(key),
                "{key} dropped"
            );
        }
    }

    #[test]
    fn a_pending_tenant_whose_step_failed_converts_to_pending_with_the_error() {
        let document = legacy_tenant("pending", doc! { "authentik": "error" });
        let (_, tenant) = convert(&document);
        assert_eq!(tenant.status.phase, Phase::Pending);
        assert_eq!(tenant.status.observed_generation, 0);
        let authentik = tenant.system_status(System::Authentik).unwrap();
        assert_eq!(authentik.state, SystemState::Error);
        assert_eq!(authentik.message, "timeout talking to authentik");
        assert_eq!(
            tenant.system_status(System::Ocis).unwrap().state,
            SystemState::Pending
        );
    }

    #[test]
    fn a_converted_tenant_needs_no_second_conversion() {
        let document = legacy_tenant("active", doc! {});
        let (conversion, _) = convert(&document);
        assert_eq!(
            tenant(&conversion.applied_to(&document), Timestamp::now()),
            None
        );
    }

    #[test]
    fn a_legacy_user_keeps_its_memberships_and_admin_flag_as_grants() {
        let tenant_id = ObjectId::new();
        let document = doc! {
            "_id": ObjectId::new(), "authentikSubjectId": "sub-1", "email": "a@acme.test",
            "name": "Ada", "role": "admin", "platformAdmin": true, "tenantIds": [tenant_id],
            "createdAt": bson::DateTime::now(), "updatedAt": bson::DateTime::now(), "__v": 0,
        };
        let conversion = user(&document, Timestamp::now()).expect("legacy user");
        let stored = conversion.applied_to(&document);
        assert_eq!(user(&stored, Timestamp::now()), None);
        let user: User = decode(&bson::RawDocumentBuf::from_document(&stored).unwrap()).unwrap();
        assert_eq!(user.granted_tenant_ids, [crate::Id(tenant_id)]);
        assert!(user.granted_platform_admin);
        assert_eq!(user.extra.get("__v"), Some(&serde_json::json!(0)));
    }
}
