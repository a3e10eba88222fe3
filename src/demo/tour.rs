//! The scripted part of the demo: create sample tenants through the API,
//! wait until they converge, break each one out of band through a
//! simulator's handle, and wait until the controller healed them. Every
//! wait has a deadline; missing one fails the tour.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use dezky_core::model::{group_name, Phase, System};
use serde_json::json;

use super::client::{ApiClient, Tenant};
use super::table;
use crate::config::TenantArgs;
use crate::simulate::Simulators;

/// Budget for the sample tenants to converge after creation.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(60);
/// Budget for the broken tenants to heal.
const HEAL_DEADLINE: Duration = Duration::from_secs(60);
/// Longest wait for one manual reconcile.
const RECONCILE_WAIT: Duration = Duration::from_secs(20);
/// How often tenant status is polled.
const POLL: Duration = Duration::from_millis(250);

/// A sample tenant and the out-of-band change the tour makes to it.
struct Sample {
    slug: &'static str,
    name: &'static str,
    plan: &'static str,
    domains: &'static [&'static str],
    breakage: Breakage,
}

/// What an operator does behind the provisioner's back.
enum Breakage {
    /// Renames the tenant's Authentik group.
    RenameGroup,
    /// Disables the tenant's first Stalwart domain.
    DisableDomain,
    /// Disables (trashes) the tenant's oCIS space.
    TrashSpace,
}

impl Breakage {
    fn system(&self) -> System {
        match self {
            Breakage::RenameGroup => System::Authentik,
            Breakage::DisableDomain => System::Stalwart,
            Breakage::TrashSpace => System::Ocis,
        }
    }
}

const SAMPLES: [Sample; 3] = [
    Sample {
        slug: "acme",
        name: "Acme Inc",
        plan: "team",
        domains: &["acme.test", "mail.acme.test"],
        breakage: Breakage::RenameGroup,
    },
    Sample {
        slug: "globex",
        name: "Globex Corporation",
        plan: "business",
        domains: &["globex.test"],
        breakage: Breakage::DisableDomain,
    },
    Sample {
        slug: "initech",
        name: "Initech",
        plan: "free",
        domains: &["initech.test"],
        breakage: Breakage::TrashSpace,
    },
];

/// Runs the tour; an error names the step that missed its deadline.
pub async fn run(api: &ApiClient, sims: &Simulators, tenants: &TenantArgs) -> anyhow::Result<()> {
    api.sync_me()
        .await
        .context("signing in the demo platform admin")?;

    println!();
    println!(
        "== 1. Create {} sample tenants through the API ==",
        SAMPLES.len()
    );
    for sample in &SAMPLES {
        let plan = if tenants.plan_quotas.contains(sample.plan) {
            sample.plan
        } else {
            tenants.plan_quotas.default_plan()
        };
        let created = api
            .create_tenant(json!({
                "slug": sample.slug,
                "name": sample.name,
                "plan": plan,
                "domains": sample.domains,
            }))
            .await
            .with_context(|| format!("creating tenant {}", sample.slug))?;
        println!(
            "  POST /tenants {:<8} -> 201, phase {}, generation {}",
            created.slug,
            table::phase_name(created.status.phase),
            created.generation
        );
    }

    println!();
    println!("== 2. The controller converges them ==");
    let started = Instant::now();
    let converged = wait_until(api, CONVERGE_DEADLINE, "converge", |all| {
        all.iter().all(is_converged)
    })
    .await?;
    println!("{}", table::render(&converged));
    println!("  converged in {:.1}s", started.elapsed().as_secs_f64());

    println!();
    println!("== 3. Break them out of band (as an operator would, in the upstream UIs) ==");
    let before = drift_counts(&converged);
    for sample in &SAMPLES {
        let tenant = find(&converged, sample.slug)?;
        let what = break_tenant(sims, tenant, &sample.breakage, &tenants.group_prefix)
            .with_context(|| format!("breaking tenant {}", sample.slug))?;
        println!("  {:<8} {}", sample.slug, what);
    }

    println!();
    println!("== 4. The controller heals them ==");
    println!(
        "  (it would within RESYNC_INTERVAL; POST /tenants/{{slug}}/reconcile makes it happen now)"
    );
    let started = Instant::now();
    for sample in &SAMPLES {
        api.reconcile(sample.slug, RECONCILE_WAIT).await?;
    }
    let healed = wait_until(api, HEAL_DEADLINE, "heal", |all| {
        SAMPLES.iter().all(|sample| {
            let system = sample.breakage.system();
            find(all, sample.slug).is_ok_and(|t| {
                is_converged(t)
                    && drift(t, system) > before.get(&(sample.slug, system)).copied().unwrap_or(0)
            })
        }) && all.iter().all(is_converged)
    })
    .await?;
    println!("{}", table::render(&healed));
    println!("  healed in {:.1}s", started.elapsed().as_secs_f64());
    let slugs: Vec<&str> = SAMPLES.iter().map(|s| s.slug).collect();
    println!(
        "All {} sample tenants are active again after healing ({}).",
        SAMPLES.len(),
        slugs.join(", ")
    );
    Ok(())
}

/// Active, at the current generation, every system settled.
fn is_converged(tenant: &Tenant) -> bool {
    tenant.status.phase == Phase::Active
        && tenant.status.observed_generation == tenant.generation
        && System::ALL.iter().all(|&system| {
            tenant
                .system_status(system)
                .is_some_and(|s| s.state.is_settled())
        })
}

fn drift(tenant: &Tenant, system: System) -> i64 {
    tenant
        .system_status(system)
        .map_or(0, |s| s.drift_corrections)
}

fn drift_counts(tenants: &[Tenant]) -> BTreeMap<(&'static str, System), i64> {
    SAMPLES
        .iter()
        .flat_map(|sample| {
            System::ALL.iter().map(move |&system| {
                let count = find(tenants, sample.slug).map_or(0, |t| drift(t, system));
                ((sample.slug, system), count)
            })
        })
        .collect()
}

fn find<'a>(tenants: &'a [Tenant], slug: &str) -> anyhow::Result<&'a Tenant> {
    tenants
        .iter()
        .find(|t| t.slug == slug)
        .ok_or_else(|| anyhow!("tenant {slug} is missing"))
}

/// Polls `GET /tenants` until `done` holds; on timeout shows the last table.
async fn wait_until(
    api: &ApiClient,
    budget: Duration,
    step: &str,
    done: impl Fn(&[Tenant]) -> bool,
) -> anyhow::Result<Vec<Tenant>> {
    let deadline = Instant::now() + budget;
    loop {
        let tenants = api.tenants().await?;
        if done(&tenants) {
            return Ok(tenants);
        }
        if Instant::now() > deadline {
            println!("{}", table::render(&tenants));
            bail!("the tenants did not {step} within {budget:?} (state above)");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Makes one out-of-band change through a simulator handle; says what it did.
fn break_tenant(
    sims: &Simulators,
    tenant: &Tenant,
    breakage: &Breakage,
    group_prefix: &str,
) -> anyhow::Result<String> {
    match breakage {
        Breakage::RenameGroup => {
            let name = group_name(group_prefix, &tenant.slug);
            let group = sims
                .authentik
                .group_named(&name)
                .ok_or_else(|| anyhow!("Authentik has no group {name}"))?;
            let renamed = format!("{}-renamed-by-hand", tenant.slug);
            sims.authentik.rename_group(group.pk, &renamed)?;
            Ok(format!("Authentik: group {name} renamed to {renamed}"))
        }
        Breakage::DisableDomain => {
            let name = tenant
                .domains
                .first()
                .ok_or_else(|| anyhow!("the tenant has no domain"))?;
            let domain = sims
                .stalwart
                .domain_named(name)
                .ok_or_else(|| anyhow!("Stalwart has no domain {name}"))?;
            sims.stalwart.set_enabled(&domain.id, false)?;
            Ok(format!("Stalwart: domain {name} disabled"))
        }
        Breakage::TrashSpace => {
            let drive = tenant
                .system_status(System::Ocis)
                .and_then(|s| s.external_id.clone())
                .ok_or_else(|| anyhow!("no oCIS space id in the status"))?;
            if !sims.ocis.disable_drive(&drive) {
                bail!("oCIS has no space {drive}");
            }
            Ok(format!("oCIS: space {drive} disabled (trashed)"))
        }
    }
}
