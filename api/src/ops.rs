//! Operational endpoints that need no token: `/healthz` (the process
//! answers), `/readyz` (MongoDB answers and the readiness hook agrees) and
//! `/metrics` (Prometheus). [`router`] stands alone so the controller-only
//! process serves the same three routes.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use mongodb::bson::doc;
use mongodb::Database;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Readiness;
use crate::error::{ErrorBody, ErrorCode, ErrorDetail};

/// How long `/readyz` waits for MongoDB's ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Ops {
    db: Database,
    readiness: Readiness,
    prometheus: PrometheusHandle,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router(db: Database, readiness: Readiness, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Ops {
            db,
            readiness,
            prometheus,
        })
}

/// The body of `/healthz` and of a ready `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "ops", security(),
    responses((status = 200, description = "the process is alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "ops", security(),
    responses(
        (status = 200, description = "MongoDB reachable and the readiness hook agrees", body = Health),
        (status = 503, description = "`not_ready`, with the reason", body = ErrorBody)))]
async fn readyz(State(ops): State<Ops>) -> Response {
    let ping = tokio::time::timeout(PING_TIMEOUT, ops.db.run_command(doc! { "ping": 1 })).await;
    let mongo = match ping {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("MongoDB: {}", e.kind)),
        Err(_) => Err("MongoDB: ping timed out".to_string()),
    };
    match mongo.and_then(|()| ops.readiness.check()) {
        Ok(()) => Json(Health { status: "ready" }).into_response(),
        Err(message) => {
            let error = ErrorDetail {
                code: ErrorCode::NotReady,
                message,
                field: None,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(ErrorBody { error })).into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops", security(),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(State(ops): State<Ops>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.prometheus.render(),
    )
        .into_response()
}

/// Middleware recording `http_requests_total` and
/// `http_request_duration_seconds` by method, route template and status.
pub async fn record_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
