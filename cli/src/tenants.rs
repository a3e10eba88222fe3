//! The `provisioner tenants` commands other than `apply`: `get`,
//! `describe`, `events`, `plan`, `reconcile`, `pause`, `resume`, `delete`.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

use crate::apply;
use crate::args::{EventsArgs, GetArgs, PlanArgs, TenantsArgs, TenantsCommand, WaitArgs};
use crate::client::{Client, Reconciled};
use crate::describe;
use crate::error::CliError;
use crate::output::{self, duration, structured, Format};
use crate::session::Bearer;
use crate::view::{parse, phase_name, EventView, TenantView};
use crate::wait;

/// The longest `?wait=` the API honours.
const SERVER_WAIT_CAP: Duration = Duration::from_secs(60);
/// Events `describe` shows.
const DESCRIBE_EVENTS: usize = 10;

/// `provisioner tenants ...`.
pub async fn run(args: TenantsArgs) -> Result<(), CliError> {
    let server = &args.server.server;
    let bearer = Bearer::for_server(server, args.server.token.as_deref())?;
    let client = Client::new(server, bearer)?;
    match args.command {
        TenantsCommand::Apply(apply_args) => apply::apply(&client, &apply_args).await,
        TenantsCommand::Get(get_args) => get(&client, &get_args).await,
        TenantsCommand::Describe(slug) => describe(&client, &slug.slug).await,
        TenantsCommand::Events(events_args) => events(&client, &events_args).await,
        TenantsCommand::Plan(plan_args) => plan(&client, &plan_args).await,
        TenantsCommand::Reconcile(wait_args) => reconcile(&client, &wait_args).await,
        TenantsCommand::Pause(slug) => set_paused(&client, &slug.slug, true).await,
        TenantsCommand::Resume(slug) => set_paused(&client, &slug.slug, false).await,
        TenantsCommand::Delete(wait_args) => delete(&client, &wait_args).await,
    }
}

/// `GET /tenants/{slug}`, or an error saying it does not exist.
async fn existing(client: &Client, slug: &str) -> Result<Value, CliError> {
    client.tenant(slug).await?.ok_or_else(|| CliError::Api {
        context: format!("GET /tenants/{slug}"),
        status: 404,
        code: "not_found".into(),
        message: format!("tenant `{slug}` does not exist (or is not visible to you)"),
        field: None,
    })
}

fn views(values: &[Value]) -> Result<Vec<TenantView>, CliError> {
    values.iter().map(|v| parse(v, "GET /tenants")).collect()
}

async fn get(client: &Client, args: &GetArgs) -> Result<(), CliError> {
    let (values, one) = match &args.slug {
        Some(slug) => (vec![existing(client, slug).await?], true),
        None => (client.tenants().await?, false),
    };
    let text = match args.output {
        Format::Table | Format::Wide => {
            output::tenants_table(&views(&values)?, args.output == Format::Wide, Utc::now())
        }
        format if one => structured(&values[0], format)?,
        format => structured(&json!({ "items": values }), format)?,
    };
    print!("{text}");
    Ok(())
}

async fn describe(client: &Client, slug: &str) -> Result<(), CliError> {
    let tenant: TenantView = parse(&existing(client, slug).await?, "GET /tenants")?;
    let events = client.events(slug, Some(DESCRIBE_EVENTS)).await?;
    let events: Vec<EventView> = events
        .iter()
        .map(|e| parse(e, "GET /tenants/{slug}/events"))
        .collect::<Result<_, _>>()?;
    print!("{}", describe::tenant(&tenant, &events, Utc::now()));
    Ok(())
}

async fn events(client: &Client, args: &EventsArgs) -> Result<(), CliError> {
    existing(client, &args.slug).await?;
    let values = client.events(&args.slug, Some(args.limit)).await?;
    let text = match args.output {
        Format::Table | Format::Wide => {
            let events: Vec<EventView> = values
                .iter()
                .map(|e| parse(e, "GET /tenants/{slug}/events"))
                .collect::<Result<_, _>>()?;
            describe::events_table(&events)
        }
        format => structured(&json!({ "items": values }), format)?,
    };
    print!("{text}");
    Ok(())
}

async fn plan(client: &Client, args: &PlanArgs) -> Result<(), CliError> {
    let wait = args.timeout.min(SERVER_WAIT_CAP);
    let Some(plan) = client.plan(&args.slug, wait).await? else {
        return Err(CliError::Failed(format!(
            "the controller did not answer within {} (is a controller running?)",
            duration(wait)
        )));
    };
    let text = match args.output {
        Format::Table | Format::Wide => describe::plan(&plan, ""),
        format => structured(&plan, format)?,
    };
    print!("{text}");
    Ok(())
}

async fn reconcile(client: &Client, args: &WaitArgs) -> Result<(), CliError> {
    let slug = &args.slug;
    let Some(limit) = args.wait else {
        let token = match client.reconcile(slug, None).await? {
            Reconciled::Requested { token } => token,
            Reconciled::Handled(_) => String::new(),
        };
        println!("tenant/{slug} reconcile requested (token {token})");
        return Ok(());
    };
    let deadline = Instant::now() + limit;
    let tenant = match client
        .reconcile(slug, Some(limit.min(SERVER_WAIT_CAP)))
        .await?
    {
        Reconciled::Handled(tenant) => tenant,
        Reconciled::Requested { token } => handled(client, slug, &token, deadline, limit).await?,
    };
    let tenant: TenantView = parse(&tenant, "POST /tenants/{slug}/reconcile")?;
    println!(
        "tenant/{slug} reconciled: {}",
        phase_name(tenant.status.phase)
    );
    let mut errors = Vec::new();
    for (system, status) in &tenant.status.systems {
        println!(
            "  {system}: {} {} {}",
            status.state.as_str(),
            status.reason,
            status.message
        );
        if status.state == dezky_core::model::SystemState::Error {
            errors.push(format!(
                "{system} error {}: {}",
                status.reason, status.message
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "tenant/{slug}: {}",
            errors.join("; ")
        )))
    }
}

/// Polls until the controller acknowledged reconcile `token`.
async fn handled(
    client: &Client,
    slug: &str,
    token: &str,
    deadline: Instant,
    limit: Duration,
) -> Result<Value, CliError> {
    loop {
        let tenant = existing(client, slug).await?;
        if tenant["status"]["lastHandledReconcileToken"] == token {
            return Ok(tenant);
        }
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "tenant/{slug}: the controller did not handle the reconcile within {} (is a controller running?)",
                duration(limit)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn set_paused(client: &Client, slug: &str, paused: bool) -> Result<(), CliError> {
    let tenant = client.patch(slug, json!({ "paused": paused })).await?;
    let tenant: TenantView = parse(&tenant, "PATCH /tenants/{slug}")?;
    let what = if paused {
        "paused (no upstream writes)"
    } else {
        "resumed"
    };
    println!("tenant/{slug} {what} at generation {}", tenant.generation);
    Ok(())
}

async fn delete(client: &Client, args: &WaitArgs) -> Result<(), CliError> {
    let slug = &args.slug;
    client.delete(slug).await?;
    println!("tenant/{slug} deleting");
    match args.wait {
        Some(limit) => wait::until_gone(client, slug, limit).await,
        None => Ok(()),
    }
}
