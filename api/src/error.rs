//! The one error type of the API. Every failure a handler can meet becomes an
//! [`ApiError`], rendered as DESIGN §4's body
//! `{"error": {"code": "snake_case", "message": "...", "field": "..."}}`
//! with the matching status code. [`ErrorCode`] lists every `code`, and
//! [`ErrorBody`] is the body's schema in the OpenAPI document.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dezky_core::store::decode::Undecodable;
use dezky_core::store::StoreError;
use dezky_core::validate::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the input is well-formed JSON but a value is not acceptable.
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// 400: a body field that the resource does not have.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// 400: the body is not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// 401: no usable bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: visible, but the caller lacks the role.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown, or not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: a uniqueness or state conflict.
    #[error("{message}")]
    Conflict {
        code: ErrorCode,
        field: Option<String>,
        message: String,
    },
    /// 412: `If-Match` names another generation.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: body over the limit.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: not `application/json`.
    #[error("the body must be sent as application/json")]
    UnsupportedMediaType,
    /// 503: MongoDB is not reachable (answered within about 2 s).
    #[error("the database is not reachable; retry later")]
    DatabaseUnavailable,
    /// 500: a stored document does not fit the model (hand-edited, or of
    /// another schema); names the document and the field, never its content.
    #[error("{0}")]
    Undecodable(Undecodable),
    /// 500: a bug or a database failure; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming the offending field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 404 for something the caller cannot see.
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::UnknownField(_) | ApiError::InvalidJson(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Undecodable(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation { .. } => ErrorCode::ValidationFailed,
            ApiError::UnknownField(_) => ErrorCode::UnknownField,
            ApiError::InvalidJson(_) => ErrorCode::InvalidJson,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::Conflict { code, .. } => *code,
            ApiError::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::DatabaseUnavailable => ErrorCode::DatabaseUnavailable,
            ApiError::Undecodable(_) => ErrorCode::UndecodableDocument,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Validation { field, .. } | ApiError::Conflict { field, .. } => {
                field.as_deref()
            }
            ApiError::UnknownField(name) => Some(name),
            ApiError::Undecodable(e) => Some(&e.field),
            _ => None,
        }
    }
}

impl ApiError {
    /// The status code and body of this error.
    pub fn body(&self) -> (StatusCode, ErrorBody) {
        let message = match self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                field: self.field().map(str::to_owned),
            },
        };
        (self.status(), body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.body();
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// Every `code` of an error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    UnknownField,
    InvalidJson,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    SlugTaken,
    DomainTaken,
    SubjectTaken,
    SubscriptionExists,
    TenantDeleting,
    ConcurrentUpdate,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    DatabaseUnavailable,
    /// `/readyz` only: MongoDB or the controller is not ready.
    NotReady,
    /// A stored document does not fit the model; `field` names the field.
    UndecodableDocument,
    Internal,
}

/// The error body of every failed request (DESIGN §4).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "must be 1 to 100 printable characters", "field": "name"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; not stable.
    pub message: String,
    /// The offending input field (`domains[1]`, `billingInfo.email`), if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation {
            field: Some(e.field),
            message: e.message,
        }
    }
}

/// Server error codes meaning "no usable primary right now" (shutting down,
/// stepped down, not writable): the same for a caller as unreachable.
const UNAVAILABLE_CODES: [i32; 7] = [91, 189, 10107, 11600, 11602, 13435, 13436];

impl From<mongodb::error::Error> for ApiError {
    fn from(e: mongodb::error::Error) -> Self {
        use mongodb::error::ErrorKind;
        match e.kind.as_ref() {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. } => ApiError::DatabaseUnavailable,
            ErrorKind::Command(c) if UNAVAILABLE_CODES.contains(&c.code) => {
                ApiError::DatabaseUnavailable
            }
            // The kind only: the error's Display appends the raw server reply.
            kind => ApiError::Internal(kind.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Mongo(e) => e.into(),
            StoreError::Undecodable(e) => ApiError::Undecodable(e),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<mongodb::bson::ser::Error> for ApiError {
    fn from(e: mongodb::bson::ser::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}
