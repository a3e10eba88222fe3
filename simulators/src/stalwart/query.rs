//! `x:Domain/query` and `x:DkimSignature/query`: AND-ed filter conditions
//! answered from the directory's indexes, and the result window of RFC 8620
//! §5.5 applied the way Stalwart's query response builder applies it.
//!
//! - Results are ordered by id, so paging with `position` and `limit`
//!   visits every object exactly once while nothing changes in between.
//! - One call returns at most [`MAX_QUERY_RESULTS`] ids; when more matched
//!   than the limit applied, the response says which limit (`limit`).
//! - A `position` past the end gives no ids and `position: 0`, as Stalwart
//!   answers; a negative one counts from the end.
//! - `total` only with `calculateTotal: true`; `queryState` is always
//!   `"n"` and `canCalculateChanges` false (there is no `/changes`).
//! - `anchor` is refused (`invalidArguments`): the simulator does not
//!   implement it, and a silent wrong page would be worse.
//!
//! A domain query starts from the name/alias index (`name`, `aliases`),
//! else the trigram index (`text` of three characters or more), else all
//! domains, and checks every condition on those candidates only.

use serde_json::{json, Map, Value};

use super::directory::Directory;
use super::jmap::{MethodError, MethodResult};
use super::model::{SimDkimSignature, SimDomain};

/// Ids one `/query` call returns at most: Stalwart's
/// `jmap.protocol.query.max-results` (default 5000). The session announces
/// no such limit; a client learns it from `limit` in the response.
pub const MAX_QUERY_RESULTS: usize = 5000;

/// `x:Domain/query`.
pub fn domains(dir: &Directory, args: &Map<String, Value>) -> MethodResult {
    let conditions = conditions(
        args.get("filter"),
        &["name", "aliases", "memberTenantId", "text"],
    )?;
    let window = Window::parse(args)?;
    let ids = domain_candidates(dir, &conditions)
        .filter(|d| conditions.iter().all(|(k, v)| domain_matches(d, k, v)))
        .map(|d| d.id.clone())
        .collect();
    Ok(window.answer(ids))
}

/// `x:DkimSignature/query` (filter: `domainId`).
pub fn dkim_keys(dir: &Directory, args: &Map<String, Value>) -> MethodResult {
    let conditions = conditions(args.get("filter"), &["domainId"])?;
    let window = Window::parse(args)?;
    let matches = |key: &SimDkimSignature| {
        conditions
            .iter()
            .all(|(_, v)| v.as_str() == Some(key.domain_id.as_str()))
    };
    let candidates: Box<dyn Iterator<Item = &SimDkimSignature>> = match conditions.first() {
        Some((_, domain_id)) => Box::new(dir.dkim_keys_of(domain_id.as_str().unwrap_or_default())),
        None => Box::new(dir.dkim_keys()),
    };
    let ids = candidates
        .filter(|k| matches(k))
        .map(|k| k.id.clone())
        .collect();
    Ok(window.answer(ids))
}

/// The domains that can match `conditions`, ordered by id.
fn domain_candidates<'a>(
    dir: &'a Directory,
    conditions: &[(String, Value)],
) -> Box<dyn Iterator<Item = &'a SimDomain> + 'a> {
    let wanted = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    if let Some((_, key)) = conditions
        .iter()
        .find(|(property, _)| property == "name" || property == "aliases")
    {
        return Box::new(dir.domain_with_key(&wanted(key)).into_iter());
    }
    let narrowed = conditions
        .iter()
        .filter(|(property, _)| property == "text")
        .find_map(|(_, needle)| dir.text_candidates(&wanted(needle).to_lowercase()));
    match narrowed {
        Some(candidates) => Box::new(candidates.into_iter()),
        None => Box::new(dir.domains()),
    }
}

/// Whether `domain` satisfies one filter condition.
fn domain_matches(domain: &SimDomain, property: &str, value: &Value) -> bool {
    let wanted = value.as_str().unwrap_or_default();
    match property {
        "name" => domain.name == wanted,
        "aliases" => domain.aliases.contains(wanted),
        "memberTenantId" => domain.member_tenant_id.as_deref() == value.as_str(),
        _ => {
            let needle = wanted.to_lowercase();
            std::iter::once(&domain.name)
                .chain(&domain.aliases)
                .chain(&domain.description)
                .any(|t| t.to_lowercase().contains(&needle))
        }
    }
}

/// The requested window of a query's results.
struct Window {
    position: i64,
    /// `None`: as many as the server returns.
    limit: Option<u64>,
    calculate_total: bool,
}

impl Window {
    fn parse(args: &Map<String, Value>) -> Result<Self, MethodError> {
        let invalid = |why: &str| MethodError("invalidArguments", why.to_owned());
        let given = |key: &str| args.get(key).filter(|v| !v.is_null());
        if given("anchor").is_some() {
            return Err(invalid("anchor is not supported"));
        }
        let position = match given("position") {
            None => 0,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| invalid("position must be an integer"))?,
        };
        let limit = match given("limit") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| invalid("limit must be a non-negative integer"))?,
            ),
        };
        let calculate_total = match given("calculateTotal") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| invalid("calculateTotal must be a boolean"))?,
        };
        Ok(Window {
            position,
            limit,
            calculate_total,
        })
    }

    /// The query response for all matching `ids` (in order).
    fn answer(&self, ids: Vec<String>) -> Value {
        let total = ids.len();
        let limit = self.limit.map_or(MAX_QUERY_RESULTS, |limit| {
            usize::try_from(limit).map_or(MAX_QUERY_RESULTS, |l| l.min(MAX_QUERY_RESULTS))
        });
        let (start, position) = match usize::try_from(self.position) {
            Ok(wanted) if wanted <= total => (wanted, wanted),
            Ok(_) => (total, 0),
            Err(_) => {
                let from_end = usize::try_from(self.position.unsigned_abs()).unwrap_or(usize::MAX);
                let start = total.saturating_sub(from_end);
                (start, start)
            }
        };
        let page: Vec<String> = ids.into_iter().skip(start).take(limit).collect();
        let mut response = Map::new();
        response.insert("ids".into(), json!(page));
        response.insert("queryState".into(), json!("n"));
        response.insert("canCalculateChanges".into(), json!(false));
        response.insert("position".into(), json!(position));
        if self.calculate_total {
            response.insert("total".into(), json!(total));
        }
        if total > limit {
            response.insert("limit".into(), json!(limit));
        }
        Value::Object(response)
    }
}

/// The AND-ed conditions of a filter (`{"operator": "AND", "conditions": [...]}`
/// or a plain condition) on `supported` properties; other operators and
/// properties are unsupported.
fn conditions(
    filter: Option<&Value>,
    supported: &[&str],
) -> Result<Vec<(String, Value)>, MethodError> {
    let unsupported = |why: String| MethodError("unsupportedFilter", why);
    let Some(filter) = filter.filter(|f| !f.is_null()) else {
        return Ok(Vec::new());
    };
    let object = filter
        .as_object()
        .ok_or_else(|| unsupported("Filter must be an object".into()))?;
    match object.get("operator").and_then(Value::as_str) {
        Some("AND") => {
            let mut all = Vec::new();
            for condition in object
                .get("conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                all.extend(conditions(Some(condition), supported)?);
            }
            Ok(all)
        }
        Some(_) => Err(unsupported("Only AND filters are supported".into())),
        None => object
            .iter()
            .map(|(k, v)| {
                if supported.contains(&k.as_str()) {
                    Ok((k.clone(), v.clone()))
                } else {
                    Err(unsupported(format!("Unsupported filter property {k}")))
                }
            })
            .collect(),
    }
}
