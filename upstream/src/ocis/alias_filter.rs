//! Picking the spaces with given aliases out of a project-drive list
//! without parsing the others. A create check looks for a few hundred
//! aliases at most in a list of up to 10,000 spaces, each about a
//! kilobyte of JSON: parsing every entry to read its `driveAlias` was most
//! of the cost of a list. An entry is parsed only if one of its
//! `"driveAlias"` members (at any depth) holds a wanted alias or an escaped
//! string, or if it holds a `\u` escape anywhere (only that escape can
//! spell the key's letters differently); the parse then compares the
//! top-level `driveAlias` exactly. Other escapes (every space's `eTag` is
//! a quoted string) do not force a parse.

use std::borrow::Cow;
use std::collections::HashSet;

use memchr::memmem::Finder;
use serde::Deserialize;

use super::DriveSummary;

/// Keeps the list entries whose `driveAlias` is one of a set.
pub(super) struct AliasFilter<'a> {
    aliases: &'a HashSet<String>,
    /// Finds each `"driveAlias"` key in an entry.
    key: Finder<'static>,
}

/// A list entry's [`DriveSummary`] fields, borrowed from the list's bytes
/// (owned only where JSON escapes had to be decoded).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedDrive<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    drive_alias: Option<Cow<'a, str>>,
}

impl<'a> AliasFilter<'a> {
    /// A filter keeping the spaces whose alias is in `aliases`.
    pub(super) fn new(aliases: &'a HashSet<String>) -> Self {
        AliasFilter {
            aliases,
            key: Finder::new(b"\"driveAlias\""),
        }
    }

    /// The summary of the list entry `element` if its alias is wanted.
    pub(super) fn keep(&self, element: &[u8]) -> serde_json::Result<Option<DriveSummary>> {
        if !self.may_carry_wanted_alias(element) {
            return Ok(None);
        }
        let listed: ListedDrive = serde_json::from_slice(element)?;
        let wanted = listed
            .drive_alias
            .as_deref()
            .is_some_and(|alias| self.aliases.contains(alias));
        Ok(wanted.then(|| DriveSummary {
            id: listed.id.into_owned(),
            description: listed.description.map(Cow::into_owned),
            drive_alias: listed.drive_alias.map(Cow::into_owned),
        }))
    }

    /// False only when no parse of `element` could find a wanted alias.
    fn may_carry_wanted_alias(&self, element: &[u8]) -> bool {
        if memchr::memmem::find(element, b"\\u").is_some() {
            return true;
        }
        self.key.find_iter(element).any(|at| {
            match string_after_key(&element[at + self.key.needle().len()..]) {
                Some(value) if value.contains(&b'\\') => true,
                Some(value) => std::str::from_utf8(value).is_ok_and(|v| self.aliases.contains(v)),
                None => false,
            }
        })
    }
}

/// The raw bytes of the string value of a member whose key `rest` follows
/// (blanks, `:`, blanks, a string) up to its first `"`: the whole string
/// unless it holds an escape (then they end with or contain `\`); `None`
/// when the value is not a string.
fn string_after_key(rest: &[u8]) -> Option<&[u8]> {
    let blank = |b: &u8| b.is_ascii_whitespace();
    let start = rest.iter().position(|b| !blank(b))?;
    let rest = rest[start..].strip_prefix(b":")?;
    let start = rest.iter().position(|b| !blank(b))?;
    let rest = rest[start..].strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(aliases: &[&str]) -> HashSet<String> {
        aliases.iter().map(|a| a.to_string()).collect()
    }

    fn alias_of(kept: Option<DriveSummary>) -> Option<String> {
        kept.and_then(|d| d.drive_alias)
    }

    #[test]
    fn an_entry_with_a_wanted_alias_is_kept_and_parsed() {
        let aliases = wanted(&["project/acme", "project/beta"]);
        let filter = AliasFilter::new(&aliases);
        let entry = br#"{"id": "s1", "description": "d", "driveAlias": "project/beta", "root": {"id": "r"}}"#;
        let kept = filter.keep(entry).expect("parses").expect("kept");
        assert_eq!(kept.id, "s1");
        assert_eq!(kept.description.as_deref(), Some("d"));
        assert_eq!(kept.drive_alias.as_deref(), Some("project/beta"));
    }

    #[test]
    fn an_entry_without_a_wanted_alias_anywhere_is_skipped_unparsed() {
        let aliases = wanted(&["project/acme"]);
        let filter = AliasFilter::new(&aliases);
        // Not even valid JSON: it is never parsed.
        let entry = br#"{"id": "s2", "driveAlias": "project/other", oops"#;
        assert!(filter.keep(entry).expect("not parsed").is_none());
    }

    #[test]
    fn a_wanted_alias_elsewhere_in_an_entry_is_compared_exactly() {
        let aliases = wanted(&["project/acme"]);
        let filter = AliasFilter::new(&aliases);
        let entry = br#"{"id": "s3", "description": "project/acme", "name": "project/acme", "driveAlias": "project/acme-2"}"#;
        assert_eq!(alias_of(filter.keep(entry).expect("parses")), None);
        let prefix = br#"{"id": "s4", "driveAlias": "project/acme"}"#;
        assert_eq!(
            alias_of(filter.keep(prefix).expect("parses")).as_deref(),
            Some("project/acme")
        );
    }

    #[test]
    fn an_alias_the_server_escaped_is_still_found() {
        let aliases = wanted(&["project/acme"]);
        let filter = AliasFilter::new(&aliases);
        let entry = br#"{"id": "s5", "driveAlias": "project\/acm\u0065"}"#;
        assert_eq!(
            alias_of(filter.keep(entry).expect("parses")).as_deref(),
            Some("project/acme")
        );
    }

    #[test]
    fn a_nested_drive_alias_member_does_not_hide_the_entrys_own() {
        let aliases = wanted(&["project/acme"]);
        let filter = AliasFilter::new(&aliases);
        let entry = br#"{"id": "s7", "root": {"driveAlias": "project/x"}, "driveAlias" :
            "project/acme"}"#;
        assert_eq!(
            alias_of(filter.keep(entry).expect("parses")).as_deref(),
            Some("project/acme")
        );
    }

    #[test]
    fn other_escapes_do_not_force_a_parse_but_an_escaped_alias_does() {
        let aliases = wanted(&["project/acme"]);
        let filter = AliasFilter::new(&aliases);
        let etag = br#"{"id": "s8", "root": {"eTag": "\"3\""}, "driveAlias": "project/b", oops"#;
        assert!(filter.keep(etag).expect("not parsed").is_none());
        let slash = br#"{"id": "s9", "root": {"eTag": "\"3\""}, "driveAlias": "project\/acme"}"#;
        assert_eq!(
            alias_of(filter.keep(slash).expect("parses")).as_deref(),
            Some("project/acme")
        );
    }

    #[test]
    fn nothing_wanted_keeps_nothing() {
        let aliases = wanted(&[]);
        let filter = AliasFilter::new(&aliases);
        let entry = br#"{"id": "s6", "driveAlias": "project/acme"}"#;
        assert!(filter.keep(entry).expect("not parsed").is_none());
    }
}
