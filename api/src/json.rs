//! JSON in and out. [`JsonBody`] is the only way a handler reads a body: it
//! enforces the content type (415), the size limit (413) and strict typing
//! (400 naming the field, unknown fields included), so a `{"$gt": ""}` where a
//! string belongs never reaches a query. [`render`] turns a stored document
//! into its API shape (`_id` becomes `id`).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;

/// Largest accepted request body (DESIGN §4).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body, strictly deserialized into `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > BODY_LIMIT) {
            return Err(ApiError::PayloadTooLarge(BODY_LIMIT));
        }
        let bytes = axum::body::to_bytes(Body::new(request.into_body()), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(BODY_LIMIT))?;
        parse(&bytes).map(JsonBody)
    }
}

/// `application/json` or any `application/*+json`, parameters allowed.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes `bytes`, reporting the path of the first offending field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if !inner.is_data() {
            return ApiError::InvalidJson(strip_position(&inner.to_string()));
        }
        let message = inner.to_string();
        let nested = |name: &str| match path.as_str() {
            "." => name.to_string(),
            parent => format!("{parent}.{name}"),
        };
        if let Some(name) = quoted_name(&message, "unknown field `") {
            // serde_path_to_error's path already ends with the unknown key.
            let field = if path == "." { name.to_string() } else { path };
            return ApiError::UnknownField(field);
        }
        let field = match quoted_name(&message, "missing field `") {
            Some(name) => Some(nested(name)),
            None => (path != ".").then_some(path),
        };
        ApiError::Validation {
            field,
            message: strip_position(&message),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::InvalidJson(strip_position(&e.to_string())))?;
    Ok(value)
}

/// serde's "unknown field `x`, expected ..." / "missing field `x`" → `x`.
fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// Drops serde_json's " at line 1 column 9" suffix.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The API shape of a stored document: JSON with `_id` renamed to `id`.
pub fn render<T: Serialize>(document: &T) -> Value {
    let mut value = serde_json::to_value(document).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        if let Some(id) = map.remove("_id") {
            map.insert("id".to_string(), id);
        }
    }
    value
}

/// A serde helper for PATCH bodies: distinguishes an absent field (`None`)
/// from an explicit `null` (`Some(None)`). Use with `#[serde(default)]`.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        email: String,
    }

    fn field(r: Result<Body, ApiError>) -> (String, Option<String>) {
        match r.unwrap_err() {
            ApiError::UnknownField(f) => ("unknown".into(), Some(f)),
            ApiError::Validation { field, .. } => ("validation".into(), field),
            ApiError::InvalidJson(_) => ("json".into(), None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_offending_field() {
        assert_eq!(
            field(parse(br#"{"name": {"$gt": ""}}"#)),
            ("validation".into(), Some("name".into()))
        );
        assert_eq!(
            field(parse(br#"{"name": "a", "x": 1}"#)),
            ("unknown".into(), Some("x".into()))
        );
        assert_eq!(
            field(parse(br#"{"name": "a", "inner": {"email": "e", "y": 1}}"#)),
            ("unknown".into(), Some("inner.y".into()))
        );
        assert_eq!(field(parse(br#"{"name": "#)), ("json".into(), None));
        assert_eq!(field(parse(br#"{"name": "a"} x"#)), ("json".into(), None));
        assert_eq!(
            field(parse(br#"{}"#)),
            ("validation".into(), Some("name".into())),
        );
    }

    #[test]
    fn content_types() {
        let ok = |s: &'static str| is_json(Some(&header::HeaderValue::from_static(s)));
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!is_json(None));
    }
}
