//! `x:Domain`: the typed shapes the provisioner reads and writes, and the
//! method calls that look domains up (by name, by text, by id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::jmap::{result_ref, MethodCall, ObjectType, SetRequest};

/// Properties the provisioner reads (never `dnsZoneFile`: it is recomputed
/// on every get, so it would look like drift).
pub const DOMAIN_PROPERTIES: [&str; 5] = [
    "name",
    "aliases",
    "isEnabled",
    "description",
    "memberTenantId",
];

/// A domain as read with [`DOMAIN_PROPERTIES`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    /// Stored normalised (lowercase ASCII, IDN as punycode).
    pub name: String,
    #[serde(default)]
    pub aliases: Option<BTreeMap<String, bool>>,
    #[serde(default = "enabled_by_default")]
    pub is_enabled: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub member_tenant_id: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// How Stalwart manages a domain's certificates, DNS records or DKIM keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum Management {
    /// Nothing is done automatically.
    #[default]
    Manual,
    /// The server manages it (for DKIM: creates `DkimSignature` objects
    /// linked to the domain).
    Automatic,
}

impl std::str::FromStr for Management {
    type Err = String;

    /// `manual` or `automatic` (any case), as configuration gives it.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "manual" => Ok(Management::Manual),
            "automatic" => Ok(Management::Automatic),
            other => Err(format!("`{other}` is not `manual` or `automatic`")),
        }
    }
}

/// A domain to create. The management fields are always sent: Stalwart's
/// default for `dkimManagement` is `Automatic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDomain {
    pub name: String,
    pub is_enabled: bool,
    pub description: Option<String>,
    pub certificate_management: Management,
    pub dns_management: Management,
    pub dkim_management: Management,
}

/// A minimal update: only the fields that are set are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl DomainPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &DomainPatch::default()
    }
}

/// Arguments of `x:Domain/set`.
pub type DomainSet = SetRequest<NewDomain, DomainPatch>;

/// Arguments of `x:DkimSignature/set` (the provisioner only destroys).
pub type DkimSignatureSet = SetRequest<serde_json::Value, serde_json::Value>;

/// `x:Domain/query` with `filter` (answered as `<id>q`) and the
/// `x:Domain/get` of its ids (answered as `id`): one group, one request.
pub fn query_and_get(filter: serde_json::Value, id: &str) -> Vec<MethodCall> {
    query_args_and_get(json!({ "filter": filter }), id)
}

/// One page of every domain: `x:Domain/query` from `position` (at most
/// `limit` ids, with the total) and the `x:Domain/get` of those ids.
pub fn page(position: usize, limit: usize, id: &str) -> Vec<MethodCall> {
    query_args_and_get(
        json!({ "position": position, "limit": limit, "calculateTotal": true }),
        id,
    )
}

fn query_args_and_get(args: serde_json::Value, id: &str) -> Vec<MethodCall> {
    let query_id = format!("{id}q");
    let query = ObjectType::DOMAIN.query();
    vec![
        MethodCall::new(&query, args, &query_id),
        MethodCall::new(
            ObjectType::DOMAIN.get(),
            json!({
                "#ids": result_ref(&query_id, &query, "/ids"),
                "properties": DOMAIN_PROPERTIES,
            }),
            id,
        ),
    ]
}

/// Looks a domain up by its exact, normalised `name`.
pub fn by_name(name: &str, id: &str) -> Vec<MethodCall> {
    query_and_get(json!({ "name": name }), id)
}

/// Looks domains up by free text (name, description).
pub fn by_text(text: &str, id: &str) -> Vec<MethodCall> {
    query_and_get(json!({ "text": text }), id)
}

/// `x:Domain/get` of known ids.
pub fn get(ids: &[String], id: &str) -> MethodCall {
    MethodCall::new(
        ObjectType::DOMAIN.get(),
        json!({ "ids": ids, "properties": DOMAIN_PROPERTIES }),
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_domains_always_carry_explicit_management() {
        let value = serde_json::to_value(NewDomain {
            name: "acme.test".into(),
            is_enabled: true,
            description: Some("dezky tenant acme".into()),
            certificate_management: Management::Manual,
            dns_management: Management::Manual,
            dkim_management: Management::Manual,
        })
        .unwrap();
        assert_eq!(value["dkimManagement"], json!({"@type": "Manual"}));
        assert_eq!(value["isEnabled"], json!(true));
    }

    #[test]
    fn management_parses_from_configuration() {
        assert_eq!("Automatic".parse(), Ok(Management::Automatic));
        assert_eq!(" manual ".parse(), Ok(Management::Manual));
        assert!("auto".parse::<Management>().is_err());
    }

    #[test]
    fn patches_send_only_set_fields() {
        let patch = DomainPatch {
            is_enabled: Some(true),
            ..DomainPatch::default()
        };
        assert_eq!(
            serde_json::to_value(patch).unwrap(),
            json!({"isEnabled": true})
        );
    }

    #[test]
    fn lookups_reference_the_query_ids() {
        let calls = by_name("acme.test", "n0");
        assert_eq!(calls[0].id, "n0q");
        assert_eq!(calls[1].args["#ids"]["resultOf"], "n0q");
        assert_eq!(calls[1].args["#ids"]["path"], "/ids");
    }
}
