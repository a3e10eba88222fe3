//! Robust reads: one stored document decoded on its own, so that a document
//! this service cannot read (hand-edited, written by the previous service
//! and not migrated, or by a newer schema) fails only itself, with an error
//! that names its `_id` and the offending field, never a whole list, a
//! change stream or the controller. A document that decodes also gets its
//! unmodeled fields ([`Extra`]) collected for operators.

use std::fmt;

use mongodb::bson::{self, Bson, RawBsonRef, RawDocument};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::model::{Extra, Subscription, Tenant, TenantEvent, User};
use crate::store::names;

/// A document type as stored in its collection.
pub trait Stored: DeserializeOwned {
    /// The collection it lives in.
    const COLLECTION: &'static str;
    /// Every top-level field this service models.
    const FIELDS: &'static [&'static str];
    /// Sub-documents whose own unmodeled keys are kept too, with their modeled keys.
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    /// Where the unmodeled fields go (`None`: they are not collected).
    fn extra_mut(&mut self) -> Option<&mut Extra>;
}

impl Stored for Tenant {
    const COLLECTION: &'static str = names::TENANTS;
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "slug",
        "name",
        "plan",
        "domains",
        "billingInfo",
        "deletionPolicy",
        "paused",
        "generation",
        "createdAt",
        "updatedAt",
        "createdBy",
        "deletionRequestedAt",
        "reconcileRequest",
        "planRequest",
        "finalizers",
        "passClaims",
        "status",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] =
        &[("billingInfo", &["email"])];
    fn extra_mut(&mut self) -> Option<&mut Extra> {
        Some(&mut self.extra)
    }
}

impl Stored for User {
    const COLLECTION: &'static str = names::USERS;
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "authentikSubjectId",
        "email",
        "name",
        "role",
        "platformAdmin",
        "tenantIds",
        "grantedTenantIds",
        "grantedPlatformAdmin",
        "createdAt",
        "updatedAt",
    ];
    fn extra_mut(&mut self) -> Option<&mut Extra> {
        Some(&mut self.extra)
    }
}

impl Stored for Subscription {
    const COLLECTION: &'static str = names::SUBSCRIPTIONS;
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "tenantId",
        "plan",
        "status",
        "stripeCustomerId",
        "stripeSubscriptionId",
        "currentPeriodEnd",
        "createdAt",
        "updatedAt",
    ];
    fn extra_mut(&mut self) -> Option<&mut Extra> {
        Some(&mut self.extra)
    }
}

impl Stored for TenantEvent {
    const COLLECTION: &'static str = names::TENANT_EVENTS;
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "tenantId",
        "at",
        "system",
        "action",
        "object",
        "fields",
        "message",
        "generation",
    ];
    fn extra_mut(&mut self) -> Option<&mut Extra> {
        None
    }
}

/// A stored document that does not decode into this service's model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Undecodable {
    /// Its collection.
    pub collection: &'static str,
    /// Its `_id`, as hex for an ObjectId (else as relaxed extended JSON).
    pub id: String,
    /// Its `slug`, if it has a string one (tenants).
    pub slug: Option<String>,
    /// The path of the offending field (`status`, `billingInfo.email`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} document {}", self.collection, self.id)?;
        if let Some(slug) = &self.slug {
            write!(f, " (slug `{slug}`)")?;
        }
        write!(f, ": field `{}`: {}", self.field, self.message)
    }
}

impl Undecodable {
    /// Counts it in `store_undecodable_documents_total{collection}` and logs
    /// it as one warning line; call once per document version met.
    pub fn report(&self) {
        metrics::counter!("store_undecodable_documents_total", "collection" => self.collection)
            .increment(1);
        tracing::warn!(collection = self.collection, id = %self.id, field = %self.field,
            error = %self.message, "skipping a stored document that does not decode");
    }
}

/// Decodes one stored document, with its unmodeled fields in its [`Extra`].
pub fn decode<T: Stored>(raw: &RawDocument) -> Result<T, Undecodable> {
    let mut value: T = match bson::from_slice(raw.as_bytes()) {
        Ok(value) => value,
        Err(_) => return Err(undecodable::<T>(raw)),
    };
    if let Some(extra) = value.extra_mut() {
        *extra = unmodeled::<T>(raw);
    }
    Ok(value)
}

/// The error of a document that failed to decode, with the path of the
/// field at fault (found by decoding it once more, tracking the path).
fn undecodable<T: Stored>(raw: &RawDocument) -> Undecodable {
    let (field, message) = match bson::from_slice::<Traced<T>>(raw.as_bytes()) {
        Ok(_) => (String::new(), "does not decode".to_string()),
        Err(e) => split_path(&e.to_string()),
    };
    Undecodable {
        collection: T::COLLECTION,
        id: raw
            .get("_id")
            .ok()
            .flatten()
            .map(id_text)
            .unwrap_or_else(|| "(no _id)".into()),
        slug: raw.get_str("slug").ok().map(str::to_string),
        field,
        message,
    }
}

fn id_text(id: RawBsonRef<'_>) -> String {
    match id {
        RawBsonRef::ObjectId(oid) => oid.to_hex(),
        other => Bson::try_from(other)
            .map(|b| b.into_relaxed_extjson().to_string())
            .unwrap_or_else(|_| "(unreadable _id)".into()),
    }
}

/// Separator between the path and the message of a [`Traced`] error.
const PATH_END: &str = " \u{1f}";

/// `T`, decoded while tracking the path, which its error then starts with.
struct Traced<T>(#[allow(dead_code)] T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Traced<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(d)
            .map(Traced)
            .map_err(|e| D::Error::custom(format!("{}{PATH_END}{}", e.path(), e.inner())))
    }
}

/// `(field, message)` from a [`Traced`] error; a missing field is named
/// by its own path, not its parent's.
fn split_path(error: &str) -> (String, String) {
    let Some((path, message)) = error.split_once(PATH_END) else {
        return (String::new(), error.to_string());
    };
    let path = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    let field = match (missing, path) {
        (Some(name), "") => name.to_string(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, path) => path.to_string(),
    };
    (field, message.to_string())
}

/// The fields of `raw` that `T` does not model, as relaxed extended JSON.
fn unmodeled<T: Stored>(raw: &RawDocument) -> Extra {
    let mut extra = serde_json::Map::new();
    for (key, value) in raw.iter().flatten() {
        if let Some((_, known)) = T::NESTED.iter().find(|(name, _)| *name == key) {
            if let RawBsonRef::Document(inner) = value {
                let mut nested = serde_json::Map::new();
                for (inner_key, inner_value) in inner.iter().flatten() {
                    if !known.contains(&inner_key) {
                        nested.insert(inner_key.to_string(), json(inner_value));
                    }
                }
                if !nested.is_empty() {
                    extra.insert(key.to_string(), nested.into());
                }
            }
        } else if !T::FIELDS.contains(&key) {
            extra.insert(key.to_string(), json(value));
        }
    }
    Extra::from_map(extra)
}

fn json(value: RawBsonRef<'_>) -> serde_json::Value {
    Bson::try_from(value)
        .map(Bson::into_relaxed_extjson)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, oid::ObjectId, RawDocumentBuf};

    use super::*;
    use crate::model::{BillingInfo, ReconcileRequest};
    use crate::store::encode::to_document;
    use crate::Timestamp;

    fn raw(document: bson::Document) -> RawDocumentBuf {
        RawDocumentBuf::from_document(&document).unwrap()
    }

    fn stored(tenant: &Tenant) -> bson::Document {
        to_document(tenant).unwrap()
    }

    #[test]
    fn every_field_a_tenant_stores_is_a_modeled_field() {
        let mut tenant = Tenant::new("acme", "Acme", "team", Timestamp::from_millis(1));
        tenant.billing_info = Some(BillingInfo {
            email: Some("b@acme.test".into()),
        });
        tenant.created_by = Some(crate::Id::new());
        tenant.deletion_requested_at = Some(Timestamp::from_millis(2));
        let request = ReconcileRequest {
            token: "t".into(),
            requested_at: Timestamp::from_millis(3),
        };
        tenant.reconcile_request = Some(request.clone());
        tenant.plan_request = Some(request);
        for key in stored(&tenant).keys() {
            assert!(
                Tenant::FIELDS.contains(&key.as_str()),
                "{key} is not listed"
            );
        }
        let decoded: Tenant = decode(&raw(stored(&tenant))).unwrap();
        assert!(decoded.extra.is_empty());
        assert_eq!(decoded, tenant);
    }

    #[test]
    fn unmodeled_fields_are_kept_in_extra_also_inside_billing_info() {
        let tenant = Tenant::new("acme", "Acme", "team", Timestamp::from_millis(1));
        let mut document = stored(&tenant);
        document.insert("__v", 3);
        document.insert(
            "billingInfo",
            doc! { "email": "b@acme.test", "vatId": "DE123", "address": { "city": "Berlin" } },
        );
        let decoded: Tenant = decode(&raw(document)).unwrap();
        assert_eq!(decoded.extra.get("__v"), Some(&serde_json::json!(3)));
        assert_eq!(
            decoded.extra.get("billingInfo"),
            Some(&serde_json::json!({"vatId": "DE123", "address": {"city": "Berlin"}}))
        );
        assert_eq!(
            decoded.billing_info.and_then(|b| b.email).as_deref(),
            Some("b@acme.test")
        );
    }

    #[test]
    fn a_document_that_does_not_decode_names_its_id_slug_and_field() {
        let id = ObjectId::new();
        let mut document = stored(&Tenant::new(
            "acme",
            "Acme",
            "team",
            Timestamp::from_millis(1),
        ));
        document.insert("_id", id);
        document.insert("status", "active");
        let error = decode::<Tenant>(&raw(document.clone())).unwrap_err();
        assert_eq!(error.id, id.to_hex());
        assert_eq!(error.slug.as_deref(), Some("acme"));
        assert_eq!(error.field, "status");
        assert!(error.message.contains("active"), "{}", error.message);

        document.remove("generation");
        document.remove("status");
        let error = decode::<Tenant>(&raw(document.clone())).unwrap_err();
        assert_eq!(error.field, "generation");

        document.insert("generation", 1);
        document.insert(
            "status",
            doc! { "systems": { "ocis": { "state": "bogus" } } },
        );
        let error = decode::<Tenant>(&raw(document)).unwrap_err();
        // Keys of a map of enums are not named by the path, only placed.
        assert!(
            error.field.starts_with("status.systems."),
            "{}",
            error.field
        );
        assert!(error.field.ends_with(".state"), "{}", error.field);
    }
}
