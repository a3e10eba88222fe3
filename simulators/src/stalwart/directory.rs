//! Every object of the simulated server and the rules that span objects:
//! names and aliases unique across all domains, DKIM keys and principals
//! blocking a domain's destruction. The JMAP routes and the handle's
//! out-of-band changes both go through [`Directory`], so they obey the
//! same rules.
//!
//! Lookups never scan: domains are kept by id (the order `/get` and
//! `/query` answer in), every name and alias maps to its domain, the text
//! of every domain is in a trigram index ([`TextIndex`]), and DKIM keys are
//! listed per domain. A domain changes only by being stored whole
//! ([`Directory::store_domain`]), which re-indexes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::model::{apply_property, LinkKind, SimDkimSignature, SimDomain, SimLink, SimSetError};
use super::text::TextIndex;

#[derive(Debug, Default)]
pub struct Directory {
    domains: BTreeMap<String, SimDomain>,
    /// Every name and alias -> the id of the domain using it (names and
    /// aliases are unique together).
    by_key: HashMap<String, String>,
    text: TextIndex,
    dkim: BTreeMap<String, SimDkimSignature>,
    /// Domain id -> ids of its DKIM keys.
    dkim_by_domain: HashMap<String, BTreeSet<String>>,
    links: Vec<SimLink>,
    next_id: u64,
    /// Bumped on every domain get, feeding `dnsZoneFile`.
    pub zone_serial: u64,
}

/// The texts the `text` filter searches.
fn texts(domain: &SimDomain) -> impl Iterator<Item = &str> {
    domain
        .keys()
        .map(String::as_str)
        .chain(domain.description.as_deref())
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

    pub fn domain(&self, id: &str) -> Option<&SimDomain> {
        self.domains.get(id)
    }

    /// Every domain, ordered by id.
    pub fn domains(&self) -> impl Iterator<Item = &SimDomain> {
        self.domains.values()
    }

    /// The domain whose name or one of whose aliases is `key`.
    pub fn domain_with_key(&self, key: &str) -> Option<&SimDomain> {
        self.by_key.get(key).and_then(|id| self.domains.get(id))
    }

    /// Domains that may contain `needle` (lowercased) in their name,
    /// aliases or description, ordered by id; `None` when the needle is too
    /// short for the index and every domain is a candidate.
    pub fn text_candidates(&self, needle: &str) -> Option<Vec<&SimDomain>> {
        let mut ids = self.text.candidates(needle)?;
        ids.sort_unstable();
        Some(
            ids.into_iter()
                .filter_map(|id| self.domains.get(id))
                .collect(),
        )
    }

    pub fn dkim_key(&self, id: &str) -> Option<&SimDkimSignature> {
        self.dkim.get(id)
    }

    /// Every DKIM key, ordered by id.
    pub fn dkim_keys(&self) -> impl Iterator<Item = &SimDkimSignature> {
        self.dkim.values()
    }

    /// The DKIM keys of one domain, ordered by id.
    pub fn dkim_keys_of(&self, domain_id: &str) -> impl Iterator<Item = &SimDkimSignature> {
        self.dkim_by_domain
            .get(domain_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.dkim.get(id))
    }

    /// Stores `domain` (new, or replacing the domain with its id) and
    /// re-indexes it; the one place a domain changes.
    fn store_domain(&mut self, domain: SimDomain) {
        self.unindex_domain(&domain.id);
        for key in domain.keys() {
            self.by_key.insert(key.clone(), domain.id.clone());
        }
        self.text.add(&domain.id, texts(&domain));
        self.domains.insert(domain.id.clone(), domain);
    }

    /// Drops the stored domain `id` from every index.
    fn unindex_domain(&mut self, id: &str) {
        let Some(old) = self.domains.get(id) else {
            return;
        };
        for key in old.keys() {
            self.by_key.remove(key);
        }
        self.text.remove(id, texts(old));
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
        self.store_domain(domain);
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
        self.store_domain(domain);
        Ok(())
    }

    /// Destroys a domain unless something still references it.
    pub fn destroy_domain(&mut self, id: &str) -> Result<(), SimSetError> {
        if !self.domains.contains_key(id) {
            return Err(SimSetError::not_found());
        }
        let mut linked: Vec<(&str, String)> = self
            .dkim_keys_of(id)
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
        self.unindex_domain(id);
        self.domains.remove(id);
        Ok(())
    }

    /// Adds a DKIM key to a domain.
    pub fn add_dkim(&mut self, domain_id: &str, selector: &str) -> String {
        let id = self.fresh_id();
        self.dkim_by_domain
            .entry(domain_id.to_owned())
            .or_default()
            .insert(id.clone());
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
        let key = self.dkim.remove(id).ok_or_else(SimSetError::not_found)?;
        if let Some(keys) = self.dkim_by_domain.get_mut(&key.domain_id) {
            keys.remove(id);
            if keys.is_empty() {
                self.dkim_by_domain.remove(&key.domain_id);
            }
        }
        Ok(())
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

    /// Removes a principal made with [`Directory::link`].
    pub fn unlink(&mut self, id: &str) {
        self.links.retain(|l| l.id != id);
    }

    /// Names and aliases are unique across all domains. A clash names the
    /// clashing domain with the lowest id, and `name` when the candidate's
    /// name is one of that domain's keys, else `aliases`.
    fn check_unique(&self, candidate: &SimDomain) -> Result<(), SimSetError> {
        let owner = |key: &String| self.by_key.get(key).filter(|owner| **owner != candidate.id);
        let Some(other) = candidate.keys().filter_map(owner).min() else {
            return Ok(());
        };
        let property = if owner(&candidate.name) == Some(other) {
            "name"
        } else {
            "aliases"
        };
        Err(SimSetError {
            properties: vec![property.into()],
            object_id: Some(("Domain", other.clone())),
            ..SimSetError::new("primaryKeyViolation")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        // Clashing with two domains: the one with the lowest id is named.
        let second = dir
            .create_domain(&props(json!({"name": "c.test"})))
            .unwrap();
        let err = dir
            .create_domain(&props(
                json!({"name": "c.test", "aliases": {"alias.test": true}}),
            ))
            .unwrap_err();
        assert_eq!(
            (err.object_id, err.properties),
            (Some(("Domain", first.clone())), vec!["aliases".to_owned()])
        );
        let err = dir
            .update_domain(&first, &props(json!({"aliases/c.test": true})))
            .unwrap_err();
        assert_eq!(
            (err.object_id, err.properties),
            (Some(("Domain", second)), vec!["aliases".to_owned()])
        );
        // A domain's own keys never clash with themselves.
        dir.update_domain(&first, &props(json!({"name": "a.test"})))
            .unwrap();
    }

    #[test]
    fn indexes_follow_renames_alias_changes_and_destruction() {
        let mut dir = Directory::default();
        let id = dir
            .create_domain(&props(
                json!({"name": "a.test", "aliases": {"x.test": true},
                                         "description": "dezky tenant a"}),
            ))
            .unwrap();
        let keys: Vec<String> = dir.dkim_keys_of(&id).map(|k| k.id.clone()).collect();
        assert_eq!(keys.len(), 2);
        let owner = |dir: &Directory, key: &str| dir.domain_with_key(key).map(|d| d.id.clone());
        assert_eq!(owner(&dir, "x.test"), Some(id.clone()));
        dir.update_domain(&id, &props(json!({"name": "b.test", "aliases": null})))
            .unwrap();
        assert_eq!((owner(&dir, "a.test"), owner(&dir, "x.test")), (None, None));
        assert_eq!(owner(&dir, "b.test"), Some(id.clone()));
        let candidates = |dir: &Directory, needle: &str| -> Option<usize> {
            dir.text_candidates(needle).map(|found| found.len())
        };
        assert_eq!(candidates(&dir, "tenant"), Some(1));
        assert_eq!(candidates(&dir, "x.test"), Some(0));
        for key in &keys {
            dir.destroy_dkim(key).unwrap();
        }
        assert_eq!(dir.dkim_keys_of(&id).count(), 0);
        dir.destroy_domain(&id).unwrap();
        assert_eq!(owner(&dir, "b.test"), None);
        assert_eq!(candidates(&dir, "tenant"), Some(0));
        assert_eq!(dir.domains().count(), 0);
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
