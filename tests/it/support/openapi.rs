//! Checks real answers against the API's OpenAPI document: the status must
//! be documented for the route, and a JSON body must validate against the
//! documented schema (`$ref`s into `components` resolved by `jsonschema`).
//! [`Conformance`] also remembers which operations were checked, so a test
//! can require that every documented operation was.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::api::Reply;

/// The document and the (method, path) pairs checked so far.
pub struct Conformance {
    doc: Value,
    checked: BTreeSet<(String, String)>,
}

impl Conformance {
    pub fn new(doc: Value) -> Self {
        Conformance {
            doc,
            checked: BTreeSet::new(),
        }
    }

    /// Panics unless `reply` to `method` on the route `template` (as written
    /// in the document, e.g. `/tenants/{slug}`) is documented.
    #[track_caller]
    pub fn check(&mut self, method: &str, template: &str, reply: &Reply) {
        let status = reply.status.as_u16().to_string();
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not in the document"
        );
        let mut response = &operation["responses"][&status];
        if let Some(reference) = response["$ref"].as_str() {
            let pointer = reference.trim_start_matches('#');
            response = self.doc.pointer(pointer).unwrap_or(&Value::Null);
        }
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not list; body: {}",
            reply.body
        );
        self.checked
            .insert((method.to_string(), template.to_string()));
        let content = &response["content"];
        match content.get("application/json") {
            Some(media) => self.validate(&media["schema"], &reply.body, method, template, &status),
            None if content.is_object() => {}
            None => assert_eq!(
                reply.body,
                json!(""),
                "{method} {template} {status} is documented without a body"
            ),
        }
    }

    #[track_caller]
    fn validate(&self, schema: &Value, body: &Value, method: &str, template: &str, status: &str) {
        let mut root = schema.clone();
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("schema of {method} {template} {status}: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} (at {})", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not match the document: {errors:#?}\nbody: {body:#}"
        );
    }

    /// Every operation of the document that no check covered.
    pub fn unchecked(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if !self.checked.contains(&(method.clone(), path.clone())) {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        missing
    }
}
