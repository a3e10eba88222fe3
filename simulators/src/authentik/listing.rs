//! `GET /api/v3/core/groups/`: filters and pagination as Authentik applies
//! them.
//!
//! - `name` is an exact, case-sensitive match; `search` a case-insensitive
//!   substring of the name; `is_superuser` a boolean.
//! - `attributes` is a JSON object of `key: value` Django JSON lookups
//!   (`a__b` is the nested key `b` of `a`). Invalid JSON or a non-object is
//!   a 400 (a bare list of messages), but a lookup that cannot be evaluated
//!   makes Authentik silently drop the filter and return every group. The
//!   simulator treats any key segment that is empty or a Django lookup
//!   operator (`in`, `contains`, `gt`, ...) as such a lookup.
//! - Pagination is Django REST framework's page-number pagination with
//!   Authentik's envelope, ordered by name: `page` (1-based, `last`
//!   allowed; anything else out of range is 404 `Invalid page.`),
//!   `page_size` (a positive integer, capped at [`MAX_PAGE_SIZE`];
//!   otherwise [`DEFAULT_PAGE_SIZE`]).
//!
//! A listing starts from the smallest index that answers one of its
//! filters (the name, or a top-level string attribute) and checks the other
//! filters on those candidates only. When the index answers every filter
//! (or there is none), the page is cut straight out of it by rank, so a
//! call costs about one page, not the table.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::model::{GroupTable, SimGroup};
use crate::ranked::RankedSet;

/// Page size when `page_size` is absent or not a positive integer.
///
/// `shared/upstream/authentik.md` documents 100, which is also DRF's
/// `PAGE_SIZE` in Authentik's settings (used for an invalid `page_size`).
/// With no `page_size` at all, current Authentik uses its system setting
/// `pagination_default_page_size` (default 20); the provisioner always
/// sends `page_size`, so the simulator keeps the documented 100.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Largest page Authentik serves: `Pagination.get_page_size` (in
/// `authentik/api/pagination.py`) caps a requested `page_size` at the
/// system setting `pagination_max_page_size`, default 100.
pub const MAX_PAGE_SIZE: usize = 100;

/// Django lookup operators the simulator does not evaluate: a key ending in
/// one of these drops the whole `attributes` filter, like a failing lookup
/// does on the real server.
const LOOKUP_OPERATORS: &[&str] = &[
    "exact",
    "iexact",
    "contains",
    "icontains",
    "in",
    "gt",
    "gte",
    "lt",
    "lte",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "range",
    "isnull",
    "regex",
    "iregex",
    "has_key",
    "has_keys",
    "has_any_keys",
    "contained_by",
];

/// Why a list request is refused.
#[derive(Debug, PartialEq)]
pub enum ListError {
    /// 400 with this JSON body.
    BadRequest(Value),
    /// 404 `{"detail": "Invalid page."}`.
    InvalidPage,
}

/// One `attributes` lookup: nested key path and the value it must equal.
type Lookup = (Vec<String>, Value);

/// The filters of one list request.
#[derive(Debug, Default)]
struct Filters {
    name: Option<String>,
    /// Lowercased.
    search: Option<String>,
    is_superuser: Option<bool>,
    /// Empty when absent or dropped as malformed.
    lookups: Vec<Lookup>,
}

impl Filters {
    fn parse(query: &HashMap<String, String>) -> Result<Self, ListError> {
        let is_superuser = match query.get("is_superuser") {
            None => None,
            Some(flag) => match flag.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => {
                    return Err(ListError::BadRequest(json!({
                        "is_superuser": ["Select a valid choice."]
                    })))
                }
            },
        };
        let lookups = match query.get("attributes") {
            None => Vec::new(),
            Some(raw) => parse_attribute_filter(raw)?.unwrap_or_default(),
        };
        Ok(Filters {
            name: query.get("name").cloned(),
            search: query.get("search").map(|term| term.to_lowercase()),
            is_superuser,
            lookups,
        })
    }

    /// Whether `group` passes every filter.
    fn matches(&self, group: &SimGroup) -> bool {
        self.name.as_ref().is_none_or(|name| &group.name == name)
            && self
                .search
                .as_ref()
                .is_none_or(|term| group.name.to_lowercase().contains(term))
            && self
                .is_superuser
                .is_none_or(|flag| group.is_superuser == flag)
            && self
                .lookups
                .iter()
                .all(|(path, want)| lookup(&group.attributes, path) == Some(want))
    }

    /// Where the matching groups are found (see the module doc).
    fn scan<'a>(&self, table: &'a GroupTable) -> Scan<'a> {
        if let Some(name) = &self.name {
            return Scan::Check(Box::new(table.named(name).into_iter()));
        }
        let only_lookups = self.search.is_none() && self.is_superuser.is_none();
        let mut indexed =
            self.lookups
                .iter()
                .filter_map(|(path, want)| match (path.as_slice(), want) {
                    ([key], Value::String(value)) => Some(table.names_with_attribute(key, value)),
                    _ => None,
                });
        let smallest = indexed.next().map(|first| {
            indexed.fold(first, |best, next| match (best, next) {
                (Some(best), Some(next)) if next.len() < best.len() => Some(next),
                (Some(_), None) => None,
                (best, _) => best,
            })
        });
        match smallest {
            // An indexed lookup nothing satisfies.
            Some(None) => Scan::Exact(None),
            Some(Some(names)) if only_lookups && self.lookups.len() == 1 => {
                Scan::Exact(Some(names))
            }
            Some(Some(names)) => Scan::Check(Box::new(table.in_order(names.iter()))),
            None if only_lookups && self.lookups.is_empty() => Scan::Exact(Some(table.names())),
            None => Scan::Check(Box::new(table.in_order(table.names().iter()))),
        }
    }
}

/// The groups a listing draws from, in listing order.
enum Scan<'a> {
    /// Exactly the names of the matching groups (`None`: no group matches).
    Exact(Option<&'a RankedSet<String>>),
    /// Candidates that still have to pass [`Filters::matches`].
    Check(Box<dyn Iterator<Item = &'a SimGroup> + 'a>),
}

/// The `attributes` filter as lookups, or `None` when a lookup is malformed
/// and the filter is dropped.
fn parse_attribute_filter(raw: &str) -> Result<Option<Vec<Lookup>>, ListError> {
    let parsed: Value = serde_json::from_str(raw)
        .map_err(|_| ListError::BadRequest(json!(["filter: failed to parse JSON"])))?;
    let Value::Object(pairs) = parsed else {
        return Err(ListError::BadRequest(json!([
            "filter: value must be key:value mapping"
        ])));
    };
    let mut lookups = Vec::with_capacity(pairs.len());
    for (key, want) in pairs {
        let path: Vec<String> = key.split("__").map(str::to_owned).collect();
        let malformed = path
            .iter()
            .any(|segment| segment.is_empty() || LOOKUP_OPERATORS.contains(&segment.as_str()));
        if malformed {
            return Ok(None);
        }
        lookups.push((path, want));
    }
    Ok(Some(lookups))
}

fn lookup<'a>(attributes: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(attributes.get(first)?, |value, key| value.get(key))
}

/// One page of a filtered listing.
pub struct Page<'a> {
    pub items: Vec<&'a SimGroup>,
    /// The `pagination` object of the envelope.
    pub pagination: Value,
}

/// The page of the groups `query` selects. With `as_floats`, numbers are
/// sent as JSON floats (`2.0`), which some Authentik deployments do.
pub fn list<'a>(
    table: &'a GroupTable,
    query: &HashMap<String, String>,
    as_floats: bool,
) -> Result<Page<'a>, ListError> {
    let filters = Filters::parse(query)?;
    let size = page_size(query);
    match filters.scan(table) {
        Scan::Exact(names) => {
            let count = names.map_or(0, RankedSet::len);
            let window = Window::new(count, size, query)?;
            let start = window.start;
            let ranked = names.into_iter().flat_map(move |n| n.iter_from(start));
            let items = table.in_order(ranked).take(size).collect();
            Ok(window.page(items, as_floats))
        }
        Scan::Check(candidates) => {
            let hits: Vec<&SimGroup> = candidates.filter(|g| filters.matches(g)).collect();
            let window = Window::new(hits.len(), size, query)?;
            let items = hits.into_iter().skip(window.start).take(size).collect();
            Ok(window.page(items, as_floats))
        }
    }
}

/// The requested page size, as `Pagination.get_page_size` computes it.
fn page_size(query: &HashMap<String, String>) -> usize {
    query
        .get("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map_or(DEFAULT_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE))
}

/// Where the requested page lies in `count` results.
struct Window {
    count: usize,
    current: usize,
    total_pages: usize,
    /// Rank of the page's first result.
    start: usize,
}

impl Window {
    fn new(count: usize, size: usize, query: &HashMap<String, String>) -> Result<Self, ListError> {
        let total_pages = count.div_ceil(size).max(1);
        let current = match query.get("page").map(String::as_str) {
            None => 1,
            Some("last") => total_pages,
            Some(raw) => raw.parse::<usize>().map_err(|_| ListError::InvalidPage)?,
        };
        if current == 0 || current > total_pages {
            return Err(ListError::InvalidPage);
        }
        Ok(Window {
            count,
            current,
            total_pages,
            start: (current - 1) * size,
        })
    }

    fn page<'a>(self, items: Vec<&'a SimGroup>, as_floats: bool) -> Page<'a> {
        let (start_index, end_index) = if self.count == 0 {
            (0, 0)
        } else {
            (self.start + 1, self.start + items.len())
        };
        let next = if self.current < self.total_pages {
            self.current + 1
        } else {
            0
        };
        let previous = self.current.saturating_sub(1);
        let number = |n: usize| {
            if as_floats {
                json!(n as f64)
            } else {
                json!(n)
            }
        };
        Page {
            items,
            pagination: json!({
                "next": number(next),
                "previous": number(previous),
                "count": number(self.count),
                "current": number(self.current),
                "total_pages": number(self.total_pages),
                "start_index": number(start_index),
                "end_index": number(end_index),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
