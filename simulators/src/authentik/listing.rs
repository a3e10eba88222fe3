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
//!   Authentik's envelope: `page` (1-based, `last` allowed; anything else
//!   out of range is 404 `Invalid page.`), `page_size` (a positive integer;
//!   otherwise the default 100).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::model::SimGroup;

/// Default and fallback page size.
pub const DEFAULT_PAGE_SIZE: usize = 100;

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

/// Keeps the groups the query's filters select (input order is kept).
pub fn filter<'a>(
    groups: Vec<&'a SimGroup>,
    query: &HashMap<String, String>,
) -> Result<Vec<&'a SimGroup>, ListError> {
    let mut groups = groups;
    if let Some(name) = query.get("name") {
        groups.retain(|g| &g.name == name);
    }
    if let Some(term) = query.get("search") {
        let term = term.to_lowercase();
        groups.retain(|g| g.name.to_lowercase().contains(&term));
    }
    if let Some(flag) = query.get("is_superuser") {
        let flag = match flag.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ListError::BadRequest(json!({
                    "is_superuser": ["Select a valid choice."]
                })))
            }
        };
        groups.retain(|g| g.is_superuser == flag);
    }
    if let Some(raw) = query.get("attributes") {
        let lookups = parse_attribute_filter(raw)?;
        if let Some(lookups) = lookups {
            groups.retain(|g| {
                lookups
                    .iter()
                    .all(|(path, want)| lookup(&g.attributes, path) == Some(want))
            });
        }
    }
    Ok(groups)
}

/// One `attributes` lookup: nested key path and the value it must equal.
type Lookup = (Vec<String>, Value);

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

/// Cuts `groups` into the requested page. With `as_floats`, numbers are
/// sent as JSON floats (`2.0`), which some Authentik deployments do.
pub fn paginate<'a>(
    groups: Vec<&'a SimGroup>,
    query: &HashMap<String, String>,
    as_floats: bool,
) -> Result<Page<'a>, ListError> {
    let page_size = query
        .get("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let count = groups.len();
    let total_pages = count.div_ceil(page_size).max(1);
    let current = match query.get("page").map(String::as_str) {
        None => 1,
        Some("last") => total_pages,
        Some(raw) => raw.parse::<usize>().map_err(|_| ListError::InvalidPage)?,
    };
    if current == 0 || current > total_pages {
        return Err(ListError::InvalidPage);
    }
    let start = (current - 1) * page_size;
    let items: Vec<&SimGroup> = groups.into_iter().skip(start).take(page_size).collect();
    let (start_index, end_index) = if count == 0 {
        (0, 0)
    } else {
        (start + 1, start + items.len())
    };
    let next = if current < total_pages {
        current + 1
    } else {
        0
    };
    let previous = current.saturating_sub(1);
    let number = |n: usize| {
        if as_floats {
            json!(n as f64)
        } else {
            json!(n)
        }
    };
    Ok(Page {
        items,
        pagination: json!({
            "next": number(next),
            "previous": number(previous),
            "count": number(count),
            "current": number(current),
            "total_pages": number(total_pages),
            "start_index": number(start_index),
            "end_index": number(end_index),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::model::GroupTable;
    use super::*;

    fn table(n: usize) -> GroupTable {
        let mut table = GroupTable::default();
        for i in 0..n {
            let mut attributes = Map::new();
            attributes.insert("i".into(), json!(i));
            attributes.insert("nested".into(), json!({"even": i % 2 == 0}));
            table
                .insert(&format!("group-{i:03}"), attributes)
                .expect("insert");
        }
        table
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pages_follow_drf_page_numbers() {
        let table = table(250);
        let page = paginate(table.sorted(), &query(&[("page", "3")]), false).expect("page 3");
        assert_eq!(page.items.len(), 50);
        assert_eq!(
            page.pagination,
            json!({"next": 0, "previous": 2, "count": 250, "current": 3,
                   "total_pages": 3, "start_index": 201, "end_index": 250})
        );
        let first = paginate(table.sorted(), &query(&[("page_size", "0")]), true).expect("page 1");
        assert_eq!(
            first.items.len(),
            DEFAULT_PAGE_SIZE,
            "invalid page_size falls back"
        );
        assert_eq!(first.pagination["next"], json!(2.0));
        assert_eq!(
            paginate(table.sorted(), &query(&[("page", "4")]), false).err(),
            Some(ListError::InvalidPage)
        );
    }

    #[test]
    fn empty_listing_has_one_empty_page() {
        let page = paginate(Vec::new(), &HashMap::new(), false).expect("page");
        assert_eq!(page.pagination["total_pages"], json!(1));
        assert_eq!(page.pagination["start_index"], json!(0));
    }

    #[test]
    fn attribute_filter_matches_nested_keys_and_drops_malformed_lookups() {
        let table = table(10);
        let hits = filter(table.sorted(), &query(&[("attributes", r#"{"i": 3}"#)])).expect("i=3");
        assert_eq!(hits.len(), 1);
        let even = filter(
            table.sorted(),
            &query(&[("attributes", r#"{"nested__even": true}"#)]),
        )
        .expect("even");
        assert_eq!(even.len(), 5);
        let dropped = filter(
            table.sorted(),
            &query(&[("attributes", r#"{"i__in": [1, 2]}"#)]),
        )
        .expect("quirk");
        assert_eq!(dropped.len(), 10, "a failing lookup returns every group");
        assert!(matches!(
            filter(table.sorted(), &query(&[("attributes", "{nope")])),
            Err(ListError::BadRequest(_))
        ));
        assert!(matches!(
            filter(table.sorted(), &query(&[("attributes", "[1]")])),
            Err(ListError::BadRequest(_))
        ));
    }

    #[test]
    fn name_filter_is_exact_and_case_sensitive() {
        let table = table(3);
        let hits = filter(table.sorted(), &query(&[("name", "group-001")])).expect("exact");
        assert_eq!(hits.len(), 1);
        let none = filter(table.sorted(), &query(&[("name", "GROUP-001")])).expect("case");
        assert!(none.is_empty());
        let prefix = filter(table.sorted(), &query(&[("name", "group-00")])).expect("prefix");
        assert!(prefix.is_empty());
    }
}
