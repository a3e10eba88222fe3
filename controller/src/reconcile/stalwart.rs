//! The Stalwart reconciler: one mail domain per entry of a tenant's
//! `domains`, through Stalwart's JMAP management API (DESIGN §7,
//! `shared/upstream/stalwart.md`).
//!
//! Invariants: a domain is only ever changed or destroyed while its
//! `description` is this tenant's marker (`dezky tenant <slug>`) or, for
//! adoption, carries no dezky marker at all; one marked for another tenant
//! is a conflict and never touched. A domain still used by accounts, groups
//! or lists is never destroyed (mail would be lost). A converged tenant
//! costs one HTTP request (every lookup batched; up to 6 domains per
//! request) and no write; healing any drift costs one more (every change in
//! one `x:Domain/set`).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use dezky_core::model::{System, Tenant};
use dezky_core::validate::normalize_domain;
use dezky_upstream::stalwart::{
    by_name, by_text, get_domains, Batch, DkimSignatureSet, Domain, DomainPatch, DomainSet,
    GetResponse, Management, MethodErrorKind, NewDomain, ObjectType, Responses, SetErrorKind,
    SetResponse, StalwartClient, StalwartError,
};

use super::{Action, ActionKind, Mode, Outcome, Reconciler, SystemError};

/// Prefix of the ownership marker in a domain's `description`.
const MARKER_PREFIX: &str = "dezky tenant ";

/// Object type named in `linkedObjects` for DKIM keys, which may go with their domain.
const DKIM_OBJECT: &str = "DkimSignature";

/// The ownership marker of a tenant's domains.
pub fn marker(slug: &str) -> String {
    format!("{MARKER_PREFIX}{slug}")
}

/// How new domains are managed by Stalwart (set explicitly on create:
/// Stalwart's own default for DKIM is `Automatic`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StalwartSettings {
    /// `certificateManagement` (`STALWART_CERTIFICATE_MANAGEMENT`).
    pub certificate_management: Management,
    /// `dnsManagement` (`STALWART_DNS_MANAGEMENT`).
    pub dns_management: Management,
    /// `dkimManagement` (`STALWART_DKIM_MANAGEMENT`).
    pub dkim_management: Management,
}

/// Reconciles `systems.stalwart`.
pub struct StalwartReconciler {
    client: StalwartClient,
    settings: StalwartSettings,
}

impl StalwartReconciler {
    /// A reconciler talking to Stalwart through `client`.
    pub fn new(client: StalwartClient, settings: StalwartSettings) -> Self {
        StalwartReconciler { client, settings }
    }
}

/// What one lookup request found.
#[derive(Debug, Default)]
struct Observed {
    /// The domain holding each looked-up name.
    named: BTreeMap<String, Domain>,
    /// Domains carrying this tenant's marker, by id.
    marked: BTreeMap<String, Domain>,
}

/// Which write an action belongs to, to keep only the actions that succeeded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Write {
    Create(String),
    Update(String),
    Destroy(String),
}

/// The changes one pass wants, as one `x:Domain/set`.
#[derive(Default)]
struct Plan {
    set: DomainSet,
    /// Domain name of each creation id and of each id to update or destroy.
    names: BTreeMap<Write, String>,
    actions: Vec<(Write, Action)>,
    /// Ids of the desired domains that exist.
    ids: BTreeMap<String, String>,
    conflicts: Vec<String>,
}

/// What a pass did, accumulated across its requests.
#[derive(Default)]
struct Pass {
    actions: Vec<Action>,
    ids: BTreeMap<String, String>,
    conflicts: Vec<String>,
    in_use: Vec<String>,
    failures: Vec<String>,
}

impl StalwartReconciler {
    /// The tenant's desired domains, normalised like the server, deduplicated.
    fn desired(tenant: &Tenant) -> Result<Vec<String>, SystemError> {
        let mut seen = BTreeSet::new();
        let mut names = Vec::new();
        for raw in &tenant.domains {
            let name = normalize_domain(raw).ok_or_else(|| {
                SystemError::new("InvalidDomain", format!("`{raw}` is not a domain name"))
            })?;
            if seen.insert(name.clone()) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Ids recorded by the previous pass (`externalId`).
    fn known_ids(tenant: &Tenant) -> Vec<String> {
        tenant
            .system_status(System::Stalwart)
            .and_then(|s| s.external_id.as_deref())
            .map(|ids| {
                ids.split(',')
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One request (more only past 6 names, at 16 calls each): every name
    /// looked up with query + get, the marked domains by text (query + get),
    /// the ids of the last pass by get.
    async fn observe(
        &self,
        names: &[String],
        marker: &str,
        known: &[String],
    ) -> Result<Observed, StalwartError> {
        let mut batch = Batch::new();
        batch.push_group(by_text(marker, "m"));
        if !known.is_empty() {
            batch.push(get_domains(known, "k"));
        }
        for (i, name) in names.iter().enumerate() {
            batch.push_group(by_name(name, &format!("n{i}")));
        }
        let mut responses = self.client.execute(batch).await?;
        let mut observed = Observed::default();
        let mut candidates = responses.take::<GetResponse<Domain>>("m")?.list;
        if !known.is_empty() {
            candidates.extend(responses.take::<GetResponse<Domain>>("k")?.list);
        }
        for (i, name) in names.iter().enumerate() {
            let found = responses
                .take::<GetResponse<Domain>>(&format!("n{i}"))?
                .list;
            if let Some(domain) = found.into_iter().find(|d| &d.name == name) {
                candidates.push(domain.clone());
                observed.named.insert(name.clone(), domain);
            }
        }
        observed.marked = candidates
            .into_iter()
            .filter(|d| d.description.as_deref() == Some(marker))
            .map(|d| (d.id.clone(), d))
            .collect();
        Ok(observed)
    }

    /// Diffs the observation against the desired names.
    fn plan(
        &self,
        desired: &[String],
        marker: &str,
        known: &[String],
        observed: &Observed,
    ) -> Plan {
        let mut plan = Plan::default();
        for (i, name) in desired.iter().enumerate() {
            let Some(domain) = observed.named.get(name) else {
                let creation = format!("c{i}");
                plan.set
                    .create
                    .insert(creation.clone(), self.new_domain(name, marker));
                let write = Write::Create(creation);
                plan.names.insert(write.clone(), name.clone());
                plan.actions
                    .push((write, Action::new(ActionKind::Create, object(name))));
                continue;
            };
            if let Some(other) = foreign_marker(domain, marker) {
                plan.conflicts.push(format!(
                    "domain {name} (id {}) is marked for another tenant (`{other}`)",
                    domain.id
                ));
                continue;
            }
            plan.ids.insert(name.clone(), domain.id.clone());
            let adopting =
                !known.contains(&domain.id) && domain.description.as_deref() != Some(marker);
            if let Some((patch, action)) = correction(domain, marker, adopting) {
                let write = Write::Update(domain.id.clone());
                plan.set.update.insert(domain.id.clone(), patch);
                plan.names.insert(write.clone(), name.clone());
                plan.actions.push((write, action));
            }
        }
        for domain in observed.marked.values() {
            if !desired.contains(&domain.name) {
                let write = Write::Destroy(domain.id.clone());
                plan.set.destroy.push(domain.id.clone());
                plan.names.insert(write.clone(), domain.name.clone());
                plan.actions
                    .push((write, Action::new(ActionKind::Delete, object(&domain.name))));
            }
        }
        plan
    }

    fn new_domain(&self, name: &str, marker: &str) -> NewDomain {
        NewDomain {
            name: name.to_owned(),
            is_enabled: true,
            description: Some(marker.to_owned()),
            certificate_management: self.settings.certificate_management,
            dns_management: self.settings.dns_management,
            dkim_management: self.settings.dkim_management,
        }
    }

    /// Sends the plan's set, then (only if needed) one request that adopts
    /// domains created meanwhile and destroys DKIM keys with their domain,
    /// then one that marks the adopted domains.
    async fn apply(&self, plan: Plan, marker: &str, pass: &mut Pass) -> Result<(), StalwartError> {
        let Plan {
            set,
            names,
            actions,
            ..
        } = plan;
        let mut batch = Batch::new();
        batch.push(set.into_call(ObjectType::DOMAIN, "s")?);
        let mut responses = self.client.execute(batch).await?;
        let result: SetResponse = responses.take("s")?;

        let mut succeeded = BTreeSet::new();
        let mut races = Vec::new();
        let mut dkim_keys = Vec::new();
        let mut dkim_domains = Vec::new();
        let name_of = |write: &Write| names.get(write).cloned().unwrap_or_default();
        for (creation, created) in &result.created {
            let write = Write::Create(creation.clone());
            pass.ids.insert(name_of(&write), created.id.clone());
            succeeded.insert(write);
        }
        for (creation, error) in &result.not_created {
            let name = name_of(&Write::Create(creation.clone()));
            match (&error.kind, &error.object_id) {
                (SetErrorKind::PrimaryKeyViolation, Some(existing)) => {
                    races.push((name, existing.id.clone()))
                }
                _ => pass
                    .failures
                    .push(format!("cannot create domain {name}: {error}")),
            }
        }
        for id in result.updated.keys() {
            succeeded.insert(Write::Update(id.clone()));
        }
        for (id, error) in &result.not_updated {
            let name = name_of(&Write::Update(id.clone()));
            pass.failures
                .push(format!("cannot update domain {name} (id {id}): {error}"));
        }
        for id in &result.destroyed {
            succeeded.insert(Write::Destroy(id.clone()));
        }
        for (id, error) in &result.not_destroyed {
            let write = Write::Destroy(id.clone());
            let name = name_of(&write);
            match error.kind {
                SetErrorKind::NotFound => {
                    succeeded.insert(write);
                }
                SetErrorKind::ObjectIsLinked
                    if error.linked_objects.iter().all(|o| o.object == DKIM_OBJECT) =>
                {
                    dkim_keys.extend(error.linked_objects.iter().map(|o| o.id.clone()));
                    dkim_domains.push(id.clone());
                }
                SetErrorKind::ObjectIsLinked => {
                    let users: Vec<String> = error
                        .linked_objects
                        .iter()
                        .filter(|o| o.object != DKIM_OBJECT)
                        .map(ToString::to_string)
                        .collect();
                    pass.in_use.push(format!(
                        "domain {name} (id {id}) is still used by {}",
                        users.join(", ")
                    ));
                }
                _ => pass
                    .failures
                    .push(format!("cannot delete domain {name} (id {id}): {error}")),
            }
        }
        let record = |pass: &mut Pass, done: &BTreeSet<Write>| {
            pass.actions.extend(
                actions
                    .iter()
                    .filter(|(w, _)| done.contains(w))
                    .map(|(_, a)| a.clone()),
            );
        };
        record(pass, &succeeded);
        if races.is_empty() && dkim_domains.is_empty() {
            return Ok(());
        }

        let mut batch = Batch::new();
        if !races.is_empty() {
            let ids: Vec<String> = races.iter().map(|(_, id)| id.clone()).collect();
            batch.push(get_domains(&ids, "r"));
        }
        if !dkim_domains.is_empty() {
            let keys = DkimSignatureSet {
                destroy: dkim_keys,
                ..Default::default()
            };
            let domains = DomainSet {
                destroy: dkim_domains,
                ..Default::default()
            };
            batch.push_group(vec![
                keys.into_call(ObjectType::DKIM_SIGNATURE, "kd")?,
                domains.into_call(ObjectType::DOMAIN, "dd")?,
            ]);
        }
        let mut responses = self.client.execute(batch).await?;
        if responses.contains("dd") {
            let destroyed = settle_dkim_cleanup(&mut responses, &names, pass)?;
            record(pass, &destroyed);
        }
        if races.is_empty() {
            return Ok(());
        }
        let found = responses.take::<GetResponse<Domain>>("r")?.list;
        let mut adopt = DomainSet::default();
        let mut adopted = Vec::new();
        for (name, id) in races {
            let Some(domain) = found.iter().find(|d| d.id == id) else {
                pass.failures
                    .push(format!("domain {name} was created and removed meanwhile"));
                continue;
            };
            if domain.name != name {
                pass.conflicts.push(format!(
                    "domain {name} is already an alias of domain {} (id {id})",
                    domain.name
                ));
            } else if let Some(other) = foreign_marker(domain, marker) {
                pass.conflicts.push(format!(
                    "domain {name} (id {id}) was created meanwhile, marked for another tenant (`{other}`)"
                ));
            } else {
                pass.ids.insert(name.clone(), id.clone());
                if let Some((patch, action)) = correction(domain, marker, true) {
                    adopt.update.insert(id.clone(), patch);
                    adopted.push((id, action));
                }
            }
        }
        if adopt.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        batch.push(adopt.into_call(ObjectType::DOMAIN, "a")?);
        let result: SetResponse = self.client.execute(batch).await?.take("a")?;
        for (id, action) in adopted {
            match result.not_updated.get(&id) {
                None => pass.actions.push(action),
                Some(error) => pass.failures.push(format!(
                    "cannot adopt domain {} (id {id}): {error}",
                    action.object
                )),
            }
        }
        Ok(())
    }

    /// Observe → diff → act for `desired` (empty for cleanup).
    async fn run(
        &self,
        tenant: &Tenant,
        desired: &[String],
        mode: Mode,
    ) -> Result<Pass, SystemError> {
        let marker = marker(&tenant.slug);
        let known = Self::known_ids(tenant);
        let mut lookup = desired.to_vec();
        for name in Self::desired(tenant)? {
            if !lookup.contains(&name) {
                lookup.push(name);
            }
        }
        let observed = self
            .observe(&lookup, &marker, &known)
            .await
            .map_err(|e| upstream_error(e, Vec::new()))?;
        let mut plan = self.plan(desired, &marker, &known, &observed);
        let mut pass = Pass {
            ids: std::mem::take(&mut plan.ids),
            conflicts: std::mem::take(&mut plan.conflicts),
            ..Pass::default()
        };
        if !mode.may_write() {
            pass.actions = plan.actions.into_iter().map(|(_, a)| a).collect();
            return Ok(pass);
        }
        if !plan.set.is_empty() {
            if let Err(error) = self.apply(plan, &marker, &mut pass).await {
                return Err(upstream_error(error, pass.actions));
            }
        }
        Ok(pass)
    }
}

/// Reads the answers of the DKIM-then-domain destroy; returns the
/// destroys that succeeded.
fn settle_dkim_cleanup(
    responses: &mut Responses,
    names: &BTreeMap<Write, String>,
    pass: &mut Pass,
) -> Result<BTreeSet<Write>, StalwartError> {
    let keys: SetResponse = responses.take("kd")?;
    for (id, error) in &keys.not_destroyed {
        if error.kind != SetErrorKind::NotFound {
            pass.failures
                .push(format!("cannot delete DKIM key {id}: {error}"));
        }
    }
    let domains: SetResponse = responses.take("dd")?;
    let mut destroyed: BTreeSet<Write> = domains
        .destroyed
        .iter()
        .map(|id| Write::Destroy(id.clone()))
        .collect();
    for (id, error) in &domains.not_destroyed {
        let write = Write::Destroy(id.clone());
        if error.kind == SetErrorKind::NotFound {
            destroyed.insert(write);
        } else {
            let name = names.get(&write).cloned().unwrap_or_default();
            pass.failures
                .push(format!("cannot delete domain {name} (id {id}): {error}"));
        }
    }
    Ok(destroyed)
}

/// The dezky marker of another tenant on `domain`, if any.
fn foreign_marker<'a>(domain: &'a Domain, marker: &str) -> Option<&'a str> {
    domain
        .description
        .as_deref()
        .filter(|d| d.starts_with(MARKER_PREFIX) && *d != marker)
}

/// The minimal patch that makes `domain` ours and enabled, with its action.
fn correction(domain: &Domain, marker: &str, adopting: bool) -> Option<(DomainPatch, Action)> {
    let mut patch = DomainPatch::default();
    let kind = if adopting {
        ActionKind::Adopt
    } else if !domain.is_enabled {
        ActionKind::Restore
    } else {
        ActionKind::Update
    };
    let mut action = Action::new(kind, object(&domain.name));
    if !domain.is_enabled {
        patch.is_enabled = Some(true);
        action = action.field("isEnabled", false, true);
    }
    if domain.description.as_deref() != Some(marker) {
        patch.description = Some(marker.to_owned());
        action = action.field("description", domain.description.clone(), marker);
    }
    (!patch.is_empty()).then_some((patch, action))
}

fn object(name: &str) -> String {
    format!("domain {name}")
}

/// A failed request as a status error.
fn upstream_error(error: StalwartError, actions: Vec<Action>) -> SystemError {
    let reason = match &error {
        StalwartError::Unauthorized(_) => "Unauthorized",
        StalwartError::Forbidden(_) => "Forbidden",
        StalwartError::Method { error: e, .. } if e.kind == MethodErrorKind::Forbidden => {
            "Forbidden"
        }
        StalwartError::InvalidResponse(_) => "InvalidResponse",
        _ => "UpstreamError",
    };
    SystemError {
        actions,
        ..SystemError::new(reason, error.to_string())
    }
}

/// The status of a finished pass.
fn outcome(pass: Pass, desired: &[String], cleanup: bool) -> Result<Outcome, SystemError> {
    let fail =
        |reason: &str, messages: &[String], conflict: bool, actions: Vec<Action>| SystemError {
            conflict,
            actions,
            ..SystemError::new(reason, messages.join("; "))
        };
    if !pass.conflicts.is_empty() {
        return Err(fail("Conflict", &pass.conflicts, true, pass.actions));
    }
    if !pass.in_use.is_empty() {
        return Err(fail("DomainInUse", &pass.in_use, false, pass.actions));
    }
    if !pass.failures.is_empty() {
        return Err(fail("UpstreamError", &pass.failures, false, pass.actions));
    }
    let reason = [
        (ActionKind::Create, "Created"),
        (ActionKind::Adopt, "Adopted"),
        (ActionKind::Restore, "Restored"),
        (ActionKind::Delete, "Deleted"),
        (ActionKind::Update, "Updated"),
    ]
    .into_iter()
    .find(|(kind, _)| pass.actions.iter().any(|a| a.action == *kind))
    .map_or(if cleanup { "Deleted" } else { "InSync" }, |(_, reason)| {
        reason
    });
    let message = if !pass.actions.is_empty() {
        let done: Vec<String> = pass
            .actions
            .iter()
            .map(|a| format!("{:?} {}", a.action, a.object).to_lowercase())
            .collect();
        done.join(", ")
    } else if cleanup {
        "no domain of the tenant is left".to_owned()
    } else if desired.is_empty() {
        "no mail domain".to_owned()
    } else {
        format!("domains in sync: {}", desired.join(", "))
    };
    let ids: Vec<&str> = desired
        .iter()
        .filter_map(|name| pass.ids.get(name).map(String::as_str))
        .collect();
    let mut outcome = Outcome::ok(reason, message).with_actions(pass.actions);
    if !ids.is_empty() && !cleanup {
        outcome = outcome.with_external_id(ids.join(","));
    }
    Ok(outcome)
}

#[async_trait]
impl Reconciler for StalwartReconciler {
    fn system(&self) -> System {
        System::Stalwart
    }

    async fn reconcile(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let desired = Self::desired(tenant)?;
        let pass = self.run(tenant, &desired, mode).await?;
        outcome(pass, &desired, false)
    }

    async fn cleanup(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let pass = self.run(tenant, &[], mode).await?;
        outcome(pass, &[], true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dezky_core::model::{SystemState, SystemStatus};
    use dezky_core::Timestamp;
    use dezky_simulators::stalwart::{LinkKind, StalwartSim, StalwartSimOptions, DEFAULT_API_KEY};
    use dezky_upstream::stalwart::StalwartAuth;
    use serde_json::json;

    use super::*;

    fn tenant(slug: &str, domains: &[&str]) -> Tenant {
        Tenant {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Tenant::new(slug, slug, "team", Timestamp::now())
        }
    }

    fn reconciler(sim: &StalwartSim, auth: StalwartAuth) -> StalwartReconciler {
        let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("http client");
        StalwartReconciler::new(
            StalwartClient::new(http, &sim.url(), auth),
            StalwartSettings::default(),
        )
    }

    async fn setup() -> (StalwartSim, StalwartReconciler) {
        let sim = StalwartSim::start(StalwartSimOptions::default())
            .await
            .expect("simulator starts");
        let reconciler = reconciler(&sim, StalwartAuth::Bearer(DEFAULT_API_KEY.into()));
        (sim, reconciler)
    }

    /// One applied pass; records `externalId` in the tenant like the runtime.
    async fn pass(r: &StalwartReconciler, tenant: &mut Tenant) -> Result<Outcome, SystemError> {
        let result = r.reconcile(tenant, Mode::Apply).await;
        if let Ok(outcome) = &result {
            tenant.status.systems.insert(
                System::Stalwart,
                SystemStatus {
                    state: outcome.state,
                    reason: outcome.reason.clone(),
                    external_id: outcome.external_id.clone(),
                    ..SystemStatus::default()
                },
            );
        }
        result
    }

    /// Requests and `/set` method calls the simulator received while `f` ran.
    async fn cost<T>(
        sim: &StalwartSim,
        f: impl std::future::Future<Output = T>,
    ) -> (T, u64, usize) {
        sim.recorder().clear();
        let before = sim.faults().requests();
        let result = f.await;
        let sets = sim
            .recorder()
            .requests()
            .iter()
            .filter_map(|r| r.body.as_ref()?.get("methodCalls")?.as_array().cloned())
            .flatten()
            .filter(|call| call[0].as_str().is_some_and(|n| n.ends_with("/set")))
            .count();
        (result, sim.faults().requests() - before, sets)
    }

    fn kinds(actions: &[Action]) -> Vec<ActionKind> {
        actions.iter().map(|a| a.action).collect()
    }

    #[tokio::test]
    async fn creates_each_domain_marked_with_explicit_manual_management() {
        let (sim, r) = setup().await;
        let mut acme = tenant("acme", &["acme.test", "mail.acme.test"]);
        let outcome = pass(&r, &mut acme).await.unwrap();
        assert_eq!(
            (outcome.state, outcome.reason.as_str()),
            (SystemState::Ok, "Created")
        );
        assert_eq!(kinds(&outcome.actions), vec![ActionKind::Create; 2]);
        let a = sim.domain_named("acme.test").unwrap();
        let b = sim.domain_named("mail.acme.test").unwrap();
        assert_eq!(outcome.external_id, Some(format!("{},{}", a.id, b.id)));
        for d in [&a, &b] {
            assert_eq!(d.description.as_deref(), Some("dezky tenant acme"));
            assert!(d.is_enabled);
            for m in [
                &d.certificate_management,
                &d.dns_management,
                &d.dkim_management,
            ] {
                assert_eq!(m, &json!({"@type": "Manual"}));
            }
        }
        assert!(sim.dkim_signatures().is_empty(), "manual DKIM: no keys");
    }

    #[tokio::test]
    async fn a_converged_tenant_costs_one_request_and_no_write() {
        let (sim, r) = setup().await;
        let mut acme = tenant("acme", &["a.test", "b.test", "c.test"]);
        pass(&r, &mut acme).await.unwrap();
        let (outcome, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
        let outcome = outcome.unwrap();
        assert_eq!((outcome.reason.as_str(), requests, sets), ("InSync", 1, 0));
        assert!(outcome.actions.is_empty());
    }

    #[tokio::test]
    async fn lookups_beyond_sixteen_calls_are_split_across_requests() {
        let (sim, r) = setup().await;
        // Marker lookup (2 calls) + known ids (1) + 2 per domain.
        for (count, expected_requests) in [(6, 1), (10, 2)] {
            let names: Vec<String> = (0..count).map(|i| format!("d{i}.test")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut big = tenant(&format!("big{count}"), &refs);
            pass(&r, &mut big).await.unwrap();
            let (outcome, requests, sets) = cost(&sim, pass(&r, &mut big)).await;
            assert_eq!(
                (outcome.unwrap().reason.as_str(), requests, sets),
                ("InSync", expected_requests, 0),
                "{count} domains"
            );
            big.domains.clear();
            pass(&r, &mut big).await.unwrap();
        }
        assert!(sim.domains().is_empty());
    }

    #[tokio::test]
    async fn an_unmarked_domain_is_adopted_not_recreated() {
        let (sim, r) = setup().await;
        let existing = sim.create_domain("acme.test", None).unwrap();
        let mut acme = tenant("acme", &["acme.test"]);
        let outcome = pass(&r, &mut acme).await.unwrap();
        assert_eq!(outcome.reason, "Adopted");
        assert_eq!(
            outcome.actions,
            vec![Action::new(ActionKind::Adopt, "domain acme.test").field(
                "description",
                serde_json::Value::Null,
                "dezky tenant acme"
            )]
        );
        let adopted = sim.domain(&existing.id).unwrap();
        assert_eq!(adopted.description.as_deref(), Some("dezky tenant acme"));
        assert_eq!(
            adopted.dkim_management, existing.dkim_management,
            "not ours to change"
        );
        assert_eq!(outcome.external_id, Some(existing.id));
        assert_eq!(sim.domains().len(), 1);
    }

    #[tokio::test]
    async fn a_domain_marked_for_another_tenant_is_a_conflict_and_left_alone() {
        let (sim, r) = setup().await;
        let theirs = sim
            .create_domain("shared.test", Some("dezky tenant other"))
            .unwrap();
        let theirs = sim.set_enabled(&theirs.id, false).unwrap();
        let mut acme = tenant("acme", &["shared.test", "acme.test"]);
        let error = pass(&r, &mut acme).await.unwrap_err();
        assert!(error.conflict);
        assert_eq!(error.reason, "Conflict");
        assert!(
            error.message.contains("dezky tenant other"),
            "{}",
            error.message
        );
        assert_eq!(sim.domain(&theirs.id), Some(theirs));
        assert_eq!(
            kinds(&error.actions),
            vec![ActionKind::Create],
            "others still converge"
        );
        assert!(sim.domain_named("acme.test").is_some());
    }

    #[tokio::test]
    async fn every_drift_kind_is_healed_with_one_write_request() {
        let (sim, r) = setup().await;
        let mut acme = tenant("acme", &["gone.test", "off.test", "renamed.test"]);
        pass(&r, &mut acme).await.unwrap();
        let gone = sim.domain_named("gone.test").unwrap();
        let off = sim.domain_named("off.test").unwrap();
        let renamed = sim.domain_named("renamed.test").unwrap();
        sim.destroy_domain(&gone.id).unwrap();
        sim.set_enabled(&off.id, false).unwrap();
        sim.set_description(&renamed.id, Some("hand edited"))
            .unwrap();

        let (outcome, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
        let outcome = outcome.unwrap();
        assert_eq!((requests, sets), (2, 1), "one lookup, one x:Domain/set");
        assert_eq!(outcome.reason, "Created");
        let mut done = kinds(&outcome.actions);
        done.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(
            done,
            vec![ActionKind::Create, ActionKind::Restore, ActionKind::Update]
        );
        let off_fix = outcome
            .actions
            .iter()
            .find(|a| a.object == "domain off.test")
            .unwrap();
        assert_eq!(
            off_fix.fields.keys().collect::<Vec<_>>(),
            vec!["isEnabled"],
            "minimal patch"
        );
        assert!(sim.domain(&off.id).unwrap().is_enabled);
        assert_eq!(
            sim.domain(&renamed.id).unwrap().description.as_deref(),
            Some("dezky tenant acme")
        );
        let recreated = sim.domain_named("gone.test").unwrap();
        assert_ne!(recreated.id, gone.id);
        assert!(outcome.external_id.unwrap().contains(&recreated.id));

        let (again, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
        assert_eq!(
            (again.unwrap().reason.as_str(), requests, sets),
            ("InSync", 1, 0)
        );
    }

    #[tokio::test]
    async fn domains_removed_from_the_spec_are_destroyed_and_others_kept() {
        let (sim, r) = setup().await;
        let foreign = sim
            .create_domain("foreign.test", Some("someone's"))
            .unwrap();
        let mut acme = tenant("acme", &["keep.test", "drop.test"]);
        pass(&r, &mut acme).await.unwrap();
        acme.domains = vec!["keep.test".into()];
        let outcome = pass(&r, &mut acme).await.unwrap();
        assert_eq!(outcome.reason, "Deleted");
        assert_eq!(
            outcome.actions,
            vec![Action::new(ActionKind::Delete, "domain drop.test")]
        );
        assert!(sim.domain_named("drop.test").is_none());
        assert!(sim.domain_named("keep.test").is_some());
        assert!(sim.domain(&foreign.id).is_some());
    }

    #[tokio::test]
    async fn a_domain_still_used_by_accounts_is_not_destroyed() {
        let (sim, r) = setup().await;
        let mut acme = tenant("acme", &["used.test"]);
        pass(&r, &mut acme).await.unwrap();
        let used = sim.domain_named("used.test").unwrap();
        sim.add_dkim_signature(&used.id).unwrap();
        let account = sim.link(LinkKind::Account, &used.id).unwrap();
        acme.domains = vec!["new.test".into()];

        let error = pass(&r, &mut acme).await.unwrap_err();
        assert_eq!(error.reason, "DomainInUse");
        assert!(
            error.message.contains(&format!("Account {account}")),
            "{}",
            error.message
        );
        assert!(
            !error.message.contains("DkimSignature"),
            "{}",
            error.message
        );
        assert_eq!(kinds(&error.actions), vec![ActionKind::Create]);
        assert!(sim.domain(&used.id).is_some());
        assert_eq!(sim.dkim_signatures().len(), 1, "nothing destroyed");

        sim.unlink(&account);
        let outcome = pass(&r, &mut acme).await.unwrap();
        assert_eq!(kinds(&outcome.actions), vec![ActionKind::Delete]);
        assert!(sim.domain(&used.id).is_none());
        assert!(sim.dkim_signatures().is_empty());
    }

    #[tokio::test]
    async fn dkim_keys_go_with_their_domain_in_the_same_request() {
        let (sim, r) = setup().await;
        sim.create_domain("auto.test", None).unwrap();
        assert_eq!(sim.dkim_signatures().len(), 2);
        let mut acme = tenant("acme", &["auto.test"]);
        assert_eq!(pass(&r, &mut acme).await.unwrap().reason, "Adopted");
        acme.domains.clear();
        let (outcome, requests, _) = cost(&sim, pass(&r, &mut acme)).await;
        let outcome = outcome.unwrap();
        assert_eq!(kinds(&outcome.actions), vec![ActionKind::Delete]);
        assert_eq!(
            requests, 3,
            "lookup, destroy refused, keys + domain destroyed"
        );
        assert!(sim.domains().is_empty());
        assert!(sim.dkim_signatures().is_empty());
        assert_eq!(outcome.external_id, None);
    }

    #[tokio::test]
    async fn idn_domains_are_normalised_like_the_server_with_basic_auth() {
        let sim = StalwartSim::start(StalwartSimOptions {
            api_key: None,
            basic: Some(("admin".into(), "secret".into())),
        })
        .await
        .unwrap();
        let r = reconciler(
            &sim,
            StalwartAuth::Basic {
                username: "admin".into(),
                password: "secret".into(),
            },
        );
        let mut books = tenant("books", &[" Bücher.DE "]);
        assert_eq!(pass(&r, &mut books).await.unwrap().reason, "Created");
        assert!(sim.domain_named("xn--bcher-kva.de").is_some());
        let (outcome, requests, sets) = cost(&sim, pass(&r, &mut books)).await;
        assert_eq!(
            (outcome.unwrap().reason.as_str(), requests, sets),
            ("InSync", 1, 0)
        );
    }

    #[tokio::test]
    async fn an_outage_is_an_upstream_error_and_the_next_pass_recovers() {
        let (sim, r) = setup().await;
        let mut acme = tenant("acme", &["acme.test"]);
        sim.faults().set_outage(true);
        let error = pass(&r, &mut acme).await.unwrap_err();
        assert_eq!(error.reason, "UpstreamError");
        assert!(error.message.contains("503"), "{}", error.message);
        sim.faults().clear();
        assert_eq!(pass(&r, &mut acme).await.unwrap().reason, "Created");
    }

    #[tokio::test]
    async fn bad_credentials_and_missing_permissions_are_typed() {
        let (sim, good) = setup().await;
        let bad = reconciler(&sim, StalwartAuth::Bearer("API_wrong".into()));
        let acme = tenant("acme", &["acme.test"]);
        let error = bad.reconcile(&acme, Mode::Apply).await.unwrap_err();
        assert_eq!(error.reason, "Unauthorized");
        sim.revoke_permissions(true);
        assert_eq!(
            good.reconcile(&acme, Mode::Apply).await.unwrap_err().reason,
            "Forbidden"
        );
        sim.revoke_permissions(false);
        sim.deny_method("x:Domain/set", true);
        let error = good.reconcile(&acme, Mode::Apply).await.unwrap_err();
        assert_eq!(error.reason, "Forbidden");
        assert!(error.message.contains("x:Domain/set"), "{}", error.message);
        assert!(sim.domains().is_empty());
    }

    #[tokio::test]
    async fn tenant_deletion_destroys_every_marked_domain_and_nothing_else() {
        let (sim, r) = setup().await;
        let mut acme = tenant("acme", &["a.test", "b.test"]);
        pass(&r, &mut acme).await.unwrap();
        let unrelated = sim
            .create_domain("c.test", Some("dezky tenant other"))
            .unwrap();
        acme.domains.push("c.test".into());
        let outcome = r.cleanup(&acme, Mode::Apply).await.unwrap();
        assert_eq!(
            (outcome.state, outcome.reason.as_str()),
            (SystemState::Ok, "Deleted")
        );
        assert_eq!(kinds(&outcome.actions), vec![ActionKind::Delete; 2]);
        assert_eq!(sim.domains(), vec![unrelated]);
        let again = r.cleanup(&acme, Mode::Apply).await.unwrap();
        assert!(again.actions.is_empty());
        assert_eq!(again.message, "no domain of the tenant is left");
    }

    #[tokio::test]
    async fn dry_run_plans_without_writing() {
        let (sim, r) = setup().await;
        let existing = sim
            .create_domain("old.test", Some("dezky tenant acme"))
            .unwrap();
        let acme = tenant("acme", &["new.test"]);
        let (outcome, requests, sets) = cost(&sim, r.reconcile(&acme, Mode::DryRun)).await;
        let outcome = outcome.unwrap();
        assert_eq!((requests, sets), (1, 0));
        assert_eq!(
            kinds(&outcome.actions),
            vec![ActionKind::Create, ActionKind::Delete]
        );
        assert_eq!(sim.domains(), vec![existing]);
        let (cleanup, _, sets) = cost(&sim, r.cleanup(&acme, Mode::DryRun)).await;
        assert_eq!(
            (kinds(&cleanup.unwrap().actions), sets),
            (vec![ActionKind::Delete], 0)
        );
    }

    #[tokio::test]
    async fn a_desired_domain_used_as_an_alias_elsewhere_is_a_conflict() {
        let (sim, r) = setup().await;
        let owner = sim
            .create_domain_with(json!({"name": "main.test", "aliases": {"alias.test": true}}))
            .unwrap();
        let mut acme = tenant("acme", &["alias.test"]);
        let error = pass(&r, &mut acme).await.unwrap_err();
        assert!(error.conflict);
        assert!(
            error.message.contains("alias of domain main.test"),
            "{}",
            error.message
        );
        assert_eq!(sim.domains(), vec![owner]);
    }

    /// Checks one recorded request against `shared/upstream/stalwart.md`.
    fn assert_follows_contract(request: &dezky_simulators::recording::RecordedRequest) {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/jmap")
        );
        let body = request.body.as_ref().expect("JSON body");
        assert_eq!(
            body["using"],
            json!(["urn:ietf:params:jmap:core", "urn:stalwart:jmap"])
        );
        let calls = body["methodCalls"].as_array().expect("method calls");
        assert!(
            !calls.is_empty() && calls.len() <= 16,
            "{} calls",
            calls.len()
        );
        let mut names = BTreeMap::new();
        for call in calls {
            let (name, args, id) = (
                call[0].as_str().unwrap(),
                &call[1],
                call[2].as_str().unwrap(),
            );
            assert!(
                [
                    "x:Domain/get",
                    "x:Domain/query",
                    "x:Domain/set",
                    "x:DkimSignature/set"
                ]
                .contains(&name),
                "{name}"
            );
            for (key, value) in args.as_object().unwrap() {
                if key.starts_with('#') {
                    let target = value["resultOf"].as_str().unwrap();
                    assert_eq!(names.get(target), value["name"].as_str().as_ref(), "{call}");
                    assert!(!value["name"].as_str().unwrap().ends_with("/set"), "{call}");
                }
            }
            if name == "x:Domain/get" {
                let properties = args["properties"].as_array().expect("explicit properties");
                assert!(!properties.contains(&json!("dnsZoneFile")));
            }
            if name == "x:Domain/query" {
                for key in args["filter"].as_object().unwrap().keys() {
                    assert!(["name", "text"].contains(&key.as_str()), "{key}");
                }
            }
            if name == "x:Domain/set" {
                for new in args["create"]
                    .as_object()
                    .into_iter()
                    .flat_map(|c| c.values())
                {
                    for key in [
                        "name",
                        "isEnabled",
                        "description",
                        "certificateManagement",
                        "dnsManagement",
                        "dkimManagement",
                    ] {
                        assert!(new.get(key).is_some(), "create without {key}: {new}");
                    }
                }
                for patch in args["update"]
                    .as_object()
                    .into_iter()
                    .flat_map(|u| u.values())
                {
                    for key in patch.as_object().unwrap().keys() {
                        assert!(
                            ["isEnabled", "description"].contains(&key.as_str()),
                            "{key}"
                        );
                    }
                }
            }
            names.insert(id, name);
        }
    }

    #[tokio::test]
    async fn every_request_follows_the_stalwart_contract() {
        let (sim, r) = setup().await;
        sim.create_domain("adopt.test", None).unwrap();
        let mut acme = tenant("acme", &["adopt.test", "new.test", "off.test"]);
        pass(&r, &mut acme).await.unwrap();
        let off = sim.domain_named("off.test").unwrap();
        sim.set_enabled(&off.id, false).unwrap();
        sim.set_description(&off.id, Some("edited")).unwrap();
        pass(&r, &mut acme).await.unwrap();
        acme.domains = vec!["new.test".into()];
        pass(&r, &mut acme).await.unwrap();
        r.cleanup(&acme, Mode::Apply).await.unwrap();
        assert!(sim.domains().is_empty());
        let requests = sim.recorder().requests();
        assert!(requests.len() >= 7);
        requests.iter().for_each(assert_follows_contract);
    }
}
