//! The HTTP client of the provisioner API: one bearer token, a timeout on
//! every request (longer only where the server is asked to wait), and the
//! API's error body (`{"error": {code, message, field}}`) turned into a
//! [`CliError::Api`] naming the request, the field and the server's
//! message. Answers stay JSON values, so `-o json` prints exactly what the
//! API returned; [`crate::view`] types what the client reads.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::error::CliError;
use crate::session::Bearer;

/// Timeout of an ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Added to a server-side `?wait=` for the request's own timeout.
const WAIT_MARGIN: Duration = Duration::from_secs(15);
/// Page size of list requests (the API's maximum).
const PAGE: &str = "500";

/// A client of the API at `server`, sending the token of `bearer`.
pub struct Client {
    http: reqwest::Client,
    server: String,
    bearer: Bearer,
}

/// What `POST /tenants/{slug}/reconcile` answered.
pub enum Reconciled {
    /// The controller handled the request: the tenant after it.
    Handled(Value),
    /// Recorded; not (yet) handled.
    Requested { token: String },
}

impl Client {
    /// A client of `server` (e.g. `http://127.0.0.1:3000`).
    pub fn new(server: &str, bearer: Bearer) -> Result<Self, CliError> {
        let http = dezky_core::http::client(None, REQUEST_TIMEOUT).map_err(|e| CliError::Http {
            context: "HTTP client".into(),
            message: e.to_string(),
        })?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_string(),
            bearer,
        })
    }

    /// The API's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `GET /users/me`: syncs the caller's claims (groups, platform admin)
    /// into their user record; the user with their tenants.
    pub async fn me(&self) -> Result<Value, CliError> {
        let response = self.send(Method::GET, "/users/me", &[], None, None).await?;
        expect(response, "GET /users/me", &[StatusCode::OK]).await
    }

    /// `GET /tenants/{slug}`; `None` if it does not exist (or is not visible).
    pub async fn tenant(&self, slug: &str) -> Result<Option<Value>, CliError> {
        let path = tenant_path(slug);
        let response = self.send(Method::GET, &path, &[], None, None).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect(response, &format!("GET {path}"), &[StatusCode::OK])
            .await
            .map(Some)
    }

    /// `GET /tenants`, every page.
    pub async fn tenants(&self) -> Result<Vec<Value>, CliError> {
        self.list("/tenants", None).await
    }

    /// `GET /tenants/{slug}/events`, newest first, at most `limit` (all if `None`).
    pub async fn events(&self, slug: &str, limit: Option<usize>) -> Result<Vec<Value>, CliError> {
        self.list(&format!("{}/events", tenant_path(slug)), limit)
            .await
    }

    /// `PUT /tenants/{slug}` with `spec`, guarded by `If-Match` when
    /// `generation` is given; the status (200 or 201) and the tenant.
    pub async fn apply(
        &self,
        slug: &str,
        spec: &impl serde::Serialize,
        generation: Option<i64>,
    ) -> Result<(StatusCode, Value), CliError> {
        let path = tenant_path(slug);
        let body = serde_json::to_value(spec).map_err(|e| CliError::Http {
            context: format!("PUT {path}"),
            message: e.to_string(),
        })?;
        let mut request = self.request(Method::PUT, &path).await?.json(&body);
        if let Some(generation) = generation {
            request = request.header(reqwest::header::IF_MATCH, format!("\"{generation}\""));
        }
        let context = format!("PUT {path}");
        let response = request.send().await.map_err(|e| unreachable(&context, e))?;
        let status = response.status();
        let tenant = expect(response, &context, &[StatusCode::OK, StatusCode::CREATED]).await?;
        Ok((status, tenant))
    }

    /// `PATCH /tenants/{slug}` with `body`; the tenant.
    pub async fn patch(&self, slug: &str, body: Value) -> Result<Value, CliError> {
        let path = tenant_path(slug);
        let response = self
            .send(Method::PATCH, &path, &[], Some(body), None)
            .await?;
        expect(response, &format!("PATCH {path}"), &[StatusCode::OK]).await
    }

    /// `DELETE /tenants/{slug}`; the tenant, phase `deleting`.
    pub async fn delete(&self, slug: &str) -> Result<Value, CliError> {
        let path = tenant_path(slug);
        let response = self.send(Method::DELETE, &path, &[], None, None).await?;
        expect(response, &format!("DELETE {path}"), &[StatusCode::ACCEPTED]).await
    }

    /// `GET /tenants/{slug}/plan?wait=`: the controller's dry run, or
    /// `None` if it did not answer within `wait`.
    pub async fn plan(&self, slug: &str, wait: Duration) -> Result<Option<Value>, CliError> {
        let path = format!("{}/plan", tenant_path(slug));
        let query = [("wait", humantime::format_duration(wait).to_string())];
        let response = self
            .send(Method::GET, &path, &query, None, Some(wait))
            .await?;
        let status = response.status();
        let body = expect(
            response,
            &format!("GET {path}"),
            &[StatusCode::OK, StatusCode::ACCEPTED],
        )
        .await?;
        Ok((status == StatusCode::OK).then_some(body))
    }

    /// `POST /tenants/{slug}/reconcile[?wait=]`.
    pub async fn reconcile(
        &self,
        slug: &str,
        wait: Option<Duration>,
    ) -> Result<Reconciled, CliError> {
        let path = format!("{}/reconcile", tenant_path(slug));
        let query: Vec<(&str, String)> = wait
            .map(|w| ("wait", humantime::format_duration(w).to_string()))
            .into_iter()
            .collect();
        let response = self
            .send(
                Method::POST,
                &path,
                &query,
                Some(Value::Object(Default::default())),
                wait,
            )
            .await?;
        let status = response.status();
        let body = expect(
            response,
            &format!("POST {path}"),
            &[StatusCode::OK, StatusCode::ACCEPTED],
        )
        .await?;
        if status == StatusCode::OK {
            return Ok(Reconciled::Handled(body));
        }
        let token = body["token"].as_str().unwrap_or_default().to_string();
        Ok(Reconciled::Requested { token })
    }

    /// Every item of a list route (at most `limit`).
    async fn list(&self, path: &str, limit: Option<usize>) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", PAGE.to_string())];
            query.extend(cursor.take().map(|c| ("cursor", c)));
            let response = self.send(Method::GET, path, &query, None, None).await?;
            let mut page = expect(response, &format!("GET {path}"), &[StatusCode::OK]).await?;
            if let Value::Array(found) = page["items"].take() {
                items.extend(found);
            }
            if let Some(limit) = limit.filter(|limit| items.len() >= *limit) {
                items.truncate(limit);
                return Ok(items);
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(items),
            }
        }
    }

    /// A request with a current token (a stored login is renewed first if due).
    async fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, CliError> {
        let token = self.bearer.token().await?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(token))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        server_wait: Option<Duration>,
    ) -> Result<Response, CliError> {
        let context = format!("{method} {path}");
        let mut request = self.request(method, path).await?.query(query);
        if let Some(wait) = server_wait {
            request = request.timeout(wait + WAIT_MARGIN);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.map_err(|e| unreachable(&context, e))
    }
}

fn tenant_path(slug: &str) -> String {
    format!("/tenants/{slug}")
}

fn unreachable(context: &str, error: reqwest::Error) -> CliError {
    let message = if error.is_timeout() {
        "the server did not answer in time".to_string()
    } else if error.is_connect() {
        "cannot connect to the server (is it running? check --server / DEZKY_SERVER)".to_string()
    } else {
        error.to_string()
    };
    CliError::Http {
        context: context.to_string(),
        message,
    }
}

/// The JSON body of `response` if its status is one of `ok`; otherwise the
/// API's error, named after `context`.
pub async fn expect(
    response: Response,
    context: &str,
    ok: &[StatusCode],
) -> Result<Value, CliError> {
    let status = response.status();
    let text = response.text().await.map_err(|e| unreachable(context, e))?;
    let body: Option<Value> = serde_json::from_str(&text).ok();
    if ok.contains(&status) {
        return body.ok_or_else(|| CliError::Http {
            context: context.to_string(),
            message: format!("{status}: the answer is not JSON"),
        });
    }
    let error = body.as_ref().map(|b| &b["error"]);
    let field = |name: &str| error.and_then(|e| e[name].as_str()).map(str::to_string);
    Err(CliError::Api {
        context: context.to_string(),
        status: status.as_u16(),
        code: field("code")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string()),
        message: field("message").unwrap_or_else(|| text.chars().take(200).collect()),
        field: field("field"),
    })
}
