//! The simulated server's objects and their rules: `Domain` (normalised,
//! unique names and aliases, server-set `createdAt`/`dnsZoneFile`),
//! `DkimSignature` (created by automatic DKIM management, linked to its
//! domain) and directory principals (accounts, groups, lists) that use a
//! domain. Every change goes through [`Directory`], so the JMAP routes and
//! out-of-band changes obey the same rules.

use std::collections::{BTreeMap, BTreeSet};
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
    fn new(id: String) -> Self {
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
    fn keys(&self) -> impl Iterator<Item = &String> {
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
    fn new(kind: &'static str) -> Self {
        SimSetError {
            kind,
            description: None,
            properties: Vec::new(),
            object_id: None,
            linked_objects: Vec::new(),
        }
    }

    fn invalid(property: &str, description: &'static str) -> Self {
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

/// All objects of the simulated server.
#[derive(Debug, Default)]
pub struct Directory {
    pub domains: BTreeMap<String, SimDomain>,
    pub dkim: BTreeMap<String, SimDkimSignature>,
    pub links: Vec<SimLink>,
    next_id: u64,
    /// Bumped on every domain get, feeding `dnsZoneFile`.
    pub zone_serial: u64,
}

impl Directory {
    /// A fresh short id (`a`, `b`, ..., `ba`, ...), unique across types.
    fn fresh_id(&mut self) -> String {
        const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        let mut n = self.next_id;
        self.next_id += 1;
        let mut id = Vec::new();
        loop {
            id.push(DIGITS[(n % 26) as usize]);
            n /= 26;
            if n == 0 {
                break;
            }
        }
        id.reverse();
        String::from_utf8_lossy(&id).into_owned()
    }

    /// Creates a domain from JMAP properties (server defaults for the rest;
    /// automatic DKIM management creates its keys).
    pub fn create_domain(&mut self, props: &Map<String, Value>) -> Result<String, SimSetError> {
        let mut domain = SimDomain::new(String::new());
        if !props.contains_key("name") {
            return Err(SimSetError::invalid("name", "Missing required property"));
        }
        for (key, value) in props {
            apply_property(&mut domain, key, value)?;
        }
        self.check_unique(&domain)?;
        domain.id = self.fresh_id();
        let id = domain.id.clone();
        if domain.dkim_is_automatic() {
            for algorithm in ["rsa", "ed25519"] {
                self.add_dkim(
                    &id,
                    &format!(
                        "{algorithm}-{}",
                        domain.created_at.get(..10).unwrap_or("key")
                    ),
                );
            }
        }
        self.domains.insert(id.clone(), domain);
        Ok(id)
    }

    /// Applies a patch (JSON-pointer keys such as `aliases/x.tld` allowed).
    pub fn update_domain(
        &mut self,
        id: &str,
        patch: &Map<String, Value>,
    ) -> Result<(), SimSetError> {
        let mut domain = self
            .domains
            .get(id)
            .cloned()
            .ok_or_else(SimSetError::not_found)?;
        for (key, value) in patch {
            apply_property(&mut domain, key, value)?;
        }
        self.check_unique(&domain)?;
        self.domains.insert(id.to_owned(), domain);
        Ok(())
    }

    /// Destroys a domain unless something still references it.
    pub fn destroy_domain(&mut self, id: &str) -> Result<(), SimSetError> {
        if !self.domains.contains_key(id) {
            return Err(SimSetError::not_found());
        }
        let mut linked: Vec<(&str, String)> = self
            .dkim
            .values()
            .filter(|k| k.domain_id == id)
            .map(|k| ("DkimSignature", k.id.clone()))
            .collect();
        linked.extend(
            self.links
                .iter()
                .filter(|l| l.domain_id == id)
                .map(|l| (l.kind.as_str(), l.id.clone())),
        );
        if !linked.is_empty() {
            return Err(SimSetError {
                object_id: Some(("Domain", id.to_owned())),
                linked_objects: linked,
                ..SimSetError::new("objectIsLinked")
            });
        }
        self.domains.remove(id);
        Ok(())
    }

    /// Adds a DKIM key to a domain.
    pub fn add_dkim(&mut self, domain_id: &str, selector: &str) -> String {
        let id = self.fresh_id();
        self.dkim.insert(
            id.clone(),
            SimDkimSignature {
                id: id.clone(),
                domain_id: domain_id.to_owned(),
                selector: selector.to_owned(),
            },
        );
        id
    }

    /// Creates a DKIM key from JMAP properties.
    pub fn create_dkim(&mut self, props: &Map<String, Value>) -> Result<String, SimSetError> {
        for key in props.keys() {
            if !["domainId", "selector"].contains(&key.as_str()) {
                return Err(SimSetError::invalid(key, "Unknown property"));
            }
        }
        let domain_id = props
            .get("domainId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !self.domains.contains_key(domain_id) {
            return Err(SimSetError {
                properties: vec!["domainId".into()],
                ..SimSetError::new("invalidForeignKey")
            });
        }
        let selector = props
            .get("selector")
            .and_then(Value::as_str)
            .unwrap_or("default");
        Ok(self.add_dkim(domain_id, selector))
    }

    /// Destroys a DKIM key.
    pub fn destroy_dkim(&mut self, id: &str) -> Result<(), SimSetError> {
        self.dkim
            .remove(id)
            .map(|_| ())
            .ok_or_else(SimSetError::not_found)
    }

    /// Makes a new principal use a domain.
    pub fn link(&mut self, kind: LinkKind, domain_id: &str) -> Result<String, SimSetError> {
        if !self.domains.contains_key(domain_id) {
            return Err(SimSetError::not_found());
        }
        let id = self.fresh_id();
        self.links.push(SimLink {
            kind,
            id: id.clone(),
            domain_id: domain_id.to_owned(),
        });
        Ok(id)
    }

    /// Names and aliases are unique across all domains.
    fn check_unique(&self, candidate: &SimDomain) -> Result<(), SimSetError> {
        for other in self.domains.values().filter(|d| d.id != candidate.id) {
            let clash = |key: &String| other.keys().any(|k| k == key);
            let property = if clash(&candidate.name) {
                "name"
            } else if candidate.aliases.iter().any(clash) {
                "aliases"
            } else {
                continue;
            };
            return Err(SimSetError {
                properties: vec![property.into()],
                object_id: Some(("Domain", other.id.clone())),
                ..SimSetError::new("primaryKeyViolation")
            });
        }
        Ok(())
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
fn apply_property(domain: &mut SimDomain, key: &str, value: &Value) -> Result<(), SimSetError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn props(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn names_are_normalised_and_checked_against_the_public_suffix_list() {
        let mut dir = Directory::default();
        let id = dir
            .create_domain(&props(json!({"name": " Bücher.DE "})))
            .unwrap();
        assert_eq!(dir.domains[&id].name, "xn--bcher-kva.de");
        let err = dir
            .create_domain(&props(json!({"name": "acme.example"})))
            .unwrap_err();
        assert_eq!(
            (err.kind, err.description),
            ("invalidPatch", Some("Invalid domain name"))
        );
        assert!(dir
            .create_domain(&props(json!({"name": "mail.corp"})))
            .is_ok());
    }

    #[test]
    fn names_and_aliases_are_unique_across_domains() {
        let mut dir = Directory::default();
        let first = dir
            .create_domain(&props(
                json!({"name": "a.test", "aliases": {"alias.test": true}}),
            ))
            .unwrap();
        for clash in [
            json!({"name": "A.test"}),
            json!({"name": "alias.test"}),
            json!({"name": "b.test", "aliases": {"a.test": true}}),
        ] {
            let err = dir.create_domain(&props(clash)).unwrap_err();
            assert_eq!(err.kind, "primaryKeyViolation");
            assert_eq!(err.object_id, Some(("Domain", first.clone())));
        }
    }

    #[test]
    fn server_set_and_unknown_properties_are_invalid_patches() {
        let mut dir = Directory::default();
        let id = dir
            .create_domain(&props(json!({"name": "a.test"})))
            .unwrap();
        for key in ["createdAt", "dnsZoneFile", "id", "colour"] {
            let err = dir
                .update_domain(&id, &props(json!({key: "x"})))
                .unwrap_err();
            assert_eq!(
                (err.kind, err.properties.clone()),
                ("invalidPatch", vec![key.to_owned()])
            );
        }
        let err = dir
            .update_domain(&id, &props(json!({"description": ""})))
            .unwrap_err();
        assert_eq!(err.kind, "invalidPatch");
        assert_eq!(
            dir.update_domain("zz", &Map::new()).unwrap_err().kind,
            "notFound"
        );
    }

    #[test]
    fn automatic_dkim_keys_and_principals_block_destruction() {
        let mut dir = Directory::default();
        let auto = dir
            .create_domain(&props(json!({"name": "auto.test"})))
            .unwrap();
        let manual = dir
            .create_domain(&props(
                json!({"name": "manual.test", "dkimManagement": {"@type": "Manual"}}),
            ))
            .unwrap();
        assert_eq!(dir.dkim.values().filter(|k| k.domain_id == auto).count(), 2);
        let err = dir.destroy_domain(&auto).unwrap_err();
        assert_eq!(err.kind, "objectIsLinked");
        assert!(err
            .linked_objects
            .iter()
            .all(|(object, _)| *object == "DkimSignature"));
        let account = dir.link(LinkKind::Account, &manual).unwrap();
        let err = dir.destroy_domain(&manual).unwrap_err();
        assert_eq!(err.linked_objects, vec![("Account", account)]);
    }

    #[test]
    fn alias_pointer_patches_add_and_remove() {
        let mut dir = Directory::default();
        let id = dir
            .create_domain(&props(json!({"name": "a.test"})))
            .unwrap();
        dir.update_domain(&id, &props(json!({"aliases/b.test": true})))
            .unwrap();
        assert!(dir.domains[&id].aliases.contains("b.test"));
        dir.update_domain(&id, &props(json!({"aliases/b.test": null})))
            .unwrap();
        assert!(dir.domains[&id].aliases.is_empty());
    }
}
