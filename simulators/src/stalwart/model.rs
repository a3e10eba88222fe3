//! The simulated server's objects and their property rules: `Domain`
//! (normalised names and aliases, server-set `createdAt`/`dnsZoneFile`),
//! `DkimSignature` (linked to its domain) and directory principals
//! (accounts, groups, lists) that use a domain. The rules that span objects
//! (unique names, links blocking destruction) live in
//! [`super::directory::Directory`], which every change goes through.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{json, Map, Value};

/// Properties the server sets itself; clients sending them get `invalidPatch`.
const SERVER_SET: [&str; 3] = ["id", "createdAt", "dnsZoneFile"];

/// One `x:Domain`.
#[derive(Clone, Debug, PartialEq)]
pub struct SimDomain {
    pub id: String,
    /// Normalised: lowercase ASCII, IDN as punycode.
    pub name: String,
    pub aliases: BTreeSet<String>,
    pub is_enabled: bool,
    pub description: Option<String>,
    pub certificate_management: Value,
    pub dns_management: Value,
    pub dkim_management: Value,
    pub sub_addressing: Value,
    pub member_tenant_id: Option<String>,
    pub directory_id: Option<String>,
    /// `catchAllAddress`, `reportAddressUri`, `allowRelaying`, `logo`.
    pub other: Map<String, Value>,
    pub created_at: String,
}

impl SimDomain {
    pub(super) fn new(id: String) -> Self {
        SimDomain {
            id,
            name: String::new(),
            aliases: BTreeSet::new(),
            is_enabled: true,
            description: None,
            certificate_management: json!({"@type": "Manual"}),
            dns_management: json!({"@type": "Manual"}),
            dkim_management: json!({"@type": "Automatic"}),
            sub_addressing: json!({"@type": "Enabled"}),
            member_tenant_id: None,
            directory_id: None,
            other: Map::new(),
            created_at: dezky_core::Timestamp::now().to_string(),
        }
    }

    /// Whether DKIM keys are managed (created) by the server.
    pub fn dkim_is_automatic(&self) -> bool {
        self.dkim_management["@type"] == "Automatic"
    }

    /// The full JMAP representation; `serial` varies `dnsZoneFile`, which
    /// the real server recomputes on every get.
    pub fn to_json(&self, serial: u64) -> Value {
        let mut object = json!({
            "id": self.id,
            "name": self.name,
            "aliases": self.aliases.iter().map(|a| (a.clone(), Value::Bool(true))).collect::<Map<_, _>>(),
            "isEnabled": self.is_enabled,
            "description": self.description,
            "certificateManagement": self.certificate_management,
            "dnsManagement": self.dns_management,
            "dkimManagement": self.dkim_management,
            "subAddressing": self.sub_addressing,
            "memberTenantId": self.member_tenant_id,
            "directoryId": self.directory_id,
            "catchAllAddress": null,
            "reportAddressUri": null,
            "allowRelaying": false,
            "logo": null,
            "createdAt": self.created_at,
            "dnsZoneFile": format!(
                "$ORIGIN {name}.\n@ IN SOA ns.{name}. hostmaster.{name}. {serial} 3600 600 604800 300\n@ IN MX 10 mail.{name}.\n",
                name = self.name
            ),
        });
        if let Some(map) = object.as_object_mut() {
            map.extend(self.other.clone());
        }
        object
    }

    /// Every unique key of this domain: its name and aliases.
    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.name).chain(self.aliases.iter())
    }
}

/// Every property a domain has (what `/get` may ask for).
pub const DOMAIN_PROPERTIES: [&str; 16] = [
    "id",
    "name",
    "aliases",
    "isEnabled",
    "description",
    "certificateManagement",
    "dnsManagement",
    "dkimManagement",
    "subAddressing",
    "memberTenantId",
    "directoryId",
    "catchAllAddress",
    "reportAddressUri",
    "allowRelaying",
    "logo",
    "createdAt",
];

/// One `x:DkimSignature`, linked to its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDkimSignature {
    pub id: String,
    pub domain_id: String,
    pub selector: String,
}

impl SimDkimSignature {
    /// The JMAP representation.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "domainId": self.domain_id, "selector": self.selector})
    }
}

/// Kinds of directory principals that can use a domain (and so block its
/// destruction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Account,
    Group,
    MailingList,
}

impl LinkKind {
    /// The object name in `linkedObjects`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Account => "Account",
            LinkKind::Group => "Group",
            LinkKind::MailingList => "MailingList",
        }
    }
}

/// A principal using a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLink {
    pub kind: LinkKind,
    pub id: String,
    pub domain_id: String,
}

/// A per-object error of `/set`, as the real server words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SimSetError {
    /// `primaryKeyViolation`, `invalidPatch`, `notFound`, `objectIsLinked`, `invalidForeignKey`.
    pub kind: &'static str,
    pub description: Option<&'static str>,
    pub properties: Vec<String>,
    /// `(object, id)`: the existing object for `primaryKeyViolation`, the
    /// object itself for `objectIsLinked`.
    pub object_id: Option<(&'static str, String)>,
    pub linked_objects: Vec<(&'static str, String)>,
}

impl fmt::Display for SimSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl SimSetError {
    pub(super) fn new(kind: &'static str) -> Self {
        SimSetError {
            kind,
            description: None,
            properties: Vec::new(),
            object_id: None,
            linked_objects: Vec::new(),
        }
    }

    pub(super) fn invalid(property: &str, description: &'static str) -> Self {
        SimSetError {
            description: Some(description),
            properties: vec![property.to_owned()],
            ..Self::new("invalidPatch")
        }
    }

    /// `notFound`.
    pub fn not_found() -> Self {
        Self::new("notFound")
    }

    /// The JMAP `SetError` object.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), json!(self.kind));
        if let Some(description) = &self.description {
            object.insert("description".into(), json!(description));
        }
        if !self.properties.is_empty() {
            object.insert("properties".into(), json!(self.properties));
        }
        let reference = |(object, id): &(&str, String)| json!({"object": object, "id": id});
        if let Some(id) = &self.object_id {
            object.insert("objectId".into(), reference(id));
        }
        if !self.linked_objects.is_empty() {
            let linked: Vec<Value> = self.linked_objects.iter().map(reference).collect();
            object.insert("linkedObjects".into(), Value::Array(linked));
        }
        Value::Object(object)
    }
}

/// Normalises and checks a domain name like the server does.
fn domain_name(property: &str, value: &Value) -> Result<String, SimSetError> {
    let raw = value
        .as_str()
        .ok_or_else(|| SimSetError::invalid(property, "Invalid domain name"))?;
    dezky_core::validate::domain(property, raw)
        .map_err(|_| SimSetError::invalid(property, "Invalid domain name"))
}

/// `{"@type": <one of variants>, ...}`.
fn tagged(property: &str, value: &Value, variants: &[&str]) -> Result<Value, SimSetError> {
    let ok = value
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| variants.contains(&t));
    if ok {
        Ok(value.clone())
    } else {
        Err(SimSetError::invalid(property, "Invalid value"))
    }
}

/// Sets one property (or JSON-pointer path) on `domain`.
pub(super) fn apply_property(
    domain: &mut SimDomain,
    key: &str,
    value: &Value,
) -> Result<(), SimSetError> {
    if let Some(alias) = key.strip_prefix("aliases/") {
        let alias = alias.replace("~1", "/").replace("~0", "~");
        let alias = domain_name("aliases", &Value::String(alias))?;
        match value {
            Value::Bool(true) => domain.aliases.insert(alias),
            Value::Null | Value::Bool(false) => domain.aliases.remove(&alias),
            _ => return Err(SimSetError::invalid("aliases", "Invalid value")),
        };
        return Ok(());
    }
    let wrong_type = || SimSetError::invalid(key, "Invalid value type");
    match key {
        "name" => domain.name = domain_name("name", value)?,
        "aliases" => {
            let map = match value {
                Value::Null => Map::new(),
                Value::Object(map) => map.clone(),
                _ => return Err(wrong_type()),
            };
            let mut aliases = BTreeSet::new();
            for (alias, flag) in &map {
                if flag != &Value::Bool(true) {
                    return Err(wrong_type());
                }
                aliases.insert(domain_name("aliases", &Value::String(alias.clone()))?);
            }
            domain.aliases = aliases;
        }
        "isEnabled" => domain.is_enabled = value.as_bool().ok_or_else(wrong_type)?,
        "description" => {
            domain.description = match value {
                Value::Null => None,
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => return Err(SimSetError::invalid(key, "Invalid description")),
            }
        }
        "certificateManagement" => {
            domain.certificate_management = tagged(key, value, &["Manual", "Automatic"])?
        }
        "dnsManagement" => domain.dns_management = tagged(key, value, &["Manual", "Automatic"])?,
        "dkimManagement" => domain.dkim_management = tagged(key, value, &["Manual", "Automatic"])?,
        "subAddressing" => {
            domain.sub_addressing = tagged(key, value, &["Enabled", "Disabled", "Custom"])?
        }
        // The simulator has no tenants or directories: any id is dangling.
        "memberTenantId" | "directoryId" => {
            if !value.is_null() {
                return Err(SimSetError {
                    properties: vec![key.to_owned()],
                    ..SimSetError::new("invalidForeignKey")
                });
            }
        }
        "catchAllAddress" | "reportAddressUri" | "logo" => {
            if !(value.is_null() || value.is_string()) {
                return Err(wrong_type());
            }
            domain.other.insert(key.to_owned(), value.clone());
        }
        "allowRelaying" => {
            if !value.is_boolean() {
                return Err(wrong_type());
            }
            domain.other.insert(key.to_owned(), value.clone());
        }
        _ if SERVER_SET.contains(&key) => {
            return Err(SimSetError::invalid(key, "Property is server-set"))
        }
        _ => return Err(SimSetError::invalid(key, "Unknown property")),
    }
    Ok(())
}
