//! Contract test: every request the oCIS client sends (driven through the
//! reconciler against the simulator's request recorder) must be an
//! operation of the libregraph OpenAPI document, with declared query
//! parameters, known body property names and the required ones present.
//!
//! Where real oCIS differs from the document (`shared/upstream/ocis.md`),
//! the server wins: the `Restore: T` / `Purge: T` headers are not in the
//! document and headers are not checked here.

use std::collections::BTreeSet;

use dezky_simulators::recording::RecordedRequest;
use serde_yaml::Value;

use super::tests::{env_with, tenant};
use super::*;

/// The libregraph document, relative to the workspace root.
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/upstream/specs/libre-graph-api-v1.0.yaml"
);

/// Every operation the client implements, as `METHOD template` (update and
/// restore are both PATCHes of a drive, disable and purge both DELETEs).
const CLIENT_OPERATIONS: [&str; 12] = [
    "GET /v1.0/drives",
    "POST /v1.0/drives",
    "GET /v1.0/drives/{drive-id}",
    "PATCH /v1.0/drives/{drive-id}",
    "DELETE /v1.0/drives/{drive-id}",
    "GET /v1.0/groups/{group-id}",
    "POST /v1.0/groups",
    "DELETE /v1.0/groups/{group-id}",
    "POST /v1beta1/drives/{drive-id}/root/invite",
    "GET /v1beta1/drives/{drive-id}/root/permissions",
    "PATCH /v1beta1/drives/{drive-id}/root/permissions/{perm-id}",
    "DELETE /v1beta1/drives/{drive-id}/root/permissions/{perm-id}",
];

struct Spec(Value);

impl Spec {
    /// Follows a local `$ref`.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let mut target = &self.0;
        for part in reference.trim_start_matches("#/").split('/') {
            target = &target[part];
        }
        self.resolve(target)
    }

    /// The operation template and object for a request path under `/graph`.
    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let path = path.strip_prefix("/graph")?;
        let segments: Vec<&str> = path.split('/').collect();
        let paths = self.0["paths"].as_mapping()?;
        paths.iter().find_map(|(template, item)| {
            let template = template.as_str()?;
            let parts: Vec<&str> = template.split('/').collect();
            let matches = parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && t.ends_with('}')) || t == s);
            let operation = item.get(method.to_ascii_lowercase().as_str())?;
            matches.then(|| (format!("{method} {template}"), operation))
        })
    }

    /// Property schemas and required names of a schema, through `allOf`.
    fn properties<'a>(&'a self, schema: &'a Value) -> (Vec<(&'a str, &'a Value)>, Vec<&'a str>) {
        let schema = self.resolve(schema);
        let mut properties: Vec<(&str, &Value)> = schema["properties"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?, v)))
                    .collect()
            })
            .unwrap_or_default();
        let mut required: Vec<&str> = schema["required"]
            .as_sequence()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for part in schema["allOf"].as_sequence().into_iter().flatten() {
            let (more, also) = self.properties(part);
            properties.extend(more);
            required.extend(also);
        }
        (properties, required)
    }

    /// Checks a JSON value against a schema's property names, recursively.
    fn check_body(
        &self,
        schema: &Value,
        body: &serde_json::Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        match body {
            serde_json::Value::Object(map) => {
                let (properties, required) = self.properties(schema);
                if properties.is_empty() {
                    return;
                }
                for (key, value) in map {
                    match properties.iter().find(|(name, _)| name == key) {
                        Some((_, property)) => {
                            self.check_body(property, value, &format!("{at}.{key}"), errors)
                        }
                        None => errors.push(format!("{at}: property `{key}` is not in the schema")),
                    }
                }
                for name in required {
                    if !map.contains_key(name) {
                        errors.push(format!("{at}: required property `{name}` is missing"));
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_body(&schema["items"], item, &format!("{at}[{i}]"), errors);
                }
            }
            _ => {}
        }
    }

    /// Every problem of one recorded request; the operation it matched.
    fn check(&self, request: &RecordedRequest) -> Result<String, Vec<String>> {
        let what = format!("{} {}", request.method, request.path);
        let Some((operation_name, operation)) = self.operation(&request.method, &request.path)
        else {
            return Err(vec![format!("{what}: no such operation in the document")]);
        };
        let mut errors = Vec::new();
        let declared: Vec<&str> = operation["parameters"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p["in"].as_str() == Some("query"))
            .filter_map(|p| p["name"].as_str())
            .collect();
        for pair in request
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let name = pair
                .split('=')
                .next()
                .unwrap_or_default()
                .replace("%24", "$");
            if !declared.contains(&name.as_str()) {
                errors.push(format!("{what}: query parameter `{name}` is not declared"));
            }
        }
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        match (&request.body, schema.is_null()) {
            (Some(body), false) => self.check_body(schema, body, &what, &mut errors),
            (Some(_), true) => errors.push(format!("{what}: the operation takes no JSON body")),
            (None, _) => {}
        }
        if errors.is_empty() {
            Ok(operation_name)
        } else {
            Err(errors)
        }
    }
}

#[tokio::test]
async fn every_request_of_the_client_is_a_libregraph_operation_with_valid_bodies() {
    let Ok(text) = std::fs::read_to_string(SPEC) else {
        println!("skipped: the libregraph OpenAPI document is not at {SPEC}");
        return;
    };
    let spec = Spec(serde_yaml::from_str(&text).expect("the libregraph document parses"));

    // A scenario that makes the client send every kind of request.
    let env = env_with(OcisSettings {
        create_groups: true,
        purge_on_delete: true,
        ..OcisSettings::default()
    })
    .await;
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let id = env.space(&acme).id;
    let gid = env
        .ocis
        .group_id("tenant-acme")
        .expect("the group was created");
    env.ocis
        .set_permission_role(&id, &format!("g:{gid}"), roles::MANAGER);
    env.ocis.rename_drive(&id, "Drifted");
    env.ocis.disable_drive(&id);
    env.pass(&mut acme).await;
    // A deleted group's grant stays: the next pass removes it.
    env.ocis.delete_group(&gid);
    env.pass(&mut acme).await;
    env.reconciler
        .cleanup(&acme, Mode::Apply)
        .await
        .expect("cleanup succeeds");

    let mut covered = BTreeSet::new();
    let mut errors = Vec::new();
    for request in env.ocis.recorder().requests() {
        match spec.check(&request) {
            Ok(operation) => {
                covered.insert(operation);
            }
            Err(problems) => errors.extend(problems),
        }
    }
    assert!(
        errors.is_empty(),
        "contract violations:\n{}",
        errors.join("\n")
    );
    let expected: BTreeSet<String> = CLIENT_OPERATIONS.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        covered, expected,
        "the scenario exercises every client operation"
    );
}
