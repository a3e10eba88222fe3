//! Typed client of Authentik's groups API (`/api/v3/core/groups/`), as
//! `shared/upstream/authentik.md` and the OpenAPI subsets describe the
//! real server.
//!
//! - Auth is `Authorization: Bearer <API token>`; Authentik answers a bad
//!   token with 403 (sometimes 401): both are [`AuthentikError::Unauthorized`].
//! - Lists follow `pagination.next` (a page number, 0 = last page) and
//!   re-check every filter client-side: a malformed `attributes` lookup
//!   makes the server silently return every group.
//! - Updates are `PATCH` with only the changed fields; the client has no
//!   `PUT` (omitting `users`/`parents` there wipes them).

mod group;

use std::sync::Arc;

use dezky_core::http::{SendError, UpstreamGuard};
use dezky_core::secret::Secret;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

pub use group::{Group, GroupPatch, NewGroup};

/// Metrics label of Authentik calls.
const SYSTEM: &str = "authentik";

/// Page size asked for when listing. Authentik caps it at its
/// `pagination_max_page_size` system setting (default 100) and the client
/// follows `next` whatever page it gets; asking for 500 costs nothing and
/// fetches 5x fewer pages where an operator raised that setting.
const PAGE_SIZE: u32 = 500;

/// Longest upstream error text kept in a message.
const MAX_DETAIL: usize = 300;

/// A failed Authentik call.
#[derive(Debug, thiserror::Error)]
pub enum AuthentikError {
    #[error("invalid Authentik base URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// 401 or 403: the API token is wrong, expired or lacks permissions.
    #[error("Authentik rejected the API token (HTTP {status}): {detail}")]
    Unauthorized { status: u16, detail: String },
    /// The group does not exist (any more).
    #[error("Authentik group {pk} not found")]
    NotFound { pk: String },
    /// 400 with a `name` key: another group already has this name.
    #[error("Authentik refused the group name {name:?}: {detail}")]
    DuplicateName { name: String, detail: String },
    /// Another 4xx: the server refused the request.
    #[error("Authentik refused the request (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// The API token's file cannot be read (`AUTHENTIK_TOKEN_FILE`).
    #[error("{0}")]
    Credential(String),
    /// 5xx, 429, connection failure or timeout: worth retrying later.
    #[error("Authentik is unavailable: {0}")]
    Unavailable(String),
    /// A success answer that is not what the API promises.
    #[error("unexpected answer from Authentik: {0}")]
    BadResponse(String),
}

/// Client of one Authentik server's groups API.
#[derive(Clone, Debug)]
pub struct AuthentikClient {
    http: reqwest::Client,
    /// The gate of every request (rate limit, pauses, breaker); unlimited by default.
    guard: Arc<UpstreamGuard>,
    /// `<base>/api/v3/core/groups/`.
    groups_url: Url,
    token: Secret,
}

impl AuthentikClient {
    /// A client for the server at `base_url` (without `/api/v3`), using
    /// `http` (built by [`dezky_core::http::client`], which sets timeouts).
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        token: impl Into<Secret>,
    ) -> Result<Self, AuthentikError> {
        let invalid = |reason: String| AuthentikError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let mut base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("not an http(s) URL".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let groups_url = base
            .join("api/v3/core/groups/")
            .map_err(|e| invalid(e.to_string()))?;
        Ok(AuthentikClient {
            http,
            guard: Arc::new(UpstreamGuard::unlimited(SYSTEM)),
            groups_url,
            token: token.into(),
        })
    }

    /// Sends through `guard` (shared with every other client of this upstream).
    pub fn with_guard(mut self, guard: Arc<UpstreamGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// `GET /core/groups/{pk}/`; `None` when it does not exist.
    pub async fn get_group(&self, pk: &str) -> Result<Option<Group>, AuthentikError> {
        let mut url = self.group_url(pk);
        url.query_pairs_mut().append_pair("include_users", "false");
        match self.call(Method::GET, url, None::<&()>).await {
            Ok(response) => decode(response).await.map(Some),
            Err(AuthentikError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The group named exactly `name` (the server's `name` filter is exact;
    /// the answer is re-checked anyway).
    pub async fn find_group_by_name(&self, name: &str) -> Result<Option<Group>, AuthentikError> {
        let groups = self
            .list_groups(&[("name", name.to_owned())], |g| {
                (g.name == name).then_some(g)
            })
            .await?;
        Ok(groups.into_iter().next())
    }

    /// Groups whose attributes hold every top-level `key: value` of `wanted`.
    /// The server filters first; the result is re-checked here, since a
    /// lookup Authentik cannot evaluate returns every group.
    pub async fn find_groups_by_attributes(
        &self,
        wanted: &Map<String, Value>,
    ) -> Result<Vec<Group>, AuthentikError> {
        self.map_groups_by_attributes(wanted, |group| group).await
    }

    /// [`AuthentikClient::find_groups_by_attributes`], keeping of each group
    /// only what `keep` makes of it, page by page.
    pub async fn map_groups_by_attributes<U>(
        &self,
        wanted: &Map<String, Value>,
        mut keep: impl FnMut(Group) -> U,
    ) -> Result<Vec<U>, AuthentikError> {
        let filter = Value::Object(wanted.clone()).to_string();
        self.list_groups(&[("attributes", filter)], |g| {
            wanted
                .iter()
                .all(|(key, value)| g.attributes.get(key) == Some(value))
                .then(|| keep(g))
        })
        .await
    }

    /// Every group (all pages).
    pub async fn list_all_groups(&self) -> Result<Vec<Group>, AuthentikError> {
        self.list_groups(&[], Some).await
    }

    /// `GET /core/groups/` with `filters`, following every page, keeping
    /// what `keep` makes of each group.
    async fn list_groups<U>(
        &self,
        filters: &[(&str, String)],
        mut keep: impl FnMut(Group) -> Option<U>,
    ) -> Result<Vec<U>, AuthentikError> {
        let mut found = Vec::new();
        let mut page = 1u64;
        loop {
            let mut url = self.groups_url.clone();
            {
                let mut query = url.query_pairs_mut();
                for (key, value) in filters {
                    query.append_pair(key, value);
                }
                query
                    .append_pair("include_users", "false")
                    .append_pair("page", &page.to_string())
                    .append_pair("page_size", &PAGE_SIZE.to_string());
            }
            let response = self.call(Method::GET, url, None::<&()>).await?;
            let body: group::GroupPage = decode(response).await?;
            found.extend(body.results.into_iter().filter_map(&mut keep));
            let pagination = body.pagination;
            if pagination.next == 0 {
                return Ok(found);
            }
            if pagination.current != page || pagination.next <= page {
                return Err(AuthentikError::BadResponse(format!(
                    "asked for page {page}, got page {} pointing to next page {}",
                    pagination.current, pagination.next
                )));
            }
            page = pagination.next;
        }
    }

    /// `POST /core/groups/`.
    pub async fn create_group(&self, group: &NewGroup) -> Result<Group, AuthentikError> {
        let response = self
            .call(Method::POST, self.groups_url.clone(), Some(group))
            .await
            .map_err(|e| name_conflict(e, &group.name))?;
        decode(response).await
    }

    /// `PATCH /core/groups/{pk}/` with only the fields set in `patch`.
    pub async fn update_group(
        &self,
        pk: &str,
        patch: &GroupPatch,
    ) -> Result<Group, AuthentikError> {
        let response = self
            .call(Method::PATCH, self.group_url(pk), Some(patch))
            .await
            .map_err(|e| match &patch.name {
                Some(name) => name_conflict(e, name),
                None => e,
            })?;
        decode(response).await
    }

    /// `DELETE /core/groups/{pk}/`: `true` when deleted, `false` when it was
    /// already gone.
    pub async fn delete_group(&self, pk: &str) -> Result<bool, AuthentikError> {
        match self
            .call(Method::DELETE, self.group_url(pk), None::<&()>)
            .await
        {
            Ok(_) => Ok(true),
            Err(AuthentikError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `<groups>/{pk}/`, with `pk` as one escaped path segment.
    fn group_url(&self, pk: &str) -> Url {
        let mut url = self.groups_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            // The base path ends in `/`: drop that empty segment first.
            segments.pop_if_empty().push(pk).push("");
        }
        url
    }

    /// Sends one request and sorts failures into [`AuthentikError`].
    async fn call<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<reqwest::Response, AuthentikError> {
        let path = url.path().to_owned();
        let token = self
            .token
            .get()
            .map_err(|e| AuthentikError::Credential(e.to_string()))?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self
            .guard
            .send(request)
            .await
            .map_err(|e| AuthentikError::Unavailable(send_error(&e)))?;
        let status = response.status();
        tracing::debug!(%method, %path, status = status.as_u16(), "authentik call");
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(classify(status, &path, text))
    }
}

/// The error a non-success answer stands for.
fn classify(status: StatusCode, path: &str, text: String) -> AuthentikError {
    let json: Option<Value> = serde_json::from_str(&text).ok();
    let detail = json
        .as_ref()
        .and_then(|v| v.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| truncate(&text));
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AuthentikError::Unauthorized {
            status: status.as_u16(),
            detail,
        },
        StatusCode::NOT_FOUND => AuthentikError::NotFound {
            pk: path.to_owned(),
        },
        StatusCode::BAD_REQUEST => match json.as_ref().and_then(|v| v.get("name")) {
            // The text differs between versions: the key is what counts.
            Some(messages) => AuthentikError::DuplicateName {
                name: String::new(),
                detail: field_messages(messages),
            },
            None => AuthentikError::Rejected {
                status: 400,
                detail: truncate(&text),
            },
        },
        StatusCode::TOO_MANY_REQUESTS => {
            AuthentikError::Unavailable(format!("HTTP 429 (rate limited): {detail}"))
        }
        s if s.is_server_error() => {
            AuthentikError::Unavailable(format!("HTTP {}: {detail}", s.as_u16()))
        }
        s if s.is_client_error() => AuthentikError::Rejected {
            status: s.as_u16(),
            detail,
        },
        s => AuthentikError::BadResponse(format!("HTTP {}: {detail}", s.as_u16())),
    }
}

/// Names the group in a duplicate-name error, for the message.
fn name_conflict(error: AuthentikError, name: &str) -> AuthentikError {
    match error {
        AuthentikError::DuplicateName { detail, .. } => AuthentikError::DuplicateName {
            name: name.to_owned(),
            detail,
        },
        other => other,
    }
}

/// `["msg", ...]` (DRF field errors) as one line.
fn field_messages(messages: &Value) -> String {
    match messages {
        Value::Array(items) => items
            .iter()
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(" "),
        other => truncate(&other.to_string()),
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, AuthentikError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| AuthentikError::Unavailable(transport_error(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        AuthentikError::BadResponse(format!(
            "{e} in {}",
            truncate(&String::from_utf8_lossy(&bytes))
        ))
    })
}

fn send_error(error: &SendError) -> String {
    match error {
        SendError::Transport(e) => transport_error(e),
        refused => refused.to_string(),
    }
}

fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("request timed out: {error}")
    } else if error.is_connect() {
        format!("cannot connect: {error}")
    } else {
        error.to_string()
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_url_may_end_with_or_without_slash() {
        for base in [
            "http://auth.test",
            "http://auth.test/",
            "http://auth.test/sub/",
        ] {
            let client = AuthentikClient::new(reqwest::Client::new(), base, "t").expect("client");
            assert!(client.groups_url.as_str().ends_with("/api/v3/core/groups/"));
            assert!(client
                .group_url("0b9c")
                .as_str()
                .ends_with("/api/v3/core/groups/0b9c/"));
        }
        assert!(AuthentikClient::new(reqwest::Client::new(), "auth.test", "t").is_err());
    }

    #[test]
    fn errors_are_classified_by_status_and_body() {
        let forbidden = classify(
            StatusCode::FORBIDDEN,
            "/",
            json!({"detail": "Token invalid/expired"}).to_string(),
        );
        assert!(
            matches!(forbidden, AuthentikError::Unauthorized { status: 403, ref detail } if detail == "Token invalid/expired")
        );
        let duplicate = classify(
            StatusCode::BAD_REQUEST,
            "/",
            json!({"name": ["group with this name already exists."]}).to_string(),
        );
        assert!(matches!(duplicate, AuthentikError::DuplicateName { .. }));
        let other = classify(
            StatusCode::BAD_REQUEST,
            "/",
            json!({"users": ["x"]}).to_string(),
        );
        assert!(matches!(
            other,
            AuthentikError::Rejected { status: 400, .. }
        ));
        let down = classify(StatusCode::BAD_GATEWAY, "/", "<html>".into());
        assert!(matches!(down, AuthentikError::Unavailable(_)));
    }
}
