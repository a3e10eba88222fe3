//! The `text` filter of `x:Domain/query` without a scan: a trigram index
//! over each domain's lowercased name, aliases and description.
//!
//! A domain whose text contains the (lowercased) needle contains every
//! three-character window of the needle, so the domains listed under the
//! needle's rarest trigram are a superset of the answer: the caller checks
//! only those. Needles shorter than three characters narrow nothing and
//! fall back to a scan.

use std::collections::{BTreeSet, HashMap};

type Trigram = [char; 3];

/// Domain ids by the trigrams of their texts.
#[derive(Debug, Default)]
pub struct TextIndex {
    /// Trigram -> handles of the domains having it in one of their texts.
    postings: HashMap<Trigram, BTreeSet<u64>>,
    /// Domain id -> its handle. Handles are small and copyable, so the
    /// postings do not hold a copy of the id for every trigram.
    handles: HashMap<String, u64>,
    ids: HashMap<u64, String>,
    next_handle: u64,
}

impl TextIndex {
    /// Indexes domain `id` under the trigrams of `texts`.
    pub fn add<'a>(&mut self, id: &str, texts: impl Iterator<Item = &'a str>) {
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(id.to_owned(), handle);
        self.ids.insert(handle, id.to_owned());
        for text in texts {
            for trigram in trigrams(&text.to_lowercase()) {
                self.postings.entry(trigram).or_default().insert(handle);
            }
        }
    }

    /// Forgets domain `id`, indexed with these `texts`.
    pub fn remove<'a>(&mut self, id: &str, texts: impl Iterator<Item = &'a str>) {
        let Some(handle) = self.handles.remove(id) else {
            return;
        };
        self.ids.remove(&handle);
        for text in texts {
            for trigram in trigrams(&text.to_lowercase()) {
                if let Some(posting) = self.postings.get_mut(&trigram) {
                    posting.remove(&handle);
                    if posting.is_empty() {
                        self.postings.remove(&trigram);
                    }
                }
            }
        }
    }

    /// Ids of the domains that may contain `needle` (already lowercased),
    /// in no particular order; `None` when the needle is too short to tell.
    pub fn candidates(&self, needle: &str) -> Option<Vec<&str>> {
        let mut rarest: Option<&BTreeSet<u64>> = None;
        for trigram in trigrams(needle) {
            let Some(posting) = self.postings.get(&trigram) else {
                return Some(Vec::new());
            };
            if rarest.is_none_or(|best| posting.len() < best.len()) {
                rarest = Some(posting);
            }
        }
        let ids = rarest?
            .iter()
            .filter_map(|handle| self.ids.get(handle).map(String::as_str))
            .collect();
        Some(ids)
    }
}

/// Every window of three characters of `text`.
fn trigrams(text: &str) -> impl Iterator<Item = Trigram> + '_ {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(2)).map(move |i| [chars[i], chars[i + 1], chars[i + 2]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_include_every_domain_containing_the_needle() {
        let mut index = TextIndex::default();
        index.add("a", ["acme.test", "dezky tenant acme"].into_iter());
        index.add("b", ["beta.test", "Dezky Tenant Beta"].into_iter());
        index.add("c", ["acme-corp.test"].into_iter());
        let mut found = index.candidates("acme").expect("long enough");
        found.sort_unstable();
        assert_eq!(found, ["a", "c"]);
        let tenant = index.candidates("dezky tenant").expect("long enough");
        assert_eq!(tenant.len(), 2, "matching is case-insensitive");
        assert_eq!(index.candidates("zzz"), Some(Vec::new()));
        assert_eq!(index.candidates("ac"), None, "too short to narrow");

        index.remove("a", ["acme.test", "dezky tenant acme"].into_iter());
        assert_eq!(index.candidates("acme"), Some(vec!["c"]));
        index.remove("a", std::iter::empty());
        index.remove("c", ["acme-corp.test"].into_iter());
        index.remove("b", ["beta.test", "Dezky Tenant Beta"].into_iter());
        assert!(index.postings.is_empty() && index.ids.is_empty());
    }
}
