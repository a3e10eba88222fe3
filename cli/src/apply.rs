//! `provisioner tenants apply -f FILE|DIR`: every manifest becomes one
//! `PUT /tenants/{slug}`, [`IN_FLIGHT`] at a time, reported in file order
//! (a slug is declared once, so the order of the writes does not matter).
//! Each tenant is read first, so the
//! answer can say `created`, `configured (fields)` or `unchanged`, and the
//! PUT carries that read's generation in `If-Match` (a tenant changed in
//! between is read and diffed again). A failed tenant does not stop the
//! others; the command then exits 1. `--dry-run` writes no desired state:
//! it diffs on the client and asks the controller for its plan of the
//! recorded spec (`GET /tenants/{slug}/plan`). `--wait` follows the
//! applied tenants (see [`crate::wait`]).

use std::time::Duration;

use futures::stream::{self, StreamExt};
use reqwest::StatusCode;

use crate::args::ApplyArgs;
use crate::client::Client;
use crate::describe;
use crate::diff::{diff, Change};
use crate::error::CliError;
use crate::manifest::{self, Manifest};
use crate::output::duration;
use crate::view::{parse, TenantView};
use crate::wait::{self, Target};

/// Manifests applied at once: enough to hide the round trips, few enough
/// to leave the API to others.
const IN_FLIGHT: usize = 16;
/// Attempts of one tenant whose generation moved between read and PUT.
const ATTEMPTS: usize = 3;
/// How long a dry run waits for the controller's plan of one tenant.
const PLAN_WAIT: Duration = Duration::from_secs(30);

/// `tenants apply`.
pub async fn apply(client: &Client, args: &ApplyArgs) -> Result<(), CliError> {
    let manifests = manifest::load(&args.files, args.recursive).map_err(CliError::Manifests)?;
    if manifests.is_empty() {
        return Err(CliError::Failed("no tenant manifests found".into()));
    }
    if args.dry_run {
        return dry_run(client, &manifests).await;
    }
    let mut targets = Vec::new();
    let mut failed = 0;
    let mut applied = stream::iter(&manifests)
        .map(|manifest| async move { (manifest, apply_one(client, manifest).await) })
        .buffered(IN_FLIGHT);
    while let Some((manifest, result)) = applied.next().await {
        match result {
            Ok((outcome, generation)) => {
                println!("tenant/{} {outcome}", manifest.slug);
                targets.push(Target {
                    slug: manifest.slug.clone(),
                    generation,
                });
            }
            Err(error) => {
                failed += 1;
                eprintln!(
                    "tenant/{} ({}): {}",
                    manifest.slug,
                    manifest.source,
                    in_manifest_terms(error)
                );
            }
        }
    }
    let waited = match args.wait {
        Some(limit) if !targets.is_empty() => wait::until_active(client, &targets, limit).await,
        _ => Ok(()),
    };
    if failed > 0 {
        if let Err(error) = waited {
            eprintln!("error: {error}");
        }
        return Err(CliError::Failed(format!(
            "{failed} of {} manifest(s) were not applied",
            manifests.len()
        )));
    }
    waited
}

/// One PUT; (`created` / `configured (fields)` / `unchanged`, new generation).
async fn apply_one(client: &Client, manifest: &Manifest) -> Result<(String, i64), CliError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = current(client, &manifest.slug).await?;
        let change = diff(&manifest.spec, current.as_ref());
        let before = current.as_ref().map(|t| t.generation);
        match client.apply(&manifest.slug, &manifest.spec, before).await {
            Ok((status, answer)) => {
                let after: TenantView = parse(&answer, &format!("PUT /tenants/{}", manifest.slug))?;
                let outcome = match change {
                    _ if status == StatusCode::CREATED => "created".to_string(),
                    _ if Some(after.generation) == before => "unchanged".to_string(),
                    Change::Update(fields) => {
                        let names: Vec<&str> = fields.iter().map(|f| f.field).collect();
                        format!("configured ({})", names.join(", "))
                    }
                    Change::Create | Change::Unchanged => "configured".to_string(),
                };
                return Ok((outcome, after.generation));
            }
            Err(CliError::Api { status: 412, .. }) if attempt < ATTEMPTS => continue,
            Err(error) => return Err(error),
        }
    }
}

/// The tenant `slug` as recorded, if it exists (and is visible).
async fn current(client: &Client, slug: &str) -> Result<Option<TenantView>, CliError> {
    client
        .tenant(slug)
        .await?
        .map(|value| parse(&value, &format!("GET /tenants/{slug}")))
        .transpose()
}

/// An API error with its field named as in the manifest (`spec.domains[0]`).
fn in_manifest_terms(error: CliError) -> CliError {
    match error {
        CliError::Api {
            context,
            status,
            code,
            message,
            field: Some(field),
        } => CliError::Api {
            context,
            status,
            code,
            message,
            field: Some(match field.as_str() {
                "slug" => "metadata.slug".to_string(),
                _ => format!("spec.{field}"),
            }),
        },
        other => other,
    }
}

/// `--dry-run`: per tenant what would change, and the controller's plan.
async fn dry_run(client: &Client, manifests: &[Manifest]) -> Result<(), CliError> {
    let mut failed = 0;
    for manifest in manifests {
        let slug = &manifest.slug;
        let current = match current(client, slug).await {
            Ok(current) => current,
            Err(error) => {
                failed += 1;
                eprintln!("tenant/{slug} ({}): {error}", manifest.source);
                continue;
            }
        };
        match diff(&manifest.spec, current.as_ref()) {
            Change::Create => {
                let spec = serde_json::to_string(&manifest.spec).unwrap_or_default();
                println!("tenant/{slug} would be created: {spec}");
                continue;
            }
            Change::Update(fields) => {
                println!("tenant/{slug} would be configured:");
                for field in fields {
                    println!("  {field}");
                }
            }
            Change::Unchanged => println!("tenant/{slug} unchanged"),
        }
        match client.plan(slug, PLAN_WAIT).await {
            Ok(Some(plan)) => print!("{}", describe::plan(&plan, "  ")),
            Ok(None) => println!(
                "  controller plan: no answer within {} (is a controller running?)",
                duration(PLAN_WAIT)
            ),
            Err(error) => {
                failed += 1;
                eprintln!("tenant/{slug}: {error}");
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} tenant(s) could not be checked"
        )));
    }
    println!("(dry run: nothing was changed)");
    Ok(())
}
