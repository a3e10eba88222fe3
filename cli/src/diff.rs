//! What applying a manifest would change in MongoDB, computed on the
//! client from the tenant as the API returns it (a dry run writes
//! nothing): create, update with the fields that differ, or unchanged.
//! Domains are compared the way the API stores them (normalised like
//! Stalwart, duplicates dropped), so `Acme.TEST` equals `acme.test`.

use dezky_core::validate::normalize_domain;
use serde_json::{json, Value};

use crate::manifest::TenantSpec;
use crate::view::TenantView;

/// The change a manifest makes to its tenant's desired state.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The tenant does not exist yet.
    Create,
    /// These desired fields differ.
    Update(Vec<FieldChange>),
    /// Applying it again changes nothing (no generation bump).
    Unchanged,
}

/// One desired field, as recorded and as the manifest wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// The API's (and the manifest's `spec`) name of the field.
    pub field: &'static str,
    pub from: Value,
    pub to: Value,
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.from, self.to)
    }
}

/// The change `spec` makes to `current` (`None`: no such tenant).
pub fn diff(spec: &TenantSpec, current: Option<&TenantView>) -> Change {
    let Some(current) = current else {
        return Change::Create;
    };
    let desired = [
        ("name", json!(spec.name), json!(current.name)),
        ("plan", json!(spec.plan), json!(current.plan)),
        (
            "domains",
            json!(normalized(&spec.domains)),
            json!(current.domains),
        ),
        (
            "billingInfo",
            json!(spec.billing_info),
            json!(current.billing_info),
        ),
        (
            "deletionPolicy",
            json!(spec.deletion_policy),
            json!(current.deletion_policy),
        ),
        ("paused", json!(spec.paused), json!(current.paused)),
    ];
    let changes: Vec<FieldChange> = desired
        .into_iter()
        .filter(|(_, to, from)| to != from)
        .map(|(field, to, from)| FieldChange { field, from, to })
        .collect();
    if changes.is_empty() {
        Change::Unchanged
    } else {
        Change::Update(changes)
    }
}

/// Domains as the API records them (unparseable ones kept as written: the
/// manifest check has rejected those already).
fn normalized(domains: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(domains.len());
    for domain in domains {
        let domain = normalize_domain(domain).unwrap_or_else(|| domain.clone());
        if !out.contains(&domain) {
            out.push(domain);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::parse;
    use dezky_core::model::DeletionPolicy;

    fn current() -> TenantView {
        parse(
            &json!({"slug": "acme", "name": "Acme", "plan": "team", "domains": ["acme.test"],
                    "billingInfo": {"email": "b@acme.test"}, "deletionPolicy": "delete",
                    "paused": false, "generation": 3, "createdAt": "2026-01-01T00:00:00Z"}),
            "test",
        )
        .unwrap()
    }

    fn spec() -> TenantSpec {
        TenantSpec {
            name: "Acme".into(),
            plan: "team".into(),
            domains: vec!["Acme.TEST".into(), "acme.test".into()],
            billing_info: Some(dezky_core::model::BillingInfo {
                email: Some("b@acme.test".into()),
            }),
            deletion_policy: DeletionPolicy::Delete,
            paused: false,
        }
    }

    #[test]
    fn a_missing_tenant_is_created_and_an_equal_one_unchanged() {
        assert_eq!(diff(&spec(), None), Change::Create);
        assert_eq!(
            diff(&spec(), Some(&current())),
            Change::Unchanged,
            "domains compare normalised and deduplicated"
        );
    }

    #[test]
    fn only_the_fields_that_differ_are_listed() {
        let mut wanted = spec();
        wanted.plan = "business".into();
        wanted.domains.push("shop.acme.test".into());
        wanted.billing_info = None;
        wanted.paused = true;
        let Change::Update(changes) = diff(&wanted, Some(&current())) else {
            panic!("an update");
        };
        let fields: Vec<&str> = changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["plan", "domains", "billingInfo", "paused"]);
        assert_eq!(changes[0].to_string(), r#"plan: "team" -> "business""#);
        assert_eq!(changes[1].to, json!(["acme.test", "shop.acme.test"]));
        assert_eq!(changes[2].to, json!(null));
    }
}
