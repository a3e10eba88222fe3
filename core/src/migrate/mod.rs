//! Schema migration, in the spirit of Kubernetes storage-version migration:
//! the stored schema has a version (`controller_state` document `schema`,
//! field `version`), and [`run`] brings every older document to the current
//! one, collection by collection, one guarded update per document (see
//! [`legacy`]). So it is idempotent (a converted document no longer matches
//! its guard), resumable after a crash at any point (the version is
//! recorded only after every document), and safe to run from several
//! processes at once ([`ensure_current`] lets one do it, under a lease,
//! while the others wait). A dry run reads only and reports what a real
//! run would change.
//!
//! Schema 0 is the previous service's (NestJS + Mongoose); schema 1 is this
//! service's. A document that still does not decode after its conversion
//! is left as it is and reported: robust reads skip it (see
//! [`crate::store::decode`]).

pub mod legacy;
mod report;

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::Collection;
use tracing::info;

pub use report::{CollectionReport, Report};

use crate::model::{Subscription, Tenant, User};
use crate::store::decode::{self, Stored};
use crate::store::lease::Lease;
use crate::store::{Store, StoreError};
use crate::Timestamp;
use legacy::Conversion;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// `_id` of the schema document in `controller_state`.
const SCHEMA_DOCUMENT: &str = "schema";

/// `_id` of the lease a migrating process holds in `leases`.
const MIGRATION_LEASE: &str = "schema-migration";

/// How long a migration lease lasts without renewal; a crashed migrator's
/// lease expires after it and another process takes over.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// What [`run`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read and report only.
    DryRun,
    /// Convert, then record the schema version.
    Apply,
}

/// The recorded schema version (0: none recorded).
pub async fn recorded_version(store: &Store) -> Result<i64, StoreError> {
    let found = store
        .controller_state
        .find_one(doc! { "_id": SCHEMA_DOCUMENT })
        .await?;
    Ok(found
        .and_then(|d| d.get_i64("version").ok())
        .unwrap_or_default())
}

/// Reports every collection and, in [`Mode::Apply`], converts what is
/// older than [`SCHEMA_VERSION`] and records the version.
pub async fn run(store: &Store, mode: Mode) -> Result<Report, StoreError> {
    let now = Timestamp::now();
    let from = recorded_version(store).await?;
    let collections = vec![
        migrate::<Tenant>(&store.tenants, mode, |d| legacy::tenant(d, now)).await?,
        migrate::<User>(&store.users, mode, |d| legacy::user(d, now)).await?,
        migrate::<Subscription>(&store.subscriptions, mode, |d| legacy::subscription(d, now))
            .await?,
    ];
    if mode == Mode::Apply {
        store
            .controller_state
            .update_one(
                doc! { "_id": SCHEMA_DOCUMENT },
                doc! { "$set": { "version": SCHEMA_VERSION, "migratedAt": now.to_bson() } },
            )
            .upsert(true)
            .await?;
    }
    Ok(Report {
        mode,
        from,
        collections,
    })
}

/// One collection: every document read, its conversion reported (and
/// applied), and whether it decodes afterwards.
async fn migrate<T>(
    collection: &Collection<T>,
    mode: Mode,
    convert: impl Fn(&Document) -> Option<Conversion>,
) -> Result<CollectionReport, StoreError>
where
    T: Stored + Send + Sync,
{
    let mut report = CollectionReport::new(T::COLLECTION);
    let mut cursor = collection
        .clone_with_type::<Document>()
        .find(Document::new())
        .sort(doc! { "_id": 1 })
        .await?;
    while let Some(document) = cursor.try_next().await? {
        let id = report::id_of(&document);
        let conversion = convert(&document);
        let stored = match &conversion {
            Some(conversion) => conversion.applied_to(&document),
            None => document,
        };
        if let Some(conversion) = &conversion {
            report.convert(&id, &conversion.changes);
            if mode == Mode::Apply {
                collection
                    .update_one(
                        conversion.filter.clone(),
                        doc! { "$set": conversion.set.clone() },
                    )
                    .await?;
            }
        } else {
            report.current();
        }
        let raw = RawDocumentBuf::from_document(&stored)
            .map_err(|e| StoreError::Encode(serde::ser::Error::custom(e)))?;
        if let Err(e) = decode::decode::<T>(&raw) {
            report.undecodable(&e);
        }
    }
    Ok(report)
}

/// Brings the database to [`SCHEMA_VERSION`] before a server starts: at
/// once if it is recorded already; else one process migrates under the
/// migration lease (renewed while it works) and the others wait until
/// the version is recorded (or the lease expires, and one of them takes
/// over). Returns the report of the migration this process ran, if any.
pub async fn ensure_current(store: &Store, holder: &str) -> Result<Option<Report>, StoreError> {
    let lease = Lease::new(store, MIGRATION_LEASE, holder.to_string(), LEASE_DURATION);
    let mut announced = false;
    loop {
        if recorded_version(store).await? >= SCHEMA_VERSION {
            return Ok(None);
        }
        if lease.try_acquire().await? {
            // Another process may have finished just before this one got in.
            if recorded_version(store).await? >= SCHEMA_VERSION {
                let _ = lease.release().await;
                return Ok(None);
            }
            return run_holding(store, &lease).await.map(Some);
        }
        if !announced {
            info!("another process is migrating the schema; waiting for it");
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Migrates now under the migration lease, whatever version is recorded
/// (waiting while another process holds the lease); the report of the run.
pub async fn migrate_now(store: &Store, holder: &str) -> Result<Report, StoreError> {
    let lease = Lease::new(store, MIGRATION_LEASE, holder.to_string(), LEASE_DURATION);
    while !lease.try_acquire().await? {
        info!("another process is migrating the schema; waiting for it");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    run_holding(store, &lease).await
}

/// [`run`] in [`Mode::Apply`] while holding `lease` (renewed meanwhile),
/// released at the end.
async fn run_holding(store: &Store, lease: &Lease) -> Result<Report, StoreError> {
    let renewing = tokio::spawn(renew(lease.clone()));
    let result = run(store, Mode::Apply).await;
    renewing.abort();
    let _ = lease.release().await;
    result
}

async fn renew(lease: Lease) {
    loop {
        tokio::time::sleep(LEASE_DURATION / 3).await;
        let _ = lease.try_acquire().await;
    }
}
