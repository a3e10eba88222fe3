//! JMAP request processing of the simulated Stalwart: request-level checks
//! (capabilities, the 16-call limit), result references (never into a
//! `/set` response), `#creationId` references, method-level `forbidden`, and
//! the `x:Domain` / `x:DkimSignature` get and set methods (query: [`query`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::directory::Directory;
use super::model::{SimDkimSignature, SimDomain, SimSetError, DOMAIN_PROPERTIES};
use super::query;

/// Calls accepted in one request.
pub const MAX_CALLS: usize = 16;
/// Objects accepted in one get or set.
pub const MAX_OBJECTS: usize = 500;
/// Every method the server knows (what [`process`] counts).
const METHODS: [&str; 7] = [
    "Core/echo",
    "x:Domain/get",
    "x:Domain/query",
    "x:Domain/set",
    "x:DkimSignature/get",
    "x:DkimSignature/query",
    "x:DkimSignature/set",
];
const CORE: &str = "urn:ietf:params:jmap:core";
const STALWART: &str = "urn:stalwart:jmap";

/// A request-level failure: HTTP 400 with a JMAP problem type.
#[derive(Debug, PartialEq)]
pub struct RequestError {
    pub kind: &'static str,
    pub detail: String,
    /// Set for `limit` errors.
    pub limit: Option<&'static str>,
}

impl RequestError {
    fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        RequestError {
            kind,
            detail: detail.into(),
            limit: None,
        }
    }
}

/// A method-level error: `["error", {"type", "description"}, callId]`.
pub(super) struct MethodError(pub &'static str, pub String);

pub(super) type MethodResult = Result<Value, MethodError>;

/// Calls of each known method in the requests processed so far.
pub type CallCounts = BTreeMap<&'static str, u64>;

/// Per-request processing state.
struct Run<'a> {
    dir: &'a mut Directory,
    denied: &'a HashSet<String>,
    /// `(name, result)` of the calls answered so far, by call id.
    answered: HashMap<String, (String, Value)>,
    /// Creation id → server id, for `#creationId` references.
    created: HashMap<String, String>,
}

/// Processes one JMAP request against `dir`; `denied` methods answer
/// `forbidden`. Every call of a known method is counted in `counts`.
pub fn process(
    dir: &mut Directory,
    denied: &HashSet<String>,
    counts: &mut CallCounts,
    request: &Value,
) -> Result<Value, RequestError> {
    let not_request = |why: &str| RequestError::new("urn:ietf:params:jmap:error:notRequest", why);
    let using: Vec<&str> = request
        .get("using")
        .and_then(Value::as_array)
        .ok_or_else(|| not_request("Missing using"))?
        .iter()
        .map(|u| u.as_str().ok_or_else(|| not_request("Invalid using")))
        .collect::<Result<_, _>>()?;
    if let Some(unknown) = using.iter().find(|u| ![CORE, STALWART].contains(u)) {
        return Err(RequestError::new(
            "urn:ietf:params:jmap:error:unknownCapability",
            format!("Unknown capability {unknown}"),
        ));
    }
    let calls = request
        .get("methodCalls")
        .and_then(Value::as_array)
        .ok_or_else(|| not_request("Missing methodCalls"))?;
    if calls.len() > MAX_CALLS {
        return Err(RequestError {
            limit: Some("maxCallsInRequest"),
            ..RequestError::new(
                "urn:ietf:params:jmap:error:limit",
                format!("Too many calls ({} > {MAX_CALLS})", calls.len()),
            )
        });
    }
    let mut run = Run {
        dir,
        denied,
        answered: HashMap::new(),
        created: HashMap::new(),
    };
    let mut responses = Vec::new();
    for call in calls {
        let (name, args, id) = match call.as_array().map(Vec::as_slice) {
            Some([Value::String(n), Value::Object(a), Value::String(i)]) => (n, a, i),
            _ => return Err(not_request("Invalid method call")),
        };
        if let Some(known) = METHODS.iter().find(|known| *known == name) {
            *counts.entry(known).or_default() += 1;
        }
        let (response_name, result) = match run.call(name, args, using.contains(&STALWART)) {
            Ok(result) => (name.clone(), result),
            Err(MethodError(kind, description)) => (
                "error".to_owned(),
                json!({"type": kind, "description": description}),
            ),
        };
        run.answered
            .insert(id.clone(), (response_name.clone(), result.clone()));
        responses.push(json!([response_name, result, id]));
    }
    Ok(json!({"methodResponses": responses, "sessionState": "sim"}))
}

impl Run<'_> {
    fn call(&mut self, name: &str, args: &Map<String, Value>, stalwart: bool) -> MethodResult {
        let unknown = || MethodError("unknownMethod", format!("Unknown method {name}"));
        if name.starts_with("x:") && !stalwart {
            return Err(unknown());
        }
        let args = self.resolve_references(args)?;
        if name == "Core/echo" {
            return Ok(Value::Object(args));
        }
        if self.denied.contains(name) {
            return Err(MethodError(
                "forbidden",
                format!("You do not have permission to call {name}"),
            ));
        }
        match name {
            "x:Domain/get" => self.domain_get(&args),
            "x:Domain/query" => query::domains(self.dir, &args),
            "x:Domain/set" => self.set(&args, Kind::Domain),
            "x:DkimSignature/get" => self.dkim_get(&args),
            "x:DkimSignature/query" => query::dkim_keys(self.dir, &args),
            "x:DkimSignature/set" => self.set(&args, Kind::Dkim),
            _ => Err(unknown()),
        }
    }

    /// Replaces `#key` result references by the value they point at.
    fn resolve_references(
        &self,
        args: &Map<String, Value>,
    ) -> Result<Map<String, Value>, MethodError> {
        let invalid = |why: String| MethodError("invalidResultReference", why);
        let mut resolved = Map::new();
        for (key, value) in args {
            let Some(plain) = key.strip_prefix('#') else {
                resolved.insert(key.clone(), value.clone());
                continue;
            };
            if args.contains_key(plain) {
                return Err(MethodError(
                    "invalidArguments",
                    format!("Both {key} and {plain} given"),
                ));
            }
            let field = |f: &str| value.get(f).and_then(Value::as_str);
            let (Some(of), Some(name), Some(path)) =
                (field("resultOf"), field("name"), field("path"))
            else {
                return Err(invalid(format!("Invalid reference in {key}")));
            };
            let (answered_name, result) = self
                .answered
                .get(of)
                .ok_or_else(|| invalid(format!("No result for call {of}")))?;
            if answered_name != name || name.ends_with("/set") {
                return Err(invalid(format!(
                    "Cannot reference the result of {answered_name}"
                )));
            }
            let target = evaluate_pointer(result, path)
                .ok_or_else(|| invalid(format!("Path {path} not found in {of}")))?;
            resolved.insert(plain.to_owned(), target);
        }
        Ok(resolved)
    }

    /// Maps `#creationId` to the id created earlier in this request.
    fn id_of(&self, id: &str) -> Option<String> {
        match id.strip_prefix('#') {
            Some(creation) => self.created.get(creation).cloned(),
            None => Some(id.to_owned()),
        }
    }

    fn requested_ids(&self, args: &Map<String, Value>) -> Result<Option<Vec<String>>, MethodError> {
        match args.get("ids") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(ids)) if ids.len() > MAX_OBJECTS => Err(MethodError(
                "requestTooLarge",
                format!("Too many ids (max {MAX_OBJECTS})"),
            )),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| {
                    id.as_str()
                        .map(|s| self.id_of(s).unwrap_or_else(|| s.to_owned()))
                        .ok_or_else(|| {
                            MethodError("invalidArguments", "ids must be strings".into())
                        })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(MethodError("invalidArguments", "ids must be a list".into())),
        }
    }

    fn domain_get(&mut self, args: &Map<String, Value>) -> MethodResult {
        let properties = properties(args, &DOMAIN_PROPERTIES, "dnsZoneFile")?;
        let ids = self.requested_ids(args)?;
        self.dir.zone_serial += 1;
        let serial = self.dir.zone_serial;
        let render = |d: &SimDomain| select(d.to_json(serial), properties.as_deref());
        let (list, not_found) = match ids {
            None => (
                self.dir.domains().take(MAX_OBJECTS).map(render).collect(),
                Vec::new(),
            ),
            Some(ids) => split_found(ids, |id| self.dir.domain(id).map(render)),
        };
        Ok(json!({"list": list, "notFound": not_found}))
    }

    fn dkim_get(&mut self, args: &Map<String, Value>) -> MethodResult {
        let properties = properties(args, &["id", "domainId", "selector"], "")?;
        let ids = self.requested_ids(args)?;
        let render = |k: &SimDkimSignature| select(k.to_json(), properties.as_deref());
        let (list, not_found) = match ids {
            None => (
                self.dir.dkim_keys().take(MAX_OBJECTS).map(render).collect(),
                Vec::new(),
            ),
            Some(ids) => split_found(ids, |id| self.dir.dkim_key(id).map(render)),
        };
        Ok(json!({"list": list, "notFound": not_found}))
    }

    /// `/set`: creates, then updates, then destroys.
    fn set(&mut self, args: &Map<String, Value>, kind: Kind) -> MethodResult {
        let map_of = |key: &str| match args.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(MethodError(
                "invalidArguments",
                format!("{key} must be an object"),
            )),
        };
        let (create, update) = (map_of("create")?, map_of("update")?);
        let destroy: Vec<String> = match args.get("destroy") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|_| {
                MethodError("invalidArguments", "destroy must be a list of ids".into())
            })?,
        };
        if create.len() + update.len() + destroy.len() > MAX_OBJECTS {
            return Err(MethodError(
                "requestTooLarge",
                format!("Too many objects (max {MAX_OBJECTS})"),
            ));
        }
        let (mut created, mut not_created) = (Map::new(), Map::new());
        for (creation_id, props) in create {
            let outcome = match props.as_object() {
                Some(props) => {
                    let props = self.resolve_creation_refs(props);
                    match kind {
                        Kind::Domain => self.dir.create_domain(&props),
                        Kind::Dkim => self.dir.create_dkim(&props),
                    }
                }
                None => Err(SimSetError::not_found()),
            };
            match outcome {
                Ok(id) => {
                    self.created.insert(creation_id.clone(), id.clone());
                    created.insert(creation_id, json!({"id": id}));
                }
                Err(e) => {
                    not_created.insert(creation_id, e.to_json());
                }
            }
        }
        let (mut updated, mut not_updated) = (Map::new(), Map::new());
        for (raw_id, patch) in update {
            let outcome = match (self.id_of(&raw_id), patch.as_object(), kind) {
                (Some(id), Some(patch), Kind::Domain) => {
                    let patch = self.resolve_creation_refs(patch);
                    self.dir.update_domain(&id, &patch)
                }
                (Some(id), Some(_), Kind::Dkim) if self.dir.dkim_key(&id).is_some() => {
                    Err(SimSetError {
                        kind: "invalidPatch",
                        description: Some("DKIM keys are immutable"),
                        properties: Vec::new(),
                        object_id: None,
                        linked_objects: Vec::new(),
                    })
                }
                _ => Err(SimSetError::not_found()),
            };
            match outcome {
                Ok(()) => updated.insert(raw_id, Value::Null),
                Err(e) => not_updated.insert(raw_id, e.to_json()),
            };
        }
        let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
        for raw_id in destroy {
            let outcome = match (self.id_of(&raw_id), kind) {
                (Some(id), Kind::Domain) => self.dir.destroy_domain(&id),
                (Some(id), Kind::Dkim) => self.dir.destroy_dkim(&id),
                (None, _) => Err(SimSetError::not_found()),
            };
            match outcome {
                Ok(()) => destroyed.push(Value::String(raw_id)),
                Err(e) => {
                    not_destroyed.insert(raw_id, e.to_json());
                }
            }
        }
        let or_null = |map: Map<String, Value>| {
            if map.is_empty() {
                Value::Null
            } else {
                Value::Object(map)
            }
        };
        Ok(json!({
            "created": or_null(created),
            "updated": or_null(updated),
            "destroyed": if destroyed.is_empty() { Value::Null } else { Value::Array(destroyed) },
            "notCreated": or_null(not_created),
            "notUpdated": or_null(not_updated),
            "notDestroyed": or_null(not_destroyed),
        }))
    }

    /// Property values `#creationId` become the created object's id.
    fn resolve_creation_refs(&self, props: &Map<String, Value>) -> Map<String, Value> {
        props
            .iter()
            .map(|(k, v)| {
                let v = match v.as_str().and_then(|s| s.strip_prefix('#')) {
                    Some(creation) => self
                        .created
                        .get(creation)
                        .map_or_else(|| v.clone(), |id| json!(id)),
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Domain,
    Dkim,
}

/// The `properties` argument, checked against `known` (plus `extra`).
fn properties(
    args: &Map<String, Value>,
    known: &[&str],
    extra: &str,
) -> Result<Option<Vec<String>>, MethodError> {
    match args.get("properties") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|p| match p.as_str() {
                Some(p) if known.contains(&p) || (!extra.is_empty() && p == extra) => {
                    Ok(p.to_owned())
                }
                _ => Err(MethodError(
                    "invalidArguments",
                    format!("Unknown property {p}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(MethodError(
            "invalidArguments",
            "properties must be a list".into(),
        )),
    }
}

/// Keeps `id` and the requested properties.
fn select(object: Value, properties: Option<&[String]>) -> Value {
    match (object, properties) {
        (Value::Object(map), Some(properties)) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k == "id" || properties.contains(k))
                .collect(),
        ),
        (object, _) => object,
    }
}

fn split_found(
    ids: Vec<String>,
    mut find: impl FnMut(&str) -> Option<Value>,
) -> (Vec<Value>, Vec<String>) {
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        match find(&id) {
            Some(object) => list.push(object),
            None => not_found.push(id),
        }
    }
    (list, not_found)
}

/// Evaluates a JMAP result-reference path (JSON pointer where `*` maps over
/// an array and flattens).
fn evaluate_pointer(value: &Value, path: &str) -> Option<Value> {
    let mut tokens = path.strip_prefix('/')?.split('/');
    let Some(token) = tokens.next() else {
        return Some(value.clone());
    };
    let rest: Vec<&str> = tokens.collect();
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!("/{}", rest.join("/"))
    };
    let next = |v: &Value| {
        if rest.is_empty() {
            Some(v.clone())
        } else {
            evaluate_pointer(v, &rest)
        }
    };
    if token == "*" {
        let mut out = Vec::new();
        for item in value.as_array()? {
            match next(item)? {
                Value::Array(items) => out.extend(items),
                other => out.push(other),
            }
        }
        return Some(Value::Array(out));
    }
    let token = token.replace("~1", "/").replace("~0", "~");
    let child = match value {
        Value::Object(map) => map.get(&token)?,
        Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
        _ => return None,
    };
    next(child)
}
