//! `provisioner migrate [--dry-run]`: the schema migration of
//! `dezky_core::migrate` on demand, with its report on stdout. A dry run
//! only reads (no lease, no index, no write); a real run takes the same
//! migration lease as a starting server, so it never runs twice at once.

use anyhow::Context;
use dezky_core::migrate::{self, Mode};

use crate::config::MigrateArgs;
use crate::database::Database;

/// Runs the migration (or its dry run) and prints the report.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let db = Database::connect(&args.mongo).await?;
    let report = if args.dry_run {
        migrate::run(&db.store, Mode::DryRun).await
    } else {
        let holder = format!("migrate/{}/{}", std::process::id(), uuid::Uuid::new_v4());
        migrate::migrate_now(&db.store, &holder).await
    };
    let report = report.context("migrating the stored schema")?;
    print!("{report}");
    db.close().await;
    Ok(())
}
