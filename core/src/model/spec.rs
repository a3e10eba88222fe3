//! A tenant's whole desired spec without its slug: the body of
//! `PUT /tenants/{slug}` and the `spec` of a tenant manifest, defined once
//! for the API and the CLI. Fields left out take the defaults a
//! replacement must use (no domains, no billing info, `delete`, not paused).

use serde::{Deserialize, Serialize};

use super::{BillingInfo, DeletionPolicy};

/// The desired fields of a tenant (the slug is the path's or the manifest's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Acme Inc", "plan": "team",
    "domains": ["acme.example.com"], "billingInfo": {"email": "billing@acme.example.com"},
    "deletionPolicy": "delete", "paused": false})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    /// 1..100 printable characters.
    pub name: String,
    /// One of the configured plan names (`PLAN_QUOTAS` keys).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Plan))]
    pub plan: String,
    /// Mail domains; each belongs to at most one tenant. Absent = none.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Absent or `null` = none.
    #[serde(default)]
    pub billing_info: Option<BillingInfo>,
    /// `delete` (default) or `orphan`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Stop all upstream writes for this tenant (default `false`).
    #[serde(default)]
    pub paused: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_take_the_defaults_a_replacement_uses() {
        let spec: TenantSpec =
            serde_json::from_value(serde_json::json!({"name": "Acme", "plan": "team"}))
                .expect("minimal spec");
        assert!(spec.domains.is_empty());
        assert_eq!(spec.billing_info, None);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert!(!spec.paused);
    }

    #[test]
    fn an_unknown_field_is_refused_not_ignored() {
        let refused = serde_json::from_value::<TenantSpec>(
            serde_json::json!({"name": "Acme", "plan": "team", "domain": ["a.test"]}),
        );
        assert!(refused.is_err_and(|e| e.to_string().contains("domain")));
    }
}
