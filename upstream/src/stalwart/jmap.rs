//! JMAP wire types shared by every Stalwart object type: method calls,
//! batches (kept under the 16-calls-per-request limit), result references,
//! method responses, method errors and per-object `SetError`s.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::StalwartError;

/// Capabilities every management request declares.
pub const USING: [&str; 2] = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"];

/// Method calls Stalwart accepts in one request.
pub const MAX_CALLS_PER_REQUEST: usize = 16;

/// A management object type (`x:Domain`, `x:DkimSignature`, ...): only
/// `/get`, `/set` and `/query` exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectType(pub &'static str);

impl ObjectType {
    /// `x:Domain`.
    pub const DOMAIN: ObjectType = ObjectType("x:Domain");
    /// `x:DkimSignature`: DKIM keys, linked to their domain.
    pub const DKIM_SIGNATURE: ObjectType = ObjectType("x:DkimSignature");

    /// `<type>/get`.
    pub fn get(self) -> String {
        format!("{}/get", self.0)
    }

    /// `<type>/set`.
    pub fn set(self) -> String {
        format!("{}/set", self.0)
    }

    /// `<type>/query`.
    pub fn query(self) -> String {
        format!("{}/query", self.0)
    }
}

/// One method call: `[name, arguments, callId]` on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodCall {
    pub name: String,
    pub args: Value,
    pub id: String,
}

impl MethodCall {
    /// A call of `name` with `args`, answered under `id`.
    pub fn new(name: impl Into<String>, args: Value, id: impl Into<String>) -> Self {
        MethodCall {
            name: name.into(),
            args,
            id: id.into(),
        }
    }
}

impl Serialize for MethodCall {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.name, &self.args, &self.id).serialize(serializer)
    }
}

/// A result reference to `path` of the response to call `call_id` (a
/// `/query` or `/get`: Stalwart refuses references into `/set` responses).
pub fn result_ref(call_id: &str, method: &str, path: &str) -> Value {
    json!({"resultOf": call_id, "name": method, "path": path})
}

/// Method calls to send, in groups that always travel in the same HTTP
/// request (a call and the calls whose results it references). Groups are
/// packed into as few requests as the 16-call limit allows, in order.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    groups: Vec<Vec<MethodCall>>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a call that references no other call.
    pub fn push(&mut self, call: MethodCall) {
        self.groups.push(vec![call]);
    }

    /// Adds calls that must share one request (e.g. a query and the get
    /// reading its `#ids`). At most [`MAX_CALLS_PER_REQUEST`] calls.
    pub fn push_group(&mut self, calls: Vec<MethodCall>) {
        if !calls.is_empty() {
            self.groups.push(calls);
        }
    }

    /// Whether the batch has no call.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The calls of each HTTP request, in order.
    pub(crate) fn into_requests(self) -> Result<Vec<Vec<MethodCall>>, StalwartError> {
        let mut requests: Vec<Vec<MethodCall>> = Vec::new();
        for group in self.groups {
            if group.len() > MAX_CALLS_PER_REQUEST {
                return Err(StalwartError::GroupTooLarge(group.len()));
            }
            match requests.last_mut() {
                Some(current) if current.len() + group.len() <= MAX_CALLS_PER_REQUEST => {
                    current.extend(group)
                }
                _ => requests.push(group),
            }
        }
        Ok(requests)
    }
}

/// The request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestBody<'a> {
    pub using: [&'static str; 2],
    pub method_calls: &'a [MethodCall],
}

/// The response body. Each result stays raw JSON until [`Responses::take`]
/// parses it into its type: a listing request answers 4,000 domains, and a
/// `Value` tree of them costs several times their JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResponseBody {
    pub method_responses: Vec<(String, Box<RawValue>, String)>,
}

/// The answers of an executed [`Batch`], by call id.
#[derive(Debug, Default)]
pub struct Responses {
    by_id: HashMap<String, (String, Box<RawValue>)>,
}

impl Responses {
    pub(crate) fn extend(&mut self, body: ResponseBody) {
        for (name, result, id) in body.method_responses {
            self.by_id.insert(id, (name, result));
        }
    }

    /// Whether call `call_id` was answered.
    pub fn contains(&self, call_id: &str) -> bool {
        self.by_id.contains_key(call_id)
    }

    /// Takes the typed result of call `call_id`; a method error (`["error",
    /// {...}, id]`) becomes [`StalwartError::Method`].
    pub fn take<T: DeserializeOwned>(&mut self, call_id: &str) -> Result<T, StalwartError> {
        let (name, result) = self.by_id.remove(call_id).ok_or_else(|| {
            StalwartError::InvalidResponse(format!("no response to call {call_id}"))
        })?;
        if name == "error" {
            let error: MethodError = serde_json::from_str(result.get()).map_err(|e| {
                StalwartError::InvalidResponse(format!("method error of {call_id}: {e}"))
            })?;
            return Err(StalwartError::Method {
                call_id: call_id.to_owned(),
                error,
            });
        }
        serde_json::from_str(result.get())
            .map_err(|e| StalwartError::InvalidResponse(format!("{name} ({call_id}): {e}")))
    }
}

/// A method-level error: the whole call failed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MethodError {
    #[serde(rename = "type")]
    pub kind: MethodErrorKind,
    #[serde(default)]
    pub description: Option<String>,
}

impl fmt::Display for MethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

/// The `type` of a [`MethodError`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum MethodErrorKind {
    UnknownMethod,
    InvalidArguments,
    InvalidResultReference,
    UnsupportedFilter,
    /// The credential lacks the permission for this method.
    Forbidden,
    RequestTooLarge,
    ServerFail,
    Other(String),
}

impl From<String> for MethodErrorKind {
    fn from(value: String) -> Self {
        match value.as_str() {
            "unknownMethod" => Self::UnknownMethod,
            "invalidArguments" => Self::InvalidArguments,
            "invalidResultReference" => Self::InvalidResultReference,
            "unsupportedFilter" => Self::UnsupportedFilter,
            "forbidden" => Self::Forbidden,
            "requestTooLarge" => Self::RequestTooLarge,
            "serverFail" => Self::ServerFail,
            _ => Self::Other(value),
        }
    }
}

impl fmt::Display for MethodErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::UnknownMethod => "unknownMethod",
            Self::InvalidArguments => "invalidArguments",
            Self::InvalidResultReference => "invalidResultReference",
            Self::UnsupportedFilter => "unsupportedFilter",
            Self::Forbidden => "forbidden",
            Self::RequestTooLarge => "requestTooLarge",
            Self::ServerFail => "serverFail",
            Self::Other(other) => other,
        };
        f.write_str(name)
    }
}

/// A reference to one object: `{"object": "Domain", "id": "b"}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ObjectRef {
    pub object: String,
    pub id: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.object, self.id)
    }
}

/// Why one object of a `/set` was not created, updated or destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetError {
    #[serde(rename = "type")]
    pub kind: SetErrorKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties: Vec<String>,
    /// The existing object (`primaryKeyViolation`) or the object itself
    /// (`objectIsLinked`).
    #[serde(default)]
    pub object_id: Option<ObjectRef>,
    /// What still references the object (`objectIsLinked`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub linked_objects: Vec<ObjectRef>,
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        if !self.properties.is_empty() {
            write!(f, " ({})", self.properties.join(", "))?;
        }
        Ok(())
    }
}

/// The `type` of a [`SetError`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum SetErrorKind {
    /// A unique value (domain name or alias) is already used by `objectId`.
    PrimaryKeyViolation,
    /// Invalid value, unknown or server-set property.
    InvalidPatch,
    NotFound,
    /// Destroy refused: `linkedObjects` still reference the object.
    ObjectIsLinked,
    /// A foreign key (e.g. `memberTenantId`) names no object.
    InvalidForeignKey,
    Forbidden,
    Other(String),
}

impl From<String> for SetErrorKind {
    fn from(value: String) -> Self {
        match value.as_str() {
            "primaryKeyViolation" => Self::PrimaryKeyViolation,
            "invalidPatch" => Self::InvalidPatch,
            "notFound" => Self::NotFound,
            "objectIsLinked" => Self::ObjectIsLinked,
            "invalidForeignKey" => Self::InvalidForeignKey,
            "forbidden" => Self::Forbidden,
            _ => Self::Other(value),
        }
    }
}

impl fmt::Display for SetErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::PrimaryKeyViolation => "primaryKeyViolation",
            Self::InvalidPatch => "invalidPatch",
            Self::NotFound => "notFound",
            Self::ObjectIsLinked => "objectIsLinked",
            Self::InvalidForeignKey => "invalidForeignKey",
            Self::Forbidden => "forbidden",
            Self::Other(other) => other,
        };
        f.write_str(name)
    }
}

/// Result of `<type>/query`.
#[derive(Clone, Debug, Deserialize)]
pub struct QueryResponse {
    pub ids: Vec<String>,
    /// Number of matches, when asked for with `calculateTotal`.
    #[serde(default)]
    pub total: Option<usize>,
}

/// Result of `<type>/get`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetResponse<T> {
    pub list: Vec<T>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_found: Vec<String>,
}

/// Arguments of `<type>/set`: creates by creation id, patches by id, ids
/// to destroy. The server applies creates, then updates, then destroys.
#[derive(Clone, Debug, Serialize)]
pub struct SetRequest<C, U> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub create: BTreeMap<String, C>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub update: BTreeMap<String, U>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destroy: Vec<String>,
}

impl<C, U> Default for SetRequest<C, U> {
    fn default() -> Self {
        SetRequest {
            create: BTreeMap::new(),
            update: BTreeMap::new(),
            destroy: Vec::new(),
        }
    }
}

impl<C: Serialize, U: Serialize> SetRequest<C, U> {
    /// Whether there is nothing to set.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.destroy.is_empty()
    }

    /// The `<type>/set` call answered under `call_id`.
    pub fn into_call(self, object: ObjectType, call_id: &str) -> Result<MethodCall, StalwartError> {
        let args = serde_json::to_value(&self)
            .map_err(|e| StalwartError::InvalidRequest(e.to_string()))?;
        Ok(MethodCall::new(object.set(), args, call_id))
    }
}

/// The new id of a created object.
#[derive(Clone, Debug, Deserialize)]
pub struct Created {
    pub id: String,
}

/// Result of `<type>/set`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: BTreeMap<String, Created>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub updated: BTreeMap<String, Option<Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub destroyed: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_created: BTreeMap<String, SetError>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_updated: BTreeMap<String, SetError>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_destroyed: BTreeMap<String, SetError>,
}

/// JMAP sends `null` for empty maps and lists.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> MethodCall {
        MethodCall::new("x:Domain/get", json!({}), id)
    }

    #[test]
    fn batches_split_at_sixteen_calls_without_splitting_groups() {
        let mut batch = Batch::new();
        for i in 0..7 {
            batch.push_group(vec![call(&format!("q{i}")), call(&format!("g{i}"))]);
        }
        batch.push_group(vec![call("q7"), call("g7")]);
        batch.push(call("last"));
        let requests = batch.into_requests().unwrap();
        let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![16, 1]);
        assert_eq!(requests[1][0].id, "last");
    }

    #[test]
    fn calls_serialise_as_triples() {
        let value = serde_json::to_value(call("g")).unwrap();
        assert_eq!(value, json!(["x:Domain/get", {}, "g"]));
    }

    #[test]
    fn method_errors_are_typed() {
        let mut responses = Responses::default();
        responses.extend(ResponseBody {
            method_responses: vec![(
                "error".into(),
                RawValue::from_string(
                    json!({"type": "forbidden", "description": "no"}).to_string(),
                )
                .unwrap(),
                "s".into(),
            )],
        });
        let err = responses.take::<SetResponse>("s").unwrap_err();
        match err {
            StalwartError::Method { call_id, error } => {
                assert_eq!(call_id, "s");
                assert_eq!(error.kind, MethodErrorKind::Forbidden);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn set_errors_parse_object_ids_and_links() {
        let response: SetResponse = serde_json::from_value(json!({
            "created": null,
            "notCreated": {"d0": {"type": "primaryKeyViolation", "properties": ["name"],
                                  "objectId": {"object": "Domain", "id": "b"}}},
            "notDestroyed": {"c": {"type": "objectIsLinked", "objectId": {"object": "Domain", "id": "c"},
                                   "linkedObjects": [{"object": "DkimSignature", "id": "a"}]}}
        }))
        .unwrap();
        let pk = &response.not_created["d0"];
        assert_eq!(pk.kind, SetErrorKind::PrimaryKeyViolation);
        assert_eq!(pk.object_id.as_ref().unwrap().id, "b");
        let linked = &response.not_destroyed["c"];
        assert_eq!(linked.kind, SetErrorKind::ObjectIsLinked);
        assert_eq!(linked.linked_objects[0].object, "DkimSignature");
    }
}
