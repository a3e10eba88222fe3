//! JSON in and out. [`JsonBody`] is the only way a handler reads a body: it
//! enforces the content type (415), the size limit (413) and strict typing
//! (400 naming the field, unknown fields included), so a `{"$gt": ""}` where a
//! string belongs never reaches a query. [`ApiJson`] writes a response in
//! one pass, stored documents in their API shape (`_id` becomes `id`).

use std::io;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

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

/// A JSON response body. Serialized straight into the response (no
/// intermediate `Value`), with every object key `_id` written as `id`: a
/// stored document's `_id` is its `id` in the API (DESIGN §3).
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        match to_api_json(&self.0) {
            Ok(bytes) => json_response(bytes),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a response");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// A response with `body`, already serialized JSON, as [`ApiJson`] sends it.
pub fn json_response(body: impl Into<Body>) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// `value` as the API writes it (see [`ApiJson`]).
pub fn to_api_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(1024);
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, ApiKeys::default());
    value.serialize(&mut serializer)?;
    Ok(bytes)
}

/// Where the formatter is inside an object key.
#[derive(Default, PartialEq, Eq)]
enum Key {
    /// Not in a key.
    #[default]
    Outside,
    /// At the start of a key.
    Start,
    /// The key so far is `_id` (written as `id` if it ends here).
    Id,
    /// In any other key.
    Other,
}

/// A compact formatter that writes the object key `_id` as `id`.
#[derive(Default)]
struct ApiKeys {
    key: Key,
}

impl ApiKeys {
    /// Writes a held-back `_id` if the key turned out to be longer.
    fn flush_id<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.key == Key::Id {
            writer.write_all(b"_id")?;
        }
        if self.key != Key::Outside {
            self.key = Key::Other;
        }
        Ok(())
    }
}

impl Formatter for ApiKeys {
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.key = Key::Start;
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.key = Key::Outside;
        CompactFormatter.end_object_key(writer)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.key == Key::Start && fragment == "_id" {
            self.key = Key::Id;
            return Ok(());
        }
        self.flush_id(writer)?;
        writer.write_all(fragment.as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        self.flush_id(writer)?;
        CompactFormatter.write_char_escape(writer, escape)
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.key == Key::Id {
            writer.write_all(b"id")?;
            self.key = Key::Other;
        }
        CompactFormatter.end_string(writer)
    }
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
    fn stored_ids_are_written_as_id_and_other_keys_unchanged() {
        let value = serde_json::json!({
            "_id": "a", "items": [{"_id": "b", "x_id": 1, "_idx": 2, "_i\"d": 3}],
            "text": "_id",
        });
        let written = String::from_utf8(to_api_json(&value).unwrap()).unwrap();
        let back: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            back,
            serde_json::json!({
                "id": "a", "items": [{"id": "b", "x_id": 1, "_idx": 2, "_i\"d": 3}],
                "text": "_id",
            })
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
