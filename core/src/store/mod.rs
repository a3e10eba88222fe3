//! The MongoDB store: typed handles to every collection and the indexes
//! DESIGN §3 requires, created idempotently at start.

pub mod decode;
pub mod encode;
mod events;
pub mod lease;

use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};

use crate::model::{Subscription, Tenant, TenantEvent, User};

/// Collection names, as named in DESIGN §3.
pub mod names {
    pub const TENANTS: &str = "tenants";
    pub const USERS: &str = "users";
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    pub const CONTROLLER_STATE: &str = "controller_state";
    pub const LEASES: &str = "leases";
    pub const TENANT_EVENTS: &str = "tenant_events";
}

/// Errors of store operations.
///
/// A driver error is shown by its kind only: the driver's own `Display`
/// appends the raw server reply as a hex dump, which has no place in a log
/// line. Log a bare `mongodb::error::Error` the same way (`%e.kind`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {}", .0.kind)]
    Mongo(#[from] mongodb::error::Error),
    #[error("cannot encode document: {0}")]
    Encode(#[from] mongodb::bson::ser::Error),
    #[error("cannot decode document: {0}")]
    Decode(#[from] mongodb::bson::de::Error),
    /// A stored document that does not fit the model, with its field.
    #[error("{0}")]
    Undecodable(#[from] decode::Undecodable),
    /// A statement of a batched write that MongoDB refused.
    #[error("write refused (code {code}): {message}")]
    Refused { code: i32, message: String },
    /// The writer this operation was handed to has stopped.
    #[error("the store writer has stopped")]
    Closed,
}

/// Whether `err` is a unique-index violation (E11000).
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|e| e.code == 11000)),
        _ => false,
    }
}

/// Handles to the provisioner's collections in one database.
#[derive(Clone, Debug)]
pub struct Store {
    pub db: Database,
    pub tenants: Collection<Tenant>,
    pub users: Collection<User>,
    pub subscriptions: Collection<Subscription>,
    pub events: Collection<TenantEvent>,
    pub controller_state: Collection<Document>,
    pub leases: Collection<Document>,
}

impl Store {
    /// Typed handles into `db`; call [`Store::ensure_indexes`] once at start.
    pub fn new(db: Database) -> Self {
        Store {
            tenants: db.collection(names::TENANTS),
            users: db.collection(names::USERS),
            subscriptions: db.collection(names::SUBSCRIPTIONS),
            events: db.collection(names::TENANT_EVENTS),
            controller_state: db.collection(names::CONTROLLER_STATE),
            leases: db.collection(names::LEASES),
            db,
        }
    }

    /// Creates the unique and lookup indexes; safe to call from several
    /// processes at once.
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_string())
                        .build(),
                )
                .build()
        };
        // A domain belongs to one tenant. Only documents with a string in
        // `domains` are indexed: an empty array is indexed as one "undefined"
        // key, and two tenants without domains would otherwise collide.
        let domains_unique = IndexModel::builder()
            .keys(doc! { "domains": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("domains_unique".to_string())
                    .partial_filter_expression(doc! { "domains": { "$type": "string" } })
                    .build(),
            )
            .build();
        // A creator is a member of what they created (see the API's membership).
        let by_creator = IndexModel::builder().keys(doc! { "createdBy": 1 }).build();
        self.tenants
            .create_indexes([
                unique(doc! { "slug": 1 }, "slug_unique"),
                domains_unique,
                by_creator,
            ])
            .await?;
        self.users
            .create_index(unique(doc! { "authentikSubjectId": 1 }, "subject_unique"))
            .await?;
        self.users
            .create_index(IndexModel::builder().keys(doc! { "tenantIds": 1 }).build())
            .await?;
        self.subscriptions
            .create_index(unique(doc! { "tenantId": 1 }, "tenant_unique"))
            .await?;
        // A tenant's history, newest first; and the fleet's events of one
        // kind since a time (the fleet summary's drift corrections today).
        let history = IndexModel::builder()
            .keys(doc! { "tenantId": 1, "_id": -1 })
            .build();
        let by_action = IndexModel::builder()
            .keys(doc! { "action": 1, "at": -1 })
            .options(
                IndexOptions::builder()
                    .name("action_at".to_string())
                    .build(),
            )
            .build();
        self.events.create_indexes([history, by_action]).await?;
        Ok(())
    }
}
