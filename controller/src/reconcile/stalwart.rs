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
//! one `x:Domain/set`). A resync is answered from the snapshot of every
//! domain on the server (listed 4,000 a request) when the same diff finds
//! nothing to do there; otherwise it runs the direct pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dezky_core::model::{System, Tenant};
use dezky_core::validate::normalize_domain;
use dezky_upstream::stalwart::{
    by_name, by_text, get_domains, Batch, DkimSignatureSet, Domain, DomainPatch, DomainSet,
    GetResponse, Management, MethodErrorKind, NewDomain, ObjectType, Responses, SetErrorKind,
    SetResponse, StalwartClient, StalwartError,
};

use super::{Action, ActionKind, Mode, Outcome, Reconciler, SystemError};
use crate::snapshot::{Entry, Snapshot};

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
    /// Every domain on the server, by name, for resyncs.
    snapshot: Arc<Snapshot>,
}

/// The snapshot entry of a domain: keyed by its name, owned by the marker
/// in its description, fingerprinted by what the plan reads of it.
fn entry(domain: &Domain) -> Entry {
    let owner = domain
        .description
        .as_deref()
        .filter(|d| d.starts_with(MARKER_PREFIX));
    Entry::new(
        &domain.name,
        owner,
        (&domain.id, domain.is_enabled, &domain.description),
    )
}

/// A domain as an applied pass leaves it: enabled and marked.
fn converged(name: &str, id: &str, marker: &str) -> Domain {
    Domain {
        id: id.to_owned(),
        name: name.to_owned(),
        aliases: None,
        is_enabled: true,
        description: Some(marker.to_owned()),
        member_tenant_id: None,
    }
}

impl StalwartReconciler {
    /// A reconciler talking to Stalwart through `client`; resyncs use a
    /// snapshot listed at most every `snapshot_age`.
    pub fn new(client: StalwartClient, settings: StalwartSettings, snapshot_age: Duration) -> Self {
        StalwartReconciler {
            client,
            settings,
            snapshot: Arc::new(Snapshot::new("stalwart", snapshot_age)),
        }
    }

    /// The resync answer from the snapshot: "in sync" only when the domains
    /// marked for the tenant are exactly the desired ones, each enabled at
    /// its stored id; `None` sends the pass upstream.
    async fn answer_from_snapshot(&self, tenant: &Tenant, desired: &[String]) -> Option<Outcome> {
        let marker = marker(&tenant.slug);
        let known = Self::known_ids(tenant);
        if known.len() != desired.len() {
            return None;
        }
        let ids: BTreeMap<String, String> = desired.iter().cloned().zip(known).collect();
        let expected: Vec<Entry> = ids
            .iter()
            .map(|(name, id)| entry(&converged(name, id, &marker)))
            .collect();
        let in_sync = self
            .snapshot
            .lookup(
                || self.client.map_domains(|domain| entry(&domain)),
                |view| view.holds_exactly(&marker, &expected),
            )
            .await?;
        if !in_sync {
            return None;
        }
        let pass = Pass {
            ids,
            ..Pass::default()
        };
        outcome(pass, desired, false).ok()
    }

    /// Records what a successful applied pass left upstream: each desired
    /// domain enabled and marked, no other domain marked for the tenant.
    fn remember(&self, tenant: &Tenant, ids: &BTreeMap<String, String>) {
        let marker = marker(&tenant.slug);
        let entries = ids
            .iter()
            .map(|(name, id)| entry(&converged(name, id, &marker)))
            .collect();
        self.snapshot.replace_owned(&marker, entries);
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
        // The first pass that may create: no domain of ours exists yet, and
        // Stalwart refuses a second domain with a name, so the creates go
        // first (one request) and a refused one is looked up and adopted (or
        // is a conflict) like a domain created meanwhile.
        let observed = if mode.may_write() && tenant.first_pass_for(System::Stalwart) {
            Observed::default()
        } else {
            self.observe(&lookup, &marker, &known)
                .await
                .map_err(|e| upstream_error(e, Vec::new()))?
        };
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
        let ids = pass.ids.clone();
        let outcome = outcome(pass, &desired, false)?;
        if mode.may_write() {
            self.remember(tenant, &ids);
        }
        Ok(outcome)
    }

    async fn resync(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let desired = Self::desired(tenant)?;
        match self.answer_from_snapshot(tenant, &desired).await {
            Some(outcome) => Ok(outcome),
            None => self.reconcile(tenant, mode).await,
        }
    }

    async fn cleanup(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let pass = self.run(tenant, &[], mode).await?;
        let outcome = outcome(pass, &[], true)?;
        if mode.may_write() {
            self.remember(tenant, &BTreeMap::new());
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod resync_tests;
#[cfg(test)]
mod tests;
