//! Contract test: every request the Authentik client sends (recorded by the
//! simulator) must be an operation of Authentik's own OpenAPI description
//! (`shared/upstream/specs/authentik-*.yml`), with declared query
//! parameters of the right type and a body that validates against the
//! request schema (known properties only, required ones present, no
//! read-only ones). Skipped with a message when the specs are absent.

use std::path::Path;

use dezky_simulators::authentik::{AuthentikSim, AuthentikSimOptions};
use dezky_simulators::recording::RecordedRequest;
use dezky_upstream::authentik::{AuthentikClient, GroupPatch, NewGroup};
use serde_json::{json, Map, Value};

const SPECS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/upstream/specs");

fn load_spec(file: &str) -> Option<Value> {
    let path = Path::new(SPECS).join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("skipped: {} not found", path.display());
        return None;
    };
    Some(serde_yaml::from_str(&text).expect("spec parses as YAML"))
}

/// Exercises every client operation, including the 404 paths.
async fn drive_client(sim: &AuthentikSim) {
    let http = dezky_core::http::client(None, std::time::Duration::from_secs(5)).expect("http");
    let client = AuthentikClient::new(http, &sim.url(), sim.api_token()).expect("client");
    for i in 0..105 {
        sim.create_group(&format!("bulk-{i:03}"), Map::new())
            .expect("group");
    }
    let mut marker = Map::new();
    marker.insert("dezky_tenant_id".into(), json!("abc"));
    let created = client
        .create_group(&NewGroup {
            name: "tenant-acme".into(),
            attributes: marker.clone(),
        })
        .await
        .expect("create");
    let duplicate = client
        .create_group(&NewGroup {
            name: "tenant-acme".into(),
            attributes: Map::new(),
        })
        .await;
    assert!(duplicate.is_err(), "duplicate name refused");
    client.get_group(&created.pk).await.expect("get");
    client
        .find_group_by_name("tenant-acme")
        .await
        .expect("by name");
    client
        .find_groups_by_attributes(&marker)
        .await
        .expect("by attributes");
    client.list_all_groups().await.expect("all pages");
    client
        .update_group(
            &created.pk,
            &GroupPatch {
                name: Some("tenant-acme2".into()),
                attributes: Some(marker),
            },
        )
        .await
        .expect("patch");
    client.delete_group(&created.pk).await.expect("delete");
    client
        .delete_group(&created.pk)
        .await
        .expect("delete again");
    client.get_group(&created.pk).await.expect("get missing");
}

#[tokio::test]
async fn every_request_matches_the_current_spec() {
    check("authentik-2026.8-groups.yml", false).await;
}

#[tokio::test]
async fn every_request_matches_the_legacy_spec() {
    check("authentik-2025.10-groups.yml", true).await;
}

async fn check(spec_file: &str, legacy_parent_shape: bool) {
    let Some(spec) = load_spec(spec_file) else {
        return;
    };
    let sim = AuthentikSim::start(AuthentikSimOptions {
        legacy_parent_shape,
        ..AuthentikSimOptions::default()
    })
    .await
    .expect("simulator");
    drive_client(&sim).await;
    let requests = sim.recorder().requests();
    assert!(requests.len() >= 9, "the client was exercised");
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(&method), "{method} was exercised");
    }
    let errors: Vec<String> = requests
        .iter()
        .flat_map(|request| check_request(&spec, request))
        .collect();
    assert!(errors.is_empty(), "{spec_file}:\n{}", errors.join("\n"));
}

/// Everything wrong with one request, per the spec.
fn check_request(spec: &Value, request: &RecordedRequest) -> Vec<String> {
    let label = format!("{} {}", request.method, request.path);
    let server = spec["servers"][0]["url"].as_str().unwrap_or("");
    let Some(path) = request.path.strip_prefix(server) else {
        return vec![format!("{label}: not under the server URL {server}")];
    };
    let Some((template, item)) = spec["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(template, _)| path_matches(template, path))
    else {
        return vec![format!("{label}: no such path in the spec")];
    };
    let Some(operation) = item.get(request.method.to_lowercase()) else {
        return vec![format!(
            "{label}: {template} has no {} operation",
            request.method
        )];
    };
    let mut errors = Vec::new();
    let parameters: Vec<Value> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(spec, p).clone())
        .collect();
    for (key, value) in query_pairs(request.query.as_deref()) {
        match parameters
            .iter()
            .find(|p| p["in"] == "query" && p["name"] == key.as_str())
        {
            None => errors.push(format!("{label}: undeclared query parameter {key}")),
            Some(p) => {
                let parsed = match p["schema"]["type"].as_str() {
                    Some("boolean") => value.parse::<bool>().ok().map(Value::from),
                    Some("integer") => value.parse::<i64>().ok().map(Value::from),
                    _ => Some(Value::from(value.clone())),
                };
                if parsed.is_none() {
                    errors.push(format!(
                        "{label}: query {key}={value} is not the declared type"
                    ));
                }
            }
        }
    }
    match (operation.get("requestBody"), &request.body) {
        (None, None) => {}
        (None, Some(_)) => errors.push(format!("{label}: sends a body the spec does not take")),
        (Some(body), None) => {
            if body["required"] == true {
                errors.push(format!("{label}: the spec requires a body"));
            }
        }
        (Some(body), Some(sent)) => {
            let schema = &body["content"]["application/json"]["schema"];
            validate(spec, schema, sent, &label, &mut errors);
        }
    }
    errors
}

/// Whether `path` fits `template` (`{param}` = one non-empty segment).
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Follows `$ref: '#/components/...'` (Null when dangling).
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => spec
            .pointer(reference.trim_start_matches('#'))
            .map_or(&Value::Null, |target| resolve(spec, target)),
        None => node,
    }
}

/// A minimal OpenAPI 3.0 schema check of a request value.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        if schema["nullable"] != true {
            errors.push(format!("{at}: null is not allowed"));
        }
        return;
    }
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let (Some(min), Some(s)) = (schema["minLength"].as_u64(), value.as_str()) {
        if (s.chars().count() as u64) < min {
            errors.push(format!("{at}: shorter than {min}"));
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            validate(spec, &schema["items"], item, &format!("{at}[{i}]"), errors);
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                errors.push(format!("{at}: required property {name} missing"));
            }
        }
        for (key, item) in object {
            let at = format!("{at}.{key}");
            match properties.and_then(|p| p.get(key)) {
                Some(property) if property["readOnly"] == true => {
                    errors.push(format!("{at}: read-only property sent"))
                }
                Some(property) => validate(spec, property, item, &at, errors),
                None => match schema.get("additionalProperties") {
                    // `additionalProperties: {}` (free-form) or a schema.
                    Some(extra) if *extra != Value::Bool(false) => {
                        validate(spec, extra, item, &at, errors)
                    }
                    _ => errors.push(format!("{at}: not a property of the schema")),
                },
            }
        }
    }
}

#[test]
fn the_checker_rejects_what_the_spec_does_not_allow() {
    let Some(spec) = load_spec("authentik-2026.8-groups.yml") else {
        return;
    };
    let request =
        |method: &str, path: &str, query: Option<&str>, body: Option<Value>| RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_owned),
            body,
        };
    let group = "/api/v3/core/groups/0b9c3e8e-6f6a-4a39-a4a3-0f8a5e0f3b1e/";
    let cases = [
        request("GET", "/api/v3/core/users/", None, None),
        request("POST", group, None, Some(json!({"name": "x"}))),
        request(
            "GET",
            "/api/v3/core/groups/",
            Some("include_users=maybe"),
            None,
        ),
        request("GET", "/api/v3/core/groups/", Some("nickname=x"), None),
        request(
            "POST",
            "/api/v3/core/groups/",
            None,
            Some(json!({"attributes": {}})),
        ),
        request("PATCH", group, None, Some(json!({"name": ""}))),
        request("PATCH", group, None, Some(json!({"num_pk": 1}))),
        request("PATCH", group, None, Some(json!({"parents": "p"}))),
        request("PATCH", group, None, Some(json!({"parent": null}))),
        request("DELETE", group, None, Some(json!({}))),
    ];
    for case in &cases {
        assert!(
            !check_request(&spec, case).is_empty(),
            "accepted: {} {} {:?} {:?}",
            case.method,
            case.path,
            case.query,
            case.body
        );
    }
    let fine = request(
        "PATCH",
        group,
        None,
        Some(json!({"attributes": {"a": [1]}})),
    );
    assert_eq!(check_request(&spec, &fine), Vec::<String>::new());
}
